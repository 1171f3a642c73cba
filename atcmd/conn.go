package atcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Conn. The zero value works; every field documents its
// default. New copies the Config and never modifies the caller's.
type Config struct {
	// MaxLineLen bounds one line from the module in bytes. A longer line is
	// discarded and fails the command in flight with a ProtocolError.
	// Zero means 4096.
	MaxLineLen int

	// Timeout gives the time allowed for a command line when the call sets
	// none with WithTimeout. Nil means DefaultTimeout. A context deadline
	// that comes earlier still wins.
	Timeout func(cmdLine string) time.Duration

	// URCQueue bounds the unsolicited lines waiting for their handler.
	// Zero means 64.
	URCQueue int

	// VendorFinals lists non-standard error final result codes. Nil means
	// DefaultVendorFinals; an empty non-nil slice means none.
	VendorFinals []string

	// BootMarkers lists lines that mean the module rebooted. Nil means
	// DefaultBootMarkers.
	BootMarkers []string

	// ErrorMode selects what Sync asks the module to report errors as.
	// The zero value is ErrorsNumeric (AT+CMEE=1), as ModemManager does;
	// some modules reject AT+CMEE=2 (warthog618/modem PR #15).
	ErrorMode ErrorMode

	// SyncAttempt is how long Sync waits for an answer to each "AT" probe.
	// Zero means 1s.
	SyncAttempt time.Duration

	// SyncTimeout bounds Sync (an earlier context deadline still wins).
	// Modules are deaf for seconds after power-up. Zero means 30s.
	SyncTimeout time.Duration

	// OnSyncAttempt, if set, is called after every "AT" probe of Sync with
	// the attempt number (from 1) and its error (nil on success), so a CLI
	// can show progress while a module boots.
	OnSyncAttempt func(attempt int, err error)

	// ResyncQuiet is how long the line must stay quiet after a command was
	// abandoned before the next command is sent, so a late answer is never
	// taken for the next one. Zero means 100ms.
	ResyncQuiet time.Duration

	// Unsolicited, if set, receives every unsolicited line that no handler
	// registered with Handle takes: boot chatter (RDY, +CPIN: READY, SMS
	// DONE), stray final result codes, unknown URCs. It runs on the URC
	// dispatcher like the handlers. Being in Config, it sees the lines that
	// arrive before New returns.
	Unsolicited func(URC)

	// Logger receives debug and warning records. Nil means no logging.
	Logger *slog.Logger
}

// ErrorMode is the AT+CMEE setting Sync applies.
type ErrorMode int

const (
	ErrorsNumeric   ErrorMode = iota // AT+CMEE=1: "+CME ERROR: 10"
	ErrorsVerbose                    // AT+CMEE=2: "+CME ERROR: SIM not inserted"
	ErrorsUnchanged                  // Sync sends no AT+CMEE
)

// Response is the answer to a command.
type Response struct {
	// Lines are the information text lines in order, without the echo,
	// the final result code, blank lines or unsolicited lines.
	Lines []string
	// Final is the final result code line: "OK" or "CONNECT <text>" on
	// success, the error line on failure, empty if none arrived.
	Final string
}

// Option adjusts one command.
type Option struct {
	timeout time.Duration
	raw     bool
}

// WithTimeout sets the time allowed for this command's final result code,
// overriding Config.Timeout.
func WithTimeout(d time.Duration) Option { return Option{timeout: d} }

// WithoutCtrlZ makes SendData write the payload exactly as given, for
// commands that take a byte count instead of a terminator (AT+QISEND=0,5,
// AT+QHTTPURL=23,80).
func WithoutCtrlZ() Option { return Option{raw: true} }

// Stats are running counts of what a Conn has seen.
type Stats struct {
	Commands       uint64 // commands sent
	Timeouts       uint64 // commands abandoned without a final result
	LateLines      uint64 // lines of abandoned commands discarded
	Resyncs        uint64 // resynchronisations after an abandoned command
	URCs           uint64 // unsolicited lines delivered to a handler
	URCDropped     uint64 // unsolicited lines dropped: queue full or no handler
	ProtocolErrors uint64 // overlong lines and garbage floods
	Resets         uint64 // boot markers seen (module reboots)
}

