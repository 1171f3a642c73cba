package simulator

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed profiles/*.yaml
var profileFS embed.FS

// ProfileInfo names one embedded profile.
type ProfileInfo struct {
	Name        string // e.g. "quectel-ec25"
	Vendor      string // first dash-separated word of Name, e.g. "quectel"
	Description string // one line
}

// Profile is a parsed, validated module profile. The schema is documented in
// profiles/SCHEMA.md. A Profile is read-only once loaded and may be shared by
// many modems.
type Profile struct {
	Name        string
	Vendor      string
	Description string
	USB         USB
	Echo        bool
	CMEE        int
	Errors      ErrorStyle
	Boot        Boot
	URC         URCStyle
	Identity    Identity
	Network     Network
	Timing      Timing
	Stack       string
	Commands    map[string]Answer // key: canonical command key (see commandKey)
	Settings    []Setting

	source string // file name, for error messages
}

// USB is the module's USB identity.
type USB struct {
	VID        string
	PID        string
	Interfaces []Interface
}

// Interface is one USB interface of the module.
type Interface struct {
	Number int
	Role   string
}

// ATPorts returns the interface numbers that carry AT commands: the "at"
// interfaces in listed order (the first is the primary AT port, index 0),
// then the "modem" (AT + PPP) interfaces.
func (u USB) ATPorts() []int {
	var out []int
	for _, role := range []string{"at", "modem"} {
		for _, i := range u.Interfaces {
			if i.Role == role {
				out = append(out, i.Number)
			}
		}
	}
	return out
}

// ErrorStyle holds the module's error finals.
type ErrorStyle struct {
	Error   string // final for an error with CMEE=0
	Unknown string // final for an unknown command
}

// Boot describes power-up behaviour.
type Boot struct {
	Deaf           time.Duration
	Chatter        []ChatterLine
	SIMAbsent      []string
	RebootCommands []string // canonical keys
}

// ChatterLine is one boot URC.
type ChatterLine struct {
	After time.Duration
	Line  string
}

// URCStyle says where and how the module sends unsolicited results.
type URCStyle struct {
	Port  int
	Style string
	SMS   string
}

// Identity holds the module's identity values and generator parameters.
type Identity struct {
	Manufacturer string
	Model        string
	Revision     string
	Firmware     string
	IMEITAC      string
	IMSIPLMN     string
	ICCIDPrefix  string
	ICCIDLength  int
	ICCIDSuffix  string
	Serial       string
	IMEI         string
}

// Network is the home operator.
type Network struct {
	PLMN  string
	Long  string
	Short string
	AcT   int
	RSSI  int
	APN   string
}

// Timing holds slow-command delays.
type Timing struct {
	COPSScan time.Duration
}

// Answer is the profile's answer to one command.
type Answer struct {
	Lines []string // info lines (templates)
	Final string   // "" means OK; "none" means no final line
	Delay time.Duration
	Error int    // CME error to answer instead, 0 = none
	Needs string // "", "sim" or "network"
	line  int    // source line
}

// Setting is a value stored by one command and read by another.
type Setting struct {
	Name        string
	Set         string // canonical prefix, e.g. "+QIOTREG="
	Query       string // canonical key, e.g. "+QIOTREG?"
	Answer      string
	Default     string
	Persistent  bool
	BootConnect *BootConnect
}

// BootConnect is a connection the module opens by itself at power-up when a
// setting holds one of the When values (e.g. Quectel cloud auto-registration).
type BootConnect struct {
	When []string
	Kind string
	Host string
	Port int
}

// ---- YAML shape ----

type yProfile struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	USB         yUSB       `yaml:"usb"`
	Echo        *bool      `yaml:"echo"`
	CMEE        int        `yaml:"cmee"`
	Errors      yErrors    `yaml:"errors"`
	Boot        yBoot      `yaml:"boot"`
	URC         yURC       `yaml:"urc"`
	Identity    yIdentity  `yaml:"identity"`
	Network     yNetwork   `yaml:"network"`
	Timing      yTiming    `yaml:"timing"`
	Stack       string     `yaml:"stack"`
	Commands    yaml.Node  `yaml:"commands"`
	Settings    []ySetting `yaml:"settings"`
}

type yUSB struct {
	VID        string `yaml:"vid"`
	PID        string `yaml:"pid"`
	Interfaces []struct {
		Number int    `yaml:"number"`
		Role   string `yaml:"role"`
	} `yaml:"interfaces"`
}

type yErrors struct {
	Error   string `yaml:"error"`
	Unknown string `yaml:"unknown"`
}

type yBoot struct {
	Deaf    string `yaml:"deaf"`
	Chatter []struct {
		After string `yaml:"after"`
		Line  string `yaml:"line"`
	} `yaml:"chatter"`
	SIMAbsent      []string `yaml:"sim_absent"`
	RebootCommands []string `yaml:"reboot_commands"`
}

type yURC struct {
	Port  int    `yaml:"port"`
	Style string `yaml:"style"`
	SMS   string `yaml:"sms"`
}

type yIdentity struct {
	Manufacturer string `yaml:"manufacturer"`
	Model        string `yaml:"model"`
	Revision     string `yaml:"revision"`
	Firmware     string `yaml:"firmware"`
	IMEITAC      string `yaml:"imei_tac"`
	IMSIPLMN     string `yaml:"imsi_plmn"`
	ICCIDPrefix  string `yaml:"iccid_prefix"`
	ICCIDLength  int    `yaml:"iccid_length"`
	ICCIDSuffix  string `yaml:"iccid_suffix"`
	Serial       string `yaml:"serial"`
	IMEI         string `yaml:"imei"`
}

type yNetwork struct {
	PLMN  string `yaml:"plmn"`
	Long  string `yaml:"long"`
	Short string `yaml:"short"`
	AcT   *int   `yaml:"act"`
	RSSI  *int   `yaml:"rssi"`
	APN   string `yaml:"apn"`
}

type yTiming struct {
	COPSScan string `yaml:"cops_scan"`
}

type yAnswer struct {
	Answer string `yaml:"answer"`
	Final  string `yaml:"final"`
	Delay  string `yaml:"delay"`
	Error  int    `yaml:"error"`
	Needs  string `yaml:"needs"`
}

type ySetting struct {
	Name        string `yaml:"name"`
	Set         string `yaml:"set"`
	Query       string `yaml:"query"`
	Answer      string `yaml:"answer"`
	Default     string `yaml:"default"`
	Persistent  bool   `yaml:"persistent"`
	BootConnect *struct {
		When []string `yaml:"when"`
		Kind string   `yaml:"kind"`
		Host string   `yaml:"host"`
		Port int      `yaml:"port"`
	} `yaml:"boot_connect"`
}

// ---- loading ----

var (
	profilesOnce sync.Once
	profilesAll  map[string]*Profile
	profilesErrs []error
)

func loadEmbedded() {
	profilesAll = map[string]*Profile{}
	ents, err := fs.ReadDir(profileFS, "profiles")
	if err != nil {
		profilesErrs = append(profilesErrs, fmt.Errorf("simulator: read embedded profiles: %w", err))
		return
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := profileFS.ReadFile("profiles/" + e.Name())
		if err != nil {
			profilesErrs = append(profilesErrs, err)
			continue
		}
		p, err := ParseProfile("profiles/"+e.Name(), data)
		if err != nil {
			profilesErrs = append(profilesErrs, err)
			continue
		}
		profilesAll[p.Name] = p
	}
}

// Profiles lists the embedded profiles that load without error, sorted by
// name. A profile that fails validation is left out; CheckProfiles reports it.
func Profiles() []ProfileInfo {
	profilesOnce.Do(loadEmbedded)
	out := make([]ProfileInfo, 0, len(profilesAll))
	for _, p := range profilesAll {
		out = append(out, ProfileInfo{Name: p.Name, Vendor: p.Vendor, Description: p.Description})
	}
	slices.SortFunc(out, func(a, b ProfileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// CheckProfiles returns the validation errors of the embedded profiles, joined,
// or nil when every file is valid.
func CheckProfiles() error {
	profilesOnce.Do(loadEmbedded)
	return errors.Join(profilesErrs...)
}

// LoadProfile returns the embedded profile called name. The error lists the
// valid names.
func LoadProfile(name string) (*Profile, error) {
	profilesOnce.Do(loadEmbedded)
	if p, ok := profilesAll[name]; ok {
		return p, nil
	}
	var names []string
	for _, i := range Profiles() {
		names = append(names, i.Name)
	}
	return nil, fmt.Errorf("simulator: unknown profile %q; valid profiles: %s", name, strings.Join(names, ", "))
}

// LoadProfileFile parses and validates a profile from a file outside the
// binary (for users' own modules).
func LoadProfileFile(file string) (*Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return ParseProfile(file, data)
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)+$`)
	hex4RE  = regexp.MustCompile(`^[0-9a-f]{4}$`)
	digitRE = regexp.MustCompile(`^[0-9]+$`)
	keyRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

var validRoles = []string{"at", "modem", "diag", "nmea", "net", "mbim", "adb", "audio", "debug", "other"}

// Stacks lists the IP-stack dialects a profile's "stack" may name.
var Stacks = []string{"quectel", "simcom", "telit", "ublox", "fibocom", "huawei", "nordic", "cinterion", "none"}

// profErr builds a file:line error.
type profErr struct {
	file string
	line int
}

func (pe profErr) errf(line int, format string, a ...any) error {
	if line <= 0 {
		line = pe.line
	}
	return fmt.Errorf("simulator: %s:%d: %s", pe.file, line, fmt.Sprintf(format, a...))
}

// ParseProfile parses and validates one profile file; source names it in
// errors (file:line).
func ParseProfile(source string, data []byte) (*Profile, error) {
	pe := profErr{file: source, line: 1}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("simulator: %s: %w", source, err)
	}
	var yp yProfile
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&yp); err != nil {
		return nil, fmt.Errorf("simulator: %s: %w", source, err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	line := func(keys ...string) int { return nodeLine(doc, keys...) }

	p := &Profile{source: source}
	if !nameRE.MatchString(yp.Name) {
		return nil, pe.errf(line("name"), "name: %q must be lowercase words joined by dashes, vendor first (e.g. quectel-ec25)", yp.Name)
	}
	if base := strings.TrimSuffix(path.Base(source), ".yaml"); strings.HasSuffix(source, ".yaml") && base != yp.Name {
		return nil, pe.errf(line("name"), "name: %q does not match the file name %q; rename one of them", yp.Name, base)
	}
	p.Name = yp.Name
	p.Vendor, _, _ = strings.Cut(yp.Name, "-")
	p.Description = strings.TrimSpace(yp.Description)
	if p.Description == "" || strings.Contains(p.Description, "\n") {
		return nil, pe.errf(line("description"), "description: must be one non-empty line")
	}

	// usb
	p.USB.VID, p.USB.PID = strings.ToLower(yp.USB.VID), strings.ToLower(yp.USB.PID)
	if !hex4RE.MatchString(p.USB.VID) || !hex4RE.MatchString(p.USB.PID) {
		return nil, pe.errf(line("usb"), "usb: vid and pid must be 4 hex digits in quotes, got %q:%q", yp.USB.VID, yp.USB.PID)
	}
	seen := map[int]bool{}
	for i, itf := range yp.USB.Interfaces {
		if !slices.Contains(validRoles, itf.Role) {
			return nil, pe.errf(seqLine(doc, i, "usb", "interfaces"), "usb.interfaces[%d].role: %q is not one of %s", i, itf.Role, strings.Join(validRoles, ", "))
		}
		if seen[itf.Number] || itf.Number < 0 {
			return nil, pe.errf(seqLine(doc, i, "usb", "interfaces"), "usb.interfaces[%d].number: %d is negative or repeated", i, itf.Number)
		}
		seen[itf.Number] = true
		p.USB.Interfaces = append(p.USB.Interfaces, Interface{Number: itf.Number, Role: itf.Role})
	}
	if len(p.USB.ATPorts()) == 0 {
		return nil, pe.errf(line("usb"), "usb.interfaces: no interface with role \"at\" or \"modem\"; the simulator needs at least one AT port")
	}

	p.Echo = yp.Echo == nil || *yp.Echo
	if yp.CMEE < 0 || yp.CMEE > 2 {
		return nil, pe.errf(line("cmee"), "cmee: %d must be 0, 1 or 2", yp.CMEE)
	}
	p.CMEE = yp.CMEE
	p.Errors = ErrorStyle{Error: cmp(yp.Errors.Error, "ERROR"), Unknown: cmp(yp.Errors.Unknown, "ERROR")}

	// boot
	var err error
	if p.Boot.Deaf, err = parseDur(yp.Boot.Deaf); err != nil {
		return nil, pe.errf(line("boot", "deaf"), "boot.deaf: %v", err)
	}
	for i, c := range yp.Boot.Chatter {
		d, err := parseDur(c.After)
		if err != nil {
			return nil, pe.errf(seqLine(doc, i, "boot", "chatter"), "boot.chatter[%d].after: %v", i, err)
		}
		if c.Line == "" || strings.ContainsAny(c.Line, "\r\n") {
			return nil, pe.errf(seqLine(doc, i, "boot", "chatter"), "boot.chatter[%d].line: must be one non-empty line", i)
		}
		p.Boot.Chatter = append(p.Boot.Chatter, ChatterLine{After: d, Line: c.Line})
	}
	p.Boot.SIMAbsent = yp.Boot.SIMAbsent
	p.Boot.RebootCommands = []string{"+CFUN=1,1"}
	if len(yp.Boot.RebootCommands) > 0 {
		p.Boot.RebootCommands = nil
		for _, c := range yp.Boot.RebootCommands {
			k, err := canonicalKey(c)
			if err != nil {
				return nil, pe.errf(line("boot", "reboot_commands"), "boot.reboot_commands: %q: %v", c, err)
			}
			p.Boot.RebootCommands = append(p.Boot.RebootCommands, k)
		}
	}

	// urc
	p.URC = URCStyle{Port: yp.URC.Port, Style: yp.URC.Style, SMS: cmp(yp.URC.SMS, `+CMTI: "SM",{INDEX}`)}
	if p.URC.Port < 0 || p.URC.Port >= len(p.USB.ATPorts()) {
		return nil, pe.errf(line("urc", "port"), "urc.port: %d is not an AT port index (0..%d)", p.URC.Port, len(p.USB.ATPorts())-1)
	}

	// identity
	id := yp.Identity
	if id.Manufacturer == "" || id.Model == "" || id.Revision == "" {
		return nil, pe.errf(line("identity"), "identity: manufacturer, model and revision are required")
	}
	if len(id.IMEITAC) != 8 || !digitRE.MatchString(id.IMEITAC) {
		return nil, pe.errf(line("identity", "imei_tac"), "identity.imei_tac: %q must be 8 digits (quote it)", id.IMEITAC)
	}
	if l := len(id.IMSIPLMN); (l != 5 && l != 6) || !digitRE.MatchString(id.IMSIPLMN) {
		return nil, pe.errf(line("identity", "imsi_plmn"), "identity.imsi_plmn: %q must be MCC+MNC, 5 or 6 digits (quote it)", id.IMSIPLMN)
	}
	if id.ICCIDLength == 0 {
		id.ICCIDLength = 20
	}
	if id.ICCIDLength != 19 && id.ICCIDLength != 20 {
		return nil, pe.errf(line("identity", "iccid_length"), "identity.iccid_length: %d must be 19 or 20", id.ICCIDLength)
	}
	if !strings.HasPrefix(id.ICCIDPrefix, "89") || !digitRE.MatchString(id.ICCIDPrefix) || len(id.ICCIDPrefix) > 12 {
		return nil, pe.errf(line("identity", "iccid_prefix"), "identity.iccid_prefix: %q must be 2..12 digits starting with 89 (quote it)", id.ICCIDPrefix)
	}
	if id.IMEI != "" && (len(id.IMEI) != 15 || !digitRE.MatchString(id.IMEI) || !luhnValid(id.IMEI)) {
		return nil, pe.errf(line("identity", "imei"), "identity.imei: %q must be 15 digits with a valid Luhn check digit", id.IMEI)
	}
	if id.Firmware == "" {
		id.Firmware = id.Revision
	}
	p.Identity = Identity{
		Manufacturer: id.Manufacturer, Model: id.Model, Revision: id.Revision, Firmware: id.Firmware,
		IMEITAC: id.IMEITAC, IMSIPLMN: id.IMSIPLMN, ICCIDPrefix: id.ICCIDPrefix, ICCIDLength: id.ICCIDLength,
		ICCIDSuffix: id.ICCIDSuffix, Serial: id.Serial, IMEI: id.IMEI,
	}

	// network
	n := yp.Network
	p.Network = Network{PLMN: cmp(n.PLMN, id.IMSIPLMN), Long: cmp(n.Long, "Test Network"), Short: cmp(n.Short, "Test"), AcT: 7, RSSI: 20, APN: cmp(n.APN, "internet")}
	if n.AcT != nil {
		p.Network.AcT = *n.AcT
	}
	if n.RSSI != nil {
		p.Network.RSSI = *n.RSSI
	}
	if p.Network.RSSI < 0 || (p.Network.RSSI > 31 && p.Network.RSSI != 99) {
		return nil, pe.errf(line("network", "rssi"), "network.rssi: %d must be 0..31 or 99", p.Network.RSSI)
	}
	if !digitRE.MatchString(p.Network.PLMN) || (len(p.Network.PLMN) != 5 && len(p.Network.PLMN) != 6) {
		return nil, pe.errf(line("network", "plmn"), "network.plmn: %q must be 5 or 6 digits", p.Network.PLMN)
	}

	if p.Timing.COPSScan, err = parseDur(yp.Timing.COPSScan); err != nil {
		return nil, pe.errf(line("timing", "cops_scan"), "timing.cops_scan: %v", err)
	}
	if yp.Timing.COPSScan == "" {
		p.Timing.COPSScan = 20 * time.Second
	}

	p.Stack = cmp(yp.Stack, "none")
	if !slices.Contains(Stacks, p.Stack) {
		return nil, pe.errf(line("stack"), "stack: %q is not one of %s", yp.Stack, strings.Join(Stacks, ", "))
	}

	// commands
	p.Commands = map[string]Answer{}
	if yp.Commands.Kind != 0 {
		if yp.Commands.Kind != yaml.MappingNode {
			return nil, pe.errf(yp.Commands.Line, "commands: must be a mapping of command → answer")
		}
		for i := 0; i+1 < len(yp.Commands.Content); i += 2 {
			kn, vn := yp.Commands.Content[i], yp.Commands.Content[i+1]
			key, err := canonicalKey(kn.Value)
			if err != nil {
				return nil, pe.errf(kn.Line, "commands: key %q: %v (write the command as typed after AT, e.g. \"+CGMI\" or \"I\")", kn.Value, err)
			}
			if _, dup := p.Commands[key]; dup {
				return nil, pe.errf(kn.Line, "commands: %q is listed twice", kn.Value)
			}
			a := Answer{line: vn.Line}
			switch vn.Kind {
			case yaml.ScalarNode:
				a.Lines = splitLines(vn.Value)
			case yaml.MappingNode:
				var ya yAnswer
				if err := vn.Decode(&ya); err != nil {
					return nil, pe.errf(vn.Line, "commands[%q]: %v", kn.Value, err)
				}
				if err := strictKeys(vn, "answer", "final", "delay", "error", "needs"); err != nil {
					return nil, pe.errf(vn.Line, "commands[%q]: %v", kn.Value, err)
				}
				a.Lines = splitLines(ya.Answer)
				a.Final = ya.Final
				if a.Delay, err = parseDur(ya.Delay); err != nil {
					return nil, pe.errf(vn.Line, "commands[%q].delay: %v", kn.Value, err)
				}
				a.Error = ya.Error
				if a.Error < 0 {
					return nil, pe.errf(vn.Line, "commands[%q].error: %d must be a positive CME error code", kn.Value, a.Error)
				}
				a.Needs = ya.Needs
				if a.Needs != "" && a.Needs != "sim" && a.Needs != "network" {
					return nil, pe.errf(vn.Line, "commands[%q].needs: %q must be sim or network", kn.Value, a.Needs)
				}
			default:
				return nil, pe.errf(vn.Line, "commands[%q]: answer must be a string or a mapping", kn.Value)
			}
			for _, l := range append(slices.Clone(a.Lines), a.Final) {
				if err := checkTemplate(l, false); err != nil {
					return nil, pe.errf(vn.Line, "commands[%q]: %v", kn.Value, err)
				}
			}
			p.Commands[key] = a
		}
	}

	// settings
	names := map[string]bool{}
	for i, s := range yp.Settings {
		sl := seqLine(doc, i, "settings")
		if !keyRE.MatchString(s.Name) || names[s.Name] {
			return nil, pe.errf(sl, "settings[%d].name: %q must be a unique lowercase identifier", i, s.Name)
		}
		names[s.Name] = true
		st := Setting{Name: s.Name, Answer: s.Answer, Default: s.Default, Persistent: s.Persistent}
		if st.Set, err = canonicalPrefix(s.Set); err != nil || !strings.Contains(st.Set, "=") {
			return nil, pe.errf(sl, "settings[%d].set: %q must be a command prefix ending in or containing '=', e.g. \"+QIOTREG=\"", i, s.Set)
		}
		if s.Query != "" {
			if st.Query, err = canonicalKey(s.Query); err != nil {
				return nil, pe.errf(sl, "settings[%d].query: %q: %v", i, s.Query, err)
			}
		}
		if err := checkTemplate(s.Answer, true); err != nil {
			return nil, pe.errf(sl, "settings[%d].answer: %v", i, err)
		}
		if bc := s.BootConnect; bc != nil {
			if bc.Host == "" || bc.Port <= 0 || bc.Port > 65535 || len(bc.When) == 0 || bc.Kind == "" {
				return nil, pe.errf(sl, "settings[%d].boot_connect: needs when, kind, host and a port 1..65535", i)
			}
			st.BootConnect = &BootConnect{When: bc.When, Kind: bc.Kind, Host: bc.Host, Port: bc.Port}
		}
		p.Settings = append(p.Settings, st)
	}
	return p, nil
}

func strictKeys(n *yaml.Node, allowed ...string) error {
	for i := 0; i < len(n.Content); i += 2 {
		if !slices.Contains(allowed, n.Content[i].Value) {
			return fmt.Errorf("unknown key %q (allowed: %s)", n.Content[i].Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 500ms or 2s", s)
	}
	if d < 0 || d > time.Hour {
		return 0, fmt.Errorf("%q must be between 0 and 1h", s)
	}
	return d, nil
}

// nodeLine finds the line of a nested mapping key, or the deepest found.
func nodeLine(n *yaml.Node, keys ...string) int {
	line := 1
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return line
}

// seqLine finds the line of element i of the sequence at keys.
func seqLine(root *yaml.Node, i int, keys ...string) int {
	n := root
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return 1
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				next = n.Content[j+1]
			}
		}
		n = next
	}
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i].Line
	}
	return nodeLine(root, keys...)
}

// placeholders valid in templates.
var placeholders = []string{
	"MANUFACTURER", "MODEL", "REVISION", "FIRMWARE", "SERIAL", "IMEI", "IMEISV", "IMSI", "ICCID",
	"OPER_LONG", "OPER_SHORT", "OPER_NUMERIC", "ACT", "RSSI", "RSSI_DBM", "RSRP", "RSRQ", "SINR",
}

func checkTemplate(s string, setting bool) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				i++
				continue
			}
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return fmt.Errorf("unclosed '{' in %q (write {{ for a literal brace)", s)
			}
			name := s[i+1 : i+j]
			if !slices.Contains(placeholders, name) && !(setting && name == "VALUE") && name != "INDEX" {
				return fmt.Errorf("unknown placeholder {%s}; valid: %s", name, strings.Join(placeholders, ", "))
			}
			i += j
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				i++
				continue
			}
			return fmt.Errorf("stray '}' in %q (write }} for a literal brace)", s)
		}
	}
	return nil
}

// expand fills a template; lookup returns the value of a placeholder.
func expand(s string, lookup func(string) string) string {
	if !strings.ContainsAny(s, "{}") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '{' && i+1 < len(s) && s[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		if c == '}' && i+1 < len(s) && s[i+1] == '}' {
			b.WriteByte('}')
			i++
			continue
		}
		if c == '{' {
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				b.WriteString(lookup(s[i+1 : i+j]))
				i += j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// canonicalKey turns a command as typed after AT into its lookup key.
func canonicalKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "AT"), "at")
	cmds, err := ParseCommandLine(s)
	if err != nil {
		return "", err
	}
	if len(cmds) != 1 {
		return "", fmt.Errorf("must be exactly one command")
	}
	return cmds[0].Key(), nil
}

// canonicalPrefix upper-cases a set prefix outside quotes.
func canonicalPrefix(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "AT"), "at")
	if s == "" {
		return "", errors.New("empty")
	}
	return upperOutsideQuotes(s), nil
}

func upperOutsideQuotes(s string) string {
	b := []byte(s)
	inq := false
	for i, c := range b {
		if c == '"' {
			inq = !inq
		} else if !inq && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func atoiDefault(s string, def int) int {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return v
}
