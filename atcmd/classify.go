package atcmd

import (
	"bytes"
	"strconv"
	"strings"
)

// FinalKind says whether a line is a final result code, and of what kind.
type FinalKind uint8

// Final result code kinds (ITU-T V.250 §5.7.1, 3GPP TS 27.007 §9.2).
const (
	NotFinal     FinalKind = iota // an information or unsolicited line
	FinalOK                       // OK
	FinalConnect                  // CONNECT [<text>]: the port enters data mode
	FinalError                    // ERROR, +CME ERROR, +CMS ERROR or a vendor error final
	FinalCall                     // NO CARRIER, BUSY, NO ANSWER, NO DIALTONE
)

func (k FinalKind) String() string {
	switch k {
	case FinalOK:
		return "ok"
	case FinalConnect:
		return "connect"
	case FinalError:
		return "error"
	case FinalCall:
		return "call"
	}
	return "not-final"
}

// DefaultVendorFinals are the non-standard error finals recognised when
// Config.VendorFinals is nil. An entry ending in ':' matches any line that
// starts with it; other entries match the whole line.
//
// Sources: ModemManager src/mm-serial-parsers.c (COMMAND NOT SUPPORT,
// MODEM ERROR:), xlab/at (TOO MANY PARAMETERS), rehiy/modem (+CIS ERROR:).
var DefaultVendorFinals = []string{
	"COMMAND NOT SUPPORT",
	"TOO MANY PARAMETERS",
	"+CIS ERROR:",
	"MODEM ERROR:",
}

// ClassifyFinal reports whether line (without its terminator) is a final
// result code. vendor lists extra error finals (see DefaultVendorFinals).
// It never allocates.
func ClassifyFinal(line []byte, vendor []string) FinalKind {
	if len(line) == 0 {
		return NotFinal
	}
	switch line[0] {
	case 'O':
		if string(line) == "OK" {
			return FinalOK
		}
	case 'S':
		// Quectel AT+QISEND and SIMCom AT+CIPSEND end with these instead of
		// OK (Quectel TCP/IP AT commands manual, AT+QISEND).
		switch string(line) {
		case "SEND OK":
			return FinalOK
		case "SEND FAIL":
			return FinalError
		}
	case 'E':
		if string(line) == "ERROR" {
			return FinalError
		}
	case '+':
		if bytes.HasPrefix(line, cmePrefix) || bytes.HasPrefix(line, cmsPrefix) {
			return FinalError
		}
	case 'C':
		if bytes.HasPrefix(line, connectPrefix) && (len(line) == len(connectPrefix) || line[len(connectPrefix)] == ' ') {
			return FinalConnect
		}
	case 'N', 'B':
		switch string(line) {
		case "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE":
			return FinalCall
		}
	}
	for _, v := range vendor {
		if matchVendor(line, v) {
			return FinalError
		}
	}
	return NotFinal
}

func matchVendor(line []byte, v string) bool {
	if v == "" {
		return false
	}
	if v[len(v)-1] == ':' {
		return len(line) >= len(v) && string(line[:len(v)]) == v
	}
	return string(line) == v
}

var (
	cmePrefix     = []byte("+CME ERROR:")
	cmsPrefix     = []byte("+CMS ERROR:")
	connectPrefix = []byte("CONNECT")
)

// finalError turns an error or call final result line into its error value.
// It allocates only for the typed device errors.
func finalError(line []byte) error {
	switch {
	case string(line) == "ERROR":
		return ErrError
	case bytes.HasPrefix(line, cmePrefix):
		code, text := parseErrorValue(line[len(cmePrefix):], cmeText)
		return &CMEError{Code: code, Text: text}
	case bytes.HasPrefix(line, cmsPrefix):
		code, text := parseErrorValue(line[len(cmsPrefix):], cmsText)
		return &CMSError{Code: code, Text: text}
	}
	switch string(line) {
	case "NO CARRIER":
		return ErrNoCarrier
	case "BUSY":
		return ErrBusy
	case "NO ANSWER":
		return ErrNoAnswer
	case "NO DIALTONE":
		return ErrNoDialtone
	}
	return &VendorError{Text: string(line)}
}

