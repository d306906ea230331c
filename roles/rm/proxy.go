package rm

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/lifecycle"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// allowHeader lists the methods rm relays.
const allowHeader = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK, MESSAGE, SUBSCRIBE"

// proxy is rm's SIP core: a transaction-stateful Record-Route proxy.
type proxy struct {
	cfg       Config
	log       zerolog.Logger
	tp        *transport
	host      string // advertised host in Via and Record-Route
	hostBytes []byte // host, for comparing in place
	port      int
	rr        map[string]sip.Uri // Record-Route URI per transport
	stx       *txTable[*serverTx]
	ctx       *txTable[*clientTx]
	retired   *retiredTable // server transactions that only absorb retransmissions
	calls     callTable
	counters  *counters
	pools     *pools
	metrics   *metrics
	source    ConfigSource
	billing   billing.Publisher
	records   *billing.Queue // nil without billing
	inflight  lifecycle.Inflight
	draining  atomic.Bool
	done      chan struct{}
	upstream  peer
	noRoute   confmodel.Response
	nodeID    string
	badLog    atomic.Int64 // unix seconds of the last logged bad message
}

func (p *proxy) isOurs(u *sip.Uri) bool { return gvpsip.IsElementURI(u, p.host, p.port) }

func (p *proxy) viaIsOurs(v *sip.ViaHeader) bool {
	if v == nil {
		return false
	}
	port := v.Port
	if port == 0 {
		port = sip.DefaultUdpPort
	}
	return port == p.port && strings.EqualFold(v.Host, p.host)
}

// handle dispatches a parsed message.
func (p *proxy) handle(msg sip.Message, from peer) {
	switch m := msg.(type) {
	case *sip.Request:
		p.onRequest(m, from)
	case *sip.Response:
		p.onResponse(m)
	}
}

// onBad answers 400 to a message that did not parse when its request line and Via are readable.
func (p *proxy) onBad(data []byte, from peer, err error) {
	p.metrics.badRequests.Inc()
	now := time.Now().Unix()
	if last := p.badLog.Load(); now != last && p.badLog.CompareAndSwap(last, now) {
		p.log.Info().Err(err).Str("peer", from.String()).Int("bytes", len(data)).Msg("unparsable SIP message")
	}
	rec, ok := gvpsip.BadRequest(data, err.Error())
	if !ok {
		return
	}
	_ = p.tp.send(from, rec.Response)
}

// respondStateless answers req outside any transaction.
func (p *proxy) respondStateless(req *sip.Request, from peer, code int, reason string) {
	res := gvpsip.NewResponse(req, code, reason)
	_ = p.tp.writeMsg(from, res)
}

func (p *proxy) onRequest(req *sip.Request, from peer) {
	via := req.Via()
	if via == nil {
		return // nowhere to answer
	}
	if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil ||
		(req.CSeq().MethodName != req.Method && !req.IsAck() && !req.IsCancel()) {
		if !req.IsAck() {
			p.respondStateless(req, from, 400, "Bad Request")
		}
		return
	}
	gvpsip.StampReceived(via, from.addr.Addr().String(), int(from.addr.Port()), from.proto != gvpsip.UDP)
	switch req.Method {
	case sip.ACK:
		p.onAck(req, from)
		return
	case sip.CANCEL:
		p.onCancel(req, from)
		return
	}
	key, ok := serverKey(req, req.Method)
	if !ok {
		// RFC 2543 client: the key is made of the request's identifying fields.
		key = txKey{branch: "2543|" + req.CallID().Value() + "|" + strconv.Itoa(int(req.CSeq().SeqNo)),
			host: via.Host, port: via.Port, method: req.Method}
	}
	stx, created := p.newServerTx(key, req.Method, from)
	if !created {
		if stx != nil {
			stx.retransmission()
		}
		return
	}
	inDialog := req.To().Params.Has("tag")
	if req.IsInvite() {
		b := getBuf()
		writeTrying(b, req)
		stx.respondData(b.Bytes(), 100)
		putBuf(b)
	}
	popped := p.popRoutes(req)
	ourRURI := p.isOurs(&req.Recipient) && topRoute(req) == nil
	if ourRURI && req.Method == sip.OPTIONS {
		res := gvpsip.NewResponse(req, 200, "OK")
		res.AppendHeader(sip.NewHeader("Allow", allowHeader))
		stx.respond(res)
		return
	}
	if !gvpsip.DecrementMaxForwards(req) {
		stx.respond(gvpsip.NewResponse(req, 483, "Too Many Hops"))
		return
	}
	if !inDialog && p.looped(req) {
		stx.respond(gvpsip.NewResponse(req, 482, "Loop Detected"))
		return
	}
	if inDialog {
		p.forwardInDialog(req, stx, popped)
		return
	}
	if m := p.pools.fromMember(from.addr, via.Host, via.Port); m != nil {
		p.forwardFromMCP(req, stx, m)
		return
	}
	if req.IsInvite() {
		p.routeInvite(req, stx)
		return
	}
	res := gvpsip.NewResponse(req, 405, "Method Not Allowed")
	res.AppendHeader(sip.NewHeader("Allow", allowHeader))
	stx.respond(res)
}

