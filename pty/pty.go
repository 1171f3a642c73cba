// Package pty opens pseudo-terminals in raw mode for programs that must
// look like a serial port: the simulator serves a modem on one, the AT
// firewall proxy serves the filtered modem port on one. A stable symlink
// (Link) gives the changing /dev/pts/N a name such as /run/modemguard/ttyAT0.
package pty

import (
	"fmt"
	"os"
	"path/filepath"
)

// Link makes link a symlink to target, atomically replacing an existing
// symlink. Any other existing file at link is an error that names it.
func Link(link, target string) error {
	if link == "" {
		return nil
	}
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fmt.Errorf("pty: %s exists and is not a symlink; remove it or choose another path", link)
	}
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("pty: link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pty: link %s: %w", link, err)
	}
	return nil
}

// Unlink removes link if it still points at target, so a newer link made by
// someone else is left alone.
func Unlink(link, target string) {
	if link == "" {
		return
	}
	if t, err := os.Readlink(link); err == nil && t == target {
		_ = os.Remove(link)
	}
}
