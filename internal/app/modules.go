package app

import (
	"context"
	"fmt"
	"sync"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/roles/configsrv"
	"github.com/opengvp/gvp/roles/mcp"
	"github.com/opengvp/gvp/roles/rm"
	"github.com/opengvp/gvp/roles/rs"
	"github.com/opengvp/gvp/roles/sd"
)

// Module names. The role names are also the subcommands that run them.
const (
	Broker    = "broker"
	Configsrv = "configsrv"
	RS        = "rs"
	RM        = "rm"
	MCP       = "mcp"
	SD        = "sd"
	// Registry is the service registry client (Consul, or in memory when cluster.consul is
	// empty), shared by the mcp (which registers) and sd (which reads).
	Registry = "registry"
	// Local is the all-in-one target: every role and the embedded broker in one process.
	Local = "local"
)

// App is one gvp process: its configuration and the manager of its modules.
type App struct {
	mu  sync.RWMutex
	cfg *Config
	log zerolog.Logger
	Mgr *lifecycle.Manager
}

// New assembles the modules for cfg.
func New(cfg *Config, log zerolog.Logger) *App {
	a := &App{cfg: cfg, log: log}
	a.Mgr = lifecycle.NewManager(log, a.modules(), admin.NewRegistry)
	return a
}

// Config returns the current configuration.
func (a *App) Config() *Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

// SetConfig replaces the configuration (after a reload); modules apply it in Reload.
func (a *App) SetConfig(c *Config) {
	a.mu.Lock()
	a.cfg = c
	a.mu.Unlock()
}

func (a *App) modules() []*lifecycle.Module {
	return []*lifecycle.Module{
		{
			Name: Broker, Hidden: true,
			Description: "embedded in-process STOMP broker (local mode's stand-in for ActiveMQ)",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				return &embeddedBroker{b: bus.NewBroker(a.Config().Broker.Listen, c.Log)}, nil
			},
		},
		{
			Name: Registry, Hidden: true,
			Description: "service registry client: Consul at cluster.consul, or in memory when empty",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				return newRegistryModule(a.Config().Cluster)
			},
		},
		{
			Name:        Configsrv,
			Description: "configuration server: tenants, IVR profiles, DIDs, MCP pools; HTTP API with change watch",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				cfg := a.Config()
				return configsrv.New(cfg.Configsrv, configsrv.Deps{Common: c, DataDir: cfg.DataDir})
			},
		},
		{
			Name: RS, Deps: []string{Configsrv, Broker},
			Description: "reporting server: stores billing records from the broker, serves /ems-rs/ reports",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				cfg := a.Config()
				return rs.New(cfg.RS, rs.Deps{Common: c, DataDir: cfg.DataDir, Broker: a.brokerAddr(),
					BrokerLogin: cfg.Cluster.BrokerLogin, BrokerPasscode: cfg.Cluster.BrokerPasscode})
			},
		},
		{
			Name: MCP, Deps: []string{Configsrv, Broker}, Requires: []string{Registry},
			Description: "media control platform: answers calls, RTP media, VoiceXML interpreter",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				pub, pubPart := a.publisher("mcp", c.Log)
				reg := &mcpRegistration{}
				m, err := mcp.New(a.Config().MCP, mcp.Deps{Common: c, ConfigsrvURL: a.configsrvURL(),
					Publisher: pub, Deregister: reg.deregister})
				if err != nil {
					return nil, err
				}
				regPart := part{name: "registration", start: func(context.Context) error { return nil },
					stop: reg.deregister}
				return &withParts{Service: m, parts: []part{pubPart, regPart},
					afterStart: func(ctx context.Context) error { return reg.register(ctx, m, a, c) }}, nil
			},
		},
		{
			Name: RM, Deps: []string{Configsrv, Broker, MCP},
			Description: "SIP resource manager: routes calls to media servers (stateful proxy)",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				cfg := a.Config()
				pub, pubPart := a.publisher("rm", c.Log)
				parts := []part{pubPart}
				deps := rm.Deps{Common: c, ConfigsrvURL: a.configsrvURL(), Billing: pub}
				if cfg.RM.StaticConfig == "" {
					cache, cachePart, err := a.configCache("rm", c.Log)
					if err != nil {
						return nil, err
					}
					deps.Config = cache
					parts = append(parts, cachePart)
				}
				r, err := rm.New(cfg.RM, deps)
				if err != nil {
					return nil, err
				}
				return &withParts{Service: r, parts: parts}, nil
			},
		},
		{
			Name: SD, Deps: []string{Configsrv, MCP}, Requires: []string{Registry},
			Description: "service discovery: keeps configsrv's MCP pool in step with the registry",
			Init: func(c lifecycle.Common) (lifecycle.Service, error) {
				cfg := a.Config()
				return sd.New(cfg.SD, sd.Deps{Common: c, ConfigsrvURL: a.configsrvURL(),
					ConfigsrvToken: cfg.Cluster.ConfigsrvToken, Registry: a.registry()})
			},
		},
		{
			Name: Local, Deps: []string{Broker, Registry, Configsrv, RS, MCP, RM, SD},
			Description: "every role in one process with embedded backends (SQLite, in-process broker, in-memory registry)",
		},
	}
}

