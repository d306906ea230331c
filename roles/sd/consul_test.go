package sd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/testenv"
)

// consulAddr returns the test Consul agent (scripts/consul.sh start), failing under CI and
// skipping elsewhere when it is not there.
func consulAddr(t *testing.T) string {
	return testenv.Service(t, "GVP_TEST_CONSUL", "scripts/consul.sh start")
}

// mcpStub is an mcp's /readyz over a loopback HTTP server.
type mcpStub struct {
	srv   *httptest.Server
	ready atomic.Bool
}

func newMCPStub(t *testing.T) *mcpStub {
	m := &mcpStub{}
	m.ready.Store(true)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.ready.Load() {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// registrar registers an mcp named name whose SIP port is sipPort under service.
func newTestRegistrar(t *testing.T, reg discovery.Registry, service, name string, sipPort int, stub *mcpStub, refresh time.Duration) *discovery.Registrar {
	t.Helper()
	rc := discovery.RegistrationConfig{CheckInterval: time.Second, CheckTimeout: time.Second,
		DeregisterCriticalAfter: time.Minute, Refresh: refresh}
	in, err := discovery.MCPInfo{Name: name, SIPAddr: "127.0.0.1:" + strconv.Itoa(sipPort), ReadyURL: stub.srv.URL + "/readyz",
		Transport: "udp", Capacity: 300, Version: "test"}.Instance(rc)
	if err != nil {
		t.Fatal(err)
	}
	in.Service = service
	r, err := discovery.NewRegistrar(reg, in, rc.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(context.Background()) })
	return r
}

func consulTestConfig(service string) Config {
	c := testConfig()
	c.Service = service
	c.Wait = 5 * time.Second
	c.Resync = 5 * time.Second
	return c
}

// TestConsulPoolSync: two mcps register in a real Consul agent; sd adds both to the pool; one
// drains (deregisters) and leaves Consul and the pool; the other's readiness fails and its
// check goes critical, so it leaves the pool while still registered.
func TestConsulPoolSync(t *testing.T) {
	addr := consulAddr(t)
	reg, err := discovery.NewConsul(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	service := fmt.Sprintf("gvp-mcp-test-%d", time.Now().UnixNano())
	cs := newConfServer(t)
	stub1, stub2 := newMCPStub(t), newMCPStub(t)
	r1 := newTestRegistrar(t, reg, service, "mcp-1", 5071, stub1, time.Second)
	r2 := newTestRegistrar(t, reg, service, "mcp-2", 5072, stub2, time.Second)
	s := startSD(t, consulTestConfig(service), reg, cs.URL)

	got := waitMembers(t, cs, DefaultPool, 20*time.Second, r1.ID(), r2.ID())
	if m := got[r1.ID()]; m.Address != "127.0.0.1:5071" || m.Capacity != 300 || !m.Managed || m.Labels[LabelVersion] != "test" {
		t.Fatalf("member %+v", m)
	}
	testenv.Eventually(t, 10*time.Second, "ready", func() bool { return s.Ready() == nil })

	// Drain: the registrar deregisters first; the instance leaves Consul, then the pool.
	if err := r1.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := reg.Registered(ctx, r1.ID()); err != nil || ok {
		t.Fatalf("drained instance still in Consul: %v %v", ok, err)
	}
	waitMembers(t, cs, DefaultPool, 20*time.Second, r2.ID())

	// Readiness fails, then the server disappears: the check goes critical, the member leaves
	// the pool, the instance stays registered (critical).
	stub2.ready.Store(false)
	waitMembers(t, cs, DefaultPool, 20*time.Second)
	if ok, _ := reg.Registered(ctx, r2.ID()); !ok {
		t.Fatal("critical instance was deregistered")
	}
	stub2.ready.Store(true)
	waitMembers(t, cs, DefaultPool, 20*time.Second, r2.ID())
	stub2.srv.Close()
	waitMembers(t, cs, DefaultPool, 20*time.Second)
	if n := testutil.ToFloat64(s.m.removed); n != 3 {
		t.Fatalf("removed %v members, want 3", n)
	}
}

// newPrivateAgent starts a Consul dev agent owned by one test, on its own free ports, so that it
// can be stopped and started again without disturbing other tests (gated like the shared one).
func newPrivateAgent(t *testing.T) *testenv.ConsulAgent {
	consulAddr(t)
	return testenv.NewConsulAgent(t)
}

// TestConsulRestartKeepsPool: the agent restarts (a dev agent forgets everything): sd reports
// the registry as not ready, keeps the pool, and resumes once the registrar registered again;
// nothing is removed on the way.
func TestConsulRestartKeepsPool(t *testing.T) {
	agent := newPrivateAgent(t)
	reg, err := discovery.NewConsul(agent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cs := newConfServer(t)
	stub := newMCPStub(t)
	r := newTestRegistrar(t, reg, discovery.ServiceMCP, "mcp-0", 5070, stub, 300*time.Millisecond)
	cfg := consulTestConfig(discovery.ServiceMCP)
	cfg.RecoveryGrace = 30 * time.Second
	s := startSD(t, cfg, reg, cs.URL)
	waitMembers(t, cs, DefaultPool, 30*time.Second, r.ID())

	agent.Stop(t)
	testenv.Eventually(t, 20*time.Second, "not ready naming the registry", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "registry")
	})
	if got := cs.members(t, DefaultPool); got[r.ID()] == nil {
		t.Fatal("member removed while the agent was down")
	}

	agent.Start(t)
	testenv.Eventually(t, 30*time.Second, "instance registered again", func() bool {
		ok, err := reg.Registered(context.Background(), r.ID())
		return err == nil && ok
	})
	testenv.Eventually(t, 30*time.Second, "ready again", func() bool { return s.Ready() == nil })
	waitSyncs(t, s, 2)
	if got := cs.members(t, DefaultPool); got[r.ID()] == nil {
		t.Fatal("member removed after the agent restart")
	}
	if n := testutil.ToFloat64(s.m.removed); n != 0 {
		t.Fatalf("removed %v members across the restart", n)
	}
	// Sync still works: a drain after the restart removes the member.
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.sync.mu.Lock()
	s.sync.holdUntil = time.Time{} // end the recovery grace for the test
	s.sync.mu.Unlock()
	waitMembers(t, cs, DefaultPool, 30*time.Second)
}

// TestConsulInventory: two tenants from the inventory are provisioned, with their KV entries in
// Consul; a second sd over the same inventory changes nothing: same revision, same KV indexes.
func TestConsulInventory(t *testing.T) {
	addr := consulAddr(t)
	reg, err := discovery.NewConsul(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs := newConfServer(t)
	dir := t.TempDir()
	stamp := time.Now().UnixNano()
	ids := []string{fmt.Sprintf("a%d", stamp), fmt.Sprintf("b%d", stamp)}
	writeFile(t, dir, "t100.json", fmt.Sprintf(`{"name":"t100","id":%q,"gws-ccid":"cc-1","default-application":"IVRAppDefault"}`, ids[0]))
	writeFile(t, dir, "t200.json", fmt.Sprintf(`{"name":"t200","id":%q}`, ids[1]))
	for _, id := range ids {
		key := TenantKeyPrefix + id
		t.Cleanup(func() { _ = reg.KVDelete(context.Background(), key) })
	}
	cfg := consulTestConfig(fmt.Sprintf("gvp-mcp-none-%d", stamp))
	cfg.InventoryDir = dir
	first := startSD(t, cfg, reg, cs.URL)
	testenv.Eventually(t, 20*time.Second, "two tenants provisioned", func() bool {
		return testutil.ToFloat64(first.m.provisioned) == 2
	})
	modify := map[string]uint64{}
	for _, id := range ids {
		p, _, err := reg.Client().KV().Get(TenantKeyPrefix+id, nil)
		if err != nil || p == nil || !strings.Contains(string(p.Value), `"id":"`+id+`"`) {
			t.Fatalf("KV %s: %v %v", id, p, err)
		}
		modify[id] = p.ModifyIndex
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rev := cs.revision(t)

	second := startSD(t, cfg, reg, cs.URL)
	testenv.Eventually(t, 20*time.Second, "second run scanned twice", func() bool { return second.inv.scans.Load() >= 2 })
	if n := testutil.ToFloat64(second.m.provisioned); n != 0 {
		t.Fatalf("second run provisioned %v tenants", n)
	}
	if r := cs.revision(t); r != rev {
		t.Fatalf("second run moved the revision %d -> %d", rev, r)
	}
	for _, id := range ids {
		p, _, err := reg.Client().KV().Get(TenantKeyPrefix+id, nil)
		if err != nil || p == nil || p.ModifyIndex != modify[id] {
			t.Fatalf("KV %s rewritten by the second run: %v %v", id, p, err)
		}
	}
}
