package policy

import "strings"

// Firmware revisions are compared the way vendors number them, not as
// strings. A revision is cut into tokens: runs of digits (numbers), runs of
// letters, and single other characters (separators such as '.', '_', '-').
//
//	EC25EFAR06A08M4G            → EC 25 EFAR 06 A 08 M 4 G
//	EC25EFAR06A08M4G_01.002     → … M 4 G _ 01 . 002
//	25.30.226                   → 25 . 30 . 226
//
// Two revisions are comparable when they have the same shape over their
// common length: the same letters (case-insensitive) and separators in the
// same places, numbers where the other has numbers. Then the numbers decide,
// left to right, by value (06 = 6): EC25EFAR06A08M4G is above
// EC25EFAR06A06M4G, 25.30.226 is above 25.30.216.
//
// When one revision is the other followed by a separator and more tokens
// (EC25EFAR06A08M4G vs EC25EFAR06A08M4G_01.002), the longer one is a build
// of the shorter: a build of R is not below R; whether R is below one of its
// builds cannot be told. Anything else — different letters (EC25… vs
// EG25…), a number against letters, one revision continuing with letters —
// cannot be compared: a firmware_below condition then does not hold, and
// the explanation says why.

type revToken struct {
	s    string
	kind byte // 'n' number, 'a' letters, 's' separator
}

func tokenizeRevision(s string) []revToken {
	var out []revToken
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		var kind byte
		switch {
		case c >= '0' && c <= '9':
			kind = 'n'
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			kind = 'a'
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
		default:
			kind = 's'
		}
		out = append(out, revToken{s[i:j], kind})
		i = j
	}
	return out
}

// comparableRevision reports whether s can be a firmware_below threshold:
// it must have a number in it.
func comparableRevision(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// compareNumbers compares two digit strings by value without overflow.
func compareNumbers(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareRevision compares the revision a module reports (a) with a
// policy's reference revision (b) as described above. It returns -1, 0 or +1
// and ok=true when they are comparable; otherwise ok=false and why says what
// differs. It is not symmetric: a build of b (a = b + "_01.002") compares
// equal, b's build against a bare a cannot be told.
func compareRevision(a, b string) (cmp int, ok bool, why string) {
	ta, tb := tokenizeRevision(a), tokenizeRevision(b)
	n := min(len(ta), len(tb))
	// Shape first: a difference in letters after the deciding number must
	// still make the pair incomparable (EC25…M4G vs EC25…M4X).
	for i := 0; i < n; i++ {
		x, y := ta[i], tb[i]
		if x.kind != y.kind {
			return 0, false, "they differ in shape at " + quote(x.s) + " vs " + quote(y.s)
		}
		if x.kind != 'n' && !strings.EqualFold(x.s, y.s) {
			return 0, false, "they differ at " + quote(x.s) + " vs " + quote(y.s)
		}
	}
	for i := 0; i < n; i++ {
		if ta[i].kind == 'n' {
			if c := compareNumbers(ta[i].s, tb[i].s); c != 0 {
				return c, true, ""
			}
		}
	}
	switch {
	case len(ta) == len(tb):
		return 0, true, ""
	case len(ta) > len(tb) && ta[n].kind == 's':
		return 0, true, "" // a is a build of b: not below it
	case len(tb) > len(ta) && tb[n].kind == 's':
		return 0, false, quote(a) + " lacks the build part of " + quote(b)
	}
	return 0, false, "one continues where the other ends"
}

func quote(s string) string { return "\"" + s + "\"" }
