package atcmd

import (
	"bytes"
	"errors"
	"fmt"
)

// URC is an unsolicited result code: a line the module sent on its own,
// plus the trailing lines its handler asked for (the PDU after "+CMT:").
type URC struct {
	Line     string
	Trailing []string
}

type handler struct {
	prefix   string
	trailing int
	fn       func(URC)
}

type urcItem struct {
	fn  func(URC)
	urc URC
}

// ErrHandlerExists is returned by Handle for a prefix that already has one.
var ErrHandlerExists = errors.New("atcmd: a handler for this prefix exists")

// Handle registers fn for unsolicited lines starting with prefix (for
// example "+CREG:" or "RDY"); trailing is how many lines after the head
// line belong to it (1 for "+CMT:" in PDU mode). Lines no handler takes go
// to Config.Unsolicited.
//
// Handlers run one at a time, in arrival order, on the Conn's dispatcher
// goroutine; a handler that blocks delays the ones after it, and when the
// queue (Config.URCQueue) is full further URCs are dropped and counted in
// Stats.URCDropped. A handler may call Command. The returned func removes
// the handler.
func (c *Conn) Handle(prefix string, trailing int, fn func(URC)) (remove func(), err error) {
	if fn == nil {
		return nil, errors.New("atcmd: Handle: nil handler")
	}
	if trailing < 0 || trailing > 16 {
		return nil, fmt.Errorf("atcmd: Handle %q: trailing lines %d out of range 0..16", prefix, trailing)
	}
	if prefix == "" {
		return nil, errors.New("atcmd: Handle: empty prefix (use Config.Unsolicited for every other line)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.handlers {
		if h.prefix == prefix {
			return nil, fmt.Errorf("%w: %q", ErrHandlerExists, prefix)
		}
	}
	c.handlers = append(c.handlers, handler{prefix: prefix, trailing: trailing, fn: fn})
	// Longest prefix first, so "+CGEV: ME" can be told from "+CGEV:".
	for i := len(c.handlers) - 1; i > 0 && len(c.handlers[i].prefix) > len(c.handlers[i-1].prefix); i-- {
		c.handlers[i], c.handlers[i-1] = c.handlers[i-1], c.handlers[i]
	}
	return c.remover(prefix), nil
}

func (c *Conn) remover(prefix string) func() {
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, h := range c.handlers {
			if h.prefix == prefix {
				c.handlers = append(c.handlers[:i], c.handlers[i+1:]...)
				return
			}
		}
	}
}

// knownURC lists line starts that modules send unsolicited. A line that
// matches one is never taken as the answer to an unrelated command, even
// when no handler is registered for it (it goes to the catch-all handler).
// Entries without a trailing ':' must match the whole line.
//
// Sources: 3GPP TS 27.007 (+CREG §7.2, +CGREG §10.1.20, +CEREG §10.1.22,
// +C5GREG §10.1.59, +CGEV §10.1.19, +CIEV §8.10), TS 27.005 (+CMTI, +CMT,
// +CDS, +CBM §3.4.1), V.250 (RING); vendor boot and status lines from
// ModemManager's quectel, huawei and ublox plugins and the reference notes.
var knownURC = []struct {
	text     string
	trailing int
}{
	{"+CREG:", 0}, {"+CGREG:", 0}, {"+CEREG:", 0}, {"+C5GREG:", 0},
	{"+CGEV:", 0}, {"+CIEV:", 0}, {"+CMTI:", 0}, {"+CMT:", 1}, {"+CDS:", 1},
	{"+CBM:", 1}, {"+CDSI:", 0}, {"+CUSD:", 0}, {"+CLIP:", 0}, {"+CRING:", 0},
	{"RING", 0}, {"+CPIN:", 0}, {"+CFUN:", 0}, {"+CTZV:", 0}, {"+CTZE:", 0},
	{"+QIND:", 0}, {"+QUSIM:", 0}, {"+QIURC:", 0}, {"+QMTSTAT:", 0}, {"+QMTRECV:", 0},
	{"+QSIMSTAT:", 0}, {"^RSSI:", 0}, {"^HCSQ:", 0}, {"^MODE:", 0}, {"^SRVST:", 0},
	{"^SIMST:", 0}, {"^BOOT:", 0}, {"^SYSSTART", 0}, {"+SIMCARD:", 0},
	{"+UUSORD:", 0}, {"+UUSOCL:", 0}, {"#QSS:", 0},
	{"RDY", 0}, {"APP RDY", 0}, {"+READY", 0}, {"Ready", 0},
	{"SMS DONE", 0}, {"PB DONE", 0}, {"SMS Ready", 0}, {"Call Ready", 0},
}

// DefaultBootMarkers are lines a module prints when it (re)boots; seeing
// one means any command in flight is lost and cached identity is stale.
// Quectel "RDY" (ModemManager mm-shared-quectel.c rdy_handler), BG9x
// "APP RDY", u-blox "+READY", Nordic SLM "Ready", Cinterion "^SYSSTART".
var DefaultBootMarkers = []string{"RDY", "APP RDY", "+READY", "Ready", "^SYSSTART"}

func knownURCTrailing(line []byte) (int, bool) {
	for _, k := range knownURC {
		if matchVendor(line, k.text) {
			return k.trailing, true
		}
	}
	return 0, false
}

func isBootMarker(line []byte, markers []string) bool {
	for _, m := range markers {
		if string(line) == m {
			return true
		}
	}
	return false
}

// urcName is the command name a URC line carries: "+CREG" for
// "+CREG: 1". Lines without a colon have none.
func urcName(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	return string(line[:i])
}
