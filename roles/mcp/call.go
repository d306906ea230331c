package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
)

// Call limits.
const (
	// maxQueuedDigits bounds the digits buffered for WaitDigit (type-ahead).
	maxQueuedDigits = 32
	// byeTimeout bounds waiting for the answer to a BYE the mcp sends.
	byeTimeout = 5 * time.Second
	// ackTimeout is how long a 2xx is retransmitted without ACK before the call is ended with
	// BYE (RFC 3261 13.3.1.4: 64*T1).
	ackTimeout = 64 * 500 * time.Millisecond
	// retransmitT1 and retransmitT2 are RFC 3261's T1 and T2, the 2xx retransmission bounds.
	retransmitT1 = 500 * time.Millisecond
	retransmitT2 = 4 * time.Second
	// referTimeout bounds waiting for the final NOTIFY of a REFER.
	referTimeout = 32 * time.Second
)

// Errors returned by Call methods.
var (
	// ErrCallEnded is returned by methods of a call that has ended (the caller hung up, or
	// the mcp did).
	ErrCallEnded = errors.New("call ended")
)

// callState is where a call's dialog is.
type callState int32

const (
	stateEarly     callState = iota // INVITE received, no 2xx sent
	stateAnswered                   // 2xx sent, no ACK yet
	stateConfirmed                  // ACK received
	stateEnded
)

// Call is one inbound call: its SIP dialog (the mcp is the UAS), its media session and its
// buffered DTMF. An Application drives it; the methods are safe for concurrent use.
type Call struct {
	m         *MCP
	log       zerolog.Logger
	key       string
	entry     Entry
	sessionID string
	callID    string
	invite    *sip.Request // the initial INVITE, with our To tag
	start     time.Time
	answerAt  time.Time
	reliable  bool

	sess     *media.Session
	handover sync.WaitGroup // a consultation transfer's connection, until it ends

	mu              sync.Mutex
	state           callState
	neg             *sdpneg.Negotiator
	remoteTarget    sip.Uri
	routes          []string // Record-Route values: the route set, in order (UAS side)
	localSeq        uint32
	remoteSeq       uint32
	pending         *sip.Response // 2xx waiting for its ACK
	pendingTx       sip.ServerTransaction
	pendingSeq      uint32
	pendingOffer    bool // the pending 2xx carries our offer; the ACK carries the answer
	retransTimer    *time.Timer
	retransInterval time.Duration
	retransUntil    time.Time
	// byeAfterAck is set when the call ends from our side before the ACK of its 2xx arrived:
	// RFC 3261 15 forbids the BYE until the ACK (or the 64*T1 timeout), so the 2xx keeps being
	// retransmitted and acked is closed when the wait is over.
	byeAfterAck bool
	acked       chan struct{}
	timer       sessionTimer
	seTimer     *time.Timer
	rtpTimer    *time.Timer
	lastRx      uint64
	lastRxAt    time.Time
	allowUpdate bool
	refer       chan int // final status of the REFER in progress, from NOTIFY

	dmu     sync.Mutex
	dq      []rune
	discard bool
	relay   *media.Session // while bridged: the callee's leg, which gets the caller's digits
	dnotify chan struct{}
	heard   []rune // every digit received, for tests and logs (bounded)

	ctx     context.Context
	cancel  context.CancelFunc
	endOnce sync.Once
	done    chan struct{}
	endWhy  billing.EndReason
	endCode int // SIP status of a call that ended before the answer (487 when cancelled)
	cdr     billing.CDR
}

// SessionID returns the GVP session id: the X-Genesys-GVP-Session-ID of the INVITE without
// its parameters, or a generated one.
func (c *Call) SessionID() string { return c.sessionID }

// CallID returns the SIP Call-ID.
func (c *Call) CallID() string { return c.callID }

// Entry returns what the Request-URI asked for.
func (c *Call) Entry() Entry { return c.entry }

