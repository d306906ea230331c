package rm

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/confmodel"
)

// call is one dialog through rm, from the initial INVITE to its end. It holds what is needed
// to release its counters and write its CDR; the INVITE itself is not kept.
type call struct {
	callID    string
	sessionID string
	tenant    string // counted tenant; empty for calls from an mcp
	profile   string // profile key; empty for calls from an mcp
	inbound   bool
	callerTag string
	member    atomic.Pointer[member]
	cdrMu     sync.Mutex
	cdr       *billing.CDR // guarded by cdrMu; published as copies
	lastSeen  atomic.Int64 // unix nanoseconds of the last in-dialog request
	confirmed atomic.Bool
	ended     atomic.Bool
}

// editCDR changes the call's CDR under its lock.
func (c *call) editCDR(f func(*billing.CDR)) {
	c.cdrMu.Lock()
	f(c.cdr)
	c.cdrMu.Unlock()
}

// cdrCopy returns a copy of the call's CDR.
func (c *call) cdrCopy() *billing.CDR {
	c.cdrMu.Lock()
	defer c.cdrMu.Unlock()
	cp := *c.cdr
	return &cp
}

// counters are the concurrent calls per tenant and per profile that policies limit.
type counters struct {
	mu       sync.Mutex
	tenants  map[string]int
	profiles map[string]int
}

func newCounters() *counters {
	return &counters{tenants: map[string]int{}, profiles: map[string]int{}}
}

// admit checks the limits of a call of tenant t with profile p under policy tp (tenant) and pp
// (profile) and counts it when admitted. It returns the rejection reason and response, or "".
func (c *counters) admit(t string, tp confmodel.EffectivePolicy, p string, pp confmodel.EffectivePolicy) (string, confmodel.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tn, pn := c.tenants[t], c.profiles[p]
	if pp.UsageLimit != confmodel.Unlimited && pn >= pp.UsageLimit {
		return rejectUsageLimit, pp.UsageLimitExceededResponse
	}
	if tp.UsageLimit != confmodel.Unlimited && tn >= tp.UsageLimit {
		return rejectUsageLimit, tp.UsageLimitExceededResponse
	}
	if pp.MaxInboundCalls != confmodel.Unlimited && tn >= pp.MaxInboundCalls {
		return rejectMaxInbound, pp.UsageLimitExceededResponse
	}
	c.tenants[t] = tn + 1
	c.profiles[p] = pn + 1
	return "", confmodel.Response{}
}

// release uncounts a call admitted with admit and returns the tenant's remaining calls.
func (c *counters) release(t, p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.profiles[p] - 1; n > 0 {
		c.profiles[p] = n
	} else {
		delete(c.profiles, p)
	}
	n := c.tenants[t] - 1
	if n > 0 {
		c.tenants[t] = n
	} else {
		delete(c.tenants, t)
		n = 0
	}
	return n
}

// tenantCalls returns the tenant's counted calls.
func (c *counters) tenantCalls(t string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenants[t]
}

// callTable maps Call-IDs to calls.
type callTable struct {
	mu sync.RWMutex
	m  map[string]*call
}

func (t *callTable) get(id string) *call {
	t.mu.RLock()
	c := t.m[id]
	t.mu.RUnlock()
	return c
}

// put stores c unless a call with the same Call-ID exists.
func (t *callTable) put(c *call) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[c.callID]; ok {
		return false
	}
	t.m[c.callID] = c
	return true
}

func (t *callTable) del(c *call) {
	t.mu.Lock()
	if t.m[c.callID] == c {
		delete(t.m, c.callID)
	}
	t.mu.Unlock()
}

func (t *callTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// idle returns the calls whose last activity is before cutoff.
func (t *callTable) idle(cutoff int64) []*call {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []*call
	for _, c := range t.m {
		if c.lastSeen.Load() < cutoff {
			out = append(out, c)
		}
	}
	return out
}

// endCall ends c once: it releases its counters and member, forgets it and completes its CDR.
func (p *proxy) endCall(c *call, reason billing.EndReason, detail string, code int) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	p.calls.del(c)
	if c.inbound {
		left := p.counters.release(c.tenant, c.profile)
		p.metrics.tenantInbound.WithLabelValues(c.tenant).Set(float64(left))
	}
	if m := c.member.Load(); m != nil {
		p.metrics.resourceActive.WithLabelValues(m.pool, m.name).Set(float64(m.active.Add(-1)))
	}
	p.metrics.activeCalls.Dec()
	p.inflight.Done()
	if c.cdr != nil {
		c.editCDR(func(r *billing.CDR) { r.Complete(time.Now(), reason, detail, code) })
		p.publish(c.cdrCopy())
	}
	p.log.Debug().Str("call_id", c.callID).Str("gvp_session_id", c.sessionID).Str("reason", string(reason)).
		Int("code", code).Msg("call ended")
}

// sweepIdle ends the calls that saw no in-dialog request for the dialog timeout: dialogs whose
// BYE never came.
func (p *proxy) sweepIdle(now time.Time) int {
	cut := now.Add(-p.cfg.DialogTimeout).UnixNano()
	idle := p.calls.idle(cut)
	for _, c := range idle {
		p.log.Info().Str("call_id", c.callID).Str("gvp_session_id", c.sessionID).Msg("dialog timed out")
		p.endCall(c, billing.EndError, "dialog timeout", 0)
	}
	return len(idle)
}

// publish hands rec to the billing publisher, through the record queue once rm runs.
func (p *proxy) publish(rec billing.Record) {
	if p.billing == nil {
		return
	}
	if p.records != nil {
		p.records.Publish(rec)
		return
	}
	if err := p.billing.Publish(rec); err != nil {
		p.log.Warn().Err(err).Str("record_id", rec.RecordID()).Msg("publish billing record")
	}
}