// parseErrorValue reads the value after "+CME ERROR:" in either numeric
// (AT+CMEE=1) or verbose (AT+CMEE=2) form. An empty value gives (-1, "").
func parseErrorValue(v []byte, table map[int]string) (int, string) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return -1, ""
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, table[n]
	}
	for code, text := range table {
		if strings.EqualFold(text, s) {
			return code, s
		}
	}
	return -1, s
}

// cmeText holds the general and GPRS mobile-equipment error texts of
// 3GPP TS 27.007 §9.2.1 and §9.2.2 that modules commonly report.
var cmeText = map[int]string{
	0: "phone failure", 1: "no connection to phone", 2: "phone-adaptor link reserved",
	3: "operation not allowed", 4: "operation not supported", 5: "PH-SIM PIN required",
	6: "PH-FSIM PIN required", 7: "PH-FSIM PUK required", 10: "SIM not inserted",
	11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 14: "SIM busy",
	15: "SIM wrong", 16: "incorrect password", 17: "SIM PIN2 required", 18: "SIM PUK2 required",
	20: "memory full", 21: "invalid index", 22: "not found", 23: "memory failure",
	24: "text string too long", 25: "invalid characters in text string",
	26: "dial string too long", 27: "invalid characters in dial string",
	30: "no network service", 31: "network timeout",
	32: "network not allowed - emergency calls only",
	40: "network personalization PIN required", 41: "network personalization PUK required",
	42: "network subset personalization PIN required", 43: "network subset personalization PUK required",
	44: "service provider personalization PIN required", 45: "service provider personalization PUK required",
	46: "corporate personalization PIN required", 47: "corporate personalization PUK required",
	100: "unknown", 103: "illegal MS", 106: "illegal ME", 107: "GPRS services not allowed",
	111: "PLMN not allowed", 112: "location area not allowed",
	113: "roaming not allowed in this location area", 132: "service option not supported",
	133: "requested service option not subscribed", 134: "service option temporarily out of order",
	148: "unspecified GPRS error", 149: "PDP authentication failure", 150: "invalid mobile class",
}

// cmsText holds the message-service error texts of 3GPP TS 27.005 §3.2.5.
var cmsText = map[int]string{
	300: "ME failure", 301: "SMS service of ME reserved", 302: "operation not allowed",
	303: "operation not supported", 304: "invalid PDU mode parameter",
	305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
	312: "PH-SIM PIN required", 313: "SIM failure", 314: "SIM busy", 315: "SIM wrong",
	316: "SIM PUK required", 317: "SIM PIN2 required", 318: "SIM PUK2 required",
	320: "memory failure", 321: "invalid memory index", 322: "memory full",
	330: "SMSC address unknown", 331: "no network service", 332: "network timeout",
	340: "no +CNMA acknowledgement expected", 500: "unknown error",
}

// numericFinal maps V.250 numeric result codes (ATV0) to their kind. The
// engine honours them only while syncing, when the module may still be in
// V0 mode; elsewhere a bare "0" is an ordinary answer.
func numericFinal(line []byte) (FinalKind, error) {
	switch string(line) {
	case "0":
		return FinalOK, nil
	case "4":
		return FinalError, ErrError
	}
	return NotFinal, nil
}

// hasCommandName reports whether the AT command line cmdLine contains a
// command called name: hasCommandName("AT+CSQ;+CREG?", "+CREG") is true.
// It tells a solicited "+CREG: ..." answer from a +CREG URC.
func hasCommandName(cmdLine, name string) bool {
	if len(cmdLine) < 2 {
		return false
	}
	rest := cmdLine[2:] // after "AT"
	for rest != "" {
		end := strings.IndexByte(rest, ';')
		part := rest
		if end >= 0 {
			part, rest = rest[:end], rest[end+1:]
		} else {
			rest = ""
		}
		part = strings.TrimSpace(part)
		if len(part) >= len(name) && strings.EqualFold(part[:len(name)], name) {
			if len(part) == len(name) || part[len(name)] == '=' || part[len(name)] == '?' {
				return true
			}
		}
	}
	return false
}