type counters struct {
	commands, timeouts, lateLines, resyncs, urcs, urcDropped, protocolErrors, resets atomic.Uint64
}

// pending is the command in flight. The command holder writes it before
// publishing it in Conn.cur; afterwards the reader goroutine updates it
// under Conn.mu until it is done.
type pending struct {
	line        string // "AT+CGMI"
	gen         uint64
	lines       []string
	final       string
	err         error
	done        bool
	echoSeen    bool
	urcAnswered bool   // one solicited line with a URC prefix has been taken
	numeric     bool   // accept V0 numeric finals (Sync only)
	anyFinal    bool   // resync probe: any final completes, lines are ignored
	prompt      bool   // waiting for "> "
	gotPrompt   bool   // "> " arrived; payload may be written
	payloadEcho string // echo of the payload to drop (prompt commands)
}

type writeReq struct {
	gen  uint64
	text string // command line without terminator, or payload
	raw  bool   // write text as is (payload, ESC)
}

// Conn is an AT command session on one port. It is safe for concurrent
// use: commands from several goroutines are serialised.
//
// Goroutines: the reader owns Read on the port and all parsing; the writer
// owns Write; the dispatcher runs URC handlers in order. Close stops all
// three (the reader only once Read returns, which needs an io.Closer port
// or a port error).
type Conn struct {
	rw  io.ReadWriter
	cfg Config
	log *slog.Logger

	sem        chan struct{} // held by the goroutine running a command
	wq         chan writeReq
	urcq       chan urcItem
	doneCh     chan struct{} // reader → command holder: cur changed state
	closed     chan struct{}
	readerDone chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
	closeErr   error

	wantPrompt atomic.Bool
	cancelGen  atomic.Uint64
	stats      counters

	// Guarded by mu, shared by the reader and the command holder.
	mu         sync.Mutex
	cur        *pending
	stale      bool   // a command was abandoned; its answer may still come
	staleCmd   string // which one, for the log
	lateFinals uint64 // finals seen while stale
	handlers   []handler
	trail      *urcItem // URC collecting trailing lines
	trailLeft  int
	readErr    error
	ready      []urcItem // URCs routed by the reader, not yet queued

	// Owned by the reader goroutine.
	urcStuck bool // the last URC was dropped because the queue stayed full

	woke atomic.Bool // a command holder was woken since the reader last looked

	// Owned by the command holder (sem).
	p     pending
	gen   uint64
	timer *time.Timer
}

// New starts an AT session on rw. It never opens or configures a port: the
// caller hands it an open serial port, pty or pipe. If rw is an io.Closer,
// Close closes it, which unblocks a pending Read.
func New(rw io.ReadWriter, cfg Config) *Conn {
	if cfg.MaxLineLen <= 0 {
		cfg.MaxLineLen = 4096
	}
	if cfg.Timeout == nil {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.URCQueue <= 0 {
		cfg.URCQueue = 64
	}
	if cfg.VendorFinals == nil {
		cfg.VendorFinals = DefaultVendorFinals
	}
	if cfg.BootMarkers == nil {
		cfg.BootMarkers = DefaultBootMarkers
	}
	if cfg.SyncAttempt <= 0 {
		cfg.SyncAttempt = time.Second
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = 30 * time.Second
	}
	if cfg.ResyncQuiet <= 0 {
		cfg.ResyncQuiet = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Conn{
		rw:         rw,
		cfg:        cfg,
		log:        log,
		sem:        make(chan struct{}, 1),
		wq:         make(chan writeReq),
		urcq:       make(chan urcItem, cfg.URCQueue),
		doneCh:     make(chan struct{}, 1),
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
		timer:      time.NewTimer(time.Hour),
	}
	c.timer.Stop()
	c.wg.Add(2)
	go c.writeLoop()
	go c.dispatchLoop()
	go c.readLoop()
	return c
}

// Close ends the session: pending and future commands fail with ErrClosed.
// It closes the port if it is an io.Closer and waits for the goroutines
// that it can stop.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		if cl, ok := c.rw.(io.Closer); ok {
			c.closeErr = cl.Close()
			<-c.readerDone
		}
		c.wg.Wait()
	})
	return c.closeErr
}

