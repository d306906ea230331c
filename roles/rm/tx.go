package rm

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// SIP timers (RFC 3261 17 and RFC 6026).
const (
	// timerT1 is the round-trip estimate.
	timerT1 = 500 * time.Millisecond
	// timerT2 caps the retransmit interval of non-INVITE requests and INVITE responses.
	timerT2 = 4 * time.Second
	// timerT4 is the longest a message stays in the network.
	timerT4 = 5 * time.Second
	// timer64T1 is Timers B, F, H, J, L and M.
	timer64T1 = 64 * timerT1
	// timerD is how long an INVITE client transaction absorbs final response retransmissions.
	timerD = 32 * time.Second
	// timerC bounds an INVITE branch that is proceeding (RFC 3261 16.6 step 11: > 3 min).
	timerC = 3*time.Minute + 30*time.Second
)

// Transaction states.
const (
	stCalling = iota // client: request sent, nothing received
	stProceeding
	stCompleted  // final response sent/received, absorbing retransmissions
	stConfirmed  // server INVITE: ACK received
	stTerminated // gone from the table
)

// txKey identifies a transaction. Server transactions use the RFC 3261 17.2.3 fields (branch,
// sent-by host and port, method); client transactions only the branch and method. Being a
// struct of strings already held by the parsed message, it costs no allocation.
type txKey struct {
	branch string
	host   string
	port   int
	method sip.RequestMethod
}

// txTable is a sharded map of transactions.
type txTable[T any] struct {
	seed   maphash.Seed
	shards [64]lockedMap[txKey, T]
}

// lockedMap is a map with its lock: a shard of a table.
type lockedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (l *lockedMap[K, V]) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func newTxTable[T any]() *txTable[T] {
	t := &txTable[T]{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = map[txKey]T{}
	}
	return t
}

func (t *txTable[T]) shard(k txKey) int { return int(maphash.String(t.seed, k.branch) & 63) }

// getOrPut returns the value under k, or stores v and returns it with loaded=false.
func (t *txTable[T]) getOrPut(k txKey, v T) (T, bool) {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		return old, true
	}
	s.m[k] = v
	return v, false
}

func (t *txTable[T]) get(k txKey) (T, bool) {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	return v, ok
}

// len returns the number of transactions in the table.
func (t *txTable[T]) len() int {
	n := 0
	for i := range t.shards {
		n += t.shards[i].size()
	}
	return n
}

