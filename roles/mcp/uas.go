package mcp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// Headers and values of the UAS.
const (
	hdrSessionExpires = "Session-Expires"
	hdrMinSE          = "Min-SE"
	// HeaderLoad is the header of OPTIONS answers giving the current load:
	// "active=12;capacity=2000;draining=0".
	HeaderLoad  = "X-GVP-Load"
	allowed     = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY"
	supported   = "timer"
	contentSDP  = "application/sdp"
	refresherUA = "uac"
	refresherUS = "uas"
)

// sipgoAddVia is the request option for in-dialog requests: only a Via is added.
func sipgoAddVia(c *sipgo.Client, r *sip.Request) error {
	if r.Via() == nil {
		if err := sipgo.ClientRequestAddVia(c, r); err != nil {
			return err
		}
	}
	if r.Body() == nil {
		r.SetBody(nil)
	}
	return nil
}

// sessionTimer is the RFC 4028 state of a call.
type sessionTimer struct {
	interval  time.Duration // 0: no session timer
	refresher string        // "uac" or "uas"
}

// headerValue returns the first value of name or of its compact form.
func headerValue(req *sip.Request, name, compact string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	if compact != "" {
		if h := req.GetHeader(compact); h != nil {
			return h.Value()
		}
	}
	return ""
}

// hasOptionTag reports whether a Supported/Require-style header lists tag.
func hasOptionTag(req *sip.Request, name, compact, tag string) bool {
	for _, n := range []string{name, compact} {
		if n == "" {
			continue
		}
		for _, h := range req.GetHeaders(n) {
			for _, t := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(t), tag) {
					return true
				}
			}
		}
	}
	return false
}

// parseSessionExpires reads "1800;refresher=uac".
func parseSessionExpires(v string) (time.Duration, string, bool) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n < 1 || n > 1<<24 {
		return 0, "", false
	}
	ref := ""
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "refresher") {
			ref = strings.ToLower(strings.TrimSpace(val))
		}
	}
	if ref != "" && ref != refresherUA && ref != refresherUS {
		return 0, "", false
	}
	return time.Duration(n) * time.Second, ref, true
}

// negotiateTimer applies RFC 4028 section 9 to an INVITE or UPDATE: the interval is the
// request's Session-Expires lowered to mcp.session_timer.expires, or ours when the request has
// none; the refresher is the request's choice, else the UAC when it supports timers, else us.
// tooSmall is set when the request asks for less than our Min-SE (answer 422).
func (m *MCP) negotiateTimer(req *sip.Request) (st sessionTimer, tooSmall bool) {
	max := m.cfg.SessionTimer.Expires
	if max == 0 {
		return st, false
	}
	uacTimer := hasOptionTag(req, "Supported", "k", supported)
	v := headerValue(req, hdrSessionExpires, "x")
	if v != "" {
		se, ref, ok := parseSessionExpires(v)
		if ok {
			if se < m.cfg.SessionTimer.MinSE {
				return st, true
			}
			st.interval = min(se, max)
			st.refresher = ref
		}
	}
	if st.interval == 0 {
		st.interval = max
		if mse := headerValue(req, hdrMinSE, ""); mse != "" {
			if n, err := strconv.Atoi(strings.TrimSpace(strings.Split(mse, ";")[0])); err == nil && time.Duration(n)*time.Second > st.interval {
				st.interval = time.Duration(n) * time.Second
			}
		}
	}
	if st.refresher == "" || (st.refresher == refresherUA && !uacTimer && v == "") {
		st.refresher = refresherUS
		if uacTimer {
			st.refresher = refresherUA
		}
	}
	return st, false
}

func (st sessionTimer) headers(res *sip.Response) {
	if st.interval == 0 {
		return
	}
	res.AppendHeader(sip.NewHeader(hdrSessionExpires, strconv.Itoa(int(st.interval/time.Second))+";refresher="+st.refresher))
	if st.refresher == refresherUA {
		res.AppendHeader(sip.NewHeader("Require", supported))
	}
}

