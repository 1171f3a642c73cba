package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/modemguard/modemguard/atcmd"
)

// Module is everything modemguard learns about one cellular module. Its
// JSON form is what `modemguard scan --json` prints and what reports carry
// (the same key names).
type Module struct {
	Port           string    `json:"port,omitempty"`
	Manufacturer   string    `json:"manufacturer"`
	Model          string    `json:"model"`
	Firmware       string    `json:"firmware"`
	FirmwareDetail string    `json:"firmware_detail"`
	IMEI           string    `json:"imei"`
	TAC            string    `json:"tac,omitempty"`
	IMSI           string    `json:"imsi"`
	ICCID          string    `json:"iccid"`
	SIM            string    `json:"sim"` // ready, absent, pin-required, puk-required, not-ready, unknown
	Vendor         string    `json:"vendor"`
	VendorName     string    `json:"vendor_name,omitempty"`
	OriginCountry  string    `json:"origin_country"`
	Lists          []string  `json:"lists"`
	USB            USBInfo   `json:"usb"`
	Network        Network   `json:"network"`
	Findings       []Finding `json:"findings"`
	// Verdict is the policy's verdict (allow, alert, deny) when a policy
	// judged the module; package modem never sets it.
	Verdict string `json:"verdict,omitempty"`
}

// USBInfo is the module's USB identity, when it was found on USB.
type USBInfo struct {
	VID       string `json:"vid"`
	PID       string `json:"pid"`
	Interface int    `json:"interface"` // bInterfaceNumber of the AT port; -1 when unknown
}

// Network is what the module reports about the cellular network.
type Network struct {
	Operator   string `json:"operator"` // alphanumeric name, when the module gives one
	PLMN       string `json:"plmn"`     // MCC+MNC of the serving network
	RAT        string `json:"rat"`      // gsm, umts, lte, lte-m, nb-iot, nr5g-sa, nr5g-nsa
	Registered bool   `json:"registered"`
	Roaming    bool   `json:"roaming"`
	State      string `json:"state"` // home, roaming, searching, denied, not-registered, unknown
	APN        string `json:"apn"`
	Signal     *int   `json:"signal"` // RSSI in dBm; null when unknown
}

// Finding is one observation worth a person's attention.
type Finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"` // info, low, medium, high
	Detail   string `json:"detail"`
}

// Severities of findings.
const (
	SeverityInfo   = "info"
	SeverityLow    = "low"
	SeverityMedium = "medium"
	SeverityHigh   = "high"
)

// Options tune Identify. The zero value works.
type Options struct {
	// Registry maps reported names to vendors. Nil means DefaultRegistry.
	Registry *Registry
	// USB is the module's USB identity when known (from discovery); it is
	// evidence checked against the AT answers.
	USB *USBInfo
	// Progress, if set, is told each step ("manufacturer", "imei", ...)
	// before it runs, for a terminal progress line.
	Progress func(step string)
	// Logger receives debug records. Nil means none.
	Logger *slog.Logger
}

// Commander is what Identify needs from an AT session: *atcmd.Conn.
type Commander interface {
	Command(ctx context.Context, cmdLine string, opts ...atcmd.Option) (atcmd.Response, error)
}

