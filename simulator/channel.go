package simulator

import (
	"io"
	"strings"
	"sync"
	"time"
)

// maxLine is the longest command line accepted; longer input is dropped and
// answered with ERROR, like a module's command buffer overflowing.
const maxLine = 4096

type outItem struct {
	b    []byte
	resp bool // a command response: subject to latency and split faults
}

// channel serves one host connection on one AT port. Three goroutines:
// reader (conn → in), engine (in → state machine → out), writer (out → conn).
type channel struct {
	m    *Modem
	port int
	conn io.ReadWriteCloser
	in   chan []byte
	out  chan outItem
	done chan struct{}
	once sync.Once

	// guarded by m.mu: the V.250 settings of this channel
	echo    bool
	verbose bool // V1
	quiet   bool // Q1
	cmee    int
	regN    map[string]int // "+CREG" → n
	gen     int            // power cycle these settings belong to
	busy    bool           // a command line is executing: URCs wait in pending
	pending []string

	// owned by the engine goroutine
	line      []byte
	last      string // last command line, for A/
	prompt    *prompt
	engineGen int
}

// prompt is an open "> " (or CONNECT) data phase.
type prompt struct {
	raw    bool // CONNECT data phase: no echo, ends after n bytes
	n      int  // fixed length, 0 = until Ctrl-Z
	buf    []byte
	finish func(payload []byte, cancelled bool) result // called with m.mu held
}

func (c *channel) resetLocked() {
	c.echo = c.m.p.Echo
	c.verbose = true
	c.quiet = false
	c.cmee = c.m.p.CMEE
	c.regN = map[string]int{}
	c.gen = c.m.gen
}

func (c *channel) stop() {
	c.once.Do(func() {
		close(c.done)
		c.conn.Close()
		c.m.detach(c)
	})
}

func (c *channel) reader() {
	defer c.m.wg.Done()
	defer c.stop()
	buf := make([]byte, 4096)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			b := append([]byte(nil), buf[:n]...)
			select {
			case c.in <- b:
			case <-c.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *channel) writer() {
	defer c.m.wg.Done()
	defer c.stop()
	for {
		select {
		case it := <-c.out:
			c.m.mu.Lock()
			f := c.m.faults
			var lat time.Duration
			if it.resp {
				lat = f.Latency
				if f.Jitter > 0 {
					lat += time.Duration(c.m.frng.Int64N(int64(f.Jitter) + 1))
				}
			}
			c.m.mu.Unlock()
			if lat > 0 && !c.sleep(lat) {
				return
			}
			b := it.b
			step := len(b)
			if f.Split > 0 {
				step = f.Split
			}
			for len(b) > 0 {
				k := min(step, len(b))
				if _, err := c.conn.Write(b[:k]); err != nil {
					return
				}
				b = b[k:]
				if len(b) > 0 && f.SplitDelay > 0 && !c.sleep(f.SplitDelay) {
					return
				}
			}
		case <-c.done:
			return
		}
	}
}

// sleep waits d; false if the channel or modem stopped meanwhile.
func (c *channel) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	case <-c.m.done:
		return false
	}
}

// send queues output, blocking while the queue is full.
func (c *channel) send(it outItem) bool {
	if len(it.b) == 0 {
		return true
	}
	select {
	case c.out <- it:
		return true
	case <-c.done:
		return false
	}
}

// enqueueLocked queues output without blocking; output that does not fit
// is dropped (a host that never reads must not stall the modem).
func (c *channel) enqueueLocked(it outItem) {
	select {
	case c.out <- it:
	default:
		c.m.log.Warn("simulator: output queue full, dropped", "port", c.port, "bytes", len(it.b))
	}
}

// urcLocked queues an unsolicited line. While a command line executes the
// URC is held until its final result (a module does not interleave URCs
// into a response; the URCMid fault does it on purpose).
func (c *channel) urcLocked(line string) {
	if c.busy {
		c.pending = append(c.pending, line)
		return
	}
	c.enqueueLocked(outItem{b: []byte(c.urcText(line))})
}

