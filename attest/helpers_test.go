package attest

import (
	"crypto/ed25519"
	"testing"
)

// testKey is a fixed key so golden files stay stable.
func testKey(seed byte) *Key {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return NewKey(ed25519.NewKeyFromSeed(s))
}

// sampleReport is a realistic report: one Quectel module on a policy that
// alerts, two findings, three AT firewall events.
func sampleReport() Report {
	signal := -71
	return Report{
		GatewayID:    "gw-0001",
		BootID:       "6f1c2d0e-8a57-4d8e-9a43-3f5b7c1d2e90",
		TimeMS:       1767225600123,
		ClockSynced:  true,
		AgentVersion: "v0.6.0",
		PolicyHash:   Bytes{0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15, 0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08},
		Modules: []Module{{
			Manufacturer:   "Quectel",
			Model:          "EC25",
			Firmware:       "EC25EFAR06A08M4G",
			FirmwareDetail: "EC25EFAR06A08M4G_01.003.01.003",
			Port:           "/dev/ttyUSB2",
			IMEI:           "867698041234561",
			TAC:            "86769804",
			IMSI:           "262011234567890",
			ICCID:          "8949020000012345678",
			SIM:            "ready",
			VendorName:     "Quectel Wireless Solutions",
			Vendor:         "quectel",
			OriginCountry:  "CN",
			Lists:          []string{"house-select-2023"},
			USB:            USB{VID: "2c7c", PID: "0125", Interface: 2},
			Network:        Network{Operator: "Telekom.de", PLMN: "26201", RAT: "lte", Registered: true, State: "home", APN: "iot.example", Signal: &signal},
			Findings: []Finding{
				{ID: "prc-origin", Severity: "medium", Detail: "vendor quectel is headquartered in CN"},
				{ID: "cloud-autoconnect", Severity: "high", Detail: "AT+QIOTREG? reports the vendor cloud client enabled"},
			},
			Verdict:     "alert",
			Enforcement: "none",
		}},
		Events: []Event{
			{TimeMS: 1767225590001, Kind: EventATFirewall, Detail: "module-internal socket to a host not in module_stack.allow", Subject: `AT+QIOPEN=1,0,"TCP","198.51.100.7",80`, Action: "deny", Rule: "module_stack.default"},
			{TimeMS: 1767225591002, Kind: EventATFirewall, Detail: "APN change to an APN not in network.apns", Subject: `AT+CGDCONT=1,"IP","internet"`, Action: "deny", Rule: "network.apns"},
			{TimeMS: 1767225592003, Kind: EventATFirewall, Detail: "query", Subject: "AT+CSQ", Action: "allow"},
		},
		Verdict: "alert",
	}
}

// issueN issues n reports on a fresh chain in a temp dir.
func issueN(t testing.TB, c *Chain, n int) []*Issued {
	t.Helper()
	out := make([]*Issued, 0, n)
	for range n {
		is, err := c.Issue(sampleReport())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, is)
	}
	return out
}

func newChain(t testing.TB, k *Key) *Chain {
	t.Helper()
	c, err := OpenChain(t.TempDir(), k, ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
