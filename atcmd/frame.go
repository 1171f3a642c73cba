package atcmd

import "sync/atomic"

// tokenKind is what the framer found in the byte stream.
type tokenKind uint8

const (
	tokLine     tokenKind = iota // a complete, non-empty line without its terminator
	tokPrompt                    // the "> " data prompt, which has no terminator
	tokOverflow                  // a line longer than the limit; its bytes are discarded
)

// framer splits the module's byte stream into lines. It accepts "\r\n",
// "\r\r\n", a lone "\r" (ATV0, S4 not LF) and a lone "\n" as terminators,
// drops empty lines and NUL bytes (ZTE ports pad with NULs — ModemManager
// is_non_at_response), and bounds every line to max bytes so a flood of
// garbage costs a fixed amount of memory.
//
// Only the reader goroutine uses a framer.
type framer struct {
	max        int
	line       []byte
	overflow   bool
	skipSpace  bool
	wantPrompt *atomic.Bool // set while a command waits for "> "
	emit       func(kind tokenKind, line []byte)
}

func newFramer(max int, wantPrompt *atomic.Bool, emit func(tokenKind, []byte)) *framer {
	return &framer{max: max, line: make([]byte, 0, 256), wantPrompt: wantPrompt, emit: emit}
}

// feed processes p. The slice passed to emit is only valid during the call.
func (f *framer) feed(p []byte) {
	for _, b := range p {
		if f.skipSpace {
			f.skipSpace = false
			if b == ' ' {
				continue
			}
		}
		switch b {
		case '\r', '\n':
			f.endLine()
		case 0:
			// NUL padding: never part of AT text.
		case '>':
			if len(f.line) == 0 && !f.overflow && f.wantPrompt != nil && f.wantPrompt.Load() {
				// 3GPP TS 27.005 §3.5.1: the prompt is "<CR><LF><greater_than><space>"
				// with no terminator after it.
				f.skipSpace = true
				f.emit(tokPrompt, nil)
				continue
			}
			f.add(b)
		default:
			f.add(b)
		}
	}
}

func (f *framer) add(b byte) {
	if f.overflow {
		return
	}
	if len(f.line) >= f.max {
		f.overflow = true
		f.line = f.line[:0]
		f.emit(tokOverflow, nil)
		return
	}
	f.line = append(f.line, b)
}

func (f *framer) endLine() {
	if f.overflow {
		f.overflow = false
		return
	}
	if len(f.line) == 0 {
		return
	}
	line := trimSpace(f.line)
	f.line = f.line[:0]
	if len(line) > 0 {
		f.emit(tokLine, line)
	}
}

// trimSpace drops leading and trailing blanks (space, tab) without
// allocating. Wavecom answers " WAVECOM MODEM" with a leading space
// (python-gsmmodem test/fakemodems.py).
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
