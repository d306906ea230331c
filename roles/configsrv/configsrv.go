// Package configsrv is the configuration server role: the source of truth for tenants, IVR
// profiles, DIDs, MCP pools and role settings, served over an HTTP/JSON API on port 8888 with a
// change watch. See README.md and API.md.
package configsrv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// DefaultListen serves the API and the admin endpoints.
const DefaultListen = "0.0.0.0:8888"

// Config is the configsrv section (`configsrv.*`).
type Config struct {
	// Listen is host:port of the API and admin endpoints.
	Listen string `mapstructure:"listen"`
	// Pprof serves /debug/pprof/ when true.
	Pprof    bool            `mapstructure:"pprof"`
	Database config.Database `mapstructure:"database"`
	// Token, when set, is the bearer token required for writes.
	Token string `mapstructure:"token"`
	// ReadToken, when set, is also required for reads (the write token is accepted too).
	ReadToken string `mapstructure:"read_token"`
	// SeedDemo writes the demo configuration (tenant t100, profile IVRAppDefault playing the
	// bundled hello-world application, DID 5551000, pool MCP_LRG) into an empty store at start.
	// `gvp local` turns it on.
	SeedDemo bool `mapstructure:"seed_demo"`
}

// DefaultConfig returns the defaults of every configsrv key.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, Database: config.Database{Driver: config.DriverSQLite}}
}

// Validate checks the section; prefix is its key ("configsrv").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".listen", c.Listen); err != nil {
		return err
	}
	return c.Database.Validate(prefix + ".database")
}

// Deps are what configsrv needs from outside.
type Deps struct {
	lifecycle.Common
	// DataDir holds the SQLite database by default.
	DataDir string
}

// Server is the running role.
type Server struct {
	cfg   Config
	deps  Deps
	store confstore.Store
	http  *admin.Server
}

// New returns a configsrv that is not started yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate("configsrv"); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Start opens the store (migrating its schema), seeds the demo when asked, and serves the API.
func (s *Server) Start(ctx context.Context) error {
	st, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	s.store = st
	if s.cfg.SeedDemo {
		if err := s.seedDemo(ctx); err != nil {
			return err
		}
	}
	opts := []APIOption{WithAPILogger(s.deps.Log), WithAPIRegisterer(s.deps.Metrics)}
	switch {
	case s.cfg.ReadToken != "" && s.cfg.Token == "":
		return config.Errorf("configsrv.read_token", "needs configsrv.token as well")
	case s.cfg.Token != "":
		opts = append(opts, WithToken(s.cfg.Token))
		if s.cfg.ReadToken != "" {
			opts = append(opts, WithAuthenticatedReads())
		}
	}
	mux := http.NewServeMux()
	admin.Mount(mux, s.deps.Ready, s.deps.Metrics, s.cfg.Pprof)
	mux.Handle("/api/", NewAPI(st, opts...))
	h, err := admin.Listen(s.cfg.Listen, mux, s.deps.Fatal)
	if err != nil {
		return err
	}
	s.http = h
	return nil
}

func (s *Server) openStore(ctx context.Context) (confstore.Store, error) {
	dsn := s.cfg.Database.Resolve(s.deps.DataDir, "configsrv.db")
	logOpt := confstore.WithLogger(s.deps.Log)
	switch s.cfg.Database.Driver {
	case config.DriverPostgres:
		st, err := confstore.OpenPostgres(ctx, dsn, logOpt)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return st, nil
	default:
		if err := os.MkdirAll(filepath.Dir(dsn), 0o755); err != nil {
			return nil, fmt.Errorf("sqlite store folder: %w", err)
		}
		st, err := confstore.OpenSQLite(ctx, dsn, logOpt)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", dsn, err)
		}
		return st, nil
	}
}

// seedDemo fills an empty store with the demo configuration. Its MCP pool starts empty: the
// local mcp joins it through service discovery, as in production.
func (s *Server) seedDemo(ctx context.Context) error {
	objs, _, err := s.store.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	for _, o := range objs {
		if o.Kind() != confmodel.KindTenant || o.Key() != confmodel.RootTenant {
			return nil // not empty: never overwrite an operator's configuration
		}
	}
	page, err := writeDemoApp(s.deps.DataDir)
	if err != nil {
		return err
	}
	demo, err := confmodel.DemoObjects(confmodel.DemoConfig{InitialPage: page})
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	var changes []confstore.Change
	for _, o := range demo {
		if o.Kind() == confmodel.KindMCP {
			continue
		}
		changes = append(changes, confstore.Put(o))
	}
	res, err := s.store.Apply(ctx, changes, confstore.ApplyOptions{})
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	s.deps.Log.Info().Int64("revision", res.Revision).Str("initial_page", page).Msg("seeded the demo configuration")
	return nil
}

// Ready is nil while the store answers.
func (s *Server) Ready() error {
	if s.store == nil {
		return errors.New("store not open")
	}
	return nil
}

// Drain lets requests in progress finish.
func (s *Server) Drain(ctx context.Context) error { return nil }

// Stop closes the API, then the store (which ends the watches in progress).
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	if s.store != nil {
		// Closing the store first wakes long-poll watchers, so the HTTP shutdown need not wait
		// for their timeouts.
		errs = append(errs, s.store.Close())
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// URL is the base URL of the API.
func (s *Server) URL() string { return s.http.URL() }

// Endpoints lists where configsrv listens.
func (s *Server) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "api", Addr: s.http.URL()}}
}
