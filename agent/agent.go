package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/uplink"
)

// Options wire an Agent to the machine. Config is required; the rest
// have working defaults except OpenPort, which cmd provides (the agent never
// imports a serial library).
type Options struct {
	Config *Config
	// Policy in force at start. Nil means no policy: every module is
	// allowed and only reported. Use policy.FailClosed for a policy that
	// failed to load.
	Policy *policy.Policy
	// Registry of vendors. Nil means modem.DefaultRegistry.
	Registry *modem.Registry
	// OpenPort opens a serial port (go.bug.st/serial in production, a
	// simulator pipe in tests and the demo).
	OpenPort func(path string, baud int) (io.ReadWriteCloser, error)
	// Discover lists USB modules for port auto. Nil means modem.Discover.
	Discover func() ([]modem.Candidate, error)
	// HostBytes returns the bytes sent over the host's cellular interfaces.
	// Nil means the sysfs counters of interfaces matching the policy's
	// egress interfaces (default wwan*, ww*, ppp*, rmnet*).
	HostBytes func() (uint64, bool)
	// BootID identifies this boot in reports and status (default: the
	// kernel's /proc/sys/kernel/random/boot_id, else random).
	BootID string
	// Version goes into reports as agent_version.
	Version string
	// Notify receives systemd notifications ("READY=1", "WATCHDOG=1",
	// "RELOADING=1", "STOPPING=1"). Nil means none.
	Notify func(state string)
	// WatchdogInterval, if set, is how often Notify gets "WATCHDOG=1" from
	// the report loop (systemd: half of WatchdogSec).
	WatchdogInterval time.Duration
	// ClockWait bounds the wait for a sane clock before the first report.
	// Default 30s; after it reports go out flagged clock_synced: false.
	ClockWait time.Duration
	// Clock decides whether the clock is sane. Zero value: system clock.
	Clock attest.Clock
	// Metrics, if set, receives the agent's counters.
	Metrics *Metrics
	// Egress installs and removes the host egress rules. Nil means
	// nftables (policy.ApplyEgress, policy.ClearEgress) with the system
	// resolver and /etc/resolv.conf; tests inject a recorder.
	Egress *EgressHooks
	// Logger; nil means discard.
	Logger *slog.Logger
}

// Agent is the daemon: it watches the configured modems, judges them,
// enforces the policy and publishes signed reports.
type Agent struct {
	opts Options
	log  *slog.Logger

	pol      atomic.Pointer[policy.Policy]
	interval atomic.Int64 // report interval in ns

	mu      sync.Mutex
	states  map[int]ModuleState // by slot
	events  []attest.Event      // since the last report
	dropped uint64              // events dropped because too many were pending

	changed  chan struct{}
	nonces   chan []byte
	workers  []*worker
	chain    *attest.Chain
	outbox   *uplink.Outbox
	upl      *uplink.Uplink
	keyID    string
	made     atomic.Uint64
	lost     atomic.Uint64 // reports that could not be signed or committed (disk full, ...)
	lostErr  atomic.Value  // string: the last such error
	lastLost uint64        // lost count already reported (report loop only)
	lastDrop uint64
	egressCh chan struct{}
	reloaded chan struct{} // Reload → report loop: the interval may have changed
}

// EgressHooks are how the agent touches the host firewall.
type EgressHooks struct {
	Apply    func(*policy.EgressPlan) error
	Clear    func() error
	Resolver policy.Resolver
	// Nameservers returns the resolvers that stay reachable.
	Nameservers func() []netip.Addr
}

// egressRefresh is how often allowed names are resolved again.
const egressRefresh = 10 * time.Minute

// maxPendingEvents bounds the events kept between two reports.
const maxPendingEvents = 500