// sessionIDFrom returns the GVP session id of an INVITE (header value without parameters),
// or a new one.
func sessionIDFrom(req *sip.Request) string {
	if h := req.GetHeader(gvpsip.HeaderSessionID); h != nil {
		v := strings.TrimSpace(strings.SplitN(h.Value(), ";", 2)[0])
		if v != "" && len(v) <= 128 {
			return v
		}
	}
	return strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", ""))
}

// respond sends a response to req, logging failures.
func (m *MCP) respond(req *sip.Request, tx sip.ServerTransaction, code int, hdrs ...sip.Header) {
	res := gvpsip.NewResponse(req, code, "")
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		m.log.Debug().Err(err).Int("status", code).Str("method", req.Method.String()).Msg("respond")
	}
}

func (m *MCP) retryAfter() sip.Header {
	return sip.NewHeader(gvpsip.HeaderRetryAfter, strconv.Itoa(max(1, int(m.cfg.RetryAfter/time.Second))))
}

// rejectInvite answers an initial INVITE with a final failure and writes its CDR.
func (m *MCP) rejectInvite(req *sip.Request, tx sip.ServerTransaction, start time.Time, sessionID string, code int, detail string, hdrs ...sip.Header) {
	// Counted and recorded before the answer goes out, so whoever sees the answer also sees
	// the metric and the record.
	m.metrics.calls.WithLabelValues(resultRejected).Inc()
	m.metrics.responses.WithLabelValues(responseClass(code)).Inc()
	cdr := m.newCDR(req, sessionID, "", start)
	cdr.Complete(time.Now(), billing.EndRejected, detail, code)
	m.publish(cdr, m.log)
	m.respond(req, tx, code, hdrs...)
	m.log.Info().Str("call_id", callIDOf(req)).Str("gvp_session_id", sessionID).Int("status", code).
		Str("detail", detail).Str("request_uri", redactedURI(&req.Recipient)).Msg("invite rejected")
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

func (m *MCP) newCDR(req *sip.Request, sessionID, service string, start time.Time) *billing.CDR {
	cdr := &billing.CDR{
		ID: billing.NewRecordID(), SessionID: sessionID, Component: billing.ComponentMCP,
		ComponentName: m.cfg.Name, State: billing.StateInProgress, ServiceType: service,
		CallID: callIDOf(req), MCP: m.cfg.Name, Start: start.UTC(),
	}
	if to := req.To(); to != nil {
		cdr.DNIS, cdr.LocalURI = to.Address.User, to.Address.String()
	}
	if from := req.From(); from != nil {
		cdr.ANI, cdr.RemoteURI = from.Address.User, from.Address.String()
	}
	return cdr
}

// onInvite handles INVITEs: initial ones create a call, those with a To tag are re-INVITEs.
// The handler returns once the final response is sent; the call then runs on its own
// goroutine.
func (m *MCP) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		m.onReInvite(req, tx)
		return
	}
	start := time.Now()
	sessionID := sessionIDFrom(req)
	if req.Contact() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		m.rejectInvite(req, tx, start, sessionID, 400, "missing Contact, From, To or CSeq")
		return
	}
	if m.draining.Load() {
		m.rejectInvite(req, tx, start, sessionID, 503, "draining", m.retryAfter())
		return
	}
	entry, err := ParseEntry(&req.Recipient)
	if err != nil {
		code := 400
		if errors.Is(err, ErrUnknownService) {
			code = 404
		}
		m.rejectInvite(req, tx, start, sessionID, code, err.Error())
		return
	}
	st, tooSmall := m.negotiateTimer(req)
	if tooSmall {
		m.rejectInvite(req, tx, start, sessionID, 422, "session interval too small",
			sip.NewHeader(hdrMinSE, strconv.Itoa(int(m.cfg.SessionTimer.MinSE/time.Second))))
		return
	}
	body := req.Body()
	if len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), contentSDP) {
			m.rejectInvite(req, tx, start, sessionID, 415, "body is not application/sdp", sip.NewHeader("Accept", contentSDP))
			return
		}
	}
	if !m.reserve() {
		m.rejectInvite(req, tx, start, sessionID, 503, "at capacity", m.retryAfter())
		return
	}
	c := &Call{
		m: m, entry: entry, sessionID: sessionID, callID: callIDOf(req), start: start,
		reliable: sip.IsReliable(req.Transport()), dnotify: make(chan struct{}, 1), done: make(chan struct{}),
		remoteTarget: *req.Contact().Address.Clone(), remoteSeq: req.CSeq().SeqNo, timer: st,
	}
	c.log = m.log.With().Str("call_id", c.callID).Str("gvp_session_id", sessionID).Logger()
	scfg := media.DefaultSessionConfig()
	scfg.OnDigit = func(d media.Digit) { c.onDigit(d.Digit, d.Method) }
	sess, err := m.engine.NewSession(scfg)
	if err != nil {
		m.release()
		m.metrics.errors.WithLabelValues(errKindMedia).Inc()
		code, hdrs := 500, []sip.Header(nil)
		if errors.Is(err, media.ErrNoPorts) {
			code, hdrs = 503, []sip.Header{m.retryAfter()}
		}
		m.rejectInvite(req, tx, start, sessionID, code, err.Error(), hdrs...)
		return
	}
	c.sess = sess
	neg, err := sdpneg.New(m.negCfg, sdpneg.Local{Addr: m.mediaIP, Port: sess.Port()})
	if err != nil {
		sess.Close()
		m.release()
		m.rejectInvite(req, tx, start, sessionID, 500, err.Error())
		return
	}
	c.neg = neg
	var (
		sdpBody []byte
		med     sdpneg.Media
	)
	if len(body) > 0 {
		sdpBody, med, err = neg.Answer(body)
	} else {
		sdpBody, err = neg.Offer()
		c.pendingOffer = true
	}
	if err != nil {
		sess.Close()
		m.release()
		var na *sdpneg.NotAcceptableError
		if errors.As(err, &na) {
			m.rejectInvite(req, tx, start, sessionID, 488, err.Error(), sip.NewHeader("Warning", `304 gvp "`+na.Reason+`"`))
		} else {
			m.rejectInvite(req, tx, start, sessionID, 400, err.Error())
		}
		return
	}
	// The dialog: our To tag on a private copy of the INVITE that every response is built from.
	inv := req.Clone()
	inv.To().Params.Add("tag", gvpsip.NewBranch("")[len(gvpsip.BranchMagic):])
	c.invite = inv
	for _, rr := range req.GetHeaders("Record-Route") {
		c.routes = append(c.routes, rr.Value())
	}
	c.key, _ = sip.DialogIDFromRequestUAS(inv)
	c.allowUpdate = hasOptionTag(req, "Allow", "", "UPDATE")
	c.ctx, c.cancel = context.WithCancel(context.Background())
	cdr := m.newCDR(req, sessionID, entry.Service, start)
	c.cdr = *cdr
	m.register(c)
	m.metrics.sessions.WithLabelValues(entry.Service).Inc()

	canceled := make(chan struct{})
	if !tx.OnCancel(func(*sip.Request) { close(canceled) }) {
		m.abortEarly(c, resultCanceled, 487)
		return
	}
	if p := m.cfg.Answer.Provisional; p != 0 {
		var pb []byte
		if p == 183 && !c.pendingOffer {
			pb = sdpBody
		}
		if err := tx.Respond(c.response(p, pb)); err != nil {
			m.abortEarly(c, resultFailed, 0)
			return
		}
	}
	if d := m.cfg.Answer.Delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-canceled:
		case <-tx.Done():
		}
		t.Stop()
	}
	select {
	case <-canceled:
		m.abortEarly(c, resultCanceled, 487)
		return
	case <-tx.Done():
		m.abortEarly(c, resultFailed, 0)
		return
	default:
	}
	if !c.pendingOffer {
		if err := sess.Start(med); err != nil {
			m.metrics.errors.WithLabelValues(errKindMedia).Inc()
			m.respond(inv, tx, 500)
			m.abortEarly(c, resultFailed, 500)
			return
		}
	}
	res := c.response(200, sdpBody)
	c.timer.headers(res)
	c.mu.Lock()
	c.state = stateAnswered
	c.pending, c.pendingTx, c.pendingSeq = res, tx, req.CSeq().SeqNo
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		m.metrics.errors.WithLabelValues(errKindSIP).Inc()
		c.log.Info().Err(err).Msg("send 200")
	}
	select {
	case <-canceled: // CANCEL crossed the 200: the transaction answered 487
		m.abortEarly(c, resultCanceled, 487)
		return
	default:
	}
	c.answerAt = time.Now()
	m.metrics.calls.WithLabelValues(resultAnswered).Inc()
	m.metrics.responses.WithLabelValues("2xx").Inc()
	m.metrics.setup.Observe(c.answerAt.Sub(start).Seconds())
	c.armRetransmit()
	c.armSessionTimer()
	c.armRTPTimer()
	c.cdr.Answer = c.answerAt.UTC()
	startRec := c.cdr
	m.publish(&startRec, c.log)
	c.log.Info().Str("service", entry.Service).Str("url", entry.URL).Str("from", c.RemoteURI()).
		Str("to", c.LocalURI()).Msg("call answered")
	go c.run()
}

