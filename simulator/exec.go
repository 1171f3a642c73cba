package simulator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is the outcome of one command.
type result struct {
	info    []string
	final   string // "" = OK
	noFinal bool
	isErr   bool
	delay   time.Duration
	prompt  *prompt
	after   []string // URCs sent after the final result
	reboot  bool     // reboot after answering
}

func (r result) finalOr() string {
	if r.final == "" {
		return "OK"
	}
	return r.final
}

func ok(info ...string) result { return result{info: info} }

// cmeText is 3GPP TS 27.007 §9.2 (verbose +CME ERROR texts).
var cmeText = map[int]string{
	0: "phone failure", 3: "operation not allowed", 4: "operation not supported",
	10: "SIM not inserted", 11: "SIM PIN required", 13: "SIM failure", 14: "SIM busy",
	16: "incorrect password", 30: "no network service", 50: "Incorrect parameters", 100: "unknown",
}

// cmeLocked formats a +CME ERROR according to the channel's CMEE mode.
func (c *channel) cmeLocked(code int) result {
	switch c.cmee {
	case 1:
		return result{isErr: true, final: "+CME ERROR: " + strconv.Itoa(code)}
	case 2:
		t, okT := cmeText[code]
		if !okT {
			t = "unknown"
		}
		return result{isErr: true, final: "+CME ERROR: " + t}
	}
	return result{isErr: true, final: c.m.p.Errors.Error}
}

func (c *channel) errorLocked() result { return result{isErr: true, final: c.m.p.Errors.Error} }

func (c *channel) unknownLocked() result { return result{isErr: true, final: c.m.p.Errors.Unknown} }

// simErrLocked returns the SIM error, if the SIM is not usable.
func (c *channel) simErrLocked() (result, bool) {
	switch c.m.st.sim {
	case SIMAbsent:
		return c.cmeLocked(10), true
	case SIMLocked:
		return c.cmeLocked(11), true
	}
	return result{}, false
}

// lookupLocked gives the value of a template placeholder.
func (m *Modem) lookupLocked(name string) string {
	id := m.id.Identity
	switch name {
	case "MANUFACTURER":
		return id.Manufacturer
	case "MODEL":
		return id.Model
	case "REVISION":
		return m.st.revision
	case "FIRMWARE":
		return m.st.firmware
	case "SERIAL":
		return m.serial
	case "IMEI":
		return m.imei
	case "IMEISV":
		return "01"
	case "IMSI":
		return m.st.imsi
	case "ICCID":
		return m.st.iccid + m.p.Identity.ICCIDSuffix
	case "OPER_LONG":
		return m.st.oper.Long
	case "OPER_SHORT":
		return m.st.oper.Short
	case "OPER_NUMERIC":
		return m.st.oper.PLMN
	case "ACT":
		return strconv.Itoa(m.st.oper.AcT)
	case "RSSI":
		return strconv.Itoa(m.rssiLocked())
	case "RSSI_DBM":
		r := m.rssiLocked()
		if r == 99 {
			return "-113"
		}
		return strconv.Itoa(-113 + 2*r)
	case "RSRP":
		return strconv.Itoa(-140 + 2*min(m.rssiLocked(), 31))
	case "RSRQ":
		return "-10"
	case "SINR":
		return strconv.Itoa(min(m.rssiLocked(), 31) / 2)
	}
	return ""
}

func (m *Modem) rssiLocked() int {
	if !m.registeredLocked() {
		return 99
	}
	return m.st.rssi
}

func (c *channel) answerLocked(a Answer) result {
	m := c.m
	needsSIM := a.Needs == "sim"
	for _, l := range a.Lines {
		if strings.Contains(l, "{IMSI}") || strings.Contains(l, "{ICCID}") {
			needsSIM = true
		}
	}
	if needsSIM {
		if r, bad := c.simErrLocked(); bad {
			return r
		}
	}
	if a.Needs == "network" && !m.registeredLocked() {
		return c.cmeLocked(30)
	}
	if a.Error > 0 {
		r := c.cmeLocked(a.Error)
		r.delay = a.Delay
		return r
	}
	r := result{delay: a.Delay}
	for _, l := range a.Lines {
		r.info = append(r.info, expand(l, m.lookupLocked))
	}
	switch a.Final {
	case "", "OK":
	case "none":
		r.noFinal = true
	default:
		r.final = expand(a.Final, m.lookupLocked)
		r.isErr = r.final != "OK"
	}
	return r
}

