// Package sd is the service discovery role: it keeps configsrv's MCP pool in step with the mcps
// registered in the service registry (Consul in production, in memory in local mode) and
// provisions tenants from an inventory folder. See README.md.
package sd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// Defaults.
const (
	// DefaultAdminListen serves /healthz, /readyz and /metrics.
	DefaultAdminListen = "0.0.0.0:8302"
	// DefaultPool is the configsrv pool that registered mcps are added to.
	DefaultPool = "MCP_LRG"
	// DefaultService is the registry service whose passing instances fill the pool.
	DefaultService = discovery.ServiceMCP
	// DefaultResync is the interval of full resyncs besides the registry's change notifications.
	DefaultResync = 60 * time.Second
	// DefaultFirstResync is the delay of the first full resync after start.
	DefaultFirstResync = 10 * time.Second
	// DefaultWait bounds one blocking query; the registry answers earlier on a change.
	DefaultWait = 60 * time.Second
	// DefaultPurgeDelay is how long a member must stay gone or critical before it is removed
	// from the pool; 0 removes it at once.
	DefaultPurgeDelay = 0
	// DefaultRecoveryGrace withholds removals this long after start, after a registry error and
	// after the registry's index went backwards (an agent restart), so that registrars
	// (refreshing every 10 s) register again before their absence counts.
	DefaultRecoveryGrace = 30 * time.Second
	// DefaultInventoryPoll is how often the inventory folder is scanned.
	DefaultInventoryPoll = 5 * time.Second
	// DefaultInitialPage is the template of the IVRAppDefault profile's initial page in the
	// built-in profile templates (Go text/template over the inventory entry).
	DefaultInitialPage = "http://127.0.0.1:8000/{{.Name}}/IVRAppDefault.vxml"
	// minBackoff and maxBackoff bound the retry delay after a registry or configsrv error.
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// requestTimeout bounds one configsrv or registry request (but blocking queries).
	requestTimeout = 15 * time.Second
)

// Config is the sd section (`sd.*`).
type Config struct {
	Admin admin.Config `mapstructure:"admin"`
	// Pool receives the registered mcps. Default DefaultPool; created with default settings
	// when missing.
	Pool string `mapstructure:"pool"`
	// Service is the registry service synced into Pool. Default DefaultService.
	Service string `mapstructure:"service"`
	// Resync is the full resync interval. Default DefaultResync.
	Resync time.Duration `mapstructure:"resync"`
	// FirstResync is the delay of the first full resync. Default DefaultFirstResync.
	FirstResync time.Duration `mapstructure:"first_resync"`
	// Wait bounds one blocking query. Default DefaultWait.
	Wait time.Duration `mapstructure:"wait"`
	// PurgeDelay keeps a gone or critical member this long before removing it. Default 0.
	PurgeDelay time.Duration `mapstructure:"purge_delay"`
	// RecoveryGrace withholds removals after start and after registry trouble. Default
	// DefaultRecoveryGrace.
	RecoveryGrace time.Duration `mapstructure:"recovery_grace"`
	// Exclude lists member names sd never adds, changes or removes.
	Exclude []string `mapstructure:"exclude"`
	// InventoryDir holds one JSON file per tenant to provision; empty disables provisioning.
	InventoryDir string `mapstructure:"inventory_dir"`
	// InventoryPoll is the scan interval of InventoryDir. Default DefaultInventoryPoll.
	InventoryPoll time.Duration `mapstructure:"inventory_poll"`
	// Tenant shapes what provisioning creates for each tenant.
	Tenant TenantConfig `mapstructure:"tenant"`
	// Registration is how mcps register themselves (read by the mcp role).
	Registration discovery.RegistrationConfig `mapstructure:"registration"`
}

// TenantConfig shapes tenant provisioning (`sd.tenant.*`).
type TenantConfig struct {
	// Templates is a file of IVRProfile documents (multi-document YAML or JSON), a Go
	// text/template over the inventory entry ({{.Name}}, {{.ID}}, {{.CCID}},
	// {{.DefaultApplication}}, {{.InitialPage}}); empty uses the built-in set: IVRAppDefault
	// (voicexml), conference, cpd, record and media.
	Templates string `mapstructure:"templates"`
	// InitialPage is the template of the built-in IVRAppDefault's initial page. Default
	// DefaultInitialPage.
	InitialPage string `mapstructure:"initial_page"`
}

// DefaultConfig returns the defaults of every sd key.
func DefaultConfig() Config {
	return Config{
		Admin:         admin.Config{Listen: DefaultAdminListen},
		Pool:          DefaultPool,
		Service:       DefaultService,
		Resync:        DefaultResync,
		FirstResync:   DefaultFirstResync,
		Wait:          DefaultWait,
		PurgeDelay:    DefaultPurgeDelay,
		RecoveryGrace: DefaultRecoveryGrace,
		Exclude:       []string{},
		InventoryPoll: DefaultInventoryPoll,
		Tenant:        TenantConfig{InitialPage: DefaultInitialPage},
		Registration:  discovery.DefaultRegistrationConfig(),
	}
}

