//go:build system

package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/modemguard/modemguard/attest"
	mgcollector "github.com/modemguard/modemguard/collector"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// startPostgres runs a private PostgreSQL cluster on a free loopback port
// in a directory of its own, as the postgres user (PostgreSQL refuses to run
// as root), and returns its DSN. The cluster is removed when the test ends.
func startPostgres(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("starting PostgreSQL needs root (to run it as the postgres user); run make test-system as root")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		tb.Fatal("initdb not found under /usr/lib/postgresql/*/bin: apt-get install -y postgresql (or run .ci/run)")
	}
	binDir := filepath.Dir(bins[len(bins)-1])
	if _, err := exec.LookPath("runuser"); err != nil {
		tb.Fatal("runuser not found: apt-get install -y util-linux")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("no postgres user: apt-get install -y postgresql: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: its parent is mode 0700 and root's, so the postgres
	// user could not reach it.
	dir, err := os.MkdirTemp("", "modemguard-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pgRun := func(args ...string) string {
		tb.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		if err != nil {
			tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	pgRun(filepath.Join(binDir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", port, dir)
	pgRun(filepath.Join(binDir, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
	tb.Cleanup(func() {
		cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(binDir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		if b, err := cmd.CombinedOutput(); err != nil {
			tb.Errorf("pg_ctl stop: %v\n%s", err, b)
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// collLog routes a collector's log into the test output.
type collLog struct{ tb testing.TB }

func (l collLog) Write(p []byte) (int, error) {
	l.tb.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// startCollector runs an in-process collector until the test ends.
func startCollector(t *testing.T, name string, cfg mgcollector.Config) *mgcollector.Collector {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(collLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("instance", name)
	cfg.BackoffMin, cfg.BackoffMax = 50*time.Millisecond, time.Second
	c, err := mgcollector.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("collector %s did not stop", name)
		}
		c.Close()
	})
	return c
}

// eventually polls cond with a deadline: database rows have no event.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func collGateway(c *mgcollector.Collector, id string) *mgcollector.GatewayDetail {
	d, err := c.Store().GatewayDetail(context.Background(), id, 0)
	if err != nil {
		return nil
	}
	return d
}

// scrape sums the samples of a metric family (all label values).
func scrape(t *testing.T, c *mgcollector.Collector, family string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var sum float64
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || (name != family && !strings.HasPrefix(name, family+"{")) {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		sum += v
	}
	return sum
}

// TestCollectorFleet: the real agent on the simulator publishes to a real
// Mosquitto; two collectors share the reports through $share and one
// PostgreSQL; reports forged, replayed and with a gap, injected on the
// broker, are each recorded; every report is stored exactly once.
func TestCollectorFleet(t *testing.T) {
	mg := goBuild(t, "./cmd/modemguard", hostArch())
	sim := goBuild(t, "./cmd/modemsim", hostArch())
	br := startMosquitto(t, "")
	dsn := startPostgres(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyUSB2")
	state := filepath.Join(dir, "state")

	// Enroll the agent's key before it first starts, as an installer would.
	pub := lastLine(run(t, mg, "pubkey", "--state-dir", state, "--create")) // stderr says a key was generated
	inj := collectortest.NewGateway(t, "gw-inject")
	burst := collectortest.NewGateway(t, "gw-burst")
	keys := filepath.Join(dir, "gateways.keys")
	if err := os.WriteFile(keys, []byte("# system test\ngw-sys "+pub+"\n"+inj.Enrollment()+burst.Enrollment()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := func(i int) mgcollector.Config {
		return mgcollector.Config{Broker: "tcp://" + br.Addr, ShareGroup: "collectors", ClientID: fmt.Sprintf("collector-%d", i),
			Database: dsn, KeysFile: keys}
	}
	c0 := startCollector(t, "c0", cfg(0))
	c1 := startCollector(t, "c1", cfg(1))
	eventually(t, 20*time.Second, "both collectors connected", func() bool { return c0.Connected() && c1.Connected() })

	agentCfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(agentCfg, []byte(fmt.Sprintf("gateway_id: gw-sys\nstate_dir: %s\nmodems:\n  - port: %s\nmqtt:\n  broker: tcp://%s\nreport:\n  interval: 1s\n", state, link, br.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	simProc := startProc(t, sim, "--profile", "quectel-ec25", "--link", link, "--seed", "31")
	simProc.waitOutput(t, link, 10*time.Second)
	agent := startProc(t, mg, "run", "--config", agentCfg, "--log-format", "json")

	// Capture the agent's real envelopes to replay and forge them.
	watch := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + br.Addr).SetClientID("sys-watch"))
	if tok := watch.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher: %v", tok.Error())
	}
	defer watch.Disconnect(100)
	captured := make(chan []byte, 64)
	if tok := watch.Subscribe("modemguard/v1/gw-sys/report", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case captured <- bytes.Clone(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watch subscribe: %v", tok.Error())
	}
	eventually(t, 60*time.Second, "the agent's reports in the inventory", func() bool {
		g := collGateway(c0, "gw-sys")
		return g != nil && g.LastSeq >= 3 && len(g.Modules) == 1 && g.Modules[0].Vendor == "quectel" && g.Online != nil && *g.Online
	})
	var real []byte
	select {
	case real = <-captured:
	case <-time.After(10 * time.Second):
		t.Fatal("no report captured")
	}

	publish := func(topic string, payload []byte) {
		t.Helper()
		if tok := watch.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	before := collGateway(c0, "gw-sys")
	// Replayed: a real report again.
	publish("modemguard/v1/gw-sys/report", real)
	// Forged: one byte of the body changed.
	env, err := attest.DecodeEnvelope(real)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Clone(env.Body)
	i := bytes.Index(body, []byte("EC25"))
	body[i+3] = '6'
	forged, err := (&attest.Envelope{V: env.V, Alg: env.Alg, Kid: env.Kid, Body: body, Sig: env.Sig}).MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	publish("modemguard/v1/gw-sys/report", forged)
	// A gap: seq 1 and 3 of another enrolled gateway.
	publish("modemguard/v1/gw-inject/report", inj.Next(t, nil))
	inj.Skip(t)
	publish("modemguard/v1/gw-inject/report", inj.Next(t, nil))

	reasons := func() map[string]int {
		rs, err := c0.Store().Rejections(context.Background(), "gw-sys", 100)
		if err != nil {
			return nil
		}
		m := map[string]int{}
		for _, r := range rs {
			m[r.Reason]++
		}
		return m
	}
	eventually(t, 20*time.Second, "the replay and the forgery recorded", func() bool {
		m := reasons()
		return m[mgcollector.ReasonReplay] >= 1 && m[mgcollector.ReasonBadSignature] == 1
	})
	eventually(t, 20*time.Second, "the gap recorded", func() bool {
		g := collGateway(c1, "gw-inject")
		return g != nil && g.LastSeq == 3 && g.Chain == mgcollector.ChainGap && g.Missing == 1 && len(g.ChainEvents) == 1
	})
	if g := collGateway(c0, "gw-sys"); g.Trust != "enrolled" || g.Modules[0].Model != before.Modules[0].Model || g.Chain != mgcollector.ChainOK {
		t.Fatalf("the forgery touched the inventory: %+v", g.Gateway)
	}

	// Stop the agent, then count: every burst report exactly once.
	_ = agent.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-agent.done:
	case <-time.After(40 * time.Second):
		t.Fatal("agent did not stop")
	}
	eventually(t, 20*time.Second, "the agent's offline status", func() bool {
		g := collGateway(c0, "gw-sys")
		return g.Online != nil && !*g.Online
	})
	eventually(t, 10*time.Second, "the agent's last reports settled", func() bool {
		g := collGateway(c0, "gw-sys")
		rs, _ := c0.Store().Reports(context.Background(), "gw-sys", 1)
		return len(rs) == 1 && rs[0].Seq == g.LastSeq
	})
	handled := func() float64 {
		var n float64
		for _, c := range []*mgcollector.Collector{c0, c1} {
			n += scrape(t, c, "modemguard_collector_reports_accepted_total") + scrape(t, c, "modemguard_collector_reports_rejected_total")
		}
		return n
	}
	base := handled()
	base0 := scrape(t, c0, "modemguard_collector_reports_accepted_total")
	const n = 300
	for range n {
		publish("modemguard/v1/gw-burst/report", burst.Next(t, nil))
	}
	eventually(t, 60*time.Second, "every burst report stored", func() bool {
		rs, err := c0.Store().Reports(context.Background(), "gw-burst", 1000)
		return err == nil && len(rs) == n
	})
	eventually(t, 10*time.Second, "the counters settled", func() bool { return handled()-base == n })
	share0 := scrape(t, c0, "modemguard_collector_reports_accepted_total") - base0
	if share0 == 0 || share0 == n {
		t.Errorf("the shared subscription did not split the reports: c0 took %v of %d", share0, n)
	}
	if rs, _ := c0.Store().Rejections(context.Background(), "gw-burst", 10); len(rs) != 0 {
		t.Fatalf("burst rejections (a duplicate would be a replay): %+v", rs)
	}
	g := collGateway(c0, "gw-burst")
	t.Logf("burst of %d: c0 stored %v, c1 %v; chain %s, missing %d", n, share0, n-share0, g.Chain, g.Missing)
	if g.LastSeq != n || g.Reports != n || g.Missing != 0 {
		t.Fatalf("gw-burst: %+v", g.Gateway)
	}
}

// TestCollectorWebPage checks the page in headless Chromium through
// chromedriver's WebDriver HTTP API (W3C WebDriver, www.w3.org/TR/webdriver2):
// it loads, shows the fleet, and the filter narrows the table.
func TestCollectorWebPage(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	driver := requireTool(t, "chromedriver", "chromium-driver")
	db := "sqlite://" + filepath.Join(t.TempDir(), "web.db")
	var gws []*collectortest.Gateway
	for i := range 12 {
		gws = append(gws, collectortest.NewGateway(t, fmt.Sprintf("gw-%02d", i)))
	}
	keys := filepath.Join(t.TempDir(), "keys")
	var kb strings.Builder
	for _, g := range gws {
		kb.WriteString(g.Enrollment())
	}
	if err := os.WriteFile(keys, []byte(kb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := mgcollector.New(context.Background(), mgcollector.Config{Database: db, KeysFile: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, g := range gws {
		edit := func(r *attest.Report) {
			r.TimeMS = time.Now().UnixMilli()
			if i%3 == 1 {
				r.Modules[0].Manufacturer, r.Modules[0].Model, r.Modules[0].Vendor, r.Modules[0].VendorName, r.Modules[0].OriginCountry = "u-blox", "SARA-R410M", "u-blox", "u-blox AG", "CH"
				r.Verdict, r.Modules[0].Verdict = "allow", "allow"
			}
			if i%4 == 3 {
				r.Verdict, r.Modules[0].Verdict = "deny", "deny"
			}
			r.Modules[0].IMEI = fmt.Sprintf("86769804%07d", i)
		}
		for range 2 {
			if err := c.Ingest(context.Background(), "modemguard/v1/"+g.ID+"/report", g.Next(t, edit)); err != nil {
				t.Fatal(err)
			}
		}
		if i == 5 {
			g.Skip(t)
			_ = c.Ingest(context.Background(), "modemguard/v1/"+g.ID+"/report", g.Next(t, edit))
		}
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	port := freePort(t)
	drv := exec.Command(driver, "--port="+strconv.Itoa(port))
	drv.Stdout, drv.Stderr = io.Discard, io.Discard
	if err := drv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = drv.Process.Kill(); _ = drv.Wait() }()
	wd := &webDriver{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	eventually(t, 20*time.Second, "chromedriver", func() bool {
		resp, err := http.Get(wd.base + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	wd.call("POST", "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"goog:chromeOptions": map[string]any{"binary": chromium, "args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"}},
	}}}, &sess)
	wd.session = "/session/" + sess.SessionID
	defer wd.call("DELETE", wd.session, nil, nil)

	wd.call("POST", wd.session+"/url", map[string]any{"url": srv.URL + "/"}, nil)
	rows := func() int {
		var n int
		wd.call("POST", wd.session+"/execute/sync", map[string]any{"script": `return document.querySelectorAll("#fleet tbody tr[data-gateway]").length`, "args": []any{}}, &n)
		return n
	}
	eventually(t, 20*time.Second, "the fleet table", func() bool { return rows() == len(gws) })
	text := wd.script(`return document.getElementById("summary").innerText`)
	for _, want := range []string{"12", "u-blox AG", "Quectel Wireless Solutions", "CN", "CH", "deny", "allow", "alert"} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary lacks %q:\n%s", want, text)
		}
	}
	if broken := wd.script(`return document.getElementById("broken").innerText`); !strings.Contains(broken, "gw-05") {
		t.Errorf("the chain problems card lacks gw-05: %q", broken)
	}

	// Type into the filter: WebDriver "Element Send Keys".
	var el map[string]string
	wd.call("POST", wd.session+"/element", map[string]any{"using": "css selector", "value": "#filter"}, &el)
	var id string
	for _, v := range el {
		id = v
	}
	wd.call("POST", wd.session+"/element/"+id+"/value", map[string]any{"text": "u-blox"}, nil)
	eventually(t, 10*time.Second, "the filtered table", func() bool { return rows() == 4 })
	if got := wd.script(`return document.getElementById("count").innerText`); got != "4 of 12 gateways" {
		t.Errorf("count: %q", got)
	}
	// Sort by gateway, descending.
	wd.script(`document.querySelector('th[data-sort="gateway_id"]').click(); return ""`)
	if first := wd.script(`return document.querySelector("#fleet tbody tr").dataset.gateway`); first != "gw-10" {
		t.Errorf("first row after sorting descending: %q", first)
	}
	if os.Getenv("MODEMGUARD_SCREENSHOT_DIR") != "" {
		wd.screenshot(filepath.Join(os.Getenv("MODEMGUARD_SCREENSHOT_DIR"), "fleet.png"))
	}

	// A gateway's own page with its history.
	wd.call("POST", wd.session+"/url", map[string]any{"url": srv.URL + "/#/gateway/gw-05"}, nil)
	eventually(t, 10*time.Second, "the gateway page", func() bool {
		return strings.Contains(wd.script(`return (document.getElementById("gateway-title")||{}).innerText||""`), "gw-05")
	})
	page := wd.script(`return document.getElementById("app").innerText`)
	for _, want := range []string{"module-seen", "gap", "867698040000005", "Module history"} {
		if !strings.Contains(page, want) {
			t.Errorf("the gateway page lacks %q", want)
		}
	}
	if os.Getenv("MODEMGUARD_SCREENSHOT_DIR") != "" {
		wd.screenshot(filepath.Join(os.Getenv("MODEMGUARD_SCREENSHOT_DIR"), "gateway.png"))
	}

	// Without interaction: the DOM as chromium --dump-dom renders it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dom, err := exec.CommandContext(ctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", srv.URL+"/").Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if !bytes.Contains(dom, []byte(`data-gateway="gw-11"`)) {
		t.Errorf("--dump-dom lacks the fleet table:\n%.2000s", dom)
	}
}

// webDriver is a minimal W3C WebDriver client: plain HTTP and JSON.
type webDriver struct {
	t       *testing.T
	base    string
	session string
}

func (w *webDriver) call(method, path string, body, out any) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	cl := &http.Client{Timeout: 60 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		w.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		w.t.Fatalf("webdriver %s %s: %s: %s", method, path, resp.Status, b)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		w.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			w.t.Fatalf("webdriver %s %s: value %s: %v", method, path, env.Value, err)
		}
	}
}

func (w *webDriver) script(js string) string {
	w.t.Helper()
	var s string
	w.call("POST", w.session+"/execute/sync", map[string]any{"script": js, "args": []any{}}, &s)
	return s
}

func (w *webDriver) screenshot(path string) {
	w.t.Helper()
	var b64 string
	w.call("GET", w.session+"/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// BenchmarkCollectorIngestPostgres: verified reports per second on one
// goroutine with PostgreSQL (signature, chain, one transaction), 100
// gateways interleaved. Run: go test -tags system -run '^$' -bench
// CollectorIngest ./systemtest/
func BenchmarkCollectorIngestPostgres(b *testing.B) {
	dsn := startPostgres(b)
	const fleet = 100
	var gws []*collectortest.Gateway
	var kb strings.Builder
	for i := range fleet {
		g := collectortest.NewGateway(b, fmt.Sprintf("gw-%04d", i))
		gws = append(gws, g)
		kb.WriteString(g.Enrollment())
	}
	keys := filepath.Join(b.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte(kb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	c, err := mgcollector.New(context.Background(), mgcollector.Config{Database: dsn, KeysFile: keys})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msgs := make([][]byte, b.N)
	for i := range msgs {
		msgs[i] = gws[i%fleet].Next(b, nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := c.Ingest(context.Background(), "modemguard/v1/"+gws[i%fleet].ID+"/report", msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
