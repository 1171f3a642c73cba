//go:build linux

package simulator

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ptyConn is the master side of a pty, with the simulator's own slave
// descriptor kept open (without it, reads on the master fail with EIO
// whenever no client has the device open).
type ptyConn struct {
	master *os.File
	slave  *os.File
	path   string
	once   sync.Once
}

func (p *ptyConn) Read(b []byte) (int, error)  { return p.master.Read(b) }
func (p *ptyConn) Write(b []byte) (int, error) { return p.master.Write(b) }

func (p *ptyConn) Close() error {
	var err error
	p.once.Do(func() {
		err = p.master.Close()
		p.slave.Close()
	})
	return err
}

// openPTY opens /dev/ptmx (pollable, so Close unblocks a Read), unlocks and
// names the slave, and puts the line discipline in raw mode before anything
// is written: otherwise the slave echoes the simulator's own output back and
// maps CR to LF (see pty(7), termios(3) cfmakeraw).
func openPTY() (*ptyConn, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("simulator: open /dev/ptmx: %w", err)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("simulator: pty: %w", err)
	}
	var n int
	var cerr error
	err = rc.Control(func(fd uintptr) {
		if cerr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); cerr != nil {
			return
		}
		if n, cerr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); cerr != nil {
			return
		}
		cerr = makeRaw(int(fd))
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("simulator: pty setup: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("simulator: open pty slave %s: %w", path, err)
	}
	return &ptyConn{master: m, slave: s, path: path}, nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
