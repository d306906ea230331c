// Package mcp is the media control platform role: it answers calls routed by rm, runs their
// media over RTP and their services (RFC 4240 announcements, RFC 5552 VoiceXML dialogs), and
// reports each call's records. See README.md.
package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/internal/logging"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	gvpsip "github.com/opengvp/gvp/internal/sip"
	"github.com/opengvp/gvp/internal/tts"
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
	// DefaultSessionExpires is the RFC 4028 session interval the mcp asks for or accepts at
	// most (30 minutes); 0 disables session timers.
	DefaultSessionExpires = 30 * time.Minute
	// DefaultMinSE is the smallest session interval accepted (RFC 4028's floor, 90 s); smaller
	// requests get 422 with Min-SE.
	DefaultMinSE = 90 * time.Second
	// DefaultRTPTimeout ends a call with BYE when no RTP arrived for this long while the
	// caller is meant to send (not on hold); 0 disables the check.
	DefaultRTPTimeout = 60 * time.Second
	// minTimer is the smallest accepted session-timer and RTP-timeout value.
	minTimer = time.Second
)

// Config is the mcp section (`mcp.*`).
type Config struct {
	// Name identifies this instance in records and service discovery; empty means the host name.
	Name  string       `mapstructure:"name"`
	SIP   SIPConfig    `mapstructure:"sip"`
	Admin admin.Config `mapstructure:"admin"`
	RTP   RTPConfig    `mapstructure:"rtp"`
	// MaxSessions caps concurrent calls; beyond it INVITEs get 503 and /readyz says "at
	// capacity". Default DefaultMaxSessions.
	MaxSessions int `mapstructure:"max_sessions"`
	// RetryAfter is sent with 503 responses. Default 30 s.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// Answer controls how INVITEs are answered.
	Answer AnswerConfig `mapstructure:"answer"`
	// SessionTimer is RFC 4028.
	SessionTimer SessionTimerConfig `mapstructure:"session_timer"`
	// RTPTimeout ends calls whose caller sends no RTP for this long; 0 disables. Default 60 s.
	RTPTimeout time.Duration `mapstructure:"rtp_timeout"`
	// FetchTimeout bounds loading an announcement's audio. Default 10 s.
	FetchTimeout time.Duration `mapstructure:"fetch_timeout"`
	// VoiceXML configures the VoiceXML runtime (fetching, TTS).
	VoiceXML VoiceXMLConfig `mapstructure:"vxml"`
	// Transfer configures the outbound leg of bridge transfers.
	Transfer TransferConfig `mapstructure:"transfer"`
}

// TransferConfig configures bridge transfers (VoiceXML <transfer type="bridge">).
type TransferConfig struct {
	// Proxy is the host:port the outbound INVITE of a bridge transfer is sent to (as a loose
	// route, the Request-URI staying the destination): rm, which routes mcp-originated calls
	// to its upstream SIP Server. Empty (the default) sends the INVITE to the destination.
	Proxy string `mapstructure:"proxy"`
	// Ringback is the tone the caller hears while the callee rings (180) and sends no early
	// media, unless the document gives a transferaudio: us, eu, uk (media.Ringbacks) or none.
	Ringback string `mapstructure:"ringback"`
}

// DefaultRingback is mcp.transfer.ringback's default.
const DefaultRingback = "us"

// VoiceXMLConfig configures fetching and speech for VoiceXML applications and announcements.
type VoiceXMLConfig struct {
	// AllowFile permits file:// URLs for documents and audio. Off by default: an application
	// could otherwise read local files; `gvp local` turns it on for its bundled demo.
	AllowFile bool `mapstructure:"allow_file"`
	// FetchCacheBytes bounds the shared HTTP cache of documents, grammars and audio.
	FetchCacheBytes int64 `mapstructure:"fetch_cache_bytes"`
	// TTSEngine is "espeak" (espeak-ng when installed, else timed silence) or "none".
	TTSEngine string `mapstructure:"tts_engine"`
	// TTSLang is the default language of text prompts.
	TTSLang string `mapstructure:"tts_lang"`
	// Allow, when not empty, restricts fetch targets to these hosts ("*.example.com"), IPs
	// or CIDRs; Deny lists targets never fetched (checked on every redirect and on the
	// resolved address), so an application cannot reach what the operator closes off.
	Allow []string `mapstructure:"allow"`
	Deny  []string `mapstructure:"deny"`
}

