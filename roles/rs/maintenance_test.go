package rs

import (
	"context"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
	"github.com/opengvp/gvp/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

func TestMaintenanceRun(t *testing.T) {
	ctx := context.Background()
	st, err := cdrstore.OpenSQLiteFile(ctx, t.TempDir()+"/rs.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2025, 5, 1, 0, 30, 0, 0, time.UTC)
	clock := now
	old := mkCDR("old", billing.ComponentRM, "t1", "p", "1", now.AddDate(0, 0, -50), time.Minute)
	recent := mkCDR("new", billing.ComponentRM, "t1", "p", "1", now.AddDate(0, 0, -1), time.Minute)
	recentMCP := mkCDR("new", billing.ComponentMCP, "t1", "p", "1", now.AddDate(0, 0, -1), time.Minute)
	b := cdrstore.Batch{CDRs: []*billing.CDR{old, recent, recentMCP}, Events: []*billing.Event{
		{ID: "e-old", SessionID: "sess-old", Time: now.AddDate(0, 0, -20), Kind: "k"},
		{ID: "e-new", SessionID: "sess-new", Time: now.AddDate(0, 0, -1), Kind: "k"},
	}}
	if err := st.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.RetentionEvents = 10 * 24 * time.Hour
	reg := prometheus.NewRegistry()
	m, err := newMaintenance(cfg, st, time.UTC, func() time.Time { return clock }, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(m.deleted.WithLabelValues("cdrs")); n != 1 {
		t.Errorf("cdrs deleted %v", n)
	}
	if n := testutil.ToFloat64(m.deleted.WithLabelValues("events")); n != 1 {
		t.Errorf("events deleted %v", n)
	}
	page, err := st.CDRs(ctx, cdrstore.CDRQuery{})
	if err != nil || page.Total != 2 {
		t.Fatalf("cdrs left %d, %v", page.Total, err)
	}
	// Yesterday is aggregated for both components; the 50-day-old day is not (past retention).
	for _, comp := range []billing.Component{billing.ComponentRM, billing.ComponentMCP} {
		days, err := st.Aggregates(ctx, cdrstore.AggregateQuery{Period: cdrstore.PeriodDay, Component: comp})
		if err != nil || len(days) != 1 || !days[0].Start.Equal(time.Date(2025, 4, 30, 0, 0, 0, 0, time.UTC)) || days[0].Arrivals != 1 {
			t.Errorf("%s daily aggregates %+v, %v", comp, days, err)
		}
	}
	if testutil.ToFloat64(m.last) != float64(now.Unix()) {
		t.Errorf("last success %v", testutil.ToFloat64(m.last))
	}

	// 45 days later, with the clock moved: yesterday's CDR, its event and its daily row are
	// past retention too.
	clock = now.AddDate(0, 0, 45)
	if err := m.run(ctx); err != nil {
		t.Fatal(err)
	}
	page, _ = st.CDRs(ctx, cdrstore.CDRQuery{})
	days, _ := st.Aggregates(ctx, cdrstore.AggregateQuery{Period: cdrstore.PeriodDay})
	if page.Total != 0 || len(days) != 0 || testutil.ToFloat64(m.deleted.WithLabelValues("aggregates")) == 0 {
		t.Errorf("after 45 days: %d cdrs, %d daily rows, %v aggregates deleted", page.Total, len(days),
			testutil.ToFloat64(m.deleted.WithLabelValues("aggregates")))
	}
	if n := testutil.ToFloat64(m.runs.WithLabelValues("ok")); n != 2 {
		t.Errorf("runs %v", n)
	}
}

func TestMaintenanceLoopSchedule(t *testing.T) {
	st, err := cdrstore.OpenSQLiteFile(context.Background(), t.TempDir()+"/rs.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := newMaintenance(DefaultConfig(), st, time.UTC, time.Now, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.loop(ctx, 0, time.Hour) }()
	// The first run comes after the delay (0 here); the next only after the interval.
	testenv.Eventually(t, 10*time.Second, "first run", func() bool { return testutil.ToFloat64(m.runs.WithLabelValues("ok")) == 1 })
	cancel()
	<-done
	if n := testutil.ToFloat64(m.runs.WithLabelValues("ok")); n != 1 {
		t.Errorf("runs %v", n)
	}
}
