package atcmd

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel errors. Callers branch on these with errors.Is.
var (
	// ErrClosed is returned once the Conn is closed, or once the underlying
	// port failed (read error, EOF). The cause, if any, is in Conn.Err.
	ErrClosed = errors.New("atcmd: closed")

	// ErrError is the plain ERROR final result code. Every error-type final
	// result (*CMEError, *CMSError, *VendorError) also matches it with
	// errors.Is, so "the module refused the command" is one test.
	ErrError = errors.New("atcmd: ERROR")

	// ErrReset reports that the module rebooted while a command was in
	// flight: a boot marker such as RDY arrived instead of an answer.
	ErrReset = errors.New("atcmd: module reset during command")

	// Call-progress finals (ITU-T V.250 §5.7.1).
	ErrNoCarrier  = errors.New("atcmd: NO CARRIER")
	ErrBusy       = errors.New("atcmd: BUSY")
	ErrNoAnswer   = errors.New("atcmd: NO ANSWER")
	ErrNoDialtone = errors.New("atcmd: NO DIALTONE")
)

// CMEError is a +CME ERROR final result code (3GPP TS 27.007 §9.2): a
// mobile-equipment error. Code is -1 when the module reported text only
// (AT+CMEE=2 on a code we do not know, or an empty value).
type CMEError struct {
	Code int
	Text string
}

func (e *CMEError) Error() string { return formatDeviceError("+CME ERROR", e.Code, e.Text) }

// Is makes a *CMEError match ErrError.
func (e *CMEError) Is(target error) bool { return target == ErrError }

// CMSError is a +CMS ERROR final result code (3GPP TS 27.005 §3.2.5): a
// message-service error.
type CMSError struct {
	Code int
	Text string
}

func (e *CMSError) Error() string { return formatDeviceError("+CMS ERROR", e.Code, e.Text) }

// Is makes a *CMSError match ErrError.
func (e *CMSError) Is(target error) bool { return target == ErrError }

// VendorError is a non-standard error final result code such as Huawei's
// "COMMAND NOT SUPPORT" (see Config.VendorFinals).
type VendorError struct {
	Text string
}

func (e *VendorError) Error() string { return "atcmd: " + e.Text }

// Is makes a *VendorError match ErrError.
func (e *VendorError) Is(target error) bool { return target == ErrError }

func formatDeviceError(kind string, code int, text string) string {
	switch {
	case code < 0 && text == "":
		return "atcmd: " + kind
	case code < 0:
		return "atcmd: " + kind + ": " + text
	case text == "":
		return "atcmd: " + kind + ": " + strconv.Itoa(code)
	default:
		return "atcmd: " + kind + ": " + strconv.Itoa(code) + " (" + text + ")"
	}
}

// ProtocolError describes input that breaks the AT framing: a line longer
// than Config.MaxLineLen, a flood of bytes with no line terminator, an
// invalid command line handed to Command.
type ProtocolError string

func (e ProtocolError) Error() string { return "atcmd: protocol error: " + string(e) }

// OpError records which command failed and why. Every error returned by a
// command method is an *OpError; inspect Err with errors.Is and errors.As.
type OpError struct {
	// Cmd is the command line as sent, for example "AT+CGSN".
	Cmd string
	// Err is the cause: ErrError, *CMEError, context.DeadlineExceeded, ...
	Err error
}

var _ interface{ Unwrap() error } = (*OpError)(nil)

func (e *OpError) Error() string {
	// Device errors already carry the "atcmd: " prefix; avoid repeating it.
	msg := e.Err.Error()
	if len(msg) > 7 && msg[:7] == "atcmd: " {
		msg = msg[7:]
	}
	return "atcmd: " + e.Cmd + ": " + msg
}

func (e *OpError) Unwrap() error { return e.Err }

// timeoutError is the cause of a command that got no final result in time.
// It matches context.DeadlineExceeded through Unwrap.
type timeoutError struct {
	after time.Duration
	cause error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no final result code within %v (%v)", e.after, e.cause)
}

func (e *timeoutError) Unwrap() error { return e.cause }

// Timeout reports true, like net.Error.
func (e *timeoutError) Timeout() bool { return true }
