package atcmdtest

import (
	"bytes"
	"io"
	"net"
	"sync"
)

// Script answers a fake modem's input.
type Script interface {
	// Line is called for every command line the host writes, without its
	// terminator, and returns the bytes the modem sends back. An answer
	// ending in "> " puts the modem in data mode.
	Line(line string) []byte
	// Data is called with the payload the host writes in data mode, up to
	// Ctrl-Z (cancelled false) or ESC (cancelled true), terminator excluded.
	Data(payload []byte, cancelled bool) []byte
}

// DataModer is implemented by a Script whose last answer asked for data
// without the "> " prompt (CONNECT for Quectel AT+QHTTPURL).
type DataModer interface {
	DataMode() bool
}

// ScriptFunc answers command lines with a function; it has no data mode.
type ScriptFunc func(line string) []byte

func (f ScriptFunc) Line(line string) []byte            { return f(line) }
func (f ScriptFunc) Data(payload []byte, _ bool) []byte { return nil }

// Modem is a scripted fake modem seen from the host side: an
// io.ReadWriteCloser that answers each command line written to it. Answers
// are delivered in chunks, one per Script call, so wrapping it in
// iotest.OneByteReader or iotest.HalfReader exercises the reader's framing.
// It is not a simulator: see package simulator for a stateful modem.
type Modem struct {
	script   Script
	out      chan []byte
	closed   chan struct{}
	once     sync.Once
	eofAfter int

	// Owned by the goroutine calling Read.
	cur    []byte
	chunks int

	// Owned by the goroutine calling Write.
	in       []byte
	dataMode bool

	mu       sync.Mutex
	received []string
}

// ModemOptions tune a Modem.
type ModemOptions struct {
	// EOFAfter, if positive, makes Read return io.EOF together with the
	// last bytes of chunk number EOFAfter (counting from 1), the way a port
	// that vanishes right after answering does (iotest.DataErrReader).
	EOFAfter int
}

// NewModem returns a fake modem answering with script.
func NewModem(script Script, opts ModemOptions) *Modem {
	return &Modem{script: script, out: make(chan []byte, 256), closed: make(chan struct{}), eofAfter: opts.EOFAfter}
}

// Emit sends b to the host unprompted, as a module sends URCs.
func (m *Modem) Emit(b []byte) {
	if len(b) == 0 {
		return
	}
	select {
	case m.out <- b:
	case <-m.closed:
	}
}

// Received returns the command lines the host wrote, in order.
func (m *Modem) Received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.received...)
}

func (m *Modem) Read(p []byte) (int, error) {
	for len(m.cur) == 0 {
		if m.eofAfter > 0 && m.chunks >= m.eofAfter {
			return 0, io.EOF
		}
		select {
		case b := <-m.out:
			m.cur = b
			m.chunks++
		case <-m.closed:
			return 0, io.ErrClosedPipe
		}
	}
	n := copy(p, m.cur)
	m.cur = m.cur[n:]
	if len(m.cur) == 0 && m.eofAfter > 0 && m.chunks == m.eofAfter {
		return n, io.EOF
	}
	return n, nil
}

func (m *Modem) Write(p []byte) (int, error) {
	select {
	case <-m.closed:
		return 0, io.ErrClosedPipe
	default:
	}
	m.in = append(m.in, p...)
	for {
		if m.dataMode {
			i := bytes.IndexAny(m.in, "\x1a\x1b")
			if i < 0 {
				break
			}
			payload, cancelled := m.in[:i], m.in[i] == 0x1b
			m.in = m.in[i+1:]
			m.dataMode = false
			m.Emit(m.script.Data(payload, cancelled))
			continue
		}
		i := bytes.IndexAny(m.in, "\r\n")
		if i < 0 {
			break
		}
		line := string(m.in[:i])
		m.in = m.in[i+1:]
		if line == "" || line == "\x1b" {
			continue
		}
		line = string(bytes.TrimLeft([]byte(line), "\x1b"))
		m.mu.Lock()
		m.received = append(m.received, line)
		m.mu.Unlock()
		ans := m.script.Line(line)
		if bytes.HasSuffix(ans, []byte("> ")) {
			m.dataMode = true
		}
		if dm, ok := m.script.(DataModer); ok && dm.DataMode() {
			m.dataMode = true
		}
		m.Emit(ans)
	}
	return len(p), nil
}

// Close makes pending and future Reads and Writes fail.
func (m *Modem) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

// Pipe starts a modem that answers each command line with answer over a
// real net.Pipe and returns the host end. The modem goroutine ends when the
// host end is closed. It is the fixture for round-trip benchmarks.
// answer gets the line without its terminator; it must not keep it.
func Pipe(answer func(line []byte) []byte) net.Conn {
	host, dev := net.Pipe()
	go func() {
		defer dev.Close()
		buf := make([]byte, 512)
		var line []byte
		for {
			n, err := dev.Read(buf)
			for _, b := range buf[:n] {
				if b != '\r' {
					line = append(line, b)
					continue
				}
				if ans := answer(line); len(ans) > 0 {
					if _, err := dev.Write(ans); err != nil {
						return
					}
				}
				line = line[:0]
			}
			if err != nil {
				return
			}
		}
	}()
	return host
}