func (t *txTable[T]) del(k txKey) {
	s := &t.shards[t.shard(k)]
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// serverKey is the RFC 3261 17.2.3 key of a request: branch, sent-by and method (ACK and
// CANCEL map to their INVITE when asked).
func serverKey(req *sip.Request, method sip.RequestMethod) (txKey, bool) {
	v := req.Via()
	if v == nil {
		return txKey{}, false
	}
	br, _ := v.Params.Get("branch")
	if len(br) <= len(gvpsip.BranchMagic) || br[:len(gvpsip.BranchMagic)] != gvpsip.BranchMagic {
		return txKey{}, false
	}
	return txKey{branch: br, host: v.Host, port: v.Port, method: method}, true
}

// clientKey is the key of a response or request of a client transaction: our branch and the
// CSeq method.
func clientKey(branch string, method sip.RequestMethod) txKey {
	return txKey{branch: branch, method: method}
}

// serverTx is the upstream side of a proxied request: it answers retransmissions with the last
// response and retransmits final INVITE responses over UDP until the ACK.
type serverTx struct {
	p      *proxy
	key    txKey
	src    peer
	invite bool
	start  time.Time
	method string

	mu       sync.Mutex
	state    int
	last     []byte
	gEvery   time.Duration
	timer    *time.Timer // G (retransmit) while completed over UDP
	endTimer *time.Timer // H, I, J or L
	relay    *relay      // the forwarding in progress, for CANCEL
}

// newServerTx starts the server transaction of a request. When it is a retransmission it returns
// false and the transaction it belongs to, or nil when that one is retired (its last response,
// if any, then already went to src again).
func (p *proxy) newServerTx(key txKey, method sip.RequestMethod, src peer) (*serverTx, bool) {
	rh := p.retired.hash(key)
	if p.absorbRetired(rh, src) {
		return nil, false
	}
	tx := &serverTx{p: p, key: key, src: src, invite: method == sip.INVITE, start: time.Now(),
		method: string(method), state: stProceeding}
	got, loaded := p.stx.getOrPut(key, tx)
	if loaded {
		return got, false
	}
	// The transaction may have retired between the two lookups (retired, then gone from the
	// live table): it is in the retired table now.
	if p.absorbRetired(rh, src) {
		p.stx.del(key)
		return nil, false
	}
	return got, true
}

// absorbRetired reports whether the transaction whose retired-table hash is h is retired,
// sending its last response to src again.
func (p *proxy) absorbRetired(h uint64, src peer) bool {
	last, ok := p.retired.lookup(h)
	if ok && last != nil {
		_ = p.tp.send(src, last)
	}
	return ok
}

func (tx *serverTx) reliable() bool { return tx.src.proto != gvpsip.UDP }

// respond sends res upstream. A response after a final one is dropped.
func (tx *serverTx) respond(res *sip.Response) {
	b := getBuf()
	writeMessage(b, res)
	tx.respondData(b.Bytes(), res.StatusCode)
	putBuf(b)
}

// forward sends a response of a client transaction upstream, without its top Via.
func (tx *serverTx) forward(res *response) {
	b := getBuf()
	res.writeRelayed(b)
	tx.respondData(b.Bytes(), res.code)
	putBuf(b)
}

// respondData sends the response data (code) upstream; data is copied when kept.
func (tx *serverTx) respondData(data []byte, code int) {
	tx.mu.Lock()
	if tx.state != stProceeding {
		tx.mu.Unlock()
		return
	}
	final := code >= 200
	if !(final && tx.invite && code < 300) {
		tx.last = append(tx.last[:0:0], data...)
	}
	if final {
		// The forwarding is over: a CANCEL has nothing left to cancel. Dropping the relay
		// frees the request it holds while the transaction absorbs retransmissions.
		tx.relay = nil
		switch {
		case tx.invite && code < 300:
			// RFC 6026 Accepted: only INVITE retransmissions to absorb (2xx retransmissions
			// are the UAS's job), which the retired table does from here on.
			tx.retire(nil)
		case tx.invite:
			tx.state = stCompleted
			if !tx.reliable() {
				tx.gEvery = timerT1
				tx.timer = time.AfterFunc(tx.gEvery, tx.retransmitFinal)
			}
			tx.endAfter(timer64T1)
		default:
			tx.state = stCompleted
			if tx.reliable() {
				tx.endAfter(0)
			} else {
				tx.retire(tx.last)
			}
		}
	}
	// Sent under the lock so that responses leave in the order they were accepted (a 180
	// never overtakes the 200).
	err := tx.p.tp.send(tx.src, data)
	tx.mu.Unlock()
	if err != nil {
		tx.p.log.Debug().Err(err).Str("peer", tx.src.String()).Msg("send response")
	}
	if final {
		tx.p.metrics.txDuration.WithLabelValues(tx.method).Observe(time.Since(tx.start).Seconds())
	}
}

// retire hands tx over to the retired table, which absorbs its request's retransmissions
// (answering them with last, when not nil) for 64*T1, and ends it; tx.mu is held. It is in the
// retired table before it leaves the live one, so a retransmission finds it in one or the other.
func (tx *serverTx) retire(last []byte) {
	tx.p.retired.put(tx.key, last, time.Now())
	tx.endAfter(0)
}

// endAfter schedules the removal of tx; tx.mu is held.
func (tx *serverTx) endAfter(d time.Duration) {
	if tx.endTimer != nil {
		tx.endTimer.Stop()
	}
	if d <= 0 {
		tx.terminateLocked()
		return
	}
	if tx.endTimer != nil {
		tx.endTimer.Reset(d)
		return
	}
	tx.endTimer = time.AfterFunc(d, tx.terminate)
}

func (tx *serverTx) terminate() {
	tx.mu.Lock()
	tx.terminateLocked()
	tx.mu.Unlock()
}

func (tx *serverTx) terminateLocked() {
	if tx.state == stTerminated {
		return
	}
	tx.state = stTerminated
	if tx.timer != nil {
		tx.timer.Stop()
	}
	tx.last = nil
	tx.relay = nil
	tx.p.stx.del(tx.key)
}

// retransmitFinal is Timer G.
func (tx *serverTx) retransmitFinal() {
	tx.mu.Lock()
	if tx.state != stCompleted || tx.last == nil {
		tx.mu.Unlock()
		return
	}
	data := tx.last
	tx.gEvery = min(2*tx.gEvery, timerT2)
	tx.timer.Reset(tx.gEvery)
	tx.mu.Unlock()
	_ = tx.p.tp.send(tx.src, data)
}

// retransmission answers a retransmitted request with the last response.
func (tx *serverTx) retransmission() {
	tx.mu.Lock()
	data := tx.last
	tx.mu.Unlock()
	if data != nil {
		_ = tx.p.tp.send(tx.src, data)
	}
}

// ack takes the ACK of a non-2xx final INVITE response. It returns false when tx did not send
// one (the ACK is then end to end, for a 2xx, and must be relayed).
func (tx *serverTx) ack() bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state == stConfirmed {
		return true
	}
	if tx.state != stCompleted {
		return false
	}
	tx.state = stConfirmed
	if tx.timer != nil {
		tx.timer.Stop()
	}
	tx.last = nil
	if tx.reliable() {
		tx.endAfter(0)
	} else {
		tx.endAfter(timerT4)
	}
	return true
}

