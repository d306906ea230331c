package configsrv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
)

const specDocs = `kind: Tenant
name: t100
id: 80dd
defaultApplication: billing
---
kind: IVRProfile
name: billing
tenant: t100
service: voicexml
initialPage: http://127.0.0.1:8000/billing.vxml
pool: MCP_LRG
policy: {usageLimit: 2}
---
kind: DID
tenant: t100
pattern: "5551000"
profile: billing
---
kind: Pool
name: MCP_LRG
loadBalance: round-robin
monitor: {method: options, interval: 5s, failures: 2}
---
kind: MCP
name: mcp-0
pool: MCP_LRG
address: 127.0.0.1:5070
capacity: 500
`

type testServer struct {
	*httptest.Server
	store confstore.Store
}

func newTestServer(t *testing.T, opts ...APIOption) *testServer {
	t.Helper()
	st, err := confstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewAPI(st, opts...))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &testServer{Server: srv, store: st}
}

func (s *testServer) do(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, path, ct)
	}
	return resp.StatusCode, b
}

func (s *testServer) revision(t *testing.T) int64 {
	t.Helper()
	rev, err := s.store.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestAPIApplyAndRead(t *testing.T) {
	s := newTestServer(t)
	code, b := s.do(t, "POST", "/api/v1/apply", "", specDocs)
	if code != http.StatusOK {
		t.Fatalf("apply: %d %s", code, b)
	}
	res := decode[confstore.Result](t, b)
	if res.Revision != 2 || res.Changed != 5 || res.Objects[4].Kind != confmodel.KindMCP || res.Objects[4].Outcome != confstore.OutcomeCreated {
		t.Fatalf("result %+v", res)
	}
	code, b = s.do(t, "GET", "/api/v1/profiles/t100/billing", "", "")
	if code != http.StatusOK {
		t.Fatalf("get profile: %d %s", code, b)
	}
	o, err := confmodel.DecodeObject(confmodel.KindIVRProfile, b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if p := o.(*confmodel.IVRProfile); *p.Policy.UsageLimit != 2 || p.Revision != 2 {
		t.Fatalf("profile %+v", p)
	}
	code, b = s.do(t, "GET", "/api/v1/dids/t100/5551000", "", "")
	if code != http.StatusOK || !strings.Contains(string(b), `"kind":"DID"`) {
		t.Fatalf("get DID: %d %s", code, b)
	}
	code, b = s.do(t, "GET", "/api/v1/tenants", "", "")
	if l := decode[confstore.ObjectList](t, b); code != 200 || len(l.Items) != 2 || l.Revision != 2 {
		t.Fatalf("list tenants: %d %s", code, b)
	}
	code, b = s.do(t, "GET", "/api/v1/mcps?pool=MCP_LRG", "", "")
	if l := decode[confstore.ObjectList](t, b); code != 200 || len(l.Items) != 1 {
		t.Fatalf("list mcps: %d %s", code, b)
	}
	code, b = s.do(t, "GET", "/api/v1/profiles?tenant=nope", "", "")
	if l := decode[confstore.ObjectList](t, b); code != 200 || len(l.Items) != 0 {
		t.Fatalf("list profiles of another tenant: %d %s", code, b)
	}
	code, b = s.do(t, "GET", "/api/v1/snapshot", "", "")
	snap := decode[confstore.SnapshotBody](t, b)
	if code != 200 || snap.Revision != 2 || len(snap.Objects.Tenants) != 2 || len(snap.Objects.MCPs) != 1 {
		t.Fatalf("snapshot: %d %s", code, b)
	}
	if _, err := confmodel.NewSnapshot(snap.Revision, snap.Objects.Objects()); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	code, b = s.do(t, "GET", "/api/v1/revision", "", "")
	if code != 200 || decode[confstore.RevisionBody](t, b).Revision != 2 {
		t.Fatalf("revision: %d %s", code, b)
	}
	// The same body again changes nothing.
	_, b = s.do(t, "POST", "/api/v1/apply", "", specDocs)
	if res := decode[confstore.Result](t, b); res.Changed != 0 || res.Revision != 2 {
		t.Fatalf("re-apply %+v", res)
	}
}

func TestAPIRejections(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
		doc                      int
		field                    string
	}{
		{"unknown pool", "POST", "/api/v1/apply", specDocs + "---\nkind: MCP\nname: mcp-1\npool: NOPE\naddress: 127.0.0.1:5071\n",
			422, `unknown pool "NOPE"`, 5, "pool"},
		{"bad field", "POST", "/api/v1/apply", "kind: Pool\nname: P\n---\nkind: Pool\nname: Q\nmonitor: {failures: many}\n",
			422, "cannot unmarshal", 1, "monitor.failures"},
		{"bad response", "POST", "/api/v1/apply", "kind: Tenant\nname: t\npolicy: {forbiddenResponse: '200'}\n",
			422, "400 to 699", 0, "policy.forbiddenResponse"},
		{"json unknown field", "POST", "/api/v1/apply", `[{"kind":"Pool","name":"P","colour":"red"}]`,
			422, "unknown field", 0, "colour"},
		{"empty", "POST", "/api/v1/apply", "", 400, "no documents", -2, ""},
		{"bad dryRun", "POST", "/api/v1/apply?dryRun=maybe", specDocs, 400, "dryRun", -2, ""},
		{"put name mismatch", "PUT", "/api/v1/pools/A", `{"name":"B"}`, 422, "does not match", -2, ""},
		{"get missing", "GET", "/api/v1/pools/nope", "", 404, "not found", -2, ""},
		{"unknown kind", "GET", "/api/v1/trunks", "", 404, "unknown kind", -2, ""},
		{"unknown endpoint", "GET", "/nope", "", 404, "no endpoint", -2, ""},
		{"delete missing", "DELETE", "/api/v1/mcps/nope", "", 404, "not found", -2, ""},
		{"bad after", "GET", "/api/v1/watch?after=x", "", 400, "invalid after", -2, ""},
		{"bad timeout", "GET", "/api/v1/watch?after=1&timeout=soon", "", 400, "invalid timeout", -2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b := s.do(t, tt.method, tt.path, "", tt.body)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, b)
			}
			eb := decode[confstore.ErrorBody](t, b)
			all := eb.Error
			for _, e := range eb.Errors {
				all += "\n" + e.Error()
			}
			if !strings.Contains(all, tt.msg) {
				t.Fatalf("error %q does not contain %q", all, tt.msg)
			}
			if tt.doc != -2 {
				found := false
				for _, e := range eb.Errors {
					found = found || (e.Document == tt.doc && e.Field == tt.field)
				}
				if !found {
					t.Fatalf("no error naming document %d field %q in %s", tt.doc, tt.field, b)
				}
			}
			if rev := s.revision(t); rev != 1 {
				t.Fatalf("a rejected request moved the revision to %d", rev)
			}
		})
	}
}