// SIPConfig is the SIP listener.
type SIPConfig struct {
	// Listen is host:port for both UDP and TCP; port 0 lets the kernel choose.
	Listen string `mapstructure:"listen"`
	// Transports are the transports to listen on: udp, tcp.
	Transports []string `mapstructure:"transports"`
	// Advertise is the host put in Contact and Via; empty means the listen IP, or the
	// host's first non-loopback IPv4 address when listening on all addresses.
	Advertise string `mapstructure:"advertise"`
}

// RTPConfig is the media port range.
type RTPConfig struct {
	// Address is the local address RTP binds to and announces in SDP; empty = the SIP address.
	Address string `mapstructure:"address"`
	PortMin int    `mapstructure:"port_min"`
	PortMax int    `mapstructure:"port_max"`
	// WorkerNice is the nice value of the media scheduler's threads (Linux): -10 by default, so
	// that RTP keeps its 20 ms pace on a busy host; it needs CAP_SYS_NICE, without which the
	// threads keep the process's priority (logged once). 0 leaves them alone.
	WorkerNice int `mapstructure:"worker_nice"`
}

// DefaultWorkerNice is mcp.rtp.worker_nice's default.
const DefaultWorkerNice = -10

// AnswerConfig shapes the answer to an INVITE.
type AnswerConfig struct {
	// Provisional is the provisional response sent before 200: 0 (none, the default), 180
	// (Ringing) or 183 (Session Progress, with the SDP answer).
	Provisional int `mapstructure:"provisional"`
	// Delay is the wait between the provisional response and the 200. Default 0.
	Delay time.Duration `mapstructure:"delay"`
}

// SessionTimerConfig is RFC 4028.
type SessionTimerConfig struct {
	// Expires is the session interval asked for, and the most accepted; 0 disables session
	// timers. Default 30 min.
	Expires time.Duration `mapstructure:"expires"`
	// MinSE is the smallest session interval accepted. Default 90 s (RFC 4028's floor).
	MinSE time.Duration `mapstructure:"min_se"`
}

// DefaultConfig returns the defaults of every mcp key.
func DefaultConfig() Config {
	return Config{
		SIP:          SIPConfig{Listen: DefaultSIPListen, Transports: []string{"udp", "tcp"}},
		Admin:        admin.Config{Listen: DefaultAdminListen},
		RTP:          RTPConfig{PortMin: DefaultRTPPortMin, PortMax: DefaultRTPPortMax, WorkerNice: DefaultWorkerNice},
		MaxSessions:  DefaultMaxSessions,
		RetryAfter:   DefaultRetryAfter,
		SessionTimer: SessionTimerConfig{Expires: DefaultSessionExpires, MinSE: DefaultMinSE},
		RTPTimeout:   DefaultRTPTimeout,
		FetchTimeout: DefaultFetchTimeout,
		Transfer:     TransferConfig{Ringback: DefaultRingback},
		VoiceXML: VoiceXMLConfig{FetchCacheBytes: fetch.DefaultCacheBytes, TTSEngine: tts.DefaultConfig().Engine,
			TTSLang: tts.DefaultConfig().Lang, Allow: []string{}, Deny: append([]string(nil), fetch.DefaultDeny...)},
	}
}

