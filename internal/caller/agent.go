// Package caller is the engine of `gvp call`: a SIP user agent client on sipgo with the media
// engine of the mcp, that places calls, sends DTMF (RFC 4733 or SIP INFO) and audio, records
// and measures what it hears, and hangs up or waits for the far end to. It also runs many
// calls at a given rate and concurrency as a load generator with a latency summary.
//
// In-dialog requests follow the dialog's route set (the 200's Record-Route, reversed), so calls
// work through a Record-Route proxy such as rm.
package caller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/logging"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// Defaults of AgentConfig.
const (
	// DefaultListen is the caller's own SIP address (it must receive the far end's BYE).
	DefaultListen = "127.0.0.1:0"
	// DefaultRTPPortMin and DefaultRTPPortMax bound the caller's RTP ports; they sit below the
	// mcp's default range so both can run on one host.
	DefaultRTPPortMin = 10000
	DefaultRTPPortMax = 19998
	// DefaultUser is the From user of calls.
	DefaultUser = "gvpcall"
	// requestTimeout bounds in-dialog requests (re-INVITE, INFO, BYE).
	requestTimeout = 10 * time.Second
)

// AgentConfig configures an Agent. Start from DefaultAgentConfig.
type AgentConfig struct {
	// Listen is the local SIP host:port (UDP and TCP); port 0 lets the kernel choose.
	Listen string
	// RTPPortMin and RTPPortMax bound the RTP/RTCP port pairs.
	RTPPortMin, RTPPortMax int
	// User is the From user part.
	User string
	// Logger receives protocol logs (default zerolog.Nop()).
	Logger zerolog.Logger
	// Registerer, when not nil, gets the media engine's metrics.
	Registerer prometheus.Registerer
}

// DefaultAgentConfig returns the defaults.
func DefaultAgentConfig() AgentConfig {
	return AgentConfig{Listen: DefaultListen, RTPPortMin: DefaultRTPPortMin, RTPPortMax: DefaultRTPPortMax,
		User: DefaultUser, Logger: zerolog.Nop()}
}

// Agent is a SIP user agent placing calls. It is safe for concurrent use.
type Agent struct {
	cfg     AgentConfig
	log     zerolog.Logger
	lis     *gvpsip.Listeners
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialogs map[string]*sipgo.DialogClientCache // by transport
	engine  *media.Engine
	mediaIP netip.Addr
	udpAddr sip.Addr
	cancel  context.CancelFunc
	served  chan struct{}

	mu        sync.Mutex
	calls     map[string]*Call // by Call-ID
	closeOnce sync.Once
}

// NewAgent binds the SIP listeners and starts the media engine.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	lis, err := gvpsip.Listen(gvpsip.ListenConfig{Addr: cfg.Listen, Transports: []string{gvpsip.UDP, gvpsip.TCP}})
	if err != nil {
		return nil, fmt.Errorf("caller: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, lis: lis, calls: map[string]*Call{}, dialogs: map[string]*sipgo.DialogClientCache{}}
	host := gvpsip.AdvertiseHost("", lis.Addr())
	a.mediaIP, err = netip.ParseAddr(host)
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("caller: media address %q: %w", host, err)
	}
	ecfg := media.DefaultConfig()
	ecfg.BindAddr = a.mediaIP
	ecfg.PortMin, ecfg.PortMax = cfg.RTPPortMin, cfg.RTPPortMax
	ecfg.Registerer = cfg.Registerer
	if a.engine, err = media.NewEngine(ecfg); err != nil {
		lis.Close()
		return nil, fmt.Errorf("caller: %w", err)
	}
	ua := lis.UDP.LocalAddr().(*net.UDPAddr)
	a.udpAddr = sip.Addr{IP: ua.IP, Port: ua.Port}
	slogger := slog.New(logging.NewSlogHandler(cfg.Logger))
	a.ua, err = gvpsip.NewUA("gvp-call", host,
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)))
	if err == nil {
		a.srv, err = sipgo.NewServer(a.ua, sipgo.WithServerLogger(slogger))
	}
	if err == nil {
		a.client, err = sipgo.NewClient(a.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(int(lis.Addr().Port())),
			sipgo.WithClientLogger(slogger))
	}
	if err != nil {
		a.engine.Close()
		lis.Close()
		return nil, fmt.Errorf("caller: %w", err)
	}
	for _, t := range []string{gvpsip.UDP, gvpsip.TCP} {
		contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: host, Port: int(lis.Addr().Port())}}
		if t == gvpsip.TCP {
			contact.Address.UriParams = sip.NewParams()
			contact.Address.UriParams.Add("transport", "tcp")
		}
		a.dialogs[t] = sipgo.NewDialogClientCache(a.client, contact)
	}
	a.srv.OnBye(a.onBye)
	a.srv.OnInfo(a.inDialogOK)
	a.srv.OnOptions(a.inDialogOK)
	a.srv.OnUpdate(a.inDialogOK)
	a.srv.OnNotify(a.inDialogOK)
	a.srv.OnInvite(a.onReInvite)
	a.srv.OnRefer(a.onRefer)
	a.srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.served = cancel, make(chan struct{})
	go func() {
		defer close(a.served)
		if err := gvpsip.Serve(ctx, a.srv, lis); err != nil {
			a.log.Warn().Err(err).Msg("caller sip server stopped")
		}
	}()
	if err := gvpsip.WaitServing(a.ua, lis.UDP.LocalAddr().String()); err != nil {
		a.Close()
		return nil, fmt.Errorf("caller: %w", err)
	}
	return a, nil
}