// LocalURI returns the To URI of the INVITE (VoiceXML session.connection.local.uri).
func (c *Call) LocalURI() string { return c.invite.To().Address.String() }

// RemoteURI returns the From URI of the INVITE (session.connection.remote.uri).
func (c *Call) RemoteURI() string { return c.invite.From().Address.String() }

// DNIS returns the user part of the To URI (the dialled number).
func (c *Call) DNIS() string { return c.invite.To().Address.User }

// ANI returns the user part of the From URI (the caller's number).
func (c *Call) ANI() string { return c.invite.From().Address.User }

// Headers returns the INVITE's headers with lower-case names; repeated headers are joined
// with ", " (VoiceXML session.connection.protocol.sip.headers).
func (c *Call) Headers() map[string]string {
	out := map[string]string{}
	for _, h := range c.invite.Headers() {
		n := strings.ToLower(h.Name())
		if v, ok := out[n]; ok {
			out[n] = v + ", " + h.Value()
			continue
		}
		out[n] = h.Value()
	}
	return out
}

// Media returns the call's media session (prompts, recording sink, statistics).
func (c *Call) Media() *media.Session { return c.sess }

// Context is cancelled when the call ends.
func (c *Call) Context() context.Context { return c.ctx }

// Done is closed when the call has ended and its resources are released.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndReason returns why the call ended ("" while it is up).
func (c *Call) EndReason() billing.EndReason {
	select {
	case <-c.done:
		return c.endWhy
	default:
		return ""
	}
}

// DigitsHeard returns every DTMF digit received so far, in order, whatever its method
// (at most 256 are kept).
func (c *Call) DigitsHeard() string {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return string(c.heard)
}

// onDigit buffers a received digit. It never blocks (it runs on media goroutines).
func (c *Call) onDigit(d rune, method string) {
	c.dmu.Lock()
	if len(c.heard) < 256 {
		c.heard = append(c.heard, d)
	}
	relay := c.relay
	if relay == nil && !c.discard && len(c.dq) < maxQueuedDigits {
		c.dq = append(c.dq, d)
	}
	c.dmu.Unlock()
	if relay != nil {
		c.relayDigit(relay, d, "the bridged callee")
	}
	select {
	case c.dnotify <- struct{}{}:
	default:
	}
	c.log.Debug().Str("digit", string(d)).Str("method", method).Msg("dtmf")
	if h := c.m.onDigitHook; h != nil {
		h(c, d, method)
	}
}

func (c *Call) popDigit() (rune, bool) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if len(c.dq) == 0 {
		return 0, false
	}
	d := c.dq[0]
	c.dq = c.dq[1:]
	return d, true
}

func (c *Call) hasDigit() bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	return len(c.dq) > 0
}

