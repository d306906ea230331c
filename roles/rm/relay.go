package rm

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/confmodel"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// relay forwards one request downstream and its responses upstream (RFC 3261's response
// context). An initial INVITE routed to a pool fails over to the next member on 5xx, 408 or no
// answer; the caller sees only the last attempt's answer.
type relay struct {
	p    *proxy
	stx  *serverTx
	orig *sip.Request // as received, routes popped; copied (shallowCopy) per attempt when routed to a pool
	raw  *rawRequest  // instead of orig: a request inside a dialog relayed from its bytes
	call *call        // the dialog for initial INVITEs

	// Pool routing.
	pool    string
	profile *confmodel.IVRProfile
	dnis    string
	// fixed is the next hop of a request not routed to a pool.
	fixed       peer
	recordRoute bool

	mu        sync.Mutex
	cur       *clientTx
	curAny    bool // the current branch answered something
	curProv   bool // the current branch sent a provisional (CANCEL allowed)
	tried     []*member
	attempts  int
	cancelled bool
	cancelReq bool // a CANCEL waits for the first provisional
	finished  bool
	failTimer *time.Timer
}

// shallowCopy returns req with Request-URI ruri as a new request sharing req's header values
// and body: headers can be added to and removed from either without touching the other. The
// shared values are not changed once a request is forwarded (ACK and CANCEL are built from
// copies), which is what makes sharing safe.
func shallowCopy(req *sip.Request, ruri sip.Uri) *sip.Request {
	fwd := sip.NewRequest(req.Method, ruri)
	fwd.SipVersion = req.SipVersion
	for _, h := range req.Headers() {
		fwd.AppendHeader(h)
	}
	fwd.SetBody(req.Body())
	return fwd
}

// tryNext sends the request to the next destination, or answers upstream when none is left.
func (r *relay) tryNext() {
	p := r.p
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	if r.cancelled {
		r.mu.Unlock()
		r.finish(487, "")
		return
	}
	var (
		fwd *sip.Request
		dst peer
		m   *member
	)
	if r.pool == "" {
		if r.attempts > 0 {
			r.mu.Unlock()
			r.finish(408, "")
			return
		}
		if r.raw != nil {
			r.attempts++
			tx := p.newClientTxData(r.raw.data, r.raw.branch, r.raw.method, r.fixed, r.onResponse, r.onTimeout)
			r.cur, r.curAny, r.curProv = tx, false, false
			r.mu.Unlock()
			tx.send()
			return
		}
		fwd, dst = r.orig, r.fixed
	} else {
		if r.attempts >= p.cfg.MCP.MaxAttempts {
			r.mu.Unlock()
			r.finishNoResource()
			return
		}
		m = p.pools.pick(r.pool, r.tried)
		if m == nil {
			r.mu.Unlock()
			r.finishNoResource()
			return
		}
		r.tried = append(r.tried, m)
		fwd, dst = shallowCopy(r.orig, mcpURI(r.profile, m.host, m.port, m.transport, r.dnis)), m.dst()
	}
	r.attempts++
	if r.recordRoute {
		in, out := r.stx.src.proto, dst.proto
		if in != out {
			fwd.PrependHeader(&sip.RecordRouteHeader{Address: p.rr[in]})
		}
		fwd.PrependHeader(&sip.RecordRouteHeader{Address: p.rr[out]})
	}
	prefix := ""
	if fwd.IsInvite() && !fwd.To().Params.Has("tag") {
		prefix = loopHash(fwd)
	}
	branch := gvpsip.NewBranch(prefix)
	fwd.PrependHeader(gvpsip.NewVia(dst.proto, p.host, p.port, branch))
	tx := p.newClientTx(fwd, branch, dst, r.onResponse, r.onTimeout)
	r.cur, r.curAny, r.curProv = tx, false, false
	if m != nil {
		if r.call != nil {
			if old := r.call.member.Swap(m); old != nil {
				p.metrics.resourceActive.WithLabelValues(old.pool, old.name).Set(float64(old.active.Add(-1)))
			}
			p.metrics.resourceActive.WithLabelValues(m.pool, m.name).Set(float64(m.active.Add(1)))
			r.call.editCDR(func(c *billing.CDR) { c.MCP = m.name })
		}
		p.metrics.resourceCalls.WithLabelValues(m.pool, m.name).Inc()
		if fwd.IsInvite() {
			r.failTimer = time.AfterFunc(p.cfg.MCP.InviteTimeout, func() { r.noAnswer(tx) })
		}
	}
	r.mu.Unlock()
	tx.send()
}

// noAnswer abandons a branch that answered nothing in time and tries the next member.
func (r *relay) noAnswer(tx *clientTx) {
	r.mu.Lock()
	if tx != r.cur || r.curAny || r.finished {
		r.mu.Unlock()
		return
	}
	r.cur = nil
	r.mu.Unlock()
	tx.stopRetransmit() // kept until Timer B so that a late answer is recognised
	r.p.metrics.failovers.Inc()
	r.p.log.Info().Str("call_id", r.callID()).Str("mcp", tx.dst.String()).Msg("no answer from mcp; trying the next")
	r.tryNext()
}

