// Package rm is the SIP resource manager role: it receives calls from the upstream SIP Server,
// selects an IVR profile, applies policy and routes each call to a media server (mcp) of the
// profile's pool as a transaction-stateful Record-Route proxy. See README.md.
package rm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/lifecycle"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// Defaults.
const (
	// DefaultSIPListen is where rm takes SIP over UDP and TCP.
	DefaultSIPListen = "0.0.0.0:5060"
	// DefaultAdminListen serves /healthz, /readyz and /metrics.
	DefaultAdminListen = "0.0.0.0:8300"
	// DefaultUpstream is the SIP Server that new dialogs started by an mcp go to.
	DefaultUpstream = "127.0.0.1:5090"
	// DefaultUpstreamTransport is the transport towards the upstream SIP Server.
	DefaultUpstreamTransport = gvpsip.UDP
	// DefaultRetryAfter is the Retry-After of 503s sent while draining or with no mcp left.
	DefaultRetryAfter = 30 * time.Second
	// DefaultNodeID is the rm node id written in X-Genesys-GVP-Session-ID.
	DefaultNodeID = "1"
	// DefaultNoProfileResponse answers a call no profile matches.
	DefaultNoProfileResponse = "404"
	// DefaultDialogTimeout ends a dialog that saw no in-dialog request for this long (its BYE
	// was lost), releasing its counters.
	DefaultDialogTimeout = 2 * time.Hour
	// DefaultMaxCalls caps the calls in progress; above it new INVITEs get 503. It bounds
	// memory under a flood.
	DefaultMaxCalls = 100000
	// DefaultMaxMessageSize is the largest SIP message accepted, in bytes.
	DefaultMaxMessageSize = 65535
	// DefaultMaxTCPConnections caps open TCP connections.
	DefaultMaxTCPConnections = 4096
	// DefaultInviteTimeout is how long an mcp has to answer an INVITE (any response, 100
	// included) before rm tries the next member.
	DefaultInviteTimeout = 2 * time.Second
	// DefaultMaxAttempts is the number of mcps an INVITE is tried on.
	DefaultMaxAttempts = 3
)

// Config is the rm section (`rm.*`).
type Config struct {
	SIP   SIPConfig    `mapstructure:"sip"`
	Admin admin.Config `mapstructure:"admin"`
	// Upstream is host:port of the SIP Server for dialogs an mcp starts.
	Upstream string `mapstructure:"upstream"`
	// UpstreamTransport is udp or tcp.
	UpstreamTransport string `mapstructure:"upstream_transport"`
	// RetryAfter is sent with 503 responses.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// NodeID is the node id in X-Genesys-GVP-Session-ID (`;gvp.rm.datanodes=node-id=<id>`).
	NodeID string `mapstructure:"node_id"`
	// NoProfileResponse, `code[;reason]`, answers a call that no profile matches.
	NoProfileResponse string `mapstructure:"no_profile_response"`
	// DialogTimeout ends a dialog idle (no in-dialog request) for this long.
	DialogTimeout time.Duration `mapstructure:"dialog_timeout"`
	// MaxCalls caps the calls in progress.
	MaxCalls int `mapstructure:"max_calls"`
	// StaticConfig, when set, is a file of configuration documents (configsrv's format) used
	// instead of configsrv.
	StaticConfig string `mapstructure:"static_config"`
	// MCP is how calls are sent to media servers.
	MCP MCPConfig `mapstructure:"mcp"`
}

// SIPConfig is the SIP listener.
type SIPConfig struct {
	// Listen is host:port for both UDP and TCP; port 0 lets the kernel choose.
	Listen string `mapstructure:"listen"`
	// Transports are the transports to listen on: udp, tcp.
	Transports []string `mapstructure:"transports"`
	// Advertise is the host put in Via and Record-Route; empty means the listen address (or
	// the host's first non-loopback IPv4 address when listening on all addresses).
	Advertise string `mapstructure:"advertise"`
	// SocketBuffer is the UDP socket buffer size in bytes.
	SocketBuffer int `mapstructure:"socket_buffer"`
	// MaxMessageSize is the largest SIP message accepted, in bytes.
	MaxMessageSize int `mapstructure:"max_message_size"`
	// MaxTCPConnections caps the open TCP connections.
	MaxTCPConnections int `mapstructure:"max_tcp_connections"`
}

// MCPConfig is the routing to media servers.
type MCPConfig struct {
	// InviteTimeout is how long an mcp has to answer an INVITE before the next is tried.
	InviteTimeout time.Duration `mapstructure:"invite_timeout"`
	// MaxAttempts is the number of mcps one INVITE is tried on.
	MaxAttempts int `mapstructure:"max_attempts"`
}

