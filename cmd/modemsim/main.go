// Command modemsim serves a simulated cellular module (see package
// simulator) on a pseudo-terminal, for black-box tests of software that
// talks AT commands over serial.
//
//	modemsim --list
//	modemsim --profile quectel-ec25 --link /tmp/gw/ttyUSB2 [--seed N] [--faults SPEC]
//	         [--scenario FILE] [--transcript FILE] [--boot] [--sim absent]
//
// It runs until SIGINT or SIGTERM, then removes the link.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/modemguard/modemguard/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: modemsim --list
       modemsim --profile NAME --link PATH [flags]

Serves a simulated cellular module on a new pty (raw mode) and creates PATH
as a symlink to it. Runs until SIGINT/SIGTERM, then removes the link.

Flags:
`

// run is main without the process: it returns the exit code (0 ok, 1
// runtime failure, 2 usage error).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modemsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "print the profiles, one per line: name, then description")
	profile := fs.String("profile", "", "profile `NAME` to simulate (see --list)")
	profileFile := fs.String("profile-file", "", "load the profile from this YAML `FILE` instead (schema: simulator/profiles/SCHEMA.md)")
	link := fs.String("link", "", "create this `PATH` as a symlink to the pty (e.g. /tmp/gw/ttyUSB2)")
	allPorts := fs.Bool("all-ports", false, "serve every AT port of the profile; port i>0 is linked at PATH.i")
	seed := fs.Uint64("seed", 1, "`N` seeds the generated IMEI/IMSI/ICCID and random faults")
	faults := fs.String("faults", "", "comma-separated `SPEC` of faults: "+strings.ReplaceAll(faultKeysHelp, "\n", " "))
	scenario := fs.String("scenario", "", "play this scenario `FILE` (timeline of events, see simulator.Scenario)")
	transcript := fs.String("transcript", "", "append every line received to this `FILE`")
	boot := fs.Bool("boot", false, "power up like the module: boot chatter with delays and a deaf period (also after reboots)")
	sim := fs.String("sim", "ready", "initial SIM `STATE`: ready, absent or locked")
	verbose := fs.Bool("v", false, "log simulator events to stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "modemsim: unexpected argument %q; see --help\n", fs.Arg(0))
		return 2
	}
	if *list {
		for _, p := range simulator.Profiles() {
			fmt.Fprintf(stdout, "%-18s %s\n", p.Name, p.Description)
		}
		return 0
	}
	var names []string
	for _, p := range simulator.Profiles() {
		names = append(names, p.Name)
	}
	var p *simulator.Profile
	var err error
	switch {
	case *profileFile != "":
		p, err = simulator.LoadProfileFile(*profileFile)
		if err != nil {
			fmt.Fprintf(stderr, "modemsim: --profile-file: %v\n", err)
			return 2
		}
	case *profile == "":
		fmt.Fprintf(stderr, "modemsim: --profile is required; valid profiles: %s\n", strings.Join(names, ", "))
		return 2
	default:
		p, err = simulator.LoadProfile(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "modemsim: --profile %q is unknown; valid profiles: %s\n", *profile, strings.Join(names, ", "))
			return 2
		}
	}
	if *link == "" {
		fmt.Fprintf(stderr, "modemsim: --link PATH is required (the symlink to create, e.g. /tmp/gw/ttyUSB2)\n")
		return 2
	}
	f, err := simulator.ParseFaults(*faults)
	if err != nil {
		fmt.Fprintf(stderr, "modemsim: --faults: %v\n", err)
		return 2
	}
	simState := map[string]simulator.SIMState{"ready": simulator.SIMReady, "absent": simulator.SIMAbsent, "locked": simulator.SIMLocked}
	st, ok := simState[*sim]
	if !ok {
		fmt.Fprintf(stderr, "modemsim: --sim %q: valid states: ready, absent, locked\n", *sim)
		return 2
	}
	var sc *simulator.Scenario
	if *scenario != "" {
		data, err := os.ReadFile(*scenario)
		if err != nil {
			fmt.Fprintf(stderr, "modemsim: --scenario: %v\n", err)
			return 2
		}
		if sc, err = simulator.ParseScenario(*scenario, data); err != nil {
			fmt.Fprintf(stderr, "modemsim: --scenario: %v\n", err)
			return 2
		}
	}
	opts := simulator.Options{Seed: *seed, Boot: *boot, SIM: st, Faults: f}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *transcript != "" {
		tf, err := os.OpenFile(*transcript, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "modemsim: --transcript: %v\n", err)
			return 2
		}
		defer tf.Close()
		opts.Transcript = tf
	}

	m := simulator.New(p, opts)
	defer m.Close()
	ports := 1
	if *allPorts {
		ports = len(p.USB.ATPorts())
	}
	for i := range ports {
		l := *link
		if i > 0 {
			l = fmt.Sprintf("%s.%d", *link, i)
		}
		path, err := m.ServePTY(ctx, simulator.PTYOptions{Link: l, Port: i})
		if err != nil {
			fmt.Fprintf(stderr, "modemsim: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "modemsim: %s (%s:%s, interface %d) IMEI %s on %s -> %s\n",
			p.Name, p.USB.VID, p.USB.PID, p.USB.ATPorts()[i], m.IMEI(), l, path)
	}
	played := make(chan struct{})
	go func() {
		defer close(played)
		if sc != nil && m.Play(ctx, sc) == nil {
			fmt.Fprintf(stderr, "modemsim: scenario %s done\n", sc.Name)
		}
	}()
	<-ctx.Done()
	m.Close()
	<-played
	return 0
}

const faultKeysHelp = "latency=DUR, jitter=DUR, split=N (1 = byte by byte), split-delay=DUR, drop=P, garbage=P, urc-mid=P, urc-line=TEXT (last), reboot-on=CMD, lie=PROFILE; P is a probability 0..1, e.g. latency=50ms,split=1,drop=0.1"