// topRoute returns the request's first Route, as req.Route() does without allocating when
// there is none (Route is parsed when a request is, so each one is a *sip.RouteHeader).
func topRoute(req *sip.Request) *sip.RouteHeader {
	for _, h := range req.Headers() {
		if r, ok := h.(*sip.RouteHeader); ok {
			return r
		}
	}
	return nil
}

// writeTrying writes the 100 Trying to req: the bytes gvpsip.NewResponse(req, 100, "Trying")
// serialises to (Vias, From, To, Call-ID, CSeq and Timestamp copied, Content-Length 0), without
// building the response.
func writeTrying(b *bytes.Buffer, req *sip.Request) {
	b.WriteString(req.SipVersion)
	b.WriteString(" 100 Trying\r\n")
	hs := req.Headers()
	for _, h := range hs {
		if v, ok := h.(*sip.ViaHeader); ok {
			writeVia(b, v)
			b.WriteString("\r\n")
		}
	}
	for _, h := range [...]sip.Header{req.From(), req.To(), req.CallID(), req.CSeq()} {
		writeHeader(b, h)
		b.WriteString("\r\n")
	}
	for _, h := range hs {
		if strings.EqualFold(h.Name(), "Timestamp") {
			h.StringWrite(b)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
}

// loopHash is the RFC 3261 16.6 step 8 hash of the fields that change when a request spirals
// instead of looping: Request-URI, Call-ID, From tag, CSeq number and the top Route (FNV-1a,
// 32 bits, base 36).
func loopHash(req *sip.Request) string {
	b := getBuf()
	writeURI(b, &req.Recipient)
	b.WriteString(req.CallID().Value())
	if t, ok := req.From().Params.Get("tag"); ok {
		b.WriteString(t)
	}
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(req.CSeq().SeqNo), 10))
	if r := topRoute(req); r != nil {
		writeURI(b, &r.Address)
	}
	h := uint32(2166136261)
	for _, c := range b.Bytes() {
		h ^= uint32(c)
		h *= 16777619
	}
	putBuf(b)
	var out [8]byte
	return string(append(strconv.AppendUint(out[:0], uint64(h), 36), '.'))
}

// looped reports whether one of the request's Vias is ours with the branch we would give it now.
func (p *proxy) looped(req *sip.Request) bool {
	var ours []string
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if ok && p.viaIsOurs(v) {
			br, _ := v.Params.Get("branch")
			ours = append(ours, br)
		}
	}
	if len(ours) == 0 {
		return false
	}
	prefix := gvpsip.BranchMagic + loopHash(req)
	for _, br := range ours {
		if strings.HasPrefix(br, prefix) {
			return true
		}
	}
	return false
}