// DefaultConfig returns the defaults of every rm key.
func DefaultConfig() Config {
	return Config{
		SIP: SIPConfig{Listen: DefaultSIPListen, Transports: []string{"udp", "tcp"},
			SocketBuffer: gvpsip.DefaultSocketBuffer, MaxMessageSize: DefaultMaxMessageSize,
			MaxTCPConnections: DefaultMaxTCPConnections},
		Admin:             admin.Config{Listen: DefaultAdminListen},
		Upstream:          DefaultUpstream,
		UpstreamTransport: DefaultUpstreamTransport,
		RetryAfter:        DefaultRetryAfter,
		NodeID:            DefaultNodeID,
		NoProfileResponse: DefaultNoProfileResponse,
		DialogTimeout:     DefaultDialogTimeout,
		MaxCalls:          DefaultMaxCalls,
		MCP:               MCPConfig{InviteTimeout: DefaultInviteTimeout, MaxAttempts: DefaultMaxAttempts},
	}
}

// Validate checks the section; prefix is its key ("rm").
func (c Config) Validate(prefix string) error {
	if err := gvpsip.CheckListen(prefix+".sip", c.SIP.Listen, c.SIP.Transports); err != nil {
		return err
	}
	if c.SIP.MaxMessageSize < 1024 || c.SIP.MaxMessageSize > 1<<20 {
		return config.Errorf(prefix+".sip.max_message_size", "must be between 1024 and 1048576")
	}
	if c.SIP.MaxTCPConnections < 1 {
		return config.Errorf(prefix+".sip.max_tcp_connections", "must be at least 1")
	}
	if err := config.CheckHostPort(prefix+".admin.listen", c.Admin.Listen); err != nil {
		return err
	}
	if err := config.CheckHostPort(prefix+".upstream", c.Upstream); err != nil {
		return err
	}
	if c.UpstreamTransport != "udp" && c.UpstreamTransport != "tcp" {
		return config.Errorf(prefix+".upstream_transport", "unknown transport %q (want udp or tcp)", c.UpstreamTransport)
	}
	if c.RetryAfter < time.Second {
		return config.Errorf(prefix+".retry_after", "must be at least 1s")
	}
	if c.NodeID == "" {
		return config.Errorf(prefix+".node_id", "must not be empty")
	}
	if _, err := confmodel.ParseResponse(c.NoProfileResponse); err != nil {
		return config.Errorf(prefix+".no_profile_response", "%v", err)
	}
	if c.DialogTimeout < time.Minute {
		return config.Errorf(prefix+".dialog_timeout", "must be at least 1m")
	}
	if c.MaxCalls < 1 {
		return config.Errorf(prefix+".max_calls", "must be at least 1")
	}
	if c.MCP.InviteTimeout < 100*time.Millisecond || c.MCP.InviteTimeout > timer64T1 {
		return config.Errorf(prefix+".mcp.invite_timeout", "must be between 100ms and 32s")
	}
	if c.MCP.MaxAttempts < 1 {
		return config.Errorf(prefix+".mcp.max_attempts", "must be at least 1")
	}
	return nil
}

// Deps are what rm needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
	// Config is the source of tenants, profiles, DIDs and pools. Required unless
	// Config.StaticConfig is set (which takes precedence).
	Config ConfigSource
	// Billing receives a CDR at each call's start and end; nil publishes nothing.
	Billing billing.Publisher
}

// RM is the running role.
type RM struct {
	cfg   Config
	deps  Deps
	admin *admin.Server
	lis   *gvpsip.Listeners
	px    *proxy
	wg    sync.WaitGroup
	// emptyConfig is set when no configuration source was given.
	emptyConfig bool
}

// New returns an rm that is not started yet.
func New(cfg Config, deps Deps) (*RM, error) {
	if err := cfg.Validate("rm"); err != nil {
		return nil, err
	}
	if cfg.StaticConfig != "" {
		src, err := LoadStaticConfig(cfg.StaticConfig)
		if err != nil {
			return nil, config.Errorf("rm.static_config", "%v", err)
		}
		deps.Config = src
	}
	empty := false
	if deps.Config == nil {
		// No source wired: rm runs with only the root tenant and rejects every call with
		// no_profile_response until one is given.
		s, err := confmodel.NewSnapshot(0, []confmodel.Object{&confmodel.Tenant{Name: confmodel.RootTenant}})
		if err != nil {
			return nil, err
		}
		deps.Config, empty = NewMemorySource(s), true
	}
	return &RM{cfg: cfg, deps: deps, emptyConfig: empty}, nil
}

