package policy

import (
	"strings"
	"testing"
)

// fwPolicy is the example plus entries exercising every matcher.
const fwPolicy = `version: 1
network:
  apns: [iot.example]
  deny_mcc: [460, 461]
module_stack:
  default: deny
  allow:
    - host: broker.example.com
      ports: [8883]
    - cidr: 198.51.100.0/24
    - host: "*.ntp.example"
    - host: 2001:db8::7
      ports: [443]
  fota: deny
`

func TestCheckATLine(t *testing.T) {
	p := mustParse(t, fwPolicy)
	type row struct {
		line   string
		action Action
		rule   string // "" for pass-through
		inWhy  string
	}
	for _, tc := range []row{
		// Pass-through: nothing the policy governs.
		{"AT", Allow, "", ""},
		{"", Allow, "", ""},
		{"AT+CSQ", Allow, "", ""},
		{"at+csq\r", Allow, "", ""},
		{"ATE0V1Q0", Allow, "", ""},
		{"AT+CGMI;+CGMM;+CGMR", Allow, "", ""},
		{"ATD*99#", Allow, "", ""},
		{"ATS0=1", Allow, "", ""},
		{"AT&F0", Allow, "", ""},
		{`AT+CMGS="+491701234567"`, Allow, "", ""},
		// Read and test forms always pass.
		{"AT+QIOPEN=?", Allow, "", ""},
		{"AT+QMTOPEN?", Allow, "", ""},
		{"AT+QADBKEY?", Allow, "", ""},
		{"AT+CUSBADB?", Allow, "", ""},
		{`AT+QCFG="usbcfg"`, Allow, "", ""},

		// Quectel.
		{`AT+QIOPEN=1,0,"TCP","broker.example.com",8883,0,1`, Allow, "module_stack.allow[0]", `+QIOPEN opens a TCP socket to broker.example.com:8883: allowed by module_stack.allow[0] (broker.example.com ports 8883)`},
		{`AT+QIOPEN=1,0,"TCP","BROKER.example.com.",8883,0,1`, Allow, "module_stack.allow[0]", ""},
		{`AT+QIOPEN=1,0,"TCP","broker.example.com",1883,0,1`, Deny, "module_stack.default", "broker.example.com:1883: no module_stack.allow entry matches; module_stack.default is deny"},
		{`AT+QIOPEN=1,0,"UDP","198.51.100.9",53`, Allow, "module_stack.allow[1]", ""},
		{`AT+QIOPEN=1,0,"TCP","203.0.113.5",8883,0,1`, Deny, "module_stack.default", ""},
		{`AT+QIOPEN=1,1,"TCP LISTENER","127.0.0.1",0,2020,0`, Deny, "module_stack.default", "listening socket"},
		{`AT+QSSLOPEN=1,1,4,"broker.example.com",8883,0`, Allow, "module_stack.allow[0]", ""},
		{`AT+QMTOPEN=0,"broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT+QMTOPEN=0,"iot-south.quectel.com",1883`, Deny, "module_stack.default", "iot-south.quectel.com:1883"},
		{`AT+QMTCONN=0,"client1"`, Allow, "", ""},
		{`AT+QHTTPURL=40,80`, Deny, "module_stack.default", "data mode"},
		{`AT+QFTPOPEN="ftp.example.net",21`, Deny, "module_stack.default", ""},
		{`AT+QNTP=1,"pool.ntp.example"`, Allow, "module_stack.allow[2]", ""},
		{`AT+QNTP=1,"ntp.example"`, Deny, "module_stack.default", ""}, // *.ntp.example is below, not at
		{`AT+QPING=1,"198.51.100.1"`, Allow, "module_stack.allow[1]", ""},
		{`AT+QIDNSGIP=1,"exfil.attacker.example"`, Deny, "module_stack.default", "resolves exfil.attacker.example"},
		{`AT+QFOTADL="https://fw.example.com/ec25.bin"`, Deny, "module_stack.fota", "module_stack.fota is deny"},
		{`AT+QIOTCFG="server",1,"iot-south.quectel.com:1883"`, Deny, "module_stack.default", ""},
		{`AT+QIOTCFG="productinfo","pk","ps"`, Allow, "", ""},
		{`AT+QIOTREG=2`, Deny, "module_stack.default", "QuecThing"},
		{`AT+QIOTREG=0`, Allow, "", ""},
		{`AT+QICSGP=1,1,"iot.example","","",1`, Allow, "network.apns", ""},
		{`AT+QICSGP=1,1,"internet","","",1`, Deny, "network.apns", "internet"},
		{`AT+QCFG="usbcfg",0x2C7C,0x125,1,1,1,1,1,1,0`, Deny, "module_stack.debug", "ADB"},
		{`AT+QCFG="usbcfg",0x2C7C,0x125,1,1,1,1,1,0,0`, Allow, "", ""},
		{`AT+QCFG="usbcfg",0x2C7C,0x125`, Deny, "module_stack.debug", "cannot be found"},
		{`AT+QCFG="nwscanmode",3`, Allow, "", ""},
		{`AT+QADBKEY="0x1234"`, Deny, "module_stack.debug", ""},
		{`AT+QSECCFG="adb_auth",""`, Deny, "module_stack.debug", ""},
		{`AT+QFASTBOOT`, Deny, "module_stack.debug", ""},
		{`AT+QLINUXCMD="start-stop-daemon -S -b -a /sbin/adbd"`, Deny, "module_stack.debug", ""},

		// SIMCom.
		{`AT+CIPOPEN=0,"TCP","203.0.113.9",443`, Deny, "module_stack.default", ""},
		{`AT+CIPOPEN=0,"TCP","198.51.100.20",443`, Allow, "module_stack.allow[1]", ""},
		{`AT+CIPOPEN=1,"UDP",,,8080`, Allow, "", ""},
		{`AT+CIPSEND=1,5,"203.0.113.1",53`, Deny, "module_stack.default", "UDP datagram"},
		{`AT+CIPSTART="TCP","broker.example.com","8883"`, Allow, "module_stack.allow[0]", ""},
		{`AT+CIPSTART=2,"UDP","203.0.113.1",123`, Deny, "module_stack.default", ""},
		{`AT+CAOPEN=0,0,"TCP","139.59.180.17",8080`, Deny, "module_stack.default", ""},
		{`AT+CMQTTCONNECT=0,"tcp://broker.example.com:8883",60,1`, Allow, "module_stack.allow[0]", ""},
		{`AT+CMQTTCONNECT=0,"tcp://broker.example.com",60,1`, Deny, "module_stack.default", "broker.example.com:1883"},
		{`AT+HTTPPARA="URL","https://broker.example.com:8883/x"`, Allow, "module_stack.allow[0]", ""},
		{`AT+HTTPPARA="URL","http://www.rightwt.com/up"`, Deny, "module_stack.default", "www.rightwt.com:80"},
		{`AT+HTTPPARA="CID",1`, Allow, "", ""},
		{`AT+CHTTPACT="www.example.org",80`, Deny, "module_stack.default", ""},
		{`AT+CCHOPEN=0,"broker.example.com",8883,2`, Allow, "module_stack.allow[0]", ""},
		{`AT+CFTPSLOGIN="ftp.example.net",21,"u","p",0`, Deny, "module_stack.default", ""},
		{`AT+FTPSERV="198.51.100.4"`, Allow, "module_stack.allow[1]", ""},
		{`AT+CGDCONT=1,"IP","CMNET"`, Deny, "network.apns", "CMNET"},
		{`AT+CNCFG=0,1,"iot.example"`, Allow, "network.apns", ""},
		{`AT+SAPBR=3,1,"APN","internet"`, Deny, "network.apns", ""},
		{`AT+SAPBR=3,1,"CONTYPE","GPRS"`, Allow, "", ""},
		{`AT+CFOTA=1,1,"http://fota.example/x.bin",,`, Deny, "module_stack.fota", ""},
		{`AT+CFOTASWITCH=1`, Deny, "module_stack.fota", ""},
		{`AT+CFOTASWITCH=0`, Allow, "", ""},
		{`AT+CUSBADB=1,1`, Deny, "module_stack.debug", "ADB"},
		{`AT+CUSBADB=0`, Allow, "", ""},

		// Telit (port before host).
		{`AT#SD=1,0,8883,"broker.example.com",0,0,1`, Allow, "module_stack.allow[0]", ""},
		{`AT#SD=1,0,80,"broker.example.com"`, Deny, "module_stack.default", "broker.example.com:80"},
		{`AT#SKTD=0,80,"www.telit.net",0,0`, Deny, "module_stack.default", "www.telit.net:80"},
		{`AT#SSLD=1,8883,"broker.example.com",0,1`, Allow, "module_stack.allow[0]", ""},
		{`AT#FTPOPEN="ftp.example.net:2121","u","p",1`, Deny, "module_stack.default", "ftp.example.net:2121"},
		{`AT#HTTPCFG=0,"198.51.100.80",8080`, Allow, "module_stack.allow[1]", ""},
		{`AT#MQCFG=1,"broker.example.com",8883,1`, Allow, "module_stack.allow[0]", ""},
		{`AT#MQCFG=1,"mqtt.example.org",1883,1`, Deny, "module_stack.default", ""},
		{`AT#LWM2MENA=1`, Deny, "module_stack.default", "LwM2M"},
		{`AT#LWM2MENA=0`, Allow, "", ""},
		{`AT#SMSATRUN=1`, Deny, "module_stack.debug", "SMS"},
		{`AT#SMSATRUN=0`, Allow, "", ""},
		{`AT#TCPATRUNCFG=1,2,1024,1024,"203.0.113.1"`, Deny, "module_stack.debug", ""},
		{`AT#TCPATRUND=1`, Deny, "module_stack.debug", ""},
		{`AT#TCPATRUNL=1`, Deny, "module_stack.debug", ""},
		{`AT#OTAUPW`, Deny, "module_stack.fota", ""},
		{`AT#SGACT=1,1`, Allow, "", ""},

		// u-blox.
		{`AT+USOCR=6`, Allow, "", ""},
		{`AT+USOCO=0,"198.51.100.5",5000`, Allow, "module_stack.allow[1]", ""},
		{`AT+USOCO=0,"203.0.113.5",5000`, Deny, "module_stack.default", ""},
		{`AT+USOST=0,"203.0.113.5",53,4`, Deny, "module_stack.default", ""},
		{`AT+UMQTT=2,"broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT+UMQTT=2,"broker.example.com"`, Allow, "module_stack.allow[0]", ""}, // port set apart: host only
		{`AT+UMQTT=0,"client-id"`, Allow, "", ""},
		{`AT+UMQTTNV=1`, Deny, "module_stack.default", "NVM"},
		{`AT+UHTTP=0,1,"www.example.org"`, Deny, "module_stack.default", ""},
		{`AT+UHTTP=0,5,8080`, Allow, "", ""},

		// Fibocom and China Mobile OneMO: the same positions in both dialects.
		{`AT+MIPOPEN=1,0,"203.0.113.7",5000,0`, Deny, "module_stack.default", "203.0.113.7:5000"},
		{`AT+MIPOPEN=0,"TCP","broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT+MIPCALL=1,"iot.example"`, Allow, "network.apns", ""},
		{`AT+MIPCALL=1,"cmnet"`, Deny, "network.apns", ""},
		{`AT+MIPCALL=0`, Allow, "", ""},
		{`AT+ADBDEBUG=1`, Deny, "module_stack.debug", ""},

		// Sierra, Nordic, Huawei, Cinterion, Sequans.
		{`AT+KTCPCFG=1,0,"broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT+KTCPCFG=1,1,,5000`, Deny, "module_stack.default", "listening"},
		{`AT!ENTERCND="A710"`, Deny, "module_stack.debug", ""},
		{`AT#XSOCKET=1,1,0`, Allow, "", ""},
		{`AT#XCONNECT="broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT#XCONNECT="example.com",80`, Deny, "module_stack.default", ""},
		{`AT#XMQTTCON=1,"MyMQTT-Client-ID","","","mqtt.server.com",1883`, Deny, "module_stack.default", "mqtt.server.com:1883"},
		{`AT#XMQTTCON=1,"","","broker.example.com",8883`, Allow, "module_stack.allow[0]", ""},
		{`AT#XMQTTCON=0`, Allow, "", ""},
		{`AT#XHTTPCCON=1,"postman-echo.com",80`, Deny, "module_stack.default", ""},
		{`AT#XFTP="open",,,"speedtest.tele2.net"`, Deny, "module_stack.default", "speedtest.tele2.net:21"},
		{`AT#XFTP="ascii"`, Allow, "", ""},
		{`AT#XFOTA=1,"http://remote.host/fota/slm_app_update.bin"`, Deny, "module_stack.fota", ""},
		{`AT#XFOTA=7`, Allow, "", ""},
		{`AT#XTCPSVR=1,3442,600`, Deny, "module_stack.default", "listening"},
		{`AT^IPOPEN=1,"TCP","198.51.100.7",5000`, Allow, "module_stack.allow[1]", ""},
		{`AT^IPINIT="3gnet"`, Deny, "network.apns", ""},
		{`AT^SISS=0,"address","socktcp://broker.example.com:8883;etx"`, Allow, "module_stack.allow[0]", ""},
		{`AT^SISS=0,"address","socktcp://203.0.113.1:80"`, Deny, "module_stack.default", ""},
		{`AT^SISS=0,"srvType","Socket"`, Allow, "", ""},
		{`AT+SQNSD=1,0,8883,"broker.example.com"`, Allow, "module_stack.allow[0]", ""},

		// IPv6 literals.
		{`AT+QIOPEN=1,0,"TCP","2001:db8::7",443,0,1`, Allow, "module_stack.allow[3]", ""},
		{`AT+CMQTTCONNECT=0,"tcp://[2001:db8::7]:443",60,1`, Allow, "module_stack.allow[3]", ""},

		// Network selection (3GPP TS 27.007 §7.3, §7.19).
		{`AT+COPS=0`, Allow, "", ""},
		{`AT+COPS=3,2`, Allow, "", ""},
		{`AT+COPS=1,2,"46000"`, Deny, "network.deny_mcc", "MCC 460"},
		{`AT+COPS=4,2,"26201",7`, Allow, "network.deny_mcc", ""},
		{`AT+COPS=1,0,"CHINA MOBILE"`, Deny, "network.deny_mcc", "by name"},
		{`AT+CPOL=1,2,"46001"`, Deny, "network.deny_mcc", ""},
		{`AT+CMUX=0,0,5,127`, Deny, "module_stack.debug", "27.010"},
		{`ATS3=13`, Deny, "module_stack.debug", "framing"},
		{`ATS4?`, Allow, "", ""},

		// Chains: any refused part refuses the whole line.
		{`AT+CSQ;+QIOPEN=1,0,"TCP","203.0.113.5",80`, Deny, "module_stack.default", ""},
		{`AT+CSQ;+QIOPEN=1,0,"TCP","broker.example.com",8883;+CREG?`, Allow, "module_stack.allow[0]", ""},
		{`AT+QMTOPEN=0,"broker.example.com",8883;+QFOTADL="x"`, Deny, "module_stack.fota", ""},
		{`AT+CGDCONT=1,"IP","iot.example";+COPS=1,2,"46000"`, Deny, "network.deny_mcc", ""},
		{`AT+QICSGP=1,1,"a;b"`, Deny, "network.apns", "a;b"}, // ';' inside quotes does not split
		{`ATD*99#;+QFOTADL="x"`, Deny, "module_stack.fota", ""},

		// Evasions and syntax.
		{`AT+Q IOPEN=1,0,"TCP","203.0.113.5",80`, Deny, "module_stack.default", ""}, // spaces in names are ignored by V.250
		{`at+qiopen=1,0,"tcp","203.0.113.5",80`, Deny, "module_stack.default", ""},
		{"AT+QIOP\bOPEN=1,0,\"TCP\",\"203.0.113.5\",80", Deny, "at-syntax", "control character"},
		{"AT+CSQ\r\nAT+QFOTADL=\"x\"", Deny, "at-syntax", "control character"},
		{`AT+CMEE=1+QIOPEN=1,0,"TCP","203.0.113.5",80`, Deny, "at-syntax", "command prefix inside"},
		{`AT+CSQ+QIOPEN=1`, Deny, "at-syntax", ""},
		{`AT+QIOPEN=1,0,"TCP,"x",80`, Deny, "at-syntax", "unterminated"},
		{`xAT+QIOPEN=1,0,"TCP","203.0.113.5",80`, Deny, "at-syntax", "does not start with AT"},
		{`+++`, Deny, "at-syntax", ""},
		{`AT+`, Deny, "at-syntax", "empty command name"},
		{`AT@`, Deny, "at-syntax", "unexpected character"},
		{`A/`, Deny, "at-syntax", "A/"},
		{`AT+QIOPEN=1,0,"TCP","broker.example.com\2ecom",8883`, Deny, "module_stack.default", ""},
	} {
		d := p.CheckATLine(tc.line, 1)
		if d.Action != tc.action || d.Rule != tc.rule || !strings.Contains(d.Reason, tc.inWhy) {
			t.Errorf("CheckATLine(%q) = %v %q %q\nwant %v %q containing %q", tc.line, d.Action, d.Rule, d.Reason, tc.action, tc.rule, tc.inWhy)
			continue
		}
		switch {
		case d.Action == Deny && (d.Reply != "+CME ERROR: 3" || d.Forward != ""):
			t.Errorf("CheckATLine(%q): reply %q forward %q", tc.line, d.Reply, d.Forward)
		case d.Action != Deny && (d.Reply != "" || d.Forward != tc.line):
			t.Errorf("CheckATLine(%q): reply %q forward %q", tc.line, d.Reply, d.Forward)
		case d.Rule != "" && d.Action != Deny && d.Command == "":
			t.Errorf("CheckATLine(%q): no command named", tc.line)
		}
	}
}