// exec runs one command; m.mu is held.
func (c *channel) exec(cmd Command) result {
	m := c.m
	key := cmd.Key()
	if slices.Contains(m.p.Boot.RebootCommands, key) {
		return result{reboot: true}
	}
	if a, found := m.id.Commands[key]; found {
		return c.answerLocked(a)
	}
	if m.id != m.p {
		if a, found := m.p.Commands[key]; found && !isIdentityKey(key) {
			return c.answerLocked(a)
		}
	}
	for _, s := range m.p.Settings {
		if s.Query != "" && key == s.Query {
			if s.Answer == "" {
				return ok(m.settings[s.Name])
			}
			return ok(expand(s.Answer, func(n string) string {
				if n == "VALUE" {
					return m.settings[s.Name]
				}
				return m.lookupLocked(n)
			}))
		}
		if cmd.Op == OpSet && strings.HasPrefix(key, s.Set) {
			raw := cmd.Name + "=" + cmd.Args
			m.settings[s.Name] = raw[min(len(s.Set), len(raw)):]
			return ok()
		}
	}
	if r, handled := c.builtin(cmd); handled {
		return r
	}
	if r, handled := c.stack(cmd); handled {
		return r
	}
	return c.unknownLocked()
}

func isIdentityKey(k string) bool {
	switch k {
	case "I", "+CGMI", "+GMI", "+CGMM", "+GMM", "+CGMR", "+GMR", "+CGSN", "+GSN":
		return true
	}
	return false
}

var regCmds = []string{"+CREG", "+CGREG", "+CEREG", "+C5GREG"}

