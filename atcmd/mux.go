package atcmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mux shares one modem port between several hosts — programs that speak
// AT to the module, such as a PPP chat script or a vendor tool on a pty,
// and the agent's own Conn on a pipe. It is the AT firewall's transport:
// every command line a filtered host sends goes through MuxConfig.Filter
// before it may reach the module, and a refused line never does.
//
// Command lines from all hosts are queued and sent one at a time. The
// answer to a command, up to its final result code, goes only to the host
// that sent it, byte for byte as the module sent it. Lines that arrive
// while no command runs, and URC lines (a known URC prefix that does not
// answer the running command) during a command, go to every host that asked
// for unsolicited output. After a "> " prompt the sending host's bytes pass
// to the module untouched up to Ctrl-Z or ESC; after CONNECT the port is in
// data mode and bytes pass both ways untouched until the module sends a
// final result code (NO CARRIER, OK, ERROR) again.
type Mux struct {
	modem io.ReadWriter
	cfg   MuxConfig
	log   *slog.Logger

	mu      sync.Mutex
	hosts   []*muxHost
	queue   []muxCmd
	owner   *muxHost // host whose command is in flight, nil when idle
	ownerAt time.Time
	ownLine string
	mode    muxMode
	line    []byte // modem output not yet routed: blank line endings and the line being assembled
	// The last line ended in CR: a LF right after it follows it to
	// tailHost (nil: to every unsolicited host).
	tailSet  bool
	tailHost *muxHost
	// payloadLeft is how many payload bytes the owner may still send in
	// prompt mode; -1 means up to Ctrl-Z or ESC.
	payloadLeft int
	// After giving up on a command (or losing its host mid-payload) the
	// port is resynchronised before anyone else's command: pendingEsc
	// leaves text entry or data mode, then an "AT" probe owned by probe
	// runs, then finals are discarded until quietUntil (cf. Conn.resync).
	pendingEsc string
	needProbe  bool
	probe      *muxHost
	quietUntil time.Time
	wake       chan struct{}

	wmu       sync.Mutex // serialises writes to the modem
	closed    chan struct{}
	modemGone chan struct{} // closed when reading the modem port fails
	modemErr  error         // why; set before modemGone is closed
	once      sync.Once
	wg        sync.WaitGroup
}

// MuxConfig tunes a Mux. The zero value works: no filtering.
type MuxConfig struct {
	// Filter decides on every command line from a host attached with
	// Filtered set. cmee is the error mode that host selected with
	// AT+CMEE (1 until it says otherwise). Nil allows everything.
	Filter func(host, line string, cmee int) Verdict
	// Timeout gives the time the module has to answer a forwarded command
	// before the Mux gives up waiting and serves the next one. Nil means
	// DefaultTimeout.
	Timeout func(cmdLine string) time.Duration
	// VendorFinals as in Config. Nil means DefaultVendorFinals.
	VendorFinals []string
	// MaxLineLen bounds a host's command line and a module line. Zero
	// means 4096.
	MaxLineLen int
	// Logger receives debug records. Nil means none.
	Logger *slog.Logger
}

// Verdict is a Filter's decision on one command line.
type Verdict struct {
	Allow bool
	// Reason is logged with a refusal.
	Reason string
	// Reply is the final result code the host gets for a refused line,
	// without line endings. Empty means "+CME ERROR: 3" (operation not
	// allowed), in the host's AT+CMEE format.
	Reply string
}

// MuxHost configures one attached host.
type MuxHost struct {
	Name        string // for logs and the Filter
	Filtered    bool   // pass its command lines through Filter
	Unsolicited bool   // give it the lines no command asked for (URCs)
}

type muxMode uint8

const (
	modeLines  muxMode = iota
	modePrompt         // owner is writing a payload after "> "
	modeData           // CONNECT: raw both ways until a final result code
)

type muxCmd struct {
	host *muxHost
	line string
}

