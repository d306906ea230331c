package confstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/opengvp/gvp/internal/testenv"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/opengvp/gvp/internal/confmodel"
)

// opener opens a store on the same underlying database each time it is called within a test.
type opener func(t *testing.T) Store

// backends returns the openers of the backends under test; each call to the returned function
// starts from an empty database.
func backends(t *testing.T) map[string]func(t *testing.T) opener {
	return map[string]func(t *testing.T) opener{
		"sqlite": func(t *testing.T) opener {
			path := filepath.Join(t.TempDir(), "data", DefaultSQLiteFile)
			return func(t *testing.T) Store {
				s, err := OpenSQLite(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
		"postgres": func(t *testing.T) opener {
			dsn := postgresTestDSN(t)
			return func(t *testing.T) Store {
				s, err := OpenPostgres(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
	}
}

// postgresTestDSN returns the DSN of a freshly emptied test database, derived from env
// GVP_TEST_POSTGRES_DSN (database confstore_test on that server, created if missing). When the
// variable is unset the test fails if env CI=true, and is skipped otherwise.
func postgresTestDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("GVP_TEST_POSTGRES_DSN")
	if base == "" {
		base = testenv.Service(t, "GVP_TEST_POSTGRES_DSN", "scripts/postgres.sh start")
	}
	ctx := context.Background()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("GVP_TEST_POSTGRES_DSN: %v", err)
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to GVP_TEST_POSTGRES_DSN: %v", err)
	}
	defer admin.Close(ctx)
	const db = "confstore_test"
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
	u.Path = "/" + db
	dsn := u.String()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP TABLE IF EXISTS schema_migrations, meta, objects, changes"); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func demo(t *testing.T) []Change {
	t.Helper()
	objs, err := confmodel.DemoObjects(confmodel.DemoConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var cs []Change
	for i, o := range objs {
		c := Put(o)
		c.Document = i
		cs = append(cs, c)
	}
	return cs
}

func TestStore(t *testing.T) {
	for name, newBackend := range backends(t) {
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				name string
				fn   func(t *testing.T, open opener)
			}{
				{"fresh", testFresh},
				{"apply and read", testApplyAndRead},
				{"rejected apply changes nothing", testRejected},
				{"dry run", testDryRun},
				{"delete", testDelete},
				{"changes", testChanges},
				{"wait revision", testWait},
				{"reopen", testReopen},
				{"concurrent applies", testConcurrent},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend(t)) })
			}
			if name == "postgres" {
				t.Run("two instances", func(t *testing.T) { testTwoInstances(t, newBackend(t)) })
			}
		})
	}
}

func testFresh(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	rev, err := s.Revision(ctx)
	if err != nil || rev != 1 {
		t.Fatalf("fresh revision = %d, %v; want 1", rev, err)
	}
	o, err := s.Get(ctx, confmodel.KindTenant, confmodel.RootTenant)
	if err != nil {
		t.Fatal(err)
	}
	if o.Metadata().Revision != 1 {
		t.Fatalf("root revision %d", o.Metadata().Revision)
	}
	if _, err := s.Get(ctx, confmodel.KindPool, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
}

func testApplyAndRead(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	res, err := s.Apply(ctx, demo(t), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 2 || res.Changed != 6 {
		t.Fatalf("result %+v", res)
	}
	if res.Objects[0].Outcome != OutcomeUpdated || res.Objects[1].Outcome != OutcomeCreated {
		t.Fatalf("outcomes %+v", res.Objects)
	}
	objs, rev, err := s.Snapshot(ctx)
	if err != nil || rev != 2 || len(objs) != 6 {
		t.Fatalf("snapshot: %d objects at %d, %v", len(objs), rev, err)
	}
	snap, err := confmodel.NewSnapshot(rev, objs)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := snap.LookupDID(confmodel.DemoTenant, confmodel.DemoDID); !ok || d.Revision != 2 {
		t.Fatalf("DID %v", d)
	}
	// Re-applying the same documents changes nothing.
	res, err = s.Apply(ctx, demo(t), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 2 || res.Changed != 0 || res.Objects[3].Outcome != OutcomeUnchanged {
		t.Fatalf("re-apply %+v", res)
	}
	// One update bumps the revision of that object only.
	pool, err := s.Get(ctx, confmodel.KindPool, confmodel.DemoPool)
	if err != nil {
		t.Fatal(err)
	}
	p := confmodel.Clone(pool).(*confmodel.Pool)
	p.LoadBalance = confmodel.LoadBalanceLeastPercentUsage
	res, err = s.Apply(ctx, []Change{Put(p)}, ApplyOptions{})
	if err != nil || res.Revision != 3 || res.Objects[0].Outcome != OutcomeUpdated {
		t.Fatalf("update: %+v, %v", res, err)
	}
	got, _ := s.Get(ctx, confmodel.KindPool, confmodel.DemoPool)
	if got.(*confmodel.Pool).LoadBalance != confmodel.LoadBalanceLeastPercentUsage || got.Metadata().Revision != 3 {
		t.Fatalf("pool after update %+v", got)
	}
	mcp, _ := s.Get(ctx, confmodel.KindMCP, confmodel.DemoMCP)
	if mcp.Metadata().Revision != 2 {
		t.Fatalf("untouched MCP revision %d, want 2", mcp.Metadata().Revision)
	}
	list, rev, err := s.List(ctx, confmodel.KindTenant)
	if err != nil || rev != 3 || len(list) != 2 || list[0].Key() != confmodel.RootTenant || list[1].Key() != "t100" {
		t.Fatalf("list tenants %v at %d, %v", list, rev, err)
	}
}

func testRejected(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	cs := demo(t)
	bad := Put(&confmodel.MCP{Name: "mcp-9", Pool: "NOPE", Address: "127.0.0.1:5090"})
	bad.Document = 9
	cs = append(cs, bad)
	_, err := s.Apply(ctx, cs, ApplyOptions{})
	l, ok := confmodel.AsErrorList(err)
	if !ok {
		t.Fatalf("err = %v, want an ErrorList", err)
	}
	if len(l) != 1 || l[0].Document != 9 || l[0].Field != "pool" || !strings.Contains(l[0].Error(), `unknown pool "NOPE"`) {
		t.Fatalf("errors %#v", l)
	}
	if rev, _ := s.Revision(ctx); rev != 1 {
		t.Fatalf("revision moved to %d", rev)
	}
	if _, err := s.Get(ctx, confmodel.KindPool, confmodel.DemoPool); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pool written by a rejected apply: %v", err)
	}
	// An object invalid on its own is rejected before any work, naming its document.
	c := Put(&confmodel.Pool{Name: "P", LoadBalance: "random"})
	c.Document = 4
	_, err = s.Apply(ctx, []Change{c}, ApplyOptions{})
	if l, _ := confmodel.AsErrorList(err); len(l) != 1 || l[0].Document != 4 || l[0].Field != "loadBalance" {
		t.Fatalf("err %v", err)
	}
	// The same object twice.
	_, err = s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "P"}), Put(&confmodel.Pool{Name: "P"})}, ApplyOptions{})
	if !errors.Is(err, confmodel.ErrInvalid) || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate: %v", err)
	}
}

