package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/backoff"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
	"github.com/modemguard/modemguard/pty"
)

// Enforcement states of a module, as reported.
const (
	EnforceNone        = "none"
	EnforceQuarantined = "quarantined"  // radio off (AT+CFUN=4)
	EnforceBlockedData = "blocked-data" // PDP contexts down (AT+CGACT=0)
	EnforceAlertOnly   = "alert-only"   // denied, reported, left running
	// EnforceFailed: the module refused or ignored the enforcement command;
	// the agent tries again at every identification.
	EnforceFailed = "enforcement-failed"
)

// ModuleState is what the agent knows about one configured modem slot.
type ModuleState struct {
	Slot        int
	Port        string
	Up          bool   // a module answers on the port
	Down        string // why not, when !Up
	Module      *modem.Module
	Settings    []modem.Setting
	Verdict     policy.Verdict
	Enforcement string
	// Identified counts identifications; a change of module, SIM or
	// firmware shows up between two of them.
	Identified int
	// AT are the AT session's counters at the last identification.
	AT atcmd.Stats
}

// Event is something a worker wants in the next report.
type Event struct {
	Time    time.Time
	Kind    string
	Detail  string
	Subject string
	Action  string
	Rule    string
}

// Event kinds emitted by workers.
const (
	EventModuleSwapped   = "module-swapped"
	EventSIMSwapped      = "sim-swapped"
	EventFirmwareChanged = "firmware-changed"
	EventModuleReset     = "module-reset"
	EventModuleLost      = "module-lost"
	EventEnforced        = "enforcement"
	EventATFirewall      = "at-firewall"
	EventSettingOff      = "setting-remediated"
)

// workerDeps are the edges a worker needs; cmd fills them with real ports.
type workerDeps struct {
	log      *slog.Logger
	registry *modem.Registry
	open     func(path string, baud int) (io.ReadWriteCloser, error)
	discover func() ([]modem.Candidate, error)
	policy   func() *policy.Policy
	// publish hands a new state and events to the agent.
	publish func(ModuleState, []Event)
	// hostBytes returns the bytes sent over the host's cellular
	// interfaces, for reconciliation with the module's own counters.
	hostBytes func() (uint64, bool)
	interval  func() time.Duration
}

type worker struct {
	// enforcing mirrors state.Enforcement for the AT firewall, which runs
	// on the Mux's goroutines.
	enforcing atomic.Value // string
	deps      workerDeps
	slot      int
	cfg       ModemConfig
	state     ModuleState
	reeval    chan struct{} // policy reloaded
	// radioOff: this worker switched the radio off (so it may switch it on).
	radioOff bool
	// byte reconciliation baseline (module sent, host sent)
	baseMod, baseHost uint64
	haveBase          bool
}

func newWorker(slot int, cfg ModemConfig, deps workerDeps) *worker {
	return &worker{deps: deps, slot: slot, cfg: cfg, reeval: make(chan struct{}, 1),
		state: ModuleState{Slot: slot, Port: cfg.Port, Enforcement: EnforceNone, Down: "not yet opened"}}
}

// reevaluate asks the worker to judge its module again (policy reloaded).
func (w *worker) reevaluate() {
	select {
	case w.reeval <- struct{}{}:
	default:
	}
}

// run keeps a session with the module until ctx ends, reopening the port
// with back-off when it vanishes (unplugged, rebooted, swapped).
func (w *worker) run(ctx context.Context) {
	// A module plugged back in is found within 10 s.
	b := backoff.Backoff{Min: time.Second, Max: 10 * time.Second}
	for ctx.Err() == nil {
		start := time.Now()
		err := w.session(ctx)
		if ctx.Err() != nil {
			return
		}
		w.state.Up = false
		w.state.Down = err.Error()
		w.deps.log.Warn("agent: modem session ended", "slot", w.slot, "err", err)
		w.deps.publish(w.state, []Event{{Time: time.Now(), Kind: EventModuleLost, Detail: err.Error(), Subject: w.state.Port}})
		if time.Since(start) > time.Minute {
			b.Reset()
		}
		if !backoff.Sleep(ctx, b.Next()) {
			return
		}
	}
}

