//go:build !linux

package simulator

import (
	"fmt"
	"runtime"
)

type ptyConn struct{ path string }

func (p *ptyConn) Read([]byte) (int, error)  { return 0, fmt.Errorf("simulator: pty unsupported") }
func (p *ptyConn) Write([]byte) (int, error) { return 0, fmt.Errorf("simulator: pty unsupported") }
func (p *ptyConn) Close() error              { return nil }

func openPTY() (*ptyConn, error) {
	return nil, fmt.Errorf("simulator: pty transport is implemented for linux only, not GOOS=%s; use Modem.Pipe", runtime.GOOS)
}