// Validate checks the section; prefix is its key ("sd").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".admin.listen", c.Admin.Listen); err != nil {
		return err
	}
	if c.Pool == "" {
		return config.Errorf(prefix+".pool", "must not be empty")
	}
	if c.Service == "" {
		return config.Errorf(prefix+".service", "must not be empty")
	}
	if c.Resync < time.Second {
		return config.Errorf(prefix+".resync", "must be at least 1s")
	}
	if c.FirstResync < 0 {
		return config.Errorf(prefix+".first_resync", "must not be negative")
	}
	if c.Wait < time.Second {
		return config.Errorf(prefix+".wait", "must be at least 1s")
	}
	if c.PurgeDelay < 0 {
		return config.Errorf(prefix+".purge_delay", "must not be negative")
	}
	if c.RecoveryGrace < 0 {
		return config.Errorf(prefix+".recovery_grace", "must not be negative")
	}
	for _, e := range c.Exclude {
		if strings.TrimSpace(e) == "" {
			return config.Errorf(prefix+".exclude", "empty member name")
		}
	}
	if c.InventoryPoll < 100*time.Millisecond {
		return config.Errorf(prefix+".inventory_poll", "must be at least 100ms")
	}
	if _, err := template.New("initial_page").Option("missingkey=error").Parse(c.Tenant.InitialPage); err != nil {
		return config.Errorf(prefix+".tenant.initial_page", "%v", err)
	}
	return c.Registration.Validate(prefix + ".registration")
}

// Deps are what sd needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
	// ConfigsrvToken is the bearer token sent to configsrv; empty for none.
	ConfigsrvToken string
	// Registry is the service registry (discovery.NewConsul, or in local mode the
	// discovery.Memory shared with the mcp). Nil means a private in-memory registry, in which
	// nothing registers: the pool then only keeps its hand-written members.
	Registry discovery.Registry
}

// SD is the running role.
type SD struct {
	cfg   Config
	deps  Deps
	log   zerolog.Logger
	m     *metrics
	sync  *syncer
	inv   *provisioner
	admin *admin.Server

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns an sd that is not started yet.
func New(cfg Config, deps Deps) (*SD, error) {
	if err := cfg.Validate("sd"); err != nil {
		return nil, err
	}
	if deps.Registry == nil {
		deps.Log.Warn().Msg("no service registry given; using a private in-memory registry")
		deps.Registry = discovery.NewMemory()
	}
	var opts []confclient.Option
	if deps.ConfigsrvToken != "" {
		opts = append(opts, confclient.WithToken(deps.ConfigsrvToken))
	}
	cc, err := confclient.New(deps.ConfigsrvURL, append(opts, confclient.WithRequestTimeout(requestTimeout))...)
	if err != nil {
		return nil, fmt.Errorf("sd: %w", err)
	}
	var reg prometheus.Registerer
	if deps.Metrics != nil {
		reg = deps.Metrics
	}
	s := &SD{cfg: cfg, deps: deps, log: deps.Log, m: newMetrics(reg)}
	s.sync = newSyncer(cfg, deps.Registry, cc, s.m, deps.Log.With().Str("component", "sync").Logger())
	if cfg.InventoryDir != "" {
		s.inv, err = newProvisioner(cfg, deps.Registry, cc, s.m, deps.Log.With().Str("component", "inventory").Logger())
		if err != nil {
			return nil, fmt.Errorf("sd: %w", err)
		}
	}
	return s, nil
}

// Start binds the admin endpoint and starts the sync and inventory loops.
func (s *SD) Start(ctx context.Context) error {
	ready := s.deps.Ready
	if ready == nil {
		ready = s.Ready
	}
	a, err := admin.Serve(s.cfg.Admin, ready, gatherer(s.deps.Metrics), s.deps.Fatal)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.admin = a
	s.cancel = cancel
	s.mu.Unlock()
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.sync.watch(lctx) }()
	go func() { defer s.wg.Done(); s.sync.run(lctx) }()
	if s.inv != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.inv.run(lctx) }()
	}
	return nil
}

func gatherer(r *prometheus.Registry) prometheus.Gatherer {
	if r == nil {
		return prometheus.NewRegistry()
	}
	return r
}

// Ready is nil once a sync succeeded and while the registry and configsrv answer; otherwise
// it says which is failing (the pool keeps its last state meanwhile).
func (s *SD) Ready() error {
	var errs []error
	if err := s.sync.readyErr(); err != nil {
		errs = append(errs, err)
	}
	if s.inv != nil {
		if err := s.inv.readyErr(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncNow asks for a sync pass with a fresh registry query (like a full resync) and returns
// without waiting for it.
func (s *SD) SyncNow() { s.sync.requestFull() }

// stopLoops cancels the loops and waits for them.
func (s *SD) stopLoops() {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
}

// Drain stops syncing and provisioning; the pool keeps its state.
func (s *SD) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.stopLoops(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops the loops and closes the admin endpoint. Calling it again does nothing.
func (s *SD) Stop(ctx context.Context) error {
	s.stopLoops()
	s.mu.Lock()
	a := s.admin
	s.admin = nil
	s.mu.Unlock()
	if a != nil {
		return a.Shutdown(ctx)
	}
	return nil
}

// Endpoints lists where sd listens.
func (s *SD) Endpoints() []lifecycle.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil {
		return nil
	}
	return []lifecycle.Endpoint{{Name: "admin", Addr: s.admin.URL()}}
}