// open finds and opens the module's AT port.
func (w *worker) open(ctx context.Context) (io.ReadWriteCloser, string, *modem.USBInfo, error) {
	if w.cfg.Port != "auto" {
		rw, err := w.deps.open(w.cfg.Port, w.cfg.Baud)
		return rw, w.cfg.Port, nil, err
	}
	cands, err := w.deps.discover()
	if err != nil {
		return nil, "", nil, err
	}
	if len(cands) == 0 {
		return nil, "", nil, errors.New("no USB serial device found")
	}
	var tried []string
	for _, c := range cands {
		for _, p := range c.AT {
			rw, err := w.deps.open(p.Path, w.cfg.Baud)
			if err != nil {
				tried = append(tried, fmt.Sprintf("%s: %v", p.Path, err))
				continue
			}
			conn := atcmd.New(rw, atcmd.Config{SyncTimeout: 4 * time.Second})
			err = conn.Sync(ctx)
			conn.Close()
			if err == nil {
				rw, err = w.deps.open(p.Path, w.cfg.Baud)
				if err == nil {
					return rw, p.Path, &modem.USBInfo{VID: c.VID, PID: c.PID, Interface: p.Interface}, nil
				}
			}
			tried = append(tried, fmt.Sprintf("%s: %v", p.Path, err))
		}
	}
	return nil, "", nil, fmt.Errorf("no USB device answered AT: %s", strings.Join(tried, "; "))
}