func (r *relay) callID() string {
	if req := r.request(); req != nil && req.CallID() != nil {
		return req.CallID().Value()
	}
	return ""
}

// request returns the request relayed, parsed.
func (r *relay) request() *sip.Request {
	if r.raw != nil {
		return r.raw.parsed()
	}
	return r.orig
}

func (r *relay) isInvite() bool {
	if r.raw != nil {
		return r.raw.method == sip.INVITE
	}
	return r.orig.IsInvite()
}

// onTimeout is the current branch's Timer B, F or C, or a transport error.
func (r *relay) onTimeout(tx *clientTx) {
	r.mu.Lock()
	if tx != r.cur || r.finished {
		r.mu.Unlock()
		return
	}
	r.cur = nil
	cancelled := r.cancelled
	pool := r.pool
	r.mu.Unlock()
	if cancelled {
		r.finish(487, "")
		return
	}
	if pool != "" {
		r.p.metrics.failovers.Inc()
		r.tryNext()
		return
	}
	r.finish(408, "")
}

// onResponse handles a response of one of the relay's branches.
func (r *relay) onResponse(tx *clientTx, req *sip.Request, res *response) {
	code := res.code
	r.mu.Lock()
	if tx != r.cur {
		r.mu.Unlock()
		if tx.invite && code >= 200 && code < 300 {
			r.p.hangUpStray(tx, req, res)
		}
		return
	}
	r.curAny = true
	if r.failTimer != nil {
		r.failTimer.Stop()
	}
	if code < 200 {
		if code == 100 {
			r.mu.Unlock()
			return
		}
		r.curProv = true
		sendCancel := r.cancelReq
		r.cancelReq = false
		r.mu.Unlock()
		if sendCancel && req != nil {
			r.sendCancel(tx, req)
		}
		r.stx.forward(res)
		return
	}
	if r.pool != "" && !r.cancelled && (code == 408 || (code >= 500 && code < 600)) {
		r.cur = nil
		r.mu.Unlock()
		r.p.metrics.failovers.Inc()
		r.p.log.Info().Str("call_id", r.callID()).Str("mcp", tx.dst.String()).Int("code", code).Msg("mcp failed; trying the next")
		r.tryNext()
		return
	}
	r.finished = true
	r.mu.Unlock()
	r.stx.forward(res)
	r.done(code)
}

// done records the final answer of an initial INVITE.
func (r *relay) done(code int) {
	c := r.call
	if c == nil || !r.isInvite() {
		return
	}
	r.p.metrics.inviteResp.WithLabelValues(responseClass(code)).Inc()
	if code >= 200 && code < 300 {
		if c.confirmed.CompareAndSwap(false, true) {
			c.editCDR(func(r *billing.CDR) { r.Answer = time.Now().UTC() })
		}
		return
	}
	reason := billing.EndRejected
	if code == 487 {
		reason = billing.EndCallerHangup
	}
	r.p.endCall(c, reason, "", code)
}

// finish answers upstream from rm itself.
func (r *relay) finish(code int, phrase string) {
	r.finishWith(code, phrase, false)
}

func (r *relay) finishNoResource() {
	r.p.metrics.rejections.WithLabelValues(rejectNoResource).Inc()
	r.finishWith(503, "", true)
}

func (r *relay) finishWith(code int, phrase string, retry bool) {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	if r.failTimer != nil {
		r.failTimer.Stop()
	}
	r.mu.Unlock()
	req := r.request()
	if req == nil {
		// Relayed from bytes that sipgo does not read (headers rm does not route on): no
		// response can be built, but the transaction must not stay open.
		r.p.log.Info().Int("code", code).Msg("cannot answer a relayed request that does not parse; ending its transaction")
		r.stx.terminate()
		return
	}
	res := gvpsip.NewResponse(req, code, phrase)
	if r.pool == "" && r.attempts > 0 && r.raw == nil {
		// The request was forwarded as is: the top Via is ours.
		res.RemoveHeader("Via")
	}
	if retry {
		gvpsip.SetRetryAfter(res, r.p.cfg.RetryAfter)
	}
	r.stx.respond(res)
	r.done(code)
}

// cancel handles a CANCEL from upstream (RFC 3261 16.10).
func (r *relay) cancel() {
	r.mu.Lock()
	if r.finished || r.cancelled {
		r.mu.Unlock()
		return
	}
	r.cancelled = true
	cur := r.cur
	if cur == nil {
		r.mu.Unlock()
		r.finish(487, "")
		return
	}
	if !r.curProv {
		r.cancelReq = true // RFC 3261 9.1: wait for a provisional before sending CANCEL
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	cur.mu.Lock()
	req := cur.req
	cur.mu.Unlock()
	if req != nil {
		r.sendCancel(cur, req)
	}
}

func (r *relay) sendCancel(tx *clientTx, req *sip.Request) {
	c := cancelFor(req)
	r.p.newClientTx(c, tx.branch, tx.dst, nil, nil).send()
}
