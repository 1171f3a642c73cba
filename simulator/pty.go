package simulator

import (
	"context"
	"fmt"

	"github.com/modemguard/modemguard/pty"
)

// PTYOptions configures ServePTY. The zero value serves the primary AT port
// on a new pty with no symlink.
type PTYOptions struct {
	// Link, when set, is created as a symlink to the pty's slave device
	// (e.g. "/tmp/gw/ttyUSB2"), replaced when the pty is re-created after a
	// reboot, and removed when serving stops. An existing symlink at Link is
	// replaced; any other existing file is an error.
	Link string
	// Port is the AT port index to serve (0 = primary; see USB.ATPorts).
	Port int
	// KeepOnReboot keeps the pty across simulated reboots. By default the
	// pty vanishes on reboot (the client's reads fail, the link is removed)
	// and a new one appears when the module's USB ports come back, as a real
	// module re-enumerating on USB.
	KeepOnReboot bool
}

// ServePTY serves one AT port on a new pseudo-terminal and returns the
// slave's path. Serving runs in the background until ctx is done or the
// modem is closed. The pty is in raw mode before any byte is written, and
// the simulator keeps a slave descriptor open so that clients can close and
// reopen the device.
func (m *Modem) ServePTY(ctx context.Context, o PTYOptions) (string, error) {
	if o.Port < 0 || o.Port >= len(m.p.USB.ATPorts()) {
		return "", fmt.Errorf("simulator: pty port %d: profile %s has AT ports 0..%d", o.Port, m.p.Name, len(m.p.USB.ATPorts())-1)
	}
	pt, err := pty.Open()
	if err != nil {
		return "", err
	}
	if err := pty.Link(o.Link, pt.Path()); err != nil {
		pt.Close()
		return "", err
	}
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		pt.Close()
		pty.Unlink(o.Link, pt.Path())
		return "", ErrClosed
	default:
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.servePTY(ctx, o, pt)
	return pt.Path(), nil
}

func (m *Modem) servePTY(ctx context.Context, o PTYOptions, pt *pty.PTY) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		down := m.downCh
		m.mu.Unlock()
		ch := m.attach(o.Port, pt)
		path := pt.Path()
	wait:
		select {
		case <-ctx.Done():
			ch.stop()
			pty.Unlink(o.Link, path)
			return
		case <-m.done:
			ch.stop()
			pty.Unlink(o.Link, path)
			return
		case <-ch.done:
			// the pty failed underneath us; nothing to serve any more
			pty.Unlink(o.Link, path)
			m.log.Warn("simulator: pty closed", "path", path)
			return
		case <-down:
			if o.KeepOnReboot {
				m.mu.Lock()
				down = m.downCh
				m.mu.Unlock()
				goto wait
			}
		}
		// the module rebooted: the USB device vanishes
		ch.stop()
		pty.Unlink(o.Link, path)
		m.mu.Lock()
		up := m.usbUpCh
		m.mu.Unlock()
		select {
		case <-up:
		case <-ctx.Done():
			return
		case <-m.done:
			return
		}
		var err error
		pt, err = pty.Open()
		if err != nil {
			m.log.Error("simulator: re-create pty after reboot", "err", err)
			return
		}
		if err := pty.Link(o.Link, pt.Path()); err != nil {
			m.log.Error("simulator: re-link pty after reboot", "err", err)
		}
	}
}
