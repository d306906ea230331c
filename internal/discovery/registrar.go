package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Registration defaults (GVP's values for its mcp health check).
const (
	// DefaultCheckInterval is the time between two probes of an mcp's /readyz.
	DefaultCheckInterval = 30 * time.Second
	// DefaultCheckTimeout bounds one probe of /readyz.
	DefaultCheckTimeout = 10 * time.Second
	// DefaultDeregisterCriticalAfter removes an instance whose check stayed critical this long
	// (an mcp that died without deregistering).
	DefaultDeregisterCriticalAfter = 10 * time.Minute
	// DefaultRefresh is how often the registrar verifies that the agent still has the
	// instance, registering it again if not (after an agent restart).
	DefaultRefresh = 10 * time.Second
	// registerTimeout bounds one registry call of the refresh loop.
	registerTimeout = 10 * time.Second
)

// RegistrationConfig is how an mcp registers itself (`sd.registration.*`).
type RegistrationConfig struct {
	// CheckInterval is the time between two health probes. Default DefaultCheckInterval.
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// CheckTimeout bounds one probe. Default DefaultCheckTimeout.
	CheckTimeout time.Duration `mapstructure:"check_timeout"`
	// DeregisterCriticalAfter removes an instance critical this long; 0 never. Default
	// DefaultDeregisterCriticalAfter; Consul rounds anything under a minute up to a minute.
	DeregisterCriticalAfter time.Duration `mapstructure:"deregister_critical_after"`
	// Refresh is the interval of the registrar's presence check. Default DefaultRefresh.
	Refresh time.Duration `mapstructure:"refresh"`
}

// DefaultRegistrationConfig returns the defaults.
func DefaultRegistrationConfig() RegistrationConfig {
	return RegistrationConfig{
		CheckInterval:           DefaultCheckInterval,
		CheckTimeout:            DefaultCheckTimeout,
		DeregisterCriticalAfter: DefaultDeregisterCriticalAfter,
		Refresh:                 DefaultRefresh,
	}
}

// Validate checks the section; prefix is its key ("sd.registration"). It returns an error
// naming the first bad key.
func (c RegistrationConfig) Validate(prefix string) error {
	switch {
	case c.CheckInterval < 100*time.Millisecond:
		return keyError(prefix+".check_interval", "must be at least 100ms")
	case c.CheckTimeout <= 0 || c.CheckTimeout > c.CheckInterval:
		return keyError(prefix+".check_timeout", "must be positive and at most check_interval")
	case c.DeregisterCriticalAfter < 0:
		return keyError(prefix+".deregister_critical_after", "must not be negative")
	case c.Refresh < 100*time.Millisecond:
		return keyError(prefix+".refresh", "must be at least 100ms")
	}
	return nil
}

// keyError formats like internal/config's FieldError, which this package does not import to
// stay usable by every role.
func keyError(key, reason string) error { return fmt.Errorf("config key %q: %s", key, reason) }

// MCPInfo describes the mcp a Registrar registers.
type MCPInfo struct {
	// Name is the mcp's name (mcp.name).
	Name string
	// SIPAddr is the host:port rm sends INVITEs to; the host must be an address rm can reach
	// (not 0.0.0.0).
	SIPAddr string
	// ReadyURL is the URL of the mcp's /readyz, probed by the registry.
	ReadyURL string
	// Transport is udp or tcp.
	Transport string
	// Capacity is the number of concurrent calls.
	Capacity int
	// Version is the gvp version.
	Version string
}

// InstanceID returns the instance id of the mcp named name serving SIP on sipAddr:
// "name@host:port", with characters outside [A-Za-z0-9._:@-] replaced by '-', so that it is also
// a valid configsrv object name.
func InstanceID(name, sipAddr string) string {
	return SanitizeName(name + "@" + sipAddr)
}

// maxNameLen is the longest configsrv object name.
const maxNameLen = 128

// SanitizeName maps s to a configsrv object name: characters outside [A-Za-z0-9._:@-] become
// '-', and the result is cut to 128 bytes.
func SanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == ':' || c == '@'
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	return string(b)
}