func (tx *serverTx) setRelay(r *relay) {
	tx.mu.Lock()
	tx.relay = r
	tx.mu.Unlock()
}

func (tx *serverTx) getRelay() *relay {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.relay
}

// clientTx is the downstream side: it retransmits over UDP, matches responses and times out.
type clientTx struct {
	p      *proxy
	key    txKey
	branch string
	dst    peer
	invite bool
	req    *sip.Request // as sent; kept until the final response for ACK/CANCEL
	data   []byte

	mu        sync.Mutex
	state     int
	aEvery    time.Duration
	timerA    *time.Timer
	timerB    *time.Timer // B, F, C, D or K: see setTimerB
	bDeadline time.Time   // when timerB is due
	ackData   []byte
	onResp    respFunc
	onTimeout func(*clientTx)
}

// respFunc receives a response of a client transaction with the request it answers.
type respFunc func(tx *clientTx, req *sip.Request, res *response)

// newClientTx prepares a client transaction for req (whose top Via is ours, with branch) to
// dst; send starts it.
func (p *proxy) newClientTx(req *sip.Request, branch string, dst peer, onResp respFunc, onTimeout func(*clientTx)) *clientTx {
	b := getBuf()
	writeMessage(b, req)
	data := append([]byte(nil), b.Bytes()...)
	putBuf(b)
	tx := p.newClientTxData(data, branch, req.Method, dst, onResp, onTimeout)
	tx.req = req
	return tx
}

// newClientTxData prepares a client transaction sending data, a request of method whose top
// Via is ours, with branch. Without the request as an object it cannot ACK or CANCEL: it is
// for requests other than INVITE.
func (p *proxy) newClientTxData(data []byte, branch string, method sip.RequestMethod, dst peer, onResp respFunc, onTimeout func(*clientTx)) *clientTx {
	return &clientTx{p: p, branch: branch, key: clientKey(branch, method), dst: dst, invite: method == sip.INVITE,
		data: data, state: stCalling, onResp: onResp, onTimeout: onTimeout}
}

