package cdrstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
)

func TestPeriodBoundaries(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatalf("no tz data (Debian tzdata, or import time/tzdata): %v", err)
	}
	at := time.Date(2025, 3, 12, 15, 4, 5, 0, time.UTC) // a Wednesday
	cases := []struct {
		p          Period
		loc        *time.Location
		start, nxt time.Time
	}{
		{PeriodDay, time.UTC, time.Date(2025, 3, 12, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 13, 0, 0, 0, 0, time.UTC)},
		{PeriodWeek, time.UTC, time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 17, 0, 0, 0, 0, time.UTC)},
		{PeriodMonth, time.UTC, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
		// The week of the DST change in Paris (30 March) has 167 hours.
		{PeriodWeek, paris, time.Date(2025, 3, 24, 0, 0, 0, 0, paris), time.Date(2025, 3, 31, 0, 0, 0, 0, paris)},
		{PeriodDay, paris, time.Date(2025, 3, 12, 0, 0, 0, 0, paris), time.Date(2025, 3, 13, 0, 0, 0, 0, paris)},
	}
	for i, tc := range cases {
		ref := at
		if i == 3 {
			ref = time.Date(2025, 3, 30, 12, 0, 0, 0, paris) // Sunday
		}
		got := tc.p.Start(ref, tc.loc)
		if !got.Equal(tc.start) || !tc.p.Next(got).Equal(tc.nxt) {
			t.Errorf("%s in %s: start %v next %v, want %v %v", tc.p, tc.loc, got, tc.p.Next(got), tc.start, tc.nxt)
		}
	}
	if d := PeriodWeek.Next(cases[3].start).Sub(cases[3].start); d != 167*time.Hour {
		t.Errorf("DST week lasts %v", d)
	}
	for _, s := range []string{"day", "Weekly", "month"} {
		if _, err := ParsePeriod(s); err != nil {
			t.Errorf("ParsePeriod(%q): %v", s, err)
		}
	}
	if _, err := ParsePeriod("year"); err == nil {
		t.Error("ParsePeriod(year) accepted")
	}
}

func aggregates(t *testing.T, s *SQLStore, p Period) map[string]Aggregate {
	t.Helper()
	rows, err := s.Aggregates(context.Background(), AggregateQuery{Period: p})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Aggregate{}
	for _, a := range rows {
		out[a.Start.Format(time.DateOnly)+"/"+a.TenantID+"/"+a.Profile] = a
	}
	return out
}

