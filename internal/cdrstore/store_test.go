package cdrstore

import (
	"context"
	"fmt"
	"github.com/opengvp/gvp/internal/testenv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
)

// backend opens a fresh, empty store.
type backend struct {
	name string
	open func(t testing.TB) *SQLStore
}

// backends lists SQLite and, when GVP_TEST_POSTGRES_DSN is set, PostgreSQL.
// Without the DSN the PostgreSQL cases fail when CI=true and are skipped
// otherwise.
func backends() []backend {
	return []backend{
		{"sqlite", openSQLiteTest},
		{"postgres", openPostgresTest},
	}
}

func openSQLiteTest(t testing.TB) *SQLStore {
	t.Helper()
	s, err := OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// postgresDSN returns the test DSN, failing or skipping t without one.
func postgresDSN(t testing.TB) string {
	t.Helper()
	return testenv.Service(t, "GVP_TEST_POSTGRES_DSN", "scripts/postgres.sh start")
}

// openPostgresTest opens a store in a schema of its own, dropped afterwards,
// so tests never see each other's rows.
func openPostgresTest(t testing.TB) *SQLStore {
	t.Helper()
	dsn := postgresDSN(t)
	ctx := context.Background()
	schema := fmt.Sprintf("gvp_test_%d_%d", time.Now().UnixNano(), rand.IntN(1<<30))
	admin, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	s, err := OpenPostgres(ctx, withSearchPath(dsn, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_, _ = admin.db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close()
	})
	return s
}

func withSearchPath(dsn, schema string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

var t0 = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

func cdr(id string, comp billing.Component, state billing.State, start time.Time, dur time.Duration) *billing.CDR {
	c := &billing.CDR{ID: id, SessionID: "s-" + id, Component: comp, ComponentName: string(comp) + "1", State: state,
		TenantID: "t1", TenantName: "Tenant One", Profile: "billing", ServiceType: "voicexml", DNIS: "5551000",
		ANI: "5550001", LocalURI: "sip:5551000@127.0.0.1", RemoteURI: "sip:5550001@127.0.0.1", CallID: "c-" + id,
		MCP: "mcp1", Start: start}
	if state == billing.StateCompleted {
		c.Answer = start.Add(time.Second)
		c.Complete(start.Add(dur), billing.EndCallerHangup, "", 0)
	}
	return c
}

func count(t *testing.T, s *SQLStore, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStoreIdempotence(t *testing.T) {
	ctx := context.Background()
	start := billing.CDR{}
	_ = start
	cases := []struct {
		name    string
		batches [][]*billing.CDR // applied in order, one transaction each
		want    billing.State
	}{
		{"start then end", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateInProgress, t0, 0)},
			{cdr("a", "rm", billing.StateCompleted, t0, time.Minute)}}, billing.StateCompleted},
		{"end then late start", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateCompleted, t0, time.Minute)},
			{cdr("a", "rm", billing.StateInProgress, t0, 0)}}, billing.StateCompleted},
		{"both in one batch, end first", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateCompleted, t0, time.Minute), cdr("a", "rm", billing.StateInProgress, t0, 0)}}, billing.StateCompleted},
		{"both in one batch, start first", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateInProgress, t0, 0), cdr("a", "rm", billing.StateCompleted, t0, time.Minute)}}, billing.StateCompleted},
		{"redelivered start", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateInProgress, t0, 0)},
			{cdr("a", "rm", billing.StateInProgress, t0, 0)}}, billing.StateInProgress},
		{"redelivered end", [][]*billing.CDR{
			{cdr("a", "rm", billing.StateCompleted, t0, time.Minute)},
			{cdr("a", "rm", billing.StateCompleted, t0, time.Minute), cdr("a", "rm", billing.StateCompleted, t0, time.Minute)}}, billing.StateCompleted},
	}
	for _, be := range backends() {
		for _, tc := range cases {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				s := be.open(t)
				for _, b := range tc.batches {
					if err := s.Apply(ctx, Batch{CDRs: b}); err != nil {
						t.Fatal(err)
					}
				}
				if n := count(t, s, "cdrs"); n != 1 {
					t.Fatalf("rows = %d, want 1", n)
				}
				page, err := s.CDRs(ctx, CDRQuery{RecordID: "a"})
				if err != nil {
					t.Fatal(err)
				}
				got := page.CDRs[0]
				if got.State != tc.want {
					t.Fatalf("state = %s, want %s", got.State, tc.want)
				}
				if tc.want == billing.StateCompleted && (got.Duration != time.Minute || got.EndReason != billing.EndCallerHangup || !got.End.Equal(t0.Add(time.Minute))) {
					t.Fatalf("completed record lost its end: %+v", got)
				}
			})
		}
	}
}

