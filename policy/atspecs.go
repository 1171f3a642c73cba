package policy

// The commands the AT firewall governs, by vendor. Parameter positions are
// 0-based indexes into the set command's comma-separated parameters. Read
// (AT+X?) and test (AT+X=?) forms never reach these checks.
//
// Sources (public manuals by title, and driver code quoting them):
//   Quectel: "EC2x&EG2x&EG9x&EM05 Series TCP(IP) Application Note"
//     (QIOPEN, QPING, QIDNSGIP, QNTP, QICSGP), "… SSL Application Note"
//     (QSSLOPEN), "… MQTT Application Note" (QMTOPEN), "… HTTP(S)
//     Application Note" (QHTTPURL), "… FTP(S) Application Note"
//     (QFTPOPEN), "… DFOTA User Guide" (QFOTADL), "QuecThing AT Commands
//     Manual" (QIOTCFG, QIOTREG, QIOTOTAREQ), "EC25 AT Commands Manual"
//     (QCFG "usbcfg": vid,pid,diag,nmea,at,modem,net,adb,uac); ADB unlock
//     (QADBKEY, QSECCFG "adb_auth") per public community wikis
//     (iamromulan/cellular-modem-wiki).
//   SIMCom: "SIM7500_SIM7600 Series AT Command Manual" (CIPOPEN, CIPSEND,
//     SERVERSTART, CMQTTCONNECT, HTTPPARA, CHTTPACT, CHTTPSOPSE, CCHOPEN,
//     CFTPSLOGIN, CFTPSERV, CUSBADB), "SIM800 Series AT Command Manual"
//     (CIPSTART, CSTT, SAPBR, FTPSERV), "SIM7070_SIM7080_SIM7090 Series AT
//     Command Manual" (CAOPEN, SMCONF, SHCONF, CNCFG), "A76XX Series AT
//     Command Manual" (CFOTA, CSCFOTA, CAPFOTA; argument order not
//     verified, so every set/action form is treated as FOTA).
//   Telit: "LE910Cx AT Commands Reference Guide" (#SD, #SKTD, #SKTSET,
//     #SSLD, #FTPOPEN, #HTTPCFG, #MQCFG, #PING, #QDNS, #NTP, #OTAUP*,
//     #LWM2MENA), "Running AT Commands Remotely Application Note
//     80000NT10029a" (#SMSATRUN, #TCPATRUNCFG, #TCPATRUND, #TCPATRUNL).
//   u-blox: "SARA-R4 series AT commands manual" and "u-blox cellular
//     modules AT commands manual UBX-13002752" (USOCO, USOST, UMQTT,
//     UMQTTNV, UHTTP, UFTP, UPING, UDNSRN, UFWINSTALL, UFWUPD).
//   Fibocom: "L610 AT Commands Manual" (MIPCALL, MIPOPEN); China Mobile
//     OneMO "ML307R AT Command Manual" (MIPOPEN with "TCP"/"UDP" second:
//     the host and port sit at the same positions 2 and 3 in both
//     dialects; MQTTCONN); ADBDEBUG from a public module attack-surface
//     talk (hedged).
//   Sierra Wireless: "AirPrime HL78xx AT Commands Interface Guide"
//     (KTCPCFG, KUDPSND, KHTTPCFG, KFTPCFG, WDSS); !ENTERCND from public
//     EM7455 notes.
//   Nordic: nRF Connect SDK "Serial LTE Modem" AT command documentation
//     (#XCONNECT, #XSENDTO, #XTCPCLI, #XUDPCLI, #XTCPSVR, #XUDPSVR,
//     #XMQTTCON, #XHTTPCCON, #XFTP, #XTFTP, #XPING, #XGETADDRINFO, #XFOTA,
//     #XNRFCLOUD).
//   Huawei: "HUAWEI ME909s Series LTE Module AT Command Interface
//     Specification" (^IPOPEN, ^IPINIT, ^NDISDUP).
//   Thales/Cinterion: "Cinterion EHS6 AT Command Set" (^SISS "address",
//     ^SICS "apn", ^SJAM).
//   Sequans: Monarch AT commands (+SQNSD, Telit-style order).
//   ZTE: +ZIPSETUP as used by public driver code (hedged).
//   3GPP TS 27.007: +CGDCONT §10.1.1, +COPS §7.3, +CPOL §7.19, +CMUX §5.7.