// New checks the options and returns an Agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Config == nil {
		return nil, errors.New("agent: no configuration")
	}
	if opts.OpenPort == nil {
		return nil, errors.New("agent: no OpenPort")
	}
	if opts.Registry == nil {
		opts.Registry = modem.DefaultRegistry()
	}
	if opts.Discover == nil {
		opts.Discover = modem.Discover
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClockWait == 0 {
		opts.ClockWait = 30 * time.Second
	}
	if opts.BootID == "" {
		opts.BootID = bootID()
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	if opts.Egress == nil {
		opts.Egress = &EgressHooks{
			Apply:    func(p *policy.EgressPlan) error { return policy.ApplyEgress(p, nil) },
			Clear:    func() error { return policy.ClearEgress(nil) },
			Resolver: net.DefaultResolver,
			Nameservers: func() []netip.Addr {
				b, _ := os.ReadFile("/etc/resolv.conf")
				return policy.ParseResolvConf(b)
			},
		}
	}
	a := &Agent{opts: opts, log: opts.Logger, states: map[int]ModuleState{},
		changed: make(chan struct{}, 1), nonces: make(chan []byte, 8), egressCh: make(chan struct{}, 1),
		reloaded: make(chan struct{}, 1)}
	pol := opts.Policy
	if pol == nil {
		pol = allowAll()
	}
	a.pol.Store(pol)
	a.interval.Store(int64(opts.Config.Report.Interval))
	// The workers exist from the start (Reload may signal them at any time);
	// Run starts them.
	for i, mc := range opts.Config.Modems {
		a.workers = append(a.workers, newWorker(i, mc, workerDeps{
			log: a.log.With("modem", i), registry: opts.Registry, open: opts.OpenPort, discover: opts.Discover,
			policy: a.pol.Load, publish: a.publish, hostBytes: func() (uint64, bool) { return a.opts.HostBytes() },
			interval: func() time.Duration { return time.Duration(a.interval.Load()) },
		}))
	}
	if opts.HostBytes == nil {
		a.opts.HostBytes = func() (uint64, bool) { return hostTxBytes("/sys", a.interfaces()) }
	}
	return a, nil
}

// allowAll is the policy when none is configured: report only.
func allowAll() *policy.Policy {
	p, err := policy.Parse("(no policy)", []byte("version: 1\nmodule_stack:\n  default: allow\n  fota: allow\n  debug: allow\n"))
	if err != nil {
		panic(err)
	}
	p.Hash = ""
	return p
}

func (a *Agent) interfaces() []string {
	if e := a.pol.Load().Egress; e != nil && len(e.Interfaces) > 0 {
		return e.Interfaces
	}
	return policy.DefaultInterfaces()
}

// Policy returns the policy in force.
func (a *Agent) Policy() *policy.Policy { return a.pol.Load() }

// Reload applies a new policy and report interval (SIGHUP). Modems and
// MQTT settings apply at the next start; Reload says so in the log.
func (a *Agent) Reload(cfg *Config, pol *policy.Policy) {
	a.opts.Notify("RELOADING=1")
	defer a.opts.Notify("READY=1")
	if pol == nil {
		pol = allowAll()
	}
	a.pol.Store(pol)
	a.log.Info("agent: policy reloaded", "policy", pol.Name, "hash", pol.Hash)
	if cfg != nil {
		a.interval.Store(int64(cfg.Report.Interval))
		old := a.opts.Config
		if fmt.Sprint(old.Modems) != fmt.Sprint(cfg.Modems) || old.MQTT != cfg.MQTT || old.GatewayID != cfg.GatewayID || old.StateDir != cfg.StateDir {
			a.log.Warn("agent: modems, mqtt, gateway_id and state_dir changes apply after a restart (systemctl restart modemguard)")
		}
	}
	for _, w := range a.workers {
		w.reevaluate()
	}
	a.kickEgress()
	select {
	case a.reloaded <- struct{}{}:
	default:
	}
}

func (a *Agent) kickEgress() {
	select {
	case a.egressCh <- struct{}{}:
	default:
	}
}

// egressLoop keeps the host firewall in line with the policy: the policy's
// egress section when it has one, and a drop of everything but DNS on the
// cellular interfaces while a module is in block-data. It re-resolves
// allowed names every egressRefresh.
func (a *Agent) egressLoop(ctx context.Context) {
	t := time.NewTicker(egressRefresh)
	defer t.Stop()
	applied := false
	lastErr := ""
	for {
		pol := a.pol.Load()
		blocked := a.anyBlockedData()
		var plan *policy.EgressPlan
		var err error
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		switch {
		case blocked:
			// The module's data is blocked: drop host traffic over cellular too.
			plan, err = policy.FailClosed(errors.New("block-data")).PlanEgress(rctx, a.opts.Egress.Resolver, a.opts.Egress.Nameservers())
			if err == nil {
				plan.Interfaces = a.interfaces()
			}
		case pol.Egress != nil:
			plan, err = pol.PlanEgress(rctx, a.opts.Egress.Resolver, a.opts.Egress.Nameservers())
		}
		cancel()
		switch {
		case err != nil:
		case plan != nil:
			err = a.opts.Egress.Apply(plan)
			if err == nil {
				applied = true
				a.log.Info("agent: host egress rules applied", "plan", plan.String(), "block_data", blocked)
				for _, u := range plan.Unresolved {
					a.log.Warn("agent: an allowed egress name did not resolve; its traffic is dropped", "name", u)
				}
			}
		case applied:
			err = a.opts.Egress.Clear()
			applied = err != nil
		}
		if err != nil && err.Error() != lastErr {
			a.log.Error("agent: host egress rules not applied", "err", err)
			a.addEvent(attest.Event{TimeMS: time.Now().UnixMilli(), Kind: "egress-failed", Detail: err.Error()})
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.egressCh:
		}
	}
}

func (a *Agent) anyBlockedData() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.states {
		if s.Enforcement == EnforceBlockedData {
			return true
		}
	}
	return false
}

