package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configures a Modem. The zero value works: seed 0, instant boot, SIM
// ready, no faults, logs discarded.
type Options struct {
	// Seed drives every generated value (IMEI, IMSI, ICCID) and every random
	// fault decision. The same seed and profile give the same modem.
	Seed uint64
	// Boot, when true, powers the modem up like the real module: the profile's
	// boot chatter with its delays, and input discarded during the deaf
	// period, at New and at every reboot. When false (the default, for tests)
	// the modem is ready at once and a reboot sends its chatter without delay.
	Boot bool
	// SIM is the initial SIM state (default SIMReady).
	SIM SIMState
	// PIN is the SIM PIN accepted by AT+CPIN when SIM is SIMLocked
	// (default "1234").
	PIN string
	// Faults are the initial injected faults (default none); change them
	// later with Modem.SetFaults.
	Faults Faults
	// Transcript, when set, receives one line per received command line or
	// payload, as "port<N> < <line>\n". Writes are serialised.
	Transcript io.Writer
	// Logger receives debug and warning records (default: discarded).
	Logger *slog.Logger
}

// SIMState is the state of the SIM card.
type SIMState int

const (
	SIMReady  SIMState = iota // inserted, no PIN
	SIMAbsent                 // no SIM: +CME ERROR: 10
	SIMLocked                 // PIN required: +CME ERROR: 11 until AT+CPIN
)

func (s SIMState) String() string {
	switch s {
	case SIMReady:
		return "ready"
	case SIMAbsent:
		return "absent"
	case SIMLocked:
		return "locked"
	}
	return fmt.Sprintf("SIMState(%d)", int(s))
}

// RegStat is a registration status, 3GPP TS 27.007 §7.2 <stat>.
type RegStat int

const (
	RegNone      RegStat = 0 // not registered, not searching
	RegHome      RegStat = 1
	RegSearching RegStat = 2
	RegDenied    RegStat = 3
	RegUnknown   RegStat = 4
	RegRoaming   RegStat = 5
)

// Operator is a PLMN.
type Operator struct {
	PLMN  string // MCC+MNC, e.g. "26202"
	Long  string
	Short string
	AcT   int // 27.007 AcT: 0 GSM, 2 UTRAN, 7 E-UTRAN, 13 NR
}

// Connection is one attempt of the module's own IP stack to reach a
// destination, as recorded by the simulator.
type Connection struct {
	ATPort  int    // AT port index the command came from; -1 if the module opened it itself
	Origin  string // "host" (an AT command) or "module" (e.g. cloud auto-registration at boot)
	Dialect string // the profile's stack dialect
	Command string // the command line, e.g. `AT+QIOPEN=1,0,"TCP","203.0.113.5",8883,0,1`
	Kind    string // tcp, udp, tcp-listener, udp-service, tls, mqtt, http, ftp, fota, ping, dns, ntp, cloud
	Host    string // host name or address ("" when the command names none, e.g. a listener)
	Port    int    // remote port, 0 if none
	URL     string // full URL when the command carries one
}

// SMS is a message the host sent with AT+CMGS.
type SMS struct {
	To   string // destination (text mode) or "" (PDU mode)
	Body string // text, or the hex PDU
}

// Traffic counts the bytes the module's own stack sent and received.
type Traffic struct {
	Sent, Received uint64
}

// Modem is one simulated module. All methods are safe for concurrent use.
type Modem struct {
	p     *Profile // the USB identity, settings, stack
	id    *Profile // the identity the module answers with (p, or another when lying)
	opts  Options
	log   *slog.Logger
	done  chan struct{}
	wg    sync.WaitGroup
	tmu   sync.Mutex // serialises Transcript writes
	close sync.Once

	mu sync.Mutex // guards everything below
	st state
	// channels currently attached, by port index
	chans     []*channel
	received  []string
	conns     []Connection
	sms       []SMS
	settings  map[string]string
	traffic   Traffic
	faults    Faults
	frng      *rand.Rand // fault decisions
	idrng     *rand.Rand // SIM values on swap
	imei      string
	serial    string
	gen       int           // power cycle number
	deafUntil time.Time     // input discarded before this instant
	readyCh   chan struct{} // closed when the current boot is complete
	downCh    chan struct{} // closed when the module goes down (reboot)
	usbUpCh   chan struct{} // closed when the USB ports are back after a reboot
	bootStop  chan struct{} // closed to abandon the current boot sequence
	respCount int           // responses sent, for fault counters
}