// Validate checks the section; prefix is its key ("mcp").
func (c Config) Validate(prefix string) error {
	if err := gvpsip.CheckListen(prefix+".sip", c.SIP.Listen, c.SIP.Transports); err != nil {
		return err
	}
	if err := config.CheckHostPort(prefix+".admin.listen", c.Admin.Listen); err != nil {
		return err
	}
	if c.RTP.Address != "" {
		if _, err := netip.ParseAddr(c.RTP.Address); err != nil {
			return config.Errorf(prefix+".rtp.address", "%q is not an IP address", c.RTP.Address)
		}
	}
	if c.RTP.PortMin < 1024 || c.RTP.PortMin > 65534 || c.RTP.PortMin%2 != 0 {
		return config.Errorf(prefix+".rtp.port_min", "%d must be an even port from 1024 to 65534", c.RTP.PortMin)
	}
	if c.RTP.PortMax <= c.RTP.PortMin+1 || c.RTP.PortMax > 65535 {
		return config.Errorf(prefix+".rtp.port_max", "%d must be above rtp.port_min+1 and at most 65535", c.RTP.PortMax)
	}
	if c.RTP.WorkerNice < -20 || c.RTP.WorkerNice > 19 {
		return config.Errorf(prefix+".rtp.worker_nice", "%d must be from -20 to 19", c.RTP.WorkerNice)
	}
	if c.MaxSessions < 1 {
		return config.Errorf(prefix+".max_sessions", "must be at least 1")
	}
	if c.RetryAfter < time.Second {
		return config.Errorf(prefix+".retry_after", "must be at least 1s")
	}
	if p := c.Answer.Provisional; p != 0 && p != 180 && p != 183 {
		return config.Errorf(prefix+".answer.provisional", "%d: want 0, 180 or 183", p)
	}
	if c.Answer.Delay < 0 || c.Answer.Delay > time.Minute {
		return config.Errorf(prefix+".answer.delay", "must be from 0 to 1m")
	}
	if c.Answer.Delay > 0 && c.Answer.Provisional == 0 {
		return config.Errorf(prefix+".answer.delay", "needs answer.provisional (180 or 183)")
	}
	st := c.SessionTimer
	if st.Expires != 0 && (st.Expires < minTimer || st.Expires%time.Second != 0) {
		return config.Errorf(prefix+".session_timer.expires", "must be 0 or whole seconds, at least 1s")
	}
	if st.MinSE < minTimer || st.MinSE%time.Second != 0 || (st.Expires != 0 && st.MinSE > st.Expires) {
		return config.Errorf(prefix+".session_timer.min_se", "must be whole seconds from 1s to session_timer.expires")
	}
	if c.RTPTimeout != 0 && c.RTPTimeout < minTimer {
		return config.Errorf(prefix+".rtp_timeout", "must be 0 (off) or at least 1s")
	}
	if c.VoiceXML.FetchCacheBytes < 0 {
		return config.Errorf(prefix+".vxml.fetch_cache_bytes", "must not be negative")
	}
	fc := fetch.DefaultConfig()
	fc.Policy.Allow, fc.Policy.Deny = c.VoiceXML.Allow, c.VoiceXML.Deny
	if err := fc.Validate(); err != nil {
		return config.Errorf(prefix+".vxml.allow/deny", "%v", err)
	}
	if c.VoiceXML.TTSEngine != "espeak" && c.VoiceXML.TTSEngine != "none" {
		return config.Errorf(prefix+".vxml.tts_engine", "unknown engine %q (want espeak or none)", c.VoiceXML.TTSEngine)
	}
	if c.FetchTimeout < 100*time.Millisecond {
		return config.Errorf(prefix+".fetch_timeout", "must be at least 100ms")
	}
	if r := c.Transfer.Ringback; !strings.EqualFold(r, "none") {
		if _, ok := media.LookupRingback(r); !ok {
			return config.Errorf(prefix+".transfer.ringback", "%q: want one of %s, or none", r, media.RingbackNames())
		}
	}
	if p := c.Transfer.Proxy; p != "" {
		if err := config.CheckHostPort(prefix+".transfer.proxy", p); err != nil {
			return err
		}
		if host, port, _ := net.SplitHostPort(p); host == "" || port == "0" {
			return config.Errorf(prefix+".transfer.proxy", "%q needs a host and a non-zero port", p)
		}
	}
	return nil
}