func testDryRun(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	res, err := s.Apply(ctx, demo(t), ApplyOptions{DryRun: true})
	if err != nil || !res.DryRun || res.Changed != 6 || res.Revision != 1 {
		t.Fatalf("dry run %+v, %v", res, err)
	}
	if objs, rev, _ := s.Snapshot(ctx); rev != 1 || len(objs) != 1 {
		t.Fatalf("dry run wrote: %d objects at %d", len(objs), rev)
	}
}

func testDelete(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Apply(ctx, demo(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(ctx, []Change{Delete(confmodel.KindPool, confmodel.DemoPool)}, ApplyOptions{})
	var re *ReferencedError
	if !errors.As(err, &re) || !errors.Is(err, ErrReferenced) {
		t.Fatalf("delete of a pool with members = %v, want ErrReferenced", err)
	}
	if !strings.Contains(err.Error(), `MCP "mcp-0"`) || !strings.Contains(err.Error(), `IVRProfile "Environment/IVRAppDefault"`) {
		t.Fatalf("message does not name the referrers: %v", err)
	}
	if _, err := s.Get(ctx, confmodel.KindPool, confmodel.DemoPool); err != nil {
		t.Fatalf("pool gone after a refused delete: %v", err)
	}
	// The DID of t100 resolves IVRAppDefault from the root tenant.
	_, err = s.Apply(ctx, []Change{Delete(confmodel.KindIVRProfile, "Environment/IVRAppDefault")}, ApplyOptions{})
	if !errors.As(err, &re) || !strings.Contains(err.Error(), `DID "t100/5551000"`) {
		t.Fatalf("delete of a profile used by a DID = %v, want ErrReferenced naming the DID", err)
	}
	_, err = s.Apply(ctx, []Change{Delete(confmodel.KindTenant, confmodel.RootTenant)}, ApplyOptions{})
	if !errors.Is(err, ErrReferenced) {
		t.Fatalf("delete root = %v", err)
	}
	_, err = s.Apply(ctx, []Change{Delete(confmodel.KindPool, "nope")}, ApplyOptions{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing = %v", err)
	}
	// Deleting the MCP, then the pool with the profile updated, in one apply.
	prof, _ := s.Get(ctx, confmodel.KindIVRProfile, "Environment/IVRAppDefault")
	p := confmodel.Clone(prof).(*confmodel.IVRProfile)
	p.Pool = ""
	res, err := s.Apply(ctx, []Change{Delete(confmodel.KindMCP, confmodel.DemoMCP), Delete(confmodel.KindPool, confmodel.DemoPool), Put(p)}, ApplyOptions{})
	if err != nil || res.Changed != 3 || res.Objects[0].Outcome != OutcomeDeleted {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	if _, err := s.Get(ctx, confmodel.KindMCP, confmodel.DemoMCP); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MCP still there: %v", err)
	}
}

func testChanges(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Apply(ctx, demo(t), ApplyOptions{}); err != nil { // rev 2
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "P2"})}, ApplyOptions{}); err != nil { // rev 3
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "P2", LoadBalance: confmodel.LoadBalanceLeastPercentUsage})}, ApplyOptions{}); err != nil { // rev 4
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []Change{Delete(confmodel.KindMCP, confmodel.DemoMCP)}, ApplyOptions{}); err != nil { // rev 5
		t.Fatal(err)
	}
	cs, err := s.Changes(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Revision != 5 || len(cs.Events) != 2 {
		t.Fatalf("changes after 2: %+v", cs)
	}
	if e := cs.Events[0]; e.Kind != confmodel.KindPool || e.Name != "P2" || e.Op != OpPut || e.Revision != 4 ||
		e.Object.(*confmodel.Pool).LoadBalance != confmodel.LoadBalanceLeastPercentUsage {
		t.Fatalf("event 0 %+v", e)
	}
	if e := cs.Events[1]; e.Kind != confmodel.KindMCP || e.Op != OpDelete || e.Object != nil || e.Revision != 5 {
		t.Fatalf("event 1 %+v", e)
	}
	cs, err = s.Changes(ctx, 0)
	if err != nil || len(cs.Events) != 7 { // root, 5 demo objects left, P2
		t.Fatalf("changes after 0: %d events, %v", len(cs.Events), err)
	}
	if cs, _ := s.Changes(ctx, 5); len(cs.Events) != 0 || cs.Reset {
		t.Fatalf("changes after current: %+v", cs)
	}
	if cs, _ := s.Changes(ctx, 99); !cs.Reset {
		t.Fatalf("changes after a future revision must ask for a reset: %+v", cs)
	}
}

