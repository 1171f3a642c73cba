package simulator

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
)

// luhnDigit returns the Luhn check digit for the digit string s
// (ISO/IEC 7812-1 Annex B; used by the IMEI, 3GPP TS 23.003 §6.2.1, and by
// the ICCID, ITU-T E.118).
func luhnDigit(s string) byte {
	sum := 0
	double := true
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnValid reports whether the last digit of s is its Luhn check digit.
func luhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	return luhnDigit(s[:len(s)-1]) == s[len(s)-1]
}

func randDigits(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	return b.String()
}

// newRand returns the deterministic generator of one modem instance: the same
// seed and profile always give the same values (math/rand/v2 PCG is a
// specified algorithm, stable across Go releases).
func newRand(seed uint64, stream string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// genIMEI makes a 15-digit IMEI: TAC (8) + serial (6) + Luhn (1)
// (3GPP TS 23.003 §6.2.1).
func genIMEI(r *rand.Rand, tac string) string {
	s := tac + randDigits(r, 6)
	return s + string(luhnDigit(s))
}

// genIMSI makes a 15-digit IMSI: MCC+MNC then MSIN (3GPP TS 23.003 §2.2).
func genIMSI(r *rand.Rand, plmn string) string {
	return plmn + randDigits(r, 15-len(plmn))
}

// genICCID makes an ICCID of the given length with a Luhn check digit
// (ITU-T E.118).
func genICCID(r *rand.Rand, prefix string, length int) string {
	s := prefix + randDigits(r, length-1-len(prefix))
	return s + string(luhnDigit(s))
}
