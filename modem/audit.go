package modem

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Setting is one persistent module setting the audit read. Such settings
// live in the module's non-volatile memory and survive reboots and host
// reinstalls; some start traffic that never crosses the host's network
// interfaces (reference: security-and-regulation notes §2.2).
type Setting struct {
	ID     string `json:"id"`     // e.g. "quectel-qiotreg"
	Value  string `json:"value"`  // as the module reported it
	Risky  bool   `json:"risky"`  // the value enables the feature
	Detail string `json:"detail"` // what the feature does
	// Remedy is the command that switches the feature off; empty when
	// there is none we trust.
	Remedy string `json:"remedy,omitempty"`
}

// auditCheck reads one setting of one vendor.
type auditCheck struct {
	vendor   string
	id       string
	query    string
	severity string
	detail   string
	// judge returns the value and whether it is risky, from the answer.
	judge func(lines []string) (value string, risky, ok bool)
	// remedy returns the command that turns it off, given the value.
	remedy func(value string) string
}

// firstField judges "+X: <n>[,...]": risky when the first field is not 0.
func firstField(lines []string) (string, bool, bool) {
	for _, l := range lines {
		f := valueFields(l)
		if f[0] == "" {
			continue
		}
		return strings.Join(f, ","), f[0] != "0", true
	}
	return "", false, false
}

func fixed(cmd string) func(string) string { return func(string) string { return cmd } }

// auditChecks are the persistent settings modemguard reads. Sources: Quectel
// QuecThing (AT+QIOTREG, "Quectel QuecThing AT Commands Manual"), Quectel
// AT+QCFG="usbcfg" with the ADB flag (EC2x/EG2x general commands manual),
// SIMCom AT+CUSBADB (SIM7500/SIM7600 AT command manual), Telit OneEdge
// LwM2M (AT#LWM2MENA), SMS and TCP remote AT execution (AT#SMSATRUN,
// AT#TCPATRUND; Telit LE910Cx AT commands reference guide).
var auditChecks = []auditCheck{
	{vendor: "quectel", id: "quectel-qiotreg", query: "AT+QIOTREG?", severity: SeverityMedium,
		detail: "QuecThing cloud auto-registration: the module connects to Quectel's IoT platform on its own",
		judge:  firstField, remedy: fixed("AT+QIOTREG=0")},
	{vendor: "quectel", id: "quectel-adb", query: `AT+QCFG="usbcfg"`, severity: SeverityHigh,
		detail: "ADB (Android Debug Bridge) enabled on the module's USB interface: a debug shell into the module",
		judge:  quectelADB, remedy: quectelADBOff},
	{vendor: "simcom", id: "simcom-adb", query: "AT+CUSBADB?", severity: SeverityHigh,
		detail: "ADB enabled on the module's USB interface: a debug shell into the module",
		judge:  firstField, remedy: fixed("AT+CUSBADB=0")},
	{vendor: "telit-cinterion", id: "telit-lwm2m", query: "AT#LWM2MENA?", severity: SeverityMedium,
		detail: "the OneEdge LwM2M client: the module talks to a device-management server on its own",
		judge:  firstField, remedy: fixed("AT#LWM2MENA=0")},
	{vendor: "telit-cinterion", id: "telit-smsatrun", query: "AT#SMSATRUN?", severity: SeverityHigh,
		detail: "AT commands over SMS: anyone who can text the SIM can command the module",
		judge:  firstField, remedy: fixed("AT#SMSATRUN=0")},
	{vendor: "telit-cinterion", id: "telit-tcpatrun", query: "AT#TCPATRUND?", severity: SeverityHigh,
		detail: "AT commands over a TCP server on the module: remote control that bypasses the host",
		judge:  firstField, remedy: fixed("AT#TCPATRUND=0")},
}

// quectelADB reads `+QCFG: "usbcfg",<VID>,<PID>,<diag>,<nmea>,<at>,<modem>,<net>,<adb>,<uac>`:
// the ADB flag is the eighth value.
func quectelADB(lines []string) (string, bool, bool) {
	for _, l := range lines {
		f := valueFields(l)
		if len(f) >= 9 && strings.EqualFold(f[0], "usbcfg") {
			v := strings.Join(f[1:], ",")
			return v, f[8] == "1", true
		}
	}
	return "", false, false
}

