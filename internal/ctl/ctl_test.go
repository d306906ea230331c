package ctl

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/roles/configsrv"
)

const docs = `kind: Tenant
name: t100
id: 80dd
---
kind: Pool
name: MCP_LRG
monitor: {method: options, interval: 5s, failures: 2}
---
kind: IVRProfile
name: billing
tenant: t100
initialPage: http://127.0.0.1:8000/billing.vxml
pool: MCP_LRG
---
kind: DID
tenant: t100
pattern: "5551000"
profile: billing
---
kind: MCP
name: mcp-0
pool: MCP_LRG
address: 127.0.0.1:5070
capacity: 500
`

func newServer(t *testing.T, token string) (*httptest.Server, confstore.Store) {
	t.Helper()
	st, err := confstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(configsrv.NewAPI(st, configsrv.WithToken(token)))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return srv, st
}

// run executes ctl with args and returns its exit code, stdout and the error text.
func run(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return ExitCode(err), out.String(), msg
}

func TestCtl(t *testing.T) {
	srv, st := newServer(t, "tok")
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(file, []byte(docs), 0o600); err != nil {
		t.Fatal(err)
	}
	s := []string{"--server", srv.URL, "--token", "tok"}

	code, out, msg := run(t, ctx, "", append(s, "apply", "-f", file, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "dry run: 5 object(s) would change") {
		t.Fatalf("dry run: %d %q %q", code, out, msg)
	}
	code, out, msg = run(t, ctx, "", append(s, "apply", "-f", file)...)
	if code != 0 || !strings.Contains(out, "5 object(s) changed; revision 2") || !strings.Contains(out, "created") {
		t.Fatalf("apply: %d %q %q", code, out, msg)
	}
	// From standard input, with the token from the environment.
	t.Setenv(EnvToken, "tok")
	t.Setenv(EnvServer, srv.URL)
	code, out, msg = run(t, ctx, docs, "apply", "-f", "-")
	if code != 0 || !strings.Contains(out, "0 object(s) changed") {
		t.Fatalf("apply stdin: %d %q %q", code, out, msg)
	}
	code, out, _ = run(t, ctx, "", "get", "dids")
	if code != 0 || !strings.Contains(out, "PATTERN") || !strings.Contains(out, "5551000") {
		t.Fatalf("get dids: %d %q", code, out)
	}
	code, out, _ = run(t, ctx, "", "get", "profile", "t100/billing", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "kind: IVRProfile") || !strings.Contains(out, "initialPage: http://127.0.0.1:8000/billing.vxml") {
		t.Fatalf("get profile yaml: %d %q", code, out)
	}
	// The YAML output applies back unchanged.
	code, out2, msg := run(t, ctx, out, "apply", "-f", "-")
	if code != 0 || !strings.Contains(out2, "unchanged") {
		t.Fatalf("re-apply of get output: %d %q %q", code, out2, msg)
	}
	code, out, _ = run(t, ctx, "", "get", "mcp", "-o", "json", "--pool", "MCP_LRG")
	objs, err := confmodel.DecodeObjects([]byte(out))
	if code != 0 || err != nil || len(objs) != 1 || objs[0].(*confmodel.MCP).Capacity != 500 {
		t.Fatalf("get mcp json: %d %q %v", code, out, err)
	}
	code, out, _ = run(t, ctx, "", "get", "pool", "MCP_LRG", "-o", "json")
	if code != 0 || !strings.Contains(out, `"kind": "Pool"`) {
		t.Fatalf("get pool json: %d %q", code, out)
	}

	// Rejections by the server: exit 1, errors naming the document and the field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(docs+"---\nkind: MCP\nname: mcp-1\npool: NOPE\naddress: 127.0.0.1:5071\n"), 0o600)
	code, _, msg = run(t, ctx, "", "apply", "-f", bad)
	if code != 1 || !strings.Contains(msg, `document 5 (MCP "mcp-1"): field "pool": unknown pool "NOPE"`) {
		t.Fatalf("rejected apply: %d %q", code, msg)
	}
	// Decoding errors are caught locally with the same precision.
	os.WriteFile(bad, []byte("kind: Pool\nname: P\n---\nkind: MCP\nname: m\npool: P\nadress: h:1\n"), 0o600)
	code, _, msg = run(t, ctx, "", "apply", "-f", bad)
	if code != 1 || !strings.Contains(msg, `document 1 (MCP "m"): field "adress"`) {
		t.Fatalf("bad field: %d %q", code, msg)
	}
	code, _, msg = run(t, ctx, "", "delete", "pool", "MCP_LRG")
	if code != 1 || !strings.Contains(msg, "mcp-0") {
		t.Fatalf("delete referenced: %d %q", code, msg)
	}
	code, _, msg = run(t, ctx, "", "--token", "wrong", "delete", "mcp", "mcp-0")
	if code != 1 || !strings.Contains(msg, "401") {
		t.Fatalf("wrong token: %d %q", code, msg)
	}
	if rev, _ := st.Revision(ctx); rev != 2 {
		t.Fatalf("a failed command changed the revision to %d", rev)
	}
	code, out, _ = run(t, ctx, "", "delete", "mcp", "mcp-0")
	if code != 0 || !strings.Contains(out, "deleted; revision 3") {
		t.Fatalf("delete: %d %q", code, out)
	}
	code, _, msg = run(t, ctx, "", "get", "mcp", "mcp-0")
	if code != 1 || !strings.Contains(msg, "404") {
		t.Fatalf("get deleted: %d %q", code, msg)
	}

	// Usage errors: exit 2.
	for _, args := range [][]string{
		{"get"},
		{"get", "trunks"},
		{"get", "pool", "-o", "xml"},
		{"delete", "pool"},
		{"apply"},
		{"frobnicate"},
		{"get", "pool", "--bogus"},
		{"--server", "ftp://x", "get", "pool"},
	} {
		if code, _, msg := run(t, ctx, "", args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, msg)
		}
	}
	if code, _, _ := run(t, ctx, "", "apply", "-f", "/nonexistent/file.yaml"); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	unreach := httptest.NewServer(nil)
	unreach.Close()
	if code, _, _ := run(t, ctx, "", "--server", unreach.URL, "get", "pool"); code != 1 {
		t.Errorf("unreachable server: exit %d, want 1", code)
	}
}

func TestCtlWatch(t *testing.T) {
	srv, st := newServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	var (
		code int
		out  string
	)
	go func() {
		defer close(done)
		code, out, _ = run(t, ctx, "", "--server", srv.URL, "watch", "--after", "1", "--count", "1")
	}()
	if _, err := st.Apply(ctx, []confstore.Change{confstore.Put(&confmodel.Pool{Name: "A"})}, confstore.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("watch did not print the change")
	}
	if code != 0 || out != "2 put Pool A\n" {
		t.Fatalf("watch: %d %q", code, out)
	}
}
