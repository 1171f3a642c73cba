package atcmd

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Trace wraps a port and writes every byte read and written to a log, one
// record per Read or Write call, with a timestamp and the bytes quoted so
// that "\r", "\n" and binary are visible:
//
//	21:04:05.123456 w "AT+CGMI\r"
//	21:04:05.131002 r "\r\nQuectel\r\n\r\nOK\r\n"
//
// It is meant for people debugging a real module (modemguard --trace).
// Close closes the wrapped port if it is an io.Closer.
type Trace struct {
	rw  io.ReadWriter
	mu  sync.Mutex // serialises writes to log
	log io.Writer
	buf []byte
}

// NewTrace returns rw wrapped so that its traffic is written to log.
func NewTrace(rw io.ReadWriter, log io.Writer) *Trace {
	return &Trace{rw: rw, log: log}
}

func (t *Trace) Read(p []byte) (int, error) {
	n, err := t.rw.Read(p)
	if n > 0 || err != nil {
		t.record('r', p[:n], err)
	}
	return n, err
}

// Write logs p before writing it, so the log shows the command before the
// answer even on a synchronous pipe; a failed or short write is logged again
// with its error.
func (t *Trace) Write(p []byte) (int, error) {
	t.record('w', p, nil)
	n, err := t.rw.Write(p)
	if err != nil {
		t.record('w', p[:n], err)
	}
	return n, err
}

// Close closes the wrapped port if it can be closed.
func (t *Trace) Close() error {
	if c, ok := t.rw.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (t *Trace) record(dir byte, b []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = time.Now().AppendFormat(t.buf[:0], "15:04:05.000000")
	t.buf = append(t.buf, ' ', dir, ' ')
	t.buf = strconv.AppendQuote(t.buf, string(b))
	if err != nil {
		t.buf = fmt.Appendf(t.buf, " err=%v", err)
	}
	t.buf = append(t.buf, '\n')
	_, _ = t.log.Write(t.buf)
}
