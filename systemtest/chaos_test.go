//go:build system

package systemtest

// Chaos tier (issue 8): the real `modemguard run` binary against simulated
// modules on ptys and a real Mosquitto, with faults injected from outside —
// the broker stopped, the agent SIGKILLed, the disk full, the outbox writer
// killed mid-write, the module rebooting, babbling, going silent, vanishing
// and being swapped. Every wait is on a condition with a deadline. The long
// versions are in soak_test.go (make soak).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/uplink"
)

// ---- child processes ----

// chaosProc is a child process whose combined stdout and stderr are kept
// line by line, to wait on and to show when a test fails.
type chaosProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output is read

	mu      sync.Mutex // guards lines and changed
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

// chaosMaxLines bounds the output kept per process (a soak runs for hours).
const chaosMaxLines = 100000

func startChaosProc(t *testing.T, name, bin string, args ...string) *chaosProc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	w.Close()
	p := &chaosProc{name: name, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.add(sc.Text())
		}
		_, _ = io.Copy(io.Discard, r) // a line over 1 MiB: keep draining so the child never blocks
		r.Close()
		_ = cmd.Wait()
		p.mu.Lock()
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL, 10*time.Second)
		if t.Failed() {
			t.Logf("%s (pid %d), last output:\n%s", name, cmd.Process.Pid, p.tail(40))
		}
	})
	return p
}

func (p *chaosProc) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) >= chaosMaxLines {
		p.lines = append(p.lines[:0], p.lines[chaosMaxLines/2:]...)
	}
	p.lines = append(p.lines, line)
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *chaosProc) pid() int { return p.cmd.Process.Pid }

func (p *chaosProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// snapshot returns a copy of the output so far and the channel closed at
// the next line.
func (p *chaosProc) snapshot() ([]string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines), p.changed
}

func (p *chaosProc) tail(n int) string {
	lines, _ := p.snapshot()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitOutput waits until cond holds for the output, failing the test with
// what after d, or at once if the process exits without satisfying it.
func (p *chaosProc) waitOutput(t *testing.T, d time.Duration, what string, cond func(lines []string) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		lines, changed := p.snapshot()
		if cond(lines) {
			return
		}
		if p.exited() {
			t.Fatalf("%s exited (%v) before %s; last output:\n%s", p.name, p.cmd.ProcessState, what, p.tail(40))
		}
		select {
		case <-changed:
		case <-p.done:
		case <-deadline.C:
			t.Fatalf("%s: no %s within %v; last output:\n%s", p.name, what, d, p.tail(40))
		}
	}
}

// stop sends sig and waits up to d for the exit, then SIGKILLs. It does
// nothing when the process has already exited.
func (p *chaosProc) stop(sig syscall.Signal, d time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// ---- the agent ----

// chaosAgent is a running `modemguard run --log-format json`.
type chaosAgent struct {
	*chaosProc
	metrics string // host:port of /metrics
}

func startChaosAgent(t *testing.T, bin, config, metrics string) *chaosAgent {
	t.Helper()
	a := &chaosAgent{chaosProc: startChaosProc(t, "modemguard run", bin, "run", "--config", config, "--log-format", "json"), metrics: metrics}
	a.waitOutput(t, 30*time.Second, `"agent: running"`, func(lines []string) bool { return len(logLines(lines, "agent: running")) > 0 })
	return a
}

// logLine is the part of the agent's JSON log lines the tests read.
type logLine struct {
	Msg string `json:"msg"`
	Seq uint64 `json:"seq"`
	Err string `json:"err"`
}

// logLines returns the JSON log lines whose message is msg.
func logLines(lines []string, msg string) []logLine {
	var out []logLine
	for _, l := range lines {
		if !strings.Contains(l, msg) {
			continue
		}
		var ll logLine
		if json.Unmarshal([]byte(l), &ll) == nil && ll.Msg == msg {
			out = append(out, ll)
		}
	}
	return out
}

// made returns the seqs this agent process committed to its outbox, in
// order ("agent: report made" is logged after Enqueue returned).
func (a *chaosAgent) made() []uint64 {
	lines, _ := a.snapshot()
	var seqs []uint64
	for _, l := range logLines(lines, "agent: report made") {
		seqs = append(seqs, l.Seq)
	}
	return seqs
}

// waitMade waits until this process committed at least n reports.
func (a *chaosAgent) waitMade(t *testing.T, n int, d time.Duration) {
	t.Helper()
	a.waitOutput(t, d, fmt.Sprintf("%d reports made", n), func(lines []string) bool {
		return len(logLines(lines, "agent: report made")) >= n
	})
}

// reportFailures returns the log lines of reports the agent could not make
// or commit.
func (a *chaosAgent) reportFailures() []logLine {
	lines, _ := a.snapshot()
	return append(logLines(lines, "agent: cannot issue a report"), logLines(lines, "agent: cannot commit a report to the outbox")...)
}

// scrape reads /metrics into "name{labels}" -> value.
func (a *chaosAgent) scrape() (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + a.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out, sc.Err()
}

// footprint is what the agent process holds.
type footprint struct {
	Goroutines int   // go_goroutines from /metrics
	FDs        int   // entries in /proc/<pid>/fd
	RSSKiB     int64 // VmRSS from /proc/<pid>/status
}

func (f footprint) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %.1f MiB", f.Goroutines, f.FDs, float64(f.RSSKiB)/1024)
}

