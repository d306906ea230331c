package cli_test

import (
	"os"
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