// send registers tx and sends its request.
func (tx *clientTx) send() {
	p := tx.p
	p.ctx.getOrPut(tx.key, tx)
	tx.mu.Lock()
	if tx.dst.proto == gvpsip.UDP {
		tx.aEvery = timerT1
		tx.timerA = time.AfterFunc(tx.aEvery, tx.retransmit)
	}
	tx.setTimerB(timer64T1)
	data := tx.data
	tx.mu.Unlock()
	if err := p.tp.send(tx.dst, data); err != nil {
		p.log.Debug().Err(err).Str("peer", tx.dst.String()).Msg("send request")
		if tx.dst.proto != gvpsip.UDP {
			go tx.timeout() // a transport error is a timeout (RFC 3261 8.1.3.1)
		}
	}
}

// retransmit is Timer A (INVITE) or E (non-INVITE).
func (tx *clientTx) retransmit() {
	tx.mu.Lock()
	if tx.state != stCalling && !(tx.state == stProceeding && !tx.invite) {
		tx.mu.Unlock()
		return
	}
	if tx.invite {
		tx.aEvery *= 2
	} else {
		tx.aEvery = min(2*tx.aEvery, timerT2)
	}
	tx.timerA.Reset(tx.aEvery)
	data := tx.data
	tx.mu.Unlock()
	_ = tx.p.tp.send(tx.dst, data)
}

// setTimerB (re)arms the transaction's one long timer: B or F while calling, C while an INVITE
// proceeds, D or K once completed. tx.mu is held.
func (tx *clientTx) setTimerB(d time.Duration) {
	tx.bDeadline = time.Now().Add(d)
	if tx.timerB == nil {
		tx.timerB = time.AfterFunc(d, tx.onTimerB)
		return
	}
	tx.timerB.Reset(d)
}

// onTimerB ends a completed transaction (Timers D and K) or times out one still waiting for
// its final response (B, F, C). A firing that a later setTimerB superseded is ignored.
func (tx *clientTx) onTimerB() {
	tx.mu.Lock()
	if time.Until(tx.bDeadline) > time.Millisecond {
		tx.mu.Unlock()
		return
	}
	if tx.state >= stCompleted {
		tx.terminateLocked()
		tx.mu.Unlock()
		return
	}
	tx.mu.Unlock()
	tx.timeout()
}

// timeout is Timer B, F or C.
func (tx *clientTx) timeout() {
	tx.mu.Lock()
	if tx.state >= stCompleted {
		tx.mu.Unlock()
		return
	}
	cb := tx.onTimeout
	tx.terminateLocked()
	tx.mu.Unlock()
	if cb != nil {
		cb(tx)
	}
}

// stopRetransmit stops Timer A without ending the transaction (an abandoned branch).
func (tx *clientTx) stopRetransmit() {
	tx.mu.Lock()
	if tx.timerA != nil {
		tx.timerA.Stop()
	}
	tx.aEvery = 0
	if tx.state == stCalling {
		tx.state = stProceeding
	}
	tx.mu.Unlock()
}

func (tx *clientTx) terminateLocked() {
	if tx.state == stTerminated {
		return
	}
	tx.state = stTerminated
	if tx.timerA != nil {
		tx.timerA.Stop()
	}
	if tx.timerB != nil {
		tx.timerB.Stop()
	}
	tx.req = nil
	tx.data = nil
	tx.ackData = nil
	tx.onResp, tx.onTimeout = nil, nil
	tx.p.ctx.del(tx.key)
}

func (tx *clientTx) terminate() {
	tx.mu.Lock()
	tx.terminateLocked()
	tx.mu.Unlock()
}

