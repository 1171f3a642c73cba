package atcmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines answers command lines from a table; it ignores unknown commands,
// as a deaf or busy module does.
func lines(table map[string]string) atcmdtest.ScriptFunc {
	return func(line string) []byte {
		if a, ok := table[line]; ok {
			return []byte(a)
		}
		return nil
	}
}

func newConn(t *testing.T, script atcmdtest.Script, cfg atcmd.Config) (*atcmd.Conn, *atcmdtest.Modem) {
	t.Helper()
	m := atcmdtest.NewModem(script, atcmdtest.ModemOptions{})
	c := atcmd.New(m, cfg)
	t.Cleanup(func() { c.Close() })
	return c, m
}

func TestTimeoutDefaultsByClass(t *testing.T) {
	for cmd, want := range map[string]time.Duration{
		"AT+CGSN":           5 * time.Second,
		"AT+COPS=?":         180 * time.Second,
		"AT+COPS=1,2,\"x\"": 180 * time.Second,
		"AT+COPS?":          5 * time.Second,
		"AT+CSQ;+COPS=?":    180 * time.Second,
		"AT+CFUN=1":         15 * time.Second,
		"ATD*99#":           60 * time.Second,
		"AT+cgact=1,1":      150 * time.Second,
		"AT":                5 * time.Second,
	} {
		if got := atcmd.DefaultTimeout(cmd); got != want {
			t.Errorf("DefaultTimeout(%q) = %v, want %v", cmd, got, want)
		}
	}
}

// TestCommandTimeout runs in a synctest bubble: the 5 s and 180 s timeouts
// pass on the fake clock in no real time.
func TestCommandTimeout(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want time.Duration
	}{{"AT+CGSN", 5 * time.Second}, {"AT+COPS=?", 180 * time.Second}} {
		t.Run(tc.cmd, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := newConn(t, silent, atcmd.Config{})
				start := time.Now()
				_, err := c.Command(context.Background(), tc.cmd)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want DeadlineExceeded", err)
				}
				var op *atcmd.OpError
				if !errors.As(err, &op) || op.Cmd != tc.cmd {
					t.Fatalf("err = %#v, want an *OpError for %s", err, tc.cmd)
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("gave up after %v, want %v", got, tc.want)
				}
				if got := c.Stats().Timeouts; got != 1 {
					t.Errorf("Stats().Timeouts = %d", got)
				}
			})
		})
	}
}

// silent is a modem that never answers.
var silent = atcmdtest.ScriptFunc(func(string) []byte { return nil })

// TestLateAnswerNeverBecomesNextAnswer abandons a command and lets its
// answer arrive late — while idle, or racing the resync probe. The next
// command must get its own answer every time.
func TestLateAnswerNeverBecomesNextAnswer(t *testing.T) {
	const late = "\r\n867962040123452\r\n\r\nOK\r\n"
	for _, tc := range []struct {
		name     string
		idleLate bool // late answer arrives while idle
		probe    string
	}{
		{name: "late-while-idle", idleLate: true, probe: "\r\nOK\r\n"},
		{name: "late-racing-probe", probe: late + "\r\nOK\r\n"},
		{name: "late-error-racing-probe", probe: "\r\n+CME ERROR: 14\r\n\r\nOK\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, m := newConn(t, lines(map[string]string{
					"AT":      tc.probe,
					"AT+CGMI": "\r\nQuectel\r\n\r\nOK\r\n",
				}), atcmd.Config{})
				ctx := context.Background()
				if _, err := c.Command(ctx, "AT+CGSN", atcmd.WithTimeout(2*time.Second)); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("AT+CGSN: err = %v, want a timeout", err)
				}
				if tc.idleLate {
					m.Emit([]byte(late))
					synctest.Wait()
				}
				resp, err := c.Command(ctx, "AT+CGMI")
				if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "Quectel" {
					t.Fatalf("AT+CGMI = %q, %v; want its own answer", resp.Lines, err)
				}
				if c.Stats().LateLines == 0 {
					t.Error("no late line was counted")
				}
			})
		})
	}
}

