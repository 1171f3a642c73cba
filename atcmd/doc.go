// Package atcmd is the AT command engine: it turns the byte stream of a
// cellular module's AT port into commands, answers and unsolicited result
// codes (URCs), and never opens a port itself — New takes any
// io.ReadWriter (a go.bug.st/serial port, a pty, a net.Pipe).
//
// # Layers
//
//	bytes → framer (lines, the "> " prompt) → router → Response | URC handler
//
// The framer accepts "\r\n", "\r\r\n", "\r" and "\n" line endings, drops
// NULs and bounds each line (Config.MaxLineLen), so garbage costs fixed
// memory. The router decides for every line whether it is the echo of the
// command in flight, a final result code (ClassifyFinal: OK, CONNECT, ERROR,
// +CME ERROR, +CMS ERROR, call-progress codes, vendor finals), an
// unsolicited line (a registered handler or a known URC such as +CREG: or
// RDY), or an information line of the answer.
//
// # Who owns what
//
// One reader goroutine owns Read and all parsing; one writer goroutine owns
// Write; one dispatcher goroutine runs URC handlers in arrival order from a
// bounded queue. Commands are serialised: at most one is in flight, and the
// state it shares with the reader is guarded by Conn.mu.
//
// # URCs in the middle of an answer
//
// A line that looks unsolicited goes to its handler only, never into the
// answer, even when it arrives between the information lines and OK. The
// one exception is the first line whose name matches the running command
// ("+CREG: 0,1" while AT+CREG? runs), which is the answer.
//
// # Timeouts and resynchronisation
//
// Each command has a timeout (DefaultTimeout: 5 s for most, 180 s for
// AT+COPS=?, ...), and the caller's context can cut it shorter; a missing
// answer satisfies errors.Is(err, context.DeadlineExceeded). A late answer
// to an abandoned command must never become the answer to the next one, so
// before the next command the engine sends "AT" and waits until the line has
// been quiet (Config.ResyncQuiet) with no further final result code.
//
// # Errors
//
// Every command error is an *OpError naming the command. Its cause is one of
// ErrError (also matched by *CMEError, *CMSError and *VendorError), a
// call-progress sentinel, ErrReset (the module rebooted: a boot marker such
// as RDY arrived), ErrClosed, a ProtocolError or a timeout.
package atcmd