// popRoutes applies RFC 3261 16.4: a Request-URI that is our Record-Route (a strict router
// before us) is replaced by the last Route, and our own Route entries on top are removed. It
// returns the transport of the last entry removed ("" when none), the transport that faces
// the next hop when rm double-record-routed.
func (p *proxy) popRoutes(req *sip.Request) string {
	if p.isOurs(&req.Recipient) && req.Recipient.UriParams != nil && req.Recipient.UriParams.Has("lr") {
		if rs := req.GetHeaders("Route"); len(rs) > 0 {
			if last, ok := rs[len(rs)-1].(*sip.RouteHeader); ok {
				req.Recipient = *last.Address.Clone()
				removeLastRoute(req)
			}
		}
	}
	tr := ""
	for {
		r := topRoute(req)
		if r == nil || !p.isOurs(&r.Address) {
			return tr
		}
		tr = gvpsip.URITransport(&r.Address)
		req.RemoveHeader("Route")
	}
}

func removeLastRoute(req *sip.Request) {
	hs := req.Headers()
	for i := len(hs) - 1; i >= 0; i-- {
		if _, ok := hs[i].(*sip.RouteHeader); ok {
			all := req.GetHeaders("Route")
			for range all {
				req.RemoveHeader("Route")
			}
			for _, h := range all[:len(all)-1] {
				req.AppendHeader(h)
			}
			return
		}
	}
}

// nextHop returns where an in-dialog or routed request goes: its top Route, else its
// Request-URI; the transport is the URI's, else popped (the transport of our Record-Route
// facing that side), else UDP.
func (p *proxy) nextHop(req *sip.Request, popped string) (peer, error) {
	u := &req.Recipient
	if r := topRoute(req); r != nil {
		u = &r.Address
	}
	tr := ""
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok {
			tr = strings.ToLower(t)
		}
	}
	tr, port := hopTransportPort(tr, popped, u.Port)
	a, err := resolve(context.Background(), u.Host, port)
	if err != nil {
		return peer{}, err
	}
	return peer{proto: tr, addr: a}, nil
}

// hopTransportPort is how a next-hop URI with transport parameter tr (lower case, "" when
// absent) and port (0 when absent) is reached: tr, else popped (the transport of rm's
// Record-Route facing that side), else UDP; port, else 5060.
func hopTransportPort(tr, popped string, port int) (string, int) {
	if tr == "" {
		tr = popped
	}
	if tr == "" {
		tr = gvpsip.UDP
	}
	if port == 0 {
		port = sip.DefaultUdpPort
	}
	return tr, port
}

// forwardInDialog relays a request inside a dialog along its Route set (never re-mapped).
func (p *proxy) forwardInDialog(req *sip.Request, stx *serverTx, popped string) {
	dst, err := p.nextHop(req, popped)
	if err != nil || (dst.addr.Port() == uint16(p.port) && p.isOurs(&req.Recipient)) {
		stx.respond(gvpsip.NewResponse(req, 404, "Not Found"))
		return
	}
	c := p.calls.get(req.CallID().Value())
	if c != nil {
		c.lastSeen.Store(time.Now().UnixNano())
		if req.Method == sip.BYE {
			reason := billing.EndPlatformHangup
			if t, _ := req.From().Params.Get("tag"); t == c.callerTag {
				reason = billing.EndCallerHangup
			}
			p.endCall(c, reason, "", 0)
		}
	}
	r := &relay{p: p, stx: stx, orig: req, fixed: dst}
	stx.setRelay(r)
	r.tryNext()
}

// forwardFromMCP relays a new dialog started by an mcp to the upstream SIP Server.
func (p *proxy) forwardFromMCP(req *sip.Request, stx *serverTx, m *member) {
	r := &relay{p: p, stx: stx, orig: req, fixed: p.upstream, recordRoute: true}
	if req.IsInvite() {
		if p.draining.Load() {
			p.reject(req, stx, rejectDraining, 503, "", true)
			return
		}
		c := p.newCall(req, "", "", false)
		if c == nil {
			stx.respond(gvpsip.NewResponse(req, 482, "Loop Detected"))
			return
		}
		c.member.Store(m)
		c.editCDR(func(r *billing.CDR) { r.MCP = m.name })
		p.publish(c.cdrCopy())
		p.metrics.resourceActive.WithLabelValues(m.pool, m.name).Set(float64(m.active.Add(1)))
		r.call = c
	}
	stx.setRelay(r)
	r.tryNext()
}

