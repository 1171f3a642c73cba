package simulator

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scenario is a timeline of events applied to a running modem (Modem.Play).
//
// The text format has one event per line: an offset from the start of the
// scenario (a Go duration, non-decreasing), an event name, and arguments.
// Double quotes group words. '#' starts a comment line.
//
//	0s    register home            # home | roaming | searching | denied | none
//	5s    signal 12                # +CSQ rssi 0..31 or 99
//	10s   roam 26202 "Vodafone.de" "VF"   # PLMN [long name [short name]]
//	20s   sim absent               # absent | ready | locked
//	25s   sim swap 26203           # a new SIM: new IMSI/ICCID [with this PLMN]
//	30s   reboot
//	40s   firmware EC25EFAR06A07M4G EC25EFAR06A07M4G_01.002.01.002
//	45s   cfun 4                   # 0 | 1 | 4
//	50s   urc +QIND: "FOTA","END",0  # the rest of the line, sent as a URC
//	60s   traffic 2048 512         # the module's own stack sends (and receives) bytes
type Scenario struct {
	Name   string
	Events []Event
}

// Event is one scenario line.
type Event struct {
	At   time.Duration
	Kind string
	Args []string
	Line int
}

var regNames = map[string]RegStat{"none": RegNone, "home": RegHome, "searching": RegSearching, "denied": RegDenied, "unknown": RegUnknown, "roaming": RegRoaming}

