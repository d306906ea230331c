package sd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/testenv"
)

func register(t *testing.T, r discovery.Registry, id string, port int) {
	t.Helper()
	in := discovery.Instance{ID: id, Service: discovery.ServiceMCP, Address: "127.0.0.1", Port: port,
		Meta: map[string]string{discovery.MetaCapacity: "20", discovery.MetaTransport: "tcp"}, Status: discovery.StatusPassing}
	if err := r.Register(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func TestSyncWithMemoryRegistry(t *testing.T) {
	ctx := context.Background()
	cs := newConfServer(t)
	// A hand-written member and an excluded one already sit in the pool.
	if _, err := cs.CC.ApplyObjects(ctx, []confmodel.Object{
		&confmodel.Pool{Name: DefaultPool},
		&confmodel.MCP{Name: "manual", Pool: DefaultPool, Address: "127.0.0.1:6000"},
		&confmodel.MCP{Name: "pinned", Pool: DefaultPool, Address: "127.0.0.1:6001", Managed: true},
	}, false); err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewMemory()
	register(t, reg, "a", 5070)
	register(t, reg, "b", 5071)
	register(t, reg, "excluded", 5072)
	cfg := testConfig()
	cfg.Exclude = []string{"excluded", "pinned"}
	s := startSD(t, cfg, reg, cs.URL)

	got := waitMembers(t, cs, DefaultPool, 10*time.Second, "a", "b", "manual", "pinned")
	if m := got["a"]; !m.Managed || m.Address != "127.0.0.1:5070" || m.Capacity != 20 || m.Transport != confmodel.TransportTCP {
		t.Fatalf("member a: %+v", m)
	}
	testenv.Eventually(t, 5*time.Second, "ready", func() bool { return s.Ready() == nil })

	// Critical: removed. Deregistered: removed. The others stay.
	if err := reg.SetStatus("a", discovery.StatusCritical); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, cs, DefaultPool, 10*time.Second, "b", "manual", "pinned")
	if err := reg.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, cs, DefaultPool, 10*time.Second, "manual", "pinned")
	// Back to passing: added again.
	if err := reg.SetStatus("a", discovery.StatusPassing); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, cs, DefaultPool, 10*time.Second, "a", "manual", "pinned")

	// Nothing changes: passes write nothing.
	rev := cs.revision(t)
	waitSyncs(t, s, 3)
	if r := cs.revision(t); r != rev {
		t.Fatalf("idle syncs moved the revision from %d to %d", rev, r)
	}
	if n := s.syncRuns("ok"); n < 3 {
		t.Fatalf("sync runs %v", n)
	}
}

func TestSyncCreatesMissingPool(t *testing.T) {
	cs := newConfServer(t)
	reg := discovery.NewMemory()
	register(t, reg, "a", 5070)
	cfg := testConfig()
	cfg.Pool = "NEW_POOL"
	startSD(t, cfg, reg, cs.URL)
	waitMembers(t, cs, "NEW_POOL", 10*time.Second, "a")
}

// TestSyncFlappingWithPurgeDelay: a member that goes critical and comes back within the purge
// delay is never removed, and nothing is written for it.
func TestSyncFlappingWithPurgeDelay(t *testing.T) {
	cs := newConfServer(t)
	reg := discovery.NewMemory()
	register(t, reg, "a", 5070)
	cfg := testConfig()
	cfg.PurgeDelay = time.Hour
	s := startSD(t, cfg, reg, cs.URL)
	waitMembers(t, cs, DefaultPool, 10*time.Second, "a")
	rev := cs.revision(t)
	for i := 0; i < 3; i++ {
		if err := reg.SetStatus("a", discovery.StatusCritical); err != nil {
			t.Fatal(err)
		}
		waitSyncs(t, s, 2)
		testenv.Eventually(t, 5*time.Second, "a pending removal", func() bool {
			s.sync.mu.Lock()
			defer s.sync.mu.Unlock()
			_, ok := s.sync.missing["a"]
			return ok
		})
		if err := reg.SetStatus("a", discovery.StatusPassing); err != nil {
			t.Fatal(err)
		}
		waitSyncs(t, s, 2)
	}
	if r := cs.revision(t); r != rev {
		t.Fatalf("flapping wrote to configsrv: revision %d -> %d", rev, r)
	}
	waitMembers(t, cs, DefaultPool, time.Second, "a")
	if n := testutil.ToFloat64(s.m.removed); n != 0 {
		t.Fatalf("removed %v members", n)
	}
}