// state is the modem's non-persistent state, reset at every boot.
type state struct {
	cfun       int
	sim        SIMState
	imsi       string
	iccid      string
	reg        RegStat // registration when CFUN=1 and the SIM is ready
	oper       Operator
	home       Operator
	others     []Operator // visible in AT+COPS=?
	rssi       int
	revision   string
	firmware   string
	pdp        map[int]*pdpContext
	copsFormat int
	cmgf       int
	smsIndex   int
	sockets    map[int]bool
	stack      stackState
}

type pdpContext struct {
	typ, apn string
	active   bool
	addr     string
}

// New creates a modem from a profile. The modem serves nothing until Pipe
// or ServePTY is called. Close it to stop every goroutine.
func New(p *Profile, opts Options) *Modem {
	m := &Modem{p: p, id: p, opts: opts, log: opts.Logger, done: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.opts.PIN == "" {
		m.opts.PIN = "1234"
	}
	m.faults = opts.Faults
	if opts.Faults.LieAs != "" {
		if lp, err := LoadProfile(opts.Faults.LieAs); err == nil {
			m.id = lp
		} else {
			m.log.Warn("simulator: lie fault ignored", "err", err)
		}
	}
	r := newRand(opts.Seed, "identity/"+p.Name)
	if m.id.Identity.IMEI != "" {
		m.imei = m.id.Identity.IMEI
	} else {
		m.imei = genIMEI(r, m.id.Identity.IMEITAC)
	}
	m.serial = m.id.Identity.Serial
	if m.serial == "" {
		m.serial = strings.ToUpper(m.p.Vendor[:min(3, len(m.p.Vendor))]) + randDigits(r, 12)
	}
	m.st.imsi = genIMSI(r, p.Identity.IMSIPLMN)
	m.st.iccid = genICCID(r, p.Identity.ICCIDPrefix, p.Identity.ICCIDLength)
	m.idrng = r
	m.frng = newRand(opts.Seed, "faults/"+p.Name)
	m.settings = map[string]string{}
	for _, s := range p.Settings {
		m.settings[s.Name] = s.Default
	}
	m.st.sim = opts.SIM
	m.st.revision, m.st.firmware = m.id.Identity.Revision, m.id.Identity.Firmware
	m.mu.Lock()
	m.powerUpLocked(opts.Boot, true)
	m.mu.Unlock()
	return m
}

// Profile returns the modem's profile.
func (m *Modem) Profile() *Profile { return m.p }

// IMEI returns the generated (or fixed) IMEI.
func (m *Modem) IMEI() string { return m.imei }

// IMSI returns the current SIM's IMSI.
func (m *Modem) IMSI() string { m.mu.Lock(); defer m.mu.Unlock(); return m.st.imsi }

// ICCID returns the current SIM's ICCID, without any padding suffix.
func (m *Modem) ICCID() string { m.mu.Lock(); defer m.mu.Unlock(); return m.st.iccid }

// Received returns every command line and payload received, in order,
// across all ports. Lines discarded while deaf are not included.
func (m *Modem) Received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.received)
}

// Connections returns the recorded attempts of the module's own IP stack.
func (m *Modem) Connections() []Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.conns)
}

// SentSMS returns the messages sent with AT+CMGS.
func (m *Modem) SentSMS() []SMS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sms)
}

// Traffic returns the module's own-stack byte counters.
func (m *Modem) Traffic() Traffic {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.traffic
}

// Setting returns the stored value of a profile setting (see SCHEMA.md
// "settings") and whether it exists.
func (m *Modem) Setting(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.settings[name]
	return v, ok
}

