package rs

import (
	"context"
	"fmt"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// maintenance runs the aggregation and retention jobs.
type maintenance struct {
	cfg   Config
	store cdrstore.Maintainer
	loc   *time.Location
	now   func() time.Time
	log   zerolog.Logger

	runs    *prometheus.CounterVec
	deleted *prometheus.CounterVec
	seconds prometheus.Histogram
	last    prometheus.Gauge
}

func newMaintenance(cfg Config, store cdrstore.Maintainer, loc *time.Location, now func() time.Time, log zerolog.Logger,
	reg prometheus.Registerer) (*maintenance, error) {
	m := &maintenance{cfg: cfg, store: store, loc: loc, now: now, log: log,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_rs_maintenance_runs_total", Help: "Runs of the aggregation and retention jobs, by result (ok, error).",
		}, []string{"result"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_rs_retention_deleted_total", Help: "Rows deleted by the retention job, by kind (cdrs, events, aggregates).",
		}, []string{"kind"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gvp_rs_maintenance_seconds", Help: "Duration of one run of the aggregation and retention jobs.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvp_rs_maintenance_last_success_timestamp_seconds", Help: "Unix time of the last successful maintenance run.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.deleted, m.seconds, m.last} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register maintenance metrics: %w", err)
			}
		}
	}
	return m, nil
}

// loop runs the jobs after delay, then every interval, until ctx ends.
func (m *maintenance) loop(ctx context.Context, delay, interval time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, maintenanceTimeout)
		if err := m.run(rctx); err != nil && ctx.Err() == nil {
			m.log.Error().Err(err).Msg("maintenance run failed; retried at the next interval")
		}
		cancel()
		t.Reset(interval)
	}
}

// run aggregates (rm and mcp CDRs), then deletes what is past retention. Aggregation goes
// first so a day is folded into its week and month before its CDRs can expire.
func (m *maintenance) run(ctx context.Context) error {
	start := time.Now()
	now := m.now()
	err := m.runAt(ctx, now)
	m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		m.runs.WithLabelValues("error").Inc()
		return err
	}
	m.runs.WithLabelValues("ok").Inc()
	m.last.Set(float64(now.Unix()))
	return nil
}

func (m *maintenance) runAt(ctx context.Context, now time.Time) error {
	// Days whose CDRs or daily rows may already be thinned out are never recomputed.
	notBefore := now.Add(-min(m.cfg.Retention, m.cfg.RetentionAggregates))
	for _, comp := range []billing.Component{billing.ComponentRM, billing.ComponentMCP} {
		res, err := m.store.Aggregate(ctx, cdrstore.AggregateOptions{Now: now, Location: m.loc, Component: comp, NotBefore: notBefore})
		if err != nil {
			return fmt.Errorf("aggregate %s cdrs: %w", comp, err)
		}
		m.log.Debug().Str("component_kind", string(comp)).Time("from", res.From).Int("days", res.Days).
			Int("weeks", res.Weeks).Int("months", res.Months).Int("rows", res.Rows).Msg("aggregated")
	}
	res, err := m.store.Purge(ctx, cdrstore.RetentionPolicy{Now: now, CDRs: m.cfg.Retention, Events: m.cfg.RetentionEvents,
		Aggregates: m.cfg.RetentionAggregates})
	m.deleted.WithLabelValues("cdrs").Add(float64(res.CDRs))
	m.deleted.WithLabelValues("events").Add(float64(res.Events))
	m.deleted.WithLabelValues("aggregates").Add(float64(res.Aggregates))
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if res.CDRs+res.Events+res.Aggregates > 0 {
		m.log.Info().Int64("cdrs", res.CDRs).Int64("events", res.Events).Int64("aggregates", res.Aggregates).
			Msg("deleted records past retention")
	}
	return nil
}
