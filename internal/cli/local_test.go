package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/testenv"
)

var allRoles = []string{"configsrv", "rs", "rm", "mcp", "sd"}

func startLocal(t *testing.T, extra ...string) *testenv.Process {
	args := []string{"local"}
	for _, s := range append(append([]string{}, testenv.LoopbackSets...), extra...) {
		args = append(args, "--set", s)
	}
	return testenv.Start(t, args...)
}

// TestLocalLifecycle starts `gvp local` as a subprocess on kernel-chosen ports, checks every
// role's /readyz and /metrics, then SIGTERM: exit 0 within the drain timeout.
func TestLocalLifecycle(t *testing.T) {
	p := startLocal(t, "shutdown.drain_timeout=5s")
	for _, role := range allRoles {
		base := p.URL(t, role)
		if code, body := testenv.Get(t, base+"/readyz"); code != 200 {
			t.Fatalf("%s /readyz = %d %q", role, code, body)
		}
		if code, _ := testenv.Get(t, base+"/healthz"); code != 200 {
			t.Fatalf("%s /healthz = %d", role, code)
		}
		code, body := testenv.Get(t, base+"/metrics")
		if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_resident_memory_bytes") {
			t.Fatalf("%s /metrics = %d, missing runtime metrics", role, code)
		}
	}
	if _, ok := p.Endpoints["broker"]["stomp"]; !ok {
		t.Fatalf("embedded broker not listed: %v", p.Endpoints)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(5*time.Second + 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, p.Logs())
	}
	if !strings.Contains(p.Logs(), `"message":"draining`) {
		t.Fatal("no drain logged")
	}
}

// TestBadConfigNamesKey: a bad value is refused at start with the key named and exit code 2.
func TestBadConfigNamesKey(t *testing.T) {
	for _, tc := range []struct{ set, key string }{
		{"mcp.rtp.port_min=7", "mcp.rtp.port_min"},
		{"rm.sip.lisen=127.0.0.1:0", "rm.sip.lisen"},
		{"shutdown.drain_timeout=forever", "shutdown.drain_timeout"},
	} {
		out, code := testenv.Run(t, "config", "validate", "--set", tc.set)
		if code != 2 || !strings.Contains(out, tc.key) {
			t.Errorf("--set %s: exit %d, output %q; want exit 2 naming %s", tc.set, code, out, tc.key)
		}
	}
	if out, code := testenv.Run(t, "config", "validate", "--local"); code != 0 {
		t.Fatalf("local preset invalid: %s", out)
	}
}

