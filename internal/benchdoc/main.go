// Command benchdoc runs modemguard's benchmarks and measurements and writes
// docs/benchmarks.md: the machine it ran on, every figure with the command
// that produced it, and each target met or missed. `make bench` runs it
// after `make cross` (for the binary sizes):
//
//	go run ./internal/benchdoc -out docs/benchmarks.md -dist dist
//
// The figures come from `go test -bench` runs of benchmarks in the
// repository (atcmd, attest, policy and this package's bench_test.go) and
// from running the stripped agent binary against a simulated module: its
// resident memory and its CPU time over an idle minute, scaled to an hour.
// Nothing in the document is typed in by hand.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	out := flag.String("out", "docs/benchmarks.md", "write the document to `FILE`")
	dist := flag.String("dist", "dist", "`DIR` with the stripped binaries of make cross (built here if missing)")
	idle := flag.Duration("idle", time.Minute, "measure the agent's CPU time over this idle `DURATION`")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime `VALUE`")
	flag.Parse()
	if err := run(*out, *dist, *idle, *benchtime); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

// result is one benchmark line: iterations and value per unit.
type result struct {
	Name    string
	N       int
	Metrics map[string]float64
}

// suite is one `go test -bench` run.
type suite struct {
	Cmd     string
	Results []result
	Raw     string
}

func (s *suite) get(name string) (result, bool) {
	for _, r := range s.Results {
		if r.Name == name {
			return r, true
		}
	}
	return result{}, false
}

func runBench(pkg, pattern, benchtime string) (*suite, error) {
	args := []string{"test", "-run", "^$", "-bench", pattern, "-benchmem", "-count=1", "-benchtime", benchtime, pkg}
	s := &suite{Cmd: "go " + strings.Join(quoteArgs(args), " ")}
	fmt.Fprintln(os.Stderr, "benchdoc:", s.Cmd)
	cmd := exec.Command("go", args...)
	b, err := cmd.CombinedOutput()
	s.Raw = string(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", s.Cmd, err, b)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r := result{Name: trimProcs(f[0]), N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.Metrics[f[i+1]] = v
			}
		}
		s.Results = append(s.Results, r)
	}
	return s, nil
}

// trimProcs drops the -GOMAXPROCS suffix go test appends.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$|()*? ") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// machine describes where the figures were measured.
type machine struct {
	CPU, Kernel, OS, Go, Date string
	Cores                     int
}

func describeMachine() machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), OS: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := exec.Command("go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(strings.TrimPrefix(string(b), "go version "))
	}
	return m
}

// footprint is the agent binary running against one simulated module.
type footprint struct {
	RSSKiB, HWMKiB int64
	CPUIdle        time.Duration // CPU time (user+system) over Idle
	Idle           time.Duration
	Broker         string // what the agent was connected to
	Reports        int
}

func (f footprint) cpuPerHour() time.Duration {
	return time.Duration(float64(f.CPUIdle) * float64(time.Hour) / float64(f.Idle))
}