// Deps are what the mcp needs from outside.
type Deps struct {
	lifecycle.Common
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string
	// Publisher receives the CDRs (one in_progress at answer, one completed at the end; a
	// single completed one for a rejected INVITE). Nil logs them at debug level.
	Publisher billing.Publisher
	// VoiceXML runs `sip:dialog@...;voicexml=URL` calls. Nil answers them, logs that no
	// runner is wired and hangs up after 2 s.
	VoiceXML Application
	// Audio loads announcement prompts. Nil uses the built-in file:// and http(s):// WAV
	// loader with a shared in-memory cache.
	Audio AudioLoader
	// Deregister, when set, is called first by Drain (e.g. removing the mcp from the service
	// registry) so no new call is routed here while calls in progress finish.
	Deregister func(ctx context.Context) error
}

// MCP is the running role.
type MCP struct {
	cfg  Config
	deps Deps
	log  zerolog.Logger

	metrics *metrics
	engine  *media.Engine
	negCfg  sdpneg.Config
	mediaIP netip.Addr
	// ringback is played to a bridge transfer's caller while the callee rings; nil for none.
	ringback *media.Tone
	audio    AudioLoader
	vxml     Application
	// vxmlMetrics are the VoiceXML application metrics (nil with Deps.VoiceXML).
	vxmlMetrics *vxmlMetrics

	lis     *gvpsip.Listeners
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialer  *sipgo.DialogClientCache
	host    string
	port    int
	udpAddr sip.Addr
	serve   context.CancelFunc
	served  chan struct{}
	admin   *admin.Server

	mu       sync.Mutex
	calls    map[string]*Call
	active   atomic.Int64
	draining atomic.Bool
	inflight lifecycle.Inflight

	// onDigitHook, when set (tests), sees every digit received.
	onDigitHook func(c *Call, d rune, method string)
}

// New returns an mcp that is not started yet.
func New(cfg Config, deps Deps) (*MCP, error) {
	if err := cfg.Validate("mcp"); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	m := &MCP{cfg: cfg, deps: deps, log: deps.Log, calls: map[string]*Call{}, negCfg: sdpneg.DefaultConfig()}
	if t, ok := media.LookupRingback(cfg.Transfer.Ringback); ok {
		m.ringback = &t
	}
	if m.deps.Publisher == nil {
		m.deps.Publisher = billing.LogPublisher{Log: deps.Log}
	}
	m.audio = deps.Audio
	return m, nil
}

// Start binds the SIP listeners, the media engine and the admin endpoints.
func (m *MCP) Start(ctx context.Context) error {
	met, err := newMetrics(m.deps.Metrics)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	m.metrics = met
	met.capacity.Set(float64(m.cfg.MaxSessions))
	if err := m.startVoiceXML(); err != nil {
		return err
	}

	lis, err := gvpsip.Listen(gvpsip.ListenConfig{Addr: m.cfg.SIP.Listen, Transports: m.cfg.SIP.Transports})
	if err != nil {
		return fmt.Errorf("sip listen: %w", err)
	}
	m.lis = lis
	m.host = gvpsip.AdvertiseHost(m.cfg.SIP.Advertise, lis.Addr())
	m.port = int(lis.Addr().Port())
	if lis.UDP != nil {
		ua := lis.UDP.LocalAddr().(*net.UDPAddr)
		m.udpAddr = sip.Addr{IP: ua.IP, Port: ua.Port}
	}

	if err := m.startMedia(); err != nil {
		lis.Close()
		return err
	}

	slogger := slog.New(logging.NewSlogHandler(m.log.With().Str("component", "sip").Logger()))
	ua, err := gvpsip.NewUA("gvp-mcp", m.host,
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)))
	if err != nil {
		m.engine.Close()
		lis.Close()
		return fmt.Errorf("sip user agent: %w", err)
	}
	m.ua = ua
	m.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err == nil {
		m.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(m.host), sipgo.WithClientPort(m.port), sipgo.WithClientLogger(slogger))
	}
	if err != nil {
		ua.Close()
		m.engine.Close()
		lis.Close()
		return fmt.Errorf("sip server: %w", err)
	}
	m.dialer = sipgo.NewDialogClientCache(m.client, sip.ContactHeader{Address: m.contactURI("udp")})
	m.srv.OnInvite(m.onInvite)
	m.srv.OnAck(m.onAckRequest)
	m.srv.OnBye(m.onBye)
	m.srv.OnCancel(m.onCancel)
	m.srv.OnOptions(m.onOptions)
	m.srv.OnInfo(m.onInfo)
	m.srv.OnUpdate(m.onUpdate)
	m.srv.OnNotify(m.onNotify)

	sctx, cancel := context.WithCancel(context.Background())
	m.serve, m.served = cancel, make(chan struct{})
	go func() {
		defer close(m.served)
		if err := gvpsip.Serve(sctx, m.srv, lis); err != nil && m.deps.Fatal != nil {
			m.deps.Fatal(fmt.Errorf("sip server: %w", err))
		}
	}()

	if lis.UDP != nil {
		if err := gvpsip.WaitServing(ua, lis.UDP.LocalAddr().String()); err != nil {
			m.stopSIP()
			return err
		}
	}
	ready := m.deps.Ready
	if ready == nil {
		ready = m.Ready
	}
	s, err := admin.Serve(m.cfg.Admin, ready, m.deps.Metrics, m.deps.Fatal)
	if err != nil {
		m.stopSIP()
		return err
	}
	m.admin = s
	m.log.Info().Str("sip", lis.Addr().String()).Str("advertise", m.host).Str("media_ip", m.mediaIP.String()).
		Int("max_sessions", m.cfg.MaxSessions).Msg("mcp listening")
	return nil
}

