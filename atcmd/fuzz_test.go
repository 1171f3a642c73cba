package atcmd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

// FuzzCommandAnswer feeds arbitrary modem output as the answer to a
// command, then ends the stream: the command must return — with an answer,
// a device error or ErrClosed — never panic or hang, and no line it returns
// may hold a terminator or exceed the limit.
func FuzzCommandAnswer(f *testing.F) {
	all, err := atcmdtest.Transcripts()
	if err != nil {
		f.Fatal(err)
	}
	for _, tr := range all {
		for _, st := range tr.Steps {
			if st.Send != "" {
				f.Add(st.Send, st.Recv)
			}
		}
	}
	f.Fuzz(func(t *testing.T, cmd string, answer []byte) {
		if !strings.HasPrefix(cmd, "AT") || strings.ContainsAny(cmd, "\r\n") || len(cmd) > 256 {
			cmd = "AT+CGMI"
		}
		m := atcmdtest.NewModem(atcmdtest.ScriptFunc(func(string) []byte { return answer }), atcmdtest.ModemOptions{EOFAfter: 1})
		if len(answer) == 0 {
			m.Close()
		}
		c := atcmd.New(m, atcmd.Config{MaxLineLen: 128})
		defer c.Close()
		if _, err := c.Handle("+CMTI:", 0, func(atcmd.URC) {}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Command(ctx, cmd)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung on %q", answer)
		}
		for _, l := range resp.Lines {
			if len(l) > 128 || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("bad line %q", l)
			}
		}
	})
}