// footprint samples five times 200 ms apart and keeps the medians, so one
// scrape landing on a short-lived goroutine (an HTTP handler, a paho
// pinger) does not count as a leak. Sampling, not waiting.
func (a *chaosAgent) footprint(t *testing.T) footprint {
	t.Helper()
	var gs, fds []int
	var rss []int64
	for i := range 5 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		m, err := a.scrape()
		if err != nil {
			t.Fatalf("scrape the agent's /metrics: %v", err)
		}
		gs = append(gs, int(m["go_goroutines"]))
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.pid()))
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, len(ents))
		rss = append(rss, procRSSKiB(t, a.pid()))
	}
	slices.Sort(gs)
	slices.Sort(fds)
	slices.Sort(rss)
	return footprint{Goroutines: gs[2], FDs: fds[2], RSSKiB: rss[2]}
}

func procRSSKiB(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// checkFootprint fails the test when the agent grew beyond small bounds
// since base: a leaked goroutine per fault or a descriptor per reconnect
// shows up after a handful of faults.
func checkFootprint(t *testing.T, what string, base, now footprint) {
	t.Helper()
	t.Logf("footprint %s: before %v; after %v", what, base, now)
	if now.Goroutines > base.Goroutines+6 {
		t.Errorf("%s: goroutines grew from %d to %d (bound +6): a goroutine leaks per fault", what, base.Goroutines, now.Goroutines)
	}
	if now.FDs > base.FDs+3 {
		t.Errorf("%s: open descriptors grew from %d to %d (bound +3): ls -l /proc/PID/fd shows which", what, base.FDs, now.FDs)
	}
	if lim := max(base.RSSKiB*3/2, base.RSSKiB+8<<10); now.RSSKiB > lim {
		t.Errorf("%s: RSS grew from %d KiB to %d KiB (bound %d KiB)", what, base.RSSKiB, now.RSSKiB, lim)
	}
}

// ---- the collector side ----

// chaosSink subscribes to a gateway's reports and status with a persistent
// session, verifies every report (signature and chain) and keeps what
// arrived.
type chaosSink struct {
	cl mqtt.Client
	v  *attest.Verifier

	mu      sync.Mutex // guards the fields below
	count   map[uint64]int
	reports map[uint64]*attest.Report
	gaps    []uint64 // seqs the verifier saw after a gap
	errs    []error  // other verification failures
	status  []uplink.Status
	changed chan struct{}
}

func newChaosSink(t *testing.T, addr, gatewayID string, pub *attest.Key) *chaosSink {
	t.Helper()
	s := &chaosSink{count: map[uint64]int{}, reports: map[uint64]*attest.Report{}, changed: make(chan struct{}),
		v: attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(pub.Public())})}
	topics := uplink.TopicsFor(gatewayID)
	subscribe := func(cl mqtt.Client) mqtt.Token {
		return cl.SubscribeMultiple(map[string]byte{topics.Report: 1, topics.Status: 1}, s.onMessage)
	}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("chaos-sink-" + gatewayID).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true). // the handler never blocks; arrival order is what the chain check sees
		SetOnConnectHandler(func(cl mqtt.Client) { subscribe(cl) })
	s.cl = mqtt.NewClient(opts)
	if tok := s.cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("sink connect to %s: %v", addr, tok.Error())
	}
	if tok := subscribe(s.cl); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("sink subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.cl.Disconnect(100) })
	return s
}

func (s *chaosSink) onMessage(_ mqtt.Client, m mqtt.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		close(s.changed)
		s.changed = make(chan struct{})
	}()
	if strings.HasSuffix(m.Topic(), "/status") {
		var st uplink.Status
		if json.Unmarshal(m.Payload(), &st) == nil {
			s.status = append(s.status, st)
		}
		return
	}
	got, err := s.v.Verify(m.Payload())
	switch {
	case err == nil, errors.Is(err, attest.ErrReplay), errors.Is(err, attest.ErrOutOfOrder):
	case errors.Is(err, attest.ErrGap) && got != nil:
		s.gaps = append(s.gaps, got.Report.Seq)
	default:
		s.errs = append(s.errs, err)
	}
	if got != nil {
		s.count[got.Report.Seq]++
		s.reports[got.Report.Seq] = got.Report
	}
}