func TestAPIPutDeleteDryRun(t *testing.T) {
	s := newTestServer(t)
	code, b := s.do(t, "POST", "/api/v1/apply?dryRun=true", "", specDocs)
	if res := decode[confstore.Result](t, b); code != 200 || !res.DryRun || res.Changed != 5 || s.revision(t) != 1 {
		t.Fatalf("dry run: %d %s", code, b)
	}
	if code, b := s.do(t, "POST", "/api/v1/apply", "", specDocs); code != 200 {
		t.Fatalf("apply: %d %s", code, b)
	}
	// PUT fills the name from the path; YAML bodies are accepted.
	code, b = s.do(t, "PUT", "/api/v1/pools/EXTRA", "", "loadBalance: least-percent-usage\n")
	if code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, b)
	}
	code, b = s.do(t, "PUT", "/api/v1/profiles/t100/cpd", "", `{"service":"cpd"}`)
	if code != http.StatusCreated {
		t.Fatalf("put profile: %d %s", code, b)
	}
	code, b = s.do(t, "PUT", "/api/v1/settings/mcp/mcp-0", "", `{"values":{"rtp":{"ports":"20000-45000"}}}`)
	if code != http.StatusCreated {
		t.Fatalf("put settings: %d %s", code, b)
	}
	code, b = s.do(t, "GET", "/api/v1/settings/mcp/mcp-0", "", "")
	if code != 200 || !strings.Contains(string(b), "20000-45000") {
		t.Fatalf("get settings: %d %s", code, b)
	}
	code, b = s.do(t, "PUT", "/api/v1/pools/EXTRA", "", `{"loadBalance":"least-percent-usage"}`)
	if res := decode[confstore.Result](t, b); code != 200 || res.Objects[0].Outcome != confstore.OutcomeUnchanged {
		t.Fatalf("put same: %d %s", code, b)
	}
	// A pool with members cannot go.
	code, b = s.do(t, "DELETE", "/api/v1/pools/MCP_LRG", "", "")
	if code != http.StatusConflict || !strings.Contains(string(b), "mcp-0") {
		t.Fatalf("delete referenced pool: %d %s", code, b)
	}
	code, b = s.do(t, "DELETE", "/api/v1/pools/EXTRA?dryRun=true", "", "")
	if code != 200 {
		t.Fatalf("dry-run delete: %d %s", code, b)
	}
	if code, _ := s.do(t, "GET", "/api/v1/pools/EXTRA", "", ""); code != 200 {
		t.Fatal("dry-run delete deleted")
	}
	code, b = s.do(t, "DELETE", "/api/v1/pools/EXTRA", "", "")
	if res := decode[confstore.Result](t, b); code != 200 || res.Objects[0].Outcome != confstore.OutcomeDeleted {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := s.do(t, "GET", "/api/v1/pools/EXTRA", "", ""); code != 404 {
		t.Fatal("deleted pool still there")
	}
}

