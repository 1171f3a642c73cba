package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// hostTxBytes sums tx_bytes of the network interfaces whose names match
// one of the globs ("wwan*"), from sysfs (Documentation/ABI/testing/
// sysfs-class-net-statistics). ok is false when no interface matches.
func hostTxBytes(sysRoot string, globs []string) (uint64, bool) {
	ents, err := os.ReadDir(filepath.Join(sysRoot, "class", "net"))
	if err != nil {
		return 0, false
	}
	var total uint64
	found := false
	for _, e := range ents {
		if !matchAny(globs, e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysRoot, "class", "net", e.Name(), "statistics", "tx_bytes"))
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			continue
		}
		total += n
		found = true
	}
	return total, found
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := filepath.Match(g, name); ok {
			return true
		}
	}
	return false
}