// Instance builds the registry instance for an mcp.
func (i MCPInfo) Instance(cfg RegistrationConfig) (Instance, error) {
	host, port, err := net.SplitHostPort(i.SIPAddr)
	if err != nil {
		return Instance{}, fmt.Errorf("mcp SIP address %q: %w", i.SIPAddr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return Instance{}, fmt.Errorf("mcp SIP address %q: bad port", i.SIPAddr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return Instance{}, fmt.Errorf("mcp SIP address %q: need an address rm can reach, not a wildcard", i.SIPAddr)
	}
	meta := map[string]string{
		MetaName:      i.Name,
		MetaTransport: strings.ToLower(i.Transport),
		MetaCapacity:  strconv.Itoa(i.Capacity),
	}
	if i.Version != "" {
		meta[MetaVersion] = i.Version
	}
	in := Instance{
		ID:      InstanceID(i.Name, i.SIPAddr),
		Service: ServiceMCP,
		Address: host,
		Port:    p,
		Meta:    meta,
		Check: &Check{
			HTTP:                    i.ReadyURL,
			Interval:                cfg.CheckInterval,
			Timeout:                 cfg.CheckTimeout,
			DeregisterCriticalAfter: cfg.DeregisterCriticalAfter,
		},
	}
	return in, in.Validate()
}

// Registrar keeps one instance registered: Register registers it and starts a loop that
// re-registers it whenever the registry lost it (an agent restart); Deregister stops the loop
// and removes the instance. Safe for concurrent use.
type Registrar struct {
	reg     Registry
	in      Instance
	refresh time.Duration
	ready   func() error
	log     zerolog.Logger

	registered  prometheus.Gauge
	registers   prometheus.Counter
	regFailures prometheus.Counter

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	lastErr error
}

// RegistrarOption configures a Registrar.
type RegistrarOption func(*Registrar)

// WithRegistrarLogger sets the logger (default zerolog.Nop()).
func WithRegistrarLogger(l zerolog.Logger) RegistrarOption {
	return func(r *Registrar) { r.log = l }
}

// WithReadiness gives the registrar the service's own readiness: each (re-)registration starts
// with the check passing when ready() is nil, critical otherwise. Without it registrations
// start passing (the caller registers once it serves).
func WithReadiness(ready func() error) RegistrarOption {
	return func(r *Registrar) { r.ready = ready }
}

// WithRegistrarRegisterer registers gvp_discovery_registered (1 while registered),
// gvp_discovery_registrations_total and gvp_discovery_registration_failures_total on reg.
func WithRegistrarRegisterer(reg prometheus.Registerer) RegistrarOption {
	return func(r *Registrar) {
		if reg == nil {
			return
		}
		reg.MustRegister(r.registered, r.registers, r.regFailures)
	}
}

// NewRegistrar returns a registrar of in with reg, checking presence every refresh
// (DefaultRefresh when zero).
func NewRegistrar(reg Registry, in Instance, refresh time.Duration, opts ...RegistrarOption) (*Registrar, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	r := &Registrar{
		reg: reg, in: in.Clone(), refresh: refresh, log: zerolog.Nop(),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_discovery_registered", Help: "1 while the instance is registered in the service registry."}),
		registers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_discovery_registrations_total", Help: "Registrations sent to the service registry, the first and re-registrations."}),
		regFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_discovery_registration_failures_total", Help: "Failed registrations or presence checks."}),
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// ID returns the instance id.
func (r *Registrar) ID() string { return r.in.ID }

// Err returns the last registration error, nil once registered again.
func (r *Registrar) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *Registrar) setErr(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

func (r *Registrar) register(ctx context.Context) error {
	in := r.in.Clone()
	in.Status = StatusPassing
	if r.ready != nil && r.ready() != nil {
		in.Status = StatusCritical
	}
	r.registers.Inc()
	if err := r.reg.Register(ctx, in); err != nil {
		r.regFailures.Inc()
		r.setErr(err)
		return err
	}
	r.registered.Set(1)
	r.setErr(nil)
	return nil
}

// Register registers the instance and starts the refresh loop. A failed first registration
// is returned, and the loop keeps trying (the mcp serves without the registry; sd adds it once
// registered). Calling Register again while running only re-registers.
func (r *Registrar) Register(ctx context.Context) error {
	err := r.register(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		lctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan struct{})
		go r.loop(lctx, r.done)
	}
	if err != nil {
		return fmt.Errorf("register %s: %w", r.in.ID, err)
	}
	return nil
}

func (r *Registrar) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, registerTimeout)
		ok, err := r.reg.Registered(cctx, r.in.ID)
		if err == nil && !ok {
			r.log.Warn().Str("instance", r.in.ID).Msg("registry lost the instance; registering again")
			err = r.register(cctx)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			r.regFailures.Inc()
			r.setErr(err)
			r.registered.Set(0)
			r.log.Warn().Err(err).Str("instance", r.in.ID).Msg("registry presence check failed")
		}
	}
}

// Deregister stops the refresh loop and removes the instance, so routing to it stops before the
// mcp refuses calls. Call it first thing on drain. An instance the registry no longer knows is
// not an error.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	r.registered.Set(0)
	if err := r.reg.Deregister(ctx, r.in.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("deregister %s: %w", r.in.ID, err)
	}
	return nil
}
