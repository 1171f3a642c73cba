package atcmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

// readModes are the read patterns every transcript is replayed through
// (after bufio's own tests, bufio_test.go readMakers).
var readModes = []struct {
	name string
	wrap func(io.Reader) io.Reader
	eof  bool // the last answer arrives together with io.EOF
}{
	{name: "full", wrap: func(r io.Reader) io.Reader { return r }},
	{name: "onebyte", wrap: iotest.OneByteReader},
	{name: "half", wrap: iotest.HalfReader},
	{name: "dataeof", wrap: func(r io.Reader) io.Reader { return r }, eof: true},
}

// transcriptScript answers from a transcript's steps, in order.
type transcriptScript struct {
	t     testing.TB
	mu    sync.Mutex
	steps []atcmdtest.Step
	i     int // index of the step being answered
	rest  []byte
	data  bool // the last answer asked for data
}

func (s *transcriptScript) DataMode() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

func (s *transcriptScript) Line(line string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.steps[s.i]
	s.data = false
	if line != st.Send {
		s.t.Errorf("step %d: modem received %q, transcript sends %q", s.i, line, st.Send)
		return nil
	}
	if st.Data == nil {
		return st.Recv
	}
	n := promptEnd(st.Recv)
	if n < 0 {
		s.t.Errorf("step %d: transcript has data but its recv has no \"> \" prompt or CONNECT", s.i)
		return st.Recv
	}
	s.rest, s.data = st.Recv[n:], true
	return st.Recv[:n]
}

// promptEnd returns the offset just after the data prompt in recv: "> " or
// a CONNECT line; -1 if there is none.
func promptEnd(recv []byte) int {
	if i := bytes.Index(recv, []byte("> ")); i >= 0 {
		return i + 2
	}
	if i := bytes.Index(recv, []byte("CONNECT")); i >= 0 {
		if j := bytes.IndexByte(recv[i:], '\n'); j >= 0 {
			return i + j + 1
		}
	}
	return -1
}

func (s *transcriptScript) Data(payload []byte, cancelled bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancelled || !bytes.Equal(payload, s.steps[s.i].Data) {
		s.t.Errorf("step %d: modem received payload %q (cancelled %v), transcript has %q", s.i, payload, cancelled, s.steps[s.i].Data)
	}
	return s.rest
}

func (s *transcriptScript) at(i int) {
	s.mu.Lock()
	s.i = i
	s.mu.Unlock()
}

// chunks counts the reads-worth of bytes the modem will send for steps.
func chunks(steps []atcmdtest.Step) int {
	n := 0
	for _, st := range steps {
		if len(st.Recv) == 0 {
			continue
		}
		n++
		if st.Data != nil && promptEnd(st.Recv) < len(st.Recv) {
			n++
		}
	}
	return n
}

type urcLog struct {
	mu   sync.Mutex
	urcs []atcmdtest.WantURC
	uns  []string
	ch   chan struct{}
}

func (l *urcLog) add(handled bool, u atcmd.URC) {
	l.mu.Lock()
	if handled {
		l.urcs = append(l.urcs, atcmdtest.WantURC{Line: u.Line, Trailing: u.Trailing})
	} else {
		l.uns = append(l.uns, u.Line)
	}
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// idleLines counts the non-empty lines in b.
func idleLines(b []byte) int {
	n := 0
	for _, l := range bytes.FieldsFunc(b, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	return n
}

// takeAny waits until n lines arrived, handled or not, and clears them.
func (l *urcLog) takeAny(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		if len(l.urcs)+len(l.uns) >= n {
			l.urcs, l.uns = nil, nil
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline.C:
			t.Fatalf("waited 5s for %d idle lines", n)
		}
	}
}

// take waits until at least n URCs and m unsolicited lines arrived and
// returns and clears them.
func (l *urcLog) take(t *testing.T, n, m int) ([]atcmdtest.WantURC, []string) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		if len(l.urcs) >= n && len(l.uns) >= m {
			u, s := l.urcs, l.uns
			l.urcs, l.uns = nil, nil
			l.mu.Unlock()
			return u, s
		}
		l.mu.Unlock()
		select {
		case <-l.ch:
		case <-deadline.C:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("waited 5s for %d URCs and %d unsolicited lines; have %q and %q", n, m, l.urcs, l.uns)
		}
	}
}

func TestTranscripts(t *testing.T) {
	all, err := atcmdtest.Transcripts()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 10 {
		t.Fatalf("found %d transcripts, want the shared set", len(all))
	}
	for _, tr := range all {
		for _, mode := range readModes {
			t.Run(tr.Name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				replay(t, tr, mode.wrap, mode.eof)
			})
		}
	}
}