// TestSyncConfigsrvDown: while configsrv is down sd keeps the pool, reports not ready and
// retries; once back, it applies what changed meanwhile.
func TestSyncConfigsrvDown(t *testing.T) {
	ctx := context.Background()
	cs := newConfServer(t)
	reg := discovery.NewMemory()
	register(t, reg, "a", 5070)
	register(t, reg, "b", 5071)
	s := startSD(t, testConfig(), reg, cs.URL)
	waitMembers(t, cs, DefaultPool, 10*time.Second, "a", "b")

	cs.Down.Store(true)
	if err := reg.Deregister(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	register(t, reg, "c", 5073)
	testenv.Eventually(t, 10*time.Second, "not ready naming configsrv", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "configsrv")
	})
	cs.Down.Store(false)
	if got := cs.members(t, DefaultPool); len(got) != 2 || got["a"] == nil || got["b"] == nil {
		t.Fatalf("pool changed while configsrv was down: %v", got)
	}
	waitMembers(t, cs, DefaultPool, 10*time.Second, "c")
	testenv.Eventually(t, 5*time.Second, "ready again", func() bool { return s.Ready() == nil })
}

// TestSyncRegistryErrorNoWipe: the registry fails, then comes back empty (an agent restart that
// lost the registrations): sd keeps every member during the recovery grace instead of wiping
// the pool, and adds what registers again at once.
func TestSyncRegistryErrorNoWipe(t *testing.T) {
	cs := newConfServer(t)
	mem := discovery.NewMemory()
	reg := &flakyRegistry{Registry: mem}
	register(t, mem, "a", 5070)
	register(t, mem, "b", 5071)
	cfg := testConfig()
	cfg.RecoveryGrace = time.Hour
	s := startSD(t, cfg, reg, cs.URL)
	// The grace applies from start too, but additions are immediate.
	waitMembers(t, cs, DefaultPool, 10*time.Second, "a", "b")

	reg.Fail.Store(true)
	mem.Reset() // wakes the blocked query; the next one fails
	testenv.Eventually(t, 10*time.Second, "not ready naming the registry", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "registry")
	})
	skipped := s.syncRuns("skipped")
	testenv.Eventually(t, 10*time.Second, "skipped passes", func() bool {
		s.SyncNow()
		return s.syncRuns("skipped") > skipped
	})
	reg.Fail.Store(false)
	register(t, mem, "c", 5072)
	waitMembers(t, cs, DefaultPool, 10*time.Second, "a", "b", "c")
	waitSyncs(t, s, 3)
	if got := cs.members(t, DefaultPool); len(got) != 3 {
		t.Fatalf("members removed during the recovery grace: %v", got)
	}
	if s.Ready() != nil {
		t.Fatalf("not ready after recovery: %v", s.Ready())
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]func(*Config){
		"sd.pool":                       func(c *Config) { c.Pool = "" },
		"sd.service":                    func(c *Config) { c.Service = "" },
		"sd.resync":                     func(c *Config) { c.Resync = 0 },
		"sd.first_resync":               func(c *Config) { c.FirstResync = -1 },
		"sd.wait":                       func(c *Config) { c.Wait = 0 },
		"sd.purge_delay":                func(c *Config) { c.PurgeDelay = -1 },
		"sd.recovery_grace":             func(c *Config) { c.RecoveryGrace = -1 },
		"sd.exclude":                    func(c *Config) { c.Exclude = []string{" "} },
		"sd.inventory_poll":             func(c *Config) { c.InventoryPoll = 0 },
		"sd.tenant.initial_page":        func(c *Config) { c.Tenant.InitialPage = "{{.Name" },
		"sd.registration.refresh":       func(c *Config) { c.Registration.Refresh = 0 },
		"sd.admin.listen":               func(c *Config) { c.Admin.Listen = "nowhere" },
		"sd.registration.check_timeout": func(c *Config) { c.Registration.CheckTimeout = 0 },
	}
	if err := DefaultConfig().Validate("sd"); err != nil {
		t.Fatal(err)
	}
	for key, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate("sd"); err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("want an error naming %s, got %v", key, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{ConfigsrvURL: "ftp://x"}); err == nil {
		t.Error("New with a bad configsrv URL succeeded")
	}
}
