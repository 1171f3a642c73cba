package simulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Faults are injected misbehaviours. The zero value injects nothing.
// Probabilities are drawn from the modem's seeded generator, so a given seed
// misbehaves the same way every run.
type Faults struct {
	Latency    time.Duration // added before every command response
	Jitter     time.Duration // plus a random 0..Jitter
	Split      int           // write responses in chunks of this many bytes (1 = byte by byte); 0 = whole
	SplitDelay time.Duration // pause between chunks
	Drop       float64       // probability that a command line gets no answer at all (echo still sent)
	Garbage    float64       // probability of a random binary burst before a response
	URCMid     float64       // probability of a URC between a response's info lines and its final code
	URCLine    string        // the URC injected by URCMid (default: the profile's new-SMS URC)
	RebootOn   string        // a command prefix (e.g. "AT+CGMR" or "+COPS=?"): the module reboots instead of answering
	LieAs      string        // answer identity commands as this other profile (USB IDs stay); set at New only
}

// faultKeys documents the fault spec keys, for --help and errors.
const faultKeys = "latency=DUR, jitter=DUR, split=N, split-delay=DUR, drop=P, garbage=P, urc-mid=P, urc-line=TEXT, reboot-on=CMD, lie=PROFILE"

// ParseFaults parses a comma-separated fault spec such as
// "latency=50ms,jitter=20ms,split=1,drop=0.1,reboot-on=AT+CGMR,lie=huawei-me909s".
// P is a probability 0..1; DUR a Go duration. urc-line must be the last key
// when its text contains commas.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return f, nil
	}
	for spec != "" {
		var item string
		if strings.HasPrefix(spec, "urc-line=") {
			item, spec = spec, ""
		} else {
			item, spec, _ = strings.Cut(spec, ",")
		}
		k, v, found := strings.Cut(strings.TrimSpace(item), "=")
		if !found {
			return Faults{}, fmt.Errorf("simulator: fault %q: want key=value; keys: %s", item, faultKeys)
		}
		var err error
		dur := func() time.Duration {
			d, e := time.ParseDuration(v)
			if e != nil || d < 0 || d > time.Hour {
				err = fmt.Errorf("simulator: fault %s=%q: want a duration such as 50ms (0..1h)", k, v)
			}
			return d
		}
		prob := func() float64 {
			p, e := strconv.ParseFloat(v, 64)
			if e != nil || !(p >= 0 && p <= 1) {
				err = fmt.Errorf("simulator: fault %s=%q: want a probability between 0 and 1", k, v)
			}
			return p
		}
		switch k {
		case "latency":
			f.Latency = dur()
		case "jitter":
			f.Jitter = dur()
		case "split":
			n, e := strconv.Atoi(v)
			if e != nil || n < 0 || n > 1<<20 {
				err = fmt.Errorf("simulator: fault split=%q: want a byte count (1 = byte by byte)", v)
			}
			f.Split = n
		case "split-delay":
			f.SplitDelay = dur()
		case "drop":
			f.Drop = prob()
		case "garbage":
			f.Garbage = prob()
		case "urc-mid":
			f.URCMid = prob()
		case "urc-line":
			f.URCLine = v
		case "reboot-on":
			if v == "" {
				err = fmt.Errorf("simulator: fault reboot-on: want a command such as AT+CGMR")
			}
			f.RebootOn = v
		case "lie":
			if _, e := LoadProfile(v); e != nil {
				err = fmt.Errorf("simulator: fault lie=%q: %w", v, e)
			}
			f.LieAs = v
		default:
			return Faults{}, fmt.Errorf("simulator: unknown fault %q; keys: %s", k, faultKeys)
		}
		if err != nil {
			return Faults{}, err
		}
	}
	return f, nil
}