// wait waits until cond (called with the sink locked) holds; on timeout it
// fails with what and cond's last explanation.
func (s *chaosSink) wait(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, why := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %s within %v: %s", what, d, why)
		}
	}
}

// waitSeqs waits until every seq in [from, to] except those in skip
// arrived at least once.
func (s *chaosSink) waitSeqs(t *testing.T, from, to uint64, skip map[uint64]bool, d time.Duration) {
	t.Helper()
	s.wait(t, d, fmt.Sprintf("delivery of seqs %d..%d", from, to), func() (bool, string) {
		var missing []uint64
		for q := from; q <= to; q++ {
			if s.count[q] == 0 && !skip[q] {
				missing = append(missing, q)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
}

func (s *chaosSink) maxSeqLocked() uint64 {
	var m uint64
	for q := range s.reports {
		m = max(m, q)
	}
	return m
}

func (s *chaosSink) maxSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSeqLocked()
}

// eventsAfterLocked counts event kinds in reports with seq > after.
func (s *chaosSink) eventsAfterLocked(after uint64) map[string]int {
	kinds := map[string]int{}
	for q, r := range s.reports {
		if q <= after {
			continue
		}
		for _, e := range r.Events {
			kinds[e.Kind]++
		}
	}
	return kinds
}

// summary: duplicates (deliveries beyond the first), gaps and other
// verification errors.
func (s *chaosSink) summary() (dups int, gaps []uint64, errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.count {
		dups += n - 1
	}
	return dups, slices.Clone(s.gaps), slices.Clone(s.errs)
}

// moduleUp says whether a report shows exactly one module of vendor,
// answering (no module-down finding).
func moduleUp(r *attest.Report, vendor string) bool {
	if len(r.Modules) != 1 || r.Modules[0].Vendor != vendor {
		return false
	}
	for _, f := range r.Modules[0].Findings {
		if f.ID == "module-down" {
			return false
		}
	}
	return true
}

// ---- the broker, restartable on a fixed port ----

// chaosBroker is a Mosquitto that can be stopped and started again on the
// same port with its persistence, so a subscriber's session and what was
// queued for it survive the outage.
type chaosBroker struct {
	port int
	conf string
	m    *mosquitto
}

func startChaosBroker(t *testing.T) *chaosBroker {
	t.Helper()
	persist := t.TempDir()
	b := &chaosBroker{port: freePort(t)}
	b.conf = fmt.Sprintf("listener %d 127.0.0.1\npersistence true\npersistence_location %s/\n", b.port, persist)
	b.m = startMosquitto(t, b.conf)
	return b
}

func (b *chaosBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// stop ends the broker with SIGTERM (it saves its persistence file).
func (b *chaosBroker) stop(t *testing.T) {
	t.Helper()
	if err := b.m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _ = b.m.cmd.Process.Wait()
}

func (b *chaosBroker) start(t *testing.T) {
	t.Helper()
	b.m = startMosquitto(t, b.conf)
}

// ---- the simulated module and the agent's configuration ----

// startChaosSim serves profile on a new pty linked at link and waits until
// the link exists.
func startChaosSim(t *testing.T, bin, link, profile string, seed int, extra ...string) *chaosProc {
	t.Helper()
	args := append([]string{"--profile", profile, "--link", link, "--seed", strconv.Itoa(seed)}, extra...)
	p := startChaosProc(t, "modemsim "+profile, bin, args...)
	p.waitOutput(t, 10*time.Second, "pty link "+link, func(lines []string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, link+" -> /dev/pts/") })
	})
	return p
}

type chaosBins struct{ agent, sim string }

func buildChaosBins(t *testing.T) chaosBins {
	t.Helper()
	return chaosBins{agent: goBuild(t, "./cmd/modemguard", runtime.GOARCH), sim: goBuild(t, "./cmd/modemsim", runtime.GOARCH)}
}

// chaosGateway is the on-disk side of one agent: its state directory with a
// signing key made before the agent starts (so the sink can verify from the
// first report), its configuration and metrics address.
type chaosGateway struct {
	id, dir, state, link, config, metrics string
	key                                   *attest.Key
}

func newChaosGateway(t *testing.T, id, broker string, mountState func(dir string)) *chaosGateway {
	t.Helper()
	g := &chaosGateway{id: id, dir: t.TempDir()}
	g.state = filepath.Join(g.dir, "state")
	g.link = filepath.Join(g.dir, "ttyUSB2")
	g.metrics = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := os.MkdirAll(g.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if mountState != nil {
		mountState(g.state)
	}
	var err error
	if g.key, _, err = attest.LoadOrCreateKey(g.state); err != nil {
		t.Fatal(err)
	}
	g.config = filepath.Join(g.dir, "config.yaml")
	cfg := fmt.Sprintf("gateway_id: %s\nstate_dir: %s\nmodems:\n  - port: %s\nmqtt:\n  broker: tcp://%s\nreport:\n  interval: 1s\nmetrics:\n  listen: %s\n",
		id, g.state, g.link, broker, g.metrics)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// chainHead reads the seq of the last report the agent issued.
func (g *chaosGateway) chainHead(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.state, attest.ChainFile))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%s: %v", attest.ChainFile, err)
	}
	return st.Seq
}

