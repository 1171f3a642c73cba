package simulator

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// The module's own IP stack, per vendor dialect. Every command that names a
// destination is recorded as a Connection so tests (and the agent's AT
// firewall tests) can assert what the module was asked to reach. Syntax
// sources, by dialect (public manuals and driver code quoting them):
//   quectel: "Quectel EC2x&EG9x TCP(IP) Application Note", "MQTT Application
//            Note", "HTTP(S) AT Commands Manual", "FTP(S) Application Note",
//            "DFOTA User Guide"; TinyGSM TinyGsmClientBG96.h.
//   simcom:  "SIM7500_SIM7600 Series AT Command Manual" V2.00 (CIPOPEN, NETOPEN,
//            CMQTT*, HTTPPARA); SIM800 manual (CIPSTART); SIM7070 manual (CAOPEN).
//   telit:   "Telit LE910Cx AT Commands Reference Guide" (#SD, #SGACT, #GDATAVOL,
//            #MQCFG, #FTPOPEN).
//   ublox:   "u-blox SARA-R4 AT Commands Manual" (USOCR/USOCO/USOST, UMQTT, UHTTP).
//   fibocom: "Fibocom L610 AT Commands" (MIPCALL, MIPOPEN).
//   huawei:  "HUAWEI ME909s AT Command Interface Specification" (^IPINIT,
//            ^IPOPEN, ^IPSEND, ^DSFLOWQRY) — hedged, not checked on hardware.
//   nordic:  nRF Connect SDK Serial LTE Modem docs (#XSOCKET, #XCONNECT, #XFOTA).
//   cinterion: "Cinterion EHS6 AT Command Set" (^SISS, ^SISO, ^SISW).

type stackState struct {
	httpURL  string
	nextSock int
	sockKind map[int]string            // u-blox / nordic socket id → tcp|udp
	sis      map[int]map[string]string // cinterion service profiles
}

func (c *channel) record(cmd Command, kind, host string, port int, u string) {
	m := c.m
	m.conns = append(m.conns, Connection{ATPort: c.port, Origin: "host", Dialect: m.p.Stack,
		Command: "AT" + cmd.Name + "=" + cmd.Args, Kind: kind, Host: host, Port: port, URL: u})
	m.traffic.Sent += 60 // handshake
	m.traffic.Received += 40
}

// parseURL splits a URL or host:port into host and port, defaulting the port
// from the scheme.
func parseURL(s string) (host string, port int) {
	defaults := map[string]int{"http": 80, "https": 443, "ftp": 21, "ftps": 990, "mqtt": 1883, "mqtts": 8883, "tcp": 0, "ssl": 8883, "coap": 5683, "coaps": 5684, "socktcp": 0, "sockudp": 0}
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		port = defaults[strings.ToLower(u.Scheme)]
		if p := u.Port(); p != "" {
			port, _ = strconv.Atoi(p)
		}
		return u.Hostname(), port
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		port, _ = strconv.Atoi(p)
		return h, port
	}
	return s, 0
}

func (c *channel) notRegistered() (result, bool) {
	if !c.m.registeredLocked() {
		return c.cmeLocked(30), true
	}
	return result{}, false
}

