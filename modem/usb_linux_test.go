package modem

import (
	"os"
	"path/filepath"
	"testing"

	"go.bug.st/serial/enumerator"
)

// fakeSysfs builds a sysfs tree for one USB device with the given ttys
// (name → interface number), the option-driver layout: the tty's device
// link points at the port directory inside the interface directory.
func fakeSysfs(t *testing.T, root, dev string, ttys map[string]int, acm bool) {
	t.Helper()
	devDir := filepath.Join(root, "devices", "usb1", dev)
	for tty, n := range ttys {
		ifDir := filepath.Join(devDir, dev+":1."+string(rune('0'+n)))
		if err := os.MkdirAll(ifDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ifDir, "bInterfaceNumber"), []byte("0"+string(rune('0'+n))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		target := ifDir
		if !acm {
			target = filepath.Join(ifDir, tty)
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		classDir := filepath.Join(root, "class", "tty", tty)
		if err := os.MkdirAll(classDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(classDir, "device")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiscoverGroupsAndChoosesAT(t *testing.T) {
	root := t.TempDir()
	fakeSysfs(t, root, "1-1", map[string]int{"ttyUSB0": 0, "ttyUSB1": 1, "ttyUSB2": 2, "ttyUSB3": 3}, false)
	fakeSysfs(t, root, "1-2", map[string]int{"ttyACM0": 0, "ttyACM1": 2}, true)
	list := func() ([]*enumerator.PortDetails, error) {
		return []*enumerator.PortDetails{
			{Name: "/dev/ttyUSB3", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "abc"},
			{Name: "/dev/ttyUSB0", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "abc"},
			{Name: "/dev/ttyUSB2", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "abc"},
			{Name: "/dev/ttyUSB1", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "abc"},
			{Name: "/dev/ttyACM0", IsUSB: true, VID: "05C6", PID: "F601"},
			{Name: "/dev/ttyACM1", IsUSB: true, VID: "05C6", PID: "F601"},
			{Name: "/dev/ttyS0"},
		}, nil
	}
	cs, err := discover(list, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("%d candidates, want 2: %+v", len(cs), cs)
	}
	q := cs[0]
	if q.VID != "2c7c" || len(q.Ports) != 4 || len(q.AT) != 2 || q.AT[0].Path != "/dev/ttyUSB2" || q.AT[1].Path != "/dev/ttyUSB3" {
		t.Errorf("quectel candidate = %+v", q)
	}
	m := cs[1]
	if len(m.AT) != 2 || m.AT[0].Interface != 0 || m.AT[1].Interface != 2 || m.Rule != "no port rule for 05c6:f601: probe every port" {
		t.Errorf("meig candidate = %+v", m)
	}
}
