package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ConsulAgent is a private Consul dev agent on free loopback ports, for tests that restart it or
// must not see other tests' services. It uses the binary scripts/consul.sh builds and caches.
type ConsulAgent struct {
	bin   string
	dir   string
	ports [4]int // http, serf lan, server, serf wan
	cmd   *exec.Cmd
	done  chan struct{}
}

// ConsulBinary returns the cached consul binary (scripts/consul.sh build).
func ConsulBinary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("GVP_CONSUL_CACHE")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "gvp", "consul-1.16.6")
	}
	bin := filepath.Join(dir, "consul")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, fmt.Sprintf("consul binary %s missing: run scripts/consul.sh build (make test does)", bin))
	}
	return bin
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NewConsulAgent starts a private dev agent, stopped when the test ends.
func NewConsulAgent(t testing.TB) *ConsulAgent {
	t.Helper()
	a := &ConsulAgent{bin: ConsulBinary(t), dir: t.TempDir()}
	for i := range a.ports {
		a.ports[i] = FreePort(t)
	}
	a.Start(t)
	t.Cleanup(func() { a.Stop(t) })
	return a
}

// Addr is the agent's HTTP address.
func (a *ConsulAgent) Addr() string { return "127.0.0.1:" + strconv.Itoa(a.ports[0]) }

// Start (re)starts the agent and waits until it has a leader.
func (a *ConsulAgent) Start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(a.dir, "consul.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	a.cmd = exec.Command(a.bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(a.ports[0]), "-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
		"-serf-lan-port", strconv.Itoa(a.ports[1]), "-server-port", strconv.Itoa(a.ports[2]),
		"-serf-wan-port", strconv.Itoa(a.ports[3]), "-node", fmt.Sprintf("gvp-test-%d", a.ports[0]))
	a.cmd.Stdout, a.cmd.Stderr = log, log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); log.Close(); close(done) }(a.cmd, a.done)
	hc := &http.Client{Timeout: time.Second}
	Eventually(t, 60*time.Second, "private consul agent has a leader", func() bool {
		resp, err := hc.Get("http://" + a.Addr() + "/v1/status/leader")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b [128]byte
		n, _ := resp.Body.Read(b[:])
		return resp.StatusCode == 200 && strings.Contains(string(b[:n]), ":")
	})
}

// Stop stops the agent (SIGINT, then SIGKILL after 20 s).
func (a *ConsulAgent) Stop(t testing.TB) {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
}
