package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/modemguard/modemguard/policy"
)

func runEgress(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "Usage: modemguard egress apply --policy FILE | show | clear [--netns PATH]\n\n" +
		"  apply   install the policy's egress section as nftables table inet " + policy.EgressTable + ", in one atomic batch\n" +
		"  show    print the active rules of that table\n" +
		"  clear   remove exactly that table; other tables are never touched\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{msg: "missing subcommand: apply, show or clear"}
	}
	sub := args[0]
	fs := newFlagSet("egress "+sub, "[flags]", stderr)
	netns := fs.String("netns", "", "work in this network namespace (`PATH` such as /run/netns/test) instead of the host's")
	var policyFile, resolv *string
	if sub == "apply" {
		policyFile = fs.String("policy", "", "policy `FILE` with an egress section (docs/policy.md)")
		resolv = fs.String("resolv-conf", "/etc/resolv.conf", "resolv.conf `FILE` naming the DNS resolvers that stay reachable")
	}
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "apply", "show", "clear":
	default:
		fmt.Fprint(stderr, usage)
		return &usageError{msg: fmt.Sprintf("unknown subcommand %q", sub)}
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	opts := &policy.EgressOptions{NetNSPath: *netns}
	switch sub {
	case "clear":
		if err := policy.ClearEgress(opts); err != nil {
			return nftError(err)
		}
		fmt.Fprintf(stdout, "removed table inet %s (if it existed)\n", policy.EgressTable)
		return nil
	case "show":
		nft, err := exec.LookPath("nft")
		if err != nil {
			return fmt.Errorf("egress show runs nft to print the rules: install it (apt-get install nftables)")
		}
		cmdArgs := []string{"list", "table", "inet", policy.EgressTable}
		name := nft
		if *netns != "" {
			name, cmdArgs = "ip", append([]string{"netns", "exec", filepath.Base(*netns), nft}, cmdArgs...)
		}
		cmd := exec.CommandContext(ctx, name, cmdArgs...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft list table inet %s: %w (is egress applied? modemguard egress apply --policy FILE)", policy.EgressTable, err)
		}
		return nil
	}
	if *policyFile == "" {
		return &usageError{msg: "--policy is required"}
	}
	pol, err := policy.Load(*policyFile)
	if err != nil {
		return policyLoadError("nothing applied", err)
	}
	var ns []byte
	if b, err := os.ReadFile(*resolv); err == nil {
		ns = b
	} else {
		fmt.Fprintf(stderr, "warning: %v: DNS stays blocked on the cellular interfaces\n", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	plan, err := pol.PlanEgress(rctx, net.DefaultResolver, policy.ParseResolvConf(ns))
	if err != nil {
		return err
	}
	for _, u := range plan.Unresolved {
		fmt.Fprintf(stderr, "warning: %s: its traffic is dropped until the next apply\n", u)
	}
	if err := policy.ApplyEgress(plan, opts); err != nil {
		return nftError(err)
	}
	fmt.Fprintf(stdout, "applied %s\n", plan)
	return nil
}

// nftError adds what to do to a netlink permission failure.
func nftError(err error) error {
	if strings.Contains(err.Error(), "operation not permitted") {
		return fmt.Errorf("%w: nftables needs root or CAP_NET_ADMIN", err)
	}
	return err
}
