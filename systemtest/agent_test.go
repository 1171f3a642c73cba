//go:build system

package systemtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/uplink"
)

// proc is a child process whose output the test can wait on.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		w.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the process printed want.
func (p *proc) waitOutput(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %q in the output:\n%s", d, want, p.output())
		}
		time.Sleep(20 * time.Millisecond) // a child's output: no event to wait on
	}
}

// gatewayWatch subscribes to a gateway's topics on a real broker and
// verifies every report.
type gatewayWatch struct {
	mu      sync.Mutex
	reports []*attest.Report
	bad     []string
	status  []uplink.Status
	v       *attest.Verifier
	keyDir  string
	client  mqtt.Client
}

func watchGateway(t *testing.T, addr, gateway, keyDir string) *gatewayWatch {
	t.Helper()
	g := &gatewayWatch{keyDir: keyDir}
	g.client = mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("watch-" + gateway))
	if tok := g.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { g.client.Disconnect(100) })
	topics := uplink.TopicsFor(gateway)
	sub := func(topic string, fn mqtt.MessageHandler) {
		if tok := g.client.Subscribe(topic, 1, fn); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	sub(topics.Report, func(_ mqtt.Client, m mqtt.Message) { g.report(m.Payload()) })
	sub(topics.Status, func(_ mqtt.Client, m mqtt.Message) {
		var s uplink.Status
		if json.Unmarshal(m.Payload(), &s) == nil {
			g.mu.Lock()
			g.status = append(g.status, s)
			g.mu.Unlock()
		}
	})
	return g
}

func (g *gatewayWatch) report(msg []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.v == nil {
		k, err := attest.LoadKey(g.keyDir)
		if err != nil {
			g.bad = append(g.bad, "key: "+err.Error())
			return
		}
		g.v = attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(ed25519.PublicKey(k.Public()))})
	}
	got, err := g.v.Verify(msg)
	if err != nil {
		g.bad = append(g.bad, err.Error())
		return
	}
	g.reports = append(g.reports, got.Report)
}

// waitReport waits for a verified report that satisfies ok.
func (g *gatewayWatch) waitReport(t *testing.T, what string, ok func(*attest.Report) bool) *attest.Report {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		g.mu.Lock()
		for _, r := range g.reports {
			if ok(r) {
				g.mu.Unlock()
				return r
			}
		}
		bad := append([]string(nil), g.bad...)
		g.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("reports failed verification: %v", bad)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 60s for a report with %s", what)
		}
		time.Sleep(20 * time.Millisecond) // MQTT callbacks fill the slice
	}
}

// TestAgentEndToEnd runs the real binaries: modemsim on a pty, Mosquitto,
// and `modemguard run`. It swaps the module behind the same device path,
// reloads a broken policy, and stops the agent with SIGTERM.
func TestAgentEndToEnd(t *testing.T) {
	mg := goBuild(t, "./cmd/modemguard", hostArch())
	sim := goBuild(t, "./cmd/modemsim", hostArch())
	br := startMosquitto(t, "")
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB2")
	state := filepath.Join(dir, "state")
	policyFile := filepath.Join(dir, "policy.yaml")
	goodPolicy := "version: 1\nmodules:\n  default: allow\n  rules:\n    - id: covered-list\n      when: {lists: [fcc-covered]}\n      action: deny\non_deny: quarantine\n"
	if err := os.WriteFile(policyFile, []byte(goodPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway_id: gw-e2e
state_dir: %s
policy: %s
modems:
  - port: %s
mqtt:
  broker: tcp://%s
report:
  interval: 2s
`, state, policyFile, link, br.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}

	first := startProc(t, sim, "--profile", "quectel-ec25", "--link", link, "--seed", "21")
	first.waitOutput(t, link, 10*time.Second)
	agent := startProc(t, mg, "run", "--config", cfg, "--log-format", "json")
	agent.waitOutput(t, "agent: running", 30*time.Second)
	w := watchGateway(t, br.Addr, "gw-e2e", state)
	r := w.waitReport(t, "the EC25", func(r *attest.Report) bool { return len(r.Modules) == 1 && r.Modules[0].Vendor == "quectel" })
	oldIMEI := r.Modules[0].IMEI

	// Unplug and plug a different module on the same path.
	start := time.Now()
	_ = first.cmd.Process.Signal(syscall.SIGTERM)
	<-first.done
	second := startProc(t, sim, "--profile", "huawei-me909s", "--link", link, "--seed", "22")
	second.waitOutput(t, link, 10*time.Second)
	r = w.waitReport(t, "the swapped-in ME909s", func(r *attest.Report) bool {
		return len(r.Modules) == 1 && r.Modules[0].Vendor == "huawei"
	})
	t.Logf("re-identified the swapped module %v after the swap", time.Since(start).Round(time.Millisecond))
	m := r.Modules[0]
	if m.Verdict != "deny" || m.Enforcement != "quarantined" {
		t.Errorf("swapped-in covered module: verdict %q enforcement %q", m.Verdict, m.Enforcement)
	}
	swapped := false
	for _, f := range m.Findings {
		swapped = swapped || (f.ID == "module-swapped" && strings.Contains(f.Detail, oldIMEI))
	}
	if !swapped {
		t.Errorf("no module-swapped finding naming %s: %+v", oldIMEI, m.Findings)
	}

	// A broken policy on SIGHUP: the running one stays.
	if err := os.WriteFile(policyFile, []byte("version: 1\nmodules:\n  defualt: allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = agent.cmd.Process.Signal(syscall.SIGHUP)
	agent.waitOutput(t, "keeping the running one", 20*time.Second)
	if !strings.Contains(agent.output(), "policy.yaml:3") {
		t.Errorf("the reload error does not name policy.yaml:3:\n%s", agent.output())
	}
	seqBefore := lastSeq(w)
	w.waitReport(t, "a report after the failed reload", func(r *attest.Report) bool {
		return r.Seq > seqBefore && len(r.Modules) == 1 && r.Modules[0].Verdict == "deny" && len(r.PolicyHash) == 32
	})

	// SIGTERM: a clean exit and a retained offline status.
	_ = agent.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-agent.done:
	case <-time.After(40 * time.Second):
		t.Fatal("the agent did not exit within 40s of SIGTERM")
	}
	if code := agent.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM:\n%s", code, agent.output())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.status)
		last := uplink.Status{}
		if n > 0 {
			last = w.status[n-1]
		}
		w.mu.Unlock()
		if last.State == "offline" && last.Reason == "shutdown" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retained offline status after SIGTERM; last %+v", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A new subscriber sees the retained offline status.
	late := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + br.Addr).SetClientID("late"))
	if tok := late.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer late.Disconnect(100)
	got := make(chan string, 1)
	late.Subscribe(uplink.TopicsFor("gw-e2e").Status, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	select {
	case s := <-got:
		if !strings.Contains(s, `"offline"`) {
			t.Errorf("retained status %s", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained status for a late subscriber")
	}
}

func lastSeq(w *gatewayWatch) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reports) == 0 {
		return 0
	}
	return w.reports[len(w.reports)-1].Seq
}
