package modem

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.bug.st/serial/enumerator"
)

// Discover lists the USB devices with serial ports on this machine, with
// the AT ports to try for each. Ports come from go.bug.st/serial's
// enumerator; the USB interface number and the device they belong to come
// from sysfs, which the enumerator does not report.
func Discover() ([]Candidate, error) {
	return discover(func() ([]*enumerator.PortDetails, error) { return enumerator.GetDetailedPortsList() }, "/sys")
}

func discover(list func() ([]*enumerator.PortDetails, error), sysRoot string) ([]Candidate, error) {
	details, err := list()
	if err != nil {
		return nil, err
	}
	var ports []Port
	for _, d := range details {
		if !d.IsUSB {
			continue
		}
		p := Port{
			Path: d.Name, VID: strings.ToLower(d.VID), PID: strings.ToLower(d.PID),
			Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Product: d.Product, Interface: -1,
		}
		p.Interface, p.Device = sysfsInterface(sysRoot, filepath.Base(d.Name))
		ports = append(ports, p)
	}
	return GroupPorts(ports), nil
}

// sysfsInterface finds the bInterfaceNumber of a tty and the sysfs path of
// its USB device. /sys/class/tty/ttyUSB2/device points at the usb-serial
// port (…/1-1:1.2/ttyUSB2) for the option driver and at the interface
// itself (…/1-1:1.2) for cdc-acm; the interface directory holds
// bInterfaceNumber and its parent is the device (idVendor, idProduct).
func sysfsInterface(sysRoot, tty string) (int, string) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "class", "tty", tty, "device"))
	if err != nil {
		return -1, ""
	}
	for i := 0; i < 3 && dir != "/" && dir != "."; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "bInterfaceNumber"))
		if err == nil {
			// sysfs writes it in hex with two digits ("02").
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 16, 32)
			if err != nil {
				return -1, filepath.Dir(dir)
			}
			return int(n), filepath.Dir(dir)
		}
		dir = filepath.Dir(dir)
	}
	return -1, ""
}
