// Package rs is the reporting server role: it consumes billing records (CDRs) and call events
// from the message broker, stores each exactly once, pre-computes daily, weekly and monthly
// aggregates, deletes data past its retention, and serves GVP's reporting web services under
// /ems-rs/ and a small web page on port 8080. See README.md.
package rs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/opengvp/gvp/internal/cdrstore"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults.
const (
	// DefaultListen serves the reporting API, the web page and the admin endpoints.
	DefaultListen = "0.0.0.0:8080"
	// DefaultRetention is how long CDRs, events and aggregates are kept (40 days).
	DefaultRetention = 40 * 24 * time.Hour
	// MinRetention is the shortest retention accepted.
	MinRetention = time.Hour
	// DefaultMaintenanceInterval is the period of the aggregation and retention jobs.
	DefaultMaintenanceInterval = time.Hour
	// DefaultMaintenanceDelay is how long after start the jobs first run.
	DefaultMaintenanceDelay = time.Minute
	// DefaultTimezone sets day, week and month boundaries of reports and aggregates.
	DefaultTimezone = "UTC"
	// DefaultBatchSize is the most records stored in one database transaction.
	DefaultBatchSize = cdrstore.DefaultBatchSize
	// MaxBatchSize caps rs.batch_size.
	MaxBatchSize = 10000
	// DefaultPrefetch is the broker's unacknowledged messages per subscription.
	DefaultPrefetch = bus.DefaultPrefetch
	// SQLiteFile is the database file in data_dir when rs.database.dsn is empty.
	SQLiteFile = "rs.db"
	// maintenanceTimeout bounds one run of the maintenance jobs.
	maintenanceTimeout = 30 * time.Minute
)

// Config is the rs section (`rs.*`).
type Config struct {
	// Listen is host:port of the reporting API, the web page and the admin endpoints.
	Listen string `mapstructure:"listen"`
	// Pprof serves /debug/pprof/ when true.
	Pprof    bool            `mapstructure:"pprof"`
	Database config.Database `mapstructure:"database"`
	// Retention is how long a CDR is kept after its call ended; DefaultRetention.
	Retention time.Duration `mapstructure:"retention"`
	// RetentionEvents is how long a call event is kept; DefaultRetention.
	RetentionEvents time.Duration `mapstructure:"retention_events"`
	// RetentionAggregates is how long a daily, weekly or monthly aggregate is kept after its
	// period ended; DefaultRetention.
	RetentionAggregates time.Duration `mapstructure:"retention_aggregates"`
	// MaintenanceInterval is the period of aggregation and retention; DefaultMaintenanceInterval.
	MaintenanceInterval time.Duration `mapstructure:"maintenance_interval"`
	// MaintenanceDelay is the delay of their first run after start; DefaultMaintenanceDelay.
	MaintenanceDelay time.Duration `mapstructure:"maintenance_delay"`
	// Timezone is an IANA zone name for day/week/month boundaries; DefaultTimezone.
	Timezone string `mapstructure:"timezone"`
	// BatchSize is the most records per database transaction; DefaultBatchSize.
	BatchSize int `mapstructure:"batch_size"`
	// Prefetch is the broker's unacknowledged messages per subscription; DefaultPrefetch.
	Prefetch int `mapstructure:"prefetch"`
	// Token, when set, is the bearer token required by the reporting API and the web page.
	Token string `mapstructure:"token"`
}

// DefaultConfig returns the defaults of every rs key.
func DefaultConfig() Config {
	return Config{
		Listen:              DefaultListen,
		Database:            config.Database{Driver: config.DriverSQLite},
		Retention:           DefaultRetention,
		RetentionEvents:     DefaultRetention,
		RetentionAggregates: DefaultRetention,
		MaintenanceInterval: DefaultMaintenanceInterval,
		MaintenanceDelay:    DefaultMaintenanceDelay,
		Timezone:            DefaultTimezone,
		BatchSize:           DefaultBatchSize,
		Prefetch:            DefaultPrefetch,
	}
}

// Validate checks the section; prefix is its key ("rs").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".listen", c.Listen); err != nil {
		return err
	}
	for key, v := range map[string]time.Duration{
		"retention": c.Retention, "retention_events": c.RetentionEvents, "retention_aggregates": c.RetentionAggregates,
	} {
		if v < MinRetention {
			return config.Errorf(prefix+"."+key, "must be at least %v", MinRetention)
		}
	}
	if c.MaintenanceInterval < time.Minute {
		return config.Errorf(prefix+".maintenance_interval", "must be at least 1m")
	}
	if c.MaintenanceDelay < 0 {
		return config.Errorf(prefix+".maintenance_delay", "must not be negative")
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		return config.Errorf(prefix+".timezone", "unknown time zone %q (want an IANA name such as UTC or Europe/Paris)", c.Timezone)
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		return config.Errorf(prefix+".batch_size", "must be between 1 and %d", MaxBatchSize)
	}
	if c.Prefetch < 1 {
		return config.Errorf(prefix+".prefetch", "must be at least 1")
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
	// BrokerLogin and BrokerPasscode authenticate to the broker; empty for none
	// (cluster.broker_login, cluster.broker_passcode).
	BrokerLogin, BrokerPasscode string
	// Clock returns the current time; time.Now when nil (tests inject one).
	Clock func() time.Time
}

