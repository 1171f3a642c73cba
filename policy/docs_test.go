package policy

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsExample extracts the first ```yaml block of docs/policy.md and
// checks it parses and means the same as the issue's example.
func TestDocsExample(t *testing.T) {
	md, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "```yaml\n")
	if !ok {
		t.Fatal("docs/policy.md has no ```yaml block")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated ```yaml block")
	}
	doc, err := Parse("docs/policy.md", []byte(block))
	if err != nil {
		t.Fatalf("the documented example does not parse:\n%v", err)
	}
	issue, err := Load("testdata/issue5.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(doc), normalize(issue)) {
		t.Errorf("the documented example means something else than the issue's:\n%+v\n%+v", doc, issue)
	}
}

// normalize clears what differs between equal policies in different files.
func normalize(p *Policy) *Policy {
	q := *p
	q.Name, q.Hash = "", ""
	q.Modules.Rules = append([]Rule(nil), p.Modules.Rules...)
	for i := range q.Modules.Rules {
		q.Modules.Rules[i].Line = 0
	}
	clear := func(ds []Destination) []Destination {
		out := append([]Destination(nil), ds...)
		for i := range out {
			out[i].Line = 0
		}
		return out
	}
	q.ModuleStack.Allow = clear(p.ModuleStack.Allow)
	if p.Egress != nil {
		e := *p.Egress
		e.Allow = clear(e.Allow)
		q.Egress = &e
	}
	return &q
}