// TestContextCancelUnblocks: a port nobody reads blocks Write forever; the
// caller's context must still free it, and Close must end the goroutines.
func TestContextCancelUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host, dev := net.Pipe()
		defer dev.Close()
		c := atcmd.New(host, atcmd.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Command(ctx, "AT+CGSN", atcmd.WithTimeout(time.Hour))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("returned after %v, want 1s", got)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Command(context.Background(), "AT"); !errors.Is(err, atcmd.ErrClosed) {
			t.Errorf("after Close: %v, want ErrClosed", err)
		}
	})
}

func TestSyncDeafModule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var attempts []error
		script := atcmdtest.ScriptFunc(func(line string) []byte {
			if time.Since(start) < 3500*time.Millisecond {
				return nil // deaf while booting
			}
			switch line {
			case "AT", "ATE0", "ATQ0V1":
				return []byte(line + "\r\r\nOK\r\n")
			case "ATV1", "AT+CMEE=1":
				return []byte("\r\nOK\r\n")
			}
			return []byte("\r\nERROR\r\n")
		})
		c, m := newConn(t, script, atcmd.Config{OnSyncAttempt: func(n int, err error) { attempts = append(attempts, err) }})
		if err := c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(attempts) != 5 || attempts[4] != nil || attempts[0] == nil {
			t.Errorf("attempts = %v, want 4 failures then success", attempts)
		}
		got := m.Received()
		want := []string{"AT", "AT", "ATQ0V1", "AT", "AT", "ATE0", "ATV1", "AT+CMEE=1"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("sent %q, want %q", got, want)
		}
	})
}

func TestSyncNumericResults(t *testing.T) {
	// A module left in ATV0 answers "0<CR>" for OK (V.250 §5.7.1).
	synctest.Test(t, func(t *testing.T) {
		c, _ := newConn(t, lines(map[string]string{
			"AT":        "0\r",
			"ATE0":      "ATE0\r0\r",
			"ATV1":      "\r\nOK\r\n",
			"AT+CMEE=1": "\r\nOK\r\n",
		}), atcmd.Config{})
		if err := c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSyncToleratesCMEERejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := newConn(t, lines(map[string]string{
			"AT": "\r\nOK\r\n", "ATE0": "\r\nOK\r\n", "ATV1": "\r\nOK\r\n",
		}), atcmd.Config{ErrorMode: atcmd.ErrorsVerbose})
		if err := c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := m.Received(); r[len(r)-1] != "AT+CMEE=2" {
			t.Errorf("last command %q, want AT+CMEE=2", r[len(r)-1])
		}
	})
}

func TestSyncNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newConn(t, silent, atcmd.Config{})
		start := time.Now()
		err := c.Sync(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer after 30 attempts") {
			t.Fatalf("err = %v", err)
		}
		if got := time.Since(start); got != 30*time.Second {
			t.Errorf("gave up after %v, want 30s", got)
		}
	})
}

func TestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := newConn(t, lines(map[string]string{
			"ATZ": "\r\nOK\r\n", "AT": "AT\r\r\nOK\r\n", "ATE0": "ATE0\r\r\nOK\r\n",
			"ATV1": "\r\nOK\r\n", "AT+CMEE=1": "\r\nOK\r\n",
		}), atcmd.Config{})
		if err := c.Reset(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(m.Received(), " "); got != "ATZ AT ATE0 ATV1 AT+CMEE=1" {
			t.Errorf("sent %s", got)
		}
	})
}

func TestOverlongLineAndGarbage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := newConn(t, lines(map[string]string{
			"ATI":     "\r\n" + strings.Repeat("A", 1000) + "\r\n\r\nOK\r\n",
			"AT":      "\r\nOK\r\n",
			"AT+CGMI": "\r\nQuectel\r\n\r\nOK\r\n",
		}), atcmd.Config{MaxLineLen: 64})
		ctx := context.Background()
		_, err := c.Command(ctx, "ATI")
		var perr atcmd.ProtocolError
		if !errors.As(err, &perr) {
			t.Fatalf("ATI: err = %v, want a ProtocolError", err)
		}
		// A flood of garbage with no line terminator, then binary noise.
		flood := bytes.Repeat([]byte("x"), 1<<20)
		m.Emit(flood)
		m.Emit([]byte{0xff, 0xfe, 0x00, '\r', '\n'})
		synctest.Wait()
		resp, err := c.Command(ctx, "AT+CGMI")
		if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "Quectel" {
			t.Fatalf("AT+CGMI after garbage = %q, %v", resp.Lines, err)
		}
		if got := c.Stats().ProtocolErrors; got < 2 {
			t.Errorf("ProtocolErrors = %d, want at least 2", got)
		}
	})
}