// abortEarly ends a call that was never answered.
func (m *MCP) abortEarly(c *Call, result string, code int) {
	c.mu.Lock()
	c.state = stateEarly
	c.mu.Unlock()
	m.metrics.calls.WithLabelValues(result).Inc()
	if code != 0 {
		m.metrics.responses.WithLabelValues(responseClass(code)).Inc()
	}
	c.endCode = code
	reason := billing.EndCallerHangup
	if result != resultCanceled {
		reason = billing.EndError
	}
	c.end(reason, result, false)
}

// response builds a response to the initial INVITE as this dialog's UAS.
func (c *Call) response(code int, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(c.invite, code, gvpsip.ReasonPhrase(code), body)
	if code > 100 && code < 300 {
		res.AppendHeader(&sip.ContactHeader{Address: c.m.contactURI(c.invite.Transport())})
		res.AppendHeader(sip.NewHeader("Allow", allowed))
		res.AppendHeader(sip.NewHeader("Supported", supported))
		res.AppendHeader(sip.NewHeader(gvpsip.HeaderSessionID, c.sessionID))
	}
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", contentSDP))
	}
	return res
}

// armRetransmit starts retransmitting the pending 2xx (over UDP, RFC 3261 13.3.1.4) until
// its ACK, and ends the call with BYE when no ACK comes within 64*T1.
func (c *Call) armRetransmit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil || c.state == stateEnded {
		return
	}
	c.retransInterval = retransmitT1
	c.retransUntil = time.Now().Add(ackTimeout)
	next := retransmitT1
	if c.reliable {
		next = ackTimeout
	}
	if c.retransTimer == nil {
		c.retransTimer = time.AfterFunc(next, c.retransmit)
	} else {
		c.retransTimer.Reset(next)
	}
}

