//go:build system

package systemtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/modemguard/modemguard/attest"
	"github.com/modemguard/modemguard/uplink"
)

// gateway is the library half of an agent: key, chain, outbox, uplink.
type gateway struct {
	t      *testing.T
	id     string
	key    *attest.Key
	chain  *attest.Chain
	outbox *uplink.Outbox
	up     *uplink.Uplink
	cancel context.CancelFunc
	done   chan error
}

func newGateway(t *testing.T, id string, cfg uplink.Config) *gateway {
	t.Helper()
	dir := t.TempDir()
	k, _, err := attest.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.OpenChain(dir, k, attest.ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := uplink.OpenOutbox(filepath.Join(dir, "outbox.db"), uplink.OutboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, id: id, key: k, chain: c, outbox: ob, done: make(chan error, 1)}
	cfg.GatewayID, cfg.KeyID, cfg.BootID = id, k.ID(), "boot-"+id
	cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	if cfg.OnChallenge == nil {
		cfg.OnChallenge = func(n []byte) { g.report(n) }
	}
	if g.up, err = uplink.New(cfg, ob); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- g.up.Run(ctx) }()
	t.Cleanup(func() {
		g.cancel()
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			t.Error("uplink did not stop within 30s")
		}
		ob.Close()
	})
	return g
}

// report makes a report the way the agent will: issue, then commit.
func (g *gateway) report(nonce []byte) {
	is, err := g.chain.Issue(attest.Report{GatewayID: g.id, BootID: "boot-" + g.id, Verdict: "allow", Nonce: nonce})
	if err != nil {
		g.t.Error(err)
		return
	}
	if err := g.outbox.Enqueue(is.Report.Seq, is.Envelope); err != nil {
		g.t.Error(err)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// collector subscribes to a gateway's reports with a persistent session,
// verifies each one and counts seqs.
type collector struct {
	t  *testing.T
	cl mqtt.Client
	v  *attest.Verifier

	mu      sync.Mutex
	count   map[uint64]int
	reports map[uint64]*attest.Report
	errs    []error
	changed chan struct{}
}

func newCollector(t *testing.T, addr, gatewayID string, pub *attest.Key) *collector {
	t.Helper()
	c := &collector{t: t, count: map[uint64]int{}, reports: map[uint64]*attest.Report{}, changed: make(chan struct{}),
		v: attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(pub.Public())})}
	topic := uplink.TopicsFor(gatewayID).Report
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("collector-" + gatewayID).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetOrderMatters(true). // the handler does not block; keep arrival order for the chain check

		SetOnConnectHandler(func(cl mqtt.Client) { cl.Subscribe(topic, 1, c.onReport) })
	c.cl = mqtt.NewClient(opts)
	if tok := c.cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	if tok := c.cl.Subscribe(topic, 1, c.onReport); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.cl.Disconnect(250) })
	return c
}