// Identify asks a synced module what it is, with the fallbacks
// ModemManager uses (mm-broadband-modem.c: +CGMI → +GMI → ATI, ...): a
// command the module does not support is expected, not an error. It fails
// only when the session fails (timeout, port gone); what could not be read
// stays empty and becomes a finding.
func Identify(ctx context.Context, c Commander, opts Options) (*Module, error) {
	reg := opts.Registry
	if reg == nil {
		reg = DefaultRegistry()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := &identifier{ctx: ctx, c: c, log: log, progress: opts.Progress}
	m := &Module{SIM: "unknown", Lists: []string{}, Findings: []Finding{}, USB: USBInfo{Interface: -1}}
	if opts.USB != nil {
		m.USB = *opts.USB
	}

	ati, err := id.tryLines("ati", "ATI") // Nordic's nRF91 has no ATI
	if err != nil {
		return nil, err
	}
	if m.Manufacturer, err = id.value("manufacturer", []string{"AT+CGMI", "AT+GMI"}, ati, "Manufacturer", 0); err != nil {
		return nil, err
	}
	if m.Model, err = id.value("model", []string{"AT+CGMM", "AT+GMM"}, ati, "Model", 1); err != nil {
		return nil, err
	}
	if m.Firmware, err = id.value("firmware", []string{"AT+CGMR", "AT+GMR"}, ati, "Revision", -1); err != nil {
		return nil, err
	}
	m.Firmware = cleanRevision(m.Firmware)
	if m.Firmware == "" {
		m.Firmware = cleanRevision(reviseLine(ati))
	}

	if v, ok := reg.Match(m.Manufacturer); ok {
		m.Vendor, m.VendorName, m.OriginCountry, m.Lists = v.ID, v.Name, v.Country, v.ListIDs()
	} else if v, ok := matchLines(reg, ati); ok {
		// The manufacturer line is a chipset maker or blank ("QUALCOMM
		// INCORPORATED" on ZTE sticks); the ATI block may still name the brand.
		m.Vendor, m.VendorName, m.OriginCountry, m.Lists = v.ID, v.Name, v.Country, v.ListIDs()
		m.add(SeverityLow, "manufacturer-generic", fmt.Sprintf("AT+CGMI answers %q; the vendor %s was taken from the ATI block", m.Manufacturer, v.Name))
	} else {
		m.Vendor = "unknown"
		m.add(SeverityMedium, "vendor-unknown", fmt.Sprintf("manufacturer %q is not in the vendor registry; origin and list membership cannot be judged (add it with --vendors FILE)", m.Manufacturer))
	}

	if err := id.imei(m, ati); err != nil {
		return nil, err
	}
	if err := id.firmwareDetail(m); err != nil {
		return nil, err
	}
	if err := id.sim(m); err != nil {
		return nil, err
	}
	if err := id.network(m); err != nil {
		return nil, err
	}
	checkConsistency(reg, m)
	return m, nil
}

type identifier struct {
	ctx      context.Context
	c        Commander
	log      *slog.Logger
	progress func(string)
}

// errUnsupported marks a command the module refused or does not know.
var errUnsupported = errors.New("modem: command not supported")

// lines runs one command and returns its information lines. A device error
// (ERROR, +CME ERROR, a vendor final) is errUnsupported wrapped with it; a
// session failure is returned as is.
func (id *identifier) lines(step, cmd string) ([]string, error) {
	if id.progress != nil {
		id.progress(step)
	}
	resp, err := id.c.Command(id.ctx, cmd)
	if errors.Is(err, atcmd.ErrError) || errors.Is(err, atcmd.ErrNoCarrier) {
		id.log.Debug("modem: command refused", "cmd", cmd, "err", err)
		return nil, fmt.Errorf("%w: %w", errUnsupported, err)
	}
	if err != nil {
		return nil, err
	}
	return resp.Lines, nil
}

// tryLines is lines with refusals turned into (nil, nil).
func (id *identifier) tryLines(step, cmd string) ([]string, error) {
	ls, err := id.lines(step, cmd)
	if errors.Is(err, errUnsupported) {
		return nil, nil
	}
	return ls, err
}

// value reads one identity string: the first command that answers with a
// non-empty value wins; otherwise the ATI block's "label:" line, or its
// line number atiLine (when >= 0).
func (id *identifier) value(step string, cmds, ati []string, label string, atiLine int) (string, error) {
	for _, cmd := range cmds {
		ls, err := id.tryLines(step, cmd)
		if err != nil {
			return "", err
		}
		if v := firstValue(ls); v != "" {
			return v, nil
		}
	}
	if v, ok := labelled(ati, label); ok && v != "" {
		return v, nil
	}
	if atiLine >= 0 && atiLine < len(ati) && !strings.Contains(ati[atiLine], ":") {
		return CleanValue(ati[atiLine]), nil
	}
	return "", nil
}

// firstValue is the first non-empty cleaned line.
func firstValue(ls []string) string {
	for _, l := range ls {
		if v := CleanValue(l); v != "" {
			return v
		}
	}
	return ""
}

// reviseLine finds a Cinterion/Siemens style "REVISION 03.006" line.
func reviseLine(ls []string) string {
	for _, l := range ls {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "REVISION "); ok {
			return v
		}
	}
	return ""
}

func cleanRevision(v string) string {
	if r, ok := strings.CutPrefix(v, "REVISION "); ok {
		return strings.TrimSpace(r)
	}
	return v
}

func matchLines(reg *Registry, ls []string) (*Vendor, bool) {
	for _, l := range ls {
		if v, ok := reg.Match(CleanValue(l)); ok {
			return v, true
		}
	}
	return nil, false
}

func (m *Module) add(sev, id, detail string) {
	m.Findings = append(m.Findings, Finding{ID: id, Severity: sev, Detail: detail})
}

