package mcp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of gvp_mcp_calls_total.
const (
	resultAnswered = "answered"
	resultRejected = "rejected"
	resultCanceled = "canceled"
	resultFailed   = "failed"
)

// Kinds of gvp_mcp_errors_total.
const (
	errKindMedia      = "media"
	errKindSIP        = "sip"
	errKindNoAck      = "no_ack"
	errKindFetch      = "fetch"
	errKindApp        = "application"
	errKindRTPTimeout = "rtp_timeout"
	errKindSession    = "session_expired"
)

// DigitMethodInfo is the method label of DTMF digits received in SIP INFO
// (gvp_mcp_dtmf_digits_total, next to the media engine's rfc4733 and inband).
const DigitMethodInfo = "sip_info"

// metrics are the mcp's own collectors; the media engine registers its RTP metrics next to
// them. See README.md for the mapping to GVP's names.
type metrics struct {
	sessions  *prometheus.GaugeVec
	capacity  prometheus.Gauge
	calls     *prometheus.CounterVec
	ended     *prometheus.CounterVec
	responses *prometheus.CounterVec
	errors    *prometheus.CounterVec
	setup     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gvp_mcp_sessions", Help: "Calls in progress by service type (GVP mcpSipCurrentInboundSessions).",
		}, []string{"type"}),
		capacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_mcp_capacity_sessions", Help: "Configured maximum of concurrent calls (mcp.max_sessions).",
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_calls_total", Help: "Inbound INVITEs by result: answered, rejected, canceled, failed.",
		}, []string{"result"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_calls_ended_total", Help: "Answered calls that ended, by end reason.",
		}, []string{"reason"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_invite_responses_total", Help: "Final responses sent to initial INVITEs, by class (2xx, 4xx, 5xx, 6xx).",
		}, []string{"class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_errors_total", Help: "Errors by kind: media, sip, no_ack, fetch, application, rtp_timeout, session_expired.",
		}, []string{"kind"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gvp_mcp_answer_seconds", Help: "Time from INVITE received to 200 OK sent.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	for _, t := range []string{ServiceVoiceXML, ServiceAnnouncement} {
		m.sessions.WithLabelValues(t)
	}
	for _, r := range []string{resultAnswered, resultRejected, resultCanceled, resultFailed} {
		m.calls.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sessions, m.capacity, m.calls, m.ended, m.responses, m.errors, m.setup} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func responseClass(code int) string {
	return string(rune('0'+code/100)) + "xx"
}
