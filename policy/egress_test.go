package policy

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// fakeResolver answers from a map; names not in it fail.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

const egressPolicy = `version: 1
egress:
  interfaces: ["wwan*", "ppp0"]
  allow:
    - host: broker.example.com
      ports: [8883]
    - cidr: 203.0.113.0/24
      ports: [443]
    - cidr: 203.0.113.128/25
      ports: [443]
    - host: api.example.com
      ports: [443, 8883, 443]
    - host: nowhere.example
    - cidr: 2001:db8::/32
    - host: 198.51.100.9
`

func TestPlanEgress(t *testing.T) {
	p := mustParse(t, egressPolicy)
	r := fakeResolver{
		"broker.example.com": {"192.0.2.10", "2001:db8:1::10", "::ffff:192.0.2.11"},
		"api.example.com":    {"203.0.113.7"}, // inside the /24
	}
	ns := ParseResolvConf([]byte("# generated\nsearch lan\nnameserver 192.0.2.53\nnameserver fe80::1%wwan0\nnameserver 192.0.2.53\noptions edns0\nnameserver bogus\n"))
	plan, err := p.PlanEgress(context.Background(), r, ns)
	if err != nil {
		t.Fatal(err)
	}
	want := &EgressPlan{
		Interfaces: []string{"wwan*", "ppp0"},
		Groups: []EgressGroup{
			{V4: pfx("198.51.100.9/32"), V6: pfx("2001:db8::/32")},
			{Ports: []uint16{443}, V4: pfx("203.0.113.0/24")},
			{Ports: []uint16{443, 8883}, V4: pfx("203.0.113.7/32")},
			{Ports: []uint16{8883}, V4: pfx("192.0.2.10/32", "192.0.2.11/32"), V6: pfx("2001:db8:1::10/128")},
		},
		DNS:        []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("fe80::1")},
		Unresolved: []string{"nowhere.example: no such host"},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan\n%+v\nwant\n%+v", plan, want)
	}
	if s := plan.String(); s != "table inet modemguard: interfaces wwan*,ppp0, 5 IPv4 and 2 IPv6 destinations in 4 port groups, 2 resolvers, 1 unresolved" {
		t.Errorf("String() = %q", s)
	}

	if _, err := mustParse(t, "version: 1\n").PlanEgress(context.Background(), r, nil); err == nil {
		t.Error("PlanEgress without an egress section succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.PlanEgress(ctx, r, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestMergePrefixes(t *testing.T) {
	got := mergePrefixes(pfx("10.0.0.5/32", "10.0.0.0/24", "10.0.1.0/24", "10.0.0.0/24", "9.0.0.0/8", "10.0.0.128/25"))
	if want := pfx("9.0.0.0/8", "10.0.0.0/24", "10.0.1.0/24"); !reflect.DeepEqual(got, want) {
		t.Errorf("mergePrefixes = %v, want %v", got, want)
	}
}