// imei reads the IMEI: AT+CGSN, then AT+GSN, AT+CGSN=1 (Nordic), AT#CGSN
// (Telit), then the ATI block's "IMEI:" line. Telit's AT+GSN can answer a
// serial number, so every answer must parse as a Luhn-valid IMEI.
func (id *identifier) imei(m *Module, ati []string) error {
	var bad []string
	for _, cmd := range []string{"AT+CGSN", "AT+GSN", "AT+CGSN=1", "AT#CGSN"} {
		ls, err := id.tryLines("imei", cmd)
		if err != nil {
			return err
		}
		for _, l := range ls {
			imei, err := ParseIMEI(l)
			if err == nil {
				m.IMEI, m.TAC = imei.Value, imei.TAC
				return nil
			}
			bad = append(bad, fmt.Sprintf("%s: %v", cmd, err))
		}
	}
	if v, ok := labelled(ati, "IMEI"); ok {
		if imei, err := ParseIMEI(v); err == nil {
			m.IMEI, m.TAC = imei.Value, imei.TAC
			return nil
		}
	}
	if len(bad) > 0 {
		m.add(SeverityHigh, "imei-invalid", "the module gave no valid IMEI: "+strings.Join(bad, "; "))
	} else {
		m.add(SeverityMedium, "imei-missing", "the module answered no IMEI command")
	}
	return nil
}

// firmwareCommands are the vendor commands that give the full firmware
// build: Quectel AT+QGMR (ModemManager mm-shared-quectel.c), Fibocom
// AT+GTPKGVER? (mm-shared-fibocom.c), Telit AT#SWPKGV (mm-shared-telit.c),
// u-blox ATI9 (Particle Device OS SaraNcpClient), SIMCom AT+SIMCOMATI,
// Huawei AT^VERSION?, Nordic AT%SHORTSWVER and AT%HWVERSION (nRF91 AT
// command reference), Sierra's full ATI revision line.
var firmwareCommands = map[string][]string{
	"quectel":         {"AT+QGMR"},
	"fibocom":         {"AT+GTPKGVER?"},
	"telit-cinterion": {"AT#SWPKGV"},
	"u-blox":          {"ATI9"},
	"simcom":          {"AT+SIMCOMATI"},
	"huawei":          {"AT^VERSION?"},
	"nordic":          {"AT%SHORTSWVER", "AT%HWVERSION"},
	"sierra-wireless": {"ATI"},
}

func (id *identifier) firmwareDetail(m *Module) error {
	var parts []string
	for _, cmd := range firmwareCommands[m.Vendor] {
		ls, err := id.tryLines("firmware detail", cmd)
		if err != nil {
			return err
		}
		if cmd == "ATI" || cmd == "AT+SIMCOMATI" {
			if v, ok := labelled(ls, "Revision"); ok {
				parts = append(parts, v)
			}
			continue
		}
		for _, l := range ls {
			if v := CleanValue(l); v != "" {
				parts = append(parts, v)
			}
		}
	}
	m.FirmwareDetail = strings.Join(parts, " ")
	return nil
}

// sim reads the SIM state (AT+CPIN?), the IMSI and the ICCID. A missing or
// locked SIM is a state, not an error.
func (id *identifier) sim(m *Module) error {
	ls, err := id.lines("sim", "AT+CPIN?")
	var cme *atcmd.CMEError
	switch {
	case errors.As(err, &cme):
		m.SIM = simStateFromCME(cme.Code)
	case errors.Is(err, errUnsupported):
	case err != nil:
		return err
	default:
		m.SIM = simStateFromCPIN(firstValue(ls))
	}
	for _, cmd := range []string{"AT+CIMI", "AT#CIMI"} {
		ls, err := id.tryLines("imsi", cmd)
		if err != nil {
			return err
		}
		if imsi, err := ParseIMSI(firstValue(ls)); err == nil && len(ls) > 0 {
			m.IMSI = imsi.Value
			break
		}
	}
	for _, cmd := range iccidCommands(m.Vendor) {
		ls, err := id.tryLines("iccid", cmd)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if cc, err := ParseICCID(l); err == nil {
				m.ICCID = cc.Value
				if !cc.LuhnValid {
					m.add(SeverityInfo, "iccid-check-digit", fmt.Sprintf("ICCID %s fails its Luhn check digit (some issuers do not use one)", cc.Value))
				}
				return nil
			}
		}
	}
	if m.SIM == "ready" {
		m.add(SeverityLow, "iccid-missing", "the SIM is ready but no ICCID command answered")
	}
	return nil
}