// Pipe connects a host to AT port 0 (the primary AT port) over an in-process
// net.Pipe and returns the host end. Closing it detaches the host.
func (m *Modem) Pipe() net.Conn { return m.PipePort(0) }

// PipePort is Pipe for another AT port index (0..len(Profile.USB.ATPorts())-1).
// An index out of range is served as port 0.
func (m *Modem) PipePort(port int) net.Conn {
	host, dev := net.Pipe()
	if port < 0 || port >= len(m.p.USB.ATPorts()) {
		port = 0
	}
	m.attach(port, dev)
	return host
}

// Close stops the modem: every transport is closed and every goroutine has
// exited when Close returns.
func (m *Modem) Close() error {
	m.close.Do(func() {
		close(m.done)
		m.mu.Lock()
		chans := slices.Clone(m.chans)
		if m.bootStop != nil {
			close(m.bootStop)
			m.bootStop = nil
		}
		m.mu.Unlock()
		for _, c := range chans {
			c.stop()
		}
	})
	m.wg.Wait()
	return nil
}

// WaitReady blocks until the current boot is complete (the last chatter line
// sent and the deaf period over) or ctx is done.
func (m *Modem) WaitReady(ctx context.Context) error {
	for {
		m.mu.Lock()
		ch, gen := m.readyCh, m.gen
		m.mu.Unlock()
		select {
		case <-ch:
			m.mu.Lock()
			same := gen == m.gen
			m.mu.Unlock()
			if same {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
			return ErrClosed
		}
	}
}

// ErrClosed is returned by operations on a closed Modem.
var ErrClosed = errors.New("simulator: modem closed")

func (m *Modem) transcript(port int, line string) {
	if m.opts.Transcript == nil {
		return
	}
	m.tmu.Lock()
	defer m.tmu.Unlock()
	fmt.Fprintf(m.opts.Transcript, "port%d < %s\n", port, line)
}

// ---- power ----

// powerUpLocked starts a power cycle. first is true at New.
func (m *Modem) powerUpLocked(realBoot bool, first bool) {
	m.gen++
	if m.bootStop != nil {
		close(m.bootStop)
	}
	stop := make(chan struct{})
	m.bootStop = stop
	m.readyCh = make(chan struct{})
	m.downCh = make(chan struct{})
	m.usbUpCh = make(chan struct{})
	home := Operator{PLMN: m.p.Network.PLMN, Long: m.p.Network.Long, Short: m.p.Network.Short, AcT: m.p.Network.AcT}
	keepSIM := m.st
	m.st = state{
		cfun: 1, sim: keepSIM.sim, imsi: keepSIM.imsi, iccid: keepSIM.iccid,
		reg: RegHome, oper: home, home: home, rssi: m.p.Network.RSSI,
		revision: keepSIM.revision, firmware: keepSIM.firmware,
		pdp:     map[int]*pdpContext{1: {typ: "IP", apn: m.p.Network.APN}},
		sockets: map[int]bool{},
	}
	if !first {
		// carry over scenario-level state that a reboot does not change
		m.st.others = keepSIM.others
		if keepSIM.reg == RegRoaming || keepSIM.reg == RegDenied {
			m.st.reg, m.st.oper = keepSIM.reg, keepSIM.oper
		}
		m.st.rssi = keepSIM.rssi
	}
	for _, s := range m.p.Settings {
		if !s.Persistent {
			m.settings[s.Name] = s.Default
		}
	}
	for _, c := range m.chans {
		c.resetLocked()
	}
	if first && !realBoot {
		close(m.readyCh)
		close(m.usbUpCh)
		m.bootConnectLocked()
		return
	}
	var chatter []ChatterLine
	for _, c := range m.p.Boot.Chatter {
		if m.st.sim == SIMAbsent && strings.HasPrefix(c.Line, "+CPIN:") {
			for _, l := range m.p.Boot.SIMAbsent {
				chatter = append(chatter, ChatterLine{After: c.After, Line: l})
			}
			continue
		}
		chatter = append(chatter, c)
	}
	deaf := m.p.Boot.Deaf
	if !realBoot {
		deaf = 0
		for i := range chatter {
			chatter[i].After = 0
		}
	}
	now := time.Now()
	m.deafUntil = now.Add(deaf)
	usbUp := time.Duration(0)
	if len(chatter) > 0 {
		usbUp = chatter[0].After / 2
	}
	ready, usbCh, gen := m.readyCh, m.usbUpCh, m.gen
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		wait := func(d time.Duration) bool {
			if d <= 0 {
				return true
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-stop:
				return false
			case <-m.done:
				return false
			}
		}
		if !wait(usbUp) {
			return
		}
		close(usbCh)
		elapsed := usbUp
		for i, c := range chatter {
			d := c.After
			if i == 0 {
				d -= usbUp
			}
			if !wait(d) {
				return
			}
			elapsed += d
			m.mu.Lock()
			if m.gen != gen {
				m.mu.Unlock()
				return
			}
			m.broadcastURCLocked(c.Line)
			m.mu.Unlock()
		}
		if deaf > elapsed && !wait(deaf-elapsed) {
			return
		}
		m.mu.Lock()
		if m.gen == gen {
			m.bootConnectLocked()
			close(ready)
		}
		m.mu.Unlock()
	}()
}