// ---- 1. broker outage ----

// TestChaosBrokerOutage: reports every second; Mosquitto stopped; the agent
// SIGKILLed during the outage and started again; Mosquitto back. Every
// committed seq from 1 to the last is delivered and verifies (signature and
// chain); duplicates are counted.
func TestChaosBrokerOutage(t *testing.T) {
	bins := buildChaosBins(t)
	br := startChaosBroker(t)
	g := newChaosGateway(t, "gw-chaos-outage", br.addr(), nil)
	sink := newChaosSink(t, br.addr(), g.id, g.key)
	startChaosSim(t, bins.sim, g.link, "quectel-ec25", 1)

	a1 := startChaosAgent(t, bins.agent, g.config, g.metrics)
	sink.waitSeqs(t, 1, 3, nil, 60*time.Second)

	br.stop(t)
	outage := time.Now()
	before := len(a1.made())
	a1.waitMade(t, before+4, 30*time.Second)
	a1.stop(syscall.SIGKILL, 10*time.Second)
	killed := a1.made()
	lastKilled := killed[len(killed)-1]
	t.Logf("broker down; agent SIGKILLed after committing seq %d (%d reports made during the outage)", lastKilled, len(killed)-before)

	a2 := startChaosAgent(t, bins.agent, g.config, g.metrics)
	a2.waitMade(t, 5, 30*time.Second)
	first := a2.made()[0]
	// A seq issued (chain head saved) but not yet committed to the outbox
	// when the SIGKILL landed is lost by design (attest.Chain.Issue): the
	// verifier sees a gap, never a replay or fork.
	lostByKill := map[uint64]bool{}
	for q := lastKilled + 1; q < first; q++ {
		lostByKill[q] = true
	}
	if len(lostByKill) > 1 {
		t.Errorf("restarted agent began at seq %d after seq %d: more than one seq lost to one SIGKILL", first, lastKilled)
	}

	br.start(t)
	t.Logf("broker back after %v", time.Since(outage).Round(100*time.Millisecond))
	lines, _ := a2.snapshot()
	reconnected := len(logLines(lines, "uplink: connected"))
	a2.waitOutput(t, 3*time.Minute, "reconnection to the broker", func(lines []string) bool {
		return len(logLines(lines, "uplink: connected")) > reconnected
	})
	mid := a2.made()
	sink.waitSeqs(t, 1, mid[len(mid)-1], lostByKill, 60*time.Second)

	// SIGTERM: the agent flushes its outbox and exits 0.
	a2.stop(syscall.SIGTERM, 30*time.Second)
	if code := a2.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("agent exit code %d after SIGTERM", code)
	}
	head := g.chainHead(t)
	sink.waitSeqs(t, 1, head, lostByKill, 30*time.Second)

	dups, gaps, errs := sink.summary()
	for _, err := range errs {
		t.Errorf("verification: %v", err)
	}
	for _, q := range gaps {
		if !lostByKill[q-1] {
			t.Errorf("the verifier saw a gap before seq %d, which no SIGKILL explains", q)
		}
	}
	t.Logf("seqs 1..%d delivered and verified across a broker outage and a SIGKILL: %d duplicates, %d lost between issue and commit by the kill %v",
		head, dups, len(lostByKill), slices.Sorted(mapKeys(lostByKill)))
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ---- 1b. full disk under the outbox ----

// mountTmpfs mounts a tmpfs of size on dir and unmounts it when the test
// ends (after every process started later is stopped: cleanups run last
// in, first out).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	requireRoot(t)
	requireTool(t, "mount", "mount")
	run(t, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "chaos-tmpfs", dir)
	t.Cleanup(func() {
		if b, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, b)
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}

