//go:build !linux

package modem

import (
	"fmt"
	"runtime"
)

// Discover is implemented on Linux only.
func Discover() ([]Candidate, error) {
	return nil, fmt.Errorf("modem: USB discovery is not implemented on %s; pass the port path instead of auto", runtime.GOOS)
}
