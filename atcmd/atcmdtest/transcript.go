// Package atcmdtest holds test helpers for AT conversations: the shared set
// of AT transcripts that drives both the atcmd parser tests and the
// simulator tests, and scripted fake modems that answer from a transcript or
// a function, with the hostile read patterns real ports produce.
//
// # Transcript format
//
// A transcript is a txtar archive (golang.org/x/tools/txtar) in
// testdata/transcripts. Its comment is free text plus optional "key: value"
// lines:
//
//	profile: quectel-ec25   the simulator profile that produces this modem side
//	seed: 1                 the simulator seed (default 1)
//	urc: +CMTI:             register a URC handler for this prefix in parser tests
//	urc: +CMT: 1            ... with 1 trailing line
//
// The files are steps, in order. "send" starts a step: the command line the
// host writes, without terminator. "data" is the payload the host writes
// after the "> " prompt (Ctrl-Z is added). "recv" is exactly what the modem
// sends during the step; a "recv" that does not follow a "send" or "data" of
// its own step is an idle step (boot chatter, URCs). "want" is what the
// parser must make of the step:
//
//	line: <text>            an information line, in order
//	final: <text>           the final result code on success (OK, CONNECT 1000)
//	error: <kind>           ERROR | cme <n> | cms <n> | vendor <text> | call <text> |
//	                        timeout | reset | protocol
//	urc: <line>             delivered to a registered handler
//	trailing: <line>        a trailing line of the urc above
//	unsolicited: <line>     delivered to the catch-all handler
//
// In "recv" and "data" real line breaks are ignored and bytes are written
// as escapes: \r \n \t \\ \xHH. So "\r\nOK\r\n" stays visible in review and
// no editor can strip a CR. The values of "want" lines use the same escapes.
package atcmdtest

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/tools/txtar"
)

//go:embed testdata/transcripts
var transcriptFS embed.FS

// Transcript is one parsed transcript file.
type Transcript struct {
	Name    string // file name without .txtar
	Profile string // simulator profile, if any
	Seed    int64  // simulator seed (default 1)
	URCs    []URCSpec
	Steps   []Step
}

// URCSpec is a handler the parser tests register.
type URCSpec struct {
	Prefix   string
	Trailing int
}

// Step is one exchange: a command and its answer, or idle input.
type Step struct {
	Send string // command line; empty for an idle step
	Data []byte // payload after the prompt, or nil
	Recv []byte // the modem's bytes
	Want Want
	// HasWant is false when the transcript states no expectation.
	HasWant bool
}

// Want is the expected parser outcome of a step.
type Want struct {
	Lines       []string
	Final       string
	Err         string // "", "ERROR", "cme 10", "timeout", ...
	URCs        []WantURC
	Unsolicited []string
}

// WantURC is a URC a handler must receive.
type WantURC struct {
	Line     string
	Trailing []string
}

// Transcripts returns every embedded transcript, sorted by name.
func Transcripts() ([]Transcript, error) {
	var out []Transcript
	err := fs.WalkDir(transcriptFS, "testdata/transcripts", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".txtar" {
			return err
		}
		b, err := transcriptFS.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := ParseTranscript(strings.TrimSuffix(path.Base(p), ".txtar"), b)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// ParseTranscript parses one transcript; name is used in error messages.
func ParseTranscript(name string, data []byte) (Transcript, error) {
	ar := txtar.Parse(data)
	t := Transcript{Name: name, Seed: 1}
	for i, l := range strings.Split(string(ar.Comment), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "profile":
			t.Profile = v
		case "seed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return t, fmt.Errorf("%s.txtar:%d: seed %q is not an integer", name, i+1, v)
			}
			t.Seed = n
		case "urc":
			spec := URCSpec{Prefix: v}
			// "+CMT: 1": a prefix ending in ':' followed by a trailing count.
			if j := strings.LastIndex(v, ": "); j >= 0 {
				if n, err := strconv.Atoi(v[j+2:]); err == nil {
					spec = URCSpec{Prefix: v[:j+1], Trailing: n}
				}
			}
			t.URCs = append(t.URCs, spec)
		}
	}
	var cur *Step
	newStep := func() {
		t.Steps = append(t.Steps, Step{})
		cur = &t.Steps[len(t.Steps)-1]
	}
	for _, f := range ar.Files {
		where := fmt.Sprintf("%s.txtar: section %q (step %d)", name, f.Name, len(t.Steps))
		switch f.Name {
		case "send":
			newStep()
			cur.Send = strings.TrimSpace(string(f.Data))
			if cur.Send == "" {
				return t, fmt.Errorf("%s: empty command line", where)
			}
		case "data":
			if cur == nil || cur.Send == "" || cur.Recv != nil {
				return t, fmt.Errorf("%s: data must follow a send", where)
			}
			b, err := Unescape(string(f.Data))
			if err != nil {
				return t, fmt.Errorf("%s: %v", where, err)
			}
			cur.Data = b
		case "recv":
			if cur == nil || cur.Recv != nil || cur.HasWant {
				newStep()
			}
			b, err := Unescape(string(f.Data))
			if err != nil {
				return t, fmt.Errorf("%s: %v", where, err)
			}
			cur.Recv = b
		case "want":
			if cur == nil || cur.HasWant {
				return t, fmt.Errorf("%s: want without a step", where)
			}
			w, err := parseWant(string(f.Data))
			if err != nil {
				return t, fmt.Errorf("%s: %v", where, err)
			}
			cur.Want, cur.HasWant = w, true
		default:
			return t, fmt.Errorf("%s: unknown section (want send, data, recv or want)", where)
		}
	}
	return t, nil
}

func parseWant(s string) (Want, error) {
	var w Want
	for i, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			k, v, ok = strings.Cut(l, ":")
		}
		if !ok {
			return w, fmt.Errorf("want line %d %q: expected key: value", i+1, l)
		}
		b, err := Unescape(v)
		if err != nil {
			return w, fmt.Errorf("want line %d: %v", i+1, err)
		}
		v = string(b)
		switch k {
		case "line":
			w.Lines = append(w.Lines, v)
		case "final":
			w.Final = v
		case "error":
			w.Err = v
		case "urc":
			w.URCs = append(w.URCs, WantURC{Line: v})
		case "trailing":
			if len(w.URCs) == 0 {
				return w, fmt.Errorf("want line %d: trailing before any urc", i+1)
			}
			u := &w.URCs[len(w.URCs)-1]
			u.Trailing = append(u.Trailing, v)
		case "unsolicited":
			w.Unsolicited = append(w.Unsolicited, v)
		default:
			return w, fmt.Errorf("want line %d: unknown key %q", i+1, k)
		}
	}
	return w, nil
}

// Unescape decodes the escaped byte notation of "recv" and "data"
// sections: line breaks in s are ignored; \r \n \t \\ and \xHH are escapes.
func Unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\n':
			continue
		case '\\':
		default:
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("offset %d: backslash at end", i)
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("offset %d: \\x needs two hex digits", i-1)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("offset %d: bad \\x escape %q", i-1, s[i-1:i+3])
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("offset %d: unknown escape \\%c (use \\r \\n \\t \\\\ \\xHH)", i-1, s[i])
		}
	}
	return out, nil
}

// Escape is the inverse of Unescape, breaking the output after every "\n"
// so transcripts read line by line.
func Escape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\n':
			sb.WriteString("\\n\n")
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\\':
			sb.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