// fillDisk writes a file in dir until the file system is full and returns
// its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestChaosFullDisk: the state directory (outbox, chain head) is a 2 MiB
// tmpfs. The broker goes away so the outbox must grow, then the disk is
// filled. The agent must not crash, must keep serving /metrics, must count
// and report the reports it could not keep, and must resume once space is
// back; every report it did commit is delivered.
func TestChaosFullDisk(t *testing.T) {
	bins := buildChaosBins(t)
	br := startChaosBroker(t)
	g := newChaosGateway(t, "gw-chaos-disk", br.addr(), func(dir string) { mountTmpfs(t, dir, "2m") })
	sink := newChaosSink(t, br.addr(), g.id, g.key)
	startChaosSim(t, bins.sim, g.link, "quectel-ec25", 1)
	a := startChaosAgent(t, bins.agent, g.config, g.metrics)
	sink.waitSeqs(t, 1, 3, nil, 60*time.Second)

	br.stop(t)
	a.waitMade(t, len(a.made())+2, 30*time.Second)
	// A 16 KiB reserve kept aside while the disk fills: freeing it later
	// leaves room for the small chain head but not for the outbox to grow,
	// so the outbox's own write path meets ENOSPC too.
	reserve := filepath.Join(g.state, "reserve")
	if err := os.WriteFile(reserve, make([]byte, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	filler := fillDisk(t, g.state)
	fullAt := len(a.made())
	a.waitOutput(t, 30*time.Second, "three reports refused by the full disk", func([]string) bool { return len(a.reportFailures()) >= 3 })
	if err := os.Remove(reserve); err != nil {
		t.Fatal(err)
	}
	n := len(a.reportFailures())
	a.waitOutput(t, 30*time.Second, "three more reports refused by the nearly full disk", func([]string) bool { return len(a.reportFailures()) >= n+3 })
	if a.exited() {
		t.Fatalf("the agent exited on a full disk: %v", a.cmd.ProcessState)
	}
	m, err := a.scrape()
	if err != nil {
		t.Fatalf("/metrics on a full disk: %v", err)
	}
	failures := a.reportFailures()
	commitFailures := 0
	for _, f := range failures {
		if strings.Contains(f.Err, "outbox") {
			commitFailures++
		}
	}
	t.Logf("disk full: %d reports refused, %d of them by the outbox (first: %s), %d committed; metrics: made %v, dropped %v, outbox depth %v",
		len(failures), commitFailures, failures[0].Err, len(a.made())-fullAt, m["modemguard_reports_made_total"], m["modemguard_reports_dropped_total"], m["modemguard_outbox_depth"])

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	refused := len(a.reportFailures())
	a.waitMade(t, len(a.made())+2, 30*time.Second)
	br.start(t)
	made := a.made()
	sink.waitSeqs(t, made[len(made)-1], made[len(made)-1], nil, 3*time.Minute)
	// Every committed report arrives; seqs issued but not committed (the
	// outbox refused them) are the only ones allowed to be missing.
	committed := map[uint64]bool{}
	for _, q := range made {
		committed[q] = true
	}
	notCommitted := map[uint64]bool{}
	for q := uint64(1); q <= made[len(made)-1]; q++ {
		if !committed[q] {
			notCommitted[q] = true
		}
	}
	sink.waitSeqs(t, 1, made[len(made)-1], notCommitted, 60*time.Second)
	if a.exited() {
		t.Fatalf("the agent exited: %v", a.cmd.ProcessState)
	}
	_, gaps, errs := sink.summary()
	for _, err := range errs {
		t.Errorf("verification: %v", err)
	}

	// The loss must be visible to the collector: an outbox-dropped event
	// in a report, the dropped count in the status, or the metric.
	m, err = a.scrape()
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	events := sink.eventsAfterLocked(0)
	var statusDropped uint64
	for _, st := range sink.status {
		if st.Dropped != nil {
			statusDropped = max(statusDropped, *st.Dropped)
		}
	}
	sink.mu.Unlock()
	t.Logf("after the disk came back: %d reports refused in all, %d seqs issued but never committed %v, gaps seen by the verifier before %v; "+
		"reports carried events %v; status dropped %d; modemguard_reports_dropped_total %v",
		refused, len(notCommitted), slices.Sorted(mapKeys(notCommitted)), gaps, events, statusDropped, m["modemguard_reports_dropped_total"])
	if events[attest.EventOutboxDropped] == 0 && statusDropped == 0 && m["modemguard_reports_dropped_total"] == 0 {
		t.Errorf("the agent lost %d reports to the full disk (%q) but reported no drop: no %q event in any report, status dropped 0, "+
			"modemguard_reports_dropped_total 0 — agent.report logs the failure and returns without counting it",
			refused, failures[0].Err, attest.EventOutboxDropped)
	}
}

// ---- 2. power loss on the outbox ----

// TestChaosOutboxPowerLoss: a helper process enqueues (and acknowledges)
// as fast as it can and is SIGKILLed at a random moment, 200 times on the
// same file; after each kill the outbox opens, was not moved aside as
// corrupt, holds every seq reported committed (with its payload intact)
// and none reported acknowledged.
func TestChaosOutboxPowerLoss(t *testing.T) {
	outboxPowerLoss(t, 200, 2*time.Minute)
}

// outboxPowerLoss runs up to iterations kills within budget.
// MODEMGUARD_CHAOS_SEED replays a run.
func outboxPowerLoss(t *testing.T, iterations int, budget time.Duration) {
	bin := goBuild(t, "./systemtest/testdata/outboxwriter", runtime.GOARCH)
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MODEMGUARD_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MODEMGUARD_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (MODEMGUARD_CHAOS_SEED=%d replays this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	present := map[uint64]bool{} // committed and never handed to Ack
	gone := map[uint64]bool{}    // Ack returned
	var lastCommitted uint64
	var beforeOpen, duringWrites, commits, acks int
	deadline := time.Now().Add(budget)
	i := 0
	for ; i < iterations && time.Now().Before(deadline); i++ {
		lines, stderr, killedEarly := killOutboxWriter(t, bin, path, rng)
		opened := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue // a line cut by the kill
			}
			q, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "open":
				opened = true
				if q < lastCommitted {
					t.Fatalf("iteration %d: the outbox opened with last seq %d, below seq %d reported committed before", i, q, lastCommitted)
				}
			case "commit":
				commits++
				present[q] = true
				lastCommitted = max(lastCommitted, q)
			case "ack-start":
				delete(present, q) // may or may not be gone after a kill
			case "ack":
				acks++
				gone[q] = true
			}
		}
		if killedEarly != "" {
			t.Fatalf("iteration %d: the writer exited by itself (%s):\n%s", i, killedEarly, stderr)
		}
		if opened {
			duringWrites++
		} else {
			beforeOpen++
		}
		checkOutboxAfterKill(t, i, path, present, gone, lastCommitted)
	}
	if i < iterations {
		t.Logf("time budget %v reached after %d of %d iterations", budget, i, iterations)
	}
	t.Logf("%d SIGKILLs (%d before the outbox was open, %d while writing): %d commits and %d acks reported; the outbox opened every time and held every committed seq (%d queued at the end, last seq %d)",
		i, beforeOpen, duringWrites, commits, acks, len(present), lastCommitted)
}

