// Package mcp is the media control platform role: it answers calls routed by rm, runs their
// media over RTP and their VoiceXML applications, and reports each call's records. See README.md.
package mcp

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// Defaults.
const (
	// DefaultSIPListen is where the mcp takes SIP over UDP and TCP.
	DefaultSIPListen = "0.0.0.0:5070"
	// DefaultAdminListen serves /healthz, /readyz and /metrics.
	DefaultAdminListen = "0.0.0.0:8301"
	// DefaultRTPPortMin and DefaultRTPPortMax bound the RTP/RTCP port pairs of calls.
	DefaultRTPPortMin = 20000
	DefaultRTPPortMax = 45000
	// DefaultMaxSessions is the number of concurrent calls beyond which INVITEs get 503.
	DefaultMaxSessions = 2000
	// DefaultRetryAfter is the Retry-After of 503s sent at capacity or while draining.
	DefaultRetryAfter = 30 * time.Second
)

// Config is the mcp section (`mcp.*`).
type Config struct {
	// Name identifies this instance in records and service discovery; empty means the host name.
	Name  string       `mapstructure:"name"`
	SIP   SIPConfig    `mapstructure:"sip"`
	Admin admin.Config `mapstructure:"admin"`
	RTP   RTPConfig    `mapstructure:"rtp"`
	// MaxSessions caps concurrent calls.
	MaxSessions int `mapstructure:"max_sessions"`
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

// RTPConfig is the media port range.
type RTPConfig struct {
	// Address is the local address RTP binds to and announces in SDP; empty = the SIP address.
	Address string `mapstructure:"address"`
	PortMin int    `mapstructure:"port_min"`
	PortMax int    `mapstructure:"port_max"`
}

// DefaultConfig returns the defaults of every mcp key.
func DefaultConfig() Config {
	return Config{
		SIP:         SIPConfig{Listen: DefaultSIPListen, Transports: []string{"udp", "tcp"}},
		Admin:       admin.Config{Listen: DefaultAdminListen},
		RTP:         RTPConfig{PortMin: DefaultRTPPortMin, PortMax: DefaultRTPPortMax},
		MaxSessions: DefaultMaxSessions,
		RetryAfter:  DefaultRetryAfter,
	}
}

// Validate checks the section; prefix is its key ("mcp").
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
	if c.RTP.PortMin < 1024 || c.RTP.PortMin > 65534 || c.RTP.PortMin%2 != 0 {
		return config.Errorf(prefix+".rtp.port_min", "%d must be an even port from 1024 to 65534", c.RTP.PortMin)
	}
	if c.RTP.PortMax <= c.RTP.PortMin+1 || c.RTP.PortMax > 65535 {
		return config.Errorf(prefix+".rtp.port_max", "%d must be above rtp.port_min+1 and at most 65535", c.RTP.PortMax)
	}
	if c.MaxSessions < 1 {
		return config.Errorf(prefix+".max_sessions", "must be at least 1")
	}
	if c.RetryAfter < time.Second {
		return config.Errorf(prefix+".retry_after", "must be at least 1s")
	}
	return nil
}

// Deps are what the mcp needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
}

// MCP is the running role.
type MCP struct {
	cfg   Config
	deps  Deps
	admin *admin.Server
}

// New returns an mcp that is not started yet.
func New(cfg Config, deps Deps) (*MCP, error) {
	if err := cfg.Validate("mcp"); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	return &MCP{cfg: cfg, deps: deps}, nil
}

// Start binds the listeners.
func (m *MCP) Start(ctx context.Context) error {
	s, err := admin.Serve(m.cfg.Admin, m.deps.Ready, m.deps.Metrics, m.deps.Fatal)
	if err != nil {
		return err
	}
	m.admin = s
	return nil
}

// Ready is nil while the mcp takes calls.
func (m *MCP) Ready() error { return nil }

// Drain refuses new calls and waits for calls in progress.
func (m *MCP) Drain(ctx context.Context) error { return nil }

// Stop closes the listeners.
func (m *MCP) Stop(ctx context.Context) error {
	if m.admin != nil {
		return m.admin.Shutdown(ctx)
	}
	return nil
}

// Endpoints lists where the mcp listens.
func (m *MCP) Endpoints() []lifecycle.Endpoint {
	return []lifecycle.Endpoint{{Name: "admin", Addr: m.admin.URL()}}
}

// String names the instance.
func (m *MCP) String() string { return fmt.Sprintf("mcp %s", m.cfg.Name) }