type muxHost struct {
	MuxHost
	rw       io.ReadWriter
	out      chan []byte   // to the host's writer goroutine
	gone     chan struct{} // closed on detach
	in       []byte        // partial command line (owned by the host's reader)
	last     string        // last command line, for A/
	cmee     int
	detached bool
}

// NewMux starts a mux on the modem port. Close stops it.
func NewMux(modem io.ReadWriter, cfg MuxConfig) *Mux {
	if cfg.Timeout == nil {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.VendorFinals == nil {
		cfg.VendorFinals = DefaultVendorFinals
	}
	if cfg.MaxLineLen <= 0 {
		cfg.MaxLineLen = 4096
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mux{modem: modem, cfg: cfg, log: log, wake: make(chan struct{}, 1), closed: make(chan struct{}), modemGone: make(chan struct{})}
	m.probe = &muxHost{MuxHost: MuxHost{Name: "(resync probe)"}}
	m.wg.Add(2)
	go m.readModem()
	go m.dispatch()
	return m
}

// Attach adds a host. The Mux reads from rw until it fails or Close; the
// returned func detaches the host without closing rw.
func (m *Mux) Attach(rw io.ReadWriter, opts MuxHost) (detach func()) {
	h := &muxHost{MuxHost: opts, rw: rw, cmee: 1, out: make(chan []byte, 256), gone: make(chan struct{})}
	m.mu.Lock()
	m.hosts = append(m.hosts, h)
	m.mu.Unlock()
	m.wg.Add(2)
	go m.readHost(h)
	go m.writeHost(h)
	return func() { m.detach(h) }
}

func (m *Mux) detach(h *muxHost) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.detached {
		return
	}
	h.detached = true
	close(h.gone)
	if m.owner == h && m.mode != modeLines {
		// The host left in the middle of a payload or a data call: take
		// the module out of it before serving anyone else.
		m.abandonLocked("its host went away")
	}
	for i, x := range m.hosts {
		if x == h {
			m.hosts = append(m.hosts[:i], m.hosts[i+1:]...)
			break
		}
	}
	q := m.queue[:0]
	for _, c := range m.queue {
		if c.host != h {
			q = append(q, c)
		}
	}
	m.queue = q
}

// Close stops the Mux and closes the modem port and every host that is an
// io.Closer, which unblocks their readers.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		m.mu.Lock()
		inPrompt := m.mode == modePrompt
		m.mu.Unlock()
		if inPrompt {
			m.writeModem([]byte{esc}) // never leave the module in text entry
		}
		close(m.closed)
		if c, ok := m.modem.(io.Closer); ok {
			err = c.Close()
		}
		m.mu.Lock()
		hosts := append([]*muxHost(nil), m.hosts...)
		m.mu.Unlock()
		for _, h := range hosts {
			if c, ok := h.rw.(io.Closer); ok {
				_ = c.Close()
			}
		}
		m.wg.Wait()
	})
	return err
}

func (m *Mux) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// readHost turns a host's bytes into command lines (or payload, while it
// owns a prompt or data mode).
func (m *Mux) readHost(h *muxHost) {
	defer m.wg.Done()
	buf := make([]byte, 512)
	for {
		n, err := h.rw.Read(buf)
		if n > 0 {
			m.hostBytes(h, buf[:n])
		}
		if err != nil {
			m.detach(h)
			return
		}
	}
}