// Addr returns the agent's bound SIP address.
func (a *Agent) Addr() netip.AddrPort { return a.lis.Addr() }

// Engine returns the agent's media engine.
func (a *Agent) Engine() *media.Engine { return a.engine }

// Close stops the agent. Calls still up are dropped without BYE. Calling it again does
// nothing.
func (a *Agent) Close() error {
	a.closeOnce.Do(a.close)
	return nil
}

func (a *Agent) close() {
	a.mu.Lock()
	calls := make([]*Call, 0, len(a.calls))
	for _, c := range a.calls {
		calls = append(calls, c)
	}
	a.mu.Unlock()
	for _, c := range calls {
		c.release()
	}
	a.cancel()
	<-a.served
	a.ua.Close()
	a.engine.Close()
}

func (a *Agent) lookup(req *sip.Request) *Call {
	id := ""
	if h := req.CallID(); h != nil {
		id = h.Value()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id]
}

// earlyRequestWait bounds how long a request that overtook the 200 it follows (BYE, re-INVITE)
// waits for the call to be established.
const earlyRequestWait = 2 * time.Second

// established waits until the 200 of c has been processed; false when the call ended first.
func (c *Call) established() bool {
	t := time.NewTimer(earlyRequestWait)
	defer t.Stop()
	select {
	case <-c.answered:
		return true
	case <-c.done:
	case <-t.C:
	}
	return false
}

func (a *Agent) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := a.lookup(req)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.byeAt.CompareAndSwap(0, time.Now().UnixNano())
	if !c.established() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.remoteBye.Store(true)
	if err := c.dlg.ReadBye(req, tx); err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}
	c.release()
}

// inDialogOK answers in-dialog INFO, OPTIONS, UPDATE and NOTIFY with 200 (481 outside a call).
func (a *Agent) inDialogOK(req *sip.Request, tx sip.ServerTransaction) {
	code, reason := 200, "OK"
	if a.lookup(req) == nil {
		code, reason = 481, "Call/Transaction Does Not Exist"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code == 200 && req.Method == sip.UPDATE {
		if se := req.GetHeader("Session-Expires"); se != nil {
			res.AppendHeader(sip.NewHeader("Session-Expires", se.Value()))
		}
	}
	_ = tx.Respond(res)
}

// onReInvite answers a re-INVITE from the far end with an answer to its offer. The agent
// takes no new calls: initial INVITEs get 603 Decline.
func (a *Agent) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := a.lookup(req)
	if c == nil || req.To() == nil || !req.To().Params.Has("tag") || !c.established() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 603, "Decline", nil))
		return
	}
	c.mu.Lock()
	body, med, err := c.neg.Answer(req.Body())
	c.mu.Unlock()
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	_ = c.sess.Start(med)
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&c.contact)
	_ = tx.Respond(res)
}

