package modem

import (
	"fmt"
	"strings"
)

// IMEI is a parsed International Mobile Equipment Identity
// (3GPP TS 23.003 §6.2.1): TAC (8 digits) + serial (6) + check digit.
type IMEI struct {
	Value string // the 15 digits
	TAC   string // type allocation code: the first 8 digits, make and model
}

// ParseIMEI finds an IMEI in a module's answer to AT+CGSN and its variants:
// a bare number, "+CGSN: \"…\"" (Nordic AT+CGSN=1), "#CGSN: …" (Telit),
// "IMEI: …" (ATI blocks), or an IMEI followed by a serial number
// ("356936001568843,NL2A62Z0N5", ModemManager mm_parse_gsn tests). It
// checks the Luhn digit. A 14-digit IMEI without a check digit is completed.
func ParseIMEI(s string) (IMEI, error) {
	v := CleanValue(s)
	// Take the first run of digits long enough to be an IMEI.
	d := firstDigitRun(v, 14)
	switch len(d) {
	case 14:
		d += string(rune('0' + luhnDigit(d)))
	case 15:
		if !luhnValid(d) {
			return IMEI{}, fmt.Errorf("modem: IMEI %s fails its Luhn check digit", d)
		}
	case 16:
		// IMEISV (14 digits + 2-digit software version): no check digit.
		return IMEI{}, fmt.Errorf("modem: %q is an IMEISV (16 digits), not an IMEI", d)
	default:
		return IMEI{}, fmt.Errorf("modem: no IMEI (15 digits) in %q", s)
	}
	return IMEI{Value: d, TAC: d[:8]}, nil
}

// IMSI is a parsed International Mobile Subscriber Identity
// (3GPP TS 23.003 §2.2): MCC (3) + MNC (2 or 3) + MSIN.
type IMSI struct {
	Value string
	MCC   string
	MNC   string
}

// PLMN returns MCC+MNC, the home network.
func (i IMSI) PLMN() string { return i.MCC + i.MNC }

// ParseIMSI parses the answer to AT+CIMI (bare, or "#CIMI: …" on Telit).
// The MNC length is not encoded in the IMSI itself; it comes from the
// country's numbering plan (MNCLength).
func ParseIMSI(s string) (IMSI, error) {
	d := firstDigitRun(CleanValue(s), 6)
	if len(d) < 6 || len(d) > 15 {
		return IMSI{}, fmt.Errorf("modem: no IMSI (6 to 15 digits) in %q", s)
	}
	mcc := d[:3]
	n := MNCLength(mcc)
	return IMSI{Value: d, MCC: mcc, MNC: d[3 : 3+n]}, nil
}

// threeDigitMNC lists the mobile country codes whose networks use
// three-digit MNCs (ITU-T E.212 assignments as published in national
// numbering plans: North America, India's 405, much of Latin America).
var threeDigitMNC = map[string]bool{
	"302": true, "310": true, "311": true, "312": true, "313": true, "314": true, "315": true,
	"316": true, "334": true, "338": true, "342": true, "344": true, "346": true, "348": true,
	"352": true, "354": true, "356": true, "358": true, "360": true, "365": true, "366": true,
	"376": true, "405": true, "708": true, "710": true, "722": true, "732": true,
}

// MNCLength returns 3 for the countries that use three-digit MNCs, else 2.
func MNCLength(mcc string) int {
	if threeDigitMNC[mcc] {
		return 3
	}
	return 2
}

// ICCID is a parsed SIM card number (ITU-T E.118): "89" (telecom) +
// country code + issuer + account + Luhn check digit.
type ICCID struct {
	Value string
	// Country is the E.164 country calling code the ICCID carries after
	// "89" when it can be told ("86" for China, "1" for North America);
	// empty otherwise.
	Country string
	// LuhnValid reports whether the last digit checks. Some issuers use
	// 20-digit ICCIDs without a valid check digit, so a failed check is
	// reported, not refused.
	LuhnValid bool
}

// ParseICCID parses the answer to any of the ICCID commands: "+CCID: …",
// "+QCCID: …" (Quectel), "+ICCID: …" (SIMCom AT+CICCID), "#CCID: …"
// (Telit), "^ICCID: …" (Huawei), "ICCID: …" (u-blox AT+ICCID, MeiG), with
// or without quotes. Trailing 'F' padding nibbles are removed.
func ParseICCID(s string) (ICCID, error) {
	v := strings.ToUpper(CleanValue(s))
	var id string
	for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != 'F' }) {
		// Huawei AT^ICCID? returns the raw EF_ICCID bytes, nibbles swapped:
		// "98" instead of "89" (ETSI TS 102 221 §13.2 stores BCD low nibble first).
		if strings.HasPrefix(tok, "98") && len(tok)%2 == 0 {
			tok = swapNibbles(tok)
		}
		t := strings.TrimRight(tok, "F")
		if len(t) >= 18 && !strings.ContainsRune(t, 'F') {
			id = t
			break
		}
	}
	if id == "" || len(id) > 22 {
		return ICCID{}, fmt.Errorf("modem: no ICCID (18 to 22 digits) in %q", s)
	}
	if !strings.HasPrefix(id, "89") {
		return ICCID{}, fmt.Errorf("modem: %q does not start with 89, the telecom industry identifier of an ICCID", id)
	}
	return ICCID{Value: id, LuhnValid: luhnValid(id), Country: iccidCountry(id[2:])}, nil
}

func swapNibbles(s string) string {
	b := []byte(s)
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	return string(b)
}

// iccidCountry reads the country calling code after "89". E.164 codes are
// prefix-free; the short table covers the one- and two-digit codes, and
// everything else is taken as three digits.
func iccidCountry(rest string) string {
	if len(rest) < 3 {
		return ""
	}
	if rest[0] == '0' {
		// North American ICCIDs write country code 1 as "01" ("8901410...").
		return strings.TrimLeft(rest[:2], "0")
	}
	if rest[0] == '1' || rest[0] == '7' {
		return rest[:1]
	}
	two := map[string]bool{"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true,
		"36": true, "39": true, "40": true, "41": true, "43": true, "44": true, "45": true, "46": true,
		"47": true, "48": true, "49": true, "51": true, "52": true, "53": true, "54": true, "55": true,
		"56": true, "57": true, "58": true, "60": true, "61": true, "62": true, "63": true, "64": true,
		"65": true, "66": true, "81": true, "82": true, "84": true, "86": true, "90": true, "91": true,
		"92": true, "93": true, "94": true, "95": true, "98": true}
	if two[rest[:2]] {
		return rest[:2]
	}
	return rest[:3]
}

// firstDigitRun returns the first run of decimal digits at least min long,
// or the longest shorter run when none is.
func firstDigitRun(s string, min int) string {
	best := ""
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i >= min {
			return s[i:j]
		}
		if j-i > len(best) {
			best = s[i:j]
		}
		i = j
	}
	return best
}

// luhnValid reports whether the last digit of d is its Luhn check digit.
func luhnValid(d string) bool {
	return len(d) > 1 && luhnDigit(d[:len(d)-1]) == int(d[len(d)-1]-'0')
}

// luhnDigit computes the Luhn check digit for the digits in d (ISO/IEC 7812).
func luhnDigit(d string) int {
	sum := 0
	double := true
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return (10 - sum%10) % 10
}
