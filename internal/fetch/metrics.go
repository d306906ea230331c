package fetch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome says how a fetch was served.
type Outcome uint8

// Outcomes, from best to worst; a fetch that follows redirects reports
// the worst outcome of its hops.
const (
	// OutcomeHit: served from the cache without contacting the origin.
	OutcomeHit Outcome = iota
	// OutcomeCoalesced: waited for a concurrent fetch of the same URL and
	// used its response.
	OutcomeCoalesced
	// OutcomeRevalidated: the origin answered 304 Not Modified to a
	// conditional request; the cached body was used.
	OutcomeRevalidated
	// OutcomeMiss: the body came from the origin.
	OutcomeMiss
	// OutcomeFile: read from a file:// URL (never cached).
	OutcomeFile
	// OutcomeError: the fetch failed (including HTTP status >= 400).
	OutcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"hit", "coalesced", "revalidated", "miss", "file", "error"}

// String returns the metric label of o.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// metrics holds the collectors. Children are resolved once so the hot
// path does no label lookup.
type metrics struct {
	requests     [numOutcomes]prometheus.Counter
	duration     [numOutcomes]prometheus.Observer
	originBytes  prometheus.Counter
	servedBytes  prometheus.Counter
	cacheBytes   prometheus.Gauge
	cacheEntries prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "gvp", "mcp_fetch"
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "Fetches by result: hit, coalesced, revalidated, miss, file, error.",
	}, []string{"result"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "duration_seconds",
		Help:    "Fetch latency by result, redirects included.",
		Buckets: []float64{.00001, .0001, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"result"})
	m := &metrics{
		originBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "origin_bytes_total",
			Help: "Body bytes received from origin servers and files.",
		}),
		servedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "served_bytes_total",
			Help: "Body bytes returned to callers (cache hits included).",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_bytes",
			Help: "Bytes held by the response cache.",
		}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_entries",
			Help: "Responses held by the response cache.",
		}),
	}
	for o := Outcome(0); o < numOutcomes; o++ {
		m.requests[o] = reqs.WithLabelValues(o.String())
		m.duration[o] = dur.WithLabelValues(o.String())
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{reqs, dur, m.originBytes, m.servedBytes, m.cacheBytes, m.cacheEntries} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register fetch metrics: %w", err)
			}
		}
	}
	return m, nil
}
