package modem_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/simulator"
)

// wantVendor is the registry id each simulator profile's module must map to.
var wantVendor = map[string]string{
	"quectel": "quectel", "fibocom": "fibocom", "simcom": "simcom", "huawei": "huawei",
	"zte": "zte", "meig": "meig", "sierra": "sierra-wireless", "telit": "telit-cinterion",
	"ublox": "u-blox", "nordic": "nordic", "thales": "telit-cinterion",
}

// identifySim runs Sync and Identify against a simulated module over a pipe.
func identifySim(t *testing.T, p *simulator.Profile, opts simulator.Options) (*modem.Module, *simulator.Modem) {
	t.Helper()
	sim := simulator.New(p, opts)
	t.Cleanup(func() { sim.Close() })
	conn := atcmd.New(sim.Pipe(), atcmd.Config{})
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.Sync(ctx); err != nil {
		t.Fatalf("%s: sync: %v", p.Name, err)
	}
	usb := &modem.USBInfo{VID: p.USB.VID, PID: p.USB.PID, Interface: -1}
	if ports := p.USB.ATPorts(); len(ports) > 0 {
		usb.Interface = ports[0]
	}
	m, err := modem.Identify(ctx, conn, modem.Options{USB: usb})
	if err != nil {
		t.Fatalf("%s: identify: %v", p.Name, err)
	}
	return m, sim
}

func TestIdentifyEveryProfile(t *testing.T) {
	for _, info := range simulator.Profiles() {
		t.Run(info.Name, func(t *testing.T) {
			t.Parallel()
			p, err := simulator.LoadProfile(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			m, sim := identifySim(t, p, simulator.Options{Seed: 7})
			id := p.Identity
			check := func(field, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			check("manufacturer", m.Manufacturer, id.Manufacturer)
			check("firmware", m.Firmware, id.Revision)
			check("imei", m.IMEI, sim.IMEI())
			check("imsi", m.IMSI, sim.IMSI())
			check("iccid", m.ICCID, strings.TrimRight(sim.ICCID(), "F"))
			check("vendor", m.Vendor, wantVendor[info.Vendor])
			if !strings.HasPrefix(id.Model, m.Model) || m.Model == "" {
				t.Errorf("model = %q, want %q", m.Model, id.Model)
			}
			if m.SIM != "ready" {
				t.Errorf("sim = %q, want ready", m.SIM)
			}
			for _, f := range m.Findings {
				if f.Severity == modem.SeverityHigh || f.ID == "firmware-pattern" {
					t.Errorf("finding on an honest module: %+v", f)
				}
			}
			if m.FirmwareDetail == "" && info.Vendor != "zte" && info.Vendor != "meig" && info.Vendor != "thales" {
				t.Errorf("no firmware detail")
			}
			if !m.Network.Registered || m.Network.PLMN == "" {
				t.Errorf("network = %+v, want registered with a PLMN", m.Network)
			}
			// The RM500Q answers +CSQ: 99,99 on 5G and has no +CESQ here:
			// unknown signal is the honest answer.
			if m.Network.Signal == nil && info.Name != "quectel-rm500q" {
				t.Errorf("no signal: %+v", m.Network)
			}
		})
	}
}

func TestIdentifyUnderFaults(t *testing.T) {
	p, err := simulator.LoadProfile("quectel-ec25")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"split=1", "urc-mid=1", "split=3,urc-mid=0.5,latency=2ms"} {
		t.Run(spec, func(t *testing.T) {
			f, err := simulator.ParseFaults(spec)
			if err != nil {
				t.Fatal(err)
			}
			m, sim := identifySim(t, p, simulator.Options{Seed: 3, Faults: f})
			if m.IMEI != sim.IMEI() || m.Manufacturer != "Quectel" || m.Firmware != p.Identity.Revision || m.ICCID == "" {
				t.Errorf("identity under %s: %+v", spec, m)
			}
		})
	}
}

// TestIdentifyLyingModule: a module that answers with SIMCom's identity
// while its USB IDs are Quectel's is flagged with the evidence.
func TestIdentifyLyingModule(t *testing.T) {
	p, err := simulator.LoadProfile("quectel-ec25")
	if err != nil {
		t.Fatal(err)
	}
	f, err := simulator.ParseFaults("lie=simcom-sim7600")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := identifySim(t, p, simulator.Options{Seed: 3, Faults: f})
	if m.Vendor != "simcom" {
		t.Fatalf("vendor = %q: the lie did not take", m.Vendor)
	}
	var found *modem.Finding
	for i := range m.Findings {
		if m.Findings[i].ID == "identity-mismatch-usb" {
			found = &m.Findings[i]
		}
	}
	if found == nil || found.Severity != modem.SeverityHigh || !strings.Contains(found.Detail, "2c7c") || !strings.Contains(found.Detail, "Quectel") {
		t.Fatalf("findings %+v: want identity-mismatch-usb naming the Quectel VID", m.Findings)
	}
}

// TestIdentifySlowBoot powers the module up for real (boot chatter, deaf
// period) on the fake clock: Sync waits it out, identity still comes right.
func TestIdentifySlowBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := simulator.LoadProfile("simcom-sim7600")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m, sim := identifySim(t, p, simulator.Options{Seed: 5, Boot: true})
		if m.IMEI != sim.IMEI() || m.Vendor != "simcom" {
			t.Errorf("after boot: %+v", m)
		}
		if time.Since(start) < time.Second {
			t.Errorf("identified after %v: the boot delay was not simulated", time.Since(start))
		}
	})
}

func TestIdentifySIMAbsent(t *testing.T) {
	p, err := simulator.LoadProfile("quectel-ec25")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := identifySim(t, p, simulator.Options{Seed: 3, SIM: simulator.SIMAbsent})
	if m.SIM != "absent" || m.IMSI != "" || m.ICCID != "" {
		t.Errorf("sim %q imsi %q iccid %q: want absent and empty", m.SIM, m.IMSI, m.ICCID)
	}
	if m.IMEI == "" {
		t.Error("the IMEI does not depend on the SIM and must still be read")
	}
}