// stack runs the profile's IP-stack dialect; m.mu is held.
func (c *channel) stack(cmd Command) (result, bool) {
	m := c.m
	if m.st.stack.sockKind == nil {
		m.st.stack.sockKind = map[int]string{}
		m.st.stack.sis = map[int]map[string]string{}
	}
	args, _ := splitArgs(cmd.Args)
	a := func(i int) string { return argAt(args, i) }
	n := func(i, def int) int { return atoiDefault(a(i), def) }
	set := cmd.Op == OpSet
	switch m.p.Stack {
	case "quectel":
		return c.quectel(cmd, set, a, n)
	case "simcom":
		switch cmd.Name {
		case "+NETOPEN":
			if r, bad := c.notRegistered(); bad {
				return r, true
			}
			return result{after: []string{"+NETOPEN: 0"}}, cmd.Op == OpAction
		case "+CIPOPEN":
			if !set {
				return ok(), cmd.Op == OpRead
			}
			kind := strings.ToLower(a(1))
			c.record(cmd, kind, a(2), n(3, 0), "")
			return result{after: []string{fmt.Sprintf("+CIPOPEN: %d,0", n(0, 0))}}, true
		case "+CIPSTART":
			if !set {
				return result{}, false
			}
			if _, err := strconv.Atoi(a(0)); err == nil { // multi-connection form
				c.record(cmd, strings.ToLower(a(1)), a(2), n(3, 0), "")
				return result{after: []string{a(0) + ", CONNECT OK"}}, true
			}
			c.record(cmd, strings.ToLower(a(0)), a(1), n(2, 0), "")
			return result{after: []string{"CONNECT OK"}}, true
		case "+CAOPEN":
			if !set {
				return result{}, false
			}
			c.record(cmd, strings.ToLower(a(2)), a(3), n(4, 0), "")
			return ok(fmt.Sprintf("+CAOPEN: %d,0", n(0, 0))), true
		case "+CIPSEND":
			if !set {
				return result{}, false
			}
			id, ln := n(0, 0), n(1, 0)
			return result{prompt: &prompt{n: ln, finish: func(p []byte, cancelled bool) result {
				if cancelled {
					return ok()
				}
				m.traffic.Sent += uint64(len(p))
				return result{after: []string{fmt.Sprintf("+CIPSEND: %d,%d,%d", id, len(p), len(p))}}
			}}}, true
		case "+CMQTTCONNECT":
			if !set {
				return result{}, false
			}
			h, p := parseURL(a(1))
			c.record(cmd, "mqtt", h, p, a(1))
			return result{after: []string{fmt.Sprintf("+CMQTTCONNECT: %d,0", n(0, 0))}}, true
		case "+HTTPPARA":
			if !set || !strings.EqualFold(a(0), "URL") {
				return ok(), set
			}
			h, p := parseURL(a(1))
			c.record(cmd, "http", h, p, a(1))
			return ok(), true
		case "+HTTPACTION":
			m.traffic.Sent += 200
			return result{after: []string{fmt.Sprintf("+HTTPACTION: %d,200,0", n(0, 0))}}, set
		case "+CFOTA":
			for _, v := range args {
				if strings.Contains(v, "://") {
					h, p := parseURL(v)
					c.record(cmd, "fota", h, p, v)
				}
			}
			return ok(), set
		}
	case "telit":
		switch cmd.Name {
		case "#SGACT":
			if cmd.Op == OpRead {
				return ok("#SGACT: 1,1"), true
			}
			if !set {
				return result{}, false
			}
			if r, bad := c.notRegistered(); bad && n(1, 0) == 1 {
				return r, true
			}
			if n(1, 0) == 1 {
				return ok(fmt.Sprintf("#SGACT: 10.%d.0.2", 64+n(0, 1))), true
			}
			return ok(), true
		case "#SD":
			if !set {
				return result{}, false
			}
			kind := "tcp"
			if n(1, 0) == 1 {
				kind = "udp"
			}
			c.record(cmd, kind, a(3), n(2, 0), "")
			return ok(), true
		case "#SSEND", "#SSENDEXT":
			if !set {
				return result{}, false
			}
			return result{prompt: &prompt{n: n(1, 0), finish: func(p []byte, cancelled bool) result {
				if !cancelled {
					m.traffic.Sent += uint64(len(p))
				}
				return ok()
			}}}, true
		case "#MQCFG":
			if !set {
				return result{}, false
			}
			c.record(cmd, "mqtt", a(1), n(2, 1883), "")
			return ok(), true
		case "#FTPOPEN":
			if !set {
				return result{}, false
			}
			h, p := a(0), 21
			if hh, pp, err := net.SplitHostPort(a(0)); err == nil {
				h, p = hh, atoiDefault(pp, 21)
			}
			c.record(cmd, "ftp", h, p, "")
			return ok(), true
		case "#HTTPCFG":
			if !set {
				return result{}, false
			}
			c.record(cmd, "http", a(1), n(2, 80), "")
			return ok(), true
		case "#GDATAVOL":
			t := m.traffic
			return ok(fmt.Sprintf("#GDATAVOL: 1,%d,%d,%d", t.Sent+t.Received, t.Sent, t.Received)), true
		}
	case "ublox":
		switch cmd.Name {
		case "+USOCR":
			if !set {
				return result{}, false
			}
			id := m.st.stack.nextSock
			m.st.stack.nextSock++
			m.st.stack.sockKind[id] = map[string]string{"6": "tcp", "17": "udp"}[a(0)]
			return ok(fmt.Sprintf("+USOCR: %d", id)), true
		case "+USOCO":
			if !set {
				return result{}, false
			}
			kind := m.st.stack.sockKind[n(0, 0)]
			if kind == "" {
				kind = "tcp"
			}
			c.record(cmd, kind, a(1), n(2, 0), "")
			return ok(), true
		case "+USOST":
			if !set {
				return result{}, false
			}
			c.record(cmd, "udp", a(1), n(2, 0), "")
			m.traffic.Sent += uint64(n(3, 0))
			return ok(fmt.Sprintf("+USOST: %d,%d", n(0, 0), n(3, 0))), true
		case "+UMQTT":
			if !set {
				return result{}, false
			}
			if op := n(0, -1); op == 2 || op == 3 {
				c.record(cmd, "mqtt", a(1), n(2, 1883), "")
				return ok(fmt.Sprintf("+UMQTT: %d,1", op)), true
			}
			return ok(fmt.Sprintf("+UMQTT: %d,1", n(0, 0))), true
		case "+UHTTP":
			if !set {
				return result{}, false
			}
			if op := n(1, -1); op == 0 || op == 1 {
				c.record(cmd, "http", a(2), 80, "")
			}
			return ok(), true
		}
	case "fibocom":
		switch cmd.Name {
		case "+MIPCALL":
			if cmd.Op == OpRead {
				return ok("+MIPCALL: 1"), true
			}
			if r, bad := c.notRegistered(); bad {
				return r, true
			}
			return result{after: []string{"+MIPCALL: 10.64.0.2"}}, set
		case "+MIPOPEN":
			if !set {
				return result{}, false
			}
			kind := "tcp"
			if n(4, 0) == 1 {
				kind = "udp"
			}
			c.record(cmd, kind, a(2), n(3, 0), "")
			return result{after: []string{fmt.Sprintf("+MIPOPEN: %d,1", n(0, 1))}}, true
		case "+MIPSEND":
			if !set {
				return result{}, false
			}
			m.traffic.Sent += uint64(len(a(1)) / 2)
			return ok(fmt.Sprintf("+MIPSEND: %d,2048", n(0, 1))), true
		}
	case "huawei":
		switch cmd.Name {
		case "^IPINIT":
			if r, bad := c.notRegistered(); bad {
				return r, true
			}
			return ok(), set
		case "^IPOPEN":
			if !set {
				return result{}, false
			}
			c.record(cmd, strings.ToLower(a(1)), a(2), n(3, 0), "")
			return ok(), true
		case "^IPSEND":
			if !set {
				return result{}, false
			}
			m.traffic.Sent += uint64(len(a(1)))
			return ok(), true
		case "^DSFLOWQRY":
			t := m.traffic
			return ok(fmt.Sprintf("^DSFLOWQRY:00000000,0000000000000000,0000000000000000,00000000,%016X,%016X", t.Sent, t.Received)), cmd.Op == OpAction
		}
	case "nordic":
		switch cmd.Name {
		case "#XSOCKET":
			if !set {
				return result{}, false
			}
			if n(0, 0) == 0 {
				return ok("#XSOCKET: 0,\"closed\""), true
			}
			kind := "tcp"
			proto := 6
			if n(1, 1) == 2 {
				kind, proto = "udp", 17
			}
			m.st.stack.sockKind[0] = kind
			return ok(fmt.Sprintf("#XSOCKET: 0,%d,%d", n(1, 1), proto)), true
		case "#XCONNECT":
			if !set {
				return result{}, false
			}
			kind := m.st.stack.sockKind[0]
			if kind == "" {
				kind = "tcp"
			}
			c.record(cmd, kind, a(0), n(1, 0), "")
			return ok("#XCONNECT: 1"), true
		case "#XSENDTO":
			if !set {
				return result{}, false
			}
			c.record(cmd, "udp", a(0), n(1, 0), "")
			m.traffic.Sent += uint64(len(a(2)))
			return ok(fmt.Sprintf("#XSENDTO: %d", len(a(2)))), true
		case "#XFOTA":
			if !set {
				return result{}, false
			}
			if u := a(1); u != "" {
				h, p := parseURL(u)
				c.record(cmd, "fota", h, p, u)
			}
			return ok(), true
		}
	case "cinterion":
		switch cmd.Name {
		case "^SISS":
			if !set {
				return ok(), cmd.Op == OpRead
			}
			id := n(0, 0)
			if m.st.stack.sis[id] == nil {
				m.st.stack.sis[id] = map[string]string{}
			}
			m.st.stack.sis[id][strings.ToLower(a(1))] = a(2)
			return ok(), true
		case "^SISO":
			if !set {
				return result{}, false
			}
			id := n(0, 0)
			addr := m.st.stack.sis[id]["address"]
			if addr == "" {
				return c.cmeLocked(3), true
			}
			h, p := parseURL(strings.Split(addr, ";")[0])
			kind := strings.TrimPrefix(strings.ToLower(strings.SplitN(addr, ":", 2)[0]), "sock")
			c.record(cmd, kind, h, p, addr)
			return result{after: []string{fmt.Sprintf("^SISW: %d,1", id)}}, true
		case "^SISW":
			if !set {
				return result{}, false
			}
			id, ln := n(0, 0), n(1, 0)
			return result{info: []string{fmt.Sprintf("^SISW: %d,%d,0", id, ln)}, prompt: &prompt{n: ln, raw: false, finish: func(p []byte, cancelled bool) result {
				if !cancelled {
					m.traffic.Sent += uint64(len(p))
				}
				return ok()
			}}}, true
		}
	}
	return result{}, false
}