// killOutboxWriter starts the writer, kills it at a random moment and
// returns its stdout lines and stderr; early is set when it exited before
// the kill.
func killOutboxWriter(t *testing.T, bin, path string, rng *rand.Rand) (lines []string, stderr string, early string) {
	t.Helper()
	cmd := exec.Command(bin, path, strconv.FormatUint(rng.Uint64(), 10))
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	openSeen := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			once.Do(func() { close(openSeen) })
		}
	}()
	// Half the kills land anywhere from exec on (start-up, open, recovery),
	// half in the write loop at a random point after the open.
	if rng.IntN(2) == 0 {
		time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
	} else {
		select {
		case <-openSeen:
		case <-readDone:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-readDone
			_ = cmd.Wait()
			t.Fatalf("the outbox writer did not open %s within 10s: %s", path, errBuf.String())
		}
		time.Sleep(time.Duration(rng.Int64N(int64(40 * time.Millisecond))))
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-readDone
	werr := cmd.Wait()
	var ee *exec.ExitError
	if werr != nil && errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return lines, errBuf.String(), ""
		}
	}
	return lines, errBuf.String(), fmt.Sprintf("%v", werr)
}

func checkOutboxAfterKill(t *testing.T, i int, path string, present, gone map[uint64]bool, lastCommitted uint64) {
	t.Helper()
	ob, err := uplink.OpenOutbox(path, uplink.OutboxConfig{})
	if err != nil {
		t.Fatalf("iteration %d: the outbox does not open after SIGKILL: %v", i, err)
	}
	defer ob.Close()
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) > 0 {
		t.Fatalf("iteration %d: the outbox was moved aside as corrupt after SIGKILL: %v", i, aside)
	}
	st := ob.Stats()
	if st.LastSeq < lastCommitted {
		t.Fatalf("iteration %d: last seq %d below seq %d reported committed", i, st.LastSeq, lastCommitted)
	}
	if st.Dropped != 0 {
		t.Fatalf("iteration %d: %d entries dropped (checksum or bounds) after SIGKILL", i, st.Dropped)
	}
	entries, err := ob.Peek(1 << 20)
	if err != nil {
		t.Fatalf("iteration %d: peek: %v", i, err)
	}
	have := map[uint64]bool{}
	for _, e := range entries {
		have[e.Seq] = true
		for k, c := range e.Payload {
			if c != byte(e.Seq)+byte(k) {
				t.Fatalf("iteration %d: seq %d: payload byte %d is %#x, want %#x", i, e.Seq, k, c, byte(e.Seq)+byte(k))
			}
		}
		if gone[e.Seq] {
			t.Fatalf("iteration %d: seq %d is back after its Ack returned", i, e.Seq)
		}
	}
	var missing []uint64
	for q := range present {
		if !have[q] {
			missing = append(missing, q)
		}
	}
	if len(missing) > 0 {
		sort.Slice(missing, func(a, b int) bool { return missing[a] < missing[b] })
		t.Fatalf("iteration %d: seqs reported committed are missing after SIGKILL: %v", i, missing)
	}
}