// flushPending ends the busy state and sends the held URCs.
func (c *channel) flushPending() {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.busy = false
	for _, l := range c.pending {
		c.enqueueLocked(outItem{b: []byte(c.urcText(l))})
	}
	c.pending = nil
}

func (c *channel) urcText(line string) string {
	if c.verbose {
		return "\r\n" + line + "\r\n"
	}
	return line + "\r\n"
}

func (c *channel) infoText(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	if c.verbose {
		return "\r\n" + strings.Join(lines, "\r\n") + "\r\n"
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// finalText formats a final result code (V.250 §5.7.1, Table 1 for V0).
func (c *channel) finalText(s string) string {
	if c.quiet {
		return ""
	}
	if c.verbose {
		return "\r\n" + s + "\r\n"
	}
	codes := map[string]string{"OK": "0", "CONNECT": "1", "RING": "2", "NO CARRIER": "3", "ERROR": "4", "NO DIALTONE": "6", "BUSY": "7", "NO ANSWER": "8"}
	if n, ok := codes[s]; ok {
		return n + "\r"
	}
	return s + "\r\n"
}

func (c *channel) engine() {
	defer c.m.wg.Done()
	defer c.stop()
	for {
		select {
		case b, ok := <-c.in:
			if !ok {
				return
			}
			c.feed(b)
		case <-c.done:
			return
		case <-c.m.done:
			return
		}
	}
}

// feed runs received bytes through echo, line assembly and prompts.
func (c *channel) feed(b []byte) {
	m := c.m
	m.mu.Lock()
	if c.engineGen != m.gen {
		c.engineGen = m.gen
		c.line, c.prompt = c.line[:0], nil
	}
	if m.deafLocked() {
		m.mu.Unlock()
		return
	}
	echo := c.echo
	m.mu.Unlock()

	var eb []byte
	flush := func() {
		if len(eb) > 0 {
			c.send(outItem{b: eb})
			eb = nil
		}
	}
	for i := 0; i < len(b); i++ {
		x := b[i]
		if p := c.prompt; p != nil {
			if !p.raw && echo && x != 0x1b {
				eb = append(eb, x)
			}
			switch {
			case !p.raw && x == 0x1b:
				flush()
				c.endPrompt(true)
			case !p.raw && x == 0x1a && p.n == 0:
				flush()
				c.endPrompt(false)
			default:
				p.buf = append(p.buf, x)
				if p.n > 0 && len(p.buf) >= p.n {
					flush()
					c.endPrompt(false)
				}
			}
			continue
		}
		if echo {
			eb = append(eb, x)
		}
		switch x {
		case '\r':
			flush()
			line := string(c.line)
			c.line = c.line[:0]
			c.execLine(line, false)
			m.mu.Lock()
			echo = c.echo
			m.mu.Unlock()
		case '\n':
			// V.250: LF after CR is ignored
		case 8, 0x7f: // S5 backspace
			if len(c.line) > 0 {
				c.line = c.line[:len(c.line)-1]
			}
		default:
			if len(c.line) >= maxLine {
				c.line = c.line[:0]
				flush()
				m.mu.Lock()
				t := c.finalText("ERROR")
				m.mu.Unlock()
				c.send(outItem{b: []byte(t), resp: true})
				continue
			}
			c.line = append(c.line, x)
			if len(c.line) == 2 && (c.line[0] == 'A' || c.line[0] == 'a') && c.line[1] == '/' {
				// V.250 §5.2.4 A/: repeat the last command line, no CR needed
				flush()
				c.line = c.line[:0]
				if c.last != "" {
					c.execLine(c.last, true)
				}
				m.mu.Lock()
				echo = c.echo
				m.mu.Unlock()
			}
		}
	}
	flush()
}

func (c *channel) endPrompt(cancelled bool) {
	p := c.prompt
	c.prompt = nil
	m := c.m
	m.mu.Lock()
	c.busy = true
	if !cancelled {
		m.received = append(m.received, string(p.buf))
		m.transcript(c.port, string(p.buf))
	}
	r := p.finish(p.buf, cancelled)
	out := c.render([]result{r})
	m.mu.Unlock()
	c.emit(out, r)
	c.flushPending()
}

// execLine runs one command line (without CR).
func (c *channel) execLine(line string, repeat bool) {
	i := -1
	for k := 0; k+1 < len(line); k++ {
		if upper(line[k]) == 'A' && upper(line[k+1]) == 'T' {
			i = k
			break
		}
	}
	if i < 0 {
		return // V.250: characters before "AT" are ignored; no AT, no command
	}
	line = line[i:]
	m := c.m
	m.mu.Lock()
	m.received = append(m.received, line)
	m.transcript(c.port, line)
	m.mu.Unlock()
	if !repeat {
		c.last = line
	}

	cmds, err := ParseCommandLine(line[2:])
	m.mu.Lock()
	c.busy = true
	defer c.flushPending()
	if err != nil {
		t := c.finalText("ERROR")
		m.mu.Unlock()
		c.send(outItem{b: []byte(t), resp: true})
		return
	}
	f := m.faults
	// fault: reboot mid-command — the command is never answered
	if f.RebootOn != "" {
		for _, cmd := range cmds {
			if strings.HasPrefix(cmd.Key(), strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(f.RebootOn, "AT"), "at"))) {
				m.rebootLocked()
				m.mu.Unlock()
				return
			}
		}
	}
	results := []result{ok()} // bare "AT"
	if len(cmds) > 0 {
		results = results[:0]
	}
	for _, cmd := range cmds {
		r := c.exec(cmd)
		results = append(results, r)
		if r.isErr || r.prompt != nil || r.reboot {
			break
		}
	}
	last := results[len(results)-1]
	if last.prompt != nil && (last.prompt.n < 0 || last.prompt.n > maxLine) {
		last = c.cmeLocked(50) // a data length no module buffers
		results[len(results)-1] = last
	}
	if last.prompt != nil {
		c.prompt = last.prompt
	}
	out := c.render(results)
	m.respCount++
	drop := f.Drop > 0 && m.frng.Float64() < f.Drop
	garbage := f.Garbage > 0 && m.frng.Float64() < f.Garbage
	var junk []byte
	if garbage {
		junk = make([]byte, 8+m.frng.IntN(56))
		for k := range junk {
			junk[k] = byte(m.frng.IntN(256))
		}
	}
	var delay time.Duration
	for _, r := range results {
		delay += r.delay
	}
	m.mu.Unlock()

	if delay > 0 && !c.sleep(delay) {
		return
	}
	if junk != nil {
		c.send(outItem{b: junk})
	}
	if drop {
		return
	}
	c.emit(out, last)
	if last.reboot {
		m.mu.Lock()
		m.rebootLocked()
		m.mu.Unlock()
	}
}

