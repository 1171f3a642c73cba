package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/modemguard/modemguard/attest"
)

// reportStdin is where "-" (or no file) reads from; tests replace it.
var reportStdin io.Reader = os.Stdin

// reportMaxInput bounds one input file of envelopes.
const reportMaxInput = 256 << 20

// runPubkey: modemguard pubkey --state-dir DIR [--create]
func runPubkey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pubkey", "--state-dir DIR [--create]", stderr)
	dir := fs.String("state-dir", "", "the agent's state directory, which holds signing.key (required)")
	create := fs.Bool("create", false, "generate the key (mode 0600) if the state directory has none, e.g. to enroll a gateway before its first start")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return &usageError{msg: "--state-dir is required"}
	}
	var k *attest.Key
	var err error
	if *create {
		var created bool
		k, created, err = attest.LoadOrCreateKey(*dir)
		if created {
			fmt.Fprintf(stderr, "modemguard pubkey: generated a new signing key in %s\n", *dir)
		}
	} else {
		k, err = attest.LoadKey(*dir)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no signing key in %s yet: the agent creates it on first start; or run with --create", *dir)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, attest.EncodePublicKey(k.Public()))
	return nil
}

// runVerify: modemguard verify --pubkey BASE64|FILE [FILE|-]...
func runVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", "--pubkey BASE64|FILE [FILE|-]...", stderr)
	pubArg := fs.String("pubkey", "", "the gateway's public key: base64 of the raw 32 bytes, as `modemguard pubkey` prints it, or a file holding it (required)")
	files, err := parseWithFiles(fs, args)
	if err != nil {
		return err
	}
	if *pubArg == "" {
		return &usageError{msg: "--pubkey is required"}
	}
	pub, err := loadPubkey(*pubArg)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	v := attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(pub)})
	var total, dups int
	failures := map[string]int{}
	fail := func(where string, err error) {
		fmt.Fprintf(stderr, "modemguard verify: %s: %v\n", where, err)
		failures[failureKind(err)]++
	}
	for _, name := range files {
		data, err := readReportInput(name)
		if err != nil {
			return err
		}
		envs, splitErr := attest.SplitStream(data)
		for i, raw := range envs {
			total++
			where := fmt.Sprintf("%s: envelope %d", displayName(name), i+1)
			got, err := v.Verify(raw)
			if errors.Is(err, attest.ErrReplay) {
				dups++
				fmt.Fprintf(stderr, "modemguard verify: %s: seq %d again (a duplicate, normal after a reconnect; not printed twice)\n", where, got.Report.Seq)
				continue
			}
			if err != nil {
				fail(where, err)
			}
			if got == nil {
				continue
			}
			if err := writeJSONBody(stdout, got.Envelope.Body); err != nil {
				return err
			}
		}
		if splitErr != nil {
			total++
			fail(displayName(name), splitErr)
		}
	}
	if total == 0 {
		return errors.New("no envelopes in the input")
	}
	if len(failures) > 0 {
		var parts []string
		n := 0
		for k, c := range failures {
			parts = append(parts, fmt.Sprintf("%d %s", c, k))
			n += c
		}
		sort.Strings(parts)
		return fmt.Errorf("%d of %d envelopes failed: %s", n, total, strings.Join(parts, ", "))
	}
	fmt.Fprintf(stderr, "modemguard verify: %d envelopes: signatures and chain OK", total)
	if dups > 0 {
		fmt.Fprintf(stderr, " (%d duplicates)", dups)
	}
	fmt.Fprintln(stderr)
	return nil
}

// runReportDecode: modemguard report decode [FILE|-]...
func runReportDecode(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report decode", "[FILE|-]...", stderr)
	files, err := parseWithFiles(fs, args)
	if err != nil {
		return err
	}
	for _, name := range files {
		data, err := readReportInput(name)
		if err != nil {
			return err
		}
		envs, splitErr := attest.SplitStream(data)
		for _, raw := range envs {
			env, err := attest.DecodeEnvelope(raw)
			if err != nil {
				return err
			}
			j, err := attest.EnvelopeJSON(env)
			if err != nil {
				return fmt.Errorf("%s: %w", displayName(name), err)
			}
			if err := writeIndented(stdout, j); err != nil {
				return err
			}
		}
		if splitErr != nil {
			return fmt.Errorf("%s: %w", displayName(name), splitErr)
		}
	}
	return nil
}

// parseWithFiles parses flags that may come before, between or after file
// arguments; no file means standard input.
func parseWithFiles(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		files = append(files, args[0])
		args = args[1:]
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	return files, nil
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func readReportInput(name string) ([]byte, error) {
	var r io.Reader = reportStdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, reportMaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayName(name), err)
	}
	if len(data) > reportMaxInput {
		return nil, fmt.Errorf("%s is larger than %d MiB; split it", displayName(name), reportMaxInput>>20)
	}
	return data, nil
}

// loadPubkey takes the key itself or a file holding it (the last field of
// its first non-comment line, so "gw-0001 <key>" enrollment lines work).
func loadPubkey(arg string) (ed25519.PublicKey, error) {
	if pub, err := attest.ParsePublicKey(arg); err == nil {
		return pub, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("--pubkey %q is neither a base64 Ed25519 key nor a readable file: %v", arg, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		pub, err := attest.ParsePublicKey(f[len(f)-1])
		if err != nil {
			return nil, fmt.Errorf("--pubkey file %s: %v", arg, err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("--pubkey file %s holds no key", arg)
}

func failureKind(err error) string {
	for _, k := range []error{attest.ErrBadSignature, attest.ErrUnknownKey, attest.ErrGap, attest.ErrFork,
		attest.ErrOutOfOrder, attest.ErrBrokenChain, attest.ErrMalformed} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "unreadable"
}

func writeJSONBody(w io.Writer, body []byte) error {
	j, err := attest.BodyJSON(body)
	if err != nil {
		return err
	}
	return writeIndented(w, j)
}

func writeIndented(w io.Writer, j []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, j, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