// reject answers an initial INVITE without contacting an mcp.
func (p *proxy) reject(req *sip.Request, stx *serverTx, reason string, code int, phrase string, retry bool) {
	p.metrics.rejections.WithLabelValues(reason).Inc()
	p.metrics.inviteResp.WithLabelValues(responseClass(code)).Inc()
	res := gvpsip.NewResponse(req, code, phrase)
	if retry {
		gvpsip.SetRetryAfter(res, p.cfg.RetryAfter)
	}
	stx.respond(res)
	now := time.Now()
	cdr := &billing.CDR{ID: billing.NewRecordID(), SessionID: uuid.NewString(), Component: billing.ComponentRM,
		ComponentName: "rm", State: billing.StateInProgress, DNIS: req.Recipient.User, ANI: req.From().Address.User,
		CallID: req.CallID().Value(), Start: now}
	cdr.LocalURI, cdr.RemoteURI = cdrURIs(req)
	cdr.Complete(now, billing.EndRejected, reason, code)
	p.publish(cdr)
}

// newCall registers a call for an initial INVITE; nil when its Call-ID is in use.
func (p *proxy) newCall(req *sip.Request, tenant, profile string, inbound bool) *call {
	tag, _ := req.From().Params.Get("tag")
	c := &call{callID: req.CallID().Value(), sessionID: uuid.NewString(), tenant: tenant, profile: profile,
		inbound: inbound, callerTag: tag}
	c.lastSeen.Store(time.Now().UnixNano())
	if !p.calls.put(c) {
		return nil
	}
	p.inflight.Add()
	p.metrics.activeCalls.Inc()
	p.metrics.callsTotal.Inc()
	// The session id header: ours replaces any received one.
	for req.RemoveHeader(gvpsip.HeaderSessionID) {
	}
	req.AppendHeader(sip.NewHeader(gvpsip.HeaderSessionID, c.sessionID+";gvp.rm.datanodes=node-id="+p.nodeID))
	c.cdr = &billing.CDR{ID: billing.NewRecordID(), SessionID: c.sessionID, Component: billing.ComponentRM,
		ComponentName: "rm", State: billing.StateInProgress, TenantName: tenant, DNIS: req.Recipient.User,
		ANI: req.From().Address.User, CallID: c.callID, Start: time.Now().UTC()}
	c.cdr.LocalURI, c.cdr.RemoteURI = cdrURIs(req)
	return c
}

// cdrURIs returns the To and From URIs of req as a CDR's local and remote URI, written as
// Uri.String does into one string.
func cdrURIs(req *sip.Request) (local, remote string) {
	b := getBuf()
	writeURI(b, &req.To().Address)
	n := b.Len()
	writeURI(b, &req.From().Address)
	s := b.String()
	putBuf(b)
	return s[:n], s[n:]
}