func testWait(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const waiters = 20
	got := make(chan int64, waiters)
	var started sync.WaitGroup
	for i := 0; i < waiters; i++ {
		started.Add(1)
		go func() {
			started.Done()
			rev, err := s.WaitRevision(ctx, 1)
			if err != nil {
				rev = -1
			}
			got <- rev
		}()
	}
	started.Wait()
	if _, err := s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "P"})}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < waiters; i++ {
		if rev := <-got; rev != 2 {
			t.Fatalf("waiter saw %d", rev)
		}
	}
	// Already past: returns at once.
	if rev, err := s.WaitRevision(ctx, 1); err != nil || rev != 2 {
		t.Fatalf("WaitRevision(1) = %d, %v", rev, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := s.WaitRevision(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRevision without change = %v", err)
	}
}

func testReopen(t *testing.T, open opener) {
	s := open(t)
	ctx := context.Background()
	if _, err := s.Apply(ctx, demo(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revision(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed store answered: %v", err)
	}
	s = open(t)
	defer s.Close()
	objs, rev, err := s.Snapshot(ctx)
	if err != nil || rev != 2 || len(objs) != 6 {
		t.Fatalf("after reopen: %d objects at %d, %v", len(objs), rev, err)
	}
	if res, err := s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "P"})}, ApplyOptions{}); err != nil || res.Revision != 3 {
		t.Fatalf("apply after reopen: %+v %v", res, err)
	}
}

func testConcurrent(t *testing.T, open opener) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.Apply(ctx, []Change{Put(&confmodel.Pool{Name: fmt.Sprintf("P%d", i)})}, ApplyOptions{})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, rev, err := s.List(ctx, confmodel.KindPool)
	if err != nil || len(list) != n || rev != 1+n {
		t.Fatalf("%d pools at revision %d, %v", len(list), rev, err)
	}
	cs, _ := s.Changes(ctx, 1)
	seen := map[int64]bool{}
	for _, e := range cs.Events {
		if seen[e.Revision] {
			t.Fatalf("two applies share revision %d", e.Revision)
		}
		seen[e.Revision] = true
	}
}

// testTwoInstances checks that two stores on one PostgreSQL database see each other's commits:
// the writer's revision lock serializes them and NOTIFY wakes the other's waiters.
func testTwoInstances(t *testing.T, open opener) {
	a, b := open(t), open(t)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	woke := make(chan int64, 1)
	go func() {
		rev, _ := b.WaitRevision(ctx, 1)
		woke <- rev
	}()
	if _, err := a.Apply(ctx, []Change{Put(&confmodel.Pool{Name: "PA"})}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if rev := <-woke; rev != 2 {
		t.Fatalf("instance b woke at %d", rev)
	}
	if _, err := b.Get(ctx, confmodel.KindPool, "PA"); err != nil {
		t.Fatalf("instance b does not see a's write: %v", err)
	}
	// b writes on top of a's state (its cache is refreshed under the lock).
	res, err := b.Apply(ctx, []Change{Put(&confmodel.MCP{Name: "m", Pool: "PA", Address: "127.0.0.1:5070"})}, ApplyOptions{})
	if err != nil || res.Revision != 3 {
		t.Fatalf("b apply: %+v %v", res, err)
	}
	if _, err := a.Apply(ctx, []Change{Delete(confmodel.KindPool, "PA")}, ApplyOptions{}); !errors.Is(err, ErrReferenced) {
		t.Fatalf("a deleting a pool b filled = %v", err)
	}
}
