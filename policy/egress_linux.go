package policy

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The table ApplyEgress installs (family inet, named EgressTable):
//
//	chain output  { type filter hook output  priority 0; policy accept;
//	                oifname <each interface glob> jump cell_out }
//	chain forward { type filter hook forward priority 0; policy accept;
//	                oifname <each interface glob> jump cell_out }
//	chain input   { type filter hook input   priority 0; policy accept;
//	                iifname <each interface glob> jump cell_in }
//	chain cell_out {
//	    ct state established,related accept
//	    meta nfproto ipv4 udp dport 67 accept                 # DHCP on raw-IP links
//	    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
//	    ip  daddr @dns4 udp|tcp dport 53 accept               # resolvers in use
//	    ip6 daddr @dns6 udp|tcp dport 53 accept
//	    ip  daddr @dst4_N [tcp|udp dport @ports_N] accept     # one pair per port group
//	    ip6 daddr @dst6_N [tcp|udp dport @ports_N] accept
//	    counter drop }
//	chain cell_in {
//	    ct state established,related accept
//	    meta nfproto ipv4 udp dport 68 accept
//	    icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept
//	    counter drop }
//
// Only traffic through the cellular interfaces is judged; every other
// interface keeps the host's own rules (the base chains accept by default
// and no other table is read or changed). The layout follows the
// per-interface allow-list in the reference notes (§4.1).

// EgressOptions configure ApplyEgress and ClearEgress.
type EgressOptions struct {
	// NetNSPath is a network namespace to work in (/run/netns/NAME);
	// empty: the caller's.
	NetNSPath string
}

func egressConn(opts *EgressOptions) (*nftables.Conn, func(), error) {
	if opts == nil || opts.NetNSPath == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(opts.NetNSPath)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: network namespace: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

// ApplyEgress installs the plan as table inet EgressTable, replacing any
// previous version of that table, in one atomic netlink batch: the host is
// never without rules in between, re-applying the same plan gives the same
// ruleset, and no other table is touched. It needs CAP_NET_ADMIN.
func ApplyEgress(plan *EgressPlan, opts *EgressOptions) error {
	c, done, err := egressConn(opts)
	if err != nil {
		return fmt.Errorf("policy: nftables: %w", err)
	}
	defer done()
	if err := applyEgress(c, plan); err != nil {
		return fmt.Errorf("policy: applying table inet %s: %w", EgressTable, err)
	}
	return nil
}

// ClearEgress removes table inet EgressTable, and nothing else. Clearing
// when the table does not exist is not an error.
func ClearEgress(opts *EgressOptions) error {
	c, done, err := egressConn(opts)
	if err != nil {
		return fmt.Errorf("policy: nftables: %w", err)
	}
	defer done()
	if err := clearEgress(c); err != nil {
		return fmt.Errorf("policy: removing table inet %s: %w", EgressTable, err)
	}
	return nil
}

func egressTable() *nftables.Table {
	return &nftables.Table{Name: EgressTable, Family: nftables.TableFamilyINet}
}

func clearEgress(c *nftables.Conn) error {
	t := egressTable()
	c.AddTable(t) // create if missing, so the delete cannot fail
	c.DelTable(t)
	return c.Flush()
}

func applyEgress(c *nftables.Conn, plan *EgressPlan) error {
	t := egressTable()
	// Add (no-op if present), delete, re-create: one transaction that
	// replaces our table whatever state it was in.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)

	accept := nftables.ChainPolicyAccept
	base := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: hook, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	}
	out := c.AddChain(&nftables.Chain{Name: "cell_out", Table: t})
	in := c.AddChain(&nftables.Chain{Name: "cell_in", Table: t})
	for _, b := range []struct {
		chain *nftables.Chain
		key   expr.MetaKey
		to    string
	}{
		{base("output", nftables.ChainHookOutput), expr.MetaKeyOIFNAME, out.Name},
		{base("forward", nftables.ChainHookForward), expr.MetaKeyOIFNAME, out.Name},
		{base("input", nftables.ChainHookInput), expr.MetaKeyIIFNAME, in.Name},
	} {
		for _, glob := range plan.Interfaces {
			c.AddRule(&nftables.Rule{Table: t, Chain: b.chain, Exprs: []expr.Any{
				&expr.Meta{Key: b.key, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameBytes(glob)},
				&expr.Verdict{Kind: expr.VerdictJump, Chain: b.to},
			}})
		}
	}

	// rule appends a rule built from expression groups, so the builders
	// below read like nft: nfproto(…), l4proto(…), dport(), …
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var e []expr.Any
		for _, p := range parts {
			e = append(e, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	acceptV := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	dropV := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}

	// cell_out
	rule(out, ctEstablished(), acceptV)
	rule(out, nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_UDP), dport(), cmpPort(67), acceptV)
	for _, typ := range []byte{133, 135, 136} { // RFC 4861 RS, NS, NA
		rule(out, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmpType(typ), acceptV)
	}
	var dns4, dns6 []netip.Prefix
	for _, a := range plan.DNS {
		pf := netip.PrefixFrom(a, a.BitLen())
		if a.Is4() {
			dns4 = append(dns4, pf)
		} else {
			dns6 = append(dns6, pf)
		}
	}
	addDest := func(name string, v4 bool, prefixes []netip.Prefix, ports []uint16) error {
		if len(prefixes) == 0 {
			return nil
		}
		key, family, off, ln := nftables.TypeIPAddr, byte(unix.NFPROTO_IPV4), uint32(16), uint32(4)
		if !v4 {
			key, family, off, ln = nftables.TypeIP6Addr, byte(unix.NFPROTO_IPV6), 24, 16
		}
		set := &nftables.Set{Table: t, Name: name, KeyType: key, Interval: true}
		if err := c.AddSet(set, intervalElements(prefixes, int(ln))); err != nil {
			return err
		}
		daddr := []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: ln},
			&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		}
		if len(ports) == 0 {
			rule(out, nfproto(family), daddr, acceptV)
			return nil
		}
		ps := &nftables.Set{Table: t, Name: name + "_ports", KeyType: nftables.TypeInetService}
		els := make([]nftables.SetElement, 0, len(ports))
		for _, p := range ports {
			els = append(els, nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)})
		}
		if err := c.AddSet(ps, els); err != nil {
			return err
		}
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			rule(out, nfproto(family), daddr, l4proto(proto), dport(),
				[]expr.Any{&expr.Lookup{SourceRegister: 1, SetName: ps.Name, SetID: ps.ID}}, acceptV)
		}
		return nil
	}
	if err := addDest("dns4", true, dns4, []uint16{53}); err != nil {
		return err
	}
	if err := addDest("dns6", false, dns6, []uint16{53}); err != nil {
		return err
	}
	for i, g := range plan.Groups {
		if err := addDest(fmt.Sprintf("dst4_%d", i), true, g.V4, g.Ports); err != nil {
			return err
		}
		if err := addDest(fmt.Sprintf("dst6_%d", i), false, g.V6, g.Ports); err != nil {
			return err
		}
	}
	rule(out, dropV)

	// cell_in
	rule(in, ctEstablished(), acceptV)
	rule(in, nfproto(unix.NFPROTO_IPV4), l4proto(unix.IPPROTO_UDP), dport(), cmpPort(68), acceptV)
	for _, typ := range []byte{134, 135, 136} { // RFC 4861 RA, NS, NA
		rule(in, nfproto(unix.NFPROTO_IPV6), l4proto(unix.IPPROTO_ICMPV6), icmpType(typ), acceptV)
	}
	rule(in, dropV)

	return c.Flush()
}