// TestLocalConfigsrvAndCtl: gvp local seeds the demo configuration; gvp ctl reads it; a bad
// apply is rejected (exit 1, the document and field named) and changes nothing.
func TestLocalConfigsrvAndCtl(t *testing.T) {
	p := startLocal(t)
	server := p.Endpoints["configsrv"]["api"]
	out, code := testenv.Run(t, "ctl", "--server", server, "get", "profiles", "-o", "yaml")
	if code != 0 || !testenv.Contains(out, "IVRAppDefault", "file://", "hello.vxml") {
		t.Fatalf("ctl get profiles: exit %d\n%s", code, out)
	}
	_, before := testenv.Get(t, server+"/api/v1/revision")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	doc := "kind: Tenant\nname: t200\nid: 99aa\n---\nkind: MCP\nname: mcp-9\npool: NOPE\naddress: 127.0.0.1:5070\ncapacity: 10\n"
	if err := os.WriteFile(bad, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = testenv.Run(t, "ctl", "--server", server, "apply", "-f", bad)
	if code != 1 || !testenv.Contains(out, "document 1", "pool") {
		t.Fatalf("bad apply: exit %d, want 1 naming document 1 and field pool\n%s", code, out)
	}
	if _, after := testenv.Get(t, server+"/api/v1/revision"); after != before {
		t.Fatalf("revision moved after a rejected apply: %s -> %s", before, after)
	}
	if out, code := testenv.Run(t, "ctl", "--server", server, "get", "tenants", "t200"); code == 0 {
		t.Fatalf("tenant of a rejected apply exists:\n%s", out)
	}
	good := strings.Replace(doc, "pool: NOPE", "pool: MCP_LRG", 1)
	if err := os.WriteFile(bad, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := testenv.Run(t, "ctl", "--server", server, "apply", "-f", bad); code != 0 {
		t.Fatalf("good apply: exit %d\n%s", code, out)
	}
	if out, code := testenv.Run(t, "ctl", "--server", server, "get", "mcps", "mcp-9", "-o", "json"); code != 0 || !strings.Contains(out, "127.0.0.1:5070") {
		t.Fatalf("applied MCP missing: %d\n%s", code, out)
	}
}

// placeCall runs `gvp call` with args and decodes its JSON summary.
func placeCall(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, code := testenv.Run(t, append([]string{"call", "--json"}, args...)...)
	var r map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
		t.Fatalf("gvp call exit %d, output %q: %v", code, out, err)
	}
	return r
}

// waitPool waits until service discovery has put the local mcp into configsrv's pool.
func waitPool(t *testing.T, p *testenv.Process) {
	server := p.Endpoints["configsrv"]["api"]
	testenv.Eventually(t, 15*time.Second, "the local mcp in the pool", func() bool {
		_, body := testenv.Get(t, server+"/api/v1/mcps")
		return strings.Contains(body, `"managed":true`)
	})
}

// TestLocalCallEndToEnd is gvp's main job: a call to the demo number enters rm, is routed to
// the mcp that service discovery put in the pool, runs the bundled VoiceXML application (TTS
// prompt, the caller's digit read back, disconnect), and both CDRs reach rs through the broker.
func TestLocalCallEndToEnd(t *testing.T) {
	p := startLocal(t)
	waitPool(t, p)
	rmSIP := p.Endpoints["rm"]["sip/udp"]
	r := placeCall(t, "sip:5551000@"+rmSIP+";gvp-tenant-id=80dd", "--dtmf", "5@3s", "--hangup-after", "20s")
	if r["code"] != float64(200) || r["hung_up_by"] != "remote" {
		t.Fatalf("call %v: want 200 and the application hanging up", r)
	}
	if r["audio_seconds"].(float64) < 2 {
		t.Fatalf("heard %v s of audio, want the greeting and the read-back", r["audio_seconds"])
	}
	sid, _ := r["gvp_session_id"].(string)
	if sid == "" {
		t.Fatalf("no X-Genesys-GVP-Session-ID in the answer: %v", r)
	}
	rs := p.Endpoints["rs"]["api"]
	for _, comp := range []string{"RM", "MCP"} {
		url := rs + "/ems-rs/HIST/CDRs/" + comp + "/details?session-id=" + sid
		testenv.Eventually(t, 15*time.Second, comp+" CDR in rs", func() bool {
			_, body := testenv.Get(t, url)
			return strings.Contains(body, `"total":1`) && strings.Contains(body, `"state":"completed"`)
		})
	}
	_, body := testenv.Get(t, rs+"/ems-rs/HIST/CDRs/RM/details?session-id="+sid)
	if !testenv.Contains(body, `"ivr_profile":"IVRAppDefault"`, `"tenant_id":"80dd"`, `"dnis":"5551000"`) {
		t.Fatalf("rm CDR lacks profile/tenant/DNIS: %s", body)
	}
}

// startCall runs `gvp call` in the background against target for up to d.
func startCall(t *testing.T, target string, d time.Duration) *exec.Cmd {
	cmd := exec.Command(testenv.Binary(t), "call", target, "--hangup-after", d.String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func announcement(p *testenv.Process) string {
	wav := filepath.Join(testenv.RepoRoot(), "roles", "mcp", "testdata", "one_two_three_8k_ulaw.wav")
	return "sip:annc@" + p.Endpoints["mcp"]["sip/udp"] + ";play=file://" + wav + ";repeat=forever"
}

func activeCalls(t *testing.T, p *testenv.Process) string {
	_, body := testenv.Get(t, p.URL(t, "mcp")+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "gvp_mcp_sessions ") || strings.HasPrefix(l, "gvp_mcp_sessions{") {
			return l[strings.LastIndex(l, " ")+1:]
		}
	}
	return ""
}

// TestDrainWaitsForCalls: SIGTERM with a call in progress turns readiness off but keeps the
// process (and the call) alive until the call ends, then exits 0 before the drain timeout.
func TestDrainWaitsForCalls(t *testing.T) {
	p := startLocal(t, "shutdown.drain_timeout=60s")
	call := startCall(t, announcement(p), 4*time.Second)
	testenv.Eventually(t, 10*time.Second, "the call in progress", func() bool { return activeCalls(t, p) == "1" })
	t0 := time.Now()
	p.Signal(t, syscall.SIGTERM)
	testenv.Eventually(t, 5*time.Second, "mcp readiness off", func() bool {
		code, _ := testenv.Get(t, p.URL(t, "mcp")+"/readyz")
		return code == 503
	})
	if p.Exited() {
		t.Fatal("exited with a call in progress")
	}
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0 once the call ended\n%s", code, p.Logs())
	}
	if err := call.Wait(); err != nil {
		t.Fatalf("the call in progress failed during the drain: %v", err)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Fatalf("drain took %s: it waited for the timeout, not for the call", d)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM during a drain held by a call exits at once.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	p := startLocal(t, "shutdown.drain_timeout=60s")
	startCall(t, announcement(p), 60*time.Second)
	testenv.Eventually(t, 10*time.Second, "the call in progress", func() bool { return activeCalls(t, p) == "1" })
	p.Signal(t, syscall.SIGTERM)
	testenv.Eventually(t, 5*time.Second, "draining", func() bool { return strings.Contains(p.Logs(), "draining") })
	if code := p.Wait(time.Second); code != -1 {
		t.Fatalf("exited (%d) during the drain with a call in progress", code)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(5 * time.Second); code != 130 {
		t.Fatalf("exit code %d after the second signal, want 130 at once", code)
	}
}

// TestReloadOnSIGHUP: SIGHUP re-reads the configuration file; a bad file is rejected with the
// key named and changes nothing, the process keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gvp.yaml")
	if err := os.WriteFile(cfgFile, []byte("log:\n  level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"configsrv", "--config", cfgFile, "--set", "configsrv.listen=127.0.0.1:0"}
	p := testenv.Start(t, args...)
	if err := os.WriteFile(cfgFile, []byte("log:\n  level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	testenv.Eventually(t, 5*time.Second, "reload logged", func() bool {
		return testenv.Contains(p.Logs(), "configuration reloaded", `"log_level":"debug"`)
	})
	// The new level is in force: an apply now logs at debug.
	put := exec.Command(testenv.Binary(t), "ctl", "--server", p.Endpoints["configsrv"]["api"], "apply", "-f", "-")
	put.Stdin = strings.NewReader("kind: Tenant\nname: t300\nid: aa01\n")
	if out, err := put.CombinedOutput(); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	testenv.Eventually(t, 5*time.Second, "a debug line after the reload", func() bool {
		return testenv.Contains(p.Logs(), `"level":"debug"`, "configuration applied")
	})
	if err := os.WriteFile(cfgFile, []byte("log:\n  levle: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	testenv.Eventually(t, 5*time.Second, "bad reload rejected", func() bool {
		return testenv.Contains(p.Logs(), "reload rejected", "log.levle")
	})
	if code, _ := testenv.Get(t, p.Endpoints["configsrv"]["api"]+"/readyz"); code != 200 {
		t.Fatalf("not ready after a rejected reload: %d", code)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestCallSendSilence: by default the caller sends RTP (silence) all along, as a phone does;
// with --send-silence=false it only listens, as sipp does, and still hears the announcement.
func TestCallSendSilence(t *testing.T) {
	p := startLocal(t)
	for _, listenOnly := range []bool{false, true} {
		r := placeCall(t, announcement(p), "--hangup-after", "2s", fmt.Sprintf("--send-silence=%v", !listenOnly))
		if r["code"] != float64(200) || r["audio_seconds"].(float64) < 1.5 {
			t.Fatalf("listen-only %v: call %v: want 200 and the announcement heard", listenOnly, r)
		}
		sent := r["rtp_packets_sent"].(float64)
		if listenOnly && sent != 0 {
			t.Errorf("listen-only call sent %v RTP packets", sent)
		}
		if !listenOnly && sent < 50 {
			t.Errorf("default call sent %v RTP packets in 2 s, want a packet every 20 ms", sent)
		}
	}
}
