package policy

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recorder is an nftables connection that records the netlink batches it
// would send and acknowledges every message (no root needed).
type recorder struct {
	msgs []netlink.Message
}

func (r *recorder) conn(t testing.TB) *nftables.Conn {
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		r.msgs = append(r.msgs, req...)
		acks := make([]netlink.Message, 0, len(req))
		for _, m := range req {
			if m.Header.Flags&netlink.Acknowledge != 0 {
				acks = append(acks, netlink.Message{Header: netlink.Header{Length: 4, Type: netlink.Error,
					Sequence: m.Header.Sequence, PID: m.Header.PID}, Data: []byte{0, 0, 0, 0}})
			}
		}
		return acks, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// msgSummary is one nftables message: its NFT_MSG_* type and the table it
// names (attribute 1 in table, chain, set, element and rule messages).
type msgSummary struct {
	typ   int
	table string
}

func summarize(t *testing.T, msgs []netlink.Message) []msgSummary {
	t.Helper()
	var out []msgSummary
	for _, m := range msgs {
		if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES {
			continue // batch begin/end
		}
		s := msgSummary{typ: int(m.Header.Type & 0xff)}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		for ad.Next() {
			if ad.Type() == 1 {
				s.table = string(bytes.TrimRight(ad.Bytes(), "\x00"))
			}
		}
		out = append(out, s)
	}
	return out
}

// oneBatch checks that msgs are one nfnetlink batch: the kernel applies it
// as one transaction or not at all.
func oneBatch(t *testing.T, msgs []netlink.Message) {
	t.Helper()
	begins, ends := 0, 0
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NFNL_MSG_BATCH_BEGIN:
			begins++
		case unix.NFNL_MSG_BATCH_END:
			ends++
		}
	}
	if begins != 1 || ends != 1 || msgs[0].Header.Type != unix.NFNL_MSG_BATCH_BEGIN || msgs[len(msgs)-1].Header.Type != unix.NFNL_MSG_BATCH_END {
		t.Fatalf("not one batch: %d begins, %d ends in %d messages", begins, ends, len(msgs))
	}
}

func testPlan(t testing.TB) *EgressPlan {
	p := mustParse(t, egressPolicy)
	plan, err := p.PlanEgress(context.Background(), fakeResolver{"broker.example.com": {"192.0.2.10", "2001:db8:1::10"}, "api.example.com": {"192.0.2.20"}},
		[]netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestApplyEgressOneBatchOurTableOnly(t *testing.T) {
	var r recorder
	c := r.conn(t)
	if err := applyEgress(c, testPlan(t)); err != nil {
		t.Fatal(err)
	}
	batch := r.msgs
	oneBatch(t, batch)
	msgs := summarize(t, batch)
	count := map[int]int{}
	for i, m := range msgs {
		if m.table != EgressTable {
			t.Errorf("message %d (type %d) names table %q", i, m.typ, m.table)
		}
		count[m.typ]++
	}
	if msgs[0].typ != unix.NFT_MSG_NEWTABLE || msgs[1].typ != unix.NFT_MSG_DELTABLE || msgs[2].typ != unix.NFT_MSG_NEWTABLE {
		t.Errorf("the batch does not start add, delete, add table: %+v", msgs[:3])
	}
	// 3 base chains + cell_out + cell_in; sets: dns4, dns4_ports, dns6,
	// dns6_ports, then per group (any port: 198.51.100.9 and 2001:db8::/32;
	// 443: the /24s; 443+8883: api; 8883: broker v4+v6) an address set and,
	// with ports, a port set.
	wantSets := 4 + 2 + 2 + 2 + 4
	// rules: 3 base chains × 2 globs; cell_out: ct, dhcp, 3 icmpv6, dns 2×2,
	// any-port group 2, port groups 2 (443) + 2 (443,8883) + 2+2 (8883 v4, v6), drop;
	// cell_in: ct, dhcp, 3 icmpv6, drop.
	wantRules := 6 + (1 + 1 + 3 + 4 + 2 + 2 + 2 + 4 + 1) + (1 + 1 + 3 + 1)
	if count[unix.NFT_MSG_NEWCHAIN] != 5 || count[unix.NFT_MSG_NEWSET] != wantSets || count[unix.NFT_MSG_NEWRULE] != wantRules {
		t.Errorf("chains %d, sets %d, rules %d; want 5, %d, %d", count[unix.NFT_MSG_NEWCHAIN], count[unix.NFT_MSG_NEWSET], count[unix.NFT_MSG_NEWRULE], wantSets, wantRules)
	}
	for typ := range count {
		switch typ {
		case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_NEWRULE:
		default:
			t.Errorf("unexpected message type %d", typ)
		}
	}

	// Re-applying sends the same kinds of messages again: replace, not append.
	var r2 recorder
	if err := applyEgress(r2.conn(t), testPlan(t)); err != nil {
		t.Fatal(err)
	}
	again := summarize(t, r2.msgs)
	if fmt.Sprint(again) != fmt.Sprint(msgs) {
		t.Errorf("re-apply differs:\n%v\n%v", again, msgs)
	}
}

func TestClearEgressOurTableOnly(t *testing.T) {
	var r recorder
	if err := clearEgress(r.conn(t)); err != nil {
		t.Fatal(err)
	}
	oneBatch(t, r.msgs)
	msgs := summarize(t, r.msgs)
	if len(msgs) != 2 || msgs[0].typ != unix.NFT_MSG_NEWTABLE || msgs[1].typ != unix.NFT_MSG_DELTABLE ||
		msgs[0].table != EgressTable || msgs[1].table != EgressTable {
		t.Errorf("clear sent %+v", msgs)
	}
}

func TestIntervalElements(t *testing.T) {
	els := intervalElements(pfx("10.0.0.0/25", "10.0.0.128/25", "10.0.2.1/32", "255.255.255.255/32"), 4)
	var got []string
	for _, e := range els {
		s := netip.AddrFrom4([4]byte(e.Key)).String()
		if e.IntervalEnd {
			s = "end " + s
		}
		got = append(got, s)
	}
	want := "[end 0.0.0.0 10.0.0.0 end 10.0.1.0 10.0.2.1 end 10.0.2.2 255.255.255.255]"
	if fmt.Sprint(got) != want {
		t.Errorf("elements %v\nwant     %s", got, want)
	}
	if a := lastAddr(netip.MustParsePrefix("2001:db8::/33")); a.String() != "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff" {
		t.Errorf("lastAddr = %v", a)
	}
}

// BenchmarkApplyEgress1000 builds and serialises the batch for 1,000
// destinations (the recorder stands in for the kernel).
func BenchmarkApplyEgress1000(b *testing.B) {
	plan := &EgressPlan{Interfaces: DefaultInterfaces(), DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}}
	g := EgressGroup{Ports: []uint16{443, 8883}}
	for i := 0; i < 1000; i++ {
		g.V4 = append(g.V4, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32))
	}
	plan.Groups = []EgressGroup{g}
	b.ReportAllocs()
	for b.Loop() {
		var r recorder
		if err := applyEgress(r.conn(b), plan); err != nil {
			b.Fatal(err)
		}
	}
}
