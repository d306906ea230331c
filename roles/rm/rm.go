// Package rm is the SIP resource manager role: it receives calls from the upstream SIP Server,
// selects an IVR profile, applies policy and routes each call to a media server (mcp) of the
// profile's pool as a stateful Record-Route proxy. See README.md.
package rm

import (
	"context"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// Defaults.
const (
	// DefaultSIPListen is where rm takes SIP over UDP and TCP.
	DefaultSIPListen = "0.0.0.0:5060"
	// DefaultAdminListen serves /healthz, /readyz and /metrics.
	DefaultAdminListen = "0.0.0.0:8300"
	// DefaultUpstream is the SIP Server that new dialogs started by an mcp go to.
	DefaultUpstream = "127.0.0.1:5090"
	// DefaultRetryAfter is the Retry-After of 503s sent while draining or with no mcp left.
	DefaultRetryAfter = 30 * time.Second
)

// Config is the rm section (`rm.*`).
type Config struct {
	SIP   SIPConfig    `mapstructure:"sip"`
	Admin admin.Config `mapstructure:"admin"`
	// Upstream is host:port of the SIP Server for dialogs an mcp starts.
	Upstream string `mapstructure:"upstream"`
	// RetryAfter is sent with 503 responses.
	RetryAfter time.Duration `mapstructure:"retry_after"`
}

// SIPConfig is the SIP listener.
type SIPConfig struct {
	// Listen is host:port for both UDP and TCP; port 0 lets the kernel choose.
	Listen string `mapstructure:"listen"`
	// Transports are the transports to listen on: udp, tcp.
	Transports []string `mapstructure:"transports"`
}

// DefaultConfig returns the defaults of every rm key.
func DefaultConfig() Config {
	return Config{
		SIP:        SIPConfig{Listen: DefaultSIPListen, Transports: []string{"udp", "tcp"}},
		Admin:      admin.Config{Listen: DefaultAdminListen},
		Upstream:   DefaultUpstream,
		RetryAfter: DefaultRetryAfter,
	}
}

// Validate checks the section; prefix is its key ("rm").
func (c Config) Validate(prefix string) error {
	if err := config.CheckHostPort(prefix+".sip.listen", c.SIP.Listen); err != nil {
		return err
	}
	if len(c.SIP.Transports) == 0 {
		return config.Errorf(prefix+".sip.transports", "at least one transport is needed")
	}
	for _, t := range c.SIP.Transports {
		if t != "udp" && t != "tcp" {
			return config.Errorf(prefix+".sip.transports", "unknown transport %q (want udp or tcp)", t)
		}
	}
	if err := config.CheckHostPort(prefix+".admin.listen", c.Admin.Listen); err != nil {
		return err
	}
	if err := config.CheckHostPort(prefix+".upstream", c.Upstream); err != nil {
		return err
	}
	if c.RetryAfter < time.Second {
		return config.Errorf(prefix+".retry_after", "must be at least 1s")
	}
	return nil
}

// Deps are what rm needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
}

// RM is the running role.
type RM struct {
	cfg   Config
	deps  Deps
	admin *admin.Server
}

// New returns an rm that is not started yet.
func New(cfg Config, deps Deps) (*RM, error) {
	if err := cfg.Validate("rm"); err != nil {
		return nil, err
	}
	return &RM{cfg: cfg, deps: deps}, nil
}

// Start binds the admin endpoint.
func (r *RM) Start(ctx context.Context) error {
	s, err := admin.Serve(r.cfg.Admin, r.deps.Ready, r.deps.Metrics, r.deps.Fatal)
	if err != nil {
		return err
	}
	r.admin = s
	return nil
}

// Ready is nil once rm routes calls.
func (r *RM) Ready() error { return nil }

// Drain refuses new calls and waits for dialogs in progress.
func (r *RM) Drain(ctx context.Context) error { return nil }

// Stop closes the listeners.
func (r *RM) Stop(ctx context.Context) error {
	if r.admin != nil {
		return r.admin.Shutdown(ctx)
	}
	return nil
}

// Endpoints lists where rm listens.
func (r *RM) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "admin", Addr: r.admin.URL()}}
}