// receive handles a response matched to tx.
func (tx *clientTx) receive(res *response) {
	code := res.code
	tx.mu.Lock()
	switch tx.state {
	case stTerminated:
		tx.mu.Unlock()
		return
	case stCompleted:
		// A retransmitted final response: re-ACK a non-2xx INVITE response.
		ack := tx.ackData
		tx.mu.Unlock()
		if ack != nil && code >= 300 {
			_ = tx.p.tp.send(tx.dst, ack)
		}
		return
	}
	if code < 200 {
		if tx.state == stCalling {
			tx.state = stProceeding
			if tx.invite {
				if tx.timerA != nil {
					tx.timerA.Stop()
				}
				// Timer C replaces Timer B once the branch proceeds.
				tx.setTimerB(timerC)
			}
		}
		cb, req := tx.onResp, tx.req
		tx.mu.Unlock()
		if cb != nil {
			cb(tx, req, res)
		}
		return
	}
	// Final response.
	cb := tx.onResp
	req := tx.req
	if tx.timerA != nil {
		tx.timerA.Stop()
	}
	if tx.timerB != nil {
		tx.timerB.Stop()
	}
	switch {
	case tx.invite && code < 300:
		tx.terminateLocked()
	case tx.invite:
		tx.state = stCompleted
		if m := res.parsed(); req != nil && m != nil {
			ack := ackFor(req, m)
			b := getBuf()
			writeMessage(b, ack)
			tx.ackData = append([]byte(nil), b.Bytes()...)
			putBuf(b)
		}
		tx.req = nil
		tx.data = nil
		if tx.dst.proto == gvpsip.UDP {
			tx.setTimerB(timerD)
		} else {
			tx.terminateLocked()
		}
	default:
		// Timer K would only absorb retransmissions of the final response; without the
		// transaction they are dropped all the same (onResponse relays stray 2xx to INVITE
		// only), so the transaction ends now instead of being kept T4 for nothing.
		tx.terminateLocked()
	}
	// A completed INVITE only re-ACKs: the relay (and the request it holds) can go.
	tx.onResp, tx.onTimeout = nil, nil
	ack := tx.ackData
	tx.mu.Unlock()
	if ack != nil {
		_ = tx.p.tp.send(tx.dst, ack)
	}
	if cb != nil {
		cb(tx, req, res)
	}
}

// ackFor builds the ACK of a non-2xx final response to req (RFC 3261 17.1.1.3): same
// Request-URI, top Via, From, Call-ID, CSeq number and Route; To from the response.
func ackFor(req *sip.Request, res *sip.Response) *sip.Request {
	ack := sip.NewRequest(sip.ACK, *req.Recipient.Clone())
	ack.SipVersion = req.SipVersion
	if v := req.Via(); v != nil {
		ack.AppendHeader(v.Clone())
	}
	for _, h := range req.GetHeaders("Route") {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(gvpsip.DefaultMaxForwards)
	ack.AppendHeader(&mf)
	if h := req.From(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := res.To(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.CallID(); h != nil {
		ack.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.CSeq(); h != nil {
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: sip.ACK})
	}
	cl := sip.ContentLengthHeader(0)
	ack.AppendHeader(&cl)
	return ack
}

// cancelFor builds the CANCEL of req (RFC 3261 9.1): same Request-URI, top Via, Route, From,
// To, Call-ID and CSeq number.
func cancelFor(req *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, *req.Recipient.Clone())
	c.SipVersion = req.SipVersion
	if v := req.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, h := range req.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(gvpsip.DefaultMaxForwards)
	c.AppendHeader(&mf)
	for _, n := range []string{"From", "To", "Call-ID"} {
		if h := req.GetHeader(n); h != nil {
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	if h := req.CSeq(); h != nil {
		c.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: sip.CANCEL})
	}
	cl := sip.ContentLengthHeader(0)
	c.AppendHeader(&cl)
	return c
}