// configsrvURL is the in-process configsrv's address when it runs here, else the configured one.
func (a *App) configsrvURL() string {
	if s, ok := a.Mgr.Service(Configsrv).(*configsrv.Server); ok {
		return s.URL()
	}
	return a.Config().Cluster.ConfigsrvURL
}

// brokerAddr is the in-process broker's address when it runs here, else the configured one.
func (a *App) brokerAddr() string {
	if b, ok := a.Mgr.Service(Broker).(*embeddedBroker); ok {
		return b.Addr()
	}
	return a.Config().Cluster.Broker
}

// registry returns the process's registry client (started by the Registry module).
func (a *App) registry() discovery.Registry {
	if r, ok := a.Mgr.Service(Registry).(*registryModule); ok {
		return r.reg
	}
	return nil
}

// registryModule owns the registry client for the process's lifetime.
type registryModule struct {
	reg    discovery.Registry
	closer func() error
	where  string
}

func newRegistryModule(c ClusterConfig) (*registryModule, error) {
	if c.Consul == "" {
		// In memory, the registry runs the registered HTTP checks itself, as a Consul agent would.
		m := discovery.NewMemory(discovery.WithHTTPChecks(nil))
		return &registryModule{reg: m, closer: m.Close, where: "memory"}, nil
	}
	cs, err := discovery.NewConsul(c.Consul, discovery.WithConsulToken(c.ConsulToken))
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", c.Consul, err)
	}
	return &registryModule{reg: cs, closer: func() error { return nil }, where: "consul " + c.Consul}, nil
}

func (r *registryModule) Start(context.Context) error { return nil }
func (r *registryModule) Ready() error                { return nil }
func (r *registryModule) Drain(context.Context) error { return nil }
func (r *registryModule) Stop(context.Context) error  { return r.closer() }
func (r *registryModule) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "backend", Addr: r.where}}
}

// embeddedBroker runs bus.Broker, the in-memory STOMP broker, as a module.
type embeddedBroker struct {
	b *bus.Broker
}

func (e *embeddedBroker) Start(context.Context) error {
	if _, err := e.b.Start(); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	return nil
}

func (e *embeddedBroker) Addr() string                { return e.b.Addr() }
func (e *embeddedBroker) Ready() error                { return nil }
func (e *embeddedBroker) Drain(context.Context) error { return nil }
func (e *embeddedBroker) Stop(context.Context) error  { return e.b.Stop() }
func (e *embeddedBroker) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "stomp", Addr: e.Addr()}}
}