// measureFootprint builds the stripped agent and modemsim, runs them (with
// a private Mosquitto when one is installed) at the default 5-minute report
// interval, and measures RSS and CPU time over idle.
func measureFootprint(idle time.Duration) (footprint, error) {
	fp := footprint{Idle: idle}
	dir, err := os.MkdirTemp("", "benchdoc-")
	if err != nil {
		return fp, err
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{}
	for _, c := range []string{"modemguard", "modemsim"} {
		bins[c] = filepath.Join(dir, c)
		b, err := exec.Command("go", "build", "-trimpath", "-tags", "nocollector", "-ldflags", "-s -w", "-o", bins[c], "./cmd/"+c).CombinedOutput() // the gateway build
		if err != nil {
			return fp, fmt.Errorf("build %s: %v\n%s", c, err, b)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}
	}()
	start := func(log string, name string, args ...string) (*exec.Cmd, error) {
		f, err := os.Create(filepath.Join(dir, log))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		c := exec.CommandContext(ctx, name, args...)
		c.Stdout, c.Stderr = f, f
		if err := c.Start(); err != nil {
			return nil, err
		}
		procs = append([]*exec.Cmd{c}, procs...) // stopped in reverse order
		return c, nil
	}

	port, err := freePort()
	if err != nil {
		return fp, err
	}
	fp.Broker = "no broker (the agent keeps retrying a closed port)"
	if mq, err := exec.LookPath("mosquitto"); err == nil {
		conf := filepath.Join(dir, "mosquitto.conf")
		user := ""
		if os.Geteuid() == 0 {
			user = "user root\n"
		}
		if err := os.WriteFile(conf, []byte(fmt.Sprintf("persistence false\n%slistener %d 127.0.0.1\nallow_anonymous true\n", user, port)), 0o644); err != nil {
			return fp, err
		}
		if _, err := start("mosquitto.log", mq, "-c", conf); err != nil {
			return fp, err
		}
		if err := waitFor(10*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		}); err != nil {
			return fp, fmt.Errorf("mosquitto did not listen: %w", err)
		}
		fp.Broker = "a local Mosquitto"
	}
	link := filepath.Join(dir, "ttyUSB2")
	if _, err := start("modemsim.log", bins["modemsim"], "--profile", "quectel-ec25", "--link", link); err != nil {
		return fp, err
	}
	if err := waitFor(10*time.Second, func() bool { _, err := os.Stat(link); return err == nil }); err != nil {
		return fp, fmt.Errorf("modemsim did not create %s", link)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("gateway_id: gw-bench\nstate_dir: %s\nmodems:\n  - port: %s\nmqtt:\n  broker: tcp://127.0.0.1:%d\n",
		filepath.Join(dir, "state"), link, port)), 0o644); err != nil {
		return fp, err
	}
	agent, err := start("agent.log", bins["modemguard"], "run", "--config", cfg)
	if err != nil {
		return fp, err
	}
	agentLog := filepath.Join(dir, "agent.log")
	if err := waitFor(60*time.Second, func() bool {
		b, _ := os.ReadFile(agentLog)
		return bytes.Contains(b, []byte("agent: report made"))
	}); err != nil {
		b, _ := os.ReadFile(agentLog)
		return fp, fmt.Errorf("the agent made no report within 60s:\n%s", b)
	}
	time.Sleep(10 * time.Second) // let start-up settle before the idle window (a measurement window, not a wait)
	pid := agent.Process.Pid
	before, err := cpuTime(pid)
	if err != nil {
		return fp, err
	}
	fmt.Fprintf(os.Stderr, "benchdoc: measuring the idle agent for %v\n", idle)
	time.Sleep(idle) // the measurement window itself
	after, err := cpuTime(pid)
	if err != nil {
		return fp, err
	}
	fp.CPUIdle = after - before
	if fp.RSSKiB, fp.HWMKiB, err = rss(pid); err != nil {
		return fp, err
	}
	b, _ := os.ReadFile(agentLog)
	fp.Reports = bytes.Count(b, []byte("agent: report made"))
	return fp, nil
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's state: no event to wait on
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cpuTime is utime+stime of pid from /proc/PID/stat (proc(5)), in clock
// ticks of 1/100 s (USER_HZ is 100 on every Linux architecture Go runs on).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // field 3 onwards
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

func rss(pid int) (cur, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			cur = n
		case "VmHWM":
			hwm = n
		}
	}
	return cur, hwm, nil
}

// binarySizes returns the size of each stripped agent binary make cross
// builds, building the missing ones with the same flags.
func binarySizes(dist string) (map[string]int64, error) {
	sizes := map[string]int64{}
	for _, a := range []struct{ name, goarch, goarm string }{{"amd64", "amd64", ""}, {"arm64", "arm64", ""}, {"armv7", "arm", "7"}} {
		path := filepath.Join(dist, "modemguard-linux-"+a.name)
		if _, err := os.Stat(path); err != nil {
			if err := os.MkdirAll(dist, 0o755); err != nil {
				return nil, err
			}
			cmd := exec.Command("go", "build", "-trimpath", "-tags", "nocollector", "-ldflags", "-s -w", "-o", path, "./cmd/modemguard") // as make cross
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.goarch, "GOARM="+a.goarm)
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("build %s: %v\n%s", path, err, b)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		sizes[a.name] = fi.Size()
	}
	return sizes, nil
}

func run(out, dist string, idle time.Duration, benchtime string) error {
	m := describeMachine()
	pty, err := runBench("./atcmd", "^BenchmarkPTYRoundTrip", benchtime)
	if err != nil {
		return err
	}
	local, err := runBench("./internal/benchdoc", "^Benchmark(IdentifyProfile|ReportSize)$", benchtime)
	if err != nil {
		return err
	}
	att, err := runBench("./attest", "^Benchmark(EncodeSign|Size|Verify)$", benchtime)
	if err != nil {
		return err
	}
	pol, err := runBench("./policy", "^Benchmark(CheckATLine|ATFilterPassThrough|ApplyEgress1000)", benchtime)
	if err != nil {
		return err
	}
	fp, err := measureFootprint(idle)
	if err != nil {
		return err
	}
	sizes, err := binarySizes(dist)
	if err != nil {
		return err
	}
	doc := render(m, pty, local, att, pol, fp, sizes, idle)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "benchdoc: wrote", out)
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func us(ns float64) string { return fmt.Sprintf("%.1f µs", ns/1000) }

