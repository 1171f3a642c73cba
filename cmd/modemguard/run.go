package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/modemguard/modemguard/agent"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "--config FILE [flags]", stderr)
	cfgPath := fs.String("config", "/etc/modemguard/config.yaml", "configuration `FILE` (docs/configuration.md)")
	logFormat := fs.String("log-format", "text", "log format: text or json (json for journald and log shippers)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return &usageError{msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return &usageError{msg: fmt.Sprintf("--log-format %q: want text or json", *logFormat)}
	}
	log := slog.New(h)

	cfg, err := agent.LoadConfig(*cfgPath)
	if err != nil {
		return fmt.Errorf("not started:\n%w", err)
	}
	reg, err := registryFor(cfg)
	if err != nil {
		return err
	}
	pol := loadPolicy(cfg, log, nil)

	var metrics *agent.Metrics
	if cfg.Metrics.Listen != "" {
		metrics = agent.NewMetrics()
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w (choose another metrics.listen or delete it)", cfg.Metrics.Listen, err)
		}
		srv := &http.Server{Handler: metricsMux(metrics), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}

	notify := sdNotifier()
	a, err := agent.New(agent.Options{
		Config: cfg, Policy: pol, Registry: reg, Version: version,
		OpenPort: func(path string, baud int) (io.ReadWriteCloser, error) {
			p, err := serial.Open(path, &serial.Mode{BaudRate: baud})
			if err != nil {
				return nil, openError(path, err)
			}
			return p, nil
		},
		Notify:           notify,
		WatchdogInterval: watchdogInterval(),
		Metrics:          metrics,
		Logger:           log,
	})
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			newCfg, err := agent.LoadConfig(*cfgPath)
			if err != nil {
				log.Error("reload: the new configuration has errors; keeping the running one", "err", err)
				continue
			}
			a.Reload(newCfg, loadPolicy(newCfg, log, a.Policy()))
		}
	}
}

func registryFor(cfg *agent.Config) (*modem.Registry, error) {
	if cfg.Vendors == "" {
		return modem.DefaultRegistry(), nil
	}
	return modem.LoadRegistry(modem.DefaultRegistry(), cfg.Vendors)
}

// loadPolicy loads the configured policy. At start (running == nil) a
// policy that does not load is replaced by the fail-closed policy: the
// module is denied until the file is fixed. On reload the running policy
// stays in force and the log says why.
func loadPolicy(cfg *agent.Config, log *slog.Logger, running *policy.Policy) *policy.Policy {
	if cfg.Policy == "" {
		return nil
	}
	p, err := policy.Load(cfg.Policy)
	if err == nil {
		return p
	}
	var list policy.ErrorList
	msgs := []string{err.Error()}
	if errors.As(err, &list) {
		msgs = msgs[:0]
		for _, e := range list {
			msgs = append(msgs, e.Error())
		}
	}
	if running != nil {
		log.Error("reload: the new policy has errors; keeping the running one", "problems", msgs)
		return running
	}
	log.Error("the policy does not load: enforcing fail-closed until it is fixed (every module denied)", "problems", msgs)
	return policy.FailClosed(err)
}

func metricsMux(m *agent.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	return mux
}

// sdNotifier sends systemd notifications to $NOTIFY_SOCKET (sd_notify(3)):
// a datagram per state on a unix socket, '@' meaning the abstract namespace.
// Without the variable (not started by systemd) it does nothing.
func sdNotifier() func(string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return func(string) {}
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	addr := &net.UnixAddr{Name: path, Net: "unixgram"}
	return func(state string) {
		c, err := net.DialUnix("unixgram", nil, addr)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(state))
	}
}

// watchdogInterval is half of WatchdogSec when systemd asks for pings
// ($WATCHDOG_USEC, and $WATCHDOG_PID naming us if set).
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