func TestStoreRoundTripAndEvents(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			want := cdr("rt", "mcp", billing.StateCompleted, t0, 90*time.Second)
			want.Complete(want.End, billing.EndRejected, "no route", 486)
			ev1 := &billing.Event{ID: "e1", SessionID: "s-rt", Time: t0.Add(2 * time.Second), Kind: "prompt", Detail: "welcome.wav"}
			ev2 := &billing.Event{ID: "e2", SessionID: "s-rt", Time: t0.Add(time.Second), Kind: "answer"}
			other := &billing.Event{ID: "e3", SessionID: "s-other", Time: t0, Kind: "answer"}
			for range 2 { // the second time is a redelivery
				if err := s.Apply(ctx, Batch{CDRs: []*billing.CDR{want}, Events: []*billing.Event{ev1, ev2, other, ev1}}); err != nil {
					t.Fatal(err)
				}
			}
			page, err := s.CDRs(ctx, CDRQuery{SessionID: "s-rt"})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != 1 || len(page.CDRs) != 1 {
				t.Fatalf("page = %+v", page)
			}
			got := page.CDRs[0]
			if got != *want {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, *want)
			}
			evs, err := s.Events(ctx, "s-rt")
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 || evs[0].ID != "e2" || evs[1].ID != "e1" || evs[1].Detail != "welcome.wav" || !evs[1].Time.Equal(ev1.Time) {
				t.Fatalf("events = %+v", evs)
			}
			if n := count(t, s, "events"); n != 3 {
				t.Fatalf("event rows = %d, want 3", n)
			}
		})
	}
}

func TestStoreQueryFilters(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			var b Batch
			for i := range 30 {
				comp := billing.ComponentRM
				if i%3 == 0 {
					comp = billing.ComponentMCP
				}
				state := billing.StateCompleted
				if i%2 == 0 {
					state = billing.StateInProgress
				}
				c := cdr(fmt.Sprintf("r%02d", i), comp, state, t0.Add(time.Duration(i)*time.Minute), 30*time.Second)
				if i >= 20 {
					c.TenantID, c.Profile, c.DNIS = "t2", "sales", "5552000"
					c.RemoteURI, c.LocalURI = "sip:bob@127.0.0.1", "sip:sales@127.0.0.1"
				}
				b.CDRs = append(b.CDRs, c)
			}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				name string
				q    CDRQuery
				want int
			}{
				{"all", CDRQuery{}, 30},
				{"rm", CDRQuery{Component: billing.ComponentRM}, 20},
				{"mcp", CDRQuery{Component: billing.ComponentMCP}, 10},
				{"RT", CDRQuery{State: billing.StateInProgress}, 15},
				{"HIST rm", CDRQuery{State: billing.StateCompleted, Component: billing.ComponentRM}, 10},
				{"started range", CDRQuery{StartedFrom: t0.Add(10 * time.Minute), StartedTo: t0.Add(20 * time.Minute)}, 10},
				{"ended range", CDRQuery{EndedFrom: t0.Add(10 * time.Minute), EndedTo: t0.Add(20 * time.Minute)}, 5},
				{"tenant", CDRQuery{TenantID: "t2"}, 10},
				{"app", CDRQuery{AppID: "sales"}, 10},
				{"dn", CDRQuery{DN: "5551000"}, 20},
				{"remote", CDRQuery{RemoteURI: "sip:bob@127.0.0.1"}, 10},
				{"local", CDRQuery{LocalURI: "sip:sales@127.0.0.1"}, 10},
				{"session", CDRQuery{SessionID: "s-r07"}, 1},
				{"none", CDRQuery{TenantID: "nobody"}, 0},
			}
			for _, tc := range cases {
				page, err := s.CDRs(ctx, tc.q)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if page.Total != tc.want || len(page.CDRs) != tc.want {
					t.Errorf("%s: total %d, rows %d, want %d", tc.name, page.Total, len(page.CDRs), tc.want)
				}
			}
			// Paging: newest first, pages do not overlap.
			seen := map[string]bool{}
			var last time.Time
			for p := 1; p <= 4; p++ {
				page, err := s.CDRs(ctx, CDRQuery{Page: p, PageSize: 8})
				if err != nil {
					t.Fatal(err)
				}
				wantRows := min(8, 30-(p-1)*8)
				if len(page.CDRs) != wantRows || page.Total != 30 {
					t.Fatalf("page %d: %d rows total %d", p, len(page.CDRs), page.Total)
				}
				for _, c := range page.CDRs {
					if seen[c.ID] {
						t.Fatalf("record %s on two pages", c.ID)
					}
					if !last.IsZero() && c.Start.After(last) {
						t.Fatalf("not newest first at %s", c.ID)
					}
					seen[c.ID], last = true, c.Start
				}
			}
			for _, bad := range []CDRQuery{{Page: -1}, {State: "bogus"}, {Component: "sbc"}} {
				if _, err := s.CDRs(ctx, bad); err == nil {
					t.Errorf("query %+v accepted", bad)
				}
			}
		})
	}
}