func (c *channel) quectel(cmd Command, set bool, a func(int) string, n func(int, int) int) (result, bool) {
	m := c.m
	switch cmd.Name {
	case "+QICSGP":
		if set && a(2) != "" {
			cid := n(0, 1)
			if p, found := m.st.pdp[cid]; found {
				p.apn = a(2)
			} else {
				m.st.pdp[cid] = &pdpContext{typ: "IP", apn: a(2)}
			}
		}
		return ok(), set || cmd.Op == OpRead
	case "+QIACT":
		if cmd.Op == OpRead {
			var lines []string
			for _, cid := range sortedKeys(m.st.pdp) {
				if p := m.st.pdp[cid]; p.active {
					lines = append(lines, fmt.Sprintf(`+QIACT: %d,1,1,"%s"`, cid, p.addr))
				}
			}
			return ok(lines...), true
		}
		if r, bad := c.notRegistered(); bad {
			return r, true
		}
		if p, found := m.st.pdp[n(0, 1)]; found {
			p.active, p.addr = true, fmt.Sprintf("10.%d.0.2", 64+n(0, 1))
		}
		return ok(), set
	case "+QIOPEN":
		if !set {
			return result{}, false
		}
		kind := strings.ReplaceAll(strings.ToLower(a(2)), " ", "-")
		c.record(cmd, kind, a(3), n(4, 0), "")
		return result{after: []string{fmt.Sprintf("+QIOPEN: %d,0", n(1, 0))}}, true
	case "+QSSLOPEN":
		if !set {
			return result{}, false
		}
		c.record(cmd, "tls", a(3), n(4, 0), "")
		return result{after: []string{fmt.Sprintf("+QSSLOPEN: %d,0", n(2, 0))}}, true
	case "+QISEND", "+QSSLSEND":
		if !set {
			return result{}, false
		}
		return result{prompt: &prompt{n: n(1, 0), finish: func(p []byte, cancelled bool) result {
			if cancelled {
				return ok()
			}
			m.traffic.Sent += uint64(len(p))
			return result{final: "SEND OK"}
		}}}, true
	case "+QICLOSE", "+QSSLCLOSE", "+QMTDISC", "+QMTCLOSE", "+QFTPCLOSE":
		return ok(), set
	case "+QMTOPEN":
		if cmd.Op == OpRead {
			return ok(), true
		}
		if !set {
			return result{}, false
		}
		c.record(cmd, "mqtt", a(1), n(2, 1883), "")
		return result{after: []string{fmt.Sprintf("+QMTOPEN: %d,0", n(0, 0))}}, true
	case "+QMTCONN":
		if !set {
			return ok(), cmd.Op == OpRead
		}
		m.traffic.Sent += 40
		return result{after: []string{fmt.Sprintf("+QMTCONN: %d,0,0", n(0, 0))}}, true
	case "+QMTPUB":
		if !set {
			return result{}, false
		}
		idx, msgID, topic := n(0, 0), n(1, 0), a(4)
		return result{prompt: &prompt{n: n(5, 0), finish: func(p []byte, cancelled bool) result {
			if cancelled {
				return ok()
			}
			m.traffic.Sent += uint64(len(p) + len(topic) + 4)
			return result{after: []string{fmt.Sprintf("+QMTPUB: %d,%d,0", idx, msgID)}}
		}}}, true
	case "+QHTTPURL":
		if !set {
			return result{}, false
		}
		ln := n(0, 0)
		if ln <= 0 || ln > 2048 {
			return c.cmeLocked(50), true
		}
		return result{prompt: &prompt{raw: true, n: ln, finish: func(p []byte, _ bool) result {
			u := string(p)
			m.st.stack.httpURL = u
			h, port := parseURL(u)
			c.record(Command{Name: "+QHTTPURL", Args: u}, "http", h, port, u)
			return ok()
		}}}, true
	case "+QHTTPGET":
		if m.st.stack.httpURL == "" {
			return c.cmeLocked(3), true
		}
		m.traffic.Sent += uint64(100 + len(m.st.stack.httpURL))
		m.traffic.Received += 512
		return result{after: []string{"+QHTTPGET: 0,200,512"}}, true
	case "+QHTTPPOST":
		if !set {
			return result{}, false
		}
		ln := n(0, 0)
		return result{prompt: &prompt{raw: true, n: ln, finish: func(p []byte, _ bool) result {
			m.traffic.Sent += uint64(len(p) + 100)
			return result{after: []string{"+QHTTPPOST: 0,200,0"}}
		}}}, true
	case "+QFTPOPEN":
		if !set {
			return result{}, false
		}
		c.record(cmd, "ftp", a(0), n(1, 21), "")
		return result{after: []string{"+QFTPOPEN: 0,0"}}, true
	case "+QFOTADL":
		if !set {
			return result{}, false
		}
		u := a(0)
		h, p := parseURL(u)
		c.record(cmd, "fota", h, p, u)
		return result{after: []string{`+QIND: "FOTA","START"`}}, true
	case "+QPING":
		if !set {
			return result{}, false
		}
		c.record(cmd, "ping", a(1), 0, "")
		return result{after: []string{fmt.Sprintf(`+QPING: 0,"%s",32,20,255`, a(1))}}, true
	case "+QIDNSGIP":
		if !set {
			return result{}, false
		}
		c.record(cmd, "dns", a(1), 53, "")
		return result{after: []string{`+QIURC: "dnsgip",0,1,600`, `+QIURC: "dnsgip","203.0.113.10"`}}, true
	case "+QNTP":
		if !set {
			return result{}, false
		}
		c.record(cmd, "ntp", a(1), n(2, 123), "")
		return result{after: []string{`+QNTP: 0,"2026/01/01,00:00:00+00"`}}, true
	case "+QIOTCFG":
		if set && strings.EqualFold(a(0), "server") && len(a(2)) > 0 {
			h, p := parseURL(a(2))
			c.record(cmd, "cloud", h, p, a(2))
		}
		return ok(), set || cmd.Op == OpRead
	case "+QGDCNT":
		switch cmd.Op {
		case OpRead:
			return ok(fmt.Sprintf("+QGDCNT: %d,%d", m.traffic.Sent, m.traffic.Received)), true
		case OpSet:
			if n(0, 1) == 0 {
				m.traffic = Traffic{}
			}
			return ok(), true
		case OpTest:
			return ok("+QGDCNT: (0,1)"), true
		}
	}
	return result{}, false
}