func (c *Call) retransmit() {
	c.mu.Lock()
	if c.pending == nil || (c.state == stateEnded && !c.byeAfterAck) {
		c.mu.Unlock()
		return
	}
	select {
	case ack := <-c.pendingTx.Acks(): // an ACK that reused the INVITE's branch
		c.mu.Unlock()
		c.onAck(ack)
		return
	default:
	}
	if !time.Now().Before(c.retransUntil) {
		c.pending = nil
		initial := c.state == stateAnswered
		if c.byeAfterAck {
			close(c.acked) // no ACK: the BYE goes anyway
			c.byeAfterAck = false
		}
		c.mu.Unlock()
		c.m.metrics.errors.WithLabelValues(errKindNoAck).Inc()
		if initial {
			c.log.Info().Msg("no ACK for 200: ending the call")
			c.end(billing.EndError, "no ACK", true)
		}
		return
	}
	res, tx := c.pending, c.pendingTx
	c.retransInterval = min(2*c.retransInterval, retransmitT2)
	c.retransTimer.Reset(min(c.retransInterval, time.Until(c.retransUntil)+time.Millisecond))
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.log.Debug().Err(err).Msg("retransmit 200")
	}
}

// onAck confirms the pending 2xx; when the 2xx carried our offer, the ACK's answer starts the
// media.
func (c *Call) onAck(req *sip.Request) {
	c.mu.Lock()
	if c.pending == nil || req.CSeq().SeqNo != c.pendingSeq {
		c.mu.Unlock()
		return
	}
	c.pending = nil
	if c.retransTimer != nil {
		c.retransTimer.Stop()
	}
	if c.byeAfterAck { // ended while waiting for this ACK: now the BYE may go
		close(c.acked)
		c.byeAfterAck = false
		c.mu.Unlock()
		return
	}
	if c.state == stateAnswered {
		c.state = stateConfirmed
	}
	offer := c.pendingOffer
	c.pendingOffer = false
	var (
		med sdpneg.Media
		err error
	)
	if offer {
		if len(req.Body()) == 0 {
			err = errors.New("ACK without the answer to our offer")
		} else {
			med, err = c.neg.ParseAnswer(req.Body())
		}
	}
	c.mu.Unlock()
	if offer {
		if err == nil {
			err = c.sess.Start(med)
		}
		if err != nil {
			c.m.metrics.errors.WithLabelValues(errKindMedia).Inc()
			c.log.Info().Err(err).Msg("answer in ACK")
			c.end(billing.EndError, "bad answer in ACK: "+err.Error(), true)
		}
	}
}

