//go:build !nocollector

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modemguard/modemguard/collector"
)

// collectorCommands are the central side's commands, in the full build.
var collectorCommands = [2]command{
	{"collect", "run the fleet collector: verify reports, keep the inventory, serve it", runCollect},
	{"challenge", "send a gateway a nonce and wait for a fresh report carrying it", runChallenge},
}

// defaultCollectorConfig is where `modemguard collect` looks without --config.
const defaultCollectorConfig = "/etc/modemguard/collector.yaml"

// loadCollectorConfig reads and checks a collector configuration file and
// the password file it names.
func loadCollectorConfig(path string) (*collector.FileConfig, collector.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, collector.Config{}, fmt.Errorf("config: %w", err)
	}
	fc, err := collector.ParseFileConfig(path, data)
	if err != nil {
		return nil, collector.Config{}, err
	}
	var password string
	if fc.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(fc.MQTT.PasswordFile)
		if err != nil {
			return nil, collector.Config{}, fmt.Errorf("config %s: mqtt.password_file: %w", path, err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	return fc, fc.Config(password), nil
}

// runCollect: modemguard collect [--config FILE]
func runCollect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("collect", "[--config FILE]", stderr)
	cfgPath := fs.String("config", defaultCollectorConfig, "collector configuration `FILE` (YAML, see docs/collector.md)")
	logJSON := fs.Bool("log-json", false, "log as JSON lines instead of text")
	debug := fs.Bool("debug", false, "log every message, replays included")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fc, cfg, err := loadCollectorConfig(*cfgPath)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{}
	if *debug {
		opts.Level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	cfg.Logger = log

	c, err := collector.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()

	listen := fc.Listen
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(h, slog.LevelWarn)}
	log.Info("collect: serving the inventory", "url", "http://"+ln.Addr().String()+"/")
	fmt.Fprintf(stdout, "modemguard collect: http://%s/\n", ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			cancel()
		}
	})
	// SIGHUP reloads the enrollment file (it is also reloaded when it changes).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = c.ReloadKeys() // logged by the collector
			}
		}
	})
	runErr := c.Run(ctx)
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = srv.Shutdown(shutCtx)
	cancel()
	wg.Wait()
	select {
	case err := <-serveErr:
		return fmt.Errorf("http: %w", err)
	default:
	}
	log.Info("collect: stopped")
	return runErr
}

// runChallenge: modemguard challenge --gateway ID [--config FILE]
func runChallenge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("challenge", "--gateway ID [--config FILE] [--timeout 30s] [--json]", stderr)
	gatewayID := fs.String("gateway", "", "the gateway `ID` to challenge (required)")
	cfgPath := fs.String("config", "", "collector configuration `FILE`: its broker, enrollment file (to check the answer's signature) and database (to record the outcome)")
	broker := fs.String("broker", "", "broker `URL` (tcp://host:port), overriding the configuration; default tcp://127.0.0.1:1883")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the answer")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *gatewayID == "" {
		return &usageError{msg: "--gateway is required"}
	}
	if !collector.ValidGatewayID(*gatewayID) {
		return &usageError{msg: fmt.Sprintf("--gateway %q: want 1 to 64 letters, digits, '.', '_' or '-'", *gatewayID)}
	}
	if *timeout <= 0 {
		return &usageError{msg: "--timeout must be positive"}
	}
	cc := collector.ChallengeConfig{GatewayID: *gatewayID, Timeout: *timeout}
	if *cfgPath != "" {
		_, cfg, err := loadCollectorConfig(*cfgPath)
		if err != nil {
			return err
		}
		cc.Broker, cc.Username, cc.Password, cc.CAFile = cfg.Broker, cfg.Username, cfg.Password, cfg.CAFile
		if cfg.KeysFile != "" {
			enr, err := collector.LoadEnrollment(cfg.KeysFile)
			if err != nil {
				return err
			}
			if k, ok := enr.Gateways[*gatewayID]; ok {
				cc.Key = k
			}
		}
		if cfg.Database != "" {
			st, err := collector.OpenStore(ctx, cfg.Database)
			if err != nil {
				return err
			}
			defer st.Close()
			cc.Store = st
		}
	}
	if *broker != "" {
		cc.Broker = *broker
	}
	res, err := collector.SendChallenge(ctx, cc)
	if err != nil {
		return err
	}
	if *asJSON {
		out := *res
		out.Report = nil
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	} else if res.Answered {
		check := "signature not checked (no enrolled key: pass --config with trust.keys_file)"
		if res.Verified {
			check = "signature verified"
		}
		fmt.Fprintf(stdout, "gateway %s answered challenge %x in %d ms with report seq %d; %s\n", res.GatewayID, []byte(res.Nonce), res.LatencyMS, res.Seq, check)
	}
	if !res.Answered {
		return fmt.Errorf("gateway %s did not answer challenge %x within %v", res.GatewayID, []byte(res.Nonce), *timeout)
	}
	return nil
}