func (m *MCP) startMedia() error {
	ecfg := media.DefaultConfig()
	ecfg.PortMin, ecfg.PortMax = m.cfg.RTP.PortMin, m.cfg.RTP.PortMax
	ecfg.WorkerNice = m.cfg.RTP.WorkerNice
	ecfg.Logger = m.log.With().Str("component", "media").Logger()
	if m.deps.Metrics != nil {
		ecfg.Registerer = m.deps.Metrics
	}
	bind := m.cfg.RTP.Address
	if bind == "" {
		bind = m.lis.Addr().Addr().Unmap().String()
	}
	ip, err := netip.ParseAddr(bind)
	if err != nil {
		return fmt.Errorf("rtp address %q: %w", bind, err)
	}
	ecfg.BindAddr = ip
	m.mediaIP = ip
	if ip.IsUnspecified() {
		adv, err := netip.ParseAddr(m.host)
		if err != nil {
			adv = netip.MustParseAddr("127.0.0.1")
		}
		m.mediaIP = adv
	}
	eng, err := media.NewEngine(ecfg)
	if err != nil {
		return fmt.Errorf("media engine: %w", err)
	}
	m.engine = eng
	return nil
}

// contactURI is this mcp's Contact for transport.
func (m *MCP) contactURI(transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: "mcp", Host: m.host, Port: m.port}
	if sip.IsReliable(transport) {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

// setLocalAddr makes UDP requests leave from the listening socket (so replies and in-dialog
// requests find the mcp on its SIP port).
func (m *MCP) setLocalAddr(req *sip.Request) {
	if !sip.IsReliable(req.Transport()) && m.udpAddr.Port != 0 {
		req.Laddr = m.udpAddr
	}
}

// SIPAddr returns the bound SIP address (the same port for UDP and TCP).
func (m *MCP) SIPAddr() netip.AddrPort { return m.lis.Addr() }

// Engine returns the media engine.
func (m *MCP) Engine() *media.Engine { return m.engine }

// Active returns the number of calls in progress.
func (m *MCP) Active() int { return int(m.active.Load()) }

// reserve takes a call slot; false at capacity.
func (m *MCP) reserve() bool {
	for {
		n := m.active.Load()
		if n >= int64(m.cfg.MaxSessions) {
			return false
		}
		if m.active.CompareAndSwap(n, n+1) {
			m.inflight.Add()
			return true
		}
	}
}

func (m *MCP) release() {
	m.active.Add(-1)
	m.inflight.Done()
}

func (m *MCP) register(c *Call) {
	m.mu.Lock()
	m.calls[c.key] = c
	m.mu.Unlock()
}

func (m *MCP) unregister(c *Call) {
	m.mu.Lock()
	if m.calls[c.key] == c {
		delete(m.calls, c.key)
	}
	m.mu.Unlock()
}

// lookup finds the call of an in-dialog request.
func (m *MCP) lookup(req *sip.Request) *Call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[id]
}

