// Package yamlconf reads the strict YAML configuration files of the agent
// and the collector: unknown keys and wrong types are refused, and every
// problem names the file and line, so a typo never becomes a silent
// default.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a problem in a configuration file, at a line when known.
type Error struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Duration is a time.Duration written as "5m", "90s" or "1h".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string; negative ones are refused.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (write it like 5m, 90s or 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// File is a decoded configuration file, kept to locate keys for messages.
type File struct {
	Name string
	root yaml.Node
}

// Decode parses data (the file called name) strictly into v. An empty file
// decodes to v's zero value. sections names the Go struct types in v for
// messages ("MQTTConfig" → "mqtt"); doc is the document to check key
// spelling against. All problems are returned, joined.
func Decode(name string, data []byte, v any, sections map[string]string, doc string) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var errs []error
			for _, e := range te.Errors {
				errs = append(errs, lineError(name, e, sections, doc))
			}
			return nil, errors.Join(errs...)
		}
		return nil, lineError(name, err.Error(), sections, doc)
	}
	f := &File{Name: name}
	_ = yaml.Unmarshal(data, &f.root)
	return f, nil
}

var (
	lineRe       = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownKeyRe = regexp.MustCompile(`^field (\S+) not found in type (.*)$`)
	typeNameRe   = regexp.MustCompile(`(\w+)$`)
)

func lineError(name, msg string, sections map[string]string, doc string) error {
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: name, Msg: msg}
	}
	var line int
	fmt.Sscan(m[1], &line)
	msg = m[2]
	if k := unknownKeyRe.FindStringSubmatch(msg); k != nil {
		where := "its section" // an anonymous struct type says nothing useful
		if t := typeNameRe.FindString(k[2]); t != "" && sections[t] != "" {
			where = sections[t]
		}
		msg = fmt.Sprintf("unknown key %q in %s (check the spelling against %s)", k[1], where, doc)
	}
	return &Error{File: name, Line: line, Msg: msg}
}

// Errorf returns an Error at the line of the first key called key.
func (f *File) Errorf(key, format string, a ...any) error {
	return &Error{File: f.Name, Line: KeyLine(&f.root, key), Msg: key + ": " + fmt.Sprintf(format, a...)}
}

// KeyLine finds the line of the first mapping key called key; 0 if absent.
func KeyLine(n *yaml.Node, key string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := KeyLine(c, key); l > 0 {
			return l
		}
	}
	return 0
}
