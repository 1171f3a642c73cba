package policy

// The AT command-line lexer of the firewall. It follows ITU-T V.250
// (07/2003) §5.2–5.4 as a module does, so that what the firewall checks is
// what the module will execute:
//   - a line starts with "AT" in any case (§5.2.1); "A/" repeats the last
//     line (§5.2.4) and is handled by the caller;
//   - spaces outside string constants are ignored, also inside command
//     names (§5.2.1: "AT+Q IOPEN" may run +QIOPEN on a module);
//   - basic commands are a letter or '&' + letter with an optional number
//     (§5.3); S-registers are Sn?, Sn=v (§6.2.x); D takes a dial string up
//     to ';' or the end of the line (§6.3.1);
//   - extended commands start with '+' or a vendor prefix ('#', '%', '^',
//     '$', '!', '*'), their names use A–Z, 0–9 and ! % - . / : _ (§5.4.1),
//     they are action (+X), read (+X?), test (+X=?) or set (+X=args) and are
//     separated by ';' (§5.4.2–5.4.3); ';' inside "…" does not separate.
// Control characters (except a trailing CR/LF) are refused before lexing:
// modules apply S5 backspace editing (§6.2.4), so "AT+QIOP\bOPEN" would run
// +QIOPEN.
//
// The lexer does not allocate: names are upper-cased into a fixed buffer,
// arguments are substrings of the line.

const maxCmdName = 32

type atOp uint8

const (
	opAction atOp = iota // AT+CGMI, ATE0, ATD*99#
	opRead               // AT+CREG?
	opTest               // AT+COPS=?
	opSet                // AT+CMEE=1
)

// atCmd is one command of a command line.
type atCmd struct {
	name [maxCmdName]byte // upper case, spaces removed: "+QIOPEN", "E", "&F", "S3", "D"
	nlen int
	op   atOp
	args string // set: text after '=' (quotes kept); D: dial string; basic: the number
}

func (c *atCmd) nameBytes() []byte { return c.name[:c.nlen] }

// lineScanner yields the commands of a command-line body (the text after
// "AT"). After next returns false, err is "" at the end of the line or a
// description of the syntax error.
type lineScanner struct {
	s   string
	i   int
	err string
}