func TestAggregate(t *testing.T) {
	ctx := context.Background()
	at := func(d, h, m int) time.Time { return time.Date(2025, 3, d, h, m, 0, 0, time.UTC) }
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			rejected := withTenant(cdr("d10c", "rm", billing.StateCompleted, at(10, 9, 30), time.Second), "t1", "p1")
			rejected.Complete(at(10, 9, 30).Add(time.Second), billing.EndRejected, "", 486)
			b := Batch{CDRs: []*billing.CDR{
				// Monday 10 March, t1/p1: two overlapping calls and one rejected.
				withTenant(cdr("d10a", "rm", billing.StateCompleted, at(10, 9, 0), 20*time.Minute), "t1", "p1"),
				withTenant(cdr("d10b", "rm", billing.StateCompleted, at(10, 9, 10), 20*time.Minute), "t1", "p1"),
				rejected,
				// Across midnight into Tuesday.
				withTenant(cdr("d10d", "rm", billing.StateCompleted, at(10, 23, 50), 20*time.Minute), "t1", "p1"),
				// Tuesday: one call of t2 still in progress.
				withTenant(cdr("d11a", "rm", billing.StateInProgress, at(11, 8, 0), 0), "t2", "p9"),
				// Tuesday t1: one call overlapping the one from Monday night.
				withTenant(cdr("d11b", "rm", billing.StateCompleted, at(11, 0, 5), time.Minute), "t1", "p1"),
				// mcp records are not counted (component rm by default).
				withTenant(cdr("m1", "mcp", billing.StateCompleted, at(10, 9, 0), time.Minute), "t1", "p1"),
			}}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			now := at(12, 12, 0)
			res, err := s.Aggregate(ctx, AggregateOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if res.Days != 3 || res.Weeks != 1 || res.Months != 1 || !res.From.Equal(at(10, 0, 0)) {
				t.Fatalf("result %+v", res)
			}
			days := aggregates(t, s, PeriodDay)
			check := func(what string, got Aggregate, arrivals, completed, rejected, durMS int64, peak int) {
				t.Helper()
				if got.Arrivals != arrivals || got.Completed != completed || got.Rejected != rejected ||
					got.DurationMS != durMS || got.PeakConcurrency != peak {
					t.Errorf("%s: %+v, want arrivals %d completed %d rejected %d duration %d peak %d",
						what, got, arrivals, completed, rejected, durMS, peak)
				}
			}
			check("10/t1", days["2025-03-10/t1/p1"], 4, 4, 1, 40*60_000+1000+20*60_000, 2)
			check("11/t1", days["2025-03-11/t1/p1"], 1, 1, 0, 60_000, 2)
			check("11/t2", days["2025-03-11/t2/p9"], 1, 0, 0, 0, 1)
			// The t2 call is still up on Wednesday: peak 1, no arrival.
			check("12/t2", days["2025-03-12/t2/p9"], 0, 0, 0, 0, 1)
			if len(days) != 4 {
				t.Errorf("daily rows %v", days)
			}
			if days["2025-03-10/t1/p1"].TenantName != "Tenant One" {
				t.Errorf("tenant name %q", days["2025-03-10/t1/p1"].TenantName)
			}
			weeks := aggregates(t, s, PeriodWeek)
			check("week t1", weeks["2025-03-10/t1/p1"], 5, 5, 1, 40*60_000+1000+21*60_000, 2)
			check("week t2", weeks["2025-03-10/t2/p9"], 1, 0, 0, 0, 1)
			months := aggregates(t, s, PeriodMonth)
			check("month t1", months["2025-03-01/t1/p1"], 5, 5, 1, 40*60_000+1000+21*60_000, 2)
			if m := months["2025-03-01/t1/p1"]; !m.End.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("month end %v", m.End)
			}

			// Idempotent; and a late record for Monday is folded in by the
			// next run (the watermark looks back over recently stored CDRs).
			late := withTenant(cdr("late", "rm", billing.StateCompleted, at(10, 9, 5), 10*time.Minute), "t1", "p1")
			if err := s.Apply(ctx, Batch{CDRs: []*billing.CDR{late}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Aggregate(ctx, AggregateOptions{Now: now}); err != nil {
				t.Fatal(err)
			}
			days = aggregates(t, s, PeriodDay)
			check("10/t1 late", days["2025-03-10/t1/p1"], 5, 5, 1, 50*60_000+1000+20*60_000, 3)
			check("week t1 late", aggregates(t, s, PeriodWeek)["2025-03-10/t1/p1"], 6, 6, 1, 50*60_000+1000+21*60_000, 3)

			// Filters.
			rows, err := s.Aggregates(ctx, AggregateQuery{Period: PeriodDay, TenantID: "t2", From: at(12, 0, 0)})
			if err != nil || len(rows) != 1 || rows[0].Start.Day() != 12 {
				t.Errorf("filtered rows %+v, %v", rows, err)
			}
			if _, err := s.Aggregates(ctx, AggregateQuery{Period: "year"}); err == nil {
				t.Error("bad period accepted")
			}

			// NotBefore: days before it are left alone even though their
			// CDRs changed; the month that already has a row is too.
			if _, err := s.DB().ExecContext(ctx, s.rebind("DELETE FROM cdrs WHERE start_us < ?"), at(11, 0, 0).UnixMicro()); err != nil {
				t.Fatal(err)
			}
			touch := withTenant(cdr("touch", "rm", billing.StateCompleted, at(10, 12, 0), time.Minute), "t1", "p1")
			if err := s.Apply(ctx, Batch{CDRs: []*billing.CDR{touch}}); err != nil {
				t.Fatal(err)
			}
			res, err = s.Aggregate(ctx, AggregateOptions{Now: now, NotBefore: at(10, 12, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if !res.From.Equal(at(11, 0, 0)) || res.Days != 2 {
				t.Errorf("with NotBefore: %+v", res)
			}
			check("10/t1 kept", aggregates(t, s, PeriodDay)["2025-03-10/t1/p1"], 5, 5, 1, 50*60_000+1000+20*60_000, 3)
		})
	}
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			var b Batch
			for i := range 7 {
				// Ended 50 days ago: gone with a 40-day retention.
				b.CDRs = append(b.CDRs, cdr(fmt.Sprint("old", i), "rm", billing.StateCompleted, now.AddDate(0, 0, -50), time.Minute))
				b.Events = append(b.Events, &billing.Event{ID: fmt.Sprint("eold", i), SessionID: "s", Time: now.AddDate(0, 0, -50), Kind: "k"})
			}
			b.CDRs = append(b.CDRs,
				cdr("stuck", "rm", billing.StateInProgress, now.AddDate(0, 0, -45), 0),
				cdr("running", "rm", billing.StateInProgress, now.AddDate(0, 0, -1), 0),
				// Started 41 days ago but ended 39 days ago: kept.
				cdr("long", "rm", billing.StateCompleted, now.AddDate(0, 0, -41), 2*24*time.Hour),
				cdr("new", "rm", billing.StateCompleted, now.AddDate(0, 0, -1), time.Minute))
			b.Events = append(b.Events, &billing.Event{ID: "enew", SessionID: "s", Time: now.AddDate(0, 0, -1), Kind: "k"})
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			for _, d := range []int{-60, -45, -2} {
				if _, err := s.Aggregate(ctx, AggregateOptions{Now: now.AddDate(0, 0, d)}); err != nil {
					t.Fatal(err)
				}
			}
			beforeAgg := count(t, s, "aggregates")
			res, err := s.Purge(ctx, RetentionPolicy{Now: now, CDRs: 40 * 24 * time.Hour, Events: 30 * 24 * time.Hour,
				Aggregates: 40 * 24 * time.Hour, Chunk: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.CDRs != 8 || res.Events != 7 {
				t.Errorf("purged %+v", res)
			}
			if n := count(t, s, "cdrs"); n != 3 {
				t.Errorf("cdrs left %d", n)
			}
			if n := count(t, s, "events"); n != 1 {
				t.Errorf("events left %d", n)
			}
			if res.Aggregates == 0 || int64(count(t, s, "aggregates")) != int64(beforeAgg)-res.Aggregates {
				t.Errorf("aggregates purged %d of %d", res.Aggregates, beforeAgg)
			}
			var oldest int64
			if err := s.DB().QueryRowContext(ctx, "SELECT MIN(period_end) FROM aggregates").Scan(&oldest); err != nil {
				t.Fatal(err)
			}
			if time.UnixMicro(oldest).Before(now.AddDate(0, 0, -40)) {
				t.Errorf("aggregate ending %v kept", time.UnixMicro(oldest).UTC())
			}
			// Zero retention keeps everything; negative is refused.
			if res, err := s.Purge(ctx, RetentionPolicy{Now: now.AddDate(1, 0, 0)}); err != nil || res != (PurgeResult{}) {
				t.Errorf("zero policy: %+v %v", res, err)
			}
			if _, err := s.Purge(ctx, RetentionPolicy{CDRs: -time.Hour}); err == nil {
				t.Error("negative retention accepted")
			}
		})
	}
}

func TestApplyCountDuplicates(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			start := cdr("a", "rm", billing.StateInProgress, t0, 0)
			end := cdr("a", "rm", billing.StateCompleted, t0, time.Minute)
			ev := &billing.Event{ID: "e1", SessionID: "s-a", Time: t0, Kind: "k"}
			steps := []struct {
				b         Batch
				dups, new int
			}{
				{Batch{CDRs: []*billing.CDR{start}, Events: []*billing.Event{ev, ev}}, 1, 2},
				{Batch{CDRs: []*billing.CDR{start, end}}, 0, 2}, // start rewrites, end completes
				{Batch{CDRs: []*billing.CDR{end, start, end}, Events: []*billing.Event{ev}}, 4, 0},
			}
			for i, st := range steps {
				res, err := s.ApplyCount(ctx, st.b)
				if err != nil {
					t.Fatal(err)
				}
				if res.Duplicates != st.dups || res.Stored != st.new {
					t.Errorf("step %d: %+v, want %d duplicates %d stored", i, res, st.dups, st.new)
				}
			}
		})
	}
}