type atSpec struct {
	name  string
	check func(p *Policy, name string, c atCmd) verdict
}

// atSpecs is keyed by the upper-case command name; it is read-only after
// package initialisation.
var atSpecs = buildATSpecs()

// arg returns parameter i of c.
func arg(c atCmd, i int) string {
	v, _, _ := argAt(c.args, i)
	return v
}

// portAt returns the port in parameter i, def when it is absent or empty,
// -2 when it is not a number (then only entries without ports can match).
func portAt(c atCmd, i, def int) int {
	v, _, ok := argAt(c.args, i)
	if !ok || v == "" {
		return def
	}
	if n, ok := atoiArg(v); ok {
		return n
	}
	return -2
}

// hostPort checks a destination given as host in parameter hi and port in
// parameter pi (pi < 0: no port parameter; def is used).
func hostPort(hi, pi, def int, what string) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet {
			return verdict{}
		}
		port := def
		if pi >= 0 {
			port = portAt(c, pi, def)
		}
		return p.destVerdict(name, what, arg(c, hi), port)
	}
}

// urlAt checks a destination given as a URL in parameter ui.
func urlAt(ui, def int, what string) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet {
			return verdict{}
		}
		u := arg(c, ui)
		if u == "" {
			return p.defaultVerdict(name, what+" without a destination on the line")
		}
		h, port := urlHostPort(u, def)
		return p.destVerdict(name, what, h, port)
	}
}

// fota: every set or action form downloads or installs firmware.
func fota(what string) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict { return p.fotaVerdict(name, what) }
}

// debug: every set or action form opens a back door.
func debug(what string) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict { return p.debugVerdict(name, what) }
}

// enabling applies inner only when parameter i is one of on (the command
// switches something on); switching off always passes.
func enabling(i int, on []string, inner func(*Policy, string, atCmd) verdict) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet {
			return verdict{}
		}
		v := arg(c, i)
		for _, o := range on {
			if v == o {
				return inner(p, name, c)
			}
		}
		return verdict{}
	}
}

// stored: the command connects to a destination configured earlier or kept
// in the module's non-volatile memory, which the firewall cannot see.
func stored(what string) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict { return p.defaultVerdict(name, what) }
}

// subcommand applies inner when parameter 0 equals key (case-insensitive),
// as in AT+QCFG="usbcfg",… or AT+HTTPPARA="URL",….
func subcommand(key string, inner func(*Policy, string, atCmd) verdict) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet || !equalFoldASCII(arg(c, 0), key) {
			return verdict{}
		}
		return inner(p, name, c)
	}
}

// apnAt checks the APN in parameter i; a set command with fewer parameters
// (e.g. AT+CGDCONT=1, which undefines context 1) passes.
func apnAt(i int) func(*Policy, string, atCmd) verdict {
	return func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet {
			return verdict{}
		}
		v, _, ok := argAt(c.args, i)
		if !ok {
			return verdict{}
		}
		return p.apnVerdict(name, v)
	}
}

func listenerVerdict(p *Policy, name string) verdict {
	return p.defaultVerdict(name, "opens a listening socket on the module (inbound exposure)")
}

var on1 = []string{"1"}

