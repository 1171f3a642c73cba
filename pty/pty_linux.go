//go:build linux

package pty

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// PTY is the master side of a pseudo-terminal with its own slave
// descriptor kept open: without it, reads on the master fail with EIO
// whenever no client has the device open, so clients could not close and
// reopen the port. Read and Write are the master's; Close unblocks a Read.
type PTY struct {
	master *os.File
	slave  *os.File
	path   string
	once   sync.Once
}

var _ io.ReadWriteCloser = (*PTY)(nil)

// Path is the slave device, /dev/pts/N.
func (p *PTY) Path() string { return p.path }

func (p *PTY) Read(b []byte) (int, error)  { return p.master.Read(b) }
func (p *PTY) Write(b []byte) (int, error) { return p.master.Write(b) }

// Close closes both sides.
func (p *PTY) Close() error {
	var err error
	p.once.Do(func() {
		err = p.master.Close()
		p.slave.Close()
	})
	return err
}

// Open opens /dev/ptmx (pollable, so Close unblocks a Read), unlocks and
// names the slave, and puts the line discipline in raw mode before anything
// is written: otherwise the slave echoes our own output back and maps CR to
// LF (pty(7), termios(3) cfmakeraw).
func Open() (*PTY, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pty: open /dev/ptmx: %w", err)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pty: %w", err)
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
		return nil, fmt.Errorf("pty: setup: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pty: open slave %s: %w", path, err)
	}
	return &PTY{master: m, slave: s, path: path}, nil
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