// session runs one connection to the module: sync, identify, judge,
// enforce, then watch until the port fails or ctx ends.
func (w *worker) session(ctx context.Context) error {
	rw, path, usb, err := w.open(ctx)
	if err != nil {
		return err
	}
	w.state.Port = path
	var port io.ReadWriter = rw
	var mux *atcmd.Mux
	events := newEventLog()
	if w.cfg.ProxyLink != "" {
		var cleanup func()
		mux, port, cleanup, err = w.proxy(rw, events)
		if err != nil {
			rw.Close()
			return err
		}
		defer cleanup()
	}
	resets := make(chan string, 1)
	conn := atcmd.New(port, atcmd.Config{
		Logger: w.deps.log,
		Unsolicited: func(u atcmd.URC) {
			if isBoot(u.Line) {
				select {
				case resets <- u.Line:
				default:
				}
			}
		},
	})
	defer conn.Close()
	if mux == nil {
		defer rw.Close()
	}
	lost := conn.Done()
	if err := conn.Sync(ctx); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	w.reapply(ctx, conn)
	if err := w.identify(ctx, conn, usb, nil); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	t := time.NewTicker(w.deps.interval())
	defer t.Stop()
	var muxErr chan error
	if mux != nil {
		muxErr = make(chan error, 1)
		go func() { muxErr <- mux.Wait(ctx) }()
	}
	for {
		var why []Event
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-lost:
			return fmt.Errorf("%s: port lost: %v", path, conn.Err())
		case err := <-muxErr:
			if err == nil {
				err = errors.New("proxy stopped")
			}
			return fmt.Errorf("%s: %w", path, err)
		case line := <-resets:
			why = append(why, Event{Time: time.Now(), Kind: EventModuleReset, Detail: "the module rebooted (" + line + ")", Subject: path})
			if err := conn.Sync(ctx); err != nil {
				return fmt.Errorf("%s: after reboot: %w", path, err)
			}
			w.reapply(ctx, conn)
		case <-events.notify:
			// An AT firewall decision: report it now, the module is unchanged.
			w.deps.publish(w.state, events.take())
			continue
		case <-t.C:
		case <-w.reeval:
			t.Reset(w.deps.interval()) // the interval may have been reloaded too
		}
		why = append(why, events.take()...)
		if err := w.identify(ctx, conn, usb, why); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

func isBoot(line string) bool {
	for _, m := range atcmd.DefaultBootMarkers {
		if line == m {
			return true
		}
	}
	return false
}

// proxy puts the AT firewall between the module and other software: a pty
// at ProxyLink for them, a pipe for the agent itself.
func (w *worker) proxy(modemPort io.ReadWriteCloser, events *eventLog) (*atcmd.Mux, io.ReadWriter, func(), error) {
	p, err := pty.Open()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := pty.Link(w.cfg.ProxyLink, p.Path()); err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	mux := atcmd.NewMux(modemPort, atcmd.MuxConfig{
		Logger: w.deps.log,
		Filter: func(host, line string, cmee int) atcmd.Verdict {
			if reason := w.undoesEnforcement(line); reason != "" {
				events.add(Event{Time: time.Now(), Kind: EventATFirewall, Detail: reason, Subject: line, Action: "deny", Rule: "enforcement"})
				w.deps.log.Info("agent: at firewall", "action", "deny", "rule", "enforcement", "line", line)
				return atcmd.Verdict{Reason: reason}
			}
			d := w.deps.policy().CheckATLine(line, cmee)
			if d.Rule != "" {
				events.add(Event{Time: time.Now(), Kind: EventATFirewall, Detail: d.Reason, Subject: line,
					Action: d.Action.String(), Rule: d.Rule})
				w.deps.log.Info("agent: at firewall", "action", d.Action.String(), "rule", d.Rule, "line", line)
			}
			return atcmd.Verdict{Allow: !d.Refused(), Reason: d.Reason, Reply: d.Reply}
		},
	})
	mux.Attach(p, atcmd.MuxHost{Name: "pty", Filtered: true, Unsolicited: true})
	agentSide, muxSide := net.Pipe()
	mux.Attach(muxSide, atcmd.MuxHost{Name: "agent", Unsolicited: true})
	cleanup := func() {
		mux.Close()
		agentSide.Close()
		pty.Unlink(w.cfg.ProxyLink, p.Path())
	}
	return mux, agentSide, cleanup, nil
}

// reapply puts a module that comes back (rebooted, re-plugged) into its
// last enforcement state at once, before the slow identification decides
// again: a reboot must not open a window with the radio on.
func (w *worker) reapply(ctx context.Context, conn *atcmd.Conn) {
	var cmd string
	switch w.state.Enforcement {
	case EnforceQuarantined:
		cmd = "AT+CFUN=4"
	case EnforceBlockedData:
		cmd = "AT+CGACT=0"
	default:
		return
	}
	if _, err := conn.Command(ctx, cmd); err != nil {
		w.deps.log.Warn("agent: re-applying enforcement after the module came back", "cmd", cmd, "err", err)
	}
}

// undoesEnforcement refuses the commands that would lift the module's
// quarantine or block-data state from behind the AT firewall. Before the
// module's first verdict both guards apply. It returns the reason, or "".
func (w *worker) undoesEnforcement(line string) string {
	state := policy.EnforcePending
	switch e, _ := w.enforcing.Load().(string); e {
	case "":
	case EnforceQuarantined:
		state = policy.EnforceQuarantined
	case EnforceBlockedData:
		state = policy.EnforceBlockedData
	default:
		state = policy.EnforceNone
	}
	return policy.CheckEnforcement(line, state)
}

// identify reads the module, audits it, judges it, enforces the verdict and
// publishes the state with what changed.
func (w *worker) identify(ctx context.Context, conn *atcmd.Conn, usb *modem.USBInfo, events []Event) error {
	m, err := modem.Identify(ctx, conn, modem.Options{Registry: w.deps.registry, USB: usb, Logger: w.deps.log})
	if err != nil {
		return err
	}
	m.Port = w.state.Port
	now := time.Now()
	if old := w.state.Module; old != nil {
		switch {
		case old.IMEI != m.IMEI:
			detail := fmt.Sprintf("module %s %s (IMEI %s) replaced by %s %s (IMEI %s)", old.Manufacturer, old.Model, old.IMEI, m.Manufacturer, m.Model, m.IMEI)
			m.Findings = append(m.Findings, modem.Finding{ID: "module-swapped", Severity: modem.SeverityHigh, Detail: detail})
			events = append(events, Event{Time: now, Kind: EventModuleSwapped, Detail: detail, Subject: m.IMEI})
			w.haveBase = false
		case old.ICCID != m.ICCID:
			events = append(events, Event{Time: now, Kind: EventSIMSwapped, Detail: fmt.Sprintf("SIM %s replaced by %s", old.ICCID, m.ICCID), Subject: m.ICCID})
		case old.Firmware != m.Firmware || old.FirmwareDetail != m.FirmwareDetail:
			events = append(events, Event{Time: now, Kind: EventFirmwareChanged, Detail: fmt.Sprintf("firmware %s changed to %s", old.Firmware, m.Firmware), Subject: m.IMEI})
		}
	}
	settings, err := modem.Audit(ctx, conn, m)
	if err != nil {
		return err
	}
	pol := w.deps.policy()
	if pol.Remediate {
		for _, s := range settings {
			if !s.Risky {
				continue
			}
			if err := modem.Remediate(ctx, conn, m.Vendor, s); err != nil {
				w.deps.log.Warn("agent: remediation failed", "setting", s.ID, "err", err)
				continue
			}
			events = append(events, Event{Time: now, Kind: EventSettingOff, Detail: s.Detail + ": switched off with " + s.Remedy, Subject: s.ID, Action: "remediate"})
		}
	}
	if err := w.reconcile(ctx, conn, m); err != nil {
		return err
	}
	v := Judge(pol, m)
	m.Verdict = v.Action.String()
	enf, ev, err := w.enforce(ctx, conn, v, m)
	if err != nil {
		return err
	}
	events = append(events, ev...)
	w.state.Up, w.state.Down = true, ""
	w.state.Module, w.state.Settings, w.state.Verdict, w.state.Enforcement = m, settings, v, enf
	w.state.Identified++
	w.state.AT = conn.Stats()
	w.deps.publish(w.state, events)
	return nil
}

// enforce puts a denied module into the policy's on_deny state, every time
// it is identified (so a reboot does not undo it), and lifts the state when
// the verdict no longer denies.
func (w *worker) enforce(ctx context.Context, conn *atcmd.Conn, v policy.Verdict, m *modem.Module) (string, []Event, error) {
	prev := w.state.Enforcement
	want := EnforceNone
	if v.Action == policy.Deny {
		switch v.OnDeny {
		case policy.Quarantine:
			want = EnforceQuarantined
		case policy.BlockData:
			want = EnforceBlockedData
		default:
			want = EnforceAlertOnly
		}
	}
	// The AT firewall guards what is wanted, even while the module resists.
	w.enforcing.Store(want)
	var cmd string
	switch {
	case want == EnforceQuarantined:
		cmd = "AT+CFUN=4" // 3GPP TS 27.007 §8.2: disable both transmit and receive RF circuits
	case want == EnforceBlockedData:
		cmd = "AT+CGACT=0" // §10.1.10: deactivate all PDP contexts
	case w.radioOff:
		cmd = "AT+CFUN=1" // the verdict changed: radio back on
	}
	var failure string
	if cmd != "" {
		if _, err := conn.Command(ctx, cmd); err != nil {
			if !errors.Is(err, atcmd.ErrError) {
				return prev, nil, err
			}
			failure = fmt.Sprintf("the module refused %s (%v)", cmd, err)
		}
	}
	// Read the state back: the report must say what the module does, not
	// what was asked of it.
	if failure == "" && cmd != "" {
		ok, what, err := w.verify(ctx, conn, want)
		if err != nil {
			return prev, nil, err
		}
		if !ok {
			failure = fmt.Sprintf("after %s the module reports %s", cmd, what)
		}
	}
	got := want
	switch {
	case failure != "":
		got = EnforceFailed
		m.Findings = append(m.Findings, modem.Finding{ID: "enforcement-failed", Severity: modem.SeverityHigh,
			Detail: "could not put the module into " + want + ": " + failure + "; retrying at every identification"})
	case want == EnforceQuarantined:
		w.radioOff = true
	case cmd == "AT+CFUN=1":
		w.radioOff = false
	}
	var ev []Event
	if got != prev {
		d := v.Decision()
		detail := fmt.Sprintf("%s -> %s (%s)", prev, got, d.Reason)
		if failure != "" {
			detail += ": " + failure
		}
		ev = append(ev, Event{Time: time.Now(), Kind: EventEnforced, Detail: detail, Action: got, Rule: d.Rule, Subject: cmd})
	}
	return got, ev, nil
}

// verify reads back what enforce asked for: the radio level (AT+CFUN?,
// 3GPP TS 27.007 §8.2) or the PDP context states (AT+CGACT?, §10.1.10).
func (w *worker) verify(ctx context.Context, conn *atcmd.Conn, want string) (bool, string, error) {
	if want == EnforceBlockedData {
		resp, err := conn.Command(ctx, "AT+CGACT?")
		if err != nil {
			if errors.Is(err, atcmd.ErrError) {
				return false, "an error to AT+CGACT?", nil
			}
			return false, "", err
		}
		for _, l := range resp.Lines {
			if _, st, ok := strings.Cut(modem.CleanValue(l), ","); ok && strings.TrimSpace(st) == "1" {
				return false, "an active PDP context (" + l + ")", nil
			}
		}
		return true, "", nil
	}
	resp, err := conn.Command(ctx, "AT+CFUN?")
	if err != nil {
		if errors.Is(err, atcmd.ErrError) {
			return false, "an error to AT+CFUN?", nil
		}
		return false, "", err
	}
	level := ""
	if len(resp.Lines) > 0 {
		level, _, _ = strings.Cut(modem.CleanValue(resp.Lines[0]), ",")
		level = strings.TrimSpace(level)
	}
	if want == EnforceQuarantined {
		return level == "4" || level == "0", "radio level " + level, nil
	}
	return level == "1", "radio level " + level, nil
}

// reconcile compares the module's own byte counter with what crossed the
// host's cellular interfaces: bytes the module sent that the host never
// did were sent by the module's own stack.
func (w *worker) reconcile(ctx context.Context, conn *atcmd.Conn, m *modem.Module) error {
	c, ok, err := modem.ReadCounters(ctx, conn, m.Vendor)
	if err != nil || !ok {
		return err
	}
	host, _ := w.deps.hostBytes()
	if !w.haveBase || c.Sent < w.baseMod {
		w.baseMod, w.baseHost, w.haveBase = c.Sent, host, true
		return nil
	}
	modSent := c.Sent - w.baseMod
	hostSent := host - w.baseHost
	if modSent > hostSent+4096 && modSent > hostSent+hostSent/20 {
		m.Findings = append(m.Findings, modem.Finding{ID: "module-own-traffic", Severity: modem.SeverityHigh,
			Detail: fmt.Sprintf("the module counted %d bytes sent but only %d crossed the host's cellular interfaces since monitoring began: %d bytes came from the module's own IP stack", modSent, hostSent, modSent-hostSent)})
	}
	return nil
}

// eventLog collects events from goroutines the worker does not own (the
// AT firewall filter).
type eventLog struct {
	mu     sync.Mutex
	ev     []Event
	notify chan struct{}
}

func newEventLog() *eventLog { return &eventLog{notify: make(chan struct{}, 1)} }

// add keeps e for the next report (at most 1000 pending; more are
// dropped, the AT firewall logs every decision anyway) and wakes the worker.
func (l *eventLog) add(e Event) {
	l.mu.Lock()
	if len(l.ev) < 1000 {
		l.ev = append(l.ev, e)
	}
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.ev
	l.ev = nil
	return ev
}