// Done is closed when the session can no longer be used: after Close, or
// when reading the port failed (the module was unplugged or rebooted and its
// tty vanished). Err tells which.
func (c *Conn) Done() <-chan struct{} { return c.readerDone }

// Err returns why the reader stopped: nil while running, the read error
// (io.EOF, a port error) otherwise.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	s := &c.stats
	return Stats{
		Commands: s.commands.Load(), Timeouts: s.timeouts.Load(), LateLines: s.lateLines.Load(),
		Resyncs: s.resyncs.Load(), URCs: s.urcs.Load(), URCDropped: s.urcDropped.Load(),
		ProtocolErrors: s.protocolErrors.Load(), Resets: s.resets.Load(),
	}
}

// Command sends the command line cmdLine (for example "AT+CGMI" or
// "AT+CSQ;+CREG?", without terminator) and waits for its final result code.
// On a device error the Response still holds the lines received. Every
// error is an *OpError; a missing answer satisfies
// errors.Is(err, context.DeadlineExceeded).
func (c *Conn) Command(ctx context.Context, cmdLine string, opts ...Option) (Response, error) {
	var o Option
	for _, op := range opts {
		if op.timeout > 0 {
			o.timeout = op.timeout
		}
	}
	return c.run(ctx, cmdLine, nil, o, modeNormal)
}

// SendData sends a command that prompts for data — AT+CMGS, AT+QISEND,
// AT+CIPSEND — waits for the "> " prompt (or CONNECT, which Quectel's
// AT+QHTTPURL and AT+QFUPL use instead), writes payload followed by Ctrl-Z
// (0x1A) unless the payload already ends in it or WithoutCtrlZ is given,
// and waits for the final result code. If the command is abandoned before
// its answer, ESC (0x1B) is sent so the module leaves data entry.
func (c *Conn) SendData(ctx context.Context, cmdLine string, payload []byte, opts ...Option) (Response, error) {
	var o Option
	for _, op := range opts {
		if op.timeout > 0 {
			o.timeout = op.timeout
		}
		o.raw = o.raw || op.raw
	}
	data := make([]byte, 0, len(payload)+1)
	data = append(data, payload...)
	if !o.raw && (len(data) == 0 || data[len(data)-1] != ctrlZ) {
		data = append(data, ctrlZ)
	}
	return c.run(ctx, cmdLine, data, o, modeNormal)
}

const (
	ctrlZ = 0x1a
	esc   = 0x1b
)

type runMode uint8

const (
	modeNormal runMode = iota
	modeSync           // V0 numeric finals accepted
	modeProbe          // any final completes; lines ignored; V0 accepted
)

func (c *Conn) validate(cmdLine string) error {
	if len(cmdLine) < 2 || !strings.EqualFold(cmdLine[:2], "AT") && !strings.EqualFold(cmdLine, "A/") {
		return ProtocolError(fmt.Sprintf("command line %q must start with AT", cmdLine))
	}
	if strings.ContainsAny(cmdLine, "\r\n") {
		return ProtocolError(fmt.Sprintf("command line %q contains a line terminator", cmdLine))
	}
	if len(cmdLine) > c.cfg.MaxLineLen {
		return ProtocolError(fmt.Sprintf("command line of %d bytes exceeds %d", len(cmdLine), c.cfg.MaxLineLen))
	}
	return nil
}

