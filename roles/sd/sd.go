// Package sd is the service discovery role: it keeps configsrv's MCP pool in step with the mcps
// registered in the service registry (Consul in production, in memory in local mode) and
// provisions tenants from an inventory folder. See README.md.
package sd

import (
	"context"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// Defaults.
const (
	// DefaultAdminListen serves /healthz, /readyz and /metrics.
	DefaultAdminListen = "0.0.0.0:8302"
	// DefaultPool is the configsrv pool that registered mcps are added to.
	DefaultPool = "MCP_LRG"
	// DefaultResync is the interval of full resyncs besides the registry's change notifications.
	DefaultResync = 60 * time.Second
)

// Config is the sd section (`sd.*`).
type Config struct {
	Admin admin.Config `mapstructure:"admin"`
	// Pool receives the registered mcps.
	Pool string `mapstructure:"pool"`
	// Resync is the full resync interval.
	Resync time.Duration `mapstructure:"resync"`
	// InventoryDir holds one JSON file per tenant to provision; empty disables provisioning.
	InventoryDir string `mapstructure:"inventory_dir"`
}

// DefaultConfig returns the defaults of every sd key.
func DefaultConfig() Config {
	return Config{Admin: admin.Config{Listen: DefaultAdminListen}, Pool: DefaultPool, Resync: DefaultResync}
}

// Validate checks the section; prefix is its key ("sd").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".admin.listen", c.Admin.Listen); err != nil {
		return err
	}
	if c.Pool == "" {
		return config.Errorf(prefix+".pool", "must not be empty")
	}
	if c.Resync < time.Second {
		return config.Errorf(prefix+".resync", "must be at least 1s")
	}
	return nil
}

// Deps are what sd needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
}

// SD is the running role.
type SD struct {
	cfg   Config
	deps  Deps
	admin *admin.Server
}

// New returns an sd that is not started yet.
func New(cfg Config, deps Deps) (*SD, error) {
	if err := cfg.Validate("sd"); err != nil {
		return nil, err
	}
	return &SD{cfg: cfg, deps: deps}, nil
}

// Start binds the admin endpoint.
func (s *SD) Start(ctx context.Context) error {
	a, err := admin.Serve(s.cfg.Admin, s.deps.Ready, s.deps.Metrics, s.deps.Fatal)
	if err != nil {
		return err
	}
	s.admin = a
	return nil
}

// Ready is nil while sync works.
func (s *SD) Ready() error { return nil }

// Drain stops syncing.
func (s *SD) Drain(ctx context.Context) error { return nil }

// Stop closes the admin endpoint.
func (s *SD) Stop(ctx context.Context) error {
	if s.admin != nil {
		return s.admin.Shutdown(ctx)
	}
	return nil
}

// Endpoints lists where sd listens.
func (s *SD) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "admin", Addr: s.admin.URL()}}
}