func buildATSpecs() map[string]*atSpec {
	m := map[string]*atSpec{}
	spec := func(name string, check func(p *Policy, name string, c atCmd) verdict) {
		m[name] = &atSpec{name: name, check: check}
	}

	// ---- 3GPP TS 27.007 and V.250 ----
	spec("+CGDCONT", apnAt(2)) // §10.1.1 +CGDCONT=<cid>,<PDP_type>,<APN>,…
	spec("+COPS", func(p *Policy, name string, c atCmd) verdict {
		// §7.3 +COPS=<mode>[,<format>[,<oper>[,<AcT>]]]; mode 1 manual,
		// 4 manual/automatic name an operator; 0, 2, 3 do not.
		if c.op != opSet {
			return verdict{}
		}
		switch arg(c, 0) {
		case "1", "4":
			return p.plmnVerdict(name, arg(c, 1), arg(c, 2))
		}
		return verdict{}
	})
	spec("+CPOL", func(p *Policy, name string, c atCmd) verdict {
		// §7.19 +CPOL=[<index>][,<format>[,<oper>…]]: writes the SIM's
		// preferred PLMN list.
		if c.op != opSet {
			return verdict{}
		}
		return p.plmnVerdict(name, arg(c, 1), arg(c, 2))
	})
	spec("+CMUX", func(p *Policy, name string, c atCmd) verdict {
		// §5.7: after +CMUX the port carries 27.010 frames the firewall
		// does not parse.
		if c.op != opSet {
			return verdict{}
		}
		return p.debugVerdict(name, "switches the port to 27.010 multiplexing, hiding later commands from the AT firewall")
	})

	// ---- Quectel ----
	spec("+QIOPEN", func(p *Policy, name string, c atCmd) verdict {
		// +QIOPEN=<contextID>,<connectID>,<service_type>,<IP/domain>,<remote_port>[,<local_port>[,<access_mode>]]
		if c.op != opSet {
			return verdict{}
		}
		st := arg(c, 2)
		if equalFoldASCII(st, "TCP LISTENER") || equalFoldASCII(st, "UDP SERVICE") || equalFoldASCII(st, "TCP INCOMING") {
			return listenerVerdict(p, name)
		}
		return p.destVerdict(name, "opens a "+kindWord(st)+" socket to", arg(c, 3), portAt(c, 4, -2))
	})
	spec("+QSSLOPEN", hostPort(3, 4, -2, "opens a TLS socket to"))
	spec("+QMTOPEN", hostPort(1, 2, 1883, "opens an MQTT connection to"))
	spec("+QFTPOPEN", hostPort(0, 1, 21, "opens an FTP session to"))
	spec("+QPING", hostPort(1, -1, 0, "pings"))
	spec("+QIDNSGIP", hostPort(1, -1, 0, "resolves"))
	spec("+QNTP", hostPort(1, 2, 123, "synchronises time with"))
	spec("+QHTTPURL", func(p *Policy, name string, c atCmd) verdict {
		if c.op != opSet {
			return verdict{}
		}
		return p.defaultVerdict(name, "sends its URL in data mode after CONNECT, which this check does not see")
	})
	spec("+QFOTADL", fota("downloads and installs module firmware"))
	spec("+QIOTOTAREQ", fota("requests a firmware/software update from the QuecThing cloud"))
	spec("+QIOTCFG", subcommand("server", func(p *Policy, name string, c atCmd) verdict {
		// +QIOTCFG="server",<server_type>,<server_URL>
		if _, _, ok := argAt(c.args, 2); !ok {
			return verdict{}
		}
		return urlAt(2, 1883, "sets the QuecThing cloud server to")(p, name, c)
	}))
	spec("+QIOTREG", enabling(0, []string{"1", "2"}, stored("registers the QuecThing cloud agent with the server stored in the module")))
	spec("+QICSGP", apnAt(2))
	spec("+QCFG", subcommand("usbcfg", func(p *Policy, name string, c atCmd) verdict {
		// +QCFG="usbcfg",<vid>,<pid>,<diag>,<nmea>,<at>,<modem>,<net>,<adb>[,<uac>]
		if argCount(c.args) == 1 {
			return verdict{} // the query form
		}
		switch adb, _, ok := argAt(c.args, 8); {
		case !ok:
			return p.debugVerdict(name, "rewrites the USB composition and the ADB flag cannot be found")
		case adb != "0":
			return p.debugVerdict(name, "enables the ADB interface (debug shell on the module)")
		}
		return verdict{}
	}))
	spec("+QADBKEY", debug("unlocks ADB on the module"))
	spec("+QSECCFG", subcommand("adb_auth", debug("changes ADB authentication")))
	spec("+QFASTBOOT", debug("reboots the module into fastboot"))
	spec("+QLINUXCMD", debug("runs a shell command on the module's Linux"))

	// ---- SIMCom ----
	spec("+CIPOPEN", func(p *Policy, name string, c atCmd) verdict {
		// +CIPOPEN=<link_num>,"TCP"|"UDP",<serverIP>,<serverPort>[,<localPort>]
		if c.op != opSet {
			return verdict{}
		}
		if equalFoldASCII(arg(c, 1), "UDP") && arg(c, 2) == "" {
			return verdict{} // UDP socket without a peer: each +CIPSEND names one
		}
		return p.destVerdict(name, "opens a "+kindWord(arg(c, 1))+" socket to", arg(c, 2), portAt(c, 3, -2))
	})
	spec("+CIPSEND", func(p *Policy, name string, c atCmd) verdict {
		// +CIPSEND=<link_num>,<length>[,<serverIP>,<serverPort>] (UDP)
		if c.op != opSet || arg(c, 2) == "" {
			return verdict{}
		}
		return p.destVerdict(name, "sends a UDP datagram to", arg(c, 2), portAt(c, 3, -2))
	})
	spec("+CIPSTART", func(p *Policy, name string, c atCmd) verdict {
		// +CIPSTART=<mode>,<addr>,<port> or, with +CIPMUX=1, +CIPSTART=<n>,<mode>,<addr>,<port>
		if c.op != opSet {
			return verdict{}
		}
		if _, isNum := atoiArg(arg(c, 0)); isNum {
			return p.destVerdict(name, "opens a "+kindWord(arg(c, 1))+" connection to", arg(c, 2), portAt(c, 3, -2))
		}
		return p.destVerdict(name, "opens a "+kindWord(arg(c, 0))+" connection to", arg(c, 1), portAt(c, 2, -2))
	})
	spec("+CAOPEN", hostPort(3, 4, -2, "opens a connection to"))
	spec("+SERVERSTART", func(p *Policy, name string, c atCmd) verdict { return listenerVerdict(p, name) })
	spec("+CMQTTCONNECT", urlAt(1, 1883, "connects MQTT to"))
	spec("+HTTPPARA", subcommand("URL", urlAt(1, 80, "sets the HTTP URL to")))
	spec("+CHTTPACT", hostPort(0, 1, 80, "sends an HTTP request to"))
	spec("+CHTTPSOPSE", hostPort(0, 1, 443, "opens an HTTPS session to"))
	spec("+CCHOPEN", hostPort(1, 2, -2, "opens a TLS session to"))
	spec("+CFTPSLOGIN", hostPort(0, 1, 21, "logs in to the FTP server"))
	spec("+CFTPSERV", hostPort(0, -1, portIgnored, "sets the FTP server to"))
	spec("+FTPSERV", hostPort(0, -1, portIgnored, "sets the FTP server to"))
	spec("+SMCONF", subcommand("URL", hostPort(1, 2, 1883, "sets the MQTT broker to")))
	spec("+SHCONF", subcommand("URL", urlAt(1, 80, "sets the HTTP URL to")))
	spec("+CNCFG", apnAt(2))
	spec("+CSTT", apnAt(0))
	spec("+SAPBR", func(p *Policy, name string, c atCmd) verdict {
		// +SAPBR=3,<cid>,"APN",<apn>
		if c.op != opSet || arg(c, 0) != "3" || !equalFoldASCII(arg(c, 2), "APN") {
			return verdict{}
		}
		return p.apnVerdict(name, arg(c, 3))
	})
	spec("+CFOTA", fota("downloads module firmware"))
	spec("+LFOTA", fota("installs module firmware from a local file"))
	spec("+CSCFOTA", fota("runs a SIMCom cloud firmware update"))
	spec("+CAPFOTA", fota("configures a firmware update"))
	spec("+CFOTASWITCH", enabling(0, on1, fota("switches automatic firmware updates on")))
	spec("+CUSBADB", enabling(0, on1, debug("enables the ADB interface (debug shell on the module)")))

	// ---- Telit ----
	spec("#SD", hostPort(3, 2, -2, "opens a socket to"))      // #SD=<connId>,<txProt>,<rPort>,<IPaddr>…
	spec("#SKTD", hostPort(2, 1, -2, "opens a socket to"))    // #SKTD=<type>,<rPort>,<IPaddr>…
	spec("#SKTSET", hostPort(2, 1, -2, "sets the socket to")) // then #SKTOP
	spec("#SSLD", hostPort(2, 1, -2, "opens a TLS socket to"))
	spec("#FTPOPEN", urlAt(0, 21, "opens an FTP session to")) // #FTPOPEN="<server[:port]>",…
	spec("#HTTPCFG", func(p *Policy, name string, c atCmd) verdict {
		// #HTTPCFG=<prof_id>[,<server_address>[,<server_port>…]]
		if c.op != opSet || arg(c, 1) == "" {
			return verdict{}
		}
		return p.destVerdict(name, "sets the HTTP server to", arg(c, 1), portAt(c, 2, 80))
	})
	spec("#MQCFG", hostPort(1, 2, 1883, "sets the MQTT broker to")) // #MQCFG=<inst>,<host>,<port>,<cid>…
	spec("#PING", hostPort(0, -1, 0, "pings"))
	spec("#QDNS", hostPort(0, -1, 0, "resolves"))
	spec("#NTP", hostPort(0, 1, 123, "synchronises time with"))
	spec("#OTAUP", fota("installs module firmware"))
	spec("#OTAUPW", fota("receives module firmware in data mode"))
	spec("#FTPGETOTA", fota("downloads module firmware over FTP"))
	spec("#LWM2MENA", enabling(0, on1, stored("enables the LwM2M client (Telit OneEdge) with the server stored in the module")))
	spec("#SMSATRUN", enabling(0, on1, debug("enables running AT commands received by SMS")))
	spec("#TCPATRUND", enabling(0, on1, debug("enables running AT commands received over TCP")))
	spec("#TCPATRUNL", enabling(0, on1, debug("enables a TCP listener that runs AT commands")))
	spec("#TCPATRUNCFG", debug("configures running AT commands received over TCP"))

	// ---- u-blox ----
	spec("+USOCO", hostPort(1, 2, -2, "connects a socket to"))
	spec("+USOST", hostPort(1, 2, -2, "sends a UDP datagram to"))
	spec("+UMQTT", func(p *Policy, name string, c atCmd) verdict {
		// +UMQTT=2,<server_name>[,<port>] / +UMQTT=3,<IP>[,<port>]; the port
		// may also be set alone with op 1, so without one only the host is checked.
		if c.op != opSet {
			return verdict{}
		}
		switch arg(c, 0) {
		case "2", "3":
			return p.destVerdict(name, "sets the MQTT broker to", arg(c, 1), portAt(c, 2, portIgnored))
		}
		return verdict{}
	})
	spec("+UMQTTNV", enabling(0, on1, stored("loads an MQTT profile from the module's NVM")))
	spec("+UHTTP", func(p *Policy, name string, c atCmd) verdict {
		// +UHTTP=<profile>,<op_code>,<param>: 0 server IP, 1 server name
		// (port set separately with op 5: only the host is checked).
		if c.op != opSet {
			return verdict{}
		}
		switch arg(c, 1) {
		case "0", "1":
			return p.destVerdict(name, "sets the HTTP server to", arg(c, 2), portIgnored)
		}
		return verdict{}
	})
	spec("+UFTP", func(p *Policy, name string, c atCmd) verdict {
		// +UFTP=<op_code>,<param>: 0 server IP, 1 server name.
		if c.op != opSet {
			return verdict{}
		}
		switch arg(c, 0) {
		case "0", "1":
			return p.destVerdict(name, "sets the FTP server to", arg(c, 1), portIgnored)
		}
		return verdict{}
	})
	spec("+UPING", hostPort(0, -1, 0, "pings"))
	spec("+UDNSRN", hostPort(1, -1, 0, "resolves"))
	spec("+UFWINSTALL", fota("installs module firmware"))
	spec("+UFWUPD", fota("starts a module firmware update"))

	// ---- Fibocom and China Mobile OneMO ----
	spec("+MIPOPEN", hostPort(2, 3, -2, "opens a socket to"))
	spec("+MIPCALL", func(p *Policy, name string, c atCmd) verdict {
		// +MIPCALL=1[,<apn>…] activates the module's own PDP context.
		if c.op != opSet || arg(c, 0) != "1" {
			return verdict{}
		}
		if _, _, ok := argAt(c.args, 1); !ok {
			return verdict{}
		}
		return p.apnVerdict(name, arg(c, 1))
	})
	spec("+MQTTCONN", hostPort(1, 2, 1883, "connects MQTT to"))
	spec("+ADBDEBUG", enabling(0, on1, debug("enables ADB debugging on the module")))

	// ---- Sierra Wireless ----
	spec("+KTCPCFG", func(p *Policy, name string, c atCmd) verdict {
		// +KTCPCFG=<cnx_cnf>,<mode>,<remote-name/ip>,<tcp_remote_port>…; mode 1 = server
		if c.op != opSet {
			return verdict{}
		}
		if arg(c, 1) == "1" {
			return listenerVerdict(p, name)
		}
		return p.destVerdict(name, "sets a TCP connection to", arg(c, 2), portAt(c, 3, -2))
	})
	spec("+KUDPSND", hostPort(1, 2, -2, "sends a UDP datagram to"))
	spec("+KHTTPCFG", hostPort(1, 2, 80, "sets the HTTP server to"))
	spec("+KFTPCFG", hostPort(1, 4, 21, "sets the FTP server to"))
	spec("+WDSS", stored("starts a session with the AirVantage device-management server"))
	spec("!ENTERCND", debug("unlocks the module's restricted commands"))

	// ---- Nordic nRF91 Serial LTE Modem ----
	spec("#XCONNECT", hostPort(0, 1, -2, "connects a socket to"))
	spec("#XSENDTO", hostPort(0, 1, -2, "sends a datagram to"))
	opOpen := func(hi, pi int, what string) func(*Policy, string, atCmd) verdict {
		return enabling(0, []string{"1", "2"}, hostPort(hi, pi, -2, what))
	}
	spec("#XTCPCLI", opOpen(1, 2, "connects a TCP client to"))
	spec("#XUDPCLI", opOpen(1, 2, "connects a UDP client to"))
	spec("#XHTTPCCON", opOpen(1, 2, "connects HTTP to"))
	spec("#XTCPSVR", enabling(0, []string{"1", "2", "3", "4"}, func(p *Policy, name string, c atCmd) verdict { return listenerVerdict(p, name) }))
	spec("#XUDPSVR", enabling(0, []string{"1", "2", "3", "4"}, func(p *Policy, name string, c atCmd) verdict { return listenerVerdict(p, name) }))
	spec("#XMQTTCON", enabling(0, []string{"1", "2"}, func(p *Policy, name string, c atCmd) verdict {
		// #XMQTTCON=<op>,<client_id>,<user>,<pw>,<url>,<port>[,<sec_tag>] (newer) or
		// #XMQTTCON=<op>,<user>,<pw>,<url>,<port>[,<sec_tag>] (older, client id in #XMQTTCFG):
		// the url is quoted, the port is not.
		if v, q, _ := argAt(c.args, 4); !q && v != "" {
			return p.destVerdict(name, "connects MQTT to", arg(c, 3), portAt(c, 4, -2))
		}
		return p.destVerdict(name, "connects MQTT to", arg(c, 4), portAt(c, 5, -2))
	}))
	spec("#XFTP", subcommand("open", hostPort(3, 4, 21, "opens an FTP session to")))
	spec("#XTFTP", hostPort(1, 2, 69, "transfers a file by TFTP with"))
	spec("#XPING", hostPort(0, -1, 0, "pings"))
	spec("#XGETADDRINFO", hostPort(0, -1, 0, "resolves"))
	spec("#XFOTA", enabling(0, []string{"1", "2", "3"}, fota("downloads firmware")))
	spec("#XNRFCLOUD", enabling(0, on1, stored("connects to nRF Cloud")))

	// ---- Huawei ----
	spec("^IPOPEN", hostPort(2, 3, -2, "opens a socket to"))
	spec("^IPINIT", apnAt(0))
	spec("^NDISDUP", func(p *Policy, name string, c atCmd) verdict {
		// ^NDISDUP=<cid>,<connect>[,<APN>…]
		if c.op != opSet || arg(c, 1) != "1" {
			return verdict{}
		}
		if _, _, ok := argAt(c.args, 2); !ok {
			return verdict{}
		}
		return p.apnVerdict(name, arg(c, 2))
	})

	// ---- Thales / Cinterion ----
	spec("^SISS", func(p *Policy, name string, c atCmd) verdict {
		// ^SISS=<srvProfileId>,"address","socktcp://host:port;…"
		if c.op != opSet || !equalFoldASCII(arg(c, 1), "address") {
			return verdict{}
		}
		return urlAt(2, -2, "sets the service address to")(p, name, c)
	})
	spec("^SICS", func(p *Policy, name string, c atCmd) verdict {
		// ^SICS=<conProfileId>,"apn",<apn>
		if c.op != opSet || !equalFoldASCII(arg(c, 1), "apn") {
			return verdict{}
		}
		return p.apnVerdict(name, arg(c, 2))
	})
	spec("^SJAM", debug("installs or starts a Java application on the module"))

	// ---- Sequans, ZTE ----
	spec("+SQNSD", hostPort(3, 2, -2, "opens a socket to"))
	spec("+ZIPSETUP", hostPort(1, 2, -2, "opens a TCP connection to"))
	return m
}

func kindWord(serviceType string) string {
	switch {
	case equalFoldASCII(serviceType, "TCP"):
		return "TCP"
	case equalFoldASCII(serviceType, "UDP"):
		return "UDP"
	case serviceType == "0":
		return "TCP"
	case serviceType == "1":
		return "UDP"
	}
	return "network"
}