// Start binds the SIP listeners and the admin endpoint and starts routing.
func (r *RM) Start(ctx context.Context) error {
	lis, err := gvpsip.Listen(gvpsip.ListenConfig{Addr: r.cfg.SIP.Listen, Transports: r.cfg.SIP.Transports,
		SocketBuffer: r.cfg.SIP.SocketBuffer})
	if err != nil {
		return fmt.Errorf("rm sip: %w", err)
	}
	r.lis = lis
	noRoute, _ := confmodel.ParseResponse(r.cfg.NoProfileResponse)
	uhost, uportStr, _ := net.SplitHostPort(r.cfg.Upstream)
	uport, _ := strconv.Atoi(uportStr)
	ua, err := resolve(ctx, uhost, uport)
	if err != nil {
		lis.Close()
		return fmt.Errorf("rm upstream: %w", err)
	}
	log := r.deps.Log
	if r.emptyConfig {
		log.Warn().Msg("no configuration source: every call is rejected (set rm.static_config or run configsrv)")
	}
	p := &proxy{
		cfg: r.cfg, log: log, host: gvpsip.AdvertiseHost(r.cfg.SIP.Advertise, lis.Addr()), port: int(lis.Addr().Port()),
		stx: newTxTable[*serverTx](), ctx: newTxTable[*clientTx](), retired: newRetiredTable(timer64T1), calls: callTable{m: map[string]*call{}},
		counters: newCounters(), metrics: newMetrics(r.deps.Metrics), source: r.deps.Config, billing: r.deps.Billing,
		done: make(chan struct{}), upstream: peer{proto: r.cfg.UpstreamTransport, addr: ua}, noRoute: noRoute,
		nodeID: r.cfg.NodeID,
	}
	p.hostBytes = []byte(p.host)
	registerTransactions(r.deps.Metrics, p)
	p.rr = map[string]sip.Uri{
		gvpsip.UDP: gvpsip.ElementURI(p.host, p.port, gvpsip.UDP),
		gvpsip.TCP: gvpsip.ElementURI(p.host, p.port, gvpsip.TCP),
	}
	if p.billing != nil {
		p.records = billing.NewQueue(p.billing, log)
	}
	p.pools = newPools(p)
	p.tp = newTransport(lis, r.cfg.SIP.MaxMessageSize, r.cfg.SIP.MaxTCPConnections, log, p.handle, p.onBad)
	p.tp.inPlace = p.onRaw
	r.px = p
	p.pools.update(p.source.Snapshot())
	p.source.OnChange(func(s *confmodel.Snapshot) {
		select {
		case <-p.done:
		default:
			p.pools.update(s)
		}
	})
	p.tp.start()
	r.wg.Add(1)
	go r.sweep()

	if r.deps.Ready != nil {
		s, err := admin.Serve(r.cfg.Admin, r.deps.Ready, r.deps.Metrics, r.deps.Fatal)
		if err != nil {
			r.stopSIP()
			return err
		}
		r.admin = s
	}
	log.Info().Str("sip", lis.Addr().String()).Str("advertise", p.host).Strs("transports", r.cfg.SIP.Transports).Msg("rm routing calls")
	return nil
}

// sweep ends idle dialogs and forgets expired done transactions periodically.
func (r *RM) sweep() {
	defer r.wg.Done()
	every := min(max(r.cfg.DialogTimeout/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	// Done transactions expire to the second.
	d := time.NewTicker(time.Second)
	defer d.Stop()
	for {
		select {
		case <-r.px.done:
			return
		case now := <-t.C:
			r.px.sweepIdle(now)
		case now := <-d.C:
			r.px.retired.expire(now)
		}
	}
}

// Ready is nil once rm routes calls: it has a configuration.
func (r *RM) Ready() error {
	if r.px == nil {
		return errors.New("starting")
	}
	if r.px.source.Snapshot() == nil {
		return errors.New("no configuration yet")
	}
	return nil
}

// Drain makes new INVITEs get 503 with Retry-After and waits until no dialog is active or ctx
// ends. Dialogs in progress continue.
func (r *RM) Drain(ctx context.Context) error {
	if r.px == nil {
		return nil
	}
	r.px.draining.Store(true)
	r.px.log.Info().Int("calls", r.px.inflight.Count()).Msg("draining: waiting for calls to end")
	return r.px.inflight.Wait(ctx)
}

// Stop closes the listeners.
func (r *RM) Stop(ctx context.Context) error {
	r.stopSIP()
	if r.admin != nil {
		return r.admin.Shutdown(ctx)
	}
	return nil
}

func (r *RM) stopSIP() {
	if r.px == nil {
		return
	}
	select {
	case <-r.px.done:
		return
	default:
	}
	close(r.px.done)
	r.px.pools.stopAll()
	r.px.tp.close()
	r.wg.Wait()
	if r.px.records != nil {
		r.px.records.Close()
	}
}

// SIPAddr returns the bound SIP address (UDP and TCP share it).
func (r *RM) SIPAddr() string { return r.lis.Addr().String() }

// ActiveCalls returns the calls in progress.
func (r *RM) ActiveCalls() int { return r.px.calls.len() }

// Endpoints lists where rm listens.
func (r *RM) Endpoints() []lifecycle.Endpoint {
	var eps []lifecycle.Endpoint
	if r.lis != nil {
		for _, t := range r.cfg.SIP.Transports {
			eps = append(eps, lifecycle.Endpoint{Name: "sip/" + t, Addr: r.lis.Addr().String()})
		}
	}
	if r.admin != nil {
		eps = append(eps, lifecycle.Endpoint{Name: "admin", Addr: r.admin.URL()})
	}
	return eps
}