// routeInvite selects the profile of an inbound INVITE, applies policy and starts the relay.
func (p *proxy) routeInvite(req *sip.Request, stx *serverTx) {
	if p.draining.Load() {
		p.reject(req, stx, rejectDraining, 503, "", true)
		return
	}
	if p.calls.len() >= p.cfg.MaxCalls {
		p.reject(req, stx, rejectOverload, 503, "", true)
		return
	}
	snap := p.source.Snapshot()
	sel, ok := selectProfile(snap, req)
	if !ok || sel.tenant == nil {
		p.reject(req, stx, rejectNoProfile, p.noRoute.Code, p.noRoute.Reason, false)
		return
	}
	pp, _ := snap.ProfilePolicy(sel.profile)
	tp, _ := snap.TenantPolicy(sel.tenant.Name)
	if !pp.Allowed {
		p.reject(req, stx, rejectForbidden, pp.ForbiddenResponse.Code, pp.ForbiddenResponse.Reason, false)
		return
	}
	if !tp.Allowed {
		p.reject(req, stx, rejectForbidden, tp.ForbiddenResponse.Code, tp.ForbiddenResponse.Reason, false)
		return
	}
	pool, ok := snap.PoolForProfile(sel.profile)
	if !ok {
		p.reject(req, stx, rejectNoResource, 503, "", true)
		return
	}
	pkey := sel.profile.Key()
	if why, resp := p.counters.admit(sel.tenant.Name, tp, pkey, pp); why != "" {
		p.reject(req, stx, why, resp.Code, resp.Reason, false)
		return
	}
	p.metrics.tenantInbound.WithLabelValues(sel.tenant.Name).Set(float64(p.counters.tenantCalls(sel.tenant.Name)))
	dnis := req.Recipient.User
	c := p.newCall(req, sel.tenant.Name, pkey, true)
	if c == nil {
		left := p.counters.release(sel.tenant.Name, pkey)
		p.metrics.tenantInbound.WithLabelValues(sel.tenant.Name).Set(float64(left))
		stx.respond(gvpsip.NewResponse(req, 482, "Loop Detected"))
		return
	}
	c.editCDR(func(r *billing.CDR) {
		r.TenantID = sel.tenant.ID
		r.Profile = sel.profile.Name
		r.ServiceType = string(sel.profile.Service)
	})
	p.publish(c.cdrCopy())
	p.log.Debug().Str("call_id", c.callID).Str("gvp_session_id", c.sessionID).Str("tenant", sel.tenant.Name).
		Str("profile", pkey).Str("by", sel.by).Str("pool", pool.Name).Msg("call routed")
	r := &relay{p: p, stx: stx, orig: req, call: c, pool: pool.Name, profile: sel.profile, dnis: dnis, recordRoute: true}
	stx.setRelay(r)
	r.tryNext()
}

// onAck absorbs the ACK of a non-2xx final response, or relays an end-to-end ACK for a 2xx.
func (p *proxy) onAck(req *sip.Request, from peer) {
	if key, ok := serverKey(req, sip.INVITE); ok {
		if stx, found := p.stx.get(key); found && stx.ack() {
			return
		}
	}
	popped := p.popRoutes(req)
	if !gvpsip.DecrementMaxForwards(req) {
		return
	}
	dst, err := p.nextHop(req, popped)
	if err != nil || p.isOurs(&req.Recipient) && topRoute(req) == nil {
		return
	}
	if c := p.calls.get(req.CallID().Value()); c != nil {
		c.lastSeen.Store(time.Now().UnixNano())
	}
	req.PrependHeader(gvpsip.NewVia(dst.proto, p.host, p.port, gvpsip.NewBranch("")))
	_ = p.tp.writeMsg(dst, req)
}

// onCancel answers a CANCEL and cancels the pending branch of its INVITE.
func (p *proxy) onCancel(req *sip.Request, from peer) {
	key, ok := serverKey(req, sip.INVITE)
	var stx *serverTx
	if ok {
		if stx, ok = p.stx.get(key); !ok {
			// An INVITE already answered with a 2xx: nothing left to cancel, but the
			// response context exists (RFC 3261 16.10).
			_, ok = p.retired.get(key)
		}
	}
	if !ok {
		p.respondStateless(req, from, 481, "")
		return
	}
	p.respondStateless(req, from, 200, "OK")
	if stx == nil {
		return
	}
	if r := stx.getRelay(); r != nil {
		r.cancel()
	}
}

// onRaw offers a UDP message to the relays that work on bytes (see scan.go).
func (p *proxy) onRaw(data []byte, from peer) bool {
	if bytes.HasPrefix(data, sipVersionPrefix) {
		return p.onRawResponse(data, from)
	}
	return p.onRawRequest(data, from)
}

// onRawResponse takes a UDP response of a client transaction from its bytes (see response).
// It returns false for what it leaves to the parser and onResponse: responses it declines to
// scan and responses without a transaction.
func (p *proxy) onRawResponse(data []byte, _ peer) bool {
	s, ok := scanResponse(data)
	if !ok {
		return false
	}
	if !p.isOurHostPort(s.via.host, s.via.port) {
		return true // not through rm: dropped, as onResponse does
	}
	tx, ok := p.ctx.get(clientKey(bytesKey(s.via.branch), s.seqMethod))
	if !ok {
		return false
	}
	tx.receive(&response{code: s.code, raw: data, via: s.via.remove, parser: p.tp.resp})
	return true
}