// ---- 3. modem faults ----

// TestChaosModemFaults runs one cycle of module faults against the agent
// (make soak runs cycles for MODEMGUARD_SOAK_DURATION).
func TestChaosModemFaults(t *testing.T) {
	modemFaults(t, 1, 0)
}

// faultRig is what a fault cycle works on.
type faultRig struct {
	bins     chaosBins
	g        *chaosGateway
	sink     *chaosSink
	a        *chaosAgent
	sim      *chaosProc
	scenario string
}

// swapSim replaces the process serving the link: SIGTERM (modemsim
// removes the link) or SIGKILL (the link dangles: the pty vanished).
func (r *faultRig) swapSim(t *testing.T, sig syscall.Signal, profile string, seed int, args ...string) {
	t.Helper()
	r.sim.stop(sig, 10*time.Second)
	r.sim = startChaosSim(t, r.bins.sim, r.g.link, profile, seed, args...)
}

// waitUp waits for a report after seq after showing one module of vendor
// answering.
func (r *faultRig) waitUp(t *testing.T, what, vendor string, after uint64) {
	t.Helper()
	r.sink.wait(t, 90*time.Second, what, func() (bool, string) {
		for q := r.sink.maxSeqLocked(); q > after; q-- {
			if rep := r.sink.reports[q]; rep != nil {
				return moduleUp(rep, vendor), fmt.Sprintf("latest report seq %d: %+v", q, rep.Modules)
			}
		}
		return false, fmt.Sprintf("no report after seq %d", after)
	})
}