func TestCheckATLineReplies(t *testing.T) {
	p := mustParse(t, fwPolicy)
	for cmee, want := range []string{"ERROR", "+CME ERROR: 3", "+CME ERROR: operation not allowed", "ERROR"} {
		if d := p.CheckATLine("AT+QFASTBOOT", cmee); d.Reply != want {
			t.Errorf("CMEE=%d: reply %q, want %q", cmee, d.Reply, want)
		}
	}
}

func TestCheckATLineOtherActions(t *testing.T) {
	p := mustParse(t, "version: 1\nmodule_stack: {default: alert, fota: allow, debug: alert}\nnetwork: {deny_mcc: [460]}\n")
	for _, tc := range []struct {
		line   string
		action Action
	}{
		{`AT+QIOPEN=1,0,"TCP","203.0.113.5",80`, Alert},
		{`AT+QFOTADL="https://fw.example.com/x.bin"`, Allow},
		{`AT+CUSBADB=1`, Alert},
		{`AT+CSQ;+CUSBADB=1;+COPS=1,2,"46000"`, Deny},
		{`AT+CGDCONT=1,"IP","anything"`, Allow}, // no apns: any
	} {
		if d := p.CheckATLine(tc.line, 0); d.Action != tc.action {
			t.Errorf("%s: %v (%s), want %v", tc.line, d.Action, d.Reason, tc.action)
		}
	}
}

