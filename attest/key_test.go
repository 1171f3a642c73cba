package attest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, created, err := LoadOrCreateKey(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", di.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(dir)
	if err != nil || created || k2.ID() != k1.ID() {
		t.Fatalf("second start: created=%v err=%v id %s vs %s", created, err, k2.ID(), k1.ID())
	}
	pub, err := ParsePublicKey(EncodePublicKey(k1.Public()))
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	if len(EncodePublicKey(pub)) != 44 {
		t.Errorf("base64 of 32 bytes is 44 characters, got %q", EncodePublicKey(pub))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestKeyReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateKey(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, KeyFile)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateKey(dir)
	if err == nil {
		t.Fatal("a key readable by group was accepted")
	}
	for _, want := range []string{path, "chmod 600 " + path, "0640"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestKeyFileGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateKey(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, KeyFile)) {
		t.Fatalf("err %v, want one naming the file", err)
	}
	if _, err := LoadKey(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKey on an empty dir: %v, want ErrNotExist", err)
	}
}

func TestParsePublicKeyErrors(t *testing.T) {
	for _, s := range []string{"", "!!!", "AAAA"} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", s)
		}
	}
}