// onRefer carries out a blind transfer (RFC 3515): 202, a new call to the Refer-To target, and
// a NOTIFY with its final status (message/sipfrag). The new call is then Call.Transferred.
func (a *Agent) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	c := a.lookup(req)
	rt := req.GetHeader("Refer-To")
	if c == nil || rt == nil {
		code, reason := 481, "Call/Transaction Does Not Exist"
		if c != nil {
			code, reason = 400, "Missing Refer-To"
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
		return
	}
	target := strings.TrimSpace(rt.Value())
	if i := strings.IndexByte(target, '<'); i >= 0 {
		if j := strings.IndexByte(target[i:], '>'); j > 0 {
			target = target[i+1 : i+j]
		}
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
	go func() {
		select {
		case <-c.answered:
		case <-c.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultSetupTimeout)
		nc, err := a.Dial(ctx, target, DialOptions{})
		cancel()
		frag := "SIP/2.0 200 OK"
		var se *StatusError
		switch {
		case errors.As(err, &se):
			frag = fmt.Sprintf("SIP/2.0 %d %s", se.Code, se.Reason)
		case err != nil:
			frag = "SIP/2.0 503 Service Unavailable"
		default:
			c.mu.Lock()
			c.transferred = nc
			c.mu.Unlock()
		}
		n := sip.NewRequest(sip.NOTIFY, *c.Response.Contact().Address.Clone())
		n.SetBody([]byte(frag + "\r\n"))
		n.AppendHeader(sip.NewHeader("Event", "refer"))
		n.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
		n.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		c.setLaddr(n)
		nctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		if _, err := c.dlg.Do(nctx, n); err != nil {
			a.log.Debug().Err(err).Msg("notify")
		}
	}()
}

// StatusError is a call that was answered with a final non-2xx status.
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("call failed: %d %s", e.Code, e.Reason) }

// DialOptions shape one call.
type DialOptions struct {
	// Transport is "udp" (default) or "tcp"; a transport= parameter in the target wins.
	Transport string
	// Headers are extra INVITE headers.
	Headers map[string]string
	// Codecs overrides the offered codecs (default PCMU, PCMA).
	Codecs []sdpneg.Codec
	// Session configures the media session; the zero value means media.DefaultSessionConfig.
	Session *media.SessionConfig
	// OnDigit receives digits heard from the far end.
	OnDigit func(media.Digit)
	// AckDelay holds the ACK back this long after the 200 (to test peers against a slow
	// caller); 0 acknowledges at once.
	AckDelay time.Duration
}

// Call is one established outgoing call.
type Call struct {
	a       *Agent
	dlg     *sipgo.DialogClientSession
	sess    *media.Session
	contact sip.ContactHeader
	callID  string

	mu          sync.Mutex
	neg         *sdpneg.Negotiator
	transferred *Call

	// Response is the 200 OK.
	Response *sip.Response
	// SetupTime is from sending the INVITE to receiving the 200.
	SetupTime time.Duration
	// SessionID is the X-Genesys-GVP-Session-ID of the 200, without parameters.
	SessionID string

	answered    chan struct{} // closed once Response is set
	remoteBye   atomic.Bool
	byeAt       atomic.Int64 // unix nanoseconds of the first BYE received
	ackedAt     time.Time
	releaseOnce sync.Once
	done        chan struct{}
}

// Dial calls target (a SIP URI) and returns once the call is answered and acknowledged. A
// non-2xx final response is a *StatusError; the call is cancelled (CANCEL) when ctx ends
// first.
func (a *Agent) Dial(ctx context.Context, target string, o DialOptions) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	transport := strings.ToLower(o.Transport)
	if t, ok := uri.UriParams.Get("transport"); ok && uri.UriParams != nil {
		transport = strings.ToLower(t)
	}
	if transport == "" {
		transport = gvpsip.UDP
	}
	if transport != gvpsip.UDP && transport != gvpsip.TCP {
		return nil, fmt.Errorf("transport %q: want udp or tcp", transport)
	}
	scfg := media.DefaultSessionConfig()
	if o.Session != nil {
		scfg = *o.Session
	}
	if o.OnDigit != nil {
		scfg.OnDigit = o.OnDigit
	}
	sess, err := a.engine.NewSession(scfg)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ncfg := sdpneg.DefaultConfig()
	if len(o.Codecs) > 0 {
		ncfg.Codecs = o.Codecs
	}
	neg, err := sdpneg.New(ncfg, sdpneg.Local{Addr: a.mediaIP, Port: sess.Port()})
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	offer, err := neg.Offer()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	cache := a.dialogs[transport]
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(transport))
	if transport == gvpsip.UDP {
		req.Laddr = a.udpAddr
	}
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY"))
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: a.cfg.User, Host: a.mediaIP.String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	for k, v := range o.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	c := &Call{a: a, sess: sess, neg: neg, done: make(chan struct{}), answered: make(chan struct{})}
	// The call is known before the INVITE leaves: the far end may send requests (REFER,
	// INFO) right after its 200.
	c.callID = uuid.NewString()
	callID := sip.CallIDHeader(c.callID)
	req.AppendHeader(&callID)
	a.mu.Lock()
	a.calls[c.callID] = c
	a.mu.Unlock()
	start := time.Now()
	dlg, err := cache.WriteInvite(ctx, req)
	if err != nil {
		a.mu.Lock()
		delete(a.calls, c.callID)
		a.mu.Unlock()
		sess.Close()
		return nil, fmt.Errorf("send invite: %w", err)
	}
	c.contact = *req.Contact()
	c.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		c.release()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return nil, &StatusError{Code: de.Res.StatusCode, Reason: de.Res.Reason}
		}
		return nil, fmt.Errorf("invite: %w", err)
	}
	c.SetupTime = time.Since(start)
	c.Response = dlg.InviteResponse
	if h := c.Response.GetHeader(gvpsip.HeaderSessionID); h != nil {
		c.SessionID = strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0])
	}
	med, err := neg.ParseAnswer(c.Response.Body())
	if err == nil {
		err = sess.Start(med)
	}
	if o.AckDelay > 0 {
		time.Sleep(o.AckDelay)
	}
	// Noted before the ACK leaves: a BYE the far end sends on receiving it can be handled
	// (and timed) before Ack returns.
	c.ackedAt = time.Now()
	if aerr := dlg.Ack(ctx); aerr != nil && err == nil {
		err = aerr
	}
	// Only now is the call established: a BYE that overtook the 200 waits for this (see
	// established), so it cannot release the media while it is being started.
	close(c.answered)
	if err != nil {
		bctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		_ = dlg.Bye(bctx)
		cancel()
		c.release()
		return nil, fmt.Errorf("answer: %w", err)
	}
	go func() {
		<-dlg.Context().Done()
		c.release()
	}()
	return c, nil
}

