package modem

import (
	"fmt"
	"regexp"
	"strings"
)

// firmwarePatterns describe how each vendor names its firmware revisions,
// from the public strings collected in the vendor notes: Quectel revisions
// start with the model ("EC25EFAR06A06M4G"), SIMCom's carry the model
// number ("LE20B04SIM7600G22"), Telit's are "25.30.224", Cinterion's
// "03.006", Huawei's "11.617.15.00.00", u-blox's "L0.0.00.00.05.08" or
// "02.06", Nordic's "mfw_nrf9160_1.3.2", Fibocom's "18500.5001.00.05.27.30",
// Sierra's "SWI9X30C_02.24.05.06". A module whose revision does not follow
// its claimed vendor's scheme may be relabelled or run foreign firmware.
var firmwarePatterns = map[string]*regexp.Regexp{
	"telit-cinterion": regexp.MustCompile(`^(\d{2}\.\d{2}\.\d{3}|\d{2}\.\d{3})`),
	"huawei":          regexp.MustCompile(`^\d{2}\.\d{3}\.\d{2}\.\d{2}\.\d{2,3}`),
	"u-blox":          regexp.MustCompile(`^(L0\.0\.|\d{2}\.\d{2})`),
	"nordic":          regexp.MustCompile(`^mfw_nrf9\d{2}`),
	"fibocom":         regexp.MustCompile(`^\d{5}\.\d{4}\.`),
	"sierra-wireless": regexp.MustCompile(`^SWI9`),
}

// modelPrefix is the model's leading code, upper-cased: "EC25" for "EC25",
// "RM500Q" for "RM500Q-GL", "7600" for "SIMCOM_SIM7600G-H".
func modelCode(model string) string {
	m := strings.ToUpper(model)
	if i := strings.LastIndex(m, "SIM"); i >= 0 && strings.HasPrefix(m, "SIMCOM") {
		m = m[i+3:]
	}
	end := 0
	for end < len(m) && isAlnum(m[end]) {
		end++
	}
	return m[:end]
}

// checkConsistency compares the evidence: USB identity against the AT
// identity, and the firmware revision against the claimed vendor's naming.
func checkConsistency(reg *Registry, m *Module) {
	if m.USB.VID != "" {
		vid := strings.ToLower(m.USB.VID)
		owners := reg.ByVID(vid)
		chip, isChip := reg.ChipsetVIDs[vid]
		switch {
		case isChip:
			m.add(SeverityInfo, "usb-vid-chipset", fmt.Sprintf("USB VID %s belongs to the chipset maker %s, not a module brand: the AT answers decide the vendor", vid, chip))
		case len(owners) > 0 && m.Vendor != "unknown" && !vendorIn(owners, m.Vendor):
			m.add(SeverityHigh, "identity-mismatch-usb", fmt.Sprintf("USB VID %s:%s belongs to %s, but the module answers as %s (%q): relabelled or spoofed identity",
				vid, strings.ToLower(m.USB.PID), vendorNames(owners), m.VendorName, m.Manufacturer))
		case len(owners) > 0 && m.Vendor == "unknown":
			m.add(SeverityMedium, "usb-vid-only", fmt.Sprintf("USB VID %s belongs to %s; the AT identity names no known vendor", vid, vendorNames(owners)))
		case len(owners) == 0 && m.Vendor != "unknown":
			m.add(SeverityLow, "usb-vid-unknown", fmt.Sprintf("USB VID %s is not one the registry knows for %s", vid, m.VendorName))
		}
	}
	// The first two digits of a TAC name the body that allocated it (GSMA
	// TS.06 "reporting body identifier"); 86 is TAF, China. A module that
	// claims a vendor from elsewhere but carries a TAF-allocated IMEI may
	// be a relabelled PRC module.
	if strings.HasPrefix(m.TAC, "86") && m.OriginCountry != "" && m.OriginCountry != "CN" {
		m.add(SeverityMedium, "identity-mismatch-tac", fmt.Sprintf("IMEI TAC %s was allocated by TAF (China), but the module answers as %s (%s): possible relabelled module", m.TAC, m.VendorName, m.OriginCountry))
	}
	if m.Firmware == "" {
		m.add(SeverityMedium, "firmware-missing", "the module reported no firmware revision")
		return
	}
	fw := strings.ToUpper(m.Firmware)
	switch m.Vendor {
	case "quectel", "meig":
		if code := modelCode(m.Model); len(code) >= 4 && !strings.Contains(fw, code) {
			m.add(SeverityMedium, "firmware-pattern", fmt.Sprintf("firmware %q does not carry the model code %s the way %s revisions do: relabelled module or foreign firmware", m.Firmware, code, m.VendorName))
		}
	case "simcom":
		if code := modelCode(m.Model); len(code) >= 4 && !strings.Contains(fw, code) {
			m.add(SeverityMedium, "firmware-pattern", fmt.Sprintf("firmware %q does not carry the model number %s the way SIMCom revisions do", m.Firmware, code))
		}
	default:
		if re, ok := firmwarePatterns[m.Vendor]; ok && !re.MatchString(m.Firmware) {
			m.add(SeverityMedium, "firmware-pattern", fmt.Sprintf("firmware %q does not follow %s's revision naming (%s): relabelled module or foreign firmware", m.Firmware, m.VendorName, re))
		}
	}
}

func vendorIn(vs []*Vendor, id string) bool {
	for _, v := range vs {
		if v.ID == id {
			return true
		}
	}
	return false
}

func vendorNames(vs []*Vendor) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, " or ")
}
