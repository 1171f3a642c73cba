package policy

import (
	"strconv"
	"strings"
)

// Enforcement is the state the agent keeps a denied module in.
type Enforcement uint8

// Enforcement states the AT firewall guards.
const (
	EnforceNone        Enforcement = iota
	EnforceQuarantined             // radio off (AT+CFUN=4)
	EnforceBlockedData             // PDP contexts down (AT+CGACT=0)
	// EnforcePending is the state before the module's first verdict: both
	// guards apply, so a restart of the agent opens no window.
	EnforcePending
)

// CheckEnforcement refuses a command line that would undo an enforcement
// state from behind the AT firewall: switching a quarantined module's radio
// back on (AT+CFUN with a level other than 0 or 4) or rebooting it, and
// starting data on a module whose data is blocked (dial, +CGDATA, +CGACT
// activation, the vendors' own data-call commands). It parses the line as
// the module would (the firewall's V.250 lexer), so "AT+CFUN=4;+CFUN=1",
// "AT+CFUN=01" and "ATE0D*99#" are all caught. It returns the reason for a
// refusal, or "".
func CheckEnforcement(line string, state Enforcement) string {
	if state == EnforceNone {
		return ""
	}
	body, ok := stripAT(line)
	if !ok {
		return ""
	}
	if hasControl(body) {
		return "the line carries control characters"
	}
	sc := lineScanner{s: body}
	var c atCmd
	for sc.next(&c) {
		if r := enforceCommand(&c, state); r != "" {
			return r
		}
	}
	if sc.err != "" {
		return "the line does not parse as AT commands (" + sc.err + ")"
	}
	return ""
}

// dataCalls are vendor commands that bring a data call up: Quectel
// AT+QIACT and AT+QNETDEVCTL, Telit AT#SGACT, SIMCom AT+NETOPEN and
// AT+CIICR, Qualcomm AT$QCRMCALL, Huawei AT^NDISDUP, Sierra AT!SCACT,
// Fibocom AT+MIPCALL, ZTE AT+ZGACT, u-blox AT+UPSDA.
var dataCalls = map[string]bool{
	"+QIACT": true, "+QNETDEVCTL": true, "#SGACT": true, "+NETOPEN": true, "+CIICR": true,
	"$QCRMCALL": true, "^NDISDUP": true, "!SCACT": true, "+MIPCALL": true, "+ZGACT": true, "+UPSDA": true,
}

// reboots are commands that restart the module, which comes back with its
// radio on until the agent has identified and quarantined it again.
var reboots = map[string]bool{
	"+QPOWD": true, "+CRESET": true, "#REBOOT": true, "#SHDN": true, "+TRB": true, "^RESET": true,
	"!RESET": true, "+CPWROFF": true, "+CPOF": true, "+SMSO": true, "^SMSO": true,
}

func enforceCommand(c *atCmd, state Enforcement) string {
	if c.op == opRead || c.op == opTest {
		return ""
	}
	name := string(c.nameBytes())
	quarantine := state == EnforceQuarantined || state == EnforcePending
	blocked := state == EnforceBlockedData || state == EnforcePending
	if quarantine {
		if name == "+CFUN" && c.op == opSet {
			first, _, _ := strings.Cut(c.args, ",")
			n, err := strconv.Atoi(strings.TrimSpace(first))
			if err != nil || (n != 0 && n != 4) {
				return "the module is quarantined by policy: its radio stays off (AT" + name + "=" + c.args + " refused)"
			}
		}
		if reboots[name] {
			return "the module is quarantined by policy: " + name + " would restart it with its radio on"
		}
	}
	if blocked {
		switch {
		case name == "D", name == "+CGDATA", dataCalls[name] && c.op != opRead:
			return "the module's data is blocked by policy: " + name + " would start a data call"
		case name == "+CGACT" && c.op == opSet:
			first, _, _ := strings.Cut(c.args, ",")
			if n, err := strconv.Atoi(strings.TrimSpace(first)); err != nil || n != 0 {
				return "the module's data is blocked by policy: AT+CGACT=" + c.args + " would activate a PDP context"
			}
		}
	}
	return ""
}

// stripAT returns the body of a command line after "AT".
func stripAT(line string) (string, bool) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 2 || !strings.EqualFold(line[:2], "AT") {
		return "", false
	}
	return line[2:], true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
