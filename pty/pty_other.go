//go:build !linux

package pty

import (
	"fmt"
	"runtime"
)

// PTY is implemented on Linux only.
type PTY struct{}

func (p *PTY) Path() string              { return "" }
func (p *PTY) Read([]byte) (int, error)  { return 0, errUnsupported }
func (p *PTY) Write([]byte) (int, error) { return 0, errUnsupported }
func (p *PTY) Close() error              { return nil }

var errUnsupported = fmt.Errorf("pty: pseudo-terminals are implemented for linux only, not GOOS=%s", runtime.GOOS)

// Open is implemented on Linux only.
func Open() (*PTY, error) { return nil, errUnsupported }