// ifnameBytes: an exact name compares with its NUL terminator; "wwan*"
// compares the prefix only, as nft does for a trailing '*'.
func ifnameBytes(glob string) []byte {
	if p, ok := strings.CutSuffix(glob, "*"); ok {
		return []byte(p)
	}
	return append([]byte(glob), 0)
}

func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// metaByte is "meta KEY == b" (nfproto, l4proto).
func metaByte(key expr.MetaKey, b byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{b}},
	}
}

func nfproto(f byte) []expr.Any { return metaByte(expr.MetaKeyNFPROTO, f) }
func l4proto(p byte) []expr.Any { return metaByte(expr.MetaKeyL4PROTO, p) }

// dport loads the transport destination port (TCP and UDP alike).
func dport() []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
}

func cmpPort(p uint16) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)}}
}

// icmpType is "icmpv6 type == t".
func icmpType(t byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{t}},
	}
}

// intervalElements turns sorted prefixes into interval-set elements: a
// start element per merged range and an end element one past its last
// address, preceded by the "interval end at zero" element nft adds.
func intervalElements(prefixes []netip.Prefix, size int) []nftables.SetElement {
	type rng struct{ first, last netip.Addr }
	var rs []rng
	for _, p := range prefixes {
		r := rng{p.Masked().Addr(), lastAddr(p)}
		if n := len(rs); n > 0 {
			prev := &rs[n-1]
			if next := prev.last.Next(); next.IsValid() && r.first.Compare(next) <= 0 || !next.IsValid() {
				if r.last.Compare(prev.last) > 0 {
					prev.last = r.last
				}
				continue
			}
		}
		rs = append(rs, r)
	}
	var els []nftables.SetElement
	zero := make([]byte, size)
	if len(rs) > 0 && !isZero(rs[0].first.AsSlice()) {
		els = append(els, nftables.SetElement{Key: zero, IntervalEnd: true})
	}
	for _, r := range rs {
		els = append(els, nftables.SetElement{Key: r.first.AsSlice()})
		if next := r.last.Next(); next.IsValid() {
			els = append(els, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return els
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