// builtin implements V.250 basics and the 3GPP TS 27.007/27.005 commands the
// simulator models. handled is false for commands it does not know.
func (c *channel) builtin(cmd Command) (r result, handled bool) {
	m := c.m
	args, _ := splitArgs(cmd.Args)
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	num := func(s string, def int) int { return atoiDefault(s, def) }
	switch cmd.Name {
	// ---- V.250 ----
	case "E":
		c.echo = cmd.Num == "1"
		return ok(), true
	case "V":
		c.verbose = cmd.Num == "1"
		return ok(), true
	case "Q":
		c.quiet = cmd.Num == "1"
		return ok(), true
	case "Z", "&F":
		c.resetLocked()
		return ok(), true
	case "&W", "&C", "&D", "X", "&K", "H":
		return ok(), true
	case "I":
		if cmd.Num != "" && cmd.Num != "0" {
			return result{}, false
		}
		return ok(m.id.Identity.Manufacturer, m.id.Identity.Model, "Revision: "+m.st.revision), true
	case "D":
		return result{final: "NO CARRIER", isErr: true}, true
	case "+GCAP":
		return ok("+GCAP: +CGSM"), true
	case "+IPR":
		if cmd.Op == OpRead {
			return ok("+IPR: 115200"), true
		}
		return ok(), true
	// ---- 27.007 identity (§5) ----
	case "+CGMI", "+GMI":
		return ok(m.id.Identity.Manufacturer), cmd.Op == OpAction
	case "+CGMM", "+GMM":
		return ok(m.id.Identity.Model), cmd.Op == OpAction
	case "+CGMR", "+GMR":
		return ok(m.st.revision), cmd.Op == OpAction
	case "+CGSN", "+GSN":
		if cmd.Op == OpSet && cmd.Args == "1" {
			return ok(`+CGSN: "` + m.imei + `"`), true
		}
		return ok(m.imei), cmd.Op == OpAction || cmd.Op == OpSet
	case "+CIMI":
		if r, bad := c.simErrLocked(); bad {
			return r, true
		}
		return ok(m.st.imsi), cmd.Op == OpAction
	case "+CCID":
		if r, bad := c.simErrLocked(); bad {
			return r, true
		}
		return ok("+CCID: " + m.st.iccid + m.p.Identity.ICCIDSuffix), cmd.Op == OpAction || cmd.Op == OpRead
	case "+CMEE":
		switch cmd.Op {
		case OpRead:
			return ok(fmt.Sprintf("+CMEE: %d", c.cmee)), true
		case OpTest:
			return ok("+CMEE: (0-2)"), true
		case OpSet:
			n := num(arg(0), -1)
			if n < 0 || n > 2 {
				return c.cmeLocked(50), true
			}
			c.cmee = n
			return ok(), true
		}
		return ok(), true
	// ---- SIM (§8.3) ----
	case "+CPIN":
		switch cmd.Op {
		case OpRead:
			switch m.st.sim {
			case SIMAbsent:
				return c.cmeLocked(10), true
			case SIMLocked:
				return ok("+CPIN: SIM PIN"), true
			}
			return ok("+CPIN: READY"), true
		case OpSet:
			switch m.st.sim {
			case SIMAbsent:
				return c.cmeLocked(10), true
			case SIMReady:
				return c.cmeLocked(3), true
			}
			if arg(0) != m.opts.PIN {
				return c.cmeLocked(16), true
			}
			m.changeLocked(func() { m.st.sim = SIMReady })
			return result{after: []string{"+CPIN: READY"}}, true
		case OpTest:
			return ok(), true
		}
		return result{}, false
	// ---- functionality (§8.2) ----
	case "+CFUN":
		switch cmd.Op {
		case OpRead:
			return ok(fmt.Sprintf("+CFUN: %d", m.st.cfun)), true
		case OpTest:
			return ok("+CFUN: (0,1,4),(0-1)"), true
		case OpSet:
			f := num(arg(0), -1)
			if f != 0 && f != 1 && f != 4 {
				return c.cmeLocked(50), true
			}
			if arg(1) == "1" {
				return result{reboot: true}, true
			}
			m.changeLocked(func() { m.st.cfun = f })
			return ok(), true
		}
		return result{}, false
	// ---- registration (§7.2, §10.1.20, §10.1.22, §10.1.46) ----
	case "+CREG", "+CGREG", "+CEREG", "+C5GREG":
		switch cmd.Op {
		case OpRead:
			return ok(c.regLineLocked(cmd.Name, true)), true
		case OpTest:
			return ok(cmd.Name + ": (0-2)"), true
		case OpSet:
			n := num(arg(0), -1)
			if n < 0 || n > 2 {
				return c.cmeLocked(50), true
			}
			c.regN[cmd.Name] = n
			return ok(), true
		}
		return result{}, false
	// ---- operator (§7.3) ----
	case "+COPS":
		return c.copsLocked(cmd, args), true
	case "+CSQ":
		if cmd.Op == OpTest {
			return ok("+CSQ: (0-31,99),(0-7,99)"), true
		}
		return ok(fmt.Sprintf("+CSQ: %d,99", m.rssiLocked())), cmd.Op == OpAction
	// ---- packet domain (§10.1) ----
	case "+CGDCONT":
		switch cmd.Op {
		case OpRead:
			var lines []string
			for _, cid := range sortedKeys(m.st.pdp) {
				p := m.st.pdp[cid]
				lines = append(lines, fmt.Sprintf(`+CGDCONT: %d,"%s","%s","0.0.0.0",0,0`, cid, p.typ, p.apn))
			}
			return ok(lines...), true
		case OpTest:
			return ok(`+CGDCONT: (1-15),"IP",,,(0-2),(0-4)`, `+CGDCONT: (1-15),"IPV6",,,(0-2),(0-4)`, `+CGDCONT: (1-15),"IPV4V6",,,(0-2),(0-4)`), true
		case OpSet:
			cid := num(arg(0), -1)
			if cid < 1 || cid > 15 {
				return c.cmeLocked(50), true
			}
			if len(args) == 1 {
				delete(m.st.pdp, cid)
				return ok(), true
			}
			m.st.pdp[cid] = &pdpContext{typ: arg(1), apn: arg(2)}
			return ok(), true
		}
		return result{}, false
	case "+CGACT":
		switch cmd.Op {
		case OpRead:
			var lines []string
			for _, cid := range sortedKeys(m.st.pdp) {
				a := 0
				if m.st.pdp[cid].active {
					a = 1
				}
				lines = append(lines, fmt.Sprintf("+CGACT: %d,%d", cid, a))
			}
			return ok(lines...), true
		case OpSet:
			state := num(arg(0), -1)
			cids := []int{}
			for _, a := range args[min(1, len(args)):] {
				cids = append(cids, num(a, -1))
			}
			if len(cids) == 0 {
				cids = sortedKeys(m.st.pdp)
			}
			if state == 1 && !m.registeredLocked() {
				return c.cmeLocked(30), true
			}
			for _, cid := range cids {
				p, found := m.st.pdp[cid]
				if !found {
					return c.cmeLocked(50), true
				}
				p.active = state == 1
				p.addr = fmt.Sprintf("10.%d.%d.%d", 64+cid, m.gen%250, 2+cid)
			}
			return ok(), true
		case OpTest:
			return ok("+CGACT: (0,1)"), true
		}
		return result{}, false
	case "+CGPADDR":
		var lines []string
		for _, cid := range sortedKeys(m.st.pdp) {
			if p := m.st.pdp[cid]; p.active {
				lines = append(lines, fmt.Sprintf(`+CGPADDR: %d,"%s"`, cid, p.addr))
			}
		}
		return ok(lines...), true
	// ---- SMS (27.005 §3.2.3, §3.5.1) ----
	case "+CMGF":
		switch cmd.Op {
		case OpRead:
			return ok(fmt.Sprintf("+CMGF: %d", m.st.cmgf)), true
		case OpSet:
			m.st.cmgf = num(arg(0), 0)
			return ok(), true
		case OpTest:
			return ok("+CMGF: (0,1)"), true
		}
		return result{}, false
	case "+CMGS":
		if cmd.Op != OpSet {
			return c.errorLocked(), true
		}
		if r, bad := c.simErrLocked(); bad {
			return r, true
		}
		to := ""
		if m.st.cmgf == 1 {
			to = arg(0)
		}
		return result{prompt: &prompt{finish: func(p []byte, cancelled bool) result {
			if cancelled {
				return ok()
			}
			m.st.smsIndex++
			m.sms = append(m.sms, SMS{To: to, Body: string(p)})
			return ok(fmt.Sprintf("+CMGS: %d", m.st.smsIndex))
		}}}, true
	}
	return result{}, false
}

