package policy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// EgressTable is the name of the nftables table (family inet) that holds
// modemguard's host egress rules. Nothing else is ever touched.
const EgressTable = "modemguard"

// Resolver resolves the host names of egress.allow. *net.Resolver
// satisfies it; tests inject their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// EgressPlan is the host firewall to install, computed from a policy's
// egress section with names resolved: plain data, built without touching
// the system, applied by ApplyEgress.
type EgressPlan struct {
	// Interfaces are the cellular interface names or prefixes ("wwan*").
	Interfaces []string
	// Groups are allowed destinations, grouped by port list.
	Groups []EgressGroup
	// DNS are the resolvers whose port 53 (UDP and TCP) stays reachable.
	DNS []netip.Addr
	// Unresolved lists "host: error" for allowed names that did not
	// resolve; their traffic is dropped until the next apply.
	Unresolved []string
}

// EgressGroup is a set of address ranges sharing one port list.
type EgressGroup struct {
	Ports []uint16       // empty: every port (and every protocol)
	V4    []netip.Prefix // merged, sorted, non-overlapping
	V6    []netip.Prefix
}

// PlanEgress resolves the policy's egress section into a plan. nameservers
// are the resolvers in use (see ParseResolvConf). It returns an error only
// when the policy has no egress section or ctx ends; names that fail to
// resolve are listed in Unresolved (closed: their traffic is dropped).
func (p *Policy) PlanEgress(ctx context.Context, r Resolver, nameservers []netip.Addr) (*EgressPlan, error) {
	if p.Egress == nil {
		return nil, errors.New("policy: the policy has no egress section; nothing to apply")
	}
	plan := &EgressPlan{Interfaces: slices.Clone(p.Egress.Interfaces)}
	for _, ns := range nameservers {
		ns = ns.Unmap()
		if ns.IsValid() && !slices.Contains(plan.DNS, ns) {
			plan.DNS = append(plan.DNS, ns)
		}
	}
	groups := map[string]*EgressGroup{}
	var order []string
	for _, d := range p.Egress.Allow {
		var prefixes []netip.Prefix
		if d.Host == "" {
			prefixes = []netip.Prefix{d.Prefix}
		} else {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("policy: resolving egress hosts: %w", err)
			}
			addrs, err := r.LookupNetIP(ctx, "ip", d.Host)
			if err != nil || len(addrs) == 0 {
				if err == nil {
					err = errors.New("no addresses")
				}
				plan.Unresolved = append(plan.Unresolved, d.Host+": "+err.Error())
				continue
			}
			for _, a := range addrs {
				a = a.Unmap().WithZone("")
				prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		key := portsKey(d.Ports)
		g := groups[key]
		if g == nil {
			g = &EgressGroup{Ports: slices.Clone(d.Ports)}
			slices.Sort(g.Ports)
			g.Ports = slices.Compact(g.Ports)
			groups[key] = g
			order = append(order, key)
		}
		for _, pf := range prefixes {
			if pf.Addr().Is4() {
				g.V4 = append(g.V4, pf)
			} else {
				g.V6 = append(g.V6, pf)
			}
		}
	}
	sort.Strings(order)
	for _, k := range order {
		g := groups[k]
		g.V4 = mergePrefixes(g.V4)
		g.V6 = mergePrefixes(g.V6)
		plan.Groups = append(plan.Groups, *g)
	}
	return plan, nil
}

func portsKey(ports []uint16) string {
	s := slices.Clone(ports)
	slices.Sort(s)
	s = slices.Compact(s)
	var b strings.Builder
	for _, p := range s {
		fmt.Fprintf(&b, "%05d,", p)
	}
	return b.String()
}

// mergePrefixes sorts prefixes and drops those contained in another, so the
// nftables interval set gets no overlapping elements.
func mergePrefixes(in []netip.Prefix) []netip.Prefix {
	if len(in) == 0 {
		return nil
	}
	s := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		s = append(s, p.Masked())
	}
	sort.Slice(s, func(i, j int) bool {
		if c := s[i].Addr().Compare(s[j].Addr()); c != 0 {
			return c < 0
		}
		return s[i].Bits() < s[j].Bits() // the wider first
	})
	out := s[:1]
	for _, p := range s[1:] {
		last := out[len(out)-1]
		if last.Contains(p.Addr()) && last.Bits() <= p.Bits() {
			continue // inside the previous one
		}
		out = append(out, p)
	}
	return out
}

// ParseResolvConf returns the nameserver addresses of a resolv.conf(5)
// file's contents. Loopback resolvers (systemd-resolved's 127.0.0.53) are
// kept: they are harmless in an output rule for cellular interfaces.
func ParseResolvConf(data []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a.WithZone(""))
			}
		}
	}
	return out
}

// String summarises the plan for logs.
func (pl *EgressPlan) String() string {
	n4, n6 := 0, 0
	for _, g := range pl.Groups {
		n4 += len(g.V4)
		n6 += len(g.V6)
	}
	return fmt.Sprintf("table inet %s: interfaces %s, %d IPv4 and %d IPv6 destinations in %d port groups, %d resolvers, %d unresolved",
		EgressTable, strings.Join(pl.Interfaces, ","), n4, n6, len(pl.Groups), len(pl.DNS), len(pl.Unresolved))
}