// waitEvent waits for an event whose kind starts with kind and whose detail contains detail in a
// report after seq after, and returns the detail.
func (r *faultRig) waitEvent(t *testing.T, what, kind, detail string, after uint64, d time.Duration) string {
	t.Helper()
	var got string
	r.sink.wait(t, d, what, func() (bool, string) {
		kinds := map[string]int{}
		for q, rep := range r.sink.reports {
			if q <= after {
				continue
			}
			for _, e := range rep.Events {
				kinds[e.Kind]++
				if strings.HasPrefix(e.Kind, kind) && strings.Contains(strings.ToLower(e.Detail), detail) {
					got = e.Detail
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("reports after seq %d carried %v", after, kinds)
	})
	return got
}

// faultCycle puts the module through every fault once. After each, the
// agent must have reported it and identify the module again.
func (r *faultRig) faultCycle(t *testing.T, cycle int) {
	t.Helper()
	step := func(name string) uint64 {
		if r.a.exited() {
			t.Fatalf("cycle %d, before %s: the agent exited: %v", cycle, name, r.a.cmd.ProcessState)
		}
		return r.sink.maxSeq()
	}

	// Garbage bursts, answers delivered byte by byte, URCs in the middle of
	// answers: the engine must identify the module through all of it. The
	// same module then reboots three times while the agent talks to it (it
	// sends ~20 commands a second while identifying); a simulated USB
	// module re-enumerates, so the agent sees a reset or a lost port.
	from := step("garbage")
	r.swapSim(t, syscall.SIGTERM, "quectel-ec25", 1, "--faults", "garbage=0.1,split=1,urc-mid=0.2", "--scenario", r.scenario)
	r.waitUp(t, fmt.Sprintf("cycle %d: identification through garbage bursts, byte-by-byte answers and URCs mid-answer", cycle), "quectel", from+1)
	t.Logf("cycle %d: identified through garbage, split=1 and URCs mid-answer", cycle)
	from = r.sink.maxSeq()
	d := r.waitEvent(t, fmt.Sprintf("cycle %d: a module-reset or module-lost event after reboots mid-command", cycle), "module-", "", from, 90*time.Second)
	r.waitUp(t, fmt.Sprintf("cycle %d: identification after the reboots", cycle), "quectel", r.sink.maxSeq())
	t.Logf("cycle %d: reboot mid-command reported (%s) and recovered", cycle, d)

	// Answers that never come: the command times out, the session is
	// reported lost, and the agent identifies the module again.
	from = step("drops")
	r.swapSim(t, syscall.SIGTERM, "quectel-ec25", 1, "--faults", "drop=0.03")
	d = r.waitEvent(t, fmt.Sprintf("cycle %d: a module-lost event naming the unanswered command", cycle), "module-lost", "no final result code", from, 2*time.Minute)
	r.swapSim(t, syscall.SIGTERM, "quectel-ec25", 1)
	r.waitUp(t, fmt.Sprintf("cycle %d: identification after dropped answers", cycle), "quectel", r.sink.maxSeq())
	t.Logf("cycle %d: dropped answers reported (%s) and recovered", cycle, d)

	// The pty vanishes (modemsim SIGKILLed, the link left dangling), then
	// the module returns on a new pty behind the same link.
	from = step("vanish")
	r.sim.stop(syscall.SIGKILL, 10*time.Second)
	r.sink.wait(t, 60*time.Second, fmt.Sprintf("cycle %d: a report of the module down after its pty vanished", cycle), func() (bool, string) {
		rep := r.sink.reports[r.sink.maxSeqLocked()]
		return r.sink.maxSeqLocked() > from && rep != nil && !moduleUp(rep, "quectel"), "the module is still reported up"
	})
	r.waitEvent(t, fmt.Sprintf("cycle %d: a module-lost event after the pty vanished", cycle), "module-lost", "", from, 30*time.Second)
	r.sim = startChaosSim(t, r.bins.sim, r.g.link, "quectel-ec25", 1)
	r.waitUp(t, fmt.Sprintf("cycle %d: identification after the pty returned", cycle), "quectel", r.sink.maxSeq())
	t.Logf("cycle %d: pty vanished, reported down, and came back", cycle)

	// Another module on the same port, then the original one back.
	for _, sw := range []struct {
		profile, vendor string
		seed            int
	}{{"huawei-me909s", "huawei", 2}, {"quectel-ec25", "quectel", 1}} {
		from = step("swap")
		r.swapSim(t, syscall.SIGTERM, sw.profile, sw.seed)
		d = r.waitEvent(t, fmt.Sprintf("cycle %d: a module-swapped event for %s", cycle, sw.profile), "module-swapped", "", from, 90*time.Second)
		r.waitUp(t, fmt.Sprintf("cycle %d: %s identified", cycle, sw.profile), sw.vendor, from)
		t.Logf("cycle %d: swap reported: %s", cycle, d)
	}
}

// modemFaults runs the fault cycle cycles times, or until soak has passed
// when soak > 0, and checks that goroutines, descriptors and memory stay
// flat.
func modemFaults(t *testing.T, cycles int, soak time.Duration) {
	bins := buildChaosBins(t)
	br := startMosquitto(t, "")
	g := newChaosGateway(t, "gw-chaos-modem", br.Addr, nil)
	r := &faultRig{bins: bins, g: g, sink: newChaosSink(t, br.Addr, g.id, g.key), scenario: filepath.Join(g.dir, "reboots.scenario")}
	if err := os.WriteFile(r.scenario, []byte("# after the agent reopened the port (its back-off reaches 30 s)\n30s reboot\n36s reboot\n42s reboot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sim = startChaosSim(t, bins.sim, g.link, "quectel-ec25", 1)
	r.a = startChaosAgent(t, bins.agent, g.config, g.metrics)
	r.waitUp(t, "the EC25 identified", "quectel", 0)
	r.a.waitMade(t, len(r.a.made())+3, 30*time.Second)
	base := r.a.footprint(t)
	t.Logf("baseline: %v", base)

	var firstCycle footprint
	start := time.Now()
	for cycle := 1; ; cycle++ {
		if (soak > 0 && time.Since(start) > soak) || (soak == 0 && cycle > cycles) {
			break
		}
		r.faultCycle(t, cycle)
		r.a.waitMade(t, len(r.a.made())+2, 30*time.Second)
		now := r.a.footprint(t)
		if cycle == 1 {
			firstCycle = now
		}
		t.Logf("cycle %d done at %v: %v", cycle, time.Since(start).Round(time.Second), now)
	}
	end := r.a.footprint(t)
	checkFootprint(t, "across the fault cycles", base, end)
	if soak > 0 {
		checkFootprint(t, "from the end of the first cycle to the end of the soak", firstCycle, end)
	}
	m, err := r.a.scrape()
	if err != nil {
		t.Fatal(err)
	}
	_, gaps, errs := r.sink.summary()
	for _, err := range errs {
		t.Errorf("verification: %v", err)
	}
	if len(gaps) > 0 {
		t.Errorf("the verifier saw gaps before seqs %v; no report should be lost here", gaps)
	}
	t.Logf("reports made %v, sent %v; AT commands in the last session %v",
		m["modemguard_reports_made_total"], m["modemguard_reports_sent_total"], m[`modemguard_at_commands_total{slot="0"}`])
}