// emit sends a rendered response then the URCs that follow it.
func (c *channel) emit(out string, r result) {
	c.send(outItem{b: []byte(out), resp: true})
	if len(r.after) > 0 {
		c.m.mu.Lock()
		var b strings.Builder
		for _, u := range r.after {
			b.WriteString(c.urcText(u))
		}
		c.m.mu.Unlock()
		c.send(outItem{b: []byte(b.String())})
	}
}

// render formats the results of one command line: each command's info
// block, then one final result code (V.250 §5.7).
func (c *channel) render(results []result) string {
	var b strings.Builder
	var last result
	for _, r := range results {
		b.WriteString(c.infoText(r.info))
		last = r
	}
	f := c.m.faults
	info := b.String()
	final := ""
	switch {
	case last.prompt != nil && !last.prompt.raw:
		final = "\r\n> "
		if !c.verbose {
			final = "> "
		}
	case last.prompt != nil && last.prompt.raw:
		final = c.finalText("CONNECT")
	case last.noFinal:
	default:
		final = c.finalText(last.finalOr())
	}
	if f.URCMid > 0 && info != "" && final != "" && c.m.frng.Float64() < f.URCMid {
		line := f.URCLine
		if line == "" {
			line = expand(c.m.p.URC.SMS, func(string) string { return "1" })
		}
		info += c.urcText(line)
	}
	return info + final
}