func (a *Agent) addEvent(e attest.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) < maxPendingEvents {
		a.events = append(a.events, e)
	} else {
		a.dropped++
	}
}

// Run starts everything and blocks until ctx ends; then it flushes what it
// can for up to 10 seconds, publishes "offline" and returns.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.opts.Config
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("agent: state_dir %s: %w", cfg.StateDir, err)
	}
	key, created, err := attest.LoadOrCreateKey(cfg.StateDir)
	if err != nil {
		return err
	}
	a.keyID = key.ID()
	if created {
		a.log.Info("agent: created a signing key; enroll it in the collector", "kid", key.ID(),
			"pubkey", attest.EncodePublicKey(key.Public()), "gateway_id", cfg.GatewayID)
	}
	if a.chain, err = attest.OpenChain(cfg.StateDir, key, attest.ChainConfig{Clock: a.opts.Clock, Logger: a.log}); err != nil {
		return err
	}
	if a.outbox, err = uplink.OpenOutbox(filepath.Join(cfg.StateDir, "outbox.db"), uplink.OutboxConfig{Logger: a.log}); err != nil {
		return err
	}
	defer a.outbox.Close()
	password := ""
	if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.MQTT.PasswordFile)
		if err != nil {
			return fmt.Errorf("agent: mqtt password_file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	a.upl, err = uplink.New(uplink.Config{
		Broker: cfg.MQTT.Broker, GatewayID: cfg.GatewayID, BootID: a.opts.BootID, KeyID: key.ID(),
		PubKey: attest.EncodePublicKey(key.Public()),
		CAFile: cfg.MQTT.CAFile, CertFile: cfg.MQTT.CertFile, KeyFile: cfg.MQTT.KeyFile, ServerName: cfg.MQTT.ServerName,
		Username: cfg.MQTT.Username, Password: password,
		OnChallenge: func(nonce []byte) {
			select {
			case a.nonces <- nonce:
			default:
				a.log.Warn("agent: challenge dropped, too many pending")
			}
		},
		Logger: a.log,
	}, a.outbox)
	if err != nil {
		return err
	}
	if a.opts.Metrics != nil {
		a.opts.Metrics.attach(a)
	}

	upCtx, stopUplink := context.WithCancel(context.Background())
	var upWG sync.WaitGroup
	upWG.Go(func() { _ = a.upl.Run(upCtx) })
	defer func() {
		stopUplink()
		upWG.Wait()
	}()

	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range a.workers {
		wg.Go(func() { w.run(wctx) })
	}
	wg.Go(func() { a.egressLoop(wctx) })
	// Ready once the outbox is open and the workers run: a gateway out of
	// coverage is up, just not connected (libraries.md §5).
	a.opts.Notify("READY=1")
	a.log.Info("agent: running", "gateway_id", cfg.GatewayID, "kid", key.ID(), "modems", len(cfg.Modems), "policy", a.pol.Load().Name)

	a.reportLoop(ctx)

	a.opts.Notify("STOPPING=1")
	stopWorkers()
	wg.Wait()
	flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.outbox.WaitEmpty(flush); err != nil {
		a.log.Warn("agent: stopping with reports still in the outbox; they go out at the next start", "depth", a.outbox.Stats().Depth)
	}
	return nil
}

