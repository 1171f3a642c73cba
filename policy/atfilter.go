package policy

// ATFilter is the AT firewall for one client of the proxy: it adds to
// CheckATLine what needs the conversation so far.
//   - "A/" repeats the last line the module received from this client
//     (V.250 §5.2.4), so it is decided as that line and Forward is that
//     line: the proxy sends the line itself, which also stays correct when
//     the agent's own commands were interleaved on the port.
//   - The client's +CMEE setting, which shapes the refusal reply, follows
//     the +CMEE=n lines the module accepted, and ATZ/AT&F restore the
//     initial value.
//
// An ATFilter is owned by the proxy goroutine serving that client; it is not
// safe for concurrent use. The Policy it reads is.
type ATFilter struct {
	p           *Policy
	initialCMEE int
	cmee        int    // the client's +CMEE as the module has accepted it
	last        string // the last line forwarded to the module
	pending     lineInfo
	hasPending  bool
}

// NewATFilter returns a filter for one client; cmee is the module's +CMEE
// setting when the client connects (read with AT+CMEE?; 0 when unknown).
func NewATFilter(p *Policy, cmee int) *ATFilter {
	return &ATFilter{p: p, initialCMEE: cmee, cmee: cmee}
}

// CMEE returns the client's +CMEE setting as the filter tracks it.
func (f *ATFilter) CMEE() int { return f.cmee }

// Check decides one line from the client. When the decision is not Deny,
// the proxy sends Decision.Forward to the module and later reports the
// module's final result with Done.
func (f *ATFilter) Check(line string) Decision {
	f.hasPending = false
	d, info := f.p.checkLine(line)
	if info.repeat {
		if f.last == "" {
			return Decision{Action: Deny, Rule: "at-syntax", Command: "A/",
				Reason: "A/ repeats a line, but this client has sent none yet"}.finish("", f.cmee)
		}
		d, info = f.p.checkLine(f.last)
		d = d.finish(f.last, f.cmee)
		if d.Action != Deny {
			f.pending, f.hasPending = info, true
		}
		return d
	}
	d = d.finish(line, f.cmee)
	if d.Action != Deny && trimSpaces(trimEOL(line)) != "" {
		f.pending, f.hasPending = info, true
		f.last = trimEOL(line)
	}
	return d
}

// Done reports the module's final result code for the last forwarded line:
// ok is true for OK (or CONNECT), false for ERROR/+CME ERROR. Settings the
// line changed are tracked only when the module accepted it.
func (f *ATFilter) Done(ok bool) {
	if !f.hasPending {
		return
	}
	f.hasPending = false
	if !ok {
		return
	}
	if f.pending.reset {
		f.cmee = f.initialCMEE
	}
	if f.pending.cmee >= 0 {
		f.cmee = f.pending.cmee
	}
}

func trimEOL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\r' || s[len(s)-1] == '\n') {
		s = s[:len(s)-1]
	}
	return s
}