func TestStoreUsageAndArrivals(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			at := func(h, m int) time.Time { return time.Date(2025, 3, 10, h, m, 0, 0, time.UTC) }
			b := Batch{CDRs: []*billing.CDR{
				// t1: yesterday's call still in progress, and three today.
				withTenant(cdr("y1", "rm", billing.StateInProgress, at(0, 0).Add(-time.Hour), 0), "t1", "p1"),
				withTenant(cdr("a1", "rm", billing.StateCompleted, at(9, 0), 20*time.Minute), "t1", "p1"),
				withTenant(cdr("a2", "rm", billing.StateCompleted, at(9, 10), 20*time.Minute), "t1", "p1"),
				withTenant(cdr("a3", "rm", billing.StateInProgress, at(10, 2), 0), "t1", "p2"),
				// back to back with a1: never overlaps it
				withTenant(cdr("b1", "rm", billing.StateCompleted, at(9, 20), 5*time.Minute), "t2", "p1"),
				withTenant(cdr("b2", "rm", billing.StateCompleted, at(9, 25), 5*time.Minute), "t2", "p1"),
				// mcp legs are not counted as calls
				withTenant(cdr("m1", "mcp", billing.StateInProgress, at(10, 3), 0), "t1", "p1"),
			}}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			usage, err := s.TenantUsage(ctx, UsageQuery{Now: at(10, 30)})
			if err != nil {
				t.Fatal(err)
			}
			want := []TenantUsage{
				{TenantID: "t1", TenantName: "Tenant One", InProgress: 2, ArrivalsThisHour: 1, ArrivalsToday: 3, PeakToday: 3},
				{TenantID: "t2", TenantName: "Tenant One", InProgress: 0, ArrivalsThisHour: 0, ArrivalsToday: 2, PeakToday: 1},
			}
			if fmt.Sprint(usage) != fmt.Sprint(want) {
				t.Fatalf("usage\n got %+v\nwant %+v", usage, want)
			}
			stats, err := s.Arrivals(ctx, IntervalQuery{From: at(9, 0), To: at(11, 0), Interval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			wantStats := []IntervalStat{
				{Start: at(9, 0), TenantID: "t1", Profile: "p1", Arrivals: 2, PeakConcurrency: 3},
				{Start: at(9, 0), TenantID: "t2", Profile: "p1", Arrivals: 2, PeakConcurrency: 1},
				{Start: at(10, 0), TenantID: "t1", Profile: "p1", Arrivals: 0, PeakConcurrency: 1},
				{Start: at(10, 0), TenantID: "t1", Profile: "p2", Arrivals: 1, PeakConcurrency: 1},
			}
			if fmt.Sprint(stats) != fmt.Sprint(wantStats) {
				t.Fatalf("arrivals\n got %+v\nwant %+v", stats, wantStats)
			}
			five, err := s.Arrivals(ctx, IntervalQuery{From: at(9, 0), To: at(9, 30), Interval: 5 * time.Minute, TenantID: "t2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(five) != 2 || five[0].Start != at(9, 20) || five[1].Start != at(9, 25) || five[1].PeakConcurrency != 1 {
				t.Fatalf("5-minute arrivals = %+v", five)
			}
			day, err := s.Arrivals(ctx, IntervalQuery{From: at(0, 0), To: at(23, 59), Interval: 24 * time.Hour, Profile: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(day) != 2 || day[0].Arrivals != 2 || day[0].PeakConcurrency != 3 || day[1].Arrivals != 2 {
				t.Fatalf("daily arrivals = %+v", day)
			}
			if _, err := s.Arrivals(ctx, IntervalQuery{From: at(0, 0), To: at(1, 0), Interval: time.Minute}); err == nil {
				t.Fatal("1-minute interval accepted")
			}
		})
	}
}

func withTenant(c *billing.CDR, tenant, profile string) *billing.CDR {
	c.TenantID, c.Profile = tenant, profile
	return c
}

func TestStoreMigrationsIdempotent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for range 2 {
		s, err := OpenSQLite(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != migrations[len(migrations)-1].version {
			t.Fatalf("schema version %d", v)
		}
		_ = s.Close()
	}
	var mode string
	s, _ := OpenSQLite(ctx, dir)
	defer s.Close()
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q, %v", mode, err)
	}
}

func TestStoreLargeBatch(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			var b Batch
			for i := range 1000 { // more than rowsPerInsert
				b.CDRs = append(b.CDRs, cdr(fmt.Sprint(i), "rm", billing.StateCompleted, t0, time.Second))
				b.Events = append(b.Events, &billing.Event{ID: fmt.Sprint(i), SessionID: "s", Time: t0, Kind: "k"})
			}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
			if n := count(t, s, "cdrs"); n != 1000 {
				t.Fatalf("cdr rows %d", n)
			}
			if n := count(t, s, "events"); n != 1000 {
				t.Fatalf("event rows %d", n)
			}
		})
	}
}