// onResponse matches a response to its client transaction or relays a stray 2xx to INVITE.
func (p *proxy) onResponse(res *sip.Response) {
	via := res.Via()
	if !p.viaIsOurs(via) || res.CSeq() == nil {
		return
	}
	br, _ := via.Params.Get("branch")
	if tx, ok := p.ctx.get(clientKey(br, res.CSeq().MethodName)); ok {
		tx.receive(&response{code: res.StatusCode, msg: res})
		return
	}
	// RFC 3261 16.7: a response without a transaction is forwarded statelessly; only 2xx
	// retransmissions to INVITE matter, the others were absorbed by their transaction.
	if res.CSeq().MethodName != sip.INVITE || res.StatusCode < 200 || res.StatusCode >= 300 {
		return
	}
	res.RemoveHeader("Via")
	next := res.Via()
	if next == nil {
		return
	}
	host, port, tr := gvpsip.ViaDestination(next)
	a, err := resolve(context.Background(), host, port)
	if err != nil {
		return
	}
	_ = p.tp.writeMsg(peer{proto: tr, addr: a}, res)
}

// probe sends OPTIONS to m and reports whether any response came within wait.
func (p *proxy) probe(m *member, wait time.Duration) bool {
	if !m.addr.IsValid() {
		return false
	}
	target := sip.Uri{Scheme: "sip", Host: m.host, Port: m.port}
	req := sip.NewRequest(sip.OPTIONS, target)
	branch := gvpsip.NewBranch("")
	req.AppendHeader(gvpsip.NewVia(m.transport, p.host, p.port, branch))
	mf := sip.MaxForwardsHeader(gvpsip.DefaultMaxForwards)
	req.AppendHeader(&mf)
	fp := sip.NewParams()
	fp.Add("tag", gvpsip.NewBranch("")[len(gvpsip.BranchMagic):])
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "rm", Host: p.host, Port: p.port}, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
	cid := sip.CallIDHeader(uuid.NewString())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	ch := make(chan struct{}, 1)
	tx := p.newClientTx(req, branch, m.dst(), func(*clientTx, *sip.Request, *response) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}, nil)
	tx.send()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		tx.terminate()
		return false
	case <-p.done:
		tx.terminate()
		return false
	}
}

// hangUpStray ends a dialog an abandoned branch established after rm moved on: ACK its 2xx
// and send BYE, so the mcp does not hold a call nobody will use.
func (p *proxy) hangUpStray(tx *clientTx, req *sip.Request, r *response) {
	res := r.parsed()
	if req == nil || res == nil || res.To() == nil {
		return
	}
	target := req.Recipient
	if ct := res.Contact(); ct != nil {
		target = ct.Address
	}
	mk := func(method sip.RequestMethod, seq uint32) *sip.Request {
		r := sip.NewRequest(method, *target.Clone())
		r.AppendHeader(gvpsip.NewVia(tx.dst.proto, p.host, p.port, gvpsip.NewBranch("")))
		mf := sip.MaxForwardsHeader(gvpsip.DefaultMaxForwards)
		r.AppendHeader(&mf)
		r.AppendHeader(sip.HeaderClone(req.From()))
		r.AppendHeader(sip.HeaderClone(res.To()))
		r.AppendHeader(sip.HeaderClone(req.CallID()))
		r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
		cl := sip.ContentLengthHeader(0)
		r.AppendHeader(&cl)
		return r
	}
	seq := req.CSeq().SeqNo
	_ = p.tp.writeMsg(tx.dst, mk(sip.ACK, seq))
	bye := mk(sip.BYE, seq+1)
	br, _ := bye.Via().Params.Get("branch")
	p.newClientTx(bye, br, tx.dst, nil, nil).send()
}
