package mcp

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// fixture is the speech prompt copied from the shared fixtures (about 1.4 s of mu-law).
func fixture(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("testdata/one_two_three_8k_ulaw.wav")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type harness struct {
	m   *MCP
	reg *prometheus.Registry
	pub *billing.MemoryPublisher
}

// testLogger logs to the test output when GVP_TEST_LOG is set.
func testLogger() zerolog.Logger {
	if os.Getenv("GVP_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}

// startMCP runs an mcp on loopback with kernel-chosen SIP and admin ports.
func startMCP(t testing.TB, edit func(*Config, *Deps), pre ...func(*MCP)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "mcp-test"
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.RTP.PortMin, cfg.RTP.PortMax = 46000, 49998
	cfg.VoiceXML.AllowFile = true // announcements of testdata files
	h := &harness{reg: admin.NewRegistry(), pub: &billing.MemoryPublisher{}}
	deps := Deps{Common: lifecycle.Common{Log: testLogger(), Metrics: h.reg}, Publisher: h.pub}
	if edit != nil {
		edit(&cfg, &deps)
	}
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pre {
		f(m)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return h
}

func (h *harness) uri(user, params string) string {
	return "sip:" + user + "@" + h.m.SIPAddr().String() + params
}

func (h *harness) annc(t testing.TB, extra string) string {
	return h.uri("annc", ";play=file://"+fixture(t)+extra)
}

func newAgent(t testing.TB) *caller.Agent {
	t.Helper()
	cfg := caller.DefaultAgentConfig()
	cfg.Logger = testLogger()
	a, err := caller.NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// waitFor polls cond until it holds or the deadline passes (synchronisation, not timing).
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// goroutinesSettle waits for the goroutine count to come back to at most base+slack.
func goroutinesSettle(t testing.TB, base, slack int) int {
	t.Helper()
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n = runtime.NumGoroutine()
		if n <= base+slack || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