// bootConnectLocked opens the connections that persistent settings ask the
// module to open by itself at power-up.
func (m *Modem) bootConnectLocked() {
	for _, s := range m.p.Settings {
		bc := s.BootConnect
		if bc == nil || !slices.Contains(bc.When, m.settings[s.Name]) {
			continue
		}
		m.conns = append(m.conns, Connection{ATPort: -1, Origin: "module", Dialect: m.p.Stack,
			Command: "(setting " + s.Name + "=" + m.settings[s.Name] + ")", Kind: bc.Kind, Host: bc.Host, Port: bc.Port})
		m.traffic.Sent += 256
		m.traffic.Received += 64
	}
}

// Reboot restarts the module: state not marked persistent is lost, the
// boot chatter is sent again (with delays and a deaf period when
// Options.Boot is set) and pty links vanish until the USB ports are back.
func (m *Modem) Reboot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebootLocked()
}

func (m *Modem) rebootLocked() {
	select {
	case <-m.done:
		return
	default:
	}
	m.log.Debug("simulator: reboot", "profile", m.p.Name)
	close(m.downCh)
	m.powerUpLocked(m.opts.Boot, false)
}

func (m *Modem) deafLocked() bool { return time.Now().Before(m.deafUntil) }

// ---- channels ----

// attach serves conn as AT port index port until conn fails or the modem
// closes.
func (m *Modem) attach(port int, conn io.ReadWriteCloser) *channel {
	c := &channel{m: m, port: port, conn: conn, in: make(chan []byte, 16), out: make(chan outItem, 256), done: make(chan struct{})}
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		conn.Close()
		return c
	default:
	}
	c.resetLocked()
	m.chans = append(m.chans, c)
	m.wg.Add(3)
	m.mu.Unlock()
	go c.reader()
	go c.engine()
	go c.writer()
	return c
}

func (m *Modem) detach(c *channel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chans = slices.DeleteFunc(m.chans, func(x *channel) bool { return x == c })
}

// broadcastURCLocked sends an unsolicited line to the URC port's channels.
func (m *Modem) broadcastURCLocked(line string) {
	for _, c := range m.chans {
		if c.port == m.p.URC.Port {
			c.urcLocked(line)
		}
	}
}

// InjectURC sends an unsolicited result line to the URC port now, between
// any two output writes.
func (m *Modem) InjectURC(line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broadcastURCLocked(line)
}

// InjectBytes sends raw bytes (garbage, binary) to every channel of the URC
// port.
func (m *Modem) InjectBytes(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.chans {
		if c.port == m.p.URC.Port {
			c.enqueueLocked(outItem{b: slices.Clone(b)})
		}
	}
}

// SetFaults replaces the injected faults.
func (m *Modem) SetFaults(f Faults) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = f
}

