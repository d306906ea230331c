package rm

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opengvp/gvp/internal/testenv"
)

// freePort returns a UDP port free on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippUAS is a sipp server process playing a media server.
type sippUAS struct {
	t        *testing.T
	bin      string
	scenario string
	port     int
	cmd      *exec.Cmd
	out      bytes.Buffer
}

func startUAS(t *testing.T, bin, scenario string, port int) *sippUAS {
	u := &sippUAS{t: t, bin: bin, scenario: scenario, port: port}
	u.start()
	t.Cleanup(u.stop)
	return u
}

func (u *sippUAS) start() {
	u.cmd = exec.Command(u.bin, "-sf", filepath.Join("testdata", u.scenario), "-i", "127.0.0.1", "-p", strconv.Itoa(u.port),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(freePort(u.t)), "-aa", "-nostdin", "-buff_size", "4194304")
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	if err := u.cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	// Ready when its port is bound.
	waitFor(u.t, "sipp uas on "+strconv.Itoa(u.port), func() bool {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: u.port})
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
}

// stop kills the process (as a crash would).
func (u *sippUAS) stop() {
	if u.cmd != nil && u.cmd.Process != nil {
		_ = u.cmd.Process.Signal(syscall.SIGKILL)
		_ = u.cmd.Wait()
		u.cmd = nil
	}
}

func (u *sippUAS) addr() string { return fmt.Sprintf("127.0.0.1:%d", u.port) }

// runUAC places calls through rm with sipp and returns its output; it fails the test when a
// call failed.
func runUAC(t *testing.T, bin, rm string, calls, rate int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, rm, "-sf", filepath.Join("testdata", "uac_rr.xml"), "-s", "5551000",
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t)), "-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate),
		"-d", "50", "-l", "200", "-nostdin", "-timeout", "60s", "-recv_timeout", "10s", "-buff_size", "4194304",
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(freePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp uac: %v\n%s", err, tail(string(out), 3000))
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// callsPerMember reads gvp_rm_resource_calls_total per resource.
func callsPerMember(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gvp_rm_resource_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "resource" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func sippDocs(monitor string, members map[string]string) string {
	d := strings.Replace(baseDocs, "monitor: {method: options, interval: 200ms, failures: 2}", monitor, 1)
	d = strings.Replace(d, "policy: {usageLimit: 2}", "", 1)
	for _, n := range []string{"mcp-a", "mcp-b", "mcp-c"} {
		if a, ok := members[n]; ok {
			d += "\n---\nkind: MCP\nname: " + n + "\npool: MCP_LRG\naddress: " + a + "\ncapacity: 1000\n"
		}
	}
	return d
}

func TestSippRoundRobin(t *testing.T) {
	bin := testenv.Service(t, "GVP_TEST_SIPP", "scripts/sipp.sh start")
	a := startUAS(t, bin, "uas_rr.xml", freePort(t))
	b := startUAS(t, bin, "uas_rr.xml", freePort(t))
	c := startUAS(t, bin, "uas_rr.xml", freePort(t))
	r, _, _, reg := startRM(t, nil, sippDocs("monitor: {method: options, interval: 1s, failures: 2}",
		map[string]string{"mcp-a": a.addr(), "mcp-b": b.addr(), "mcp-c": c.addr()}))
	runUAC(t, bin, r.SIPAddr(), 300, 100)
	per := callsPerMember(t, reg)
	for _, n := range []string{"mcp-a", "mcp-b", "mcp-c"} {
		if per[n] < 99 || per[n] > 101 {
			t.Fatalf("round-robin spread %v, want 100±1 each", per)
		}
	}
	waitFor(t, "calls to end", func() bool { return r.ActiveCalls() == 0 })
}

func TestSippFailover(t *testing.T) {
	bin := testenv.Service(t, "GVP_TEST_SIPP", "scripts/sipp.sh start")
	a := startUAS(t, bin, "uas_rr.xml", freePort(t))
	b := startUAS(t, bin, "uas_rr.xml", freePort(t))
	bad := startUAS(t, bin, "uas_503.xml", freePort(t))
	r, _, _, reg := startRM(t, nil, sippDocs("monitor: {method: options, interval: 500ms, failures: 2}",
		map[string]string{"mcp-a": a.addr(), "mcp-b": b.addr(), "mcp-c": bad.addr()}))

	// A member answering 503 is skipped: every call succeeds (runUAC fails on any failure).
	runUAC(t, bin, r.SIPAddr(), 60, 30)
	if per := callsPerMember(t, reg); per["mcp-c"] == 0 {
		t.Fatalf("the 503 member was never tried: %v", per)
	}

	// Kill one: the calls placed inside the monitor window fail over per call, and the member
	// is marked down within interval*failures (+ one probe wait).
	a.stop()
	start := time.Now()
	done := make(chan string, 1)
	go func() { done <- runUAC(t, bin, r.SIPAddr(), 60, 20) }()
	mem := r.px.pools.all["mcp-a"]
	waitFor(t, "killed member marked down", func() bool { return !mem.up.Load() })
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("marked down after %v, want within the monitor window (1.5s)", d)
	}
	<-done
	before := callsPerMember(t, reg)["mcp-a"]
	runUAC(t, bin, r.SIPAddr(), 30, 30)
	if after := callsPerMember(t, reg)["mcp-a"]; after != before {
		t.Fatalf("a member marked down still got %v INVITEs", after-before)
	}

	// Restart it: one answered probe brings it back.
	a.start()
	waitFor(t, "restarted member up", func() bool { return mem.up.Load() })
	runUAC(t, bin, r.SIPAddr(), 30, 30)
	if after := callsPerMember(t, reg)["mcp-a"]; after == before {
		t.Fatal("restarted member got no call")
	}
	waitFor(t, "calls to end", func() bool { return r.ActiveCalls() == 0 })
}
