// Package lifecycle runs gvp's roles: it starts them in dependency order, reports readiness only
// once every role is up, drains them on SIGTERM (readiness turns 503, new work is refused, work
// in progress finishes until the drain timeout) and stops them in reverse order.
//
// The design follows Loki's module manager: each role is a Module with its dependencies, and the
// all-in-one target is just the set of every module; there is one code path for every mode.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Service is a running role or component.
type Service interface {
	// Start binds listeners and starts background work; it returns once the service serves,
	// or with an error.
	Start(ctx context.Context) error
	// Ready returns nil when the service can take traffic, else why not (e.g. its database is
	// down). The manager adds its own state (starting, draining) on top.
	Ready() error
	// Drain refuses new work and waits for work in progress to end, or for ctx to end.
	Drain(ctx context.Context) error
	// Stop releases everything; it is called once, after Drain or after a failed start.
	Stop(ctx context.Context) error
}

// Endpoint is an address a service listens on, printed when the process is ready.
type Endpoint struct {
	Name string // e.g. "sip/udp", "admin", "api"
	Addr string // host:port or URL
}

// Addresser is implemented by services that listen on the network.
type Addresser interface {
	Endpoints() []Endpoint
}

// Module describes one startable unit and what it needs started before it.
type Module struct {
	Name string
	// Deps are modules started first when they are part of the same target.
	Deps []string
	// Requires are modules always started first, whatever the target (shared components such
	// as the service registry client).
	Requires []string
	// Init constructs the service once its dependencies run. A module without Init is a group
	// (like `local`): naming it as a target starts all of its dependencies.
	Init func(c Common) (Service, error)
	// Reload, when set, applies a reloaded configuration to the running service.
	Reload func(ctx context.Context, svc Service) error
	// Description is one line for `gvp --help` and `gvp targets`.
	Description string
	// Hidden modules are components (e.g. the embedded broker) rather than roles.
	Hidden bool
}

// Common is what every service gets from the manager.
type Common struct {
	// Log carries a "role" field.
	Log zerolog.Logger
	// Metrics is the module's own registry, served on its /metrics.
	Metrics *prometheus.Registry
	// Ready is the module's readiness as the admin endpoint must report it: the manager's
	// state combined with the service's own Ready.
	Ready func() error
	// Fatal stops the whole process with err; for failures after Start.
	Fatal func(err error)
	// Draining reports whether the process is draining.
	Draining func() bool
}

// State is the manager's phase.
type State int32

// The manager's phases, in order.
const (
	Starting State = iota
	Running
	Draining
	Stopping
	Stopped
)

func (s State) String() string {
	return [...]string{"starting", "running", "draining", "stopping", "stopped"}[s]
}

// Manager starts, drains and stops a set of modules.
type Manager struct {
	log      zerolog.Logger
	modules  map[string]*Module
	newReg   func() *prometheus.Registry
	state    atomic.Int32
	mu       sync.Mutex
	started  []*running
	fatal    chan error
	fatalErr sync.Once
}

type running struct {
	name string
	mod  *Module
	svc  Service
}

// NewManager returns a manager for modules; newRegistry makes each module's metrics registry.
func NewManager(log zerolog.Logger, modules []*Module, newRegistry func() *prometheus.Registry) *Manager {
	m := &Manager{log: log, modules: map[string]*Module{}, newReg: newRegistry, fatal: make(chan error, 1)}
	for _, mod := range modules {
		m.modules[mod.Name] = mod
	}
	return m
}

// State returns the current phase.
func (m *Manager) State() State { return State(m.state.Load()) }

// Fatal returns a channel that receives the first fatal error reported by a service.
func (m *Manager) Fatal() <-chan error { return m.fatal }