// publish takes a worker's new state and events.
func (a *Agent) publish(s ModuleState, ev []Event) {
	a.mu.Lock()
	if a.states[s.Slot].Enforcement != s.Enforcement {
		defer a.kickEgress()
	}
	a.states[s.Slot] = s
	for _, e := range ev {
		if len(a.events) >= maxPendingEvents {
			a.dropped++
			continue
		}
		a.events = append(a.events, attest.Event{TimeMS: e.Time.UnixMilli(), Kind: e.Kind, Detail: e.Detail,
			Subject: e.Subject, Action: e.Action, Rule: e.Rule})
	}
	a.mu.Unlock()
	if a.opts.Metrics != nil {
		a.opts.Metrics.observe(s, ev)
	}
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// reportLoop makes a report at start (once the modems had a chance to be
// identified), on every change (coalesced over a short window), every
// interval and for every challenge. It is also the watchdog's heartbeat.
func (a *Agent) reportLoop(ctx context.Context) {
	a.opts.Clock.Wait(ctx, a.opts.ClockWait)
	first := time.NewTimer(5 * time.Second) // the first report waits for identification, at most 5 s
	defer first.Stop()
	ticker := time.NewTicker(time.Duration(a.interval.Load()))
	defer ticker.Stop()
	var dog <-chan time.Time
	if a.opts.WatchdogInterval > 0 {
		t := time.NewTicker(a.opts.WatchdogInterval)
		defer t.Stop()
		dog = t.C
	}
	const settle = 300 * time.Millisecond
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	started := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-dog:
			a.opts.Notify("WATCHDOG=1")
		case <-first.C:
			started = true
			a.report(nil)
		case <-a.changed:
			if !started && a.allIdentified() {
				started = true
				first.Stop()
			}
			if started {
				debounce.Reset(settle)
			}
		case <-debounce.C:
			a.report(nil)
		case nonce := <-a.nonces:
			a.report(nonce)
		case <-ticker.C:
			a.report(nil)
		case <-a.reloaded:
			ticker.Reset(time.Duration(a.interval.Load()))
		}
	}
}

func (a *Agent) allIdentified() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.opts.Config.Modems {
		if s, ok := a.states[i]; !ok || (s.Module == nil && s.Up) {
			return false
		}
	}
	return true
}

// report builds, signs, chains and commits one report to the outbox.
func (a *Agent) report(nonce []byte) {
	r := a.buildReport()
	r.Nonce = nonce
	iss, err := a.chain.Issue(r)
	if err != nil {
		a.lose(r, err)
		a.log.Error("agent: cannot issue a report", "err", err, "lost", a.lost.Load())
		return
	}
	if err := a.outbox.Enqueue(iss.Report.Seq, iss.Envelope); err != nil {
		a.lose(r, err)
		a.log.Error("agent: cannot commit a report to the outbox", "seq", iss.Report.Seq, "err", err, "lost", a.lost.Load())
		return
	}
	a.lastLost = a.lost.Load()
	a.made.Add(1)
	a.log.Info("agent: report made", "seq", iss.Report.Seq, "verdict", iss.Report.Verdict, "modules", len(iss.Report.Modules),
		"events", len(iss.Report.Events), "challenge", nonce != nil)
}

// lose records a report that could not be made: its events go back to the
// pending ones, and the loss is counted for the next report and the metrics.
func (a *Agent) lose(r attest.Report, err error) {
	a.lost.Add(1)
	a.lostErr.Store(err.Error())
	a.mu.Lock()
	a.events = append(r.Events, a.events...)
	if over := len(a.events) - maxPendingEvents; over > 0 {
		a.events = a.events[over:]
		a.dropped += uint64(over)
	}
	a.mu.Unlock()
}

