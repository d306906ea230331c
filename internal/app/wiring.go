package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/buildinfo"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/roles/mcp"
)

// configWaitAtStart is how long a role waits at start for its first configuration snapshot
// before it starts anyway (the cache keeps trying, and a persisted snapshot is used meanwhile).
const configWaitAtStart = 5 * time.Second

// part is a component a role needs, started before the role and stopped after it.
type part struct {
	name  string
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error
}

// withParts runs a role with its parts: parts start in order before the role and stop in
// reverse after it; afterStart runs once the role serves.
type withParts struct {
	lifecycle.Service
	parts      []part
	started    int
	afterStart func(ctx context.Context) error
}

func (w *withParts) Start(ctx context.Context) error {
	for _, p := range w.parts {
		if err := p.start(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		w.started++
	}
	if err := w.Service.Start(ctx); err != nil {
		return err
	}
	if w.afterStart != nil {
		return w.afterStart(ctx)
	}
	return nil
}

func (w *withParts) Stop(ctx context.Context) error {
	errs := []error{w.Service.Stop(ctx)}
	for i := w.started - 1; i >= 0; i-- {
		if p := w.parts[i]; p.stop != nil {
			if err := p.stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (w *withParts) Endpoints() []lifecycle.Endpoint {
	if a, ok := w.Service.(lifecycle.Addresser); ok {
		return a.Endpoints()
	}
	return nil
}

// configCache returns a configsrv cache for a role and the part that runs it. The last good
// snapshot is persisted in data_dir so the role works on it when configsrv is down at start.
func (a *App) configCache(role string, log zerolog.Logger) (*confclient.Cache, part, error) {
	cfg := a.Config()
	client, err := confclient.New(a.configsrvURL(), confclient.WithToken(cfg.Cluster.ConfigsrvToken))
	if err != nil {
		return nil, part{}, fmt.Errorf("configsrv client: %w", err)
	}
	cache := confclient.NewCache(client,
		confclient.WithPersistFile(filepath.Join(cfg.DataDir, role+"-config.json")),
		confclient.WithCacheLogger(log))
	var cancel context.CancelFunc
	done := make(chan struct{})
	p := part{
		name: "configuration cache",
		start: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			go func() {
				defer close(done)
				if err := cache.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					log.Error().Err(err).Msg("configuration cache stopped")
				}
			}()
			wctx, wcancel := context.WithTimeout(ctx, configWaitAtStart)
			defer wcancel()
			if err := cache.WaitReady(wctx); err != nil {
				log.Warn().Str("configsrv", client.Server()).Msg("no configuration yet; starting without it, still trying")
			}
			return nil
		},
		stop: func(context.Context) error {
			cancel()
			<-done
			return nil
		},
	}
	return cache, p, nil
}

// publisher returns the spooled billing publisher of a role (records go to
// data_dir/spool/<role> first, then to the broker) and the part that opens it at start and
// closes it, then its broker connection, at stop.
func (a *App) publisher(role string, log zerolog.Logger) (billing.Publisher, part) {
	cfg := a.Config()
	bc := bus.DefaultConfig()
	bc.Addr = a.brokerAddr()
	bc.Login, bc.Passcode = cfg.Cluster.BrokerLogin, cfg.Cluster.BrokerPasscode
	bc.Logger = log
	lp := &lazyPublisher{}
	p := part{
		name: "billing publisher",
		start: func(context.Context) error {
			client, err := bus.NewClient(bc)
			if err != nil {
				return fmt.Errorf("broker client: %w", err)
			}
			sc := billing.DefaultSpooledConfig(filepath.Join(cfg.DataDir, "spool", role))
			sc.Spool.Logger = log
			pub, err := billing.NewSpooledPublisher(sc, client)
			if err != nil {
				client.Close()
				return fmt.Errorf("billing spool: %w", err)
			}
			lp.pub, lp.client = pub, client
			return nil
		},
		stop: func(context.Context) error {
			err := lp.pub.Close() // sends what it can first
			lp.client.Close()
			return err
		},
	}
	return lp, p
}

// lazyPublisher forwards to the publisher its part opens at start (the role is built before
// its parts start, and publishes only once started).
type lazyPublisher struct {
	pub    *billing.SpooledPublisher
	client *bus.Client
}

func (l *lazyPublisher) Publish(r billing.Record) error { return l.pub.Publish(r) }

func (l *lazyPublisher) PublishBatch(rs []billing.Record) error { return l.pub.PublishBatch(rs) }

// mcpRegistration registers a started mcp in the registry as gvp-mcp and returns the
// deregistration the mcp calls first when it drains.
type mcpRegistration struct {
	reg *discovery.Registrar
}

func (r *mcpRegistration) register(ctx context.Context, m *mcp.MCP, a *App, c lifecycle.Common) error {
	cfg := a.Config()
	transport := "udp"
	if len(cfg.MCP.SIP.Transports) > 0 {
		transport = cfg.MCP.SIP.Transports[0]
	}
	in, err := discovery.MCPInfo{Name: m.Name(), SIPAddr: m.ContactAddr(), ReadyURL: m.AdminURL() + "/readyz",
		Transport: transport, Capacity: cfg.MCP.MaxSessions, Version: buildinfo.Version}.Instance(cfg.SD.Registration)
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	reg := a.registry()
	if reg == nil {
		return errors.New("registration: no registry")
	}
	r.reg, err = discovery.NewRegistrar(reg, in, cfg.SD.Registration.Refresh,
		discovery.WithReadiness(m.Ready), discovery.WithRegistrarLogger(c.Log), discovery.WithRegistrarRegisterer(c.Metrics))
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	if err := r.reg.Register(ctx); err != nil {
		// The registrar keeps retrying: a registry that is down must not stop calls.
		c.Log.Warn().Err(err).Msg("registration failed; retrying")
	}
	return nil
}

func (r *mcpRegistration) deregister(ctx context.Context) error {
	if r.reg == nil {
		return nil
	}
	return r.reg.Deregister(ctx)
}
