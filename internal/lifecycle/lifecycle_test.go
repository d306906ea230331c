package lifecycle

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

type fakeSvc struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
	work     *Inflight
	ready    error
}

func (f *fakeSvc) rec(s string) {
	f.mu.Lock()
	*f.log = append(*f.log, s+" "+f.name)
	f.mu.Unlock()
}
func (f *fakeSvc) Start(context.Context) error { f.rec("start"); return f.startErr }
func (f *fakeSvc) Ready() error                { return f.ready }
func (f *fakeSvc) Drain(ctx context.Context) error {
	f.rec("drain")
	if f.work != nil {
		return f.work.Wait(ctx)
	}
	return nil
}
func (f *fakeSvc) Stop(context.Context) error { f.rec("stop"); return nil }

type harness struct {
	mu   sync.Mutex
	log  []string
	svcs map[string]*fakeSvc
}

func (h *harness) module(name string, deps ...string) *Module {
	return &Module{Name: name, Deps: deps, Init: func(Common) (Service, error) {
		s := h.svcs[name]
		if s == nil {
			s = &fakeSvc{}
			h.svcs[name] = s
		}
		s.name, s.log, s.mu = name, &h.log, &h.mu
		return s, nil
	}}
}

func newHarness() (*harness, *Manager) {
	h := &harness{svcs: map[string]*fakeSvc{}}
	mods := []*Module{
		h.module("broker"),
		h.module("configsrv"),
		h.module("rs", "configsrv", "broker"),
		h.module("mcp", "configsrv", "broker"),
		h.module("rm", "configsrv", "broker", "mcp"),
		h.module("registry"),
		func() *Module { m := h.module("sd", "configsrv"); m.Requires = []string{"registry"}; return m }(),
		{Name: "local", Deps: []string{"broker", "configsrv", "rs", "mcp", "rm", "sd"}},
	}
	return h, NewManager(zerolog.Nop(), mods, prometheus.NewRegistry)
}

func TestOrder(t *testing.T) {
	_, m := newHarness()
	cases := []struct {
		targets []string
		want    []string
	}{
		{[]string{"local"}, []string{"broker", "configsrv", "mcp", "rm", "rs", "registry", "sd"}},
		{[]string{"rm"}, []string{"rm"}}, // alone, its dependencies are remote
		{[]string{"rm", "mcp"}, []string{"mcp", "rm"}},
		{[]string{"sd"}, []string{"registry", "sd"}}, // Requires are pulled in alone too
	}
	for _, tc := range cases {
		got, err := m.Order(tc.targets)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Order(%v) = %v, want %v", tc.targets, got, tc.want)
		}
	}
	if _, err := m.Order([]string{"nope"}); err == nil {
		t.Fatal("unknown target accepted")
	}
}

func TestCycle(t *testing.T) {
	h := &harness{svcs: map[string]*fakeSvc{}}
	m := NewManager(zerolog.Nop(), []*Module{h.module("a", "b"), h.module("b", "a")}, prometheus.NewRegistry)
	if _, err := m.Order([]string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("want cycle error, got %v", err)
	}
}

func TestStartDrainStopOrder(t *testing.T) {
	h, m := newHarness()
	if err := m.Start(context.Background(), []string{"local"}); err != nil {
		t.Fatal(err)
	}
	if m.State() != Running {
		t.Fatalf("state %v", m.State())
	}
	_ = m.Drain(context.Background())
	m.Stop(context.Background())
	var starts, stops []string
	for _, l := range h.log {
		if n, ok := strings.CutPrefix(l, "start "); ok {
			starts = append(starts, n)
		}
		if n, ok := strings.CutPrefix(l, "stop "); ok {
			stops = append(stops, n)
		}
	}
	if !reflect.DeepEqual(starts, []string{"broker", "configsrv", "mcp", "rm", "rs", "registry", "sd"}) {
		t.Fatalf("start order %v", starts)
	}
	if !reflect.DeepEqual(stops, []string{"sd", "registry", "rs", "rm", "mcp", "configsrv", "broker"}) {
		t.Fatalf("stop order %v", stops)
	}
}

func TestFailedStartStopsStarted(t *testing.T) {
	h, m := newHarness()
	h.svcs["mcp"] = &fakeSvc{startErr: errors.New("port in use")}
	err := m.Start(context.Background(), []string{"local"})
	if err == nil || !strings.Contains(err.Error(), "start mcp: port in use") {
		t.Fatalf("want start error naming mcp, got %v", err)
	}
	want := []string{"start broker", "start configsrv", "start mcp", "stop mcp", "stop configsrv", "stop broker"}
	if !reflect.DeepEqual(h.log, want) {
		t.Fatalf("log %v, want %v", h.log, want)
	}
}

func TestReadinessFollowsState(t *testing.T) {
	h, _ := newHarness()
	var readyOf func() error
	mods := []*Module{{Name: "x", Init: func(c Common) (Service, error) {
		readyOf = c.Ready
		s := &fakeSvc{name: "x", log: &h.log, mu: &h.mu, work: &Inflight{}}
		h.svcs["x"] = s
		return s, nil
	}}}
	m := NewManager(zerolog.Nop(), mods, prometheus.NewRegistry)
	if err := m.Start(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if err := readyOf(); err != nil {
		t.Fatalf("running service not ready: %v", err)
	}
	h.svcs["x"].ready = errors.New("database down")
	if err := readyOf(); err == nil || err.Error() != "database down" {
		t.Fatalf("service's own readiness not reported: %v", err)
	}
	h.svcs["x"].ready = nil
	work := h.svcs["x"].work
	work.Add()
	done := make(chan error)
	go func() { done <- m.Drain(context.Background()) }()
	// Draining: not ready, and the drain waits for the work in progress.
	deadline := time.Now().Add(5 * time.Second)
	for readyOf() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := readyOf(); err == nil || err.Error() != "draining" {
		t.Fatalf("want draining, got %v", err)
	}
	select {
	case <-done:
		t.Fatal("drain returned with work in progress")
	case <-time.After(50 * time.Millisecond):
	}
	work.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDrainTimeout(t *testing.T) {
	var f Inflight
	f.Add()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	f.Done()
	if err := f.Wait(context.Background()); err != nil || f.Count() != 0 {
		t.Fatalf("idle wait: %v, count %d", err, f.Count())
	}
}
