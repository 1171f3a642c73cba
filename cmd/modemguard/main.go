// Command modemguard identifies the cellular module inside an edge gateway
// and (as the project grows) enforces an egress policy on it and publishes
// signed attestation reports. Run "modemguard help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// exitUsage is the exit code for a bad command line.
const exitUsage = 2

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the agent: watch the modems, enforce the policy, publish signed reports", runRun},
		{"scan", "identify the cellular module(s): vendor, model, firmware, IMEI, SIM, network, origin", runScan},
		{"policy", "check a policy file, or explain which rule decides for a module", runPolicy},
		{"egress", "apply, show or clear the host egress rules (nftables) on the cellular interfaces", runEgress},
		{"proxy", "serve the modem port to other software through the AT firewall", runProxy},
		{"pubkey", "print the gateway's public signing key (base64) for the collector's enrollment file", runPubkey},
		{"verify", "check signed reports: signatures, and for a stream the seq/prev_hash chain", runVerify},
		{"report", "report decode: turn a report envelope into readable JSON without a key", runReport},
		collectorCommands[0],
		collectorCommands[1],
		{"demo", "show modemguard at work on simulated modules (no hardware needed)", runDemo},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `modemguard finds out which cellular module sits in a gateway, what it runs
and where it talks to.

Usage:
  modemguard <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Run "modemguard <command> --help" for the flags of a command.
`)
}

// usageError is a bad command line: exit 2 after the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errDenied):
			return exitDenied
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "modemguard %s: %v\n", name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "modemguard %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "modemguard: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to w.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("modemguard "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: modemguard %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns a flag error into a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "modemguard %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// runReport dispatches "modemguard report <subcommand>".
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, "Usage: modemguard report decode [FILE|-]...\n\nSubcommands:\n  decode    print report envelopes as JSON (no key needed)\n")
		if len(args) == 0 {
			return &usageError{msg: "missing subcommand: decode"}
		}
		return flag.ErrHelp
	}
	if args[0] != "decode" {
		return &usageError{msg: fmt.Sprintf("unknown subcommand %q (want decode)", args[0])}
	}
	return runReportDecode(ctx, args[1:], stdout, stderr)
}
