package attest_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/modemguard/modemguard/attest"
)

// A gateway issues signed, chained reports; a verifier that misses one
// reports the gap, and a resend is recognised as a replay.
func ExampleVerifier() {
	dir, _ := os.MkdirTemp("", "attest-example-")
	defer os.RemoveAll(dir)
	key, _, _ := attest.LoadOrCreateKey(dir)
	chain, _ := attest.OpenChain(dir, key, attest.ChainConfig{})
	var envs [][]byte
	for range 3 {
		is, _ := chain.Issue(attest.Report{GatewayID: "gw-0001", Verdict: "allow"})
		envs = append(envs, is.Envelope)
	}

	v := attest.NewVerifier(attest.VerifierConfig{Keys: attest.StaticKey(key.Public())})
	for _, env := range [][]byte{envs[0], envs[2], envs[2]} {
		got, err := v.Verify(env)
		switch {
		case errors.Is(err, attest.ErrGap):
			fmt.Println("seq", got.Report.Seq, "gap")
		case errors.Is(err, attest.ErrReplay):
			fmt.Println("seq", got.Report.Seq, "replay")
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println("seq", got.Report.Seq, "ok")
		}
	}
	// Output:
	// seq 1 ok
	// seq 3 gap
	// seq 3 replay
}
