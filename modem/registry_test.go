package modem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmbeddedRegistry(t *testing.T) {
	r := DefaultRegistry()
	for _, id := range []string{"quectel", "fibocom", "simcom", "meig", "neoway", "huawei", "zte", "lierda",
		"china-mobile-iot", "sierra-wireless", "telit-cinterion", "u-blox", "nordic", "sequans"} {
		if _, ok := r.Vendor(id); !ok {
			t.Errorf("registry lacks %s", id)
		}
	}
	q, _ := r.Vendor("quectel")
	if q.Country != "CN" || strings.Join(q.ListIDs(), ",") != "dod-1260h,house-select-2023" {
		t.Errorf("quectel = %+v", q)
	}
}

func TestRegistryMatch(t *testing.T) {
	r := DefaultRegistry()
	for in, want := range map[string]string{
		"Quectel": "quectel", "Quectel_Ltd": "quectel", "SIMCOM INCORPORATED": "simcom",
		"Huawei Technologies Co., Ltd.": "huawei", "huawei": "huawei", "ZTEMT INCORPORATED": "zte",
		"u-blox": "u-blox", "Cinterion": "telit-cinterion", "Telit": "telit-cinterion",
		"Nordic Semiconductor ASA": "nordic", "Sierra Wireless, Incorporated": "sierra-wireless",
		"Fibocom Wireless Inc.": "fibocom", "QUALCOMM INCORPORATED": "", "FOXCOM MODEM": "",
		"": "", "Quectelx": "", "Sierra Leone Telecom": "",
	} {
		v, ok := r.Match(in)
		got := ""
		if ok {
			got = v.ID
		}
		if got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistryOverride(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vendors.yaml")
	if err := os.WriteFile(path, []byte(`version: 1
updated: "2026-12-01"
lists:
  internal-ban: {name: Our procurement ban, source: policy memo 2026-11}
vendors:
  - id: foxcom
    name: Foxcom (white label)
    aliases: [foxcom]
    usb_vids: []
    country: CN
    lists: [{list: internal-ban, since: "2026-11-01", source: procurement memo}]
    sources: [warthog618/modem issue 17]
  - id: quectel
    name: Quectel (ours)
    aliases: [quectel]
    usb_vids: ["2c7c"]
    country: CN
    lists: [{list: internal-ban, since: "2026-11-01", source: procurement memo}]
    sources: [ours]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRegistry(DefaultRegistry(), path)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Match("FOXCOM MODEM"); !ok || v.ID != "foxcom" {
		t.Errorf("override vendor not matched: %v %v", v, ok)
	}
	if q, _ := r.Vendor("quectel"); q.Name != "Quectel (ours)" || len(q.Lists) != 1 {
		t.Errorf("override did not replace quectel: %+v", q)
	}
	if _, ok := r.Vendor("simcom"); !ok {
		t.Error("override dropped the other vendors")
	}
	if _, ok := r.Lists["dod-1260h"]; !ok {
		t.Error("override dropped the built-in lists")
	}
}

func TestRegistryErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unknown key":    "version: 1\nvendors:\n  - id: x\n    contry: CN\n",
		"bad version":    "version: 2\n",
		"bad country":    "version: 1\nvendors:\n  - {id: x, name: X, aliases: [x], country: China, sources: [s]}\n",
		"undefined list": "version: 1\nvendors:\n  - {id: x, name: X, aliases: [x], country: CN, sources: [s], lists: [{list: nope, since: \"2020-01-01\", source: s}]}\n",
		"no source":      "version: 1\nvendors:\n  - {id: x, name: X, aliases: [x], country: CN}\n",
	} {
		_, err := ParseRegistry("test.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "test.yaml") {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
	_, err := ParseRegistry("test.yaml", []byte("version: 1\nvendors:\n  - id: x\n    contry: CN\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("unknown key error %v does not name line 4", err)
	}
}
