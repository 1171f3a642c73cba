//go:build system

package systemtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/modemguard/modemguard/policy"
)

// inNetns runs fn on a fresh OS thread moved into the named network
// namespace. The thread is never unlocked, so it dies with the goroutine and
// no other goroutine ever runs in the namespace by accident. Sockets opened
// by fn stay in the namespace after it returns.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		f, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listenIn starts a TCP listener in namespace ns on addr and closes it when
// the test ends. Connections complete in the kernel's backlog; nothing needs
// to accept them.
func listenIn(t *testing.T, ns, addr string) {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { l.Close() })
}

// dialFrom tries a TCP connection from namespace ns.
func dialFrom(ns, addr string, timeout time.Duration) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
}

type mapResolver map[string]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := m[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// TestEgressNftables applies a policy's egress section inside a namespace
// whose cellular interface is a veth named wwan0, and checks real TCP
// connections: the allowed destination and the resolver connect, a denied
// port and a denied address are dropped, traffic on a non-cellular interface
// is untouched, another table survives, re-applying is idempotent and
// clearing removes exactly our table.
func TestEgressNftables(t *testing.T) {
	requireTool(t, "nft", "nftables")
	gw := newNetns(t)  // the gateway: policy applied here
	far := newNetns(t) // the network beyond wwan0 and eth9
	run(t, "ip", "-n", gw.Name, "link", "add", "wwan0", "type", "veth", "peer", "name", "cell0", "netns", far.Name)
	run(t, "ip", "-n", gw.Name, "link", "add", "eth9", "type", "veth", "peer", "name", "lan0", "netns", far.Name)
	for _, c := range [][]string{
		{gw.Name, "addr", "add", "10.99.0.1/24", "dev", "wwan0"},
		{gw.Name, "addr", "add", "10.98.0.1/24", "dev", "eth9"},
		{far.Name, "addr", "add", "10.99.0.2/24", "dev", "cell0"},
		{far.Name, "addr", "add", "10.99.0.3/24", "dev", "cell0"},
		{far.Name, "addr", "add", "10.98.0.2/24", "dev", "lan0"},
	} {
		run(t, "ip", append([]string{"-n", c[0]}, c[1:]...)...)
	}
	for _, c := range [][]string{{gw.Name, "wwan0"}, {gw.Name, "eth9"}, {gw.Name, "lo"}, {far.Name, "cell0"}, {far.Name, "lan0"}, {far.Name, "lo"}} {
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
	}
	for _, a := range []string{"10.99.0.2:8883", "10.99.0.2:8080", "10.99.0.3:8883", "10.99.0.3:53", "10.98.0.2:8080"} {
		listenIn(t, far.Name, a)
	}
	// Before any policy everything connects (the harness works).
	for _, a := range []string{"10.99.0.2:8080", "10.99.0.3:8883"} {
		if err := dialFrom(gw.Name, a, 3*time.Second); err != nil {
			t.Fatalf("before the policy, %s: %v", a, err)
		}
	}
	gw.Exec(t, "nft", "add", "table", "inet", "someone_else")
	gw.Exec(t, "nft", "add", "chain", "inet", "someone_else", "keep")

	p, err := policy.Parse("egress.yaml", []byte(`version: 1
egress:
  interfaces: ["wwan*", "ppp*"]
  allow:
    - host: broker.test
      ports: [8883]
    - cidr: 192.0.2.0/24
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := p.PlanEgress(context.Background(), mapResolver{"broker.test": "10.99.0.2"},
		policy.ParseResolvConf([]byte("nameserver 10.99.0.3\n")))
	if err != nil || len(plan.Unresolved) != 0 {
		t.Fatalf("plan %v: %v", plan, err)
	}
	opts := &policy.EgressOptions{NetNSPath: filepath.Join("/run/netns", gw.Name)}
	if err := policy.ApplyEgress(plan, opts); err != nil {
		t.Fatalf("apply: %v", err)
	}
	first := gw.Exec(t, "nft", "list", "table", "inet", policy.EgressTable)
	t.Logf("applied:\n%s", first)
	for _, want := range []string{`oifname "wwan*" jump cell_out`, `iifname "ppp*" jump cell_in`, "10.99.0.2", "8883", "192.0.2.0/24", "10.99.0.3", "drop"} {
		if !strings.Contains(first, want) {
			t.Errorf("nft list lacks %q", want)
		}
	}
	if err := policy.ApplyEgress(plan, opts); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if again := gw.Exec(t, "nft", "list", "table", "inet", policy.EgressTable); again != first {
		t.Errorf("re-applying changed the ruleset:\n%s", again)
	}
	if out := run(t, "nft", "list", "tables"); strings.Contains(out, policy.EgressTable) {
		t.Errorf("table leaked into the host namespace: %q", out)
	}

	for _, tc := range []struct {
		addr  string
		allow bool
	}{
		{"10.99.0.2:8883", true},  // broker.test, port 8883
		{"10.99.0.3:53", true},    // the resolver, DNS over TCP
		{"10.99.0.2:8080", false}, // right host, wrong port
		{"10.99.0.3:8883", false}, // right port, wrong host
		{"10.98.0.2:8080", true},  // not a cellular interface: untouched
	} {
		timeout := 3 * time.Second
		if !tc.allow {
			timeout = time.Second // a dropped SYN only ever times out
		}
		err := dialFrom(gw.Name, tc.addr, timeout)
		switch {
		case tc.allow && err != nil:
			t.Errorf("%s should connect: %v", tc.addr, err)
		case !tc.allow && err == nil:
			t.Errorf("%s connected; the policy should drop it", tc.addr)
		case !tc.allow && !isTimeout(err):
			t.Errorf("%s: %v; want a timeout (dropped), not a rejection", tc.addr, err)
		}
	}
	if out := gw.Exec(t, "nft", "list", "chain", "inet", policy.EgressTable, "cell_out"); !strings.Contains(out, "counter packets") || strings.Contains(out, "counter packets 0 ") {
		t.Errorf("the drop counter did not count:\n%s", out)
	}

	if err := policy.ClearEgress(opts); err != nil {
		t.Fatalf("clear: %v", err)
	}
	if err := policy.ClearEgress(opts); err != nil {
		t.Fatalf("clear twice: %v", err)
	}
	tables := gw.Exec(t, "nft", "list", "tables")
	if strings.Contains(tables, policy.EgressTable) || !strings.Contains(tables, "someone_else") {
		t.Errorf("after clear: %q", tables)
	}
	if err := dialFrom(gw.Name, "10.99.0.2:8080", 3*time.Second); err != nil {
		t.Errorf("after clear, 10.99.0.2:8080: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