// release frees the call's media and forgets it (idempotent).
func (c *Call) release() {
	c.releaseOnce.Do(func() {
		c.sess.Close()
		c.a.mu.Lock()
		if c.a.calls[c.callID] == c {
			delete(c.a.calls, c.callID)
		}
		c.a.mu.Unlock()
		close(c.done)
	})
}

// Transferred returns the call placed to the target of a REFER received on this call, or nil.
func (c *Call) Transferred() *Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transferred
}

// Media returns the call's media session.
func (c *Call) Media() *media.Session { return c.sess }

// Done is closed when the call has ended (either side hung up).
func (c *Call) Done() <-chan struct{} { return c.done }

// RemoteHangup reports whether the far end sent BYE.
func (c *Call) RemoteHangup() bool { return c.remoteBye.Load() }

// ByeBeforeAck reports whether the far end sent its BYE before we acknowledged its 200 (which
// RFC 3261 section 15 forbids).
func (c *Call) ByeBeforeAck() bool {
	at := c.byeAt.Load()
	return at != 0 && time.Unix(0, at).Before(c.ackedAt)
}

// Hangup sends BYE (nothing when the call already ended).
func (c *Call) Hangup(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err := c.dlg.Bye(ctx)
	c.release()
	if err != nil {
		return fmt.Errorf("bye: %w", err)
	}
	return nil
}

// Reinvite sends a re-INVITE offering direction (sendonly puts the far end on hold, sendrecv
// resumes), acknowledges the 2xx and applies the answer. It returns the final status.
func (c *Call) Reinvite(ctx context.Context, dir sdpneg.Direction) (int, error) {
	c.mu.Lock()
	offer, err := c.neg.Offer()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if dir != sdpneg.SendRecv {
		offer = []byte(strings.Replace(string(offer), "a=sendrecv", "a="+dir.String(), 1))
	}
	target := c.Response.Contact().Address
	req := sip.NewRequest(sip.INVITE, *target.Clone())
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.setLaddr(req)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("re-invite: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return res.StatusCode, nil
	}
	ack := sip.NewRequest(sip.ACK, *target.Clone())
	c.setLaddr(ack)
	if err := c.dlg.WriteRequest(ack); err != nil {
		return res.StatusCode, fmt.Errorf("ack re-invite: %w", err)
	}
	c.mu.Lock()
	med, err := c.neg.ParseAnswer(res.Body())
	c.mu.Unlock()
	if err != nil {
		return res.StatusCode, err
	}
	return res.StatusCode, c.sess.Start(med)
}

// SendInfo sends one DTMF digit in SIP INFO (application/dtmf-relay) and returns the status.
func (c *Call) SendInfo(ctx context.Context, digit rune, d time.Duration) (int, error) {
	if d <= 0 {
		d = media.DefaultDigitDuration
	}
	req := sip.NewRequest(sip.INFO, *c.Response.Contact().Address.Clone())
	req.SetBody([]byte(fmt.Sprintf("Signal=%c\r\nDuration=%d\r\n", digit, d.Milliseconds())))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	c.setLaddr(req)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("info: %w", err)
	}
	return res.StatusCode, nil
}

func (c *Call) setLaddr(req *sip.Request) {
	if !sip.IsReliable(c.dlg.InviteRequest.Transport()) {
		req.Laddr = c.a.udpAddr
	}
}