// Server is the running role.
type Server struct {
	cfg   Config
	deps  Deps
	loc   *time.Location
	now   func() time.Time
	store *cdrstore.SQLStore
	cons  *cdrstore.Consumer
	maint *maintenance
	http  *admin.Server

	consCancel context.CancelFunc
	consDone   chan struct{}
	maintStop  context.CancelFunc
	maintDone  chan struct{}
	stopOnce   sync.Once
}

// New returns an rs that is not started yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate("rs"); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("rs.timezone: %w", err)
	}
	if deps.Ready == nil {
		deps.Ready = func() error { return nil }
	}
	s := &Server{cfg: cfg, deps: deps, loc: loc, now: deps.Clock}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Start opens the database (applying migrations), starts consuming and the maintenance jobs,
// and serves the API. A database that cannot be opened fails the start.
func (s *Server) Start(ctx context.Context) error {
	store, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	s.store = store
	cons, err := cdrstore.NewConsumer(cdrstore.ConsumerConfig{
		Broker: bus.Config{Addr: s.deps.Broker, Login: s.deps.BrokerLogin, Passcode: s.deps.BrokerPasscode,
			Logger: s.deps.Log.With().Str("component", "broker").Logger()},
		BatchSize:  s.cfg.BatchSize,
		Prefetch:   s.cfg.Prefetch,
		Registerer: s.registerer(),
		Logger:     s.deps.Log.With().Str("component", "consumer").Logger(),
	}, store)
	if err != nil {
		return fmt.Errorf("cdr consumer: %w", err)
	}
	s.cons = cons
	s.maint, err = newMaintenance(s.cfg, store, s.loc, s.now, s.deps.Log.With().Str("component", "maintenance").Logger(),
		s.registerer())
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	admin.Mount(mux, s.deps.Ready, s.gatherer(), s.cfg.Pprof)
	api := &API{Store: store, Token: s.cfg.Token, Location: s.loc, Now: s.now}
	api.Register(mux)
	ui := &UI{API: api, Ready: s.deps.Ready}
	ui.Register(mux)
	h, err := admin.Listen(s.cfg.Listen, mux, s.deps.Fatal)
	if err != nil {
		return err
	}
	s.http = h

	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.consCancel, s.consDone = cancel, make(chan struct{})
	go func() {
		defer close(s.consDone)
		_ = cons.Run(cctx)
	}()
	mctx, mcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.maintStop, s.maintDone = mcancel, make(chan struct{})
	go func() {
		defer close(s.maintDone)
		s.maint.loop(mctx, s.cfg.MaintenanceDelay, s.cfg.MaintenanceInterval)
	}()
	return nil
}

func (s *Server) openStore(ctx context.Context) (*cdrstore.SQLStore, error) {
	switch s.cfg.Database.Driver {
	case config.DriverPostgres:
		st, err := cdrstore.OpenPostgres(ctx, s.cfg.Database.DSN)
		if err != nil {
			return nil, fmt.Errorf("rs database: %w", err)
		}
		return st, nil
	default:
		path := s.cfg.Database.Resolve(s.deps.DataDir, SQLiteFile)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("rs database folder: %w", err)
		}
		st, err := cdrstore.OpenSQLiteFile(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("rs database: %w", err)
		}
		return st, nil
	}
}

// registerer is Deps.Metrics, or nil (register nothing) without one.
func (s *Server) registerer() prometheus.Registerer {
	if s.deps.Metrics == nil {
		return nil
	}
	return s.deps.Metrics
}

// gatherer serves /metrics: Deps.Metrics, or an empty registry without one.
func (s *Server) gatherer() prometheus.Gatherer {
	if s.deps.Metrics == nil {
		return prometheus.NewRegistry()
	}
	return s.deps.Metrics
}

// Ready is nil while records flow from the broker into the database; otherwise the reason,
// e.g. "database unavailable: ..." or "broker unavailable: ...".
func (s *Server) Ready() error {
	if s.cons == nil {
		return errors.New("starting")
	}
	return s.cons.Ready()
}

// Consumer returns the record consumer (for its counters); nil before Start.
func (s *Server) Consumer() *cdrstore.Consumer { return s.cons }

// Store returns the database; nil before Start.
func (s *Server) Store() *cdrstore.SQLStore { return s.store }

// Drain stops consuming once the batch in progress is stored and acknowledged. The reporting
// API keeps serving until Stop.
func (s *Server) Drain(ctx context.Context) error {
	if s.consCancel == nil {
		return nil
	}
	s.consCancel()
	select {
	case <-s.consDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rs drain: %w", ctx.Err())
	}
}

// Stop finishes the batch in progress, stops the maintenance jobs and the API, and closes the
// database.
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	s.stopOnce.Do(func() {
		if err := s.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
		if s.maintStop != nil {
			s.maintStop()
			select {
			case <-s.maintDone:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("rs maintenance did not stop: %w", ctx.Err()))
			}
		}
		if s.http != nil {
			if err := s.http.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close rs database: %w", err))
			}
		}
	})
	return errors.Join(errs...)
}

// URL is the base URL of the API ("http://host:port"); empty before Start.
func (s *Server) URL() string {
	if s.http == nil {
		return ""
	}
	return s.http.URL()
}

// Endpoints lists where rs listens.
func (s *Server) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "api", Addr: s.URL()}}
}
