package modem

import "testing"

func TestConsistencyFindings(t *testing.T) {
	reg := DefaultRegistry()
	for _, tc := range []struct {
		name string
		m    Module
		want string // finding id, "" for none
	}{
		{"telit with a TAF TAC", Module{Vendor: "telit-cinterion", VendorName: "Telit Cinterion", OriginCountry: "US", TAC: "86675804", Firmware: "25.30.224"}, "identity-mismatch-tac"},
		{"quectel with a TAF TAC", Module{Vendor: "quectel", VendorName: "Quectel", OriginCountry: "CN", TAC: "86675804", Model: "EC25", Firmware: "EC25EFAR06A06M4G"}, ""},
		{"quectel firmware on a telit", Module{Vendor: "telit-cinterion", VendorName: "Telit Cinterion", OriginCountry: "US", TAC: "35346507", Firmware: "EC25EFAR06A06M4G"}, "firmware-pattern"},
		{"simcom without its model number", Module{Vendor: "simcom", VendorName: "SIMCom", OriginCountry: "CN", Model: "SIMCOM_SIM7600G-H", Firmware: "EC25EFAR06A06M4G"}, "firmware-pattern"},
		{"quectel usb on a simcom", Module{Vendor: "simcom", VendorName: "SIMCom", OriginCountry: "CN", Model: "SIMCOM_SIM7600G-H", Firmware: "LE20B04SIM7600G22", USB: USBInfo{VID: "2c7c", PID: "0125"}}, "identity-mismatch-usb"},
		{"chipset vid", Module{Vendor: "meig", VendorName: "MeiG", OriginCountry: "CN", Model: "SLM750", Firmware: "SLM750_4.0.6_EQ101", USB: USBInfo{VID: "05c6", PID: "f601"}}, "usb-vid-chipset"},
		{"no firmware", Module{Vendor: "quectel", VendorName: "Quectel", OriginCountry: "CN"}, "firmware-missing"},
	} {
		m := tc.m
		checkConsistency(reg, &m)
		var ids []string
		for _, f := range m.Findings {
			ids = append(ids, f.ID)
		}
		switch {
		case tc.want == "" && len(ids) > 0:
			t.Errorf("%s: findings %v, want none", tc.name, ids)
		case tc.want != "" && (len(ids) == 0 || ids[0] != tc.want):
			t.Errorf("%s: findings %v, want %s", tc.name, ids, tc.want)
		}
	}
}
