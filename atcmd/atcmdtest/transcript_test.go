package atcmdtest

import (
	"bytes"
	"testing"
)

func TestTranscriptsParse(t *testing.T) {
	all, err := Transcripts()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range all {
		if len(tr.Steps) == 0 {
			t.Errorf("%s: no steps", tr.Name)
		}
	}
}

func TestParseTranscriptErrors(t *testing.T) {
	for name, src := range map[string]string{
		"bad escape":     "-- send --\nAT\n-- recv --\n\\q\n",
		"unknown":        "-- sned --\nAT\n",
		"data first":     "-- data --\nx\n",
		"bad seed":       "seed: x\n-- send --\nAT\n",
		"want key":       "-- send --\nAT\n-- recv --\n\\r\\nOK\\r\\n\n-- want --\nfinale: OK\n",
		"trailing first": "-- send --\nAT\n-- recv --\nOK\n-- want --\ntrailing: x\n",
	} {
		if _, err := ParseTranscript("t", []byte(src)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func FuzzEscapeRoundTrip(f *testing.F) {
	f.Add([]byte("\r\nOK\r\n"))
	f.Add([]byte{0, 0xff, '\\', 'x', '\t'})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Unescape(Escape(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", b, got, err)
		}
	})
}

func FuzzParseTranscript(f *testing.F) {
	f.Add([]byte("profile: x\nurc: +CMT: 1\n-- send --\nAT\n-- data --\nab\n-- recv --\n\\r\\n> \\r\\nOK\\r\\n\n-- want --\nfinal: OK\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseTranscript("fuzz", b)
		_, _ = Unescape(string(b))
	})
}