func quectelADBOff(value string) string {
	f := strings.Split(value, ",")
	if len(f) < 8 {
		return ""
	}
	f[7] = "0"
	return `AT+QCFG="usbcfg",` + strings.Join(f, ",")
}

// Audit reads the persistent settings that matter for the vendor and
// returns them with a finding for each risky one added to m. A setting the
// module does not know is skipped.
func Audit(ctx context.Context, c Commander, m *Module) ([]Setting, error) {
	id := &identifier{ctx: ctx, c: c}
	var out []Setting
	for _, chk := range auditChecks {
		if chk.vendor != m.Vendor {
			continue
		}
		ls, err := id.tryLines("audit", chk.query)
		if err != nil {
			return out, err
		}
		v, risky, ok := chk.judge(ls)
		if !ok {
			continue
		}
		s := Setting{ID: chk.id, Value: v, Risky: risky, Detail: chk.detail}
		if risky {
			s.Remedy = chk.remedy(v)
			m.add(chk.severity, "setting-"+chk.id, fmt.Sprintf("%s (%s answers %q)", chk.detail, chk.query, v))
		}
		out = append(out, s)
	}
	return out, nil
}

// Remediate switches a risky setting off with its Remedy command and reads
// it back; it fails when the module refuses or keeps the setting.
func Remediate(ctx context.Context, c Commander, vendor string, s Setting) error {
	if !s.Risky {
		return nil
	}
	if s.Remedy == "" {
		return fmt.Errorf("modem: no trusted command switches off %s", s.ID)
	}
	if _, err := c.Command(ctx, s.Remedy); err != nil {
		return fmt.Errorf("modem: switching off %s: %w", s.ID, err)
	}
	probe := &Module{Vendor: vendor}
	after, err := Audit(ctx, c, probe)
	if err != nil {
		return err
	}
	for _, a := range after {
		if a.ID == s.ID && a.Risky {
			return fmt.Errorf("modem: %s is still on after %s (the module answers %q)", s.ID, s.Remedy, a.Value)
		}
	}
	return nil
}

// Counters are the module's own data counters for its PDP contexts, in
// bytes. They count the module's internal IP stack too, which host
// interface counters never see.
type Counters struct {
	Sent, Received uint64
}

// ReadCounters reads the module's byte counters: Quectel AT+QGDCNT?
// ("+QGDCNT: <sent>,<recv>") or Telit AT#GDATAVOL=1 (per context:
// "#GDATAVOL: <cid>,<tot>,<sent>,<received>"). ok is false when the
// vendor has none we know.
func ReadCounters(ctx context.Context, c Commander, vendor string) (Counters, bool, error) {
	id := &identifier{ctx: ctx, c: c}
	switch vendor {
	case "quectel":
		ls, err := id.tryLines("counters", "AT+QGDCNT?")
		if err != nil || len(ls) == 0 {
			return Counters{}, false, err
		}
		f := valueFields(ls[0])
		if len(f) < 2 {
			return Counters{}, false, nil
		}
		s, err1 := strconv.ParseUint(f[0], 10, 64)
		r, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return Counters{}, false, nil
		}
		return Counters{Sent: s, Received: r}, true, nil
	case "telit-cinterion":
		ls, err := id.tryLines("counters", "AT#GDATAVOL=1")
		if err != nil || len(ls) == 0 {
			return Counters{}, false, err
		}
		var total Counters
		found := false
		for _, l := range ls {
			f := valueFields(l)
			if len(f) < 4 {
				continue
			}
			s, err1 := strconv.ParseUint(f[2], 10, 64)
			r, err2 := strconv.ParseUint(f[3], 10, 64)
			if err1 == nil && err2 == nil {
				total.Sent += s
				total.Received += r
				found = true
			}
		}
		return total, found, nil
	}
	return Counters{}, false, nil
}
