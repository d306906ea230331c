package mcp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/testenv"
)

// freeUDPPort returns an even UDP port that was free on 127.0.0.1 a moment ago (with the
// next port free too, for sipp's RTCP).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p%2 != 0 || p > 65000 {
			continue
		}
		c2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p + 1})
		if err != nil {
			continue
		}
		c2.Close()
		return p
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// runSipp runs sipp against the mcp with scenario and extra arguments; it fails the test
// when sipp reports failed calls.
func runSipp(t *testing.T, h *harness, scenario string, args ...string) {
	t.Helper()
	bin := testenv.Service(t, "GVP_TEST_SIPP", "scripts/sipp.sh start")
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{h.m.SIPAddr().String(), "-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(freeUDPPort(t)), "-key", "play", "file://" + fixture(t),
		"-nostdin", "-timeout", "40s", "-recv_timeout", "30000"}, args...)
	// Scenarios replay captures from pcap/, SIPp's own captures.
	dir := t.TempDir()
	if err := os.Symlink("/usr/share/sip-tester", filepath.Join(dir, "pcap")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp %v: %v\n%s", all, err, out)
	}
}

// TestSippAnnouncement: sipp calls the announcement service, echoes the audio back
// (-rtp_echo) and gets the mcp's BYE when the prompt ends.
func TestSippAnnouncement(t *testing.T) {
	h := startMCP(t, nil)
	const calls = 6
	runSipp(t, h, "annc_uac.xml", "-m", strconv.Itoa(calls), "-r", "6", "-l", strconv.Itoa(calls), "-rtp_echo")
	waitFor(t, "calls to end", 5*time.Second, func() bool { return h.m.Active() == 0 })
	if v := counter(t, h.m.metrics.ended.WithLabelValues(string(billing.EndPlatformHangup))); v != calls {
		t.Fatalf("%v calls ended by the platform, want %d", v, calls)
	}
	// The 2 s prompt is 100 packets per call; sipp's echo brings them back.
	sent := counter(t, h.m.engine.Metrics().PacketsSent)
	echoed := counter(t, h.m.engine.Metrics().PacketsReceived)
	if sent < calls*100 || echoed < calls*90 {
		t.Fatalf("rtp packets sent %v, echoed back %v; want about %d each", sent, echoed, calls*100)
	}
}

// TestSippDTMF replays SIPp's RFC 4733 captures into a call: the mcp detects 1, 5, 9, * and #.
func TestSippDTMF(t *testing.T) {
	var mu sync.Mutex
	heard := ""
	h := startMCP(t, nil, func(m *MCP) {
		m.onDigitHook = func(c *Call, d rune, method string) {
			mu.Lock()
			defer mu.Unlock()
			if method == media.MethodRFC4733 {
				heard += string(d)
			}
		}
	})
	runSipp(t, h, "dtmf_uac.xml", "-m", "1")
	waitFor(t, "call to end", 5*time.Second, func() bool { return h.m.Active() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if heard != "159*#" {
		t.Fatalf("digits detected %q, want 159*#", heard)
	}
	if v := counter(t, h.m.metrics.ended.WithLabelValues(string(billing.EndCallerHangup))); v != 1 {
		t.Fatalf("caller hangups %v", v)
	}
}
