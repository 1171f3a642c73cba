package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/agent"
	"github.com/modemguard/modemguard/atcmd"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
)

// exitDenied is the exit code when the policy denies a module.
const exitDenied = 3

type scanOptions struct {
	policy  string
	port    string
	baud    int
	jsonOut bool
	vendors string
	timeout time.Duration
	trace   bool
}

func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scan", "--port PATH|auto [flags]", stderr)
	var o scanOptions
	fs.StringVar(&o.port, "port", "auto", "serial `PATH` of the module's AT port (/dev/ttyUSB2, /dev/serial/by-id/...), or auto to find USB modules")
	fs.IntVar(&o.baud, "baud", 115200, "baud rate; USB ports ignore it, UART-attached modules (ttyAMA0, ttyS0) need the right one")
	fs.BoolVar(&o.jsonOut, "json", false, "print JSON: one object per module (an array when several)")
	fs.StringVar(&o.policy, "policy", "", "judge each module against this policy `FILE` (docs/policy.md); exit 3 when it denies one")
	fs.StringVar(&o.vendors, "vendors", "", "vendor registry `FILE` to lay over the built-in one (same format as modem/vendors.yaml)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up after this long; a module that is still booting answers only after seconds")
	fs.BoolVar(&o.trace, "trace", false, "log every byte exchanged with the module to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.baud <= 0 {
		return &usageError{msg: fmt.Sprintf("--baud %d: must be a positive baud rate such as 115200", o.baud)}
	}
	reg := modem.DefaultRegistry()
	if o.vendors != "" {
		var err error
		if reg, err = modem.LoadRegistry(reg, o.vendors); err != nil {
			return err
		}
	}
	var pol *policy.Policy
	if o.policy != "" {
		var err error
		if pol, err = policy.Load(o.policy); err != nil {
			return policyLoadError("policy not loaded, nothing scanned", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	prog := newProgress(stderr)
	defer prog.done()

	var mods []*modem.Module
	var missed []string
	if o.port == "auto" {
		var err error
		if mods, missed, err = scanAuto(ctx, o, reg, prog, stderr); err != nil {
			return err
		}
	} else {
		usb := usbFor(o.port)
		m, err := scanPort(ctx, o.port, o, reg, usb, prog, stderr, o.timeout)
		if err != nil {
			return err
		}
		mods = append(mods, m)
	}
	prog.done()
	denied := false
	if pol != nil {
		for _, m := range mods {
			v := agent.Judge(pol, m)
			m.Verdict = v.Action.String()
			denied = denied || v.Action == policy.Deny
		}
	}
	if err := printScan(stdout, mods, o.jsonOut); err != nil {
		return err
	}
	for _, m := range missed {
		fmt.Fprintf(stderr, "warning: a USB device was not identified: %s\n", m)
	}
	if denied {
		return errDenied
	}
	if pol != nil && len(missed) > 0 {
		return fmt.Errorf("%d USB device(s) could not be identified, so the policy could not judge them", len(missed))
	}
	return nil
}

// errDenied makes the exit code 3: the policy denies a module.
var errDenied = errors.New("the policy denies a module")

func printScan(stdout io.Writer, mods []*modem.Module, jsonOut bool) error {
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(mods) == 1 {
			return enc.Encode(mods[0])
		}
		return enc.Encode(mods)
	}
	for i, m := range mods {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := printModule(stdout, m, isTerminal(stdout)); err != nil {
			return err
		}
	}
	return nil
}

// scanAuto discovers USB modules and identifies each through the first of
// its AT ports that answers.
// It returns the modules found and, for the devices where no port
// answered, what was tried.
func scanAuto(ctx context.Context, o scanOptions, reg *modem.Registry, prog *progress, stderr io.Writer) ([]*modem.Module, []string, error) {
	cands, err := modem.Discover()
	if err != nil {
		return nil, nil, fmt.Errorf("discovering USB modules: %w", err)
	}
	if len(cands) == 0 {
		return nil, nil, errors.New("no USB serial device found; check `lsusb` and `ls /dev/ttyUSB* /dev/ttyACM*`, or pass --port PATH for a UART-attached module")
	}
	var mods []*modem.Module
	var tried []string
	for _, c := range cands {
		var last error
		for _, p := range c.AT {
			usb := &modem.USBInfo{VID: c.VID, PID: c.PID, Interface: p.Interface}
			// A port that is not the AT port stays silent: give it a few probes only.
			m, err := scanPort(ctx, p.Path, o, reg, usb, prog, stderr, 4*time.Second)
			if err == nil {
				mods = append(mods, m)
				last = nil
				break
			}
			last = err
			if ctx.Err() != nil {
				break
			}
		}
		if last != nil {
			tried = append(tried, fmt.Sprintf("%s:%s %s (%s): %v", c.VID, c.PID, c.Product, c.Rule, last))
		}
	}
	if len(mods) == 0 {
		return nil, nil, fmt.Errorf("no USB device answered AT:\n  %s", strings.Join(tried, "\n  "))
	}
	return mods, tried, nil
}

// usbFor finds the USB identity of a port path, following symlinks such as
// /dev/serial/by-id/…-if02-port0, so it can be checked against the AT
// answers. It returns nil for ports not on USB or when discovery fails.
func usbFor(path string) *modem.USBInfo {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil
	}
	cands, err := modem.Discover()
	if err != nil {
		return nil
	}
	for _, c := range cands {
		for _, p := range c.Ports {
			if p.Path == real {
				return &modem.USBInfo{VID: c.VID, PID: c.PID, Interface: p.Interface}
			}
		}
	}
	return nil
}

