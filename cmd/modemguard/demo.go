package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/simulator"
)

// demoProfiles are the simulated modules the demo starts by default: four
// vendors that format their answers differently.
var demoProfiles = []string{"quectel-ec25", "simcom-sim7600", "huawei-me909s", "telit-le910c1"}

// demoQueries are what the demo asks every module, in order.
var demoQueries = []struct{ label, cmd string }{
	{"manufacturer", "AT+CGMI"},
	{"model", "AT+CGMM"},
	{"revision", "AT+CGMR"},
	{"IMEI", "AT+CGSN"},
	{"IMSI", "AT+CIMI"},
	{"registration", "AT+CEREG?"},
	{"signal", "AT+CSQ"},
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[flags]", stderr)
	modems := fs.String("modems", strings.Join(demoProfiles, ","), "comma-separated simulator `profiles` to start (modemsim --list shows them all)")
	seed := fs.Uint64("seed", 1, "simulator seed: the same seed gives the same IMEIs and SIMs")
	boot := fs.Bool("boot", true, "simulate power-up: boot chatter and the deaf period before the module answers")
	trace := fs.Bool("trace", false, "log every byte exchanged with the modules to stderr")
	timeout := fs.Duration("timeout", time.Minute, "give up on a module after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var profiles []*simulator.Profile
	for _, name := range strings.Split(*modems, ",") {
		p, err := simulator.LoadProfile(strings.TrimSpace(name))
		if err != nil {
			return &usageError{msg: fmt.Sprintf("--modems: %v", err)}
		}
		profiles = append(profiles, p)
	}

	fmt.Fprintf(stdout, "modemguard demo: %d simulated cellular modules power up; the AT engine syncs with each\n", len(profiles))
	fmt.Fprintf(stdout, "and asks what it is. Every vendor answers in its own format.\n\n")

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	out := &lockedWriter{w: stdout}
	results := make([]demoResult, len(profiles))
	var wg sync.WaitGroup
	for i, p := range profiles {
		wg.Go(func() {
			results[i] = identifyDemo(ctx, p, *seed+uint64(i), *boot, *trace, out, stderr)
		})
	}
	wg.Wait()

	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "MODULE\tSYNC\t")
	for _, q := range demoQueries {
		fmt.Fprintf(tw, "%s\t", strings.ToUpper(q.label))
	}
	fmt.Fprintln(tw)
	var failed []string
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t", r.name, r.sync)
		for _, a := range r.answers {
			fmt.Fprintf(tw, "%s\t", a)
		}
		fmt.Fprintln(tw)
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.name, r.err))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nThe answers above are raw: prefixes, quotes and labels differ by vendor.\n")
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

type demoResult struct {
	name    string
	sync    string
	answers []string
	err     error
}

func identifyDemo(ctx context.Context, p *simulator.Profile, seed uint64, boot, trace bool, out io.Writer, stderr io.Writer) demoResult {
	res := demoResult{name: p.Name, sync: "-"}
	for range demoQueries {
		res.answers = append(res.answers, "-")
	}
	m := simulator.New(p, simulator.Options{Seed: seed, Boot: boot})
	defer m.Close()
	var port io.ReadWriter = m.Pipe()
	if trace {
		port = atcmd.NewTrace(port, &lockedWriter{w: stderr, prefix: p.Name + " "})
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, "%-16s %s\n", p.Name, fmt.Sprintf(format, a...)) }
	attempts := 0
	conn := atcmd.New(port, atcmd.Config{
		Unsolicited: func(u atcmd.URC) { say("<- %s   (unsolicited)", u.Line) },
		OnSyncAttempt: func(n int, err error) {
			attempts = n
			if err != nil && n == 1 {
				say("powering up: no answer to AT yet, probing every second")
			}
		},
	})
	defer conn.Close()

	start := time.Now()
	if err := conn.Sync(ctx); err != nil {
		res.err = err
		say("sync failed: %v", err)
		return res
	}
	res.sync = time.Since(start).Round(10 * time.Millisecond).String()
	say("answered AT after %d probe(s), %s: echo off, numeric +CME errors", attempts, res.sync)
	for i, q := range demoQueries {
		resp, err := conn.Command(ctx, q.cmd)
		switch {
		case errors.Is(err, atcmd.ErrError):
			res.answers[i] = "(" + resp.Final + ")"
		case err != nil:
			res.err = err
			say("%s: %v", q.cmd, err)
			return res
		default:
			res.answers[i] = strings.Join(resp.Lines, " | ")
		}
		say("%-10s -> %s", q.cmd, res.answers[i])
	}
	return res
}

// lockedWriter serialises writes from several goroutines, optionally
// prefixing each.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prefix != "" {
		if _, err := io.WriteString(l.w, l.prefix); err != nil {
			return 0, err
		}
	}
	return l.w.Write(p)
}