func (m *Mux) hostBytes(h *muxHost, p []byte) {
	for len(p) > 0 {
		m.mu.Lock()
		raw := m.owner == h && (m.mode == modePrompt || m.mode == modeData)
		mode := m.mode
		m.mu.Unlock()
		if raw {
			n := len(p)
			if mode == modePrompt {
				m.mu.Lock()
				if m.payloadLeft >= 0 {
					// A counted payload: exactly that many bytes; what follows
					// is command lines again and goes through the filter.
					n = min(n, m.payloadLeft)
					m.payloadLeft -= n
					if m.payloadLeft == 0 {
						m.mode = modeLines
					}
				} else if i := bytes.IndexAny(p, "\x1a\x1b"); i >= 0 {
					n = i + 1
					m.mode = modeLines // the module answers the payload with a final result
				}
				m.mu.Unlock()
			}
			m.writeModem(p[:n])
			p = p[n:]
			continue
		}
		c := p[0]
		p = p[1:]
		switch c {
		case '\r', '\n':
			line := strings.TrimSpace(string(h.in))
			h.in = h.in[:0]
			if line != "" {
				m.command(h, line)
			}
		case 0x1b, 0x1a:
			h.in = h.in[:0] // a stray ESC or Ctrl-Z cancels a partial line
		default:
			if len(h.in) < m.cfg.MaxLineLen {
				h.in = append(h.in, c)
			}
		}
	}
}

// command queues a host's command line after the filter.
func (m *Mux) command(h *muxHost, line string) {
	if strings.EqualFold(line, "A/") {
		line = h.last // V.250 §6.2.2: repeat the last command line
		if line == "" {
			return
		}
	}
	if len(line) < 2 || !strings.EqualFold(line[:2], "AT") {
		m.reply(h, "\r\nERROR\r\n")
		return
	}
	if h.Filtered && m.cfg.Filter != nil {
		v := m.cfg.Filter(h.Name, line, h.cmee)
		if !v.Allow {
			m.log.Info("atcmd: mux refused a command", "host", h.Name, "line", line, "reason", v.Reason)
			if v.Reply != "" {
				m.reply(h, "\r\n"+v.Reply+"\r\n")
			} else if h.cmee == 0 {
				m.reply(h, "\r\nERROR\r\n")
			} else {
				// 3GPP TS 27.007 §9.2.1: 3 = operation not allowed.
				if h.cmee == 2 {
					m.reply(h, "\r\n+CME ERROR: operation not allowed\r\n")
				} else {
					m.reply(h, "\r\n+CME ERROR: 3\r\n")
				}
			}
			return
		}
	}
	h.last = line // A/ repeats what the module received, never a refused line
	if n, ok := cmeeSetting(line); ok {
		h.cmee = n
	}
	m.mu.Lock()
	m.queue = append(m.queue, muxCmd{host: h, line: line})
	m.mu.Unlock()
	m.kick()
}

// cmeeSetting finds "+CMEE=<n>" in a command line.
func cmeeSetting(line string) (int, bool) {
	i := strings.Index(strings.ToUpper(line), "+CMEE=")
	if i < 0 || i+6 >= len(line) {
		return 0, false
	}
	switch line[i+6] {
	case '0', '1', '2':
		return int(line[i+6] - '0'), true
	}
	return 0, false
}

func (m *Mux) reply(h *muxHost, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendLocked(h, []byte(s))
}

func (m *Mux) writeModem(b []byte) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if err := writeFull(m.modem, b); err != nil {
		m.log.Warn("atcmd: mux write to the modem failed", "err", err)
	}
}

// dispatch sends queued commands, one at a time, and gives up on a command
// the module leaves unanswered past its timeout.
func (m *Mux) dispatch() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		if m.owner != nil && m.mode != modeData && now.Sub(m.ownerAt) >= m.cfg.Timeout(m.ownLine) {
			m.log.Warn("atcmd: mux gave up waiting for an answer", "host", m.owner.Name, "line", m.ownLine)
			if m.owner != m.probe {
				m.sendLocked(m.owner, []byte("\r\nERROR\r\n"))
			}
			m.abandonLocked("no answer in time")
		}
		var write []byte
		esc := m.pendingEsc
		m.pendingEsc = ""
		switch {
		case esc != "":
		case m.owner != nil || m.mode != modeLines:
		case m.needProbe:
			m.needProbe = false
			m.owner, m.ownerAt, m.ownLine = m.probe, now, "AT"
			write = []byte("AT\r")
		case now.Before(m.quietUntil):
		case len(m.queue) > 0:
			c := m.queue[0]
			m.queue = m.queue[1:]
			m.owner, m.ownerAt, m.ownLine = c.host, now, c.line
			write = []byte(c.line + "\r")
		}
		wait := time.Hour
		switch {
		case m.owner != nil && m.mode != modeData:
			wait = time.Until(m.ownerAt.Add(m.cfg.Timeout(m.ownLine)))
		case m.owner == nil && now.Before(m.quietUntil):
			wait = time.Until(m.quietUntil)
		}
		m.mu.Unlock()
		if esc != "" {
			m.escapeModem(esc)
			continue
		}
		if write != nil {
			m.writeModem(write)
			continue
		}
		t.Reset(max(wait, time.Millisecond))
		select {
		case <-m.wake:
		case <-t.C:
		case <-m.closed:
			return
		}
	}
}

