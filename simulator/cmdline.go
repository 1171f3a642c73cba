package simulator

import (
	"errors"
	"fmt"
	"strings"
)

// Op is the form of an AT command (ITU-T V.250 §5.4).
type Op uint8

const (
	OpAction Op = iota // AT+CGMI, ATI, ATE0
	OpRead             // AT+CREG?
	OpTest             // AT+COPS=?
	OpSet              // AT+CMEE=1
)

// Command is one command of a command line.
type Command struct {
	Name string // upper case: "E", "I", "&F", "S3", "D", "+CGMI", "^ICCID", "#SWPKGV"
	Op   Op
	Num  string // basic commands: the decimal parameter ("0" in E0); "" if none
	Args string // OpSet: text after '=' as typed (quotes kept); "D": the dial string
}

// Key is the command's lookup key, the form used in profile "commands".
func (c Command) Key() string {
	switch {
	case c.Name == "D":
		return "D" + c.Args
	case c.Name[0] == 'S' && len(c.Name) > 1 && c.Name[1] >= '0' && c.Name[1] <= '9':
		switch c.Op {
		case OpRead:
			return c.Name + "?"
		case OpSet:
			return c.Name + "=" + c.Args
		}
		return c.Name
	case isExtPrefix(c.Name[0]):
		switch c.Op {
		case OpRead:
			return c.Name + "?"
		case OpTest:
			return c.Name + "=?"
		case OpSet:
			return c.Name + "=" + upperOutsideQuotes(c.Args)
		}
		return c.Name
	}
	if c.Num == "0" && (c.Name == "I" || c.Name == "Z" || c.Name == "&F") {
		return c.Name
	}
	return c.Name + c.Num
}

func isExtPrefix(b byte) bool { return strings.IndexByte("+#^$%!*", b) >= 0 }

func isAlpha(b byte) bool { return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') }
func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func upper(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - 32
	}
	return b
}

// ErrSyntax is wrapped by ParseCommandLine errors.
var ErrSyntax = errors.New("simulator: command line syntax error")

// ParseCommandLine splits the body of a command line — the text after "AT",
// without the terminating CR — into commands, following ITU-T V.250 §5.2–5.4:
// basic commands (a letter or '&' + letter, with an optional number) may be
// concatenated without separator; extended commands (+, #, ^, $, %, !, *
// prefixes) are separated by ';'; "D" takes the rest of the line; spaces
// outside quotes are ignored.
func ParseCommandLine(body string) ([]Command, error) {
	var out []Command
	i := 0
	n := len(body)
	for i < n {
		c := body[i]
		switch {
		case c == ' ' || c == ';':
			i++
		case isExtPrefix(c):
			j := i + 1
			for j < n && (isAlpha(body[j]) || isDigit(body[j]) || body[j] == '_' || body[j] == '.') {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("%w: empty command name after %q at %d", ErrSyntax, c, i)
			}
			cmd := Command{Name: strings.ToUpper(body[i:j])}
			for j < n && body[j] == ' ' {
				j++
			}
			switch {
			case j < n && body[j] == '?':
				cmd.Op = OpRead
				j++
			case j+1 < n && body[j] == '=' && body[j+1] == '?':
				cmd.Op = OpTest
				j += 2
			case j < n && body[j] == '=':
				cmd.Op = OpSet
				j++
				k, err := scanArgs(body, j)
				if err != nil {
					return nil, err
				}
				cmd.Args = strings.TrimSpace(body[j:k])
				j = k
			}
			for j < n && body[j] == ' ' {
				j++
			}
			if j < n && body[j] != ';' {
				return nil, fmt.Errorf("%w: unexpected %q after %s at %d", ErrSyntax, body[j], cmd.Name, j)
			}
			out = append(out, cmd)
			i = j
		case isAlpha(c) || c == '&':
			j := i
			name := ""
			if c == '&' {
				if i+1 >= n || !isAlpha(body[i+1]) {
					return nil, fmt.Errorf("%w: '&' must be followed by a letter at %d", ErrSyntax, i)
				}
				name = "&" + string(upper(body[i+1]))
				j = i + 2
			} else {
				name = string(upper(c))
				j = i + 1
			}
			if name == "D" {
				out = append(out, Command{Name: "D", Args: strings.TrimSpace(body[j:])})
				return out, nil
			}
			if name == "S" {
				k := j
				for k < n && isDigit(body[k]) {
					k++
				}
				if k == j {
					return nil, fmt.Errorf("%w: S must be followed by a register number at %d", ErrSyntax, i)
				}
				cmd := Command{Name: "S" + body[j:k]}
				switch {
				case k < n && body[k] == '?':
					cmd.Op = OpRead
					k++
				case k < n && body[k] == '=':
					cmd.Op = OpSet
					m := k + 1
					for m < n && isDigit(body[m]) {
						m++
					}
					cmd.Args = body[k+1 : m]
					k = m
				}
				out = append(out, cmd)
				i = k
				continue
			}
			k := j
			for k < n && isDigit(body[k]) {
				k++
			}
			out = append(out, Command{Name: name, Num: body[j:k]})
			i = k
		default:
			return nil, fmt.Errorf("%w: unexpected %q at %d", ErrSyntax, c, i)
		}
	}
	return out, nil
}

// scanArgs returns the end of an argument list starting at j: the next ';'
// outside double quotes, or the end of the line.
func scanArgs(s string, j int) (int, error) {
	inq := false
	for ; j < len(s); j++ {
		switch s[j] {
		case '"':
			inq = !inq
		case ';':
			if !inq {
				return j, nil
			}
		}
	}
	if inq {
		return 0, fmt.Errorf("%w: unterminated quoted string", ErrSyntax)
	}
	return j, nil
}

// splitArgs splits a set-command argument list on commas outside quotes and
// strips the quotes of each element. quoted reports which were quoted.
func splitArgs(s string) (args []string, quoted []bool) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var cur strings.Builder
	inq, wasq := false, false
	flush := func() {
		v := cur.String()
		if !wasq {
			v = strings.TrimSpace(v)
		}
		args = append(args, v)
		quoted = append(quoted, wasq)
		cur.Reset()
		wasq = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inq = !inq
			wasq = true
		case c == ',' && !inq:
			flush()
		case !inq && c == ' ' && !wasq:
			if cur.Len() > 0 {
				cur.WriteByte(c)
			}
		default:
			if !inq && wasq {
				continue // text after a closing quote is ignored
			}
			cur.WriteByte(c)
		}
	}
	flush()
	return args, quoted
}