func TestPortVanishes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, m := newConn(t, silent, atcmd.Config{})
		go func() {
			synctest.Wait() // the command is written and waiting
			m.Close()
		}()
		_, err := c.Command(context.Background(), "AT+CGSN")
		if !errors.Is(err, atcmd.ErrClosed) || !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("err = %v, want ErrClosed wrapping the read error", err)
		}
		<-c.Done()
		if !errors.Is(c.Err(), io.ErrClosedPipe) {
			t.Errorf("Err() = %v", c.Err())
		}
		if _, err := c.Command(context.Background(), "AT"); !errors.Is(err, atcmd.ErrClosed) {
			t.Errorf("next command: %v, want ErrClosed", err)
		}
	})
}

// TestConcurrentCommands: commands from many goroutines are serialised and
// each gets its own answer, with URCs arriving in the middle of answers.
func TestConcurrentCommands(t *testing.T) {
	var n atomic.Int64
	script := atcmdtest.ScriptFunc(func(line string) []byte {
		id, ok := strings.CutPrefix(line, "AT+XID=")
		if !ok {
			return []byte("\r\nERROR\r\n")
		}
		return fmt.Appendf(nil, "\r\n+XID: %s\r\n\r\n+CMTI: \"SM\",%d\r\n\r\nOK\r\n", id, n.Add(1))
	})
	var urcs atomic.Int64
	c, _ := newConn(t, script, atcmd.Config{})
	if _, err := c.Handle("+CMTI:", 0, func(atcmd.URC) { urcs.Add(1) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("%d-%d", g, i)
				resp, err := c.Command(context.Background(), "AT+XID="+id)
				if err != nil || len(resp.Lines) != 1 || resp.Lines[0] != "+XID: "+id {
					t.Errorf("AT+XID=%s = %q, %v", id, resp.Lines, err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for urcs.Load() != 400 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if got := urcs.Load(); got != 400 {
		t.Errorf("%d URCs delivered, want 400; stats %+v", got, c.Stats())
	}
}

func TestHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []string
		var mu sync.Mutex
		c, m := newConn(t, silent, atcmd.Config{Unsolicited: func(u atcmd.URC) {
			mu.Lock()
			got = append(got, "other "+u.Line)
			mu.Unlock()
		}})
		record := func(tag string) func(atcmd.URC) {
			return func(u atcmd.URC) {
				mu.Lock()
				got = append(got, tag+" "+u.Line)
				mu.Unlock()
			}
		}
		if _, err := c.Handle("+CGEV:", 0, record("cgev")); err != nil {
			t.Fatal(err)
		}
		remove, err := c.Handle("+CGEV: ME", 0, record("me"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Handle("+CGEV:", 0, record("dup")); !errors.Is(err, atcmd.ErrHandlerExists) {
			t.Errorf("duplicate Handle: %v, want ErrHandlerExists", err)
		}
		if _, err := c.Handle("", 0, record("x")); err == nil {
			t.Error("Handle accepted an empty prefix")
		}
		m.Emit([]byte("\r\n+CGEV: ME PDN ACT 1\r\n\r\n+CGEV: NW DETACH\r\n"))
		synctest.Wait()
		remove()
		m.Emit([]byte("\r\n+CGEV: ME PDN DEACT 1\r\n\r\nHELLO\r\n"))
		synctest.Wait()
		want := "me +CGEV: ME PDN ACT 1|cgev +CGEV: NW DETACH|cgev +CGEV: ME PDN DEACT 1|other HELLO"
		if s := strings.Join(got, "|"); s != want {
			t.Errorf("delivered %s\nwant      %s", s, want)
		}
	})
}

func TestURCQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var delivered []string
		c, m := newConn(t, silent, atcmd.Config{URCQueue: 4})
		if _, err := c.Handle("+CMTI:", 0, func(u atcmd.URC) {
			<-release
			delivered = append(delivered, u.Line)
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			m.Emit(fmt.Appendf(nil, "\r\n+CMTI: \"SM\",%d\r\n", i))
		}
		// The stuck handler holds the queue full for longer than the reader
		// waits for room (fake time in the bubble).
		time.Sleep(5 * time.Second)
		close(release)
		synctest.Wait()
		st := c.Stats()
		if st.URCDropped == 0 || int(st.URCs)+int(st.URCDropped) != 20 {
			t.Errorf("stats %+v: want drops counted", st)
		}
		for i := 1; i < len(delivered); i++ {
			if delivered[i] <= delivered[i-1] && len(delivered[i]) == len(delivered[i-1]) {
				t.Errorf("out of order: %q", delivered)
			}
		}
	})
}

func TestSendDataAbandonedSendsESC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var raw bytes.Buffer
		m := atcmdtest.NewModem(lines(map[string]string{"AT": "\r\nOK\r\n", "AT+CGMI": "\r\nQuectel\r\n\r\nOK\r\n"}), atcmdtest.ModemOptions{})
		port := struct {
			io.Reader
			io.Writer
			io.Closer
		}{m, writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			raw.Write(p)
			mu.Unlock()
			return m.Write(p)
		}), m}
		c := atcmd.New(port, atcmd.Config{})
		defer c.Close()
		// The module never prompts (AT+CMGS unknown: it stays silent here).
		_, err := c.SendData(context.Background(), "AT+CMGS=5", []byte("hello"), atcmd.WithTimeout(time.Second))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		resp, err := c.Command(context.Background(), "AT+CGMI")
		if err != nil || resp.Lines[0] != "Quectel" {
			t.Fatalf("AT+CGMI = %v, %v", resp, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !bytes.Contains(raw.Bytes(), []byte("\x1b")) {
			t.Errorf("no ESC was sent: %q", raw.Bytes())
		}
		if bytes.Contains(raw.Bytes(), []byte("hello")) {
			t.Errorf("payload was sent without a prompt: %q", raw.Bytes())
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestInvalidCommandLines(t *testing.T) {
	c, _ := newConn(t, silent, atcmd.Config{})
	for _, bad := range []string{"", "CGMI", "AT+CGMI\r", "AT\nAT", strings.Repeat("AT", 4000)} {
		_, err := c.Command(context.Background(), bad)
		var perr atcmd.ProtocolError
		if !errors.As(err, &perr) {
			t.Errorf("Command(%.20q) = %v, want a ProtocolError", bad, err)
		}
	}
}

func TestTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		m := atcmdtest.NewModem(lines(map[string]string{"AT+CGMI": "\r\nQuectel\r\n\r\nOK\r\n"}), atcmdtest.ModemOptions{})
		var mu sync.Mutex
		tr := atcmd.NewTrace(m, writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return log.Write(p)
		}))
		c := atcmd.New(tr, atcmd.Config{})
		if _, err := c.Command(context.Background(), "AT+CGMI"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		mu.Lock()
		defer mu.Unlock()
		out := log.String()
		for _, want := range []string{` w "AT+CGMI\r"` + "\n", ` r "\r\nQuectel\r\n\r\nOK\r\n"` + "\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("trace lacks %q:\n%s", want, out)
			}
		}
		// Timestamps come from the clock: the bubble starts at midnight UTC 2000.
		if !strings.HasPrefix(out, time.Now().Format("15:04:05")) {
			t.Errorf("trace does not start with a timestamp:\n%s", out)
		}
	})
}

// TestSyncSilencedModule: a module left in ATQ1 answers nothing until a
// probe restores result codes.
func TestSyncSilencedModule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quiet := true
		c, _ := newConn(t, atcmdtest.ScriptFunc(func(line string) []byte {
			if line == "ATQ0V1" {
				quiet = false
			}
			if quiet {
				return nil
			}
			return []byte("\r\nOK\r\n")
		}), atcmd.Config{})
		if err := c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
