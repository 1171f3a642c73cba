package yamlconf

import (
	"strings"
	"testing"
	"time"
)

type inner struct {
	Every Duration `yaml:"every"`
}

type outer struct {
	Name  string `yaml:"name"`
	Inner inner  `yaml:"inner"`
	N     int    `yaml:"n"`
}

func TestDecode(t *testing.T) {
	var o outer
	f, err := Decode("c.yaml", []byte("name: x\ninner:\n  every: 90s\n"), &o, nil, "docs/x.md")
	if err != nil || o.Name != "x" || time.Duration(o.Inner.Every) != 90*time.Second {
		t.Fatalf("%+v %v", o, err)
	}
	if err := f.Errorf("every", "too %s", "short"); err.Error() != "c.yaml:3: every: too short" {
		t.Errorf("Errorf = %q", err)
	}
	var empty outer
	if _, err := Decode("e.yaml", nil, &empty, nil, "d"); err != nil {
		t.Errorf("empty file: %v", err)
	}
	for src, want := range map[string]string{
		"name: x\ninner:\n  evry: 1s\n": `c.yaml:3: unknown key "evry" in inner (check the spelling against docs/x.md)`,
		"n: many\n":                     "c.yaml:1: cannot unmarshal",
		"inner:\n  every: -5s\n":        `c.yaml:2: "-5s" is not a duration`,
		"name: [\n":                     "c.yaml:",
	} {
		var o outer
		_, err := Decode("c.yaml", []byte(src), &o, map[string]string{"inner": "inner"}, "docs/x.md")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", src, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: x\ninner:\n  every: 90s\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o outer
		_, _ = Decode("fuzz.yaml", b, &o, nil, "d")
	})
}
