package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/modemguard/modemguard/agent"
	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/simulator"
)

// demoPolicy is what the demo enforces.
const demoPolicy = `version: 1
modules:
  default: allow
  rules:
    - id: covered-list          # FCC Covered List vendors may not be in service
      when: {lists: [fcc-covered]}
      action: deny
    - id: prc-origin            # modules from PRC vendors are reported
      when: {origin: [CN]}
      action: alert
module_stack:                   # the module's own IP stack may reach only our broker
  default: deny
  allow:
    - host: broker.example.com
      ports: [8883]
  fota: deny
on_deny: quarantine             # radio off (AT+CFUN=4), kept off across reboots
`

// demoModems are the simulated modules: allowed, alerted (with a vendor
// tool behind the AT firewall), denied.
var demoModems = []struct {
	profile string
	proxy   bool
	role    string
}{
	{"telit-le910c1", false, "allowed"},
	{"quectel-ec25", true, "PRC origin: alert; a vendor tool on its AT port tries to phone home"},
	{"huawei-me909s", false, "FCC Covered List: denied and quarantined"},
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[flags]", stderr)
	duration := fs.Duration("duration", 0, "stop by itself after this long (exit 0); 0 runs until Ctrl-C")
	interval := fs.Duration("interval", 15*time.Second, "report interval of the demo agent")
	seed := fs.Uint64("seed", 1, "simulator seed: the same seed gives the same IMEIs and SIMs")
	boot := fs.Bool("boot", false, "simulate power-up: boot chatter and a deaf period of several seconds")
	verbose := fs.Bool("v", false, "show the agent's log on stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *interval < time.Second {
		return &usageError{msg: fmt.Sprintf("--interval %v: at least 1s", *interval)}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	dir, err := os.MkdirTemp("", "modemguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := &lockedWriter{w: stdout}

	// The broker: the central side's MQTT server, embedded.
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "demo", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	defer srv.Close()

	// The simulated modules, on in-process pipes; the demo agent opens
	// them by these paths.
	sims := map[string]*simulator.Modem{}
	cfgModems := ""
	proxyLink := ""
	for i, d := range demoModems {
		p, err := simulator.LoadProfile(d.profile)
		if err != nil {
			return err
		}
		path := "/dev/sim/" + d.profile
		sims[path] = simulator.New(p, simulator.Options{Seed: *seed + uint64(i), Boot: *boot})
		cfgModems += "  - port: " + path + "\n"
		if d.proxy && runtime.GOOS == "linux" {
			proxyLink = filepath.Join(dir, "ttyAT0")
			cfgModems += "    proxy_link: " + proxyLink + "\n"
		}
	}
	defer func() {
		for _, s := range sims {
			s.Close()
		}
	}()
	polPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polPath, []byte(demoPolicy), 0o600); err != nil {
		return err
	}
	cfg, err := agent.ParseConfig("demo.yaml", []byte(fmt.Sprintf(`gateway_id: demo-gw-01
state_dir: %s
policy: %s
modems:
%smqtt:
  broker: tcp://%s
report:
  interval: %s
`, filepath.Join(dir, "state"), polPath, cfgModems, tcp.Address(), *interval)))
	if err != nil {
		return err
	}
	pol, err := policy.Load(polPath)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Options{
		Config: cfg, Policy: pol, Version: version, Logger: logger,
		OpenPort: func(path string, baud int) (io.ReadWriteCloser, error) {
			s, ok := sims[path]
			if !ok {
				return nil, fmt.Errorf("%s: no such simulated port", path)
			}
			return s.Pipe(), nil
		},
		HostBytes: func() (uint64, bool) { return 0, false },
		ClockWait: time.Second,
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "modemguard demo: an agent watches %d simulated cellular modules on one gateway, judges them\n", len(demoModems))
	fmt.Fprintf(out, "against a policy and publishes signed, hash-chained reports to an MQTT broker (all in this process).\n\n")
	for _, d := range demoModems {
		fmt.Fprintf(out, "  %-16s %s\n", d.profile, d.role)
	}
	fmt.Fprintf(out, "\nA subscriber on the broker checks every report's signature and chain and prints it. Ctrl-C ends the demo.\n\n")

	runCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(runCtx) }()
	defer func() {
		stopAgent()
		<-agentDone
	}()

	sub := &demoSubscriber{out: out, stateDir: filepath.Join(dir, "state")}
	if err := srv.Subscribe("modemguard/v1/+/report", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		sub.report(bytes.Clone(pk.Payload))
	}); err != nil {
		return err
	}

	var wg sync.WaitGroup
	if proxyLink != "" {
		wg.Go(func() { vendorTool(ctx, out, proxyLink) })
	}
	select {
	case <-ctx.Done():
	case err := <-agentDone:
		agentDone <- err
		if err != nil {
			return err
		}
	}
	wg.Wait()
	received, verified := sub.counts()
	fmt.Fprintf(out, "\ndemo finished: %d reports received, %d verified.\n", received, verified)
	if received > 0 && verified != received {
		return errors.New("some reports did not verify")
	}
	return nil
}