// iccidCommands lists the ICCID dialects, the vendor's own first: standard
// AT+CCID, Quectel AT+QCCID, SIMCom AT+CICCID, Telit AT#CCID, Huawei
// AT^ICCID?, u-blox/Fibocom AT+ICCID, Nordic AT%XICCID, Cinterion AT^SCID,
// ZTE AT+ZGETICCID (Eclipse Kura's ZTE command set), and last AT+CRSM
// reading EF_ICCID (3GPP TS 27.007 §8.18, file 2FE2).
func iccidCommands(vendor string) []string {
	first := map[string]string{
		"quectel": "AT+QCCID", "simcom": "AT+CICCID", "telit-cinterion": "AT#CCID",
		"huawei": "AT^ICCID?", "u-blox": "AT+CCID", "nordic": "AT%XICCID", "fibocom": "AT+CCID",
		"zte": "AT+ZGETICCID",
	}
	all := []string{"AT+CCID", "AT+QCCID", "AT+CICCID", "AT#CCID", "AT^ICCID?", "AT+ICCID", "AT%XICCID", "AT^SCID", "AT+ZGETICCID", "AT+CRSM=176,12258,0,0,10"}
	f, ok := first[vendor]
	if !ok {
		return all
	}
	out := []string{f}
	for _, c := range all {
		if c != f {
			out = append(out, c)
		}
	}
	return out
}

func simStateFromCPIN(v string) string {
	switch strings.ToUpper(v) {
	case "READY":
		return "ready"
	case "SIM PIN", "SIM PIN2", "PH-SIM PIN":
		return "pin-required"
	case "SIM PUK", "SIM PUK2":
		return "puk-required"
	case "NOT READY", "NOT INSERTED":
		return "absent"
	}
	return "unknown"
}

// simStateFromCME maps the +CME ERROR codes AT+CPIN? gives without a
// usable SIM (3GPP TS 27.007 §9.2.1).
func simStateFromCME(code int) string {
	switch code {
	case 10, 13, 15:
		return "absent"
	case 11, 17:
		return "pin-required"
	case 12, 18:
		return "puk-required"
	case 14:
		return "not-ready"
	}
	return "unknown"
}

// network reads registration (+CEREG/+CGREG/+CREG/+C5GREG), the operator
// (+COPS in numeric and then long alphanumeric format), signal (+CSQ) and
// the APN of the active PDP context (+CGACT?, +CGDCONT?).
func (id *identifier) network(m *Module) error {
	n := &m.Network
	n.State = "unknown"
	best := -1
	for _, cmd := range []string{"AT+C5GREG?", "AT+CEREG?", "AT+CGREG?", "AT+CREG?"} {
		ls, err := id.tryLines("registration", cmd)
		if err != nil {
			return err
		}
		for _, l := range ls {
			stat, act, ok := parseReg(l)
			if !ok {
				continue
			}
			if rank := regRank(stat); rank > best {
				best = rank
				n.State = regState(stat)
				n.Registered = stat == 1 || stat == 5
				n.Roaming = stat == 5
				if act >= 0 && n.RAT == "" {
					n.RAT = ratName(act)
				}
			}
		}
	}
	// 3GPP TS 27.007 §7.3: +COPS=3,<format> selects how +COPS? names the
	// operator (2 numeric, 0 long alphanumeric); the default is 0, restored last.
	if _, err := id.tryLines("operator", "AT+COPS=3,2"); err != nil {
		return err
	}
	ls, err := id.tryLines("operator", "AT+COPS?")
	if err != nil {
		return err
	}
	if plmn, act, ok := parseCOPS(firstLine(ls)); ok {
		n.PLMN = plmn
		if act >= 0 {
			n.RAT = ratName(act)
		}
	}
	if _, err := id.tryLines("operator", "AT+COPS=3,0"); err != nil {
		return err
	}
	if ls, err = id.tryLines("operator", "AT+COPS?"); err != nil {
		return err
	}
	if name, _, ok := parseCOPS(firstLine(ls)); ok && name != n.PLMN {
		n.Operator = name
	}
	ls, err = id.tryLines("signal", "AT+CSQ")
	if err != nil {
		return err
	}
	if dbm, ok := parseCSQ(firstLine(ls)); ok {
		n.Signal = &dbm
	} else {
		// +CSQ says 99 (unknown) on LTE-only and 5G SA cells of some modules
		// (Quectel RM500Q); +CESQ reports the LTE RSRP instead.
		if ls, err = id.tryLines("signal", "AT+CESQ"); err != nil {
			return err
		}
		if dbm, ok := parseCESQ(firstLine(ls)); ok {
			n.Signal = &dbm
		}
	}
	return id.apn(m)
}