// Order returns the modules needed for targets in start order (dependencies first; ties broken
// by name so the order is stable). Only dependencies that are themselves in the closure of the
// targets are started: a role run on its own reaches its dependencies over the network.
func (m *Manager) Order(targets []string) ([]string, error) {
	want := map[string]bool{}
	var add func(string) error
	add = func(t string) error {
		mod, ok := m.modules[t]
		if !ok {
			return fmt.Errorf("unknown target %q", t)
		}
		if want[t] {
			return nil
		}
		want[t] = true
		for _, r := range mod.Requires {
			if err := add(r); err != nil {
				return err
			}
		}
		if mod.Init == nil { // a group pulls in all its dependencies
			for _, d := range mod.Deps {
				if err := add(d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, t := range targets {
		if err := add(t); err != nil {
			return nil, err
		}
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("dependency cycle: %v -> %s", path, n)
		case 2:
			return nil
		}
		state[n] = 1
		deps := append(append([]string(nil), m.modules[n].Deps...), m.modules[n].Requires...)
		sort.Strings(deps)
		for _, d := range deps {
			if !want[d] {
				continue
			}
			if _, ok := m.modules[d]; !ok {
				return fmt.Errorf("module %s depends on unknown module %s", n, d)
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		if m.modules[n].Init != nil {
			order = append(order, n)
		}
		return nil
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Start initialises and starts the modules of targets in dependency order. On failure it stops
// what it started, in reverse order, and returns the error.
func (m *Manager) Start(ctx context.Context, targets []string) error {
	order, err := m.Order(targets)
	if err != nil {
		return err
	}
	m.state.Store(int32(Starting))
	for _, name := range order {
		mod := m.modules[name]
		if err := m.startOne(ctx, mod); err != nil {
			m.log.Error().Err(err).Str("role", name).Msg("start failed; stopping")
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m.Stop(stopCtx)
			cancel()
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	m.state.Store(int32(Running))
	return nil
}

func (m *Manager) startOne(ctx context.Context, mod *Module) error {
	var svc Service
	reg := m.newReg()
	c := Common{
		Log:     m.log.With().Str("role", mod.Name).Logger(),
		Metrics: reg,
		Fatal:   m.reportFatal(mod.Name),
		Draining: func() bool {
			return m.State() >= Draining
		},
	}
	c.Ready = func() error {
		if st := m.State(); st != Running {
			return errors.New(st.String())
		}
		if svc == nil {
			return errors.New("starting")
		}
		return svc.Ready()
	}
	s, err := mod.Init(c)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	svc = s
	t0 := time.Now()
	if err := svc.Start(ctx); err != nil {
		_ = svc.Stop(context.Background())
		return err
	}
	m.mu.Lock()
	m.started = append(m.started, &running{name: mod.Name, mod: mod, svc: svc})
	m.mu.Unlock()
	ev := c.Log.Info().Dur("took", time.Since(t0))
	if a, ok := svc.(Addresser); ok {
		for _, e := range a.Endpoints() {
			ev = ev.Str(e.Name, e.Addr)
		}
	}
	ev.Msg("started")
	return nil
}

func (m *Manager) reportFatal(name string) func(error) {
	return func(err error) {
		m.fatalErr.Do(func() {
			m.fatal <- fmt.Errorf("%s: %w", name, err)
		})
	}
}

// Service returns the started service of a module, or nil.
func (m *Manager) Service(name string) Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.started {
		if r.name == name {
			return r.svc
		}
	}
	return nil
}

// Endpoints lists the endpoints of every started module, in start order.
func (m *Manager) Endpoints() map[string][]Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]Endpoint{}
	for _, r := range m.started {
		if a, ok := r.svc.(Addresser); ok {
			out[r.name] = a.Endpoints()
		}
	}
	return out
}

// Drain turns readiness off and drains every started module at once until they are idle or ctx
// ends. It returns ctx's error if the drain timed out.
func (m *Manager) Drain(ctx context.Context) error {
	m.state.Store(int32(Draining))
	m.mu.Lock()
	started := append([]*running(nil), m.started...)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.svc.Drain(ctx); err != nil {
				m.log.Warn().Err(err).Str("role", r.name).Msg("drain incomplete")
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// Reload asks every started module that can to apply the reloaded configuration.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	started := append([]*running(nil), m.started...)
	m.mu.Unlock()
	var errs []error
	for _, r := range started {
		if r.mod.Reload != nil {
			if err := r.mod.Reload(ctx, r.svc); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Stop stops every started module in reverse start order.
func (m *Manager) Stop(ctx context.Context) {
	m.state.Store(int32(Stopping))
	m.mu.Lock()
	started := m.started
	m.started = nil
	m.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		if err := r.svc.Stop(ctx); err != nil {
			m.log.Warn().Err(err).Str("role", r.name).Msg("stop")
		} else {
			m.log.Info().Str("role", r.name).Msg("stopped")
		}
	}
	m.state.Store(int32(Stopped))
}

// Modules returns the registered modules sorted by name.
func (m *Manager) Modules() []*Module {
	out := make([]*Module, 0, len(m.modules))
	for _, mod := range m.modules {
		out = append(out, mod)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
