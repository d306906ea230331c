// Package configsrv is the configuration server role: the source of truth for tenants, IVR
// profiles, DIDs, MCP pools and role settings, served over an HTTP/JSON API on port 8888 with a
// change watch. See README.md and API.md.
package configsrv

import (
	"context"
	"net/http"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
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
	cfg  Config
	deps Deps
	http *admin.Server
}

// New returns a configsrv that is not started yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate("configsrv"); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Start opens the store and serves the API.
func (s *Server) Start(ctx context.Context) error {
	mux := http.NewServeMux()
	admin.Mount(mux, s.deps.Ready, s.deps.Metrics, s.cfg.Pprof)
	h, err := admin.Listen(s.cfg.Listen, mux, s.deps.Fatal)
	if err != nil {
		return err
	}
	s.http = h
	return nil
}

// Ready is nil while the store answers.
func (s *Server) Ready() error { return nil }

// Drain lets requests in progress finish.
func (s *Server) Drain(ctx context.Context) error { return nil }

// Stop closes the API and the store.
func (s *Server) Stop(ctx context.Context) error {
	if s.http != nil {
		return s.http.Shutdown(ctx)
	}
	return nil
}

// URL is the base URL of the API.
func (s *Server) URL() string { return s.http.URL() }

// Endpoints lists where configsrv listens.
func (s *Server) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "api", Addr: s.http.URL()}}
}
