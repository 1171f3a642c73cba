package atcmd

import (
	"bytes"
	"slices"
	"testing"

	"github.com/modemguard/modemguard/atcmd/atcmdtest"
)

func transcriptSeeds(f *testing.F) [][]byte {
	all, err := atcmdtest.Transcripts()
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, tr := range all {
		for _, st := range tr.Steps {
			seeds = append(seeds, st.Recv)
		}
	}
	return seeds
}

// FuzzClassifyFinal: classification never panics, and every line called a
// final result code turns into the matching kind of error.
func FuzzClassifyFinal(f *testing.F) {
	for _, s := range []string{"OK", "ERROR", "+CME ERROR: 10", "+CME ERROR: SIM busy", "+CMS ERROR:",
		"CONNECT", "CONNECT 9600", "CONNECTED", "NO CARRIER", "BUSY", "COMMAND NOT SUPPORT", "+CIS ERROR: 1",
		"SEND OK", "0", "OKAY"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		kind := ClassifyFinal(line, DefaultVendorFinals)
		switch kind {
		case FinalOK:
			if s := string(line); s != "OK" && s != "SEND OK" {
				t.Fatalf("%q classified OK", line)
			}
		case FinalError, FinalCall:
			if err := finalError(line); err == nil {
				t.Fatalf("%q: %v final without an error", line, kind)
			}
		case FinalConnect:
			if !bytes.HasPrefix(line, []byte("CONNECT")) {
				t.Fatalf("%q classified CONNECT", line)
			}
		}
	})
}

type tok struct {
	kind tokenKind
	line string
}

func frameAll(chunks [][]byte, max int) []tok {
	var out []tok
	fr := newFramer(max, nil, func(k tokenKind, l []byte) { out = append(out, tok{k, string(l)}) })
	for _, c := range chunks {
		fr.feed(c)
	}
	return out
}

// FuzzFramer: how the bytes are split into reads never changes the lines,
// and no line holds a terminator or exceeds the limit.
func FuzzFramer(f *testing.F) {
	for _, s := range transcriptSeeds(f) {
		f.Add(s, uint8(1), uint16(64))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8, max uint16) {
		limit := int(max%512) + 1
		whole := frameAll([][]byte{data}, limit)
		n := int(step%16) + 1
		var chunks [][]byte
		for b := data; len(b) > 0; {
			k := min(n, len(b))
			chunks, b = append(chunks, b[:k]), b[k:]
		}
		if split := frameAll(chunks, limit); !slices.Equal(whole, split) {
			t.Fatalf("reads of %d bytes changed the tokens:\n%q\n%q", n, whole, split)
		}
		for _, tk := range whole {
			if len(tk.line) > limit || bytes.ContainsAny([]byte(tk.line), "\r\n\x00") {
				t.Fatalf("bad line %q (limit %d)", tk.line, limit)
			}
		}
	})
}