// scanPort opens one port, syncs and identifies the module on it.
func scanPort(ctx context.Context, path string, o scanOptions, reg *modem.Registry, usb *modem.USBInfo, prog *progress, stderr io.Writer, syncFor time.Duration) (*modem.Module, error) {
	port, err := serial.Open(path, &serial.Mode{BaudRate: o.baud})
	if err != nil {
		return nil, openError(path, err)
	}
	var rw io.ReadWriteCloser = port
	if o.trace {
		rw = atcmd.NewTrace(port, stderr)
	}
	conn := atcmd.New(rw, atcmd.Config{
		SyncTimeout: syncFor,
		OnSyncAttempt: func(n int, err error) {
			if err != nil {
				prog.say(fmt.Sprintf("%s: no answer to AT yet (probe %d; a booting module is deaf for seconds)", path, n))
			}
		},
	})
	defer conn.Close()
	prog.say(path + ": syncing")
	if err := conn.Sync(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w\n  check that this is the module's AT port (not its DIAG or NMEA port), that the baud rate is right (--baud, now %d) and that the module is powered", path, err, o.baud)
	}
	m, err := modem.Identify(ctx, conn, modem.Options{
		Registry: reg, USB: usb,
		Progress: func(step string) { prog.say(path + ": reading " + step) },
	})
	if err != nil {
		return nil, fmt.Errorf("%s: identifying the module: %w", path, err)
	}
	m.Port = path
	return m, nil
}

// openError turns a serial open failure into a message that says what to
// check.
func openError(path string, err error) error {
	var pe *serial.PortError
	code := serial.PortErrorCode(-1)
	if errors.As(err, &pe) {
		code = pe.Code()
	}
	// go.bug.st/serial passes some open(2) errors through unwrapped.
	switch {
	case code == serial.PortNotFound || errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: no such port; list candidates with `modemguard scan --port auto` or `ls /dev/ttyUSB* /dev/ttyACM*`", path)
	case code == serial.PermissionDenied || errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied; add the user to the dialout group (sudo usermod -aG dialout $USER, then log in again) or run as root", path)
	case code == serial.PortBusy || errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%s: the port is busy: another program holds it — is ModemManager running? (systemctl stop ModemManager, or tag the port ID_MM_PORT_IGNORE in udev)", path)
	case code == serial.InvalidSpeed:
		return fmt.Errorf("%s: the port refuses this baud rate; try --baud 115200 or 57600", path)
	}
	return fmt.Errorf("%s: opening the port: %w", path, err)
}

func printModule(w io.Writer, m *modem.Module, color bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	vendor := m.Vendor
	if m.VendorName != "" {
		vendor = fmt.Sprintf("%s (%s)", m.VendorName, m.Vendor)
	}
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("port", m.Port)
	if m.Verdict != "" {
		row("verdict", colorVerdict(m.Verdict, color))
	}
	row("module", strings.TrimSpace(m.Manufacturer+" "+m.Model))
	row("vendor", vendor)
	origin := m.OriginCountry
	if origin == "" {
		origin = "unknown"
	}
	row("origin", origin)
	lists := "none"
	if len(m.Lists) > 0 {
		lists = strings.Join(m.Lists, ", ")
	}
	row("lists", lists)
	row("firmware", m.Firmware)
	if m.FirmwareDetail != m.Firmware {
		row("firmware detail", m.FirmwareDetail)
	}
	if m.IMEI != "" {
		row("IMEI", fmt.Sprintf("%s (TAC %s)", m.IMEI, m.TAC))
	}
	row("SIM", m.SIM)
	row("IMSI", m.IMSI)
	row("ICCID", m.ICCID)
	n := m.Network
	netw := n.State
	if n.PLMN != "" {
		netw += ", " + strings.TrimSpace(n.Operator+" "+n.PLMN)
	}
	if n.RAT != "" {
		netw += ", " + n.RAT
	}
	if n.Signal != nil {
		netw += fmt.Sprintf(", %d dBm", *n.Signal)
	}
	row("network", netw)
	row("APN", n.APN)
	if m.USB.VID != "" {
		usb := m.USB.VID + ":" + m.USB.PID
		if m.USB.Interface >= 0 {
			usb += fmt.Sprintf(" interface %d", m.USB.Interface)
		}
		row("USB", usb)
	}
	if len(m.Findings) == 0 {
		row("findings", "none")
	}
	for i, f := range m.Findings {
		k := ""
		if i == 0 {
			k = "findings"
		}
		fmt.Fprintf(tw, "%s\t%s %s: %s\n", k, f.Severity, f.ID, f.Detail)
	}
	return tw.Flush()
}

// progress shows one updating status line on a terminal and nothing
// elsewhere (so --json output piped to a file stays clean).
type progress struct {
	w    io.Writer
	tty  bool
	last int
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// colorVerdict colours a verdict with ANSI SGR codes on a terminal
// (NO_COLOR, no-color.org, turns it off).
func colorVerdict(v string, color bool) string {
	if !color || os.Getenv("NO_COLOR") != "" {
		return strings.ToUpper(v)
	}
	code := map[string]string{"allow": "32", "alert": "33", "deny": "1;31"}[v]
	return "\x1b[" + code + "m" + strings.ToUpper(v) + "\x1b[0m"
}

func (p *progress) say(s string) {
	if !p.tty {
		return
	}
	pad := ""
	if n := p.last - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", s, pad)
	p.last = len(s)
}

func (p *progress) done() {
	if p.tty && p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
		p.last = 0
	}
}
