// Package testenv helps integration tests: it builds the gvp binary, starts it as a subprocess
// on kernel-chosen ports, and finds the external services (PostgreSQL, ActiveMQ, Consul) that
// scripts/ started. A test that needs a missing service fails under CI (CI=true) and skips
// with a clear message elsewhere.
package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Service returns the value of the environment variable that locates an external service,
// e.g. GVP_TEST_POSTGRES_DSN. Without it the test fails when CI=true and skips otherwise.
func Service(t testing.TB, env, startHint string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	Missing(t, fmt.Sprintf("%s is not set: start the service with %s (make test does)", env, startHint))
	return ""
}

// Missing reports that something a test needs is not there: under CI (CI=true) the test
// fails, elsewhere it is skipped with msg.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds gvp once per test process (or uses $GVP_TEST_BINARY) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GVP_TEST_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gvp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gvp")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// LoopbackSets are --set flags that put every listener of `gvp local` on 127.0.0.1:0.
var LoopbackSets = []string{
	"broker.listen=127.0.0.1:0",
	"configsrv.listen=127.0.0.1:0",
	"rs.listen=127.0.0.1:0",
	"rm.sip.listen=127.0.0.1:0",
	"rm.admin.listen=127.0.0.1:0",
	"mcp.sip.listen=127.0.0.1:0",
	"mcp.admin.listen=127.0.0.1:0",
	"sd.admin.listen=127.0.0.1:0",
}

// Process is a gvp subprocess.
type Process struct {
	Cmd       *exec.Cmd
	Dir       string
	Endpoints map[string]map[string]string
	Stderr    *bytes.Buffer
	exited    chan struct{}
	waitErr   error
}

// Start runs `gvp args...` with a temporary data folder and waits until it wrote its ready file.
// The process is killed when the test ends.
func Start(t testing.TB, args ...string) *Process {
	t.Helper()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.json")
	full := append([]string{}, args...)
	full = append(full, "--data-dir", filepath.Join(dir, "data"), "--ready-file", ready, "--set", "log.format=json")
	p := &Process{Dir: dir, Stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	p.Cmd = exec.Command(Binary(t), full...)
	p.Cmd.Stdout = &lockedWriter{w: &bytes.Buffer{}}
	p.Cmd.Stderr = &lockedWriter{w: p.Stderr}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.Cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("gvp stderr:\n%s", p.Logs())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			if err := json.Unmarshal(b, &p.Endpoints); err != nil {
				t.Fatalf("ready file: %v", err)
			}
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("gvp exited before ready: %v\n%s", p.waitErr, p.Logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gvp not ready after 30s\n%s", p.Logs())
		}
	}
}

// Logs returns what the process wrote to stderr so far.
func (p *Process) Logs() string {
	lw := p.Cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return p.Stderr.String()
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code (-1 on timeout).
func (p *Process) Wait(d time.Duration) int {
	select {
	case <-p.exited:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// URL returns the HTTP base URL of a role's admin (or API) endpoint.
func (p *Process) URL(t testing.TB, role string) string {
	t.Helper()
	eps := p.Endpoints[role]
	for _, k := range []string{"admin", "api"} {
		if u, ok := eps[k]; ok {
			return u
		}
	}
	t.Fatalf("no admin endpoint for %s in %v", role, p.Endpoints)
	return ""
}

// Get fetches url and returns status and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// Eventually polls cond every 10 ms until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Contains reports whether s contains every one of subs.
func Contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// Run runs gvp with args to completion and returns its combined output and exit code.
func Run(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return string(out), 0
}