func (c *Conn) run(ctx context.Context, cmdLine string, data []byte, o Option, mode runMode) (Response, error) {
	if err := c.validate(cmdLine); err != nil {
		return Response{}, &OpError{Cmd: cmdLine, Err: err}
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Response{}, &OpError{Cmd: cmdLine, Err: ctx.Err()}
	case <-c.closed:
		return Response{}, &OpError{Cmd: cmdLine, Err: ErrClosed}
	}
	defer func() { <-c.sem }()
	if err := c.alive(); err != nil {
		return Response{}, &OpError{Cmd: cmdLine, Err: err}
	}
	if mode == modeNormal {
		c.mu.Lock()
		stale := c.stale
		c.mu.Unlock()
		if stale {
			if err := c.resync(ctx); err != nil {
				return Response{}, &OpError{Cmd: cmdLine, Err: err}
			}
		}
	}
	d := o.timeout
	if d <= 0 {
		d = c.cfg.Timeout(cmdLine)
	}
	return c.exchange(ctx, cmdLine, data, d, mode)
}

// alive returns ErrClosed (wrapping the read error) once the session ended.
func (c *Conn) alive() error {
	select {
	case <-c.closed:
		return ErrClosed
	case <-c.readerDone:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.readErr != nil && !errors.Is(c.readErr, ErrClosed) {
			return fmt.Errorf("%w: %w", ErrClosed, c.readErr)
		}
		return ErrClosed
	default:
		return nil
	}
}

// exchange writes one command and waits for its outcome. The caller holds
// sem.
func (c *Conn) exchange(ctx context.Context, cmdLine string, data []byte, d time.Duration, mode runMode) (Response, error) {
	c.gen++
	p := &c.p
	*p = pending{line: cmdLine, gen: c.gen, numeric: mode != modeNormal, anyFinal: mode == modeProbe, prompt: data != nil}
	if data != nil {
		p.payloadEcho = string(bytes.TrimRight(data, "\x1a"))
	}
	c.timer.Reset(d)
	defer c.timer.Stop()

	c.wantPrompt.Store(data != nil)
	c.mu.Lock()
	c.cur = p
	c.mu.Unlock()
	c.stats.commands.Add(1)

	if err := c.write(ctx, writeReq{gen: p.gen, text: cmdLine}); err != nil {
		return c.abandon(p, err, d)
	}
	for {
		select {
		case <-c.doneCh:
		case <-ctx.Done():
			return c.abandon(p, ctx.Err(), d)
		case <-c.timer.C:
			return c.abandon(p, nil, d)
		case <-c.closed:
			return c.abandon(p, ErrClosed, d)
		}
		c.mu.Lock()
		done, atPrompt := p.done, p.gotPrompt && data != nil
		c.mu.Unlock()
		if done {
			c.wantPrompt.Store(false)
			if p.err != nil {
				return Response{Lines: p.lines, Final: p.final}, &OpError{Cmd: cmdLine, Err: p.err}
			}
			return Response{Lines: p.lines, Final: p.final}, nil
		}
		if atPrompt {
			c.wantPrompt.Store(false)
			if err := c.write(ctx, writeReq{gen: p.gen, text: string(data), raw: true}); err != nil {
				return c.abandon(p, err, d)
			}
			data = nil
		}
	}
}

// write hands req to the writer goroutine.
func (c *Conn) write(ctx context.Context, req writeReq) error {
	select {
	case c.wq <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.timer.C:
		return errWriteTimeout
	case <-c.closed:
		return ErrClosed
	}
}

var errWriteTimeout = errors.New("write did not complete")