// onReInvite handles a target refresh / session modification: hold, resume, a new media
// address, a session refresh.
func (m *MCP) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := m.lookup(req)
	if c == nil {
		m.respond(req, tx, 481)
		return
	}
	c.mu.Lock()
	if c.state == stateEnded {
		c.mu.Unlock()
		m.respond(req, tx, 481)
		return
	}
	seq := req.CSeq().SeqNo
	if seq <= c.remoteSeq {
		c.mu.Unlock()
		m.respond(req, tx, 500, sip.NewHeader(gvpsip.HeaderRetryAfter, "1"))
		return
	}
	if c.pending != nil {
		c.mu.Unlock()
		m.respond(req, tx, 491)
		return
	}
	c.remoteSeq = seq
	st, tooSmall := m.negotiateTimer(req)
	if tooSmall {
		c.mu.Unlock()
		m.respond(req, tx, 422, sip.NewHeader(hdrMinSE, strconv.Itoa(int(m.cfg.SessionTimer.MinSE/time.Second))))
		return
	}
	var (
		body  []byte
		med   sdpneg.Media
		err   error
		offer bool
	)
	if len(req.Body()) > 0 {
		body, med, err = c.neg.Answer(req.Body())
	} else {
		body, err = c.neg.Offer()
		offer = true
	}
	if err != nil {
		c.mu.Unlock()
		code := 400
		var na *sdpneg.NotAcceptableError
		if errors.As(err, &na) {
			code = 488
		}
		res := sip.NewResponseFromRequest(req, code, gvpsip.ReasonPhrase(code), nil)
		_ = tx.Respond(res)
		return
	}
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.timer = st
	c.mu.Unlock()
	if !offer {
		if err := c.sess.Start(med); err != nil {
			m.metrics.errors.WithLabelValues(errKindMedia).Inc()
			m.respond(req, tx, 500)
			return
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(&sip.ContactHeader{Address: m.contactURI(req.Transport())})
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Supported", supported))
	res.AppendHeader(sip.NewHeader("Content-Type", contentSDP))
	st.headers(res)
	c.mu.Lock()
	c.pending, c.pendingTx, c.pendingSeq, c.pendingOffer = res, tx, seq, offer
	c.mu.Unlock()
	if err := tx.Respond(res); err != nil {
		c.log.Debug().Err(err).Msg("send 200 to re-INVITE")
	}
	c.armRetransmit()
	c.armSessionTimer()
	dir := "offer-in-ack"
	if !offer {
		dir = med.Direction.String()
	}
	c.log.Info().Str("direction", dir).Str("remote", med.Remote.String()).Msg("re-INVITE")
}

// onUpdate handles UPDATE (RFC 3311): a session refresh, with or without a new offer.
func (m *MCP) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := m.lookup(req)
	if c == nil {
		m.respond(req, tx, 481)
		return
	}
	st, tooSmall := m.negotiateTimer(req)
	if tooSmall {
		m.respond(req, tx, 422, sip.NewHeader(hdrMinSE, strconv.Itoa(int(m.cfg.SessionTimer.MinSE/time.Second))))
		return
	}
	var body []byte
	if len(req.Body()) > 0 {
		c.mu.Lock()
		b, med, err := c.neg.Answer(req.Body())
		c.mu.Unlock()
		if err != nil {
			m.respond(req, tx, 488)
			return
		}
		if err := c.sess.Start(med); err != nil {
			m.respond(req, tx, 500)
			return
		}
		body = b
	}
	c.mu.Lock()
	c.timer = st
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(&sip.ContactHeader{Address: m.contactURI(req.Transport())})
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", contentSDP))
	}
	st.headers(res)
	_ = tx.Respond(res)
	c.armSessionTimer()
}