func TestAPIAuth(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, WithToken("s3cret"), WithAPIRegisterer(reg))
	for _, tok := range []string{"", "wrong"} {
		code, b := s.do(t, "POST", "/api/v1/apply", tok, specDocs)
		if code != http.StatusUnauthorized || !strings.Contains(string(b), "token") {
			t.Fatalf("apply with token %q: %d %s", tok, code, b)
		}
		if code, _ := s.do(t, "PUT", "/api/v1/pools/P", tok, "{}"); code != 401 {
			t.Fatalf("put with token %q: %d", tok, code)
		}
		if code, _ := s.do(t, "DELETE", "/api/v1/tenants/Environment", tok, ""); code != 401 {
			t.Fatalf("delete with token %q: %d", tok, code)
		}
	}
	if rev := s.revision(t); rev != 1 {
		t.Fatalf("unauthorized writes changed the revision to %d", rev)
	}
	if code, _ := s.do(t, "GET", "/api/v1/tenants", "", ""); code != 200 {
		t.Fatalf("reads need no token by default: %d", code)
	}
	if code, b := s.do(t, "POST", "/api/v1/apply", "s3cret", specDocs); code != 200 {
		t.Fatalf("authorized apply: %d %s", code, b)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) == 0 {
		t.Fatalf("no metrics registered: %v", err)
	}

	r := newTestServer(t, WithToken("s3cret"), WithAuthenticatedReads())
	for _, p := range []string{"/api/v1/tenants", "/api/v1/snapshot", "/api/v1/watch?after=0"} {
		if code, _ := r.do(t, "GET", p, "", ""); code != 401 {
			t.Fatalf("GET %s without token: %d", p, code)
		}
		if code, _ := r.do(t, "GET", p, "s3cret", ""); code != 200 {
			t.Fatalf("GET %s with token: %d", p, code)
		}
	}
}

func TestAPIWatch(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, WithAPIRegisterer(reg))
	// Changes already there: immediate answer.
	code, b := s.do(t, "GET", "/api/v1/watch?after=0&timeout=1m", "", "")
	w := decode[confstore.WatchBody](t, b)
	if code != 200 || w.Revision != 1 || len(w.Events) != 1 || w.Events[0].Name != confmodel.RootTenant || w.Events[0].Op != confstore.OpPut {
		t.Fatalf("watch after 0: %d %s", code, b)
	}
	// Nothing new: the watch waits for the timeout, then answers with no event.
	code, b = s.do(t, "GET", "/api/v1/watch?after=1&timeout=50ms", "", "")
	if w := decode[confstore.WatchBody](t, b); code != 200 || len(w.Events) != 0 || w.Revision != 1 {
		t.Fatalf("idle watch: %d %s", code, b)
	}
	// A future revision asks the client to reset.
	_, b = s.do(t, "GET", "/api/v1/watch?after=50&timeout=50ms", "", "")
	if w := decode[confstore.WatchBody](t, b); !w.Reset {
		t.Fatalf("future watch: %s", b)
	}
	// Several waiting watchers wake on one commit.
	const watchers = 5
	got := make(chan confstore.WatchBody, watchers)
	for i := 0; i < watchers; i++ {
		go func() {
			resp, err := http.Get(s.URL + "/api/v1/watch?after=1&timeout=1m")
			if err != nil {
				got <- confstore.WatchBody{}
				return
			}
			defer resp.Body.Close()
			var wb confstore.WatchBody
			_ = json.NewDecoder(resp.Body).Decode(&wb)
			got <- wb
		}()
	}
	deadline := time.After(10 * time.Second)
	for {
		// Wait until every watcher waits, so that the commit is what wakes them.
		if n := gauge(t, reg, "gvp_configsrv_api_watchers"); n == watchers {
			break
		}
		select {
		case <-deadline:
			t.Fatal("watchers never started waiting")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if code, b := s.do(t, "PUT", "/api/v1/pools/P", "", `{}`); code != 201 {
		t.Fatalf("put: %d %s", code, b)
	}
	for i := 0; i < watchers; i++ {
		select {
		case wb := <-got:
			if wb.Revision != 2 || len(wb.Events) != 1 || wb.Events[0].Kind != confmodel.KindPool {
				t.Fatalf("watcher got %+v", wb)
			}
			o, err := confmodel.DecodeObject(confmodel.KindPool, wb.Events[0].Object)
			if err != nil || o.Key() != "P" {
				t.Fatalf("event object %s: %v", wb.Events[0].Object, err)
			}
		case <-deadline:
			t.Fatal("a watcher did not wake")
		}
	}
}

// gauge returns the value of the gauge named name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