// abandon gives up on p. cause nil means the command's own timeout fired.
// If the answer completed meanwhile it is returned instead.
func (c *Conn) abandon(p *pending, cause error, d time.Duration) (Response, error) {
	c.wantPrompt.Store(false)
	c.mu.Lock()
	if p.done {
		c.mu.Unlock()
		if p.err != nil {
			return Response{Lines: p.lines, Final: p.final}, &OpError{Cmd: p.line, Err: p.err}
		}
		return Response{Lines: p.lines, Final: p.final}, nil
	}
	atPrompt := p.gotPrompt
	c.cur = nil
	c.stale = true
	c.staleCmd = p.line
	c.mu.Unlock()
	c.cancelGen.Store(p.gen)
	select { // drop a wake-up that raced with us
	case <-c.doneCh:
	default:
	}
	c.stats.timeouts.Add(1)
	if atPrompt || p.prompt {
		// Leave data entry, or the module takes our next command as payload.
		c.writeNoWait(writeReq{text: string([]byte{esc}), raw: true})
	}
	var err error
	switch {
	case cause == nil || errors.Is(cause, errWriteTimeout):
		err = &timeoutError{after: d, cause: context.DeadlineExceeded}
	case errors.Is(cause, ErrClosed):
		err = c.alive()
		if err == nil {
			err = ErrClosed
		}
	default:
		err = cause
	}
	c.log.Debug("atcmd: command abandoned", "cmd", p.line, "err", err)
	return Response{Lines: p.lines}, &OpError{Cmd: p.line, Err: err}
}

// writeNoWait queues a write without waiting longer than a moment; used for
// the ESC that cancels a prompt.
func (c *Conn) writeNoWait(req writeReq) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case c.wq <- req:
	case <-t.C:
	case <-c.closed:
	}
}

// resync makes sure no answer to an abandoned command is still on its way:
// it probes with "AT" and then waits until the line has been quiet for
// Config.ResyncQuiet with no further final result code. V.250 §5.6.1: a
// character received while a command executes may abort it; the module then
// answers the aborted command, so two finals can follow one probe.
func (c *Conn) resync(ctx context.Context) error {
	c.stats.resyncs.Add(1)
	c.mu.Lock()
	c.log.Debug("atcmd: resynchronising", "after", c.staleCmd)
	c.mu.Unlock()
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		_, err := c.exchange(ctx, "AT", nil, c.cfg.SyncAttempt, modeProbe)
		if answered(err) {
			return c.quiet(ctx)
		}
		last = err
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			break
		}
	}
	return fmt.Errorf("no answer to AT while resynchronising: %w", last)
}

// answered reports whether a probe got a final result code of any kind: an
// error final is an answer too.
func answered(err error) bool {
	return err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, ErrClosed) && !errors.Is(err, errWriteTimeout)
}

