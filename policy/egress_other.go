//go:build !linux

package policy

import (
	"fmt"
	"runtime"
)

// EgressOptions configure ApplyEgress and ClearEgress.
type EgressOptions struct {
	// NetNSPath is a network namespace to work in; Linux only.
	NetNSPath string
}

// ApplyEgress needs Linux nftables.
func ApplyEgress(plan *EgressPlan, opts *EgressOptions) error {
	return fmt.Errorf("policy: host egress filtering needs Linux nftables; not available on %s/%s", runtime.GOOS, runtime.GOARCH)
}

// ClearEgress needs Linux nftables.
func ClearEgress(opts *EgressOptions) error {
	return fmt.Errorf("policy: host egress filtering needs Linux nftables; not available on %s/%s", runtime.GOOS, runtime.GOARCH)
}