func firstLine(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return ls[0]
}

func (id *identifier) apn(m *Module) error {
	act, err := id.tryLines("apn", "AT+CGACT?")
	if err != nil {
		return err
	}
	active := map[string]bool{}
	for _, l := range act {
		f := valueFields(l)
		if len(f) >= 2 && f[1] == "1" {
			active[f[0]] = true
		}
	}
	defs, err := id.tryLines("apn", "AT+CGDCONT?")
	if err != nil {
		return err
	}
	var first string
	for _, l := range defs {
		f := valueFields(l)
		if len(f) < 3 {
			continue
		}
		if first == "" {
			first = f[2]
		}
		if active[f[0]] {
			m.Network.APN = f[2]
			return nil
		}
	}
	if len(active) == 0 {
		m.Network.APN = first // no context active: report the configured one
	}
	return nil
}

// fields splits a comma-separated AT value, honouring quotes and removing
// them: `1,"IP","iot.example"` → [1 IP iot.example].
func fields(v string) []string {
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}

// parseReg reads a +CREG/+CGREG/+CEREG/+C5GREG read answer:
// "+CEREG: <n>,<stat>[,[<tac>],[<ci>],[<AcT>]...]" (3GPP TS 27.007 §7.2,
// §10.1.20, §10.1.22, §10.1.59). act is -1 when absent.
func parseReg(line string) (stat, act int, ok bool) {
	name, rest, found := strings.Cut(line, ":")
	if !found || !strings.HasSuffix(name, "REG") {
		return 0, -1, false
	}
	f := fields(rest)
	if len(f) < 2 {
		return 0, -1, false
	}
	stat, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, -1, false
	}
	act = -1
	if len(f) >= 5 && f[4] != "" {
		if a, err := strconv.Atoi(f[4]); err == nil {
			act = a
		}
	}
	return stat, act, true
}

func regRank(stat int) int {
	switch stat {
	case 1, 5:
		return 4
	case 3:
		return 3
	case 2:
		return 2
	case 0:
		return 1
	}
	return 0
}

func regState(stat int) string {
	switch stat {
	case 0:
		return "not-registered"
	case 1:
		return "home"
	case 2:
		return "searching"
	case 3:
		return "denied"
	case 5:
		return "roaming"
	}
	return "unknown"
}

// ratName maps <AcT> of 3GPP TS 27.007 §7.3.
func ratName(act int) string {
	switch act {
	case 0, 1, 3, 8:
		return "gsm"
	case 2, 4, 5, 6:
		return "umts"
	case 7:
		return "lte"
	case 9:
		return "nb-iot"
	case 10:
		return "lte"
	case 11, 12:
		return "nr5g-sa"
	case 13:
		return "nr5g-nsa"
	}
	return ""
}

// parseCOPS reads "+COPS: <mode>[,<format>,<oper>[,<AcT>]]".
func parseCOPS(line string) (oper string, act int, ok bool) {
	_, rest, found := strings.Cut(line, ":")
	if !found {
		return "", -1, false
	}
	f := fields(rest)
	if len(f) < 3 || f[2] == "" {
		return "", -1, false
	}
	act = -1
	if len(f) >= 4 {
		if a, err := strconv.Atoi(f[3]); err == nil {
			act = a
		}
	}
	return f[2], act, true
}

// parseCSQ turns "+CSQ: <rssi>,<ber>" into dBm (3GPP TS 27.007 §8.5:
// 0 → -113 dBm, 31 → -51 dBm or more, 99 unknown).
func parseCSQ(line string) (int, bool) {
	_, rest, found := strings.Cut(line, ":")
	if !found {
		return 0, false
	}
	f := fields(rest)
	rssi, err := strconv.Atoi(f[0])
	if err != nil || rssi < 0 || rssi > 31 {
		return 0, false
	}
	return -113 + 2*rssi, true
}

// parseCESQ reads the RSRP of "+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>"
// (3GPP TS 27.007 §8.69: 0 → below -140 dBm, 97 → -44 dBm or more, 255
// unknown) and returns it in dBm.
func parseCESQ(line string) (int, bool) {
	_, rest, found := strings.Cut(line, ":")
	if !found {
		return 0, false
	}
	f := fields(rest)
	if len(f) < 6 {
		return 0, false
	}
	rsrp, err := strconv.Atoi(f[5])
	if err != nil || rsrp < 0 || rsrp > 97 {
		return 0, false
	}
	return rsrp - 141, true
}
