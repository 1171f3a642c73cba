//go:build system

package systemtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestArm64Binary runs the static arm64 build — what a Raspberry Pi gets —
// under qemu-aarch64-static: the version, then the demo end to end (agent,
// simulated modules, AT firewall pty, MQTT broker, verifying subscriber).
func TestArm64Binary(t *testing.T) {
	qemu := qemuFor(t, "arm64")
	bin := goBuild(t, "./cmd/modemguard", "arm64", "GOFLAGS=-tags=nocollector") // the gateway build, as make cross and the package ship it
	out := run(t, qemu, bin, "version")
	if !strings.Contains(out, "linux/arm64") {
		t.Fatalf("version under qemu: %q", out)
	}
	out = run(t, qemu, bin, "demo", "--duration", "8s")
	for _, want := range []string{"report #1 from demo-gw-01", "signature ok, chain ok", "Quectel EC25", "AT firewall deny"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo under qemu lacks %q:\n%s", want, out)
		}
	}
}

// TestSuitesOnArm64 compiles the AT engine's test suite for arm64 and
// runs it under qemu, so byte handling and timing are proven on the
// gateway's architecture, not only on the build machine's.
func TestSuitesOnArm64(t *testing.T) {
	qemu := qemuFor(t, "arm64")
	for _, pkg := range []string{"./atcmd", "./simulator", "./modem", "./policy", "./attest", "./agent"} {
		t.Run(strings.TrimPrefix(pkg, "./"), func(t *testing.T) {
			test := goBuildTest(t, pkg, "arm64")
			// Run in the package directory, where its testdata is.
			out := runIn(t, filepath.Join(repoRoot(t), pkg), qemu, test, "-test.count=1", "-test.timeout=10m")
			if !strings.Contains(out, "PASS") {
				t.Fatalf("%s under qemu:\n%s", pkg, out)
			}
			t.Logf("%s on arm64: %s", pkg, lastLine(out))
		})
	}
}

func goBuildTest(t *testing.T, pkg, goarch string) string {
	t.Helper()
	out := t.TempDir() + "/pkg.test"
	cmd := exec.Command("go", "test", "-c", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s for %s: %v\n%s", pkg, goarch, err, b)
	}
	return out
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestMosquittoRoundTrip proves the broker harness later tiers build on: a
// private Mosquitto on a free port, a QoS 1 publish through paho, the
// retained message seen by a second client.
func TestMosquittoRoundTrip(t *testing.T) {
	b := startMosquitto(t, "")
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID("systemtest-pub").SetConnectTimeout(5 * time.Second)
	pub := mqtt.NewClient(opts)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(250)
	if tok := pub.Publish("modemguard/v1/gw-test/status", 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	got := make(chan string, 1)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr).SetClientID("systemtest-sub"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(250)
	if tok := sub.Subscribe("modemguard/v1/+/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		if p != "online" {
			t.Errorf("retained payload %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retained status not delivered within 10s")
	}
}

// TestNetnsNftables proves the namespace harness the egress tests use: a
// veth pair with a wwan0 end inside a fresh namespace, an nftables table
// added and listed there and nowhere else.
func TestNetnsNftables(t *testing.T) {
	requireTool(t, "nft", "nftables")
	ns := newNetns(t)
	ns.Exec(t, "ip", "link", "add", "wwan0", "type", "veth", "peer", "name", "uplink0")
	ns.Exec(t, "ip", "link", "set", "wwan0", "up")
	ns.Exec(t, "nft", "add", "table", "inet", "modemguard_systemtest")
	if out := ns.Exec(t, "nft", "list", "tables"); !strings.Contains(out, "modemguard_systemtest") {
		t.Fatalf("table not listed in the namespace: %q", out)
	}
	if out := run(t, "nft", "list", "tables"); strings.Contains(out, "modemguard_systemtest") {
		t.Fatalf("table leaked into the host namespace: %q", out)
	}
}

// TestEgressCLI drives modemguard egress apply, show and clear in a
// throwaway namespace.
func TestEgressCLI(t *testing.T) {
	requireTool(t, "nft", "nftables")
	ns := newNetns(t)
	mg := goBuild(t, "./cmd/modemguard", hostArch())
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\negress:\n  interfaces: [\"wwan*\"]\n  allow:\n    - cidr: 203.0.113.0/24\n      ports: [443]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nsPath := "/run/netns/" + ns.Name
	if out := run(t, mg, "egress", "apply", "--policy", pol, "--netns", nsPath); !strings.Contains(out, "applied table inet modemguard") {
		t.Fatalf("apply: %s", out)
	}
	if out := run(t, mg, "egress", "show", "--netns", nsPath); !strings.Contains(out, "203.0.113.0/24") {
		t.Fatalf("show: %s", out)
	}
	run(t, mg, "egress", "clear", "--netns", nsPath)
	if out := ns.Exec(t, "nft", "list", "tables"); strings.Contains(out, "modemguard") {
		t.Fatalf("clear left the table: %s", out)
	}
}
