package atcmd

import (
	"strings"
	"time"
)

// Default per-command timeouts. Most commands answer within a second or
// two; network operations can take minutes. The long values follow the
// "maximum response time" column of Quectel's EC2x/EG9x AT command manual
// (AT+COPS 180 s, AT+CGACT 150 s, AT+CGATT 140 s, AT+CMGS 120 s, AT+CFUN
// 15 s, AT+QIOPEN 150 s), which other vendors' manuals are in line with.
const (
	// DefaultCommandTimeout applies to any command without a class below.
	DefaultCommandTimeout = 5 * time.Second
)

var classTimeouts = map[string]time.Duration{
	"+COPS":     180 * time.Second, // network scan and manual selection
	"+CGACT":    150 * time.Second,
	"+CGATT":    140 * time.Second,
	"+CMGS":     120 * time.Second,
	"+CMSS":     120 * time.Second,
	"+CUSD":     120 * time.Second,
	"+CFUN":     15 * time.Second,
	"+QIOPEN":   150 * time.Second,
	"+QICLOSE":  10 * time.Second,
	"+QMTOPEN":  75 * time.Second,
	"+QMTCONN":  75 * time.Second,
	"+NETOPEN":  120 * time.Second,
	"+CIPOPEN":  120 * time.Second,
	"+CIPSTART": 75 * time.Second,
	"#SGACT":    150 * time.Second,
	"D":         60 * time.Second, // ATD: dialling waits for CONNECT
}

// DefaultTimeout returns the time allowed for the command line cmdLine (for
// example "AT+COPS=?") when the caller gave none: the longest class timeout
// among its chained commands, or DefaultCommandTimeout. Read and test forms
// (AT+COPS? but not AT+COPS=?) of the slow commands answer at once and get
// the default.
func DefaultTimeout(cmdLine string) time.Duration {
	d := DefaultCommandTimeout
	if len(cmdLine) < 2 {
		return d
	}
	for rest := cmdLine[2:]; rest != ""; {
		part := rest
		if i := strings.IndexByte(rest, ';'); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		part = strings.TrimSpace(part)
		name := part
		if i := strings.IndexAny(part, "=?"); i >= 0 {
			name = part[:i]
		}
		if len(name) > 0 && (name[0] == 'D' || name[0] == 'd') {
			name = "D"
		}
		t, ok := classTimeouts[name]
		if !ok {
			t, ok = classTimeouts[strings.ToUpper(name)] // lower case is rare: allocate only then
		}
		if !ok {
			continue
		}
		// "AT+COPS?" reads the current operator: instant. "AT+COPS=?" scans.
		if strings.HasSuffix(part, "?") && !strings.HasSuffix(part, "=?") {
			continue
		}
		if t > d {
			d = t
		}
	}
	return d
}
