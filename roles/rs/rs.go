// Package rs is the reporting server role: it consumes billing records (CDRs) and call events
// from the message broker, stores each exactly once, and serves GVP's reporting web services
// under /ems-rs/ on port 8080. See README.md.
package rs

import (
	"context"
	"net/http"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// Defaults.
const (
	// DefaultListen serves the reporting API and the admin endpoints.
	DefaultListen = "0.0.0.0:8080"
	// DefaultRetention is how long records are kept.
	DefaultRetention = 40 * 24 * time.Hour
)

// Config is the rs section (`rs.*`).
type Config struct {
	// Listen is host:port of the reporting API and admin endpoints.
	Listen string `mapstructure:"listen"`
	// Pprof serves /debug/pprof/ when true.
	Pprof    bool            `mapstructure:"pprof"`
	Database config.Database `mapstructure:"database"`
	// Retention is how long records are kept before the retention job deletes them.
	Retention time.Duration `mapstructure:"retention"`
	// Token, when set, is the bearer token required by the reporting API.
	Token string `mapstructure:"token"`
}

// DefaultConfig returns the defaults of every rs key.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen, Database: config.Database{Driver: config.DriverSQLite}, Retention: DefaultRetention}
}

// Validate checks the section; prefix is its key ("rs").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".listen", c.Listen); err != nil {
		return err
	}
	if c.Retention < time.Hour {
		return config.Errorf(prefix+".retention", "must be at least 1h")
	}
	return c.Database.Validate(prefix + ".database")
}

// Deps are what rs needs from outside.
type Deps struct {
	lifecycle.Common
	// DataDir holds the SQLite database by default.
	DataDir string
	// Broker is the STOMP address records are consumed from.
	Broker string
}

// Server is the running role.
type Server struct {
	cfg  Config
	deps Deps
	http *admin.Server
}

// New returns an rs that is not started yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate("rs"); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Start opens the database, starts consuming and serves the API.
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

// Ready is nil while the database and broker answer.
func (s *Server) Ready() error { return nil }

// Drain finishes the batch in progress.
func (s *Server) Drain(ctx context.Context) error { return nil }

// Stop closes everything.
func (s *Server) Stop(ctx context.Context) error {
	if s.http != nil {
		return s.http.Shutdown(ctx)
	}
	return nil
}

// Endpoints lists where rs listens.
func (s *Server) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "api", Addr: s.http.URL()}}
}