func render(m machine, pty, local, att, pol *suite, fp footprint, sizes map[string]int64, idle time.Duration) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	ns := func(s *suite, name string) float64 {
		r, _ := s.get(name)
		return r.Metrics["ns/op"]
	}
	metric := func(s *suite, name, unit string) float64 {
		r, _ := s.get(name)
		return r.Metrics[unit]
	}

	p("# Benchmarks\n\n")
	p("Written by `make bench` (`go run ./internal/benchdoc`); do not edit by hand. Every figure below\n")
	p("was produced by a benchmark or measurement in this repository, in one run, with the command shown.\n\n")
	p("| machine | |\n|---|---|\n| CPU | %s |\n| cores | %d |\n| OS | %s (kernel %s) |\n| Go | %s |\n| date | %s |\n\n",
		m.CPU, m.Cores, m.OS, m.Kernel, m.Go, m.Date)

	engine, raw, py := ns(pty, "BenchmarkPTYRoundTripEngine"), ns(pty, "BenchmarkPTYRoundTripRaw"), ns(pty, "BenchmarkPTYRoundTripPyserial")
	mpPct := metric(att, "BenchmarkSize", "%-of-json")
	fwWorst := 0.0
	for _, r := range pol.Results {
		if strings.HasPrefix(r.Name, "BenchmarkCheckATLine") || strings.HasPrefix(r.Name, "BenchmarkATFilter") {
			fwWorst = max(fwWorst, r.Metrics["ns/op"])
		}
	}
	const mb = 1e6
	p("## Targets\n\n| target | measured | |\n|---|---|---|\n")
	if raw > 0 {
		p("| AT round trip over a pty within 1.25× of the raw pty floor | %s vs %s: %.2f× | %s |\n", us(engine), us(raw), engine/raw, verdict(engine/raw <= 1.25))
	}
	p("| report at most 70 %% of its JSON size | %.1f %% (attest sample report) | %s |\n", mpPct, verdict(mpPct <= 70))
	p("| AT firewall at most 2 µs per line | %s for the slowest line benchmarked | %s |\n", us(fwWorst), verdict(fwWorst <= 2000))
	p("| agent RSS at most 20 MB with one modem | %.1f MB | %s |\n", float64(fp.RSSKiB)*1024/mb, verdict(float64(fp.RSSKiB)*1024 <= 20*mb))
	p("| arm64 binary at most 15 MB (stripped) | %.1f MB | %s |\n\n", float64(sizes["arm64"])/mb, verdict(float64(sizes["arm64"]) <= 15*mb))

	p("## AT round trip over a real pty\n\n")
	p("One `AT+CGSN` exchange (command out, 15-digit IMEI and `OK` back) against a Go responder on the\n")
	p("master side of a raw pty; the client opens the slave with go.bug.st/serial, as the agent does.\n")
	p("The raw floor writes the command and reads until the answer's last byte, with no parsing; the\n")
	p("pyserial script (`bench/pyserial_roundtrip.py`) writes and calls `readline()` until `OK`, as\n")
	p("gateway scripts do, and times itself (interpreter start-up excluded). Ratios are from this one run.\n\n")
	p("| client | time per exchange | vs raw floor | allocs/op |\n|---|---|---|---|\n")
	if raw > 0 {
		p("| raw pty floor | %s | 1.00× | %.0f |\n", us(raw), metric(pty, "BenchmarkPTYRoundTripRaw", "allocs/op"))
		p("| modemguard atcmd engine | %s | %.2f× | %.0f |\n", us(engine), engine/raw, metric(pty, "BenchmarkPTYRoundTripEngine", "allocs/op"))
		if py > 0 {
			p("| Python pyserial, readline | %s | %.2f× | – |\n", us(py), py/raw)
		} else {
			p("| Python pyserial, readline | skipped: python3-serial not installed | | |\n")
		}
	}
	p("\n`%s`\n\n", pty.Cmd)

	p("## Full identity scan per simulated module\n\n")
	p("`modem.Identify` after `Sync` through a real pty against each simulator profile (the simulator\n")
	p("answers at once: this is the agent's and the pty's cost; at 115200 baud a real UART adds the\n")
	p("transfer time of the bytes, see `BenchmarkIdentifyPTY` in modem/).\n\n")
	p("| profile | time per scan | AT commands | allocs/op | B/op |\n|---|---|---|---|---|\n")
	for _, r := range local.Results {
		name, ok := strings.CutPrefix(r.Name, "BenchmarkIdentifyProfile/")
		if !ok {
			continue
		}
		p("| %s | %.2f ms | %.0f | %.0f | %.0f |\n", name, r.Metrics["ns/op"]/1e6, r.Metrics["cmds/op"], r.Metrics["allocs/op"], r.Metrics["B/op"])
	}
	p("\n`%s`\n\n", local.Cmd)

	p("## Reports: encode, sign, size\n\n")
	p("| benchmark | time | allocs/op | B/op |\n|---|---|---|---|\n")
	for _, n := range []string{"BenchmarkEncodeSign", "BenchmarkVerify"} {
		p("| %s | %s | %.0f | %.0f |\n", n, us(ns(att, n)), metric(att, n, "allocs/op"), metric(att, n, "B/op"))
	}
	p("\n`%s`\n\n", att.Cmd)
	p("Bytes of the same report in three encodings. attest's `BenchmarkSize` uses its sample report\n")
	p("(%.0f B MessagePack, %.0f B JSON: %.1f %%). `BenchmarkReportSize` here uses the report in the\n",
		metric(att, "BenchmarkSize", "msgpack-B"), metric(att, "BenchmarkSize", "json-B"), mpPct)
	p("golden envelope `attest/testdata/envelope-v1.hex`; JSON is encoding/json of the same struct\n")
	p("(digests as hex, as the CLI prints them), CBOR is fxamacker/cbor/v2 with the same key names.\n\n")
	p("| encoding | bytes | of JSON | encode time | allocs/op |\n|---|---|---|---|---|\n")
	for _, e := range []string{"msgpack", "json", "cbor"} {
		n := "BenchmarkReportSize/" + e
		p("| %s | %.0f | %.1f %% | %s | %.0f |\n", e, metric(local, n, "bytes"), metric(local, n, "%-of-json"), us(ns(local, n)), metric(local, n, "allocs/op"))
	}
	p("\n`%s`\n\n", local.Cmd)

	p("## AT firewall and egress\n\n| benchmark | time | allocs/op |\n|---|---|---|\n")
	for _, r := range pol.Results {
		t := us(r.Metrics["ns/op"])
		if r.Metrics["ns/op"] >= 1e6 {
			t = fmt.Sprintf("%.2f ms", r.Metrics["ns/op"]/1e6)
		}
		p("| %s | %s | %.0f |\n", r.Name, t, r.Metrics["allocs/op"])
	}
	p("\n`BenchmarkApplyEgress1000` builds and serialises the nftables batch for 1,000 destinations (a\n")
	p("recorder stands in for the kernel).\n\n`%s`\n\n", pol.Cmd)

	p("## Agent footprint\n\n")
	p("The stripped agent (`go build -trimpath -ldflags '-s -w'`) runs `modemguard run` against one\n")
	p("simulated Quectel EC25 on a pty, connected to %s, at the default report interval (5 min).\n", fp.Broker)
	p("After its first report and 10 s of settling, its CPU time (utime+stime from /proc/PID/stat) is\n")
	p("measured over %v of idle and **scaled to an hour** (×%.0f); no identification falls inside the\n", idle, float64(time.Hour)/float64(idle))
	p("window at a 5-minute interval, so add one identification per interval (see above) for the full cost.\n")
	p("The kernel counts CPU time in 10 ms ticks, so a one-minute window is coarse: `make bench IDLE=10m`\n")
	p("measures longer.\n\n")
	p("| measure | value |\n|---|---|\n| RSS (VmRSS) at the end of the window | %.1f MB (%.1f MiB) |\n| peak RSS (VmHWM) | %.1f MB |\n",
		float64(fp.RSSKiB)*1024/mb, float64(fp.RSSKiB)/1024, float64(fp.HWMKiB)*1024/mb)
	p("| CPU over %v idle | %v |\n| CPU per idle hour (scaled) | %v |\n\n", idle, fp.CPUIdle, fp.cpuPerHour().Round(10*time.Millisecond))
	p("| binary (`make cross`, stripped) | size |\n|---|---|\n")
	for _, a := range []string{"amd64", "arm64", "armv7"} {
		p("| modemguard-linux-%s | %.1f MB (%.1f MiB) |\n", a, float64(sizes[a])/mb, float64(sizes[a])/(1<<20))
	}
	p("\nCommand: `make bench` (runs `make cross`, then `go run ./internal/benchdoc`).\n\n")

	p("## Raw output\n\n<details><summary>go test output of this run</summary>\n\n```\n")
	for _, s := range []*suite{pty, local, att, pol} {
		p("$ %s\n%s\n", s.Cmd, strings.TrimSpace(s.Raw))
	}
	p("```\n\n</details>\n")
	return b.String()
}