func TestATFilter(t *testing.T) {
	p := mustParse(t, fwPolicy)
	f := NewATFilter(p, 0)

	if d := f.Check("A/"); d.Action != Deny || d.Reply != "ERROR" {
		t.Errorf("A/ before any line: %+v", d)
	}
	d := f.Check(`AT+QMTOPEN=0,"broker.example.com",8883` + "\r")
	if d.Action != Allow || d.Forward != `AT+QMTOPEN=0,"broker.example.com",8883`+"\r" {
		t.Fatalf("allowed line: %+v", d)
	}
	f.Done(true)
	if d := f.Check(`AT+QMTOPEN=0,"evil.example",1883`); d.Action != Deny {
		t.Fatalf("refused line: %+v", d)
	}
	// A/ repeats the last line the module received, not the refused one.
	d = f.Check("a/")
	if d.Action != Allow || d.Forward != `AT+QMTOPEN=0,"broker.example.com",8883` || d.Rule != "module_stack.allow[0]" {
		t.Errorf("A/ after a refusal: %+v", d)
	}
	f.Done(true)

	// +CMEE follows what the module accepted.
	f.Check("AT+CMEE=2")
	f.Done(false)
	if f.CMEE() != 0 {
		t.Errorf("CMEE after a refused +CMEE: %d", f.CMEE())
	}
	f.Check("AT+CMEE=2")
	f.Done(true)
	if d := f.Check("AT+QFASTBOOT"); f.CMEE() != 2 || d.Reply != "+CME ERROR: operation not allowed" {
		t.Errorf("CMEE 2: %d %q", f.CMEE(), d.Reply)
	}
	f.Done(true) // nothing pending after a refusal: ignored
	f.Check("ATZ")
	f.Done(true)
	if f.CMEE() != 0 {
		t.Errorf("CMEE after ATZ: %d", f.CMEE())
	}
	// A chained line that sets CMEE and is refused changes nothing.
	f.Check(`AT+CMEE=1;+QFOTADL="x"`)
	f.Done(true)
	if f.CMEE() != 0 {
		t.Errorf("CMEE after a refused chain: %d", f.CMEE())
	}
	// A/ when the last line is now refused by the policy is refused.
	g := NewATFilter(p, 1)
	g.Check(`AT+CIPOPEN=1,"UDP",,,8080`)
	g.Done(true)
	if d := g.Check("A/"); d.Action != Allow || d.Forward != `AT+CIPOPEN=1,"UDP",,,8080` {
		t.Errorf("A/ of an allowed line: %+v", d)
	}
}

func TestURLHostPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
	}{
		{"https://a.example/x", "a.example", 443},
		{"HTTP://a.example:8080/x?y", "a.example", 8080},
		{"tcp://user:pw@a.example:1883", "a.example", 1883},
		{"mqtts://a.example", "a.example", 8883},
		{"a.example:21", "a.example", 21},
		{"a.example/path", "a.example", 99},
		{"[2001:db8::1]:443", "2001:db8::1", 443},
		{"2001:db8::1", "2001:db8::1", 99},
		{"socktcp://a.example:9;etx", "a.example", 9},
		{"http://a.example:x/", "a.example", -2},
		{"gopher://a.example", "a.example", 99},
	} {
		h, p := urlHostPort(tc.in, 99)
		if h != tc.host || p != tc.port {
			t.Errorf("urlHostPort(%q) = %q, %d; want %q, %d", tc.in, h, p, tc.host, tc.port)
		}
	}
}

func TestArgAt(t *testing.T) {
	args := `1, "a,b" ,,"x"y, 42 ,""`
	want := []struct {
		v      string
		quoted bool
	}{{"1", false}, {"a,b", true}, {"", false}, {`"x"y`, false}, {"42", false}, {"", true}}
	for i, w := range want {
		v, q, ok := argAt(args, i)
		if !ok || v != w.v || q != w.quoted {
			t.Errorf("argAt(%d) = %q %v %v; want %q %v", i, v, q, ok, w.v, w.quoted)
		}
	}
	if _, _, ok := argAt(args, len(want)); ok {
		t.Error("argAt past the end is ok")
	}
	if n := argCount(args); n != len(want) {
		t.Errorf("argCount = %d", n)
	}
}