// WaitDigit returns the next buffered or arriving DTMF digit, waiting at most timeout
// (0 = do not wait); ok is false when none came in time. It returns ErrCallEnded once the
// call has ended.
func (c *Call) WaitDigit(ctx context.Context, timeout time.Duration) (rune, bool, error) {
	if d, ok := c.popDigit(); ok {
		return d, true, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-c.dnotify:
			if d, ok := c.popDigit(); ok {
				return d, true, nil
			}
		case <-t.C:
			return 0, false, nil
		case <-c.ctx.Done():
			return 0, false, ErrCallEnded
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

// Play plays sources back to back and returns when they have been sent. With bargein a DTMF
// digit stops the playback at once (a digit already buffered stops it before it starts) and
// stays buffered for WaitDigit; bargedIn reports it. Without bargein digits pressed during the
// playback are discarded. It returns ErrCallEnded when the call ends meanwhile.
func (c *Call) Play(ctx context.Context, bargein bool, sources ...media.Source) (bargedIn bool, err error) {
	if c.ctx.Err() != nil {
		return false, ErrCallEnded
	}
	if bargein && c.hasDigit() {
		return true, nil
	}
	if !bargein {
		c.dmu.Lock()
		c.discard = true
		c.dmu.Unlock()
		defer func() {
			c.dmu.Lock()
			c.discard = false
			c.dmu.Unlock()
		}()
	}
	pb := c.sess.Play(sources...)
	for {
		var notify chan struct{}
		if bargein {
			notify = c.dnotify
		}
		select {
		case <-pb.Done():
			if err := pb.Err(); err != nil {
				if errors.Is(err, media.ErrSessionClosed) || c.ctx.Err() != nil {
					return false, ErrCallEnded
				}
				return false, err
			}
			return false, nil
		case <-notify:
			if c.hasDigit() {
				pb.Stop()
				return true, nil
			}
		case <-c.ctx.Done():
			pb.Stop()
			return false, ErrCallEnded
		case <-ctx.Done():
			pb.Stop()
			return false, ctx.Err()
		}
	}
}

// Hangup ends the call from the platform side: BYE to the caller, end reason
// platform_hangup. It returns once the call's resources are released.
func (c *Call) Hangup(ctx context.Context) error {
	c.end(billing.EndPlatformHangup, "", true)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newRequest builds an in-dialog request from the UAS side (RFC 3261 12.2.1.1): Request-URI
// the remote target, From our To (with our tag), To the caller's From, the next local CSeq,
// Route from the route set.
func (c *Call) newRequest(method sip.RequestMethod) *sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newRequestLocked(method)
}

func (c *Call) newRequestLocked(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, *c.remoteTarget.Clone())
	to := c.invite.To()
	from := sip.FromHeader{DisplayName: to.DisplayName, Address: *to.Address.Clone(), Params: to.Params.Clone()}
	rf := c.invite.From()
	rto := sip.ToHeader{DisplayName: rf.DisplayName, Address: *rf.Address.Clone(), Params: rf.Params.Clone()}
	callID := sip.CallIDHeader(c.callID)
	if c.localSeq == 0 {
		c.localSeq = 1
	}
	c.localSeq++
	cseq := sip.CSeqHeader{SeqNo: c.localSeq, MethodName: method}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&rto)
	req.AppendHeader(&callID)
	req.AppendHeader(&cseq)
	req.AppendHeader(&mf)
	for _, r := range c.routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.SetTransport(c.invite.Transport())
	c.m.setLocalAddr(req)
	return req
}

// send sends an in-dialog request and waits for its final response until ctx ends.
func (c *Call) send(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := c.m.client.TransactionRequest(ctx, req, sipgoAddVia)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, fmt.Errorf("send %s: %w", req.Method, err)
			}
			return nil, fmt.Errorf("send %s: transaction ended without response", req.Method)
		case <-ctx.Done():
			return nil, fmt.Errorf("send %s: %w", req.Method, ctx.Err())
		}
	}
}

// Refer asks the caller to call target instead (RFC 3515 blind transfer): REFER with
// Refer-To and Referred-By in the dialog, then the NOTIFY reports (RFC 3515 sipfrag) until a
// final one. It returns nil when the transfer target answered with 2xx, a *ReferError with
// the status otherwise. The call stays up: hang up afterwards.
func (c *Call) Refer(ctx context.Context, target string) error {
	var u sip.Uri
	if err := sip.ParseUri(target, &u); err != nil {
		return fmt.Errorf("refer to %q: %w", target, err)
	}
	if c.ctx.Err() != nil {
		return ErrCallEnded
	}
	ch := make(chan int, 1)
	c.mu.Lock()
	if c.refer != nil {
		c.mu.Unlock()
		return errors.New("refer: another transfer is in progress")
	}
	c.refer = ch
	req := c.newRequestLocked(sip.REFER)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.refer = nil
		c.mu.Unlock()
	}()
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+u.String()+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.invite.To().Address.String()+">"))
	req.AppendHeader(&sip.ContactHeader{Address: c.m.contactURI(c.invite.Transport())})
	rctx, cancel := context.WithTimeout(ctx, referTimeout)
	defer cancel()
	res, err := c.send(rctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &ReferError{Code: res.StatusCode, Stage: "refer"}
	}
	select {
	case code := <-ch:
		if code/100 == 2 {
			return nil
		}
		return &ReferError{Code: code, Stage: "notify"}
	case <-c.ctx.Done():
		return ErrCallEnded
	case <-rctx.Done():
		return fmt.Errorf("refer: no final notify: %w", rctx.Err())
	}
}