// armSessionTimer (re)starts the RFC 4028 timer: as refresher we refresh at half the
// interval; otherwise a session not refreshed by interval - min(32 s, interval/3) is ended
// with BYE.
func (c *Call) armSessionTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateEnded || c.timer.interval == 0 {
		return
	}
	var d time.Duration
	var f func()
	if c.timer.refresher == refresherUS {
		d, f = c.timer.interval/2, c.refreshSession
	} else {
		d, f = c.timer.interval-min(32*time.Second, c.timer.interval/3), c.sessionExpired
	}
	if c.seTimer != nil {
		c.seTimer.Stop()
	}
	c.seTimer = time.AfterFunc(d, f)
}

func (c *Call) sessionExpired() {
	c.m.metrics.errors.WithLabelValues(errKindSession).Inc()
	c.log.Info().Dur("interval", c.timer.interval).Msg("session not refreshed: ending the call")
	c.end(billing.EndError, "session expired", true)
}

// refreshSession refreshes the session as the refresher: UPDATE when the caller allows it,
// else an in-dialog OPTIONS that at least proves the dialog is alive. No answer, 408 or 481
// ends the call.
func (c *Call) refreshSession() {
	c.mu.Lock()
	method := sip.OPTIONS
	if c.allowUpdate {
		method = sip.UPDATE
	}
	req := c.newRequestLocked(method)
	st := c.timer
	c.mu.Unlock()
	if method == sip.UPDATE {
		req.AppendHeader(sip.NewHeader(hdrSessionExpires, strconv.Itoa(int(st.interval/time.Second))+";refresher=uas"))
		req.AppendHeader(sip.NewHeader("Supported", supported))
		req.AppendHeader(&sip.ContactHeader{Address: c.m.contactURI(c.invite.Transport())})
	}
	ctx, cancel := context.WithTimeout(c.ctx, 32*time.Second)
	res, err := c.send(ctx, req)
	cancel()
	if c.ctx.Err() != nil {
		return
	}
	if err != nil || res.StatusCode == 408 || res.StatusCode == 481 {
		c.m.metrics.errors.WithLabelValues(errKindSession).Inc()
		detail := "session refresh failed"
		if err == nil {
			detail = fmt.Sprintf("session refresh answered %d", res.StatusCode)
		}
		c.log.Info().Err(err).Msg(detail)
		c.end(billing.EndError, detail, true)
		return
	}
	c.armSessionTimer()
}

// armRTPTimer checks for RTP inactivity every quarter of mcp.rtp_timeout.
func (c *Call) armRTPTimer() {
	to := c.m.cfg.RTPTimeout
	if to == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastRxAt = time.Now()
	c.rtpTimer = time.AfterFunc(to/4, c.checkRTP)
}

