package discovery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func inst(id string, port int) Instance {
	return Instance{ID: id, Service: ServiceMCP, Address: "127.0.0.1", Port: port,
		Meta: map[string]string{MetaCapacity: "10"}, Status: StatusPassing}
}

func ids(ins []Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.ID
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitFor runs blocking queries until the passing ids are want, or fails after d.
func waitFor(t *testing.T, r Registry, d time.Duration, want ...string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var idx uint64
	var got []string
	for {
		ins, next, err := r.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: idx, WaitTime: time.Second})
		if err != nil {
			t.Fatalf("waiting for passing %v (last %v): %v", want, got, err)
		}
		got = ids(ins)
		if equal(got, want) {
			return next
		}
		if next < idx {
			next = 0
		}
		idx = next
	}
}

func TestMemoryBlockingQuery(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	ins, idx, err := m.Passing(ctx, ServiceMCP, QueryOptions{})
	if err != nil || len(ins) != 0 || idx == 0 {
		t.Fatalf("empty registry: %v %d %v", ins, idx, err)
	}
	type answer struct {
		ins []Instance
		idx uint64
	}
	got := make(chan answer, 1)
	go func() {
		ins, next, err := m.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: idx, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- answer{ins, next}
	}()
	if err := m.Register(ctx, inst("a", 5070)); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.idx <= idx || !equal(ids(a.ins), []string{"a"}) {
		t.Fatalf("blocking query answered %v at %d after %d", ids(a.ins), a.idx, idx)
	}
	// Without a change the query answers after WaitTime with the same index.
	ins, same, err := m.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: a.idx, WaitTime: 20 * time.Millisecond})
	if err != nil || same != a.idx || len(ins) != 1 {
		t.Fatalf("timed out query: %v %d %v", ids(ins), same, err)
	}
	// A cancelled context ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := m.Passing(cctx, ServiceMCP, QueryOptions{WaitIndex: a.idx}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
}

func TestMemoryHealthAndServices(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	for _, in := range []Instance{inst("b", 5071), inst("a", 5070), {ID: "x", Service: "other", Address: "127.0.0.1", Port: 1}} {
		if err := m.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Register(ctx, Instance{ID: "c", Service: ServiceMCP, Address: "127.0.0.1", Port: 5072,
		Check: &Check{HTTP: "http://127.0.0.1:1/readyz", Interval: time.Second, Timeout: time.Second}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Status("c"); s != StatusCritical {
		t.Fatalf("an instance with a check starts critical like in Consul, got %s", s)
	}
	waitFor(t, m, time.Second, "a", "b")
	before := m.Index()
	if err := m.SetStatus("a", StatusPassing); err != nil || m.Index() != before {
		t.Fatalf("setting the same status must not bump the index: %v", err)
	}
	if err := m.SetStatus("a", StatusCritical); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, time.Second, "b")
	if err := m.SetStatus("a", StatusWarning); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, time.Second, "b") // warning is not passing
	if err := m.SetStatus("c", StatusPassing); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, time.Second, "b", "c")
	if err := m.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Deregister(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second deregister: %v", err)
	}
	if err := m.SetStatus("nope", StatusPassing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of unknown: %v", err)
	}
	waitFor(t, m, time.Second, "c")
	if ok, _ := m.Registered(ctx, "a"); !ok {
		t.Fatal("a critical instance is still registered")
	}

	// Reset is an agent restart: the index goes backwards and everything is gone.
	idx := m.Index()
	m.Reset()
	ins, next, err := m.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: idx})
	if err != nil || next >= idx || len(ins) != 0 {
		t.Fatalf("after reset: %v %d (was %d) %v", ids(ins), next, idx, err)
	}
}

func TestMemoryKV(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	if _, ok, err := m.KVGet(ctx, "tenants/80dd"); ok || err != nil {
		t.Fatalf("missing key: %v %v", ok, err)
	}
	v := []byte(`{"id":"80dd"}`)
	if err := m.KVPut(ctx, "tenants/80dd", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // the registry keeps its own copy
	got, ok, err := m.KVGet(ctx, "tenants/80dd")
	if err != nil || !ok || string(got) != `{"id":"80dd"}` {
		t.Fatalf("get: %q %v %v", got, ok, err)
	}
	if err := m.KVDelete(ctx, "tenants/80dd"); err != nil {
		t.Fatal(err)
	}
	if err := m.KVDelete(ctx, "tenants/80dd"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if _, ok, _ := m.KVGet(ctx, "tenants/80dd"); ok {
		t.Fatal("deleted key still there")
	}
}

// readyServer answers /readyz with 200 while ready is true, 503 otherwise.
func readyServer(t *testing.T) (*httptest.Server, *atomic.Bool) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	t.Cleanup(srv.Close)
	return srv, &ready
}

func TestMemoryHTTPChecks(t *testing.T) {
	ctx := context.Background()
	srv, ready := readyServer(t)
	m := NewMemory(WithHTTPChecks(srv.Client()))
	defer m.Close()
	in := inst("a", 5070)
	in.Status = ""
	in.Check = &Check{HTTP: srv.URL + "/readyz", Interval: 50 * time.Millisecond, Timeout: time.Second,
		DeregisterCriticalAfter: 200 * time.Millisecond}
	if err := m.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, 5*time.Second, "a")
	ready.Store(false)
	waitFor(t, m, 5*time.Second)
	ready.Store(true)
	waitFor(t, m, 5*time.Second, "a")
	// Critical long enough: the registry drops the instance.
	ready.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := m.Registered(ctx, "a"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance critical for longer than DeregisterCriticalAfter is still registered")
		}
		_, _, _ = m.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: m.Index(), WaitTime: 100 * time.Millisecond})
	}
}

func TestInstanceValidate(t *testing.T) {
	good := inst("a", 5070)
	cases := map[string]func(*Instance){
		"no id":       func(i *Instance) { i.ID = "" },
		"no service":  func(i *Instance) { i.Service = "" },
		"no address":  func(i *Instance) { i.Address = "" },
		"port 0":      func(i *Instance) { i.Port = 0 },
		"port 65536":  func(i *Instance) { i.Port = 65536 },
		"bad status":  func(i *Instance) { i.Status = "dead" },
		"check url":   func(i *Instance) { i.Check = &Check{HTTP: "tcp://x", Interval: time.Second, Timeout: time.Second} },
		"check times": func(i *Instance) { i.Check = &Check{HTTP: "http://x/readyz"} },
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			in := good.Clone()
			mutate(&in)
			if err := in.Validate(); err == nil {
				t.Fatal("accepted")
			}
			if err := NewMemory().Register(context.Background(), in); err == nil {
				t.Fatal("registry accepted")
			}
		})
	}
}