// quiet marks the line stale and waits until ResyncQuiet passes with no
// final result code arriving.
func (c *Conn) quiet(ctx context.Context) error {
	for i := 0; i < 20; i++ {
		c.mu.Lock()
		c.stale = true
		before := c.lateFinals
		c.mu.Unlock()
		c.timer.Reset(c.cfg.ResyncQuiet)
		select {
		case <-c.timer.C:
		case <-ctx.Done():
			c.timer.Stop()
			return ctx.Err()
		case <-c.closed:
			c.timer.Stop()
			return ErrClosed
		}
		c.mu.Lock()
		if c.lateFinals == before {
			c.stale = false
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
	}
	return errors.New("the module keeps sending final result codes")
}

// Sync brings a freshly opened port to a known state: it sends "AT" until
// the module answers (modules are deaf for seconds after power-up), then
// turns echo off (ATE0), selects verbose result codes (ATV1) and the error
// mode of Config.ErrorMode (AT+CMEE). Failures of ATV1 and AT+CMEE are
// tolerated and logged; some modules reject AT+CMEE=2.
func (c *Conn) Sync(ctx context.Context) error {
	// SyncTimeout bounds Sync even under a longer context deadline, so a
	// caller probing several ports gives each only its share.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SyncTimeout)
	defer cancel()
	// ESC first: a module left in text entry (AT+CMGS) by someone else would
	// take our probes as message text. In command state ESC is ignored.
	c.writeNoWait(writeReq{text: string([]byte{esc}), raw: true})
	start := time.Now()
	deadline, _ := ctx.Deadline()
	var last error
	for attempt := 1; ; attempt++ {
		wait := min(c.cfg.SyncAttempt, time.Until(deadline))
		if wait <= 0 || ctx.Err() != nil {
			if last == nil {
				last = context.Cause(ctx)
			}
			return &OpError{Cmd: "AT", Err: fmt.Errorf("no answer after %d attempts in %v: %w",
				attempt-1, time.Since(start).Round(time.Millisecond), last)}
		}
		// Every third probe also restores result codes (V.250 §6.2.5 Q0,
		// §6.2.6 V1), in case the module was left silenced (ATQ1&W).
		probe := "AT"
		if attempt%3 == 0 {
			probe = "ATQ0V1"
		}
		_, err := c.run(ctx, probe, nil, Option{timeout: wait}, modeProbe)
		if answered(err) {
			err = nil // an error answer is still an answer: the port speaks AT
		}
		if c.cfg.OnSyncAttempt != nil {
			c.cfg.OnSyncAttempt(attempt, err)
		}
		if err == nil {
			break
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		last = errors.Unwrap(err)
	}
	// The probe loop may have left answers to earlier probes in flight.
	if err := c.quietHeld(ctx); err != nil {
		return &OpError{Cmd: "AT", Err: err}
	}
	if _, err := c.run(ctx, "ATE0", nil, Option{}, modeSync); err != nil {
		return err
	}
	if _, err := c.run(ctx, "ATV1", nil, Option{}, modeSync); err != nil {
		c.log.Warn("atcmd: module rejected ATV1", "err", err)
	}
	var cmee string
	switch c.cfg.ErrorMode {
	case ErrorsNumeric:
		cmee = "AT+CMEE=1"
	case ErrorsVerbose:
		cmee = "AT+CMEE=2"
	}
	if cmee != "" {
		if _, err := c.Command(ctx, cmee); err != nil {
			c.log.Warn("atcmd: module rejected "+cmee+"; errors will be plain ERROR", "err", err)
		}
	}
	return nil
}

// quietHeld runs quiet while holding sem.
func (c *Conn) quietHeld(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	}
	defer func() { <-c.sem }()
	return c.quiet(ctx)
}

// Reset sends ATZ (restore the user profile, which turns echo back on) and
// then Sync.
func (c *Conn) Reset(ctx context.Context) error {
	if _, err := c.Command(ctx, "ATZ"); err != nil {
		return err
	}
	return c.Sync(ctx)
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	buf := make([]byte, 0, 256)
	for {
		var req writeReq
		select {
		case req = <-c.wq:
		case <-c.closed:
			return
		}
		if req.gen != 0 && req.gen == c.cancelGen.Load() {
			continue // abandoned before it was written
		}
		buf = append(buf[:0], req.text...)
		if !req.raw {
			buf = append(buf, '\r') // V.250 §5.2.1: S3 ends the command line
		}
		if err := writeFull(c.rw, buf); err != nil {
			c.mu.Lock()
			if c.cur != nil && c.cur.gen == req.gen {
				c.finishLocked(c.cur, "", fmt.Errorf("write: %w", err))
			}
			c.mu.Unlock()
		}
	}
}

func writeFull(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

func (c *Conn) dispatchLoop() {
	defer c.wg.Done()
	for {
		select {
		case it := <-c.urcq:
			it.fn(it.urc)
		case <-c.closed:
			return
		}
	}
}

func (c *Conn) readLoop() {
	fr := newFramer(c.cfg.MaxLineLen, &c.wantPrompt, c.token)
	buf := make([]byte, 512)
	var err error
	for {
		var n int
		n, err = c.rw.Read(buf)
		if n > 0 {
			fr.feed(buf[:n])
			if c.woke.Swap(false) {
				// Let the command holder we just woke run before this
				// goroutine goes back into a blocking read: a serial port's
				// Read is a syscall that keeps the P until sysmon takes it
				// back, which otherwise delays the answer by tens of µs
				// (docs/benchmarks.md, AT round trip over a pty).
				runtime.Gosched()
			}
		}
		if err != nil {
			break
		}
	}
	select {
	case <-c.closed:
		err = ErrClosed
	default:
	}
	c.mu.Lock()
	c.readErr = err
	if c.cur != nil {
		c.finishLocked(c.cur, "", fmt.Errorf("%w: %w", ErrClosed, err))
	}
	c.mu.Unlock()
	close(c.readerDone)
}

// finishLocked completes p. c.mu must be held.
func (c *Conn) finishLocked(p *pending, final string, err error) {
	p.final, p.err, p.done = final, err, true
	if c.cur == p {
		c.cur = nil
	}
	c.woke.Store(true)
	select {
	case c.doneCh <- struct{}{}:
	default:
	}
}

// token routes one framed token. It runs on the reader goroutine.
func (c *Conn) token(kind tokenKind, line []byte) {
	c.mu.Lock()
	c.tokenLocked(kind, line)
	ready := c.ready
	c.ready = c.ready[:0]
	c.mu.Unlock()
	// Hand URCs to the dispatcher outside the lock, so that a full queue
	// slows the reader down (back-pressure) without freezing the command
	// holder. A handler stuck for longer than urcWait loses URCs instead.
	for _, it := range ready {
		c.deliver(it)
	}
}

// urcWait is how long the reader waits for room in a full URC queue before
// it drops the URC.
const urcWait = time.Second

func (c *Conn) deliver(it urcItem) {
	select {
	case c.urcq <- it:
		c.stats.urcs.Add(1)
		c.urcStuck = false
		return
	default:
	}
	if !c.urcStuck {
		t := time.NewTimer(urcWait)
		defer t.Stop()
		select {
		case c.urcq <- it:
			c.stats.urcs.Add(1)
			return
		case <-t.C:
		case <-c.closed:
		}
	}
	c.urcStuck = true // drop at once until the queue takes one again
	c.stats.urcDropped.Add(1)
	c.log.Warn("atcmd: URC queue full, dropped", "line", it.urc.Line, "queue", cap(c.urcq))
}

func (c *Conn) tokenLocked(kind tokenKind, line []byte) {
	switch kind {
	case tokOverflow:
		c.stats.protocolErrors.Add(1)
		if p := c.cur; p != nil && !p.anyFinal {
			c.finishLocked(p, "", ProtocolError(fmt.Sprintf("line longer than %d bytes", c.cfg.MaxLineLen)))
			c.stale, c.staleCmd = true, p.line
		} else {
			c.log.Warn("atcmd: discarded a line longer than the limit", "max", c.cfg.MaxLineLen)
		}
		return
	case tokPrompt:
		if p := c.cur; p != nil && p.prompt && !p.gotPrompt {
			p.gotPrompt = true
			select {
			case c.doneCh <- struct{}{}:
			default:
			}
		}
		return
	}
	c.lineLocked(line)
}

func (c *Conn) lineLocked(line []byte) {
	// Trailing lines of a URC come first: a PDU may look like anything.
	if c.trail != nil {
		c.trail.urc.Trailing = append(c.trail.urc.Trailing, string(line))
		if c.trailLeft--; c.trailLeft == 0 {
			c.enqueueLocked(*c.trail)
			c.trail = nil
		}
		return
	}
	p := c.cur
	if isBootMarker(line, c.cfg.BootMarkers) {
		c.stats.resets.Add(1)
		if p != nil {
			c.finishLocked(p, "", ErrReset)
		}
		c.stale = false // the module forgot whatever was abandoned
		c.unsolicitedLocked(line)
		return
	}
	if p == nil {
		c.idleLineLocked(line)
		return
	}
	if !p.echoSeen && string(line) == p.line {
		p.echoSeen = true
		return
	}
	if p.gotPrompt && p.payloadEcho != "" && string(bytes.TrimRight(line, "\x1a")) == p.payloadEcho {
		return // the module echoes the payload (node-pdu #22 log)
	}
	kind := ClassifyFinal(line, c.cfg.VendorFinals)
	var err error
	if kind == NotFinal && p.numeric {
		kind, err = numericFinal(line)
	}
	if kind == FinalConnect && p.prompt && !p.gotPrompt {
		// Quectel AT+QHTTPURL/AT+QFUPL: CONNECT asks for the data.
		p.gotPrompt = true
		select {
		case c.doneCh <- struct{}{}:
		default:
		}
		return
	}
	switch kind {
	case FinalOK, FinalConnect:
		c.finishLocked(p, finalString(line), nil)
		return
	case FinalError, FinalCall:
		if err == nil {
			err = finalError(line)
		}
		c.finishLocked(p, string(line), err)
		return
	}
	if c.isUnsolicitedLocked(p, line) {
		c.unsolicitedLocked(line)
		return
	}
	if p.anyFinal {
		c.stats.lateLines.Add(1)
		return
	}
	p.lines = append(p.lines, string(line))
}

func finalString(line []byte) string {
	if string(line) == "OK" {
		return "OK"
	}
	return string(line)
}

// isUnsolicitedLocked decides whether line, received while p runs, is a URC
// rather than part of p's answer: it must look like one (a handler or a
// known URC prefix matches) and not be the first line answering a command
// of the same name ("+CREG: 0,1" to AT+CREG? — FreeRTOS-Cellular-Interface
// #89 is what happens otherwise).
func (c *Conn) isUnsolicitedLocked(p *pending, line []byte) bool {
	matched := c.handlerLocked(line) != nil
	if !matched {
		_, matched = knownURCTrailing(line)
	}
	if !matched {
		return false
	}
	name := urcName(line)
	if name != "" && !p.urcAnswered && hasCommandName(p.line, name) {
		p.urcAnswered = true
		return false
	}
	return true
}

func (c *Conn) idleLineLocked(line []byte) {
	if !c.stale {
		c.unsolicitedLocked(line)
		return
	}
	if ClassifyFinal(line, c.cfg.VendorFinals) != NotFinal {
		c.lateFinals++
		c.stale = false
		c.stats.lateLines.Add(1)
		c.log.Debug("atcmd: discarded the late final result of an abandoned command", "cmd", c.staleCmd, "line", string(line))
		return
	}
	if c.handlerLocked(line) != nil {
		c.unsolicitedLocked(line)
		return
	}
	if _, ok := knownURCTrailing(line); ok {
		c.unsolicitedLocked(line)
		return
	}
	c.stats.lateLines.Add(1)
	c.log.Debug("atcmd: discarded a late line of an abandoned command", "cmd", c.staleCmd, "line", string(line))
}

func (c *Conn) handlerLocked(line []byte) *handler {
	for i := range c.handlers {
		h := &c.handlers[i]
		if len(line) >= len(h.prefix) && string(line[:len(h.prefix)]) == h.prefix {
			return h
		}
	}
	return nil
}

// unsolicitedLocked delivers line to its handler, or to the catch-all.
func (c *Conn) unsolicitedLocked(line []byte) {
	fn, trailing := c.cfg.Unsolicited, 0
	if h := c.handlerLocked(line); h != nil {
		fn, trailing = h.fn, h.trailing
	} else if t, ok := knownURCTrailing(line); ok {
		trailing = t
	}
	it := urcItem{fn: fn, urc: URC{Line: string(line)}}
	if trailing > 0 {
		c.trail, c.trailLeft = &it, trailing
		return
	}
	c.enqueueLocked(it)
}

func (c *Conn) enqueueLocked(it urcItem) {
	if it.fn == nil {
		c.stats.urcDropped.Add(1)
		c.log.Debug("atcmd: unsolicited line with no handler", "line", it.urc.Line)
		return
	}
	c.ready = append(c.ready, it)
}
