package media

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DTMF detection methods, used as the "method" label.
const (
	MethodRFC4733 = "rfc4733"
	MethodInband  = "inband"
)

// Metrics holds the engine's Prometheus collectors. Counters are
// incremented with atomic adds on the packet paths (no allocation, no
// label lookup per packet).
type Metrics struct {
	PacketsSent     prometheus.Counter
	BytesSent       prometheus.Counter
	PacketsReceived prometheus.Counter
	BytesReceived   prometheus.Counter
	PacketsLost     prometheus.Counter
	PacketsLate     prometheus.Counter
	Digits          *prometheus.CounterVec
	Sessions        prometheus.Gauge
	PortPairsInUse  prometheus.GaugeFunc
	// TickLateness is how late scheduler workers wake up relative to the
	// deadline of a send phase; TickDuration is how long one phase's burst
	// of sends takes. A call's send interval error is about the change in
	// lateness from one tick to the next plus its place in its burst;
	// either approaching 20 ms means the host is overloaded.
	TickLateness prometheus.Histogram
	TickDuration prometheus.Histogram
	// SendIntervalError is, for each send phase and tick, how far the time since the phase's
	// previous burst was from 20 ms: the send interval error of the phase's sessions (to
	// within their place in the burst).
	SendIntervalError prometheus.Histogram

	digitsRFC4733 prometheus.Counter
	digitsInband  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, ports *PortAllocator) (*Metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "gvp", Subsystem: "mcp_rtp", Name: name, Help: help})
	}
	m := &Metrics{
		PacketsSent:     c("packets_sent_total", "RTP packets sent."),
		BytesSent:       c("bytes_sent_total", "RTP payload bytes sent."),
		PacketsReceived: c("packets_received_total", "RTP packets received."),
		BytesReceived:   c("bytes_received_total", "RTP payload bytes received."),
		PacketsLost:     c("packets_lost_total", "RTP packets lost (RFC 3550 expected minus received)."),
		PacketsLate:     c("packets_late_total", "RTP packets that arrived after their playout time."),
		Digits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gvp", Subsystem: "mcp", Name: "dtmf_digits_total", Help: "DTMF digits received, by detection method.",
		}, []string{"method"}),
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "gvp", Subsystem: "mcp_rtp", Name: "sessions", Help: "Open RTP sessions."}),
		PortPairsInUse: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "gvp", Subsystem: "mcp_rtp", Name: "port_pairs_in_use", Help: "RTP/RTCP port pairs allocated or held off.",
		}, func() float64 { s := ports.Stats(); return float64(s.InUse + s.HeldOff) }),
	}
	buckets := []float64{.0001, .00025, .0005, .001, .0015, .002, .003, .005, .01, .02, .05}
	m.TickLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gvp", Subsystem: "mcp_rtp", Name: "scheduler_lateness_seconds",
		Help: "Delay between a scheduler send phase's deadline and the worker waking up.", Buckets: buckets,
	})
	m.TickDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gvp", Subsystem: "mcp_rtp", Name: "scheduler_tick_seconds",
		Help: "Time a scheduler worker spends serving the sessions of one send phase.", Buckets: buckets,
	})
	m.SendIntervalError = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gvp", Subsystem: "mcp_rtp", Name: "send_interval_error_seconds",
		Help: "Distance from 20 ms of the interval between two bursts of a send phase (per phase and tick).", Buckets: buckets,
	})
	m.digitsRFC4733 = m.Digits.WithLabelValues(MethodRFC4733)
	m.digitsInband = m.Digits.WithLabelValues(MethodInband)
	if reg != nil {
		for _, col := range []prometheus.Collector{m.PacketsSent, m.BytesSent, m.PacketsReceived, m.BytesReceived,
			m.PacketsLost, m.PacketsLate, m.Digits, m.Sessions, m.PortPairsInUse, m.TickLateness, m.TickDuration,
			m.SendIntervalError} {
			if err := reg.Register(col); err != nil {
				return nil, err // a second engine needs its own registry
			}
		}
	}
	return m, nil
}
