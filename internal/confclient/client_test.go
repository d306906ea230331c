package confclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/roles/configsrv"
)

// server runs the configsrv API on a SQLite store over a real loopback listener that can be
// stopped and restarted on the same address.
type server struct {
	t     *testing.T
	store confstore.Store
	addr  string
	token string
	srv   *http.Server
	done  chan struct{}
}

func newServer(t *testing.T, token string) *server {
	t.Helper()
	st, err := confstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, store: st, addr: "127.0.0.1:0", token: token}
	s.start()
	t.Cleanup(func() {
		s.stop()
		st.Close()
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: configsrv.NewAPI(s.store, configsrv.WithToken(s.token)), ReadHeaderTimeout: 5 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
}

func (s *server) stop() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
	s.srv = nil
}

func (s *server) url() string { return "http://" + s.addr }

func (s *server) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(s.url(), WithToken(s.token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCRUD(t *testing.T) {
	s := newServer(t, "tok")
	c := s.client(t)
	ctx := context.Background()
	objs, err := confmodel.DemoObjects(confmodel.DemoConfig{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ApplyObjects(ctx, objs, false)
	if err != nil || res.Revision != 2 {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	pool, err := GetAs[*confmodel.Pool](ctx, c, confmodel.DemoPool)
	if err != nil || pool.LoadBalance != confmodel.LoadBalanceRoundRobin || pool.Revision != 2 {
		t.Fatalf("get pool: %+v, %v", pool, err)
	}
	did, err := GetAs[*confmodel.DID](ctx, c, confmodel.DemoTenant+"/"+confmodel.DemoDID)
	if err != nil || did.Profile != confmodel.DemoProfile {
		t.Fatalf("get DID: %+v, %v", did, err)
	}
	// A prefix DID: the '*' travels in the path.
	if _, err := c.Put(ctx, &confmodel.DID{Tenant: "t100", Pattern: "45*", Profile: confmodel.DemoProfile}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := GetAs[*confmodel.DID](ctx, c, "t100/45*"); err != nil {
		t.Fatal(err)
	}
	list, rev, err := c.List(ctx, confmodel.KindDID, ListFilter{Tenant: "t100"})
	if err != nil || len(list) != 2 || rev != 3 {
		t.Fatalf("list: %v at %d, %v", list, rev, err)
	}
	if _, err := c.Get(ctx, confmodel.KindPool, "nope"); !errors.Is(err, confstore.ErrNotFound) {
		t.Fatalf("missing = %v", err)
	}
	_, err = c.Delete(ctx, confmodel.KindPool, confmodel.DemoPool, false)
	if !errors.Is(err, confstore.ErrReferenced) || !strings.Contains(err.Error(), "mcp-0") {
		t.Fatalf("delete referenced = %v", err)
	}
	_, err = c.Apply(ctx, []byte("kind: MCP\nname: m\npool: P\naddress: nowhere\n"), false)
	if !errors.Is(err, confmodel.ErrInvalid) || !strings.Contains(err.Error(), `document 0 (MCP "m"): field "address"`) {
		t.Fatalf("invalid apply = %v", err)
	}
	bad, _ := New(s.url(), WithToken("wrong"))
	var ae *APIError
	if _, err := bad.Put(ctx, &confmodel.Pool{Name: "X"}, false); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("wrong token = %v", err)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil || snap.Revision() != 3 {
		t.Fatalf("snapshot: %v", err)
	}
	if _, ok := snap.LookupDID("t100", "4567"); !ok {
		t.Fatal("prefix DID not in the snapshot")
	}
	if _, err := New("ftp://x"); err == nil {
		t.Fatal("bad URL accepted")
	}
}

// waitFor polls cond until it holds or the generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCacheFollowsChanges(t *testing.T) {
	s := newServer(t, "")
	c := s.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	persist := filepath.Join(t.TempDir(), "state", "snapshot.json")
	cache := NewCache(c, WithPersistFile(persist), WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	var (
		mu   sync.Mutex
		seen []int64
	)
	cache.OnChange(func(s *confmodel.Snapshot) {
		mu.Lock()
		seen = append(seen, s.Revision())
		mu.Unlock()
	})
	done := make(chan error, 1)
	go func() { done <- cache.Run(ctx) }()
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if cache.Snapshot().Revision() != 1 {
		t.Fatalf("first revision %d", cache.Snapshot().Revision())
	}
	objs, _ := confmodel.DemoObjects(confmodel.DemoConfig{})
	if _, err := c.ApplyObjects(ctx, objs, false); err != nil {
		t.Fatal(err)
	}
	// The watch delivers the change well within a second; the deadline is generous.
	waitFor(t, "revision 2", func() bool { return cache.Snapshot().Revision() == 2 })
	if _, ok := cache.Snapshot().LookupDID(confmodel.DemoTenant, confmodel.DemoDID); !ok {
		t.Fatal("DID not in the cached snapshot")
	}
	if _, err := c.Delete(ctx, confmodel.KindDID, confmodel.DemoTenant+"/"+confmodel.DemoDID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revision 3", func() bool { return cache.Snapshot().Revision() == 3 })
	if _, ok := cache.Snapshot().LookupDID(confmodel.DemoTenant, confmodel.DemoDID); ok {
		t.Fatal("deleted DID still in the cached snapshot")
	}
	mu.Lock()
	if len(seen) != 3 || seen[0] != 1 || seen[2] != 3 {
		t.Fatalf("callbacks saw %v", seen)
	}
	mu.Unlock()

	// configsrv restarts on the same address: the cache keeps its snapshot meanwhile, then
	// sees a change made after the restart.
	s.stop()
	time.Sleep(100 * time.Millisecond) // let the cache hit the closed port at least once
	if cache.Snapshot().Revision() != 3 {
		t.Fatal("snapshot lost while configsrv was down")
	}
	s.start()
	if _, err := c.Put(ctx, &confmodel.Pool{Name: "AFTER"}, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change made after the restart", func() bool {
		_, ok := cache.Snapshot().Pool("AFTER")
		return ok
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}

	// A new client with configsrv down starts from the persisted snapshot.
	s.stop()
	down, _ := New(s.url())
	cache2 := NewCache(down, WithPersistFile(persist), WithBackoff(20*time.Millisecond, 100*time.Millisecond))
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	go func() { _ = cache2.Run(ctx2) }()
	if err := cache2.WaitReady(ctx2); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache2.Snapshot().Pool("AFTER"); !ok || cache2.Snapshot().Revision() != 4 {
		t.Fatalf("persisted snapshot at revision %d", cache2.Snapshot().Revision())
	}
}

func TestCacheReset(t *testing.T) {
	// A cache ahead of the server (its database was replaced) reloads the whole snapshot.
	s := newServer(t, "")
	c := s.client(t)
	cache := NewCache(c, WithBackoff(20*time.Millisecond, 100*time.Millisecond))
	future, err := confmodel.NewSnapshot(99, []confmodel.Object{&confmodel.Tenant{Name: confmodel.RootTenant}, &confmodel.Pool{Name: "OLD"}})
	if err != nil {
		t.Fatal(err)
	}
	cache.set(future, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = cache.Run(ctx) }()
	waitFor(t, "the reload", func() bool { return cache.Snapshot().Revision() == 1 })
	if _, ok := cache.Snapshot().Pool("OLD"); ok {
		t.Fatal("stale object kept after a reset")
	}
}
