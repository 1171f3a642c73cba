//go:build system

package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// requireTool fails the test when a system-tier tool is missing, naming the
// Debian package that provides it.
func requireTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not found: apt-get install -y %s (or run .ci/run)", tool, pkg)
	}
	return p
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces); run make test-system as root, as CI does")
	}
}

// repoRoot is the module root, one level above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// goBuild cross-compiles the main package pkg (e.g. "./cmd/modemguard")
// statically for goarch and returns the binary's path.
func goBuild(t *testing.T, pkg, goarch string, extraEnv ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg)+"-"+goarch)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch}, extraEnv...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s for %s: %v\n%s", pkg, goarch, err, b)
	}
	return out
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mosquitto is a broker the test started.
type mosquitto struct {
	Addr string // host:port
	cmd  *exec.Cmd
}

// startMosquitto runs a private Mosquitto on a free loopback port with a
// config of its own (never the system service) and stops it when the test
// ends. extraConf is appended to the listener's configuration.
func startMosquitto(t *testing.T, extraConf string) *mosquitto {
	t.Helper()
	bin := requireTool(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // mosquitto drops to its own user when started as root
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf("persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n"+
		"user root\nlistener %d 127.0.0.1\nallow_anonymous true\n%s", port, extraConf)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("mosquitto: %s", sc.Text())
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-logDone
	})
	m := &mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s within 10s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's port: no event to wait on
	}
}

// netns is a network namespace the test created.
type netns struct{ Name string }

// newNetns creates a throwaway network namespace and deletes it when the
// test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	requireRoot(t)
	requireTool(t, "ip", "iproute2")
	name := fmt.Sprintf("mgtest-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if b, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, b)
		}
	})
	return &netns{Name: name}
}

// Exec runs a command inside the namespace and returns its output.
func (n *netns) Exec(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return runIn(t, "", name, args...)
}

// runIn runs a command in directory dir ("" for the current one) with a
// 10-minute limit and returns its output; a failure fails the test.
func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return string(b)
}

// qemuFor returns the user-mode emulator for goarch, or "" when goarch is
// the host's.
func qemuFor(t *testing.T, goarch string) string {
	t.Helper()
	if goarch == runtime.GOARCH {
		return ""
	}
	names := map[string]string{"arm64": "qemu-aarch64-static", "arm": "qemu-arm-static"}
	return requireTool(t, names[goarch], "qemu-user-static")
}

// hostArch is the GOARCH of this machine, for binaries run natively.
func hostArch() string { return runtime.GOARCH }