// ---- network state API (also used by scenarios) ----

// SetRegistration sets the registration status the modem reports when it is
// on (CFUN=1) with a ready SIM, emitting +CREG/+CGREG/+CEREG/+C5GREG URCs on
// channels that enabled them.
func (m *Modem) SetRegistration(s RegStat) {
	m.change(func() { m.st.reg = s })
}

// Roam registers on another operator (RegRoaming when its PLMN differs
// from the home one, RegHome otherwise).
func (m *Modem) Roam(op Operator) {
	m.change(func() {
		if op.AcT == 0 && op.PLMN != "" {
			op.AcT = m.st.home.AcT
		}
		if op.Long == "" {
			op.Long = op.PLMN
		}
		if op.Short == "" {
			op.Short = op.Long
		}
		m.st.oper = op
		if !slices.ContainsFunc(m.st.others, func(o Operator) bool { return o.PLMN == op.PLMN }) && op.PLMN != m.st.home.PLMN {
			m.st.others = append(m.st.others, op)
		}
		if op.PLMN == m.st.home.PLMN {
			m.st.reg = RegHome
		} else {
			m.st.reg = RegRoaming
		}
	})
}

// SetSignal sets the +CSQ rssi (0..31, 99 unknown).
func (m *Modem) SetSignal(rssi int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.rssi = rssi
}

// SetSIM changes the SIM state (removal, insertion, PIN lock).
func (m *Modem) SetSIM(s SIMState) {
	m.change(func() {
		old := m.st.sim
		m.st.sim = s
		if old == s {
			return
		}
		switch s {
		case SIMAbsent:
			m.broadcastURCLocked(m.simURC(false))
		case SIMReady, SIMLocked:
			m.broadcastURCLocked(m.simURC(true))
		}
	})
}

func (m *Modem) simURC(present bool) string {
	if !present {
		if len(m.p.Boot.SIMAbsent) > 0 {
			return m.p.Boot.SIMAbsent[0]
		}
		return "+CPIN: NOT READY"
	}
	if m.st.sim == SIMLocked {
		return "+CPIN: SIM PIN"
	}
	return "+CPIN: READY"
}

// SwapSIM replaces the SIM with another one: new IMSI (same PLMN unless
// plmn is set) and ICCID from the seeded generator.
func (m *Modem) SwapSIM(plmn string) {
	m.change(func() {
		if plmn == "" {
			plmn = m.p.Identity.IMSIPLMN
		}
		m.st.imsi = genIMSI(m.idrng, plmn)
		m.st.iccid = genICCID(m.idrng, m.p.Identity.ICCIDPrefix, m.p.Identity.ICCIDLength)
		m.st.sim = SIMReady
		m.broadcastURCLocked(m.simURC(true))
	})
}

// SetFirmware changes the revision (AT+CGMR) and firmware build string as a
// firmware update would; it survives reboots. Empty values keep the current.
func (m *Modem) SetFirmware(revision, firmware string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if revision != "" {
		m.st.revision = revision
	}
	if firmware != "" {
		m.st.firmware = firmware
	} else if revision != "" {
		m.st.firmware = revision
	}
}

// SetCFUN sets the functionality level as AT+CFUN would.
func (m *Modem) SetCFUN(fun int) { m.change(func() { m.st.cfun = fun }) }

// StackSend accounts n bytes sent (and r received) by the module's own
// stack, as background traffic the host did not ask for.
func (m *Modem) StackSend(n, r uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.traffic.Sent += n
	m.traffic.Received += r
}

// change applies f under the lock and emits registration URCs for what
// changed.
func (m *Modem) change(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changeLocked(f)
}

// effRegLocked is the registration status the modem reports.
func (m *Modem) effRegLocked() RegStat {
	if m.st.cfun != 1 || m.st.sim != SIMReady {
		return RegNone
	}
	return m.st.reg
}

func (m *Modem) registeredLocked() bool {
	r := m.effRegLocked()
	return r == RegHome || r == RegRoaming
}
