//go:build linux

package pty

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRawRoundTrip writes through the slave and reads on the master (and
// back): CR must stay CR and nothing may be echoed.
func TestRawRoundTrip(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := os.OpenFile(p.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("AT\r")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := p.Read(buf)
	if err != nil || string(buf[:n]) != "AT\r" {
		t.Fatalf("master read %q, %v", buf[:n], err)
	}
	if _, err := p.Write([]byte("\r\nOK\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Skip("slave not pollable here")
	}
	n, err = s.Read(buf)
	if err != nil || string(buf[:n]) != "\r\nOK\r\n" {
		t.Fatalf("slave read %q, %v", buf[:n], err)
	}
}

func TestLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyAT0")
	if err := Link(link, "/dev/pts/1"); err != nil {
		t.Fatal(err)
	}
	if err := Link(link, "/dev/pts/2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(link); got != "/dev/pts/2" {
		t.Fatalf("link -> %q", got)
	}
	Unlink(link, "/dev/pts/1") // not ours any more: stays
	if _, err := os.Lstat(link); err != nil {
		t.Fatal("Unlink removed a link pointing elsewhere")
	}
	Unlink(link, "/dev/pts/2")
	if _, err := os.Lstat(link); err == nil {
		t.Fatal("Unlink left the link")
	}
	plain := filepath.Join(dir, "file")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Link(plain, "/dev/pts/3"); err == nil {
		t.Fatal("Link replaced a regular file")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		done <- err
	}()
	p.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}
