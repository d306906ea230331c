package rm

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opengvp/gvp/internal/confmodel"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// member is the runtime state of one mcp of a pool.
type member struct {
	name      string
	pool      string
	host      string
	port      int
	transport string
	capacity  int
	addr      netip.AddrPort // resolved address; invalid when the host did not resolve

	active atomic.Int64
	up     atomic.Bool
	misses atomic.Int32
	stop   chan struct{} // closes the monitor
}

func (m *member) dst() peer { return peer{proto: m.transport, addr: m.addr} }

// usage is active/capacity.
func (m *member) usage() float64 {
	c := m.capacity
	if c <= 0 {
		c = confmodel.DefaultMCPCapacity
	}
	return float64(m.active.Load()) / float64(c)
}

// poolState is a pool and its members at one configuration revision.
type poolState struct {
	cfg     *confmodel.Pool
	members []*member
	next    atomic.Uint64
}

// pools holds every pool's members, rebuilt on each configuration change with the runtime
// state (availability, active calls) of unchanged members carried over.
type pools struct {
	p  *proxy
	mu sync.RWMutex
	// byName maps pool names to their state.
	byName map[string]*poolState
	// byAddr recognises requests coming from an mcp.
	byAddr map[netip.AddrPort]*member
	// all maps member names to their state.
	all map[string]*member
}

func newPools(p *proxy) *pools {
	return &pools{p: p, byName: map[string]*poolState{}, byAddr: map[netip.AddrPort]*member{}, all: map[string]*member{}}
}

// update applies a snapshot: new members start available and monitored, removed members stop
// being monitored (calls in progress on them continue).
func (ps *pools) update(s *confmodel.Snapshot) {
	if s == nil {
		return
	}
	byName := map[string]*poolState{}
	byAddr := map[netip.AddrPort]*member{}
	all := map[string]*member{}
	var started []*member
	ps.mu.RLock()
	old := ps.all
	ps.mu.RUnlock()
	for _, pc := range s.Pools() {
		st := &poolState{cfg: pc}
		for _, mc := range s.Members(pc.Name) {
			host, portStr, err := net.SplitHostPort(mc.Address)
			if err != nil {
				continue
			}
			port, _ := strconv.Atoi(portStr)
			tr := string(mc.Transport)
			if tr == "" {
				tr = gvpsip.UDP
			}
			m := old[mc.Name]
			if m == nil || m.host != host || m.port != port || m.transport != tr || m.pool != pc.Name {
				m = &member{name: mc.Name, pool: pc.Name, host: host, port: port, transport: tr, stop: make(chan struct{})}
				if a, err := resolve(context.Background(), host, port); err == nil {
					m.addr = a
				}
				m.up.Store(true)
				started = append(started, m)
			}
			m.capacity = mc.Capacity
			st.members = append(st.members, m)
			all[m.name] = m
			if m.addr.IsValid() {
				byAddr[m.addr] = m
			}
		}
		if prev, ok := ps.byName[pc.Name]; ok {
			st.next.Store(prev.next.Load())
		}
		byName[pc.Name] = st
	}
	ps.mu.Lock()
	ps.byName, ps.byAddr, ps.all = byName, byAddr, all
	ps.mu.Unlock()
	for name, m := range old {
		if all[name] != m {
			close(m.stop)
			ps.p.metrics.forgetMember(m)
		}
	}
	for _, m := range started {
		ps.p.metrics.memberUp(m, true)
		st := byName[m.pool]
		go ps.p.monitor(m, st.cfg.Monitor)
	}
}

// stopAll stops every monitor.
func (ps *pools) stopAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, m := range ps.all {
		close(m.stop)
	}
	ps.all = map[string]*member{}
	ps.byName = map[string]*poolState{}
	ps.byAddr = map[netip.AddrPort]*member{}
}

// fromMember returns the member a request came from: by source address, else by the top Via's
// sent-by.
func (ps *pools) fromMember(src netip.AddrPort, viaHost string, viaPort int) *member {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	if m, ok := ps.byAddr[src]; ok {
		return m
	}
	if viaPort == 0 {
		viaPort = 5060
	}
	if a, err := netip.ParseAddr(viaHost); err == nil {
		if m, ok := ps.byAddr[netip.AddrPortFrom(a.Unmap(), uint16(viaPort))]; ok {
			return m
		}
	}
	return nil
}

// pick returns the next available member of pool by its scheme, skipping tried ones; nil when
// none is left.
func (ps *pools) pick(pool string, tried []*member) *member {
	ps.mu.RLock()
	st := ps.byName[pool]
	ps.mu.RUnlock()
	if st == nil || len(st.members) == 0 {
		return nil
	}
	ok := func(m *member) bool {
		if !m.up.Load() || !m.addr.IsValid() {
			return false
		}
		for _, t := range tried {
			if t == m {
				return false
			}
		}
		return true
	}
	n := len(st.members)
	switch st.cfg.LoadBalance {
	case confmodel.LoadBalanceLeastPercentUsage:
		start := int(st.next.Add(1) % uint64(n))
		var best *member
		for i := 0; i < n; i++ {
			m := st.members[(start+i)%n]
			if ok(m) && (best == nil || m.usage() < best.usage()) {
				best = m
			}
		}
		return best
	default:
		for i := 0; i < n; i++ {
			m := st.members[int((st.next.Add(1)-1)%uint64(n))]
			if ok(m) {
				return m
			}
		}
		return nil
	}
}

// Monitor defaults when a pool's monitor fields are unset.
const (
	// minProbeInterval bounds how often a member is probed.
	minProbeInterval = 100 * time.Millisecond
)

// monitor probes m with OPTIONS every interval until m.stop closes. A member is marked
// unavailable after failures consecutive unanswered probes and available after one answer.
func (p *proxy) monitor(m *member, mon confmodel.Monitor) {
	if mon.Method == confmodel.MonitorNone {
		return
	}
	every := mon.Interval.D()
	if every <= 0 {
		every = confmodel.DefaultMonitorInterval
	}
	every = max(every, minProbeInterval)
	failures := mon.Failures
	if failures <= 0 {
		failures = confmodel.DefaultMonitorFailures
	}
	// A probe gets the interval to answer, at most Timer F.
	wait := min(every, timer64T1)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-p.done:
			return
		case <-t.C:
		}
		answered := p.probe(m, wait)
		if answered {
			m.misses.Store(0)
			if !m.up.Swap(true) {
				p.log.Info().Str("mcp", m.name).Str("pool", m.pool).Msg("mcp available")
				p.metrics.memberUp(m, true)
			}
			continue
		}
		if int(m.misses.Add(1)) >= failures && m.up.Swap(false) {
			p.log.Warn().Str("mcp", m.name).Str("pool", m.pool).Int("missed", failures).Msg("mcp unavailable")
			p.metrics.memberUp(m, false)
		}
	}
}
