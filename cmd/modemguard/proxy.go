package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/pty"
)

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("proxy", "--port MODEM --link PATH --policy FILE [flags]", stderr)
	port := fs.String("port", "", "the modem's AT port `PATH` (/dev/ttyUSB2); the proxy owns it")
	link := fs.String("link", "", "`PATH` of the symlink to the filtered pty that other software opens instead of the modem port")
	policyFile := fs.String("policy", "", "policy `FILE` whose module_stack, network and debug rules the firewall enforces")
	baud := fs.Int("baud", 115200, "baud rate of the modem port")
	logJSON := fs.Bool("log-json", false, "log decisions as JSON lines instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *port == "":
		return &usageError{msg: "--port is required: the modem's AT port, e.g. /dev/ttyUSB2"}
	case *link == "":
		return &usageError{msg: "--link is required: where to put the filtered port, e.g. /run/modemguard/ttyAT0"}
	case *policyFile == "":
		return &usageError{msg: "--policy is required: the firewall needs rules (see docs/policy.md)"}
	}
	// A policy that does not load stops the proxy before it opens anything:
	// the module is never reachable unfiltered.
	pol, err := policy.Load(*policyFile)
	if err != nil {
		return policyLoadError("the firewall will not start without a valid policy", err)
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)

	modemPort, err := serial.Open(*port, &serial.Mode{BaudRate: *baud})
	if err != nil {
		return openError(*port, err)
	}
	p, err := pty.Open()
	if err != nil {
		modemPort.Close()
		return err
	}
	if err := pty.Link(*link, p.Path()); err != nil {
		modemPort.Close()
		p.Close()
		return err
	}
	defer pty.Unlink(*link, p.Path())

	mux := atcmd.NewMux(modemPort, atcmd.MuxConfig{
		Filter: func(host, line string, cmee int) atcmd.Verdict {
			d := pol.CheckATLine(line, cmee)
			if d.Rule != "" {
				log.Info("at firewall", "action", d.Action.String(), "rule", d.Rule, "command", d.Command, "line", line, "reason", d.Reason)
			}
			return atcmd.Verdict{Allow: !d.Refused(), Reason: d.Reason, Reply: d.Reply}
		},
		Logger: log,
	})
	defer mux.Close()
	mux.Attach(p, atcmd.MuxHost{Name: "pty", Filtered: true, Unsolicited: true})
	log.Info("at firewall running", "modem", *port, "link", *link, "pty", p.Path(), "policy", *policyFile)
	fmt.Fprintf(stdout, "serving %s on %s (-> %s); Ctrl-C stops\n", *port, *link, p.Path())
	err = mux.Wait(ctx)
	log.Info("at firewall stopping")
	return err
}

// policyLoadError lists every problem of a policy file, one per line.
func policyLoadError(what string, err error) error {
	var list policy.ErrorList
	if errors.As(err, &list) {
		lines := make([]string, len(list))
		for i, e := range list {
			lines[i] = "  " + e.Error()
		}
		return fmt.Errorf("%s:\n%s", what, strings.Join(lines, "\n"))
	}
	return fmt.Errorf("%s: %w", what, err)
}
