package collector

import (
	"fmt"

	"github.com/modemguard/modemguard/attest"
)

// Kinds of module change (the kind column of module_changes).
const (
	ChangeSeen     = "module-seen"      // in the gateway's first report
	ChangeAdded    = "module-added"     // a new IMEI in a new place
	ChangeRemoved  = "module-removed"   // an IMEI no longer reported
	ChangeSwapped  = "module-swapped"   // another IMEI where one was (same AT port or USB position)
	ChangeFirmware = "firmware-changed" // same IMEI, other firmware or firmware_detail
	ChangeSIM      = "sim-changed"      // same IMEI, other ICCID or IMSI
)

// ModuleChange is one entry of a gateway's module history.
type ModuleChange struct {
	Seq        uint64 `json:"seq"`
	TimeMS     int64  `json:"time_ms"`
	ReceivedMS int64  `json:"received_ms"`
	Kind       string `json:"kind"`
	IMEI       string `json:"imei"`
	Old        string `json:"old,omitempty"`
	New        string `json:"new,omitempty"`
	Detail     string `json:"detail"`
}

// moduleKey identifies a module across reports: its IMEI, or, for a
// module that reports none, where it sits.
func moduleKey(m attest.Module) string {
	if m.IMEI != "" {
		return "imei:" + m.IMEI
	}
	return "place:" + place(m)
}

// place is where a module sits: its AT port, else its USB ids.
func place(m attest.Module) string {
	if m.Port != "" {
		return m.Port
	}
	return m.USB.VID + ":" + m.USB.PID
}

func describe(m attest.Module) string {
	return fmt.Sprintf("%s %s (%s) firmware %s", m.Manufacturer, m.Model, m.Vendor, m.Firmware)
}

// diffModules lists what changed from old to cur. first marks the
// gateway's first report: every module is then "seen".
func diffModules(old, cur []attest.Module, first bool) []ModuleChange {
	var out []ModuleChange
	if first {
		for _, m := range cur {
			out = append(out, ModuleChange{Kind: ChangeSeen, IMEI: m.IMEI, New: describe(m), Detail: "first report: " + describe(m) + " at " + place(m)})
		}
		return out
	}
	oldBy := map[string]attest.Module{}
	for _, m := range old {
		oldBy[moduleKey(m)] = m
	}
	matched := map[string]bool{}
	var fresh []attest.Module
	for _, m := range cur {
		k := moduleKey(m)
		o, ok := oldBy[k]
		if !ok {
			fresh = append(fresh, m)
			continue
		}
		matched[k] = true
		if o.Firmware != m.Firmware || o.FirmwareDetail != m.FirmwareDetail {
			out = append(out, ModuleChange{Kind: ChangeFirmware, IMEI: m.IMEI, Old: o.Firmware + " " + o.FirmwareDetail, New: m.Firmware + " " + m.FirmwareDetail,
				Detail: fmt.Sprintf("firmware %s → %s", o.Firmware, m.Firmware)})
		}
		if o.ICCID != m.ICCID || o.IMSI != m.IMSI {
			out = append(out, ModuleChange{Kind: ChangeSIM, IMEI: m.IMEI, Old: o.ICCID, New: m.ICCID,
				Detail: fmt.Sprintf("SIM ICCID %q → %q, IMSI %q → %q", o.ICCID, m.ICCID, o.IMSI, m.IMSI)})
		}
	}
	// Unmatched old modules, by place, to tell a swap from a removal.
	gone := map[string]attest.Module{}
	var goneOrder []string
	for _, m := range old {
		if !matched[moduleKey(m)] {
			gone[place(m)] = m
			goneOrder = append(goneOrder, place(m))
		}
	}
	for _, m := range fresh {
		if o, ok := gone[place(m)]; ok {
			delete(gone, place(m))
			out = append(out, ModuleChange{Kind: ChangeSwapped, IMEI: m.IMEI, Old: o.IMEI + " " + describe(o), New: m.IMEI + " " + describe(m),
				Detail: fmt.Sprintf("at %s: IMEI %s → %s (%s %s → %s %s)", place(m), o.IMEI, m.IMEI, o.Manufacturer, o.Model, m.Manufacturer, m.Model)})
			continue
		}
		out = append(out, ModuleChange{Kind: ChangeAdded, IMEI: m.IMEI, New: describe(m), Detail: describe(m) + " at " + place(m)})
	}
	for _, p := range goneOrder {
		if o, ok := gone[p]; ok {
			out = append(out, ModuleChange{Kind: ChangeRemoved, IMEI: o.IMEI, Old: describe(o), Detail: describe(o) + " at " + p + " no longer reported"})
		}
	}
	return out
}