func (c *Call) checkRTP() {
	to := c.m.cfg.RTPTimeout
	st := c.sess.Stats()
	receiving := c.sess.Media().Direction.Receives()
	now := time.Now()
	c.mu.Lock()
	if c.state == stateEnded {
		c.mu.Unlock()
		return
	}
	if st.PacketsReceived != c.lastRx || !receiving {
		c.lastRx, c.lastRxAt = st.PacketsReceived, now
	}
	idle := now.Sub(c.lastRxAt)
	if idle < to {
		c.rtpTimer.Reset(to / 4)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.m.metrics.errors.WithLabelValues(errKindRTPTimeout).Inc()
	c.log.Info().Dur("idle", idle).Msg("no RTP received: ending the call")
	c.end(billing.EndError, "rtp timeout", true)
}

// onAckRequest matches an ACK to its call.
func (m *MCP) onAckRequest(req *sip.Request, tx sip.ServerTransaction) {
	if c := m.lookup(req); c != nil {
		c.onAck(req)
	}
}

// onBye ends the call the caller hung up (or one of the mcp's outbound calls).
func (m *MCP) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if m.dialer != nil && m.dialer.ReadBye(req, tx) == nil {
		return
	}
	c := m.lookup(req)
	if c == nil {
		m.respond(req, tx, 481)
		return
	}
	m.respond(req, tx, 200)
	c.end(billing.EndCallerHangup, "", false)
}

func (m *MCP) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// CANCELs matching an INVITE transaction are handled by the transaction layer.
	m.respond(req, tx, 481)
}

// onInfo takes DTMF in SIP INFO (application/dtmf-relay, application/dtmf).
func (m *MCP) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := m.lookup(req)
	if c == nil {
		m.respond(req, tx, 481)
		return
	}
	if len(req.Body()) == 0 { // keep-alive INFO
		m.respond(req, tx, 200)
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	d, _, err := parseInfoDTMF(ct, req.Body())
	switch {
	case errors.Is(err, errNotDTMF):
		m.respond(req, tx, 415, sip.NewHeader("Accept", contentDTMFRelay+", "+contentDTMF))
		return
	case err != nil:
		m.respond(req, tx, 400)
		return
	}
	m.respond(req, tx, 200)
	m.engine.Metrics().Digits.WithLabelValues(DigitMethodInfo).Inc()
	c.onDigit(d, DigitMethodInfo)
}

// onNotify takes the progress of a REFER the mcp sent.
func (m *MCP) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	c := m.lookup(req)
	if c == nil {
		m.respond(req, tx, 481)
		return
	}
	m.respond(req, tx, c.onNotify(req))
}

// onOptions answers probes (rm's monitor) with the load; 503 while draining. In a dialog it
// is a keep-alive.
func (m *MCP) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		if m.lookup(req) == nil {
			m.respond(req, tx, 481)
			return
		}
	}
	draining := m.draining.Load()
	load := sip.NewHeader(HeaderLoad, fmt.Sprintf("active=%d;capacity=%d;draining=%d", m.active.Load(), m.cfg.MaxSessions, b2i(draining)))
	hdrs := []sip.Header{load, sip.NewHeader("Allow", allowed), sip.NewHeader("Accept", contentSDP), sip.NewHeader("Supported", supported)}
	if draining {
		m.respond(req, tx, 503, append(hdrs, m.retryAfter())...)
		return
	}
	m.respond(req, tx, 200, hdrs...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// run runs the call's service, then hangs up if the caller has not.
func (c *Call) run() {
	defer func() {
		if r := recover(); r != nil {
			c.m.metrics.errors.WithLabelValues(errKindApp).Inc()
			c.log.Error().Interface("panic", r).Msg("application panicked")
			c.end(billing.EndError, fmt.Sprintf("application panic: %v", r), true)
		}
	}()
	var app Application
	switch c.entry.Service {
	case ServiceAnnouncement:
		app = announcement{loader: c.m.audio, timeout: c.m.cfg.FetchTimeout}
	case ServiceVoiceXML:
		app = c.m.vxml
	}
	err := app.Run(c.ctx, c)
	if c.ctx.Err() != nil {
		return // the call already ended
	}
	if err != nil && !errors.Is(err, ErrCallEnded) {
		kind := errKindApp
		var fe *fetchError
		if errors.As(err, &fe) {
			kind = errKindFetch
		}
		c.m.metrics.errors.WithLabelValues(kind).Inc()
		c.log.Warn().Err(err).Msg("service failed")
		c.end(billing.EndError, err.Error(), true)
		return
	}
	c.end(billing.EndPlatformHangup, "", true)
}