// ReferError reports a failed transfer: the REFER's own final response (Stage "refer") or
// the transfer target's final status from a NOTIFY (Stage "notify").
type ReferError struct {
	Code  int
	Stage string
}

func (e *ReferError) Error() string {
	return fmt.Sprintf("refer failed at %s: status %d", e.Stage, e.Code)
}

// onNotify delivers a REFER's progress.
func (c *Call) onNotify(req *sip.Request) int {
	ev := req.GetHeader("Event")
	if ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "refer") {
		return 489
	}
	code, ok := sipfragStatus(req.Body())
	if !ok {
		return 400
	}
	if code >= 200 {
		c.mu.Lock()
		ch := c.refer
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- code:
			default:
			}
		}
	}
	return 200
}

// sipfragStatus reads the status code of a message/sipfrag status line "SIP/2.0 200 OK".
func sipfragStatus(body []byte) (int, bool) {
	s := strings.TrimSpace(string(body))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Fields(s)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "SIP/") {
		return 0, false
	}
	n := 0
	for _, ch := range parts[1] {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	if n < 100 || n > 699 {
		return 0, false
	}
	return n, true
}

// end ends the call once: timers stopped, media released, CDR completed, and with bye a
// BYE sent to the caller. It returns at once; Done closes when everything is released.
func (c *Call) end(reason billing.EndReason, detail string, bye bool) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		wasState := c.state
		c.state = stateEnded
		c.byeAfterAck = bye && wasState == stateAnswered && c.pending != nil
		for _, t := range []*time.Timer{c.retransTimer, c.seTimer, c.rtpTimer} {
			if t != nil && (t != c.retransTimer || !c.byeAfterAck) {
				t.Stop()
			}
		}
		if c.byeAfterAck {
			c.acked = make(chan struct{})
		} else {
			c.pending = nil
		}
		c.mu.Unlock()
		c.endWhy = reason
		c.cancel()
		go c.finish(reason, detail, bye && wasState != stateEarly)
	})
}

func (c *Call) finish(reason billing.EndReason, detail string, bye bool) {
	m := c.m
	if err := c.sess.Close(); err != nil {
		c.log.Debug().Err(err).Msg("close media")
	}
	if bye && c.acked != nil {
		<-c.acked // the ACK (the call stays findable for it), or the end of the 2xx retransmissions
	}
	// Metrics first: whoever sees the call gone (Active) also sees it counted.
	m.metrics.sessions.WithLabelValues(c.entry.Service).Dec()
	m.metrics.ended.WithLabelValues(string(reason)).Inc()
	m.unregister(c)
	if bye {
		ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
		res, err := c.send(ctx, c.newRequest(sip.BYE))
		cancel()
		switch {
		case err != nil:
			m.metrics.errors.WithLabelValues(errKindSIP).Inc()
			c.log.Info().Err(err).Msg("bye not answered")
		case res.StatusCode/100 != 2:
			c.log.Info().Int("status", res.StatusCode).Msg("bye refused")
		}
	}
	now := time.Now()
	cdr := c.cdr
	cdr.Complete(now, reason, detail, c.endCode)
	m.publish(&cdr, c.log)
	st := c.sess.Stats()
	c.log.Info().Str("end_reason", string(reason)).Str("detail", detail).Dur("duration", now.Sub(c.start)).
		Uint64("rtp_sent", st.PacketsSent).Uint64("rtp_received", st.PacketsReceived).Msg("call ended")
	m.release()
	close(c.done)
}
