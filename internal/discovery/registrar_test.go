package discovery

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestInstanceIDAndSanitize(t *testing.T) {
	cases := []struct{ name, addr, want string }{
		{"mcp-0", "10.0.0.5:5070", "mcp-0@10.0.0.5:5070"},
		{"mcp 1/a", "[::1]:5070", "mcp-1-a@-::1-:5070"},
		{"", "h:1", "@h:1"},
	}
	for _, c := range cases {
		if got := InstanceID(c.name, c.addr); got != c.want {
			t.Errorf("InstanceID(%q, %q) = %q, want %q", c.name, c.addr, got, c.want)
		}
	}
	if got := SanitizeName(strings.Repeat("é", 100)); len(got) != maxNameLen || strings.Trim(got, "-") != "" {
		t.Errorf("long name: %q", got)
	}
}

func TestMCPInfoInstance(t *testing.T) {
	cfg := DefaultRegistrationConfig()
	info := MCPInfo{Name: "mcp-0", SIPAddr: "10.0.0.5:5070", ReadyURL: "http://10.0.0.5:8301/readyz",
		Transport: "UDP", Capacity: 500, Version: "1.2.3"}
	in, err := info.Instance(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "mcp-0@10.0.0.5:5070" || in.Service != ServiceMCP || in.Address != "10.0.0.5" || in.Port != 5070 {
		t.Fatalf("instance %+v", in)
	}
	if in.Meta[MetaCapacity] != "500" || in.Meta[MetaTransport] != "udp" || in.Meta[MetaVersion] != "1.2.3" || in.Meta[MetaName] != "mcp-0" {
		t.Fatalf("meta %v", in.Meta)
	}
	if c := in.Check; c.Interval != 30*time.Second || c.Timeout != 10*time.Second || c.HTTP != info.ReadyURL ||
		c.DeregisterCriticalAfter != DefaultDeregisterCriticalAfter {
		t.Fatalf("check %+v", c)
	}
	for _, bad := range []string{"0.0.0.0:5070", "[::]:5070", ":5070", "10.0.0.5", "10.0.0.5:x"} {
		info.SIPAddr = bad
		if _, err := info.Instance(cfg); err == nil {
			t.Errorf("SIP address %q accepted", bad)
		}
	}
}

func TestRegistrationConfigValidate(t *testing.T) {
	cases := map[string]func(*RegistrationConfig){
		"sd.registration.check_interval":            func(c *RegistrationConfig) { c.CheckInterval = 0 },
		"sd.registration.check_timeout":             func(c *RegistrationConfig) { c.CheckTimeout = time.Hour },
		"sd.registration.deregister_critical_after": func(c *RegistrationConfig) { c.DeregisterCriticalAfter = -1 },
		"sd.registration.refresh":                   func(c *RegistrationConfig) { c.Refresh = 0 },
	}
	if err := DefaultRegistrationConfig().Validate("sd.registration"); err != nil {
		t.Fatal(err)
	}
	for key, mutate := range cases {
		c := DefaultRegistrationConfig()
		mutate(&c)
		if err := c.Validate("sd.registration"); err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("want an error naming %s, got %v", key, err)
		}
	}
}

func TestRegistrarRefreshAndDeregister(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	promReg := prometheus.NewRegistry()
	r, err := NewRegistrar(m, inst("a", 5070), 20*time.Millisecond,
		WithReadiness(func() error { return nil }), WithRegistrarRegisterer(promReg))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, time.Second, "a")
	if testutil.ToFloat64(r.registered) != 1 {
		t.Fatal("gauge not set")
	}

	// The agent restarts and forgets the instance: the registrar registers it again, with the
	// status its readiness gives.
	m.Reset()
	waitFor(t, m, 5*time.Second, "a")
	if n := testutil.ToFloat64(r.registers); n < 2 {
		t.Fatalf("registrations %v, want at least 2", n)
	}

	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, time.Second)
	if err := r.Deregister(ctx); err != nil {
		t.Fatalf("second deregister: %v", err)
	}
	// The refresh loop is stopped: nothing registers the instance again.
	idx := m.Index()
	_, next, _ := m.Passing(ctx, ServiceMCP, QueryOptions{WaitIndex: idx, WaitTime: 100 * time.Millisecond})
	if next != idx {
		t.Fatal("registry changed after Deregister")
	}
}

func TestRegistrarInitialStatusFollowsReadiness(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	in := inst("a", 5070)
	in.Check = &Check{HTTP: "http://127.0.0.1:1/readyz", Interval: time.Second, Timeout: time.Second}
	r, err := NewRegistrar(m, in, time.Hour, WithReadiness(func() error { return errors.New("starting") }))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Deregister(ctx)
	if s, _ := m.Status("a"); s != StatusCritical {
		t.Fatalf("not ready mcp registered %s", s)
	}
}

// failingRegistry fails every call.
type failingRegistry struct{ *Memory }

func (f *failingRegistry) Register(context.Context, Instance) error { return errors.New("agent down") }

func TestRegistrarFirstRegistrationFails(t *testing.T) {
	f := &failingRegistry{Memory: NewMemory()}
	r, err := NewRegistrar(f, inst("a", 5070), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(context.Background()); err == nil || r.Err() == nil {
		t.Fatal("want the registration error")
	}
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatalf("deregister of a never registered instance: %v", err)
	}
}
