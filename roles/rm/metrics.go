package rm

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Policy rejection reasons (label reason of gvp_rm_policy_rejections_total).
const (
	rejectNoProfile  = "no_profile"
	rejectForbidden  = "forbidden"
	rejectUsageLimit = "usage_limit"
	rejectMaxInbound = "max_inbound_calls"
	rejectNoResource = "no_resource"
	rejectDraining   = "draining"
	rejectOverload   = "overload"
)

// metrics are rm's Prometheus series. See README.md for the mapping to GVP's names.
type metrics struct {
	resourceUp     *prometheus.GaugeVec
	resourceActive *prometheus.GaugeVec
	resourceCalls  *prometheus.CounterVec
	tenantInbound  *prometheus.GaugeVec
	inviteResp     *prometheus.CounterVec
	failovers      prometheus.Counter
	rejections     *prometheus.CounterVec
	txDuration     *prometheus.HistogramVec
	activeCalls    prometheus.Gauge
	callsTotal     prometheus.Counter
	badRequests    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		resourceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gvp_rm_resource_up",
			Help: "1 when the mcp answers its pool's monitor, else 0 (GVP rmPRStatus)."}, []string{"pool", "resource"}),
		resourceActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gvp_rm_resource_active_calls",
			Help: "Calls in progress on the mcp (GVP rmPRActiveCalls)."}, []string{"pool", "resource"}),
		resourceCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gvp_rm_resource_calls_total",
			Help: "INVITEs sent to the mcp, failover attempts included (GVP rmPRTotalCalls)."}, []string{"pool", "resource"}),
		tenantInbound: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gvp_rm_tenant_inbound_calls",
			Help: "Inbound calls in progress per tenant (GVP rmTenantCurrentInboundCalls)."}, []string{"tenant"}),
		inviteResp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gvp_rm_invite_responses_total",
			Help: "Final responses rm sent to initial INVITEs, by class (GVP rmTotal2xxInviteSent ... rmTotal6xxInviteSent)."}, []string{"class"}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "gvp_rm_failovers_total",
			Help: "INVITEs retried on another mcp after a 5xx, 408 or timeout."}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gvp_rm_policy_rejections_total",
			Help: "Calls rejected without reaching an mcp, by reason."}, []string{"reason"}),
		txDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gvp_rm_transaction_duration_seconds",
			Help:    "Time from a request's arrival to the final response rm sends, by method.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"method"}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gvp_rm_active_calls",
			Help: "Calls (dialogs, early ones included) in progress through rm (GVP rmTotalActiveCalls)."}),
		callsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "gvp_rm_calls_total",
			Help: "Calls (initial INVITEs) received, inbound and from mcps (GVP rmTotalCalls)."}),
		badRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: "gvp_rm_bad_messages_total",
			Help: "Messages that did not parse (answered 400 when a request line and Via were readable)."}),
	}
	if reg != nil {
		reg.MustRegister(m.resourceUp, m.resourceActive, m.resourceCalls, m.tenantInbound, m.inviteResp,
			m.failovers, m.rejections, m.txDuration, m.activeCalls, m.callsTotal, m.badRequests)
	}
	return m
}

// registerTransactions exports the sizes of the transaction tables, counted at each scrape:
// live server and client transactions, and retired ones (answered, absorbing retransmissions).
func registerTransactions(reg prometheus.Registerer, p *proxy) {
	if reg == nil {
		return
	}
	for _, t := range []struct {
		kind string
		n    func() int
	}{{"server", p.stx.len}, {"client", p.ctx.len}, {"retired", p.retired.len}} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gvp_rm_transactions",
			Help:        "SIP transactions rm holds, by kind: server and client (live), retired (answered, absorbing retransmissions for 64*T1).",
			ConstLabels: prometheus.Labels{"kind": t.kind}}, func() float64 { return float64(t.n()) }))
	}
}

func (m *metrics) memberUp(mb *member, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.resourceUp.WithLabelValues(mb.pool, mb.name).Set(v)
	m.resourceActive.WithLabelValues(mb.pool, mb.name).Set(float64(mb.active.Load()))
}

func (m *metrics) forgetMember(mb *member) {
	m.resourceUp.DeleteLabelValues(mb.pool, mb.name)
	m.resourceActive.DeleteLabelValues(mb.pool, mb.name)
	m.resourceCalls.DeleteLabelValues(mb.pool, mb.name)
}

func responseClass(code int) string {
	switch code / 100 {
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	case 6:
		return "6xx"
	}
	return "1xx"
}
