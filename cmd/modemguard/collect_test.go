//go:build !nocollector

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/collector/collectortest"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeCollectFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// poll waits for cond with a deadline: a child server has no event to wait on.
func pollCollect(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCollectConfigErrors(t *testing.T) {
	var out, errb bytes.Buffer
	for _, tc := range []struct{ yaml, want string }{
		{"mqtt:\n  broker: tcp://127.0.0.1:1\n  sharegroup: x\n", `:3: unknown key "sharegroup"`},
		{"listen: nowhere\n", ":1: listen:"},
		{"mqtt:\n  password_file: /nonexistent/pw\n", "mqtt.password_file"},
		{"trust:\n  keys_file: /nonexistent/keys\n", "enrollment file"},
	} {
		err := runCollect(context.Background(), []string{"--config", writeCollectFile(t, "c.yaml", tc.yaml)}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if err := runCollect(context.Background(), []string{"--config", "/nonexistent.yaml"}, &out, &errb); err == nil {
		t.Error("missing config: no error")
	}
	var ue *usageError
	if err := runCollect(context.Background(), []string{"extra"}, &out, &errb); !errors.As(err, &ue) {
		t.Errorf("extra argument: %v", err)
	}
	if err := runChallenge(context.Background(), nil, &out, &errb); !errors.As(err, &ue) {
		t.Errorf("challenge without --gateway: %v", err)
	}
	if err := runChallenge(context.Background(), []string{"--gateway", "a/b"}, &out, &errb); !errors.As(err, &ue) {
		t.Errorf("challenge with a bad id: %v", err)
	}
}

// TestCollectAndChallenge runs `modemguard collect` against an embedded
// broker, publishes a report, challenges the gateway with `modemguard
// challenge` and stops the collector by cancelling its context (SIGTERM in
// main).
func TestCollectAndChallenge(t *testing.T) {
	b := collectortest.StartBroker(t)
	gw := collectortest.NewGateway(t, "gw-cli")
	keys := writeCollectFile(t, "gateways.keys", gw.Enrollment())
	db := filepath.Join(t.TempDir(), "c.db")
	cfg := writeCollectFile(t, "collector.yaml", "mqtt:\n  broker: "+b.URL+"\ndatabase: sqlite://"+db+"\nlisten: 127.0.0.1:0\ntrust:\n  keys_file: "+keys+"\n")

	// The fake gateway answers challenges with a report carrying the nonce.
	b.Subscribe(t, "modemguard/v1/gw-cli/challenge", func(_ string, nonce []byte) {
		env := gw.Next(t, func(r *attest.Report) { r.Nonce = append(attest.Bytes(nil), nonce...) })
		go b.Publish(t, "modemguard/v1/gw-cli/report", env, false) // not from the broker's own callback
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- runCollect(ctx, []string{"--config", cfg}, &stdout, &stderr) }()
	var url string
	pollCollect(t, "the collector's URL", func() bool {
		s := stdout.String()
		if i := strings.Index(s, "http://"); i >= 0 && strings.HasSuffix(s, "\n") {
			url = strings.TrimSpace(s[i:])
			return true
		}
		return false
	})
	pollCollect(t, "the collector connected", func() bool { return strings.Contains(stderr.String(), "collector: connected") })
	b.Publish(t, "modemguard/v1/gw-cli/report", gw.Next(t, nil), false)
	var gws []map[string]any
	pollCollect(t, "the report in the API", func() bool {
		resp, err := http.Get(url + "api/v1/gateways")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		gws = nil
		return json.NewDecoder(resp.Body).Decode(&gws) == nil && len(gws) == 1 && gws[0]["last_seq"] == float64(1)
	})

	var out, errb bytes.Buffer
	if err := runChallenge(context.Background(), []string{"--gateway", "gw-cli", "--config", cfg, "--timeout", "10s"}, &out, &errb); err != nil {
		t.Fatalf("challenge: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "answered challenge") || !strings.Contains(out.String(), "signature verified") {
		t.Fatalf("challenge output: %q", out.String())
	}
	out.Reset()
	err := runChallenge(context.Background(), []string{"--gateway", "gw-none", "--broker", b.URL, "--timeout", "200ms", "--json"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "did not answer") || !strings.Contains(out.String(), `"answered":false`) {
		t.Fatalf("unanswered: %v %q", err, out.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("collect: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("collect did not stop within 20s")
	}
	if !strings.Contains(stderr.String(), "collect: stopped") {
		t.Errorf("no clean stop in the log:\n%s", stderr.String())
	}
}