// abandonLocked gives up on the command in flight and schedules the
// resynchronisation: ESC out of text entry, "+++" out of data mode (V.250
// §6.2.3 escape, with its guard times), then an "AT" probe and a quiet
// window, so a late answer never reaches the next host.
func (m *Mux) abandonLocked(why string) {
	switch m.mode {
	case modePrompt:
		m.pendingEsc = string([]byte{esc})
	case modeData:
		m.pendingEsc = "+++"
	}
	m.log.Debug("atcmd: mux resynchronising", "line", m.ownLine, "why", why)
	m.owner, m.mode, m.needProbe = nil, modeLines, true
	m.kick()
}

// escapeGuard is the silence before and after "+++" (V.250 S12 default:
// one second).
const escapeGuard = time.Second

func (m *Mux) escapeModem(seq string) {
	if seq != "+++" {
		m.writeModem([]byte(seq))
		return
	}
	t := time.NewTimer(escapeGuard)
	defer t.Stop()
	for i := 0; i < 2; i++ {
		select {
		case <-t.C:
		case <-m.closed:
			return
		}
		if i == 0 {
			m.writeModem([]byte(seq))
			t.Reset(escapeGuard)
		}
	}
}

// readModem routes the module's output line by line.
func (m *Mux) readModem() {
	defer m.wg.Done()
	buf := make([]byte, 512)
	for {
		n, err := m.modem.Read(buf)
		if n > 0 {
			m.modemBytes(buf[:n])
		}
		if err != nil {
			select {
			case <-m.closed:
			default:
				m.log.Warn("atcmd: mux lost the modem port", "err", err)
			}
			m.modemErr = err
			close(m.modemGone)
			m.shutdownHosts()
			return
		}
	}
}