func (c *collector) onReport(_ mqtt.Client, m mqtt.Message) {
	got, err := c.v.Verify(m.Payload())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && !errors.Is(err, attest.ErrReplay) && !errors.Is(err, attest.ErrOutOfOrder) {
		c.errs = append(c.errs, err)
	}
	if got != nil {
		c.count[got.Report.Seq]++
		c.reports[got.Report.Seq] = got.Report
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitSeqs waits until every seq 1..n arrived at least once.
func (c *collector) waitSeqs(n uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		missing := []uint64{}
		for s := uint64(1); s <= n; s++ {
			if c.count[s] == 0 {
				missing = append(missing, s)
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatalf("after %v, seqs still missing: %v", timeout, missing)
		}
	}
}

func (c *collector) summary() (dups int, errs []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.count {
		dups += n - 1
	}
	return dups, append([]error(nil), c.errs...)
}

// TestUplinkMosquittoRestart: reports flow, Mosquitto stops while reports
// are made, starts again on the same port; every seq arrives, verified, in
// one unbroken chain (duplicates counted, none missing).
func TestUplinkMosquittoRestart(t *testing.T) {
	port := freePort(t)
	persist := t.TempDir()
	// A second listener on a fixed port, and persistence, so the collector's
	// session (and what was queued for it) survives the restart.
	conf := fmt.Sprintf("listener %d 127.0.0.1\npersistence true\npersistence_location %s/\n", port, persist)
	m1 := startMosquitto(t, conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	g := newGateway(t, "gw-restart", uplink.Config{Broker: "tcp://" + addr})
	col := newCollector(t, addr, "gw-restart", g.key)
	for range 5 {
		g.report(nil)
	}
	col.waitSeqs(5, 30*time.Second)

	// Stop the broker cleanly (it saves its persistence file on SIGTERM).
	if err := m1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _ = m1.cmd.Process.Wait()
	for range 5 {
		g.report(nil) // made while the broker is down: never blocked, kept on disk
	}
	if d := g.outbox.Stats().Depth; d < 5 {
		t.Fatalf("outbox depth %d while the broker is down, want at least 5", d)
	}
	startMosquitto(t, conf)
	for range 5 {
		g.report(nil)
	}
	col.waitSeqs(15, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.outbox.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	dups, errs := col.summary()
	for _, err := range errs {
		t.Errorf("verification: %v", err)
	}
	st := g.up.Stats()
	t.Logf("15 seqs delivered through a broker restart: %d duplicates, %d connections, %d publishes", dups, st.Connections, st.Published)
	if st.Connections < 2 {
		t.Errorf("connections %d: no reconnect seen", st.Connections)
	}
}

// TestUplinkMutualTLS: the gateway connects over TLS with a client
// certificate from a CA the test makes, checking the broker by name; a
// client without a certificate is refused.
func TestUplinkMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // mosquitto may drop to its own user
		t.Fatal(err)
	}
	pki := newTestPKI(t, dir)
	tlsPort := freePort(t)
	m := startMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		tlsPort, pki.ca, pki.serverCert, pki.serverKey))

	g := newGateway(t, "gw-tls", uplink.Config{
		Broker:     fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort),
		CAFile:     pki.ca,
		CertFile:   pki.clientCert,
		KeyFile:    pki.clientKey,
		ServerName: "localhost", // connect by IP, check the certificate's DNS name
	})
	col := newCollector(t, m.Addr, "gw-tls", g.key) // plain listener of the same broker
	for range 3 {
		g.report(nil)
	}
	col.waitSeqs(3, 30*time.Second)

	// Without a client certificate the broker refuses.
	bad := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)).
		SetClientID("no-cert").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetTLSConfig(caOnlyTLS(t, pki.ca)))
	tok := bad.Connect()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() == nil {
		bad.Disconnect(0)
		t.Fatal("a client without a certificate connected")
	}
	t.Logf("client without certificate refused: %v", tok.Error())
	if _, errs := col.summary(); len(errs) > 0 {
		t.Errorf("verification: %v", errs)
	}
}

// TestUplinkChallenge: the collector publishes a nonce; a fresh signed
// report carrying it arrives.
func TestUplinkChallenge(t *testing.T) {
	m := startMosquitto(t, "")
	g := newGateway(t, "gw-chal", uplink.Config{Broker: "tcp://" + m.Addr})
	col := newCollector(t, m.Addr, "gw-chal", g.key)
	g.report(nil)
	col.waitSeqs(1, 30*time.Second)
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	tok := col.cl.Publish(uplink.TopicsFor("gw-chal").Challenge, 1, false, nonce)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish challenge: %v", tok.Error())
	}
	col.waitSeqs(2, 30*time.Second)
	col.mu.Lock()
	got := col.reports[2].Nonce
	col.mu.Unlock()
	if !bytes.Equal(got, nonce) {
		t.Fatalf("report 2 carries nonce %x, want %x", got, nonce)
	}
}

// caOnlyTLS trusts the test CA and presents no client certificate.
func caOnlyTLS(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// testPKI is a CA with a server certificate (localhost, 127.0.0.1) and a
// client certificate (CN gw-tls), written as world-readable PEM files.
type testPKI struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "modemguard test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (certPEM, keyPEM []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	}
	sc, sk := issue(2, "localhost", x509.ExtKeyUsageServerAuth, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	cc, ck := issue(3, "gw-tls", x509.ExtKeyUsageClientAuth, nil, nil)
	p := testPKI{
		ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server.key"),
		clientCert: filepath.Join(dir, "client.pem"), clientKey: filepath.Join(dir, "client.key"),
	}
	for path, data := range map[string][]byte{
		p.ca: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), p.serverCert: sc, p.serverKey: sk,
		p.clientCert: cc, p.clientKey: ck,
	} {
		// World-readable: Mosquitto started as root may read them as its own user.
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
