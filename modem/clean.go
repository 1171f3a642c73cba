package modem

import (
	"strings"
)

// labels are the "Label: value" forms modules put before identity values
// in ATI blocks and vendor answers (Sierra, SIMCom, u-blox, Huawei, Fibocom
// ATI; reference notes §3). Matched case-insensitively.
var labels = []string{
	"manufacturer", "model", "revision", "imei sv", "imeisv", "imei", "meid", "esn", "iccid",
	"svn", "fsn", "firmware", "firmware version", "software version", "hardware version",
	"serial number", "sn", "product", "device",
}

// CleanValue turns one answer line into a bare value: it removes a command
// prefix ("+CGMR: ", "#CGSN: ", "^ICCID: ", "%HWVERSION: ", "!GVER: "), a
// label ("Revision: ", "Manufacturer: "), surrounding quotes and stray
// blanks. It keeps colons inside the value (Sierra revisions carry a time:
// "SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09").
// For several quoted fields ("\"L850 LTE Module\",\"L850\"") it returns the
// first. ModemManager does the same job in sanitize_info_reply
// (mm-broadband-modem.c).
func CleanValue(line string) string {
	v := strings.TrimSpace(line)
	v = stripCommandPrefix(v)
	v = stripLabel(v)
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' {
		if end := strings.IndexByte(v[1:], '"'); end >= 0 {
			v = v[1 : 1+end]
		}
	}
	return strings.TrimSpace(v)
}

// stripCommandPrefix removes "+NAME:", "#NAME:", "^NAME:", "%NAME:",
// "!NAME:" or "$NAME:" where NAME is a command name (letters, digits, '_').
func stripCommandPrefix(v string) string {
	if v == "" || !strings.ContainsRune("+#^%!$", rune(v[0])) {
		return v
	}
	i := 1
	for i < len(v) && (isAlnum(v[i]) || v[i] == '_') {
		i++
	}
	if i == 1 || i >= len(v) || v[i] != ':' {
		return v
	}
	return strings.TrimSpace(v[i+1:])
}

func stripLabel(v string) string {
	i := strings.IndexByte(v, ':')
	if i <= 0 {
		return v
	}
	l := strings.ToLower(strings.TrimSpace(v[:i]))
	for _, k := range labels {
		if l == k {
			return strings.TrimSpace(v[i+1:])
		}
	}
	return v
}

func isAlnum(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// labelled returns the value of the first line "Label: value" in lines
// (case-insensitive label), for ATI blocks.
func labelled(lines []string, label string) (string, bool) {
	for _, l := range lines {
		i := strings.IndexByte(l, ':')
		if i <= 0 {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(l[:i]), label) {
			return CleanValue(l[i+1:]), true
		}
	}
	return "", false
}

// valueFields splits an answer line into its comma-separated values after
// the command prefix, quotes removed: `+CGDCONT: 1,"IP","iot.example"` →
// [1 IP iot.example].
func valueFields(line string) []string {
	return fields(stripCommandPrefix(strings.TrimSpace(line)))
}
