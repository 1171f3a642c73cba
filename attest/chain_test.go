package attest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChainPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	k := testKey(1)
	c, err := OpenChain(dir, k, ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	first := issueN(t, c, 3)
	// "Reboot": a new Chain on the same state dir continues the chain.
	c2, err := OpenChain(dir, k, ChainConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seq, hash := c2.Head()
	if seq != 3 || hash != first[2].Hash {
		t.Fatalf("head after reopen: %d %x", seq, hash)
	}
	next := issueN(t, c2, 1)[0]
	if next.Report.Seq != 4 || !bytes.Equal(next.Report.PrevHash, first[2].Hash[:]) {
		t.Fatalf("after restart: seq %d prev %x", next.Report.Seq, next.Report.PrevHash)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, ChainFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("chain file mode %v", fi.Mode().Perm())
	}
}

func TestChainCorruptStateNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ChainFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenChain(dir, testKey(1), ChainConfig{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("err %v", err)
	}
}

func TestChainResume(t *testing.T) {
	k := testKey(1)
	a := newChain(t, k)
	is := issueN(t, a, 5)
	b := newChain(t, k)
	if err := b.Resume(is[4].Envelope); err != nil {
		t.Fatal(err)
	}
	if err := b.Resume(is[1].Envelope); err != nil { // older: ignored
		t.Fatal(err)
	}
	next := issueN(t, b, 1)[0]
	if next.Report.Seq != 6 || !bytes.Equal(next.Report.PrevHash, is[4].Hash[:]) {
		t.Fatalf("resumed chain: seq %d", next.Report.Seq)
	}
	if err := b.Resume(issueN(t, newChain(t, testKey(2)), 1)[0].Envelope); err == nil {
		t.Error("Resume accepted an envelope signed by another key")
	}
}