// ParseScenario parses a scenario file; name is used in errors
// ("simulator: NAME:LINE: ...").
func ParseScenario(name string, data []byte) (*Scenario, error) {
	sc := &Scenario{Name: name}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	ln := 0
	var last time.Duration
	for s.Scan() {
		ln++
		text := strings.TrimSpace(s.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		errf := func(format string, a ...any) error {
			return fmt.Errorf("simulator: %s:%d: %s", name, ln, fmt.Sprintf(format, a...))
		}
		at, rest, _ := strings.Cut(text, " ")
		d, err := time.ParseDuration(at)
		if err != nil || d < 0 {
			return nil, errf("%q is not an offset such as 10s or 1m30s", at)
		}
		if d < last {
			return nil, errf("offset %s is before the previous event's %s; keep events in time order", d, last)
		}
		last = d
		rest = strings.TrimSpace(rest)
		kind, argText, _ := strings.Cut(rest, " ")
		ev := Event{At: d, Kind: kind, Line: ln}
		if kind == "urc" {
			ev.Args = []string{strings.TrimSpace(argText)}
		} else {
			ev.Args, err = fields(argText)
			if err != nil {
				return nil, errf("%v", err)
			}
		}
		if err := checkEvent(ev); err != nil {
			return nil, errf("%v", err)
		}
		sc.Events = append(sc.Events, ev)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("simulator: %s: %w", name, err)
	}
	return sc, nil
}

func fields(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inq, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inq = !inq
			have = true
		case (c == ' ' || c == '\t') && !inq:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		case c == '#' && !inq && !have:
			i = len(s) // trailing comment
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if inq {
		return nil, fmt.Errorf("unterminated quote")
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

const scenarioEvents = "register, signal, roam, sim, reboot, firmware, cfun, urc, traffic"

func checkEvent(ev Event) error {
	n := len(ev.Args)
	want := func(lo, hi int, usage string) error {
		if n < lo || n > hi {
			return fmt.Errorf("%s: usage: %s", ev.Kind, usage)
		}
		return nil
	}
	switch ev.Kind {
	case "register":
		if err := want(1, 1, "register home|roaming|searching|denied|none"); err != nil {
			return err
		}
		if _, ok := regNames[ev.Args[0]]; !ok {
			return fmt.Errorf("register: %q is not home, roaming, searching, denied, unknown or none", ev.Args[0])
		}
	case "signal":
		if err := want(1, 1, "signal RSSI (0..31 or 99)"); err != nil {
			return err
		}
		if v, err := strconv.Atoi(ev.Args[0]); err != nil || v < 0 || (v > 31 && v != 99) {
			return fmt.Errorf("signal: %q must be 0..31 or 99", ev.Args[0])
		}
	case "roam":
		if err := want(1, 3, `roam PLMN ["long name" ["short"]]`); err != nil {
			return err
		}
		if l := len(ev.Args[0]); (l != 5 && l != 6) || strings.Trim(ev.Args[0], "0123456789") != "" {
			return fmt.Errorf("roam: PLMN %q must be 5 or 6 digits (MCC+MNC)", ev.Args[0])
		}
	case "sim":
		if n < 1 {
			return fmt.Errorf("sim: usage: sim absent|ready|locked|swap [PLMN]")
		}
		switch ev.Args[0] {
		case "absent", "ready", "locked":
			return want(1, 1, "sim absent|ready|locked")
		case "swap":
			return want(1, 2, "sim swap [PLMN]")
		}
		return fmt.Errorf("sim: %q is not absent, ready, locked or swap", ev.Args[0])
	case "reboot":
		return want(0, 0, "reboot")
	case "firmware":
		return want(1, 2, "firmware REVISION [FULL-BUILD]")
	case "cfun":
		if err := want(1, 1, "cfun 0|1|4"); err != nil {
			return err
		}
		if a := ev.Args[0]; a != "0" && a != "1" && a != "4" {
			return fmt.Errorf("cfun: %q must be 0, 1 or 4", a)
		}
	case "urc":
		if ev.Args[0] == "" {
			return fmt.Errorf("urc: needs the line to send")
		}
	case "traffic":
		if err := want(1, 2, "traffic SENT [RECEIVED]"); err != nil {
			return err
		}
		for _, a := range ev.Args {
			if _, err := strconv.ParseUint(a, 10, 32); err != nil {
				return fmt.Errorf("traffic: %q must be a byte count", a)
			}
		}
	default:
		return fmt.Errorf("unknown event %q; events: %s", ev.Kind, scenarioEvents)
	}
	return nil
}

// Play applies the scenario's events at their offsets from now. It returns
// when the last event is applied, or ctx's error when ctx is done first.
func (m *Modem) Play(ctx context.Context, sc *Scenario) error {
	start := time.Now()
	for _, ev := range sc.Events {
		if d := time.Until(start.Add(ev.At)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-m.done:
				t.Stop()
				return ErrClosed
			}
		}
		m.Apply(ev)
	}
	return nil
}

// Apply applies one event now. Events are validated by ParseScenario; an
// invalid event is logged and ignored.
func (m *Modem) Apply(ev Event) {
	if err := checkEvent(ev); err != nil {
		m.log.Warn("simulator: scenario event ignored", "line", ev.Line, "err", err)
		return
	}
	a := ev.Args
	arg := func(i int) string { return argAt(a, i) }
	m.log.Debug("simulator: scenario", "at", ev.At, "event", ev.Kind, "args", a)
	switch ev.Kind {
	case "register":
		m.SetRegistration(regNames[a[0]])
	case "signal":
		v, _ := strconv.Atoi(a[0])
		m.SetSignal(v)
	case "roam":
		m.Roam(Operator{PLMN: a[0], Long: arg(1), Short: arg(2)})
	case "sim":
		switch a[0] {
		case "absent":
			m.SetSIM(SIMAbsent)
		case "ready":
			m.SetSIM(SIMReady)
		case "locked":
			m.SetSIM(SIMLocked)
		case "swap":
			m.SwapSIM(arg(1))
		}
	case "reboot":
		m.Reboot()
	case "firmware":
		m.SetFirmware(a[0], arg(1))
	case "cfun":
		v, _ := strconv.Atoi(a[0])
		m.SetCFUN(v)
	case "urc":
		m.InjectURC(a[0])
	case "traffic":
		s, _ := strconv.ParseUint(a[0], 10, 64)
		r, _ := strconv.ParseUint(arg(1), 10, 64)
		m.StackSend(s, r)
	}
}