func isExtPrefix(c byte) bool {
	switch c {
	case '+', '#', '%', '^', '$', '!', '*':
		return true
	}
	return false
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// isNameChar: V.250 §5.4.1 extended-name characters after the prefix.
func isNameChar(c byte) bool {
	if isLetter(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '%', '-', '.', '/', ':', '_':
		return true
	}
	return false
}

func (sc *lineScanner) skipSpaces() {
	for sc.i < len(sc.s) && sc.s[sc.i] == ' ' {
		sc.i++
	}
}

func (sc *lineScanner) fail(msg string) bool {
	sc.err = msg
	return false
}

// push appends an upper-cased byte to the command name.
func (c *atCmd) push(b byte) bool {
	if c.nlen >= maxCmdName {
		return false
	}
	if b >= 'a' && b <= 'z' {
		b -= 32
	}
	c.name[c.nlen] = b
	c.nlen++
	return true
}

// scanArgs returns the index of the ';' ending the argument list that
// starts at j (or len(s)), honouring double quotes. ok is false for an
// unterminated string.
func scanArgs(s string, j int) (end int, ok bool) {
	inq := false
	for ; j < len(s); j++ {
		switch s[j] {
		case '"':
			inq = !inq
		case ';':
			if !inq {
				return j, true
			}
		}
	}
	return j, !inq
}

func (sc *lineScanner) next(c *atCmd) bool {
	*c = atCmd{}
	for sc.i < len(sc.s) && (sc.s[sc.i] == ' ' || sc.s[sc.i] == ';') {
		sc.i++
	}
	if sc.i >= len(sc.s) {
		return false
	}
	s := sc.s
	ch := s[sc.i]
	switch {
	case isExtPrefix(ch):
		c.push(ch)
		sc.i++
		for sc.i < len(s) {
			b := s[sc.i]
			if b == ' ' {
				sc.i++
				continue
			}
			if !isNameChar(b) {
				break
			}
			if !c.push(b) {
				return sc.fail("command name too long")
			}
			sc.i++
		}
		if c.nlen == 1 {
			return sc.fail("empty command name after " + string(ch))
		}
		sc.skipSpaces()
		switch {
		case sc.i < len(s) && s[sc.i] == '?':
			c.op = opRead
			sc.i++
		case sc.i < len(s) && s[sc.i] == '=':
			sc.i++
			sc.skipSpaces()
			if sc.i < len(s) && s[sc.i] == '?' {
				c.op = opTest
				sc.i++
				break
			}
			c.op = opSet
			end, ok := scanArgs(s, sc.i)
			if !ok {
				return sc.fail("unterminated string")
			}
			c.args = trimSpaces(s[sc.i:end])
			if hiddenCommand(c.args) {
				return sc.fail("a command prefix inside the parameters; separate commands with ';'")
			}
			sc.i = end
		}
		sc.skipSpaces()
		if sc.i < len(s) && s[sc.i] != ';' {
			return sc.fail("unexpected character after an extended command; separate commands with ';'")
		}
		return true

	case ch == '&':
		sc.i++
		sc.skipSpaces()
		if sc.i >= len(s) || !isLetter(s[sc.i]) {
			return sc.fail("'&' must be followed by a letter")
		}
		c.push('&')
		c.push(s[sc.i])
		sc.i++
		sc.basicNumber(c)
		return true

	case isLetter(ch):
		c.push(ch)
		sc.i++
		switch c.name[0] {
		case 'D': // V.250 §6.3.1: the dial string runs to ';' or the end.
			end, ok := scanArgs(s, sc.i)
			if !ok {
				return sc.fail("unterminated string in dial string")
			}
			c.args = trimSpaces(s[sc.i:end])
			if end < len(s) {
				end++ // the ';' is part of D (stay in command state)
			}
			sc.i = end
			return true
		case 'S': // V.250 §5.3.2: Sn?, Sn=value, Sn (select)
			sc.skipSpaces()
			start := sc.i
			for sc.i < len(s) && isDigit(s[sc.i]) {
				if !c.push(s[sc.i]) {
					return sc.fail("register number too long")
				}
				sc.i++
			}
			if sc.i == start {
				return sc.fail("S must be followed by a register number")
			}
			sc.skipSpaces()
			switch {
			case sc.i < len(s) && s[sc.i] == '?':
				c.op = opRead
				sc.i++
			case sc.i < len(s) && s[sc.i] == '=':
				c.op = opSet
				sc.i++
				sc.skipSpaces()
				vs := sc.i
				for sc.i < len(s) && isDigit(s[sc.i]) {
					sc.i++
				}
				c.args = s[vs:sc.i]
			}
			return true
		}
		sc.basicNumber(c)
		return true
	}
	return sc.fail("unexpected character " + quoteByte(ch))
}

// hiddenCommand reports an extended-command prefix followed by a letter
// outside quotes in a parameter list ("1+QIOPEN=…"): V.250 requires ';'
// between commands, but a lenient module parser might run it as a second
// command the firewall would not have seen.
func hiddenCommand(args string) bool {
	inq := false
	for j := 0; j+1 < len(args); j++ {
		switch c := args[j]; {
		case c == '"':
			inq = !inq
		case !inq && isExtPrefix(c) && isLetter(args[j+1]):
			return true
		}
	}
	return false
}

func (sc *lineScanner) basicNumber(c *atCmd) {
	sc.skipSpaces()
	start := sc.i
	for sc.i < len(sc.s) && isDigit(sc.s[sc.i]) {
		sc.i++
	}
	c.args = sc.s[start:sc.i]
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return "'" + string(b) + "'"
	}
	const hex = "0123456789abcdef"
	return "0x" + string(hex[b>>4]) + string(hex[b&15])
}

func trimSpaces(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// argAt returns parameter i (0-based) of a set command's argument text:
// parameters are separated by ',' outside double quotes. A quoted parameter
// is returned without its quotes and quoted=true; an unquoted one is trimmed
// of spaces. ok is false past the last parameter. An empty parameter
// ("1,,3") is ok with v == "".
func argAt(args string, i int) (v string, quoted, ok bool) {
	if args == "" {
		return "", false, false
	}
	n, start, inq := 0, 0, false
	for j := 0; j <= len(args); j++ {
		if j < len(args) {
			switch args[j] {
			case '"':
				inq = !inq
				continue
			case ',':
				if inq {
					continue
				}
			default:
				continue
			}
		}
		if n == i {
			f := trimSpaces(args[start:j])
			if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
				inner := f[1 : len(f)-1]
				if !containsByte(inner, '"') {
					return inner, true, true
				}
			}
			return f, false, true
		}
		n++
		start = j + 1
	}
	return "", false, false
}

// argCount returns the number of parameters in args.
func argCount(args string) int {
	if args == "" {
		return 0
	}
	n, inq := 1, false
	for j := 0; j < len(args); j++ {
		switch args[j] {
		case '"':
			inq = !inq
		case ',':
			if !inq {
				n++
			}
		}
	}
	return n
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// atoiArg parses a decimal parameter; ok is false for anything else
// (including empty and values above 1<<20, which no parameter here needs).
func atoiArg(s string) (int, bool) {
	if s == "" || len(s) > 7 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// equalFoldASCII compares ASCII strings case-insensitively without
// allocating.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
