package modem

import (
	"strings"
	"testing"
)

func TestParseIMEI(t *testing.T) {
	for in, want := range map[string]string{
		"867962040123450":            "867962040123450",
		"+CGSN: \"352656100885188\"": "352656100885188",
		"#CGSN: 353465070085319":     "353465070085319",
		"IMEI: 354480082434669":      "354480082434669",
		"356936001568844,NL2A62Z0N5": "356936001568844", // IMEI + serial (ModemManager mm_parse_gsn shape)
		"  35693600156884 ":          "356936001568844", // 14 digits: check digit completed
		"\"015184006215524\"":        "015184006215524",
	} {
		got, err := ParseIMEI(in)
		if err != nil || got.Value != want || got.TAC != want[:8] {
			t.Errorf("ParseIMEI(%q) = %+v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "867962040123452", "356936001568843", "LF103291240310", "1234", "3569360015688431"} {
		if got, err := ParseIMEI(bad); err == nil {
			t.Errorf("ParseIMEI(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestParseIMSI(t *testing.T) {
	for in, want := range map[string][3]string{
		"310410123456789":        {"310410123456789", "310", "410"},
		"#CIMI: 262014665358572": {"262014665358572", "262", "01"},
		"460017587020371":        {"460017587020371", "460", "01"},
		"405854123456789":        {"405854123456789", "405", "854"},
	} {
		got, err := ParseIMSI(in)
		if err != nil || got.Value != want[0] || got.MCC != want[1] || got.MNC != want[2] {
			t.Errorf("ParseIMSI(%q) = %+v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseIMSI("+CME ERROR: 10"); err == nil {
		t.Error("ParseIMSI accepted an error line")
	}
}

func TestParseICCID(t *testing.T) {
	for in, want := range map[string]ICCID{
		"+QCCID: 89860436101892671308":    {Value: "89860436101892671308", Country: "86", LuhnValid: luhnValid("89860436101892671308")},
		"+ICCID: 8954075144205567535F":    {Value: "8954075144205567535", Country: "54", LuhnValid: luhnValid("8954075144205567535")},
		"#CCID: 89014103211118510720":     {Value: "89014103211118510720", Country: "1", LuhnValid: luhnValid("89014103211118510720")},
		"^ICCID: 98684011402900011700":    {Value: "89860411049200107100", Country: "86", LuhnValid: luhnValid("89860411049200107100")},
		"ICCID: \"89882390000012345678\"": {Value: "89882390000012345678", Country: "882", LuhnValid: luhnValid("89882390000012345678")},
	} {
		got, err := ParseICCID(in)
		if err != nil || got != want {
			t.Errorf("ParseICCID(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "+CCID: 1234", "+QCCID: 12345678901234567890", "ERROR"} {
		if got, err := ParseICCID(bad); err == nil {
			t.Errorf("ParseICCID(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestCleanValue(t *testing.T) {
	for in, want := range map[string]string{
		"Quectel":                             "Quectel",
		" WAVECOM MODEM ":                     "WAVECOM MODEM",
		"+CGMR: LE20B04SIM7600G22":            "LE20B04SIM7600G22",
		"+CGMI: \"Fibocom\"":                  "Fibocom",
		"+CGMM: \"L850 LTE Module\",\"L850\"": "L850 LTE Module",
		"Revision: EC25EFAR06A06M4G":          "EC25EFAR06A06M4G",
		"Revision: SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09": "SWI9X30C_02.24.05.06 r7040 CARMD-EV-FRMWR2 2017/05/19 06:23:09",
		"%HWVERSION: nRF9160 SICA B1A":                                             "nRF9160 SICA B1A",
		"+GTPKGVER: \"19500.0000.00.01.02.80_6001\"":                               "19500.0000.00.01.02.80_6001",
		"12:34": "12:34",
		"+":     "+",
		"":      "",
	} {
		if got := CleanValue(in); got != want {
			t.Errorf("CleanValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseNetworkAnswers(t *testing.T) {
	stat, act, ok := parseReg(`+CEREG: 2,5,"1A2B","01C3D4E5",7`)
	if !ok || stat != 5 || act != 7 {
		t.Errorf("parseReg = %d %d %v", stat, act, ok)
	}
	if _, _, ok := parseReg("+CSQ: 1,2"); ok {
		t.Error("parseReg accepted +CSQ")
	}
	oper, act, ok := parseCOPS(`+COPS: 0,2,"46000",7`)
	if !ok || oper != "46000" || act != 7 {
		t.Errorf("parseCOPS = %q %d %v", oper, act, ok)
	}
	if _, _, ok := parseCOPS("+COPS: 0"); ok {
		t.Error("parseCOPS accepted an answer without operator")
	}
	if dbm, ok := parseCSQ("+CSQ: 20,99"); !ok || dbm != -73 {
		t.Errorf("parseCSQ = %d %v", dbm, ok)
	}
	if _, ok := parseCSQ("+CSQ: 99,99"); ok {
		t.Error("parseCSQ accepted unknown signal")
	}
	if dbm, ok := parseCESQ("+CESQ: 99,99,255,255,20,45"); !ok || dbm != -96 {
		t.Errorf("parseCESQ = %d %v", dbm, ok)
	}
	if got := fields(`1,"IP","a,b",,"x"`); strings.Join(got, "|") != "1|IP|a,b||x" {
		t.Errorf("fields = %q", got)
	}
}

// FuzzParsers: the value parsers never panic and what they accept is
// well-formed.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"867962040123452", "+QCCID: 89860436101892671308", "^ICCID: 98684011402900011700",
		`+CEREG: 2,5,"1A2B","01C3D4E5",7`, `+COPS: 0,2,"46000",7`, "+CSQ: 20,99", "Revision: x:y", `"a`, "+:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if imei, err := ParseIMEI(s); err == nil && (len(imei.Value) != 15 || !luhnValid(imei.Value)) {
			t.Fatalf("ParseIMEI(%q) = %+v", s, imei)
		}
		if imsi, err := ParseIMSI(s); err == nil && (len(imsi.Value) < 6 || imsi.MCC+imsi.MNC != imsi.Value[:len(imsi.MCC)+len(imsi.MNC)]) {
			t.Fatalf("ParseIMSI(%q) = %+v", s, imsi)
		}
		if cc, err := ParseICCID(s); err == nil && (!strings.HasPrefix(cc.Value, "89") || len(cc.Value) < 18) {
			t.Fatalf("ParseICCID(%q) = %+v", s, cc)
		}
		if v := CleanValue(s); len(v) > len(s) {
			t.Fatalf("CleanValue grew %q to %q", s, v)
		}
		parseReg(s)
		parseCOPS(s)
		parseCSQ(s)
		parseCESQ(s)
		if f := valueFields(s); len(f) == 0 {
			t.Fatalf("valueFields(%q) returned no field", s)
		}
		quectelADB([]string{s})
		firstField([]string{s})
	})
}