func (a *Agent) buildReport() attest.Report {
	pol := a.pol.Load()
	a.mu.Lock()
	events := a.events
	a.events = nil
	dropped := a.dropped
	a.dropped = 0
	slots := make([]ModuleState, 0, len(a.states))
	for i := range a.opts.Config.Modems {
		if s, ok := a.states[i]; ok {
			slots = append(slots, s)
		}
	}
	a.mu.Unlock()

	now := time.Now().UnixMilli()
	if dropped > 0 {
		events = append(events, attest.Event{TimeMS: now, Kind: "events-dropped", Detail: fmt.Sprintf("%d events dropped: more than %d between two reports", dropped, maxPendingEvents), Count: dropped})
	}
	if lost := a.lost.Load(); lost > a.lastLost {
		why, _ := a.lostErr.Load().(string)
		events = append(events, attest.Event{TimeMS: now, Kind: attest.EventOutboxDropped,
			Detail: fmt.Sprintf("%d reports could not be committed to the outbox (last error: %s)", lost-a.lastLost, why), Count: lost - a.lastLost})
	}
	if st := a.outbox.Stats(); st.Dropped > a.lastDrop {
		events = append(events, attest.Event{TimeMS: now, Kind: attest.EventOutboxDropped,
			Detail: fmt.Sprintf("%d reports dropped from the full outbox", st.Dropped-a.lastDrop), Count: st.Dropped - a.lastDrop})
		a.lastDrop = st.Dropped
	}
	if pol.Err() != nil {
		events = append(events, attest.Event{TimeMS: now, Kind: "policy-failed", Detail: "enforcing fail-closed: " + pol.Err().Error(), Action: "deny"})
	}
	r := attest.Report{
		GatewayID: a.opts.Config.GatewayID, BootID: a.opts.BootID, AgentVersion: a.opts.Version,
		Modules: []attest.Module{}, Events: events, Verdict: policy.Allow.String(),
	}
	if r.Events == nil {
		r.Events = []attest.Event{}
	}
	if h, ok := strings.CutPrefix(pol.Hash, "sha256:"); ok {
		r.PolicyHash, _ = hex.DecodeString(h)
	}
	worst := policy.Allow
	for _, s := range slots {
		if s.Module == nil {
			continue
		}
		r.Modules = append(r.Modules, toAttest(s))
		worst = max(worst, s.Verdict.Action)
	}
	r.Verdict = worst.String()
	return r
}

func toAttest(s ModuleState) attest.Module {
	m := s.Module
	out := attest.Module{
		Port: m.Port, Manufacturer: m.Manufacturer, Model: m.Model, Firmware: m.Firmware, FirmwareDetail: m.FirmwareDetail,
		IMEI: m.IMEI, TAC: m.TAC, IMSI: m.IMSI, ICCID: m.ICCID, SIM: m.SIM, Vendor: m.Vendor, VendorName: m.VendorName,
		OriginCountry: m.OriginCountry, Lists: m.Lists, Verdict: m.Verdict, Enforcement: s.Enforcement,
		USB: attest.USB{VID: m.USB.VID, PID: m.USB.PID, Interface: m.USB.Interface},
		Network: attest.Network{Operator: m.Network.Operator, PLMN: m.Network.PLMN, RAT: m.Network.RAT,
			Registered: m.Network.Registered, Roaming: m.Network.Roaming, State: m.Network.State, APN: m.Network.APN, Signal: m.Network.Signal},
		Findings: make([]attest.Finding, 0, len(m.Findings)),
	}
	if out.Lists == nil {
		out.Lists = []string{}
	}
	if !s.Up {
		out.Findings = append(out.Findings, attest.Finding{ID: "module-down", Severity: modem.SeverityMedium, Detail: "the module does not answer: " + s.Down})
	}
	for _, f := range m.Findings {
		out.Findings = append(out.Findings, attest.Finding{ID: f.ID, Severity: f.Severity, Detail: f.Detail})
	}
	return out
}

// Outbox returns the agent's outbox once Run has opened it (tests, metrics).
func (a *Agent) Outbox() *uplink.Outbox { return a.outbox }

// bootID reads the kernel's boot id, or makes one up.
func bootID() string {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("boot-%d", time.Now().UnixNano())
}