// regLineLocked formats +CREG-family output (read form, or URC).
func (c *channel) regLineLocked(name string, read bool) string {
	m := c.m
	n := c.regN[name]
	stat := m.effRegLocked()
	var b strings.Builder
	b.WriteString(name + ": ")
	if read {
		fmt.Fprintf(&b, "%d,", n)
	}
	fmt.Fprintf(&b, "%d", stat)
	if n == 2 && (stat == RegHome || stat == RegRoaming) {
		act := m.st.oper.AcT
		if name == "+C5GREG" {
			act = 11
		}
		fmt.Fprintf(&b, `,"1A2B","01A2B3%s",%d`, plmnTail(m.st.oper.PLMN), act)
	}
	return b.String()
}

func plmnTail(p string) string {
	if len(p) >= 2 {
		return p[len(p)-2:]
	}
	return "00"
}

// regURCsLocked sends registration URCs to a channel that enabled them.
func (c *channel) regURCsLocked() {
	for _, name := range regCmds {
		if c.regN[name] > 0 {
			c.urcLocked(c.regLineLocked(name, false))
		}
	}
}

// changeLocked is Modem.change with m.mu already held.
func (m *Modem) changeLocked(f func()) {
	before, bop := m.effRegLocked(), m.st.oper
	f()
	after, aop := m.effRegLocked(), m.st.oper
	if before != after || bop != aop {
		for _, c := range m.chans {
			c.regURCsLocked()
		}
	}
}

func (c *channel) copsLocked(cmd Command, args []string) result {
	m := c.m
	name := func(o Operator, f int) string {
		switch f {
		case 1:
			return o.Short
		case 2:
			return o.PLMN
		}
		return o.Long
	}
	switch cmd.Op {
	case OpRead:
		if !m.registeredLocked() {
			return ok("+COPS: 0")
		}
		return ok(fmt.Sprintf(`+COPS: 0,%d,"%s",%d`, m.st.copsFormat, name(m.st.oper, m.st.copsFormat), m.st.oper.AcT))
	case OpTest:
		if m.st.cfun != 1 {
			return c.cmeLocked(3)
		}
		var parts []string
		for i, o := range append([]Operator{m.st.home}, m.st.others...) {
			stat := 1 // available
			if o.PLMN == m.st.oper.PLMN && m.registeredLocked() {
				stat = 2 // current
			} else if i > 0 && m.st.reg == RegDenied {
				stat = 3
			}
			parts = append(parts, fmt.Sprintf(`(%d,"%s","%s","%s",%d)`, stat, o.Long, o.Short, o.PLMN, o.AcT))
		}
		r := ok("+COPS: " + strings.Join(parts, ",") + ",,(0,1,2,3,4),(0,1,2)")
		r.delay = m.p.Timing.COPSScan
		return r
	case OpSet:
		mode := atoiDefault(argAt(args, 0), -1)
		switch mode {
		case 0:
			m.changeLocked(func() { m.st.oper, m.st.reg = m.st.home, RegHome })
		case 1, 4:
			want := argAt(args, 2)
			for _, o := range append([]Operator{m.st.home}, m.st.others...) {
				if o.PLMN == want || o.Long == want || o.Short == want {
					m.changeLocked(func() {
						m.st.oper = o
						m.st.reg = RegRoaming
						if o.PLMN == m.st.home.PLMN {
							m.st.reg = RegHome
						}
					})
					return ok()
				}
			}
			return c.cmeLocked(30)
		case 2:
			m.changeLocked(func() { m.st.reg = RegNone })
		case 3:
			f := atoiDefault(argAt(args, 1), -1)
			if f < 0 || f > 2 {
				return c.cmeLocked(50)
			}
			m.st.copsFormat = f
		default:
			return c.cmeLocked(50)
		}
		return ok()
	}
	return ok()
}

func argAt(a []string, i int) string {
	if i < len(a) {
		return a[i]
	}
	return ""
}

func sortedKeys[V any](mp map[int]V) []int {
	ks := make([]int, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
