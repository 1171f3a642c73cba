package modem

import (
	"fmt"
	"sort"
	"strings"
)

// Port is one serial port of a USB device.
type Port struct {
	Path         string // /dev/ttyUSB2
	VID, PID     string // lowercase hex
	Serial       string
	Manufacturer string // USB descriptor strings: evidence, not claims
	Product      string
	Interface    int    // bInterfaceNumber; -1 when unknown
	Device       string // sysfs path of the USB device: ports with the same Device belong together
}

// Candidate is one USB device that may be a cellular module, with its
// ports and the ones to try as the AT port, best first.
type Candidate struct {
	VID, PID     string
	Serial       string
	Manufacturer string
	Product      string
	Device       string
	Ports        []Port
	AT           []Port // ports to probe with AT, best first
	// Rule says how AT was chosen: "2c7c:0125 AT on interface 2, 3" from
	// the table, or "no rule for ...: probe every port".
	Rule string
}

// atRules maps VID:PID to the USB interface numbers of the AT ports,
// primary first. From ModemManager's udev port-type rules
// (src/plugins/*/77-mm-*-port-types.rules) and the Linux option/qmi_wwan
// drivers, as collected in the reference notes §3.
var atRules = map[string][]int{
	// Quectel: if#0 DIAG, if#1 NMEA, if#2 AT, if#3 AT (PPP).
	"2c7c:0125": {2, 3}, "2c7c:0121": {2, 3}, "2c7c:0191": {2, 3}, "2c7c:0195": {2, 3},
	"2c7c:0296": {2, 3}, "2c7c:0306": {2, 3}, "2c7c:0512": {2, 3}, "2c7c:0800": {2, 3},
	"2c7c:0801": {2, 3}, "2c7c:0128": {5},
	// Fibocom.
	"2cb7:0007": {2, 6}, "8087:095a": {0, 4}, "2cb7:0104": {1, 2}, "2cb7:01a0": {2, 3},
	"2cb7:0106": {1, 2}, "2cb7:010a": {0, 1},
	// Sierra Wireless MC74xx, EM7455, EM7565.
	"1199:9071": {3}, "1199:9079": {3}, "1199:9091": {3},
	// Telit LE910C1 (and its ECM composition), LE922/LM9x0.
	"1bc7:1031": {1, 2}, "1bc7:1033": {1, 2}, "1bc7:1040": {4}, "1bc7:1041": {5},
	// u-blox TOBY-L4, TOBY-R2, LARA-R2, SARA-U2/LISA-U2, LARA-R6 (Qualcomm VID).
	"1546:1010": {6}, "1546:1107": {0, 2, 4}, "1546:110a": {0, 2, 4}, "1546:1102": {0}, "05c6:908b": {1, 2},
	// SIMCom SIM7000/7100/7600, SIM7070/7080/7090, A7600E-H.
	"1e0e:9001": {2, 3}, "1e0e:9205": {2, 3}, "1e0e:9206": {2, 5}, "1e0e:9011": {4},
	// Cinterion PLS8, PLS62, PLS63/PLS83, MV32.
	"1e2d:0061": {2, 0}, "1e2d:005b": {0, 2}, "1e2d:005d": {0, 2}, "1e2d:0069": {0, 2},
	"1e2d:006f": {0, 2}, "1e2d:00f1": {2},
	// Neoway N720 (RNDIS+Modem+NMEA+AT+Diag composition).
	"2949:8243": {3},
}

// vidDefaults is the AT layout to try first for a vendor's PIDs missing
// from atRules.
var vidDefaults = map[string][]int{"2c7c": {2, 3}, "1e0e": {2, 3}, "1199": {3}}

// GroupPorts groups ports by USB device and picks the AT ports of each.
// Ports that are not on USB are left out. Candidates come sorted by device.
func GroupPorts(ports []Port) []Candidate {
	byDev := map[string]*Candidate{}
	var order []string
	for _, p := range ports {
		if p.VID == "" {
			continue
		}
		key := p.Device
		if key == "" {
			key = p.VID + ":" + p.PID + ":" + p.Serial
		}
		c, ok := byDev[key]
		if !ok {
			c = &Candidate{VID: p.VID, PID: p.PID, Serial: p.Serial, Manufacturer: p.Manufacturer, Product: p.Product, Device: p.Device}
			byDev[key] = c
			order = append(order, key)
		}
		c.Ports = append(c.Ports, p)
	}
	sort.Strings(order)
	out := make([]Candidate, 0, len(order))
	for _, k := range order {
		c := byDev[k]
		sort.Slice(c.Ports, func(i, j int) bool {
			if c.Ports[i].Interface != c.Ports[j].Interface {
				return c.Ports[i].Interface < c.Ports[j].Interface
			}
			return c.Ports[i].Path < c.Ports[j].Path
		})
		chooseAT(c)
		out = append(out, *c)
	}
	return out
}

func chooseAT(c *Candidate) {
	key := c.VID + ":" + c.PID
	ifs, ok := atRules[key]
	src := key
	if !ok {
		ifs, ok = vidDefaults[c.VID]
		src = c.VID + " (vendor default)"
	}
	if ok {
		for _, n := range ifs {
			for _, p := range c.Ports {
				if p.Interface == n {
					c.AT = append(c.AT, p)
				}
			}
		}
		if len(c.AT) > 0 {
			c.Rule = fmt.Sprintf("%s: AT on interface %s", src, joinInts(ifs))
			return
		}
	}
	c.AT = append(c.AT, c.Ports...)
	c.Rule = fmt.Sprintf("no port rule for %s: probe every port", key)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