// Calls returns the calls in progress.
func (m *MCP) Calls() []*Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Call, 0, len(m.calls))
	for _, c := range m.calls {
		out = append(out, c)
	}
	return out
}

func (m *MCP) publish(rec billing.Record, log zerolog.Logger) {
	if err := m.deps.Publisher.Publish(rec); err != nil {
		log.Warn().Err(err).Str("record_id", rec.RecordID()).Msg("billing record not accepted")
	}
}

// Ready is nil while the mcp takes calls; at capacity it returns an "at capacity" error so
// that /readyz (and the registry's health check that reads it) steers new calls elsewhere
// until a call ends.
func (m *MCP) Ready() error {
	if m.draining.Load() {
		return errors.New("draining")
	}
	if n := m.active.Load(); n >= int64(m.cfg.MaxSessions) {
		return fmt.Errorf("at capacity: %d of %d calls", n, m.cfg.MaxSessions)
	}
	return nil
}

// Drain deregisters the mcp (Deps.Deregister), then answers new INVITEs and OPTIONS with
// 503 and Retry-After while calls in progress continue; it returns when none is left or ctx
// ends.
func (m *MCP) Drain(ctx context.Context) error {
	if m.deps.Deregister != nil {
		if err := m.deps.Deregister(ctx); err != nil {
			m.log.Warn().Err(err).Msg("deregister")
		}
	}
	m.draining.Store(true)
	m.log.Info().Int("calls", m.Active()).Msg("draining: refusing new calls")
	err := m.inflight.Wait(ctx)
	if err != nil {
		m.log.Warn().Int("calls", m.Active()).Msg("drain timeout with calls in progress")
	}
	return err
}

// Stop ends the calls left (BYE), then closes the listeners, the media engine and the admin
// endpoints.
func (m *MCP) Stop(ctx context.Context) error {
	m.draining.Store(true)
	for _, c := range m.Calls() {
		c.end(billing.EndPlatformHangup, "shutdown", true)
	}
	werr := m.inflight.Wait(ctx)
	m.stopSIP()
	var err error
	if m.admin != nil {
		err = m.admin.Shutdown(ctx)
	}
	return errors.Join(werr, err)
}

func (m *MCP) stopSIP() {
	if m.serve != nil {
		m.serve()
		<-m.served
	}
	if m.ua != nil {
		m.ua.Close()
	}
	if m.engine != nil {
		m.engine.Close()
	}
}

// Endpoints lists where the mcp listens.
func (m *MCP) Endpoints() []lifecycle.Endpoint {
	var eps []lifecycle.Endpoint
	if m.lis != nil {
		for _, t := range m.cfg.SIP.Transports {
			eps = append(eps, lifecycle.Endpoint{Name: "sip/" + t, Addr: m.lis.Addr().String()})
		}
	}
	if m.admin != nil {
		eps = append(eps, lifecycle.Endpoint{Name: "admin", Addr: m.admin.URL()})
	}
	return eps
}

// String names the instance.
func (m *MCP) String() string { return fmt.Sprintf("mcp %s", m.cfg.Name) }

// ContactAddr is the host:port other elements reach this mcp's SIP at (the advertised host).
func (m *MCP) ContactAddr() string { return net.JoinHostPort(m.host, strconv.Itoa(m.port)) }

// AdminURL is the base URL of the admin endpoints (/readyz is probed by the registry).
func (m *MCP) AdminURL() string { return m.admin.URL() }

// Name is the instance name (mcp.name, or the host name).
func (m *MCP) Name() string { return m.cfg.Name }
