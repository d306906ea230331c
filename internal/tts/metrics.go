package tts

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// result labels a synthesis.
type result uint8

const (
	resultHit result = iota
	resultCoalesced
	resultMiss
	resultFallback
	resultError
	numResults
)

var resultNames = [numResults]string{"hit", "coalesced", "miss", "fallback", "error"}

type metrics struct {
	requests       [numResults]prometheus.Counter
	duration       [numResults]prometheus.Observer
	engineDuration prometheus.Histogram
	engineErrors   prometheus.Counter
	running        prometheus.Gauge
	audioSeconds   prometheus.Counter
	cacheBytes     prometheus.Gauge
	cacheEntries   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "gvp", "mcp_tts"
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "Syntheses by result: hit, coalesced, miss, fallback (silence, no engine), error.",
	}, []string{"result"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "duration_seconds",
		Help:    "Synthesis latency by result, waiting for an engine slot included.",
		Buckets: []float64{.00001, .0001, .001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	m := &metrics{
		engineDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "engine_duration_seconds",
			Help:    "Time of one engine run (one text segment).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		engineErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "engine_errors_total", Help: "Engine runs that failed.",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "engine_running", Help: "Engine runs in progress.",
		}),
		audioSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "synthesized_seconds_total", Help: "Seconds of audio produced by the engine.",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_bytes", Help: "Bytes held by the audio cache.",
		}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "cache_entries", Help: "Prompts held by the audio cache.",
		}),
	}
	for r := result(0); r < numResults; r++ {
		m.requests[r] = reqs.WithLabelValues(resultNames[r])
		m.duration[r] = dur.WithLabelValues(resultNames[r])
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{reqs, dur, m.engineDuration, m.engineErrors, m.running, m.audioSeconds, m.cacheBytes, m.cacheEntries} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register tts metrics: %w", err)
			}
		}
	}
	return m, nil
}
