package modem_test

import (
	"context"
	"testing"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/simulator"
)

func syncedSim(t *testing.T, profile string) (*simulator.Modem, *atcmd.Conn) {
	t.Helper()
	p, err := simulator.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(p, simulator.Options{Seed: 1})
	t.Cleanup(func() { sim.Close() })
	conn := atcmd.New(sim.Pipe(), atcmd.Config{})
	t.Cleanup(func() { conn.Close() })
	if err := conn.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sim, conn
}

// TestAuditFindsAndRemediates enables the risky settings the way malware
// or a careless vendor tool would, reboots the module (they persist), and
// checks the audit reports them and remediation switches them off.
func TestAuditFindsAndRemediates(t *testing.T) {
	for _, tc := range []struct {
		profile, vendor string
		enable          []string
		want            []string
	}{
		{"quectel-ec25", "quectel", []string{"AT+QIOTREG=2", `AT+QCFG="usbcfg",0x2C7C,0x0125,1,1,1,1,1,1,0`}, []string{"quectel-qiotreg", "quectel-adb"}},
		{"simcom-sim7600", "simcom", []string{"AT+CUSBADB=1"}, []string{"simcom-adb"}},
		{"telit-le910c1", "telit-cinterion", []string{"AT#LWM2MENA=1", "AT#SMSATRUN=1", "AT#TCPATRUND=1"}, []string{"telit-lwm2m", "telit-smsatrun", "telit-tcpatrun"}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			ctx := context.Background()
			sim, conn := syncedSim(t, tc.profile)
			m := &modem.Module{Vendor: tc.vendor}
			clean, err := modem.Audit(ctx, conn, m)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range clean {
				if s.Risky {
					t.Errorf("factory setting reported risky: %+v", s)
				}
			}
			for _, cmd := range tc.enable {
				if _, err := conn.Command(ctx, cmd); err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
			}
			sim.Reboot()
			conn.Close()
			conn = atcmd.New(sim.Pipe(), atcmd.Config{})
			defer conn.Close()
			if err := conn.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			m = &modem.Module{Vendor: tc.vendor}
			got, err := modem.Audit(ctx, conn, m)
			if err != nil {
				t.Fatal(err)
			}
			risky := map[string]modem.Setting{}
			for _, s := range got {
				if s.Risky {
					risky[s.ID] = s
				}
			}
			for _, id := range tc.want {
				s, ok := risky[id]
				if !ok {
					t.Fatalf("audit missed %s after reboot: %+v", id, got)
				}
				if err := modem.Remediate(ctx, conn, tc.vendor, s); err != nil {
					t.Errorf("remediate %s: %v", id, err)
				}
			}
			if len(m.Findings) != len(tc.want) {
				t.Errorf("findings %+v, want one per risky setting", m.Findings)
			}
			after, err := modem.Audit(ctx, conn, &modem.Module{Vendor: tc.vendor})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range after {
				if s.Risky {
					t.Errorf("still risky after remediation: %+v", s)
				}
			}
		})
	}
}

func TestReadCounters(t *testing.T) {
	ctx := context.Background()
	for profile, vendor := range map[string]string{"quectel-ec25": "quectel", "telit-le910c1": "telit-cinterion"} {
		sim, conn := syncedSim(t, profile)
		sim.StackSend(1500, 300)
		c, ok, err := modem.ReadCounters(ctx, conn, vendor)
		if err != nil || !ok || c.Sent != 1500 || c.Received != 300 {
			t.Errorf("%s: counters %+v ok=%v err=%v", profile, c, ok, err)
		}
	}
	_, conn := syncedSim(t, "huawei-me909s")
	if _, ok, err := modem.ReadCounters(ctx, conn, "huawei"); ok || err != nil {
		t.Errorf("huawei: ok=%v err=%v, want no counters", ok, err)
	}
}