func replay(t *testing.T, tr atcmdtest.Transcript, wrap func(io.Reader) io.Reader, eof bool) {
	script := &transcriptScript{t: t, steps: tr.Steps}
	opts := atcmdtest.ModemOptions{}
	if eof {
		opts.EOFAfter = chunks(tr.Steps)
	}
	m := atcmdtest.NewModem(script, opts)
	port := struct {
		io.Reader
		io.Writer
		io.Closer
	}{wrap(m), m, m}
	log := &urcLog{ch: make(chan struct{}, 1)}
	c := atcmd.New(port, atcmd.Config{Unsolicited: func(u atcmd.URC) { log.add(false, u) }})
	defer c.Close()
	for _, u := range tr.URCs {
		if _, err := c.Handle(u.Prefix, u.Trailing, func(u atcmd.URC) { log.add(true, u) }); err != nil {
			t.Fatal(err)
		}
	}

	for i, st := range tr.Steps {
		script.at(i)
		if st.Send == "" {
			m.Emit(st.Recv)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var resp atcmd.Response
			var err error
			if st.Data != nil {
				resp, err = c.SendData(ctx, st.Send, st.Data)
			} else {
				resp, err = c.Command(ctx, st.Send)
			}
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("step %d %s: no answer: %v", i, st.Send, err)
			}
			if st.HasWant {
				checkAnswer(t, i, st, resp, err)
			}
		}
		if !st.HasWant {
			if st.Send == "" {
				// Idle input without expectations (boot chatter of a profile
				// transcript): let the engine take it in before the next
				// command, or a boot marker still in flight would count as a
				// reboot during that command.
				log.takeAny(t, idleLines(st.Recv))
			}
			continue
		}
		urcs, uns := log.take(t, len(st.Want.URCs), len(st.Want.Unsolicited))
		if !slices.EqualFunc(urcs, st.Want.URCs, func(a, b atcmdtest.WantURC) bool {
			return a.Line == b.Line && slices.Equal(a.Trailing, b.Trailing)
		}) {
			t.Errorf("step %d %s: URCs %q, want %q", i, st.Send, urcs, st.Want.URCs)
		}
		if !slices.Equal(uns, st.Want.Unsolicited) {
			t.Errorf("step %d %s: unsolicited %q, want %q", i, st.Send, uns, st.Want.Unsolicited)
		}
	}
	if eof {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the port returned EOF but the session did not end")
		}
		if !errors.Is(c.Err(), io.EOF) {
			t.Errorf("Err() = %v, want io.EOF", c.Err())
		}
	}
}

func checkAnswer(t *testing.T, i int, st atcmdtest.Step, resp atcmd.Response, err error) {
	t.Helper()
	where := fmt.Sprintf("step %d %s", i, st.Send)
	if st.Want.Err == "" {
		if err != nil {
			t.Errorf("%s: unexpected error %v", where, err)
			return
		}
		if resp.Final != st.Want.Final {
			t.Errorf("%s: final %q, want %q", where, resp.Final, st.Want.Final)
		}
	} else if msg := matchErr(err, st.Want.Err); msg != "" {
		t.Errorf("%s: %s", where, msg)
	}
	if !slices.Equal(resp.Lines, st.Want.Lines) {
		t.Errorf("%s: lines %q, want %q", where, resp.Lines, st.Want.Lines)
	}
}

// matchErr checks err against a transcript's "error:" value and returns a
// complaint, or "" when it matches.
func matchErr(err error, want string) string {
	if err == nil {
		return "no error, want " + want
	}
	var op *atcmd.OpError
	if !errors.As(err, &op) {
		return fmt.Sprintf("error %T %v is not an *OpError", err, err)
	}
	kind, arg, _ := strings.Cut(want, " ")
	var cme *atcmd.CMEError
	var cms *atcmd.CMSError
	var vendor *atcmd.VendorError
	var perr atcmd.ProtocolError
	ok := false
	switch kind {
	case "ERROR":
		ok = errors.Is(err, atcmd.ErrError) && !errors.As(err, &cme) && !errors.As(err, &cms) && !errors.As(err, &vendor)
	case "cme":
		ok = errors.As(err, &cme) && strconv.Itoa(cme.Code) == arg && errors.Is(err, atcmd.ErrError)
	case "cms":
		ok = errors.As(err, &cms) && strconv.Itoa(cms.Code) == arg && errors.Is(err, atcmd.ErrError)
	case "vendor":
		ok = errors.As(err, &vendor) && vendor.Text == arg && errors.Is(err, atcmd.ErrError)
	case "call":
		sentinels := map[string]error{"NO CARRIER": atcmd.ErrNoCarrier, "BUSY": atcmd.ErrBusy,
			"NO ANSWER": atcmd.ErrNoAnswer, "NO DIALTONE": atcmd.ErrNoDialtone}
		ok = errors.Is(err, sentinels[arg]) && !errors.Is(err, atcmd.ErrError)
	case "timeout":
		ok = errors.Is(err, context.DeadlineExceeded)
	case "reset":
		ok = errors.Is(err, atcmd.ErrReset)
	case "protocol":
		ok = errors.As(err, &perr)
	default:
		return "transcript has unknown error kind " + want
	}
	if !ok {
		return fmt.Sprintf("error %v, want %s", err, want)
	}
	return ""
}

// TestIdleStreamDataErr replays the boot chatter of every transcript that
// starts with idle input through iotest.DataErrReader, which hands over the
// last bytes together with io.EOF: none of the lines may be lost.
func TestIdleStreamDataErr(t *testing.T) {
	all, err := atcmdtest.Transcripts()
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, tr := range all {
		if len(tr.Steps) == 0 || tr.Steps[0].Send != "" || !tr.Steps[0].HasWant || len(tr.Steps[0].Want.URCs) > 0 {
			continue
		}
		st := tr.Steps[0]
		ran++
		t.Run(tr.Name, func(t *testing.T) {
			port := struct {
				io.Reader
				io.Writer
			}{iotest.DataErrReader(bytes.NewReader(st.Recv)), io.Discard}
			log := &urcLog{ch: make(chan struct{}, 1)}
			c := atcmd.New(port, atcmd.Config{Unsolicited: func(u atcmd.URC) { log.add(false, u) }})
			defer c.Close()
			_, uns := log.take(t, 0, len(st.Want.Unsolicited))
			if !slices.Equal(uns, st.Want.Unsolicited) {
				t.Errorf("unsolicited %q, want %q", uns, st.Want.Unsolicited)
			}
			<-c.Done()
		})
	}
	if ran == 0 {
		t.Fatal("no transcript starts with idle input")
	}
}