// vendorTool plays software on the gateway that uses the module's own IP
// stack to reach its vendor's cloud — through the AT firewall's pty.
func vendorTool(ctx context.Context, out io.Writer, link string) {
	deadline := time.Now().Add(30 * time.Second)
	var f *os.File
	for {
		var err error
		if f, err = os.OpenFile(link, os.O_RDWR, 0); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(out, "vendor tool: %s never appeared\n", link)
			return
		}
		t := time.NewTimer(100 * time.Millisecond) // waiting for the agent to create the pty
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	defer f.Close()
	t := time.NewTimer(2 * time.Second)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-t.C:
	}
	cmd := `AT+QIOPEN=1,0,"TCP","telemetry.vendor-cloud.example",443,0,1`
	if _, err := f.Write([]byte(cmd + "\r")); err != nil {
		return
	}
	_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 256)
	for !bytes.Contains(got, []byte("ERROR")) && !bytes.Contains(got, []byte("OK")) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	fmt.Fprintf(out, "%s vendor tool on %s sends %s\n         the AT firewall answers %q: the module never saw the command\n\n",
		time.Now().Format("15:04:05"), filepath.Base(link), cmd, strings.TrimSpace(string(got)))
}

// demoSubscriber verifies reports and prints one block per report.
type demoSubscriber struct {
	out      io.Writer
	stateDir string

	mu       sync.Mutex
	verifier *attest.Verifier
	received int
	verified int
}

func (s *demoSubscriber) counts() (received, verified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received, s.verified
}

func (s *demoSubscriber) report(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received++
	if s.verifier == nil {
		// The gateway's key: a real collector has it from enrollment.
		k, err := attest.LoadKey(s.stateDir)
		if err != nil {
			fmt.Fprintf(s.out, "report received, but the gateway key is unreadable: %v\n", err)
			return
		}
		s.verifier = attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(ed25519.PublicKey(k.Public()))})
	}
	v, err := s.verifier.Verify(msg)
	if err != nil {
		fmt.Fprintf(s.out, "%s REJECTED report: %v\n", time.Now().Format("15:04:05"), err)
		return
	}
	s.verified++
	r := v.Report
	why := "interval"
	switch {
	case r.Nonce != nil:
		why = "challenge"
	case r.Seq == 1:
		why = "start"
	case len(r.Events) > 0:
		why = "change"
	}
	fmt.Fprintf(s.out, "%s report #%d from %s (%s): signature ok, chain ok, gateway verdict %s\n",
		time.UnixMilli(r.TimeMS).Format("15:04:05"), r.Seq, r.GatewayID, why, strings.ToUpper(r.Verdict))
	tw := tabwriter.NewWriter(s.out, 0, 0, 2, ' ', 0)
	for _, m := range r.Modules {
		lists := "-"
		if len(m.Lists) > 0 {
			lists = strings.Join(m.Lists, ",")
		}
		decided := ""
		for _, f := range m.Findings {
			if strings.HasPrefix(f.ID, "policy:") {
				decided = strings.TrimPrefix(f.ID, "policy:")
				break
			}
		}
		enf := ""
		if m.Enforcement != "" && m.Enforcement != agent.EnforceNone {
			enf = m.Enforcement
		}
		brand, _, _ := strings.Cut(m.VendorName, " ")
		fmt.Fprintf(tw, "         %s %s\tIMEI %s\t%s\t%s\t%s (%s)\t%s\n", brand, m.Model, m.IMEI,
			m.OriginCountry, lists, strings.ToUpper(m.Verdict), decided, enf)
	}
	_ = tw.Flush()
	for _, e := range r.Events {
		switch e.Kind {
		case agent.EventATFirewall:
			fmt.Fprintf(s.out, "         event: AT firewall %s %s (%s)\n", e.Action, e.Subject, e.Rule)
		case agent.EventEnforced:
			fmt.Fprintf(s.out, "         event: enforcement %s\n", e.Detail)
		default:
			fmt.Fprintf(s.out, "         event: %s %s\n", e.Kind, e.Detail)
		}
	}
	fmt.Fprintln(s.out)
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