// shutdownHosts closes the hosts when the modem port is gone, so their
// programs see the port vanish as they would with the real module.
func (m *Mux) shutdownHosts() {
	m.mu.Lock()
	hosts := append([]*muxHost(nil), m.hosts...)
	m.mu.Unlock()
	for _, h := range hosts {
		if c, ok := h.rw.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

func (m *Mux) modemBytes(p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mode == modeData {
		// Raw data (PPP, a file): pass it on as it comes, and watch the
		// lines in it for the final result code that ends data mode. PPP's
		// default async control character map escapes CR and LF, so a
		// final result line cannot appear inside a PPP frame (RFC 1662 §7.1).
		m.sendLocked(m.owner, p)
		for _, c := range p {
			if c != '\r' && c != '\n' {
				if len(m.line) < m.cfg.MaxLineLen {
					m.line = append(m.line, c)
				}
				continue
			}
			text := bytes.TrimSpace(m.line)
			m.line = m.line[:0]
			if ClassifyFinal(text, m.cfg.VendorFinals) != NotFinal {
				m.mode = modeLines
				m.finishLocked()
			}
		}
		return
	}
	for _, c := range p {
		if c == '\n' && len(m.line) == 0 && m.tailSet {
			// The LF of the CR LF that ended the last line goes where the
			// line went.
			m.tailSet = false
			if m.tailHost != nil {
				m.sendLocked(m.tailHost, []byte{c})
			} else {
				m.routeLocked([]byte{c})
			}
			continue
		}
		m.tailSet = false
		m.line = append(m.line, c)
		switch {
		case c == '\r' || c == '\n':
			if len(bytes.TrimSpace(m.line)) > 0 {
				m.lineLocked()
			}
		case c == ' ' && m.owner != nil && string(bytes.TrimLeft(m.line, "\r\n")) == "> " && promptCommand(m.ownLine):
			// The data prompt has no terminator (3GPP TS 27.005 §3.5.1).
			m.sendLocked(m.owner, m.line)
			m.line = m.line[:0]
			m.mode = modePrompt
			if m.payloadLeft = payloadLength(m.ownLine); m.payloadLeft == 0 {
				m.mode = modeLines
			}
		case len(m.line) > m.cfg.MaxLineLen:
			m.routeLocked(m.line)
			m.line = m.line[:0]
		}
	}
}

// lineLocked routes the completed line in m.line: the raw bytes, with any
// blank line endings before it, go to one destination — the owner of the
// command in flight, or every host that takes unsolicited output.
func (m *Mux) lineLocked() {
	raw := m.line
	m.line = m.line[:0]
	text := bytes.TrimSpace(raw)
	kind := ClassifyFinal(text, m.cfg.VendorFinals)
	boot := isBootMarker(text, DefaultBootMarkers)
	if m.owner == nil && (kind == FinalOK || kind == FinalError || kind == FinalConnect) {
		// A final result code with no command in flight is a late answer
		// to an abandoned command: it belongs to nobody. Routed to a host
		// whose own command is still queued here, it would become that
		// command's answer. (Call-progress codes such as NO CARRIER are
		// real events and still go out.)
		if time.Now().Before(m.quietUntil) {
			m.quietUntil = time.Now().Add(muxQuiet)
		}
		m.log.Debug("atcmd: mux dropped a final result code nobody asked for", "line", string(text))
		m.tailSet, m.tailHost = raw[len(raw)-1] == '\r', m.probe
		return
	}
	var dest *muxHost
	if m.owner != nil && !boot {
		_, urc := knownURCTrailing(text)
		if kind != NotFinal || !urc || hasCommandName(m.ownLine, urcName(text)) {
			dest = m.owner
		}
	}
	if dest != nil {
		m.sendLocked(dest, raw)
	} else {
		m.routeLocked(raw)
	}
	m.tailSet, m.tailHost = raw[len(raw)-1] == '\r', dest
	switch {
	case boot && m.owner != nil:
		m.finishLocked() // the module rebooted: the command in flight is lost
	case dest == nil:
	case kind == FinalConnect && m.ownerWantsDataLocked():
		m.mode = modePrompt // Quectel: CONNECT asks for the payload
		if m.payloadLeft = payloadLength(m.ownLine); m.payloadLeft == 0 {
			m.mode = modeLines
		}
	case kind == FinalConnect:
		m.mode = modeData
	case kind != NotFinal:
		m.finishLocked()
	}
}

// ownerWantsDataLocked reports whether the running command is one that
// asks for its payload with CONNECT (Quectel AT+QHTTPURL, AT+QFUPL, ...).
func (m *Mux) ownerWantsDataLocked() bool {
	name, _ := dataCommand(m.ownLine)
	return name != "" && dataCommands[name].connect
}

// dataCommands are the commands that take a payload after a prompt ("> ")
// or after CONNECT, with the 0-based index of the argument that counts the
// payload's bytes (-1: the payload ends with Ctrl-Z, 3GPP TS 27.005 §3.5.1).
// A counted payload is forwarded byte for byte and no further: whatever the
// host sends after it is a command line again and passes the filter.
// Sources: Quectel TCP/IP, HTTP(S), FILE and MQTT application notes; SIMCom
// SIM7600 TCP/IP and MQTT(S) application notes; Telit LE910Cx AT reference.
var dataCommands = map[string]struct {
	lenArg  int
	connect bool
}{
	"+CMGS": {-1, false}, "+CMGW": {-1, false}, "+CMGC": {-1, false},
	"+QISEND": {1, false}, "+QSSLSEND": {1, false}, "+QMTPUB": {-1, false}, "+QMTPUBEX": {5, false},
	"+QHTTPURL": {0, true}, "+QHTTPPOST": {0, true}, "+QHTTPPUT": {0, true}, "+QFUPL": {1, true}, "+QFWRITE": {1, true},
	"+CIPSEND": {-2, false}, "+CMQTTTOPIC": {1, false}, "+CMQTTPAYLOAD": {1, false}, "+CMQTTSUBTOPIC": {1, false},
	"+CMQTTWILLTOPIC": {1, false}, "+CMQTTWILLMSG": {1, false}, "#SSENDEXT": {1, false}, "#SSEND": {-1, false},
}

// dataCommand finds the data command in a command line and its arguments.
func dataCommand(line string) (string, string) {
	u := strings.ToUpper(strings.ReplaceAll(line, " ", ""))
	for name := range dataCommands {
		if i := strings.Index(u, name+"="); i >= 0 {
			args := u[i+len(name)+1:]
			if j := strings.IndexByte(args, ';'); j >= 0 {
				args = args[:j]
			}
			return name, args
		}
	}
	return "", ""
}

// promptCommand reports whether a "> " during this command line is a data
// prompt. For any other command it is text, and no payload mode starts.
func promptCommand(line string) bool {
	name, _ := dataCommand(line)
	return name != ""
}

// payloadLength returns the payload byte count the command line announces,
// or -1 when the payload ends with Ctrl-Z. lenArg -2 means the last
// argument (SIMCom AT+CIPSEND=<len> or =<link>,<len>).
func payloadLength(line string) int {
	name, args := dataCommand(line)
	d, ok := dataCommands[name]
	if !ok || d.lenArg == -1 {
		return -1
	}
	parts := strings.Split(args, ",")
	i := d.lenArg
	if i == -2 {
		i = len(parts) - 1
	}
	if i >= len(parts) {
		return -1
	}
	n, err := strconv.Atoi(strings.Trim(parts[i], `" `))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func (m *Mux) finishLocked() {
	if m.owner == m.probe {
		m.quietUntil = time.Now().Add(muxQuiet)
	}
	m.owner = nil
	m.mode = modeLines
	m.kick()
}

// muxQuiet is how long the port must stay free of final result codes after
// a resync probe before the next command is sent.
const muxQuiet = 200 * time.Millisecond

// routeLocked sends an unsolicited line to every host that wants
// unsolicited output.
func (m *Mux) routeLocked(raw []byte) {
	for _, h := range m.hosts {
		if h.Unsolicited {
			m.sendLocked(h, raw)
		}
	}
}

// sendLocked queues bytes for a host's writer; a host that does not read
// loses output rather than stalling the module and the other hosts.
func (m *Mux) sendLocked(h *muxHost, b []byte) {
	if h == nil || h == m.probe || h.detached || len(b) == 0 {
		return
	}
	select {
	case h.out <- append([]byte(nil), b...):
	default:
		m.log.Warn("atcmd: mux host is not reading; output dropped", "host", h.Name, "bytes", len(b))
	}
}

func (m *Mux) writeHost(h *muxHost) {
	defer m.wg.Done()
	for {
		select {
		case b := <-h.out:
			if err := writeFull(h.rw, b); err != nil {
				m.log.Debug("atcmd: mux write to a host failed", "host", h.Name, "err", err)
			}
		case <-h.gone:
			return
		case <-m.closed:
			return
		}
	}
}

// Wait blocks until ctx ends, the Mux is closed (nil) or the modem port
// fails (ErrClosed wrapping the read error: the module was unplugged or
// rebooted and its tty vanished).
func (m *Mux) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-m.closed:
		return nil
	case <-m.modemGone:
		select {
		case <-m.closed:
			return nil
		default:
		}
		return fmt.Errorf("%w: modem port: %w", ErrClosed, m.modemErr)
	}
}
