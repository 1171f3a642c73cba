package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modemguard/modemguard/agent"
	"github.com/modemguard/modemguard/modem"
	"github.com/modemguard/modemguard/policy"
)

const policyUsage = `Usage:
  modemguard policy check FILE...
      Validate policy files. Exit 0 and print a one-line summary per file,
      or exit 1 and print every problem as "file:line:col: message", one per
      line, on stderr.

  modemguard policy explain --policy FILE (--port PATH|auto | --facts FACTS.json) [--json]
      Judge one module against a policy and show which rule decides and why:
      every module rule tried, and every finding. --port reads the facts
      from the live module (as modemguard scan does; --baud sets the rate);
      FACTS.json holds them for a module that is not here:
        {"vendor": "quectel", "manufacturer": "Quectel", "model": "EC25",
         "firmware": "EC25EFAR06A06M4G", "origin": "CN",
         "lists": ["dod-1260h"],
         "network": {"mcc": "262", "mnc": "01", "roaming": false,
                     "apn": "iot.example"}}
      Unknown keys are errors. If the policy does not load, the problems are
      printed, the fail-closed verdict is shown, and the exit status is 1.

The policy format is described in docs/policy.md.
`

// runPolicy is "modemguard policy": check and explain policy files.
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return &usageError{msg: "missing subcommand: check or explain"}
	}
	switch args[0] {
	case "check":
		return runPolicyCheck(args[1:], stdout, stderr)
	case "explain":
		return runPolicyExplain(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, policyUsage)
		return nil
	}
	fmt.Fprint(stderr, policyUsage)
	return &usageError{msg: fmt.Sprintf("unknown subcommand %q: want check or explain", args[0])}
}

func runPolicyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy check", "FILE...", stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() == 0 {
		return &usageError{msg: "missing policy FILE"}
	}
	var failed []string
	for _, path := range fs.Args() {
		p, err := policy.Load(path)
		if err != nil {
			var list policy.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintln(stderr, e.Error())
				}
				failed = append(failed, fmt.Sprintf("%s: %d %s", path, len(list), plural(len(list), "problem", "problems")))
			} else {
				fmt.Fprintln(stderr, err)
				failed = append(failed, path)
			}
			continue
		}
		fmt.Fprintf(stdout, "%s: ok: %s\n", path, summary(p))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// summary is the one-line description "policy check" prints.
func summary(p *policy.Policy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version %d; modules: %d %s, default %s", p.Version,
		len(p.Modules.Rules), plural(len(p.Modules.Rules), "rule", "rules"), p.Modules.Default)
	nw := p.Network
	apns := "any APN"
	if len(nw.APNs) > 0 {
		apns = fmt.Sprintf("%d %s", len(nw.APNs), plural(len(nw.APNs), "APN", "APNs"))
	}
	fmt.Fprintf(&b, "; network: %s, %d denied %s, roaming %s", apns, len(nw.DenyMCC), plural(len(nw.DenyMCC), "MCC", "MCCs"), nw.Roaming)
	ms := p.ModuleStack
	fmt.Fprintf(&b, "; module stack: %d allowed %s, default %s, fota %s, debug %s",
		len(ms.Allow), plural(len(ms.Allow), "destination", "destinations"), ms.Default, ms.FOTA, ms.Debug)
	if p.Egress == nil {
		b.WriteString("; egress: not filtered")
	} else {
		fmt.Fprintf(&b, "; egress: %d allowed %s over %s", len(p.Egress.Allow),
			plural(len(p.Egress.Allow), "destination", "destinations"), strings.Join(p.Egress.Interfaces, ","))
	}
	fmt.Fprintf(&b, "; on_deny %s; %s", p.OnDeny, p.Hash)
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func runPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy explain", "--policy FILE (--port PATH|auto | --facts FACTS.json) [--json]", stderr)
	policyPath := fs.String("policy", "", "policy `FILE` to judge with (required)")
	factsPath := fs.String("facts", "", "JSON `FILE` with the module's facts (see modemguard policy --help)")
	port := fs.String("port", "", "read the facts from the module on this serial `PATH` (or auto)")
	baud := fs.Int("baud", 115200, "baud rate for --port")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *policyPath == "" || (*factsPath == "") == (*port == "") {
		return &usageError{msg: "--policy and one of --port or --facts are required"}
	}
	var facts policy.Facts
	var err error
	if *port != "" {
		facts, err = liveFacts(ctx, *port, *baud, stderr)
	} else {
		facts, err = readFacts(*factsPath)
	}
	if err != nil {
		return err
	}
	p, loadErr := policy.Load(*policyPath)
	if loadErr != nil {
		var list policy.ErrorList
		if errors.As(loadErr, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e.Error())
			}
		} else {
			fmt.Fprintln(stderr, loadErr)
		}
		p = policy.FailClosed(loadErr)
	}
	v := p.Evaluate(facts)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(verdictJSON(p, v)); err != nil {
			return err
		}
	} else {
		printVerdict(stdout, p, v)
	}
	if loadErr != nil {
		return fmt.Errorf("%s did not load; the verdict shown is the fail-closed one", *policyPath)
	}
	return nil
}

func readFacts(path string) (policy.Facts, error) {
	var f policy.Facts
	file, err := os.Open(path)
	if err != nil {
		return f, fmt.Errorf("facts: %w", err)
	}
	defer file.Close()
	dec := json.NewDecoder(io.LimitReader(file, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("facts: %s: %w", path, err)
	}
	if dec.More() {
		return f, fmt.Errorf("facts: %s: more than one JSON value", path)
	}
	return f, nil
}

func printVerdict(w io.Writer, p *policy.Policy, v policy.Verdict) {
	src := p.Name
	if p.Hash != "" {
		src += " (" + p.Hash + ")"
	}
	fmt.Fprintf(w, "policy:     %s\n", src)
	fmt.Fprintf(w, "verdict:    %s", v.Action)
	if v.Action == policy.Deny {
		fmt.Fprintf(w, " (on_deny: %s)", v.OnDeny)
	}
	fmt.Fprintln(w)
	d := v.Decision()
	fmt.Fprintf(w, "decided by: %s\n", d.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(v.Trace) > 0 {
		fmt.Fprintln(w, "\nmodule rules, in order (the first match decides):")
		for _, r := range v.Trace {
			m := "no match"
			if r.Matched {
				m = "MATCH"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Rule, m, r.Why)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nfindings:")
	for _, f := range v.Findings {
		fmt.Fprintf(tw, "  %s\t%s\n", f.Action, f.Reason)
	}
	tw.Flush()
}

type jsonFinding struct {
	Rule   string `json:"rule"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

type jsonTrace struct {
	Rule    string `json:"rule"`
	Matched bool   `json:"matched"`
	Why     string `json:"why"`
}

type jsonVerdict struct {
	Policy     string        `json:"policy"`
	PolicyHash string        `json:"policy_hash,omitempty"`
	Verdict    string        `json:"verdict"`
	OnDeny     string        `json:"on_deny"`
	DecidedBy  string        `json:"decided_by"`
	Findings   []jsonFinding `json:"findings"`
	Rules      []jsonTrace   `json:"rules"`
}

func verdictJSON(p *policy.Policy, v policy.Verdict) jsonVerdict {
	out := jsonVerdict{
		Policy: p.Name, PolicyHash: v.PolicyHash, Verdict: v.Action.String(), OnDeny: v.OnDeny.String(),
		DecidedBy: v.Decision().Rule, Findings: []jsonFinding{}, Rules: []jsonTrace{},
	}
	for _, f := range v.Findings {
		out.Findings = append(out.Findings, jsonFinding{f.Rule, f.Action.String(), f.Reason})
	}
	for _, r := range v.Trace {
		out.Rules = append(out.Rules, jsonTrace(r))
	}
	return out
}

// liveFacts identifies the module on a port, as scan does, and returns
// its facts.
func liveFacts(ctx context.Context, port string, baud int, stderr io.Writer) (policy.Facts, error) {
	o := scanOptions{port: port, baud: baud, timeout: time.Minute}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	prog := newProgress(stderr)
	defer prog.done()
	var m *modem.Module
	var err error
	if port == "auto" {
		var mods []*modem.Module
		if mods, _, err = scanAuto(ctx, o, modem.DefaultRegistry(), prog, stderr); err == nil {
			m = mods[0]
		}
	} else {
		m, err = scanPort(ctx, port, o, modem.DefaultRegistry(), usbFor(port), prog, stderr, o.timeout)
	}
	if err != nil {
		return policy.Facts{}, err
	}
	return agent.FactsOf(m), nil
}
