package cdrstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/billing"
)

// aggregateSchema is schema version 2: the pre-computed daily, weekly and
// monthly traffic per component, tenant and profile, the state of the
// maintenance jobs, and an index for the retention of events.
var aggregateSchema = []string{
	`CREATE TABLE aggregates (
		period       TEXT NOT NULL,
		period_start BIGINT NOT NULL,
		period_end   BIGINT NOT NULL,
		component    TEXT NOT NULL,
		tenant_id    TEXT NOT NULL,
		tenant_name  TEXT NOT NULL DEFAULT '',
		profile      TEXT NOT NULL,
		arrivals     BIGINT NOT NULL,
		completed    BIGINT NOT NULL,
		rejected     BIGINT NOT NULL,
		errors       BIGINT NOT NULL,
		duration_ms  BIGINT NOT NULL,
		peak         INTEGER NOT NULL,
		updated_us   BIGINT NOT NULL,
		PRIMARY KEY (period, period_start, component, tenant_id, profile)
	)`,
	`CREATE INDEX aggregates_end ON aggregates (period_end)`,
	`CREATE TABLE maintenance_state (
		name     TEXT PRIMARY KEY,
		value_us BIGINT NOT NULL
	)`,
	`CREATE INDEX events_ts ON events (ts_us)`,
}

// Period is the length of an aggregate.
type Period string

// Aggregate periods. Days start at midnight, weeks on Monday at midnight,
// months on the 1st at midnight, in the location of the aggregation.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// ParsePeriod accepts day, week or month (also daily, weekly, monthly).
func ParsePeriod(s string) (Period, error) {
	switch strings.ToLower(s) {
	case "day", "daily":
		return PeriodDay, nil
	case "week", "weekly":
		return PeriodWeek, nil
	case "month", "monthly":
		return PeriodMonth, nil
	}
	return "", fmt.Errorf("%w: period %q (want day, week or month)", ErrBadQuery, s)
}

// Start returns the start of the period that contains t, in loc.
func (p Period) Start(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	switch p {
	case PeriodWeek:
		// Monday is the first day of the week (ISO 8601).
		back := (int(day.Weekday()) + 6) % 7
		return day.AddDate(0, 0, -back)
	case PeriodMonth:
		return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	}
	return day
}

// Next returns the start of the period after the one starting at start.
func (p Period) Next(start time.Time) time.Time {
	switch p {
	case PeriodWeek:
		return start.AddDate(0, 0, 7)
	case PeriodMonth:
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

// Aggregate is the traffic of one tenant and IVR profile in one period, as
// counted from one component's CDRs. Calls count in the period they started
// in; the peak counts every call up at some instant of the period, including
// calls that started earlier.
type Aggregate struct {
	Period     Period            `json:"period" xml:"period"`
	Start      time.Time         `json:"start" xml:"start"`
	End        time.Time         `json:"end" xml:"end"`
	Component  billing.Component `json:"component" xml:"component"`
	TenantID   string            `json:"tenant_id" xml:"tenant-id"`
	TenantName string            `json:"tenant_name" xml:"tenant-name"`
	Profile    string            `json:"profile" xml:"profile"`
	// Arrivals is the number of calls that started in the period.
	Arrivals int64 `json:"arrivals" xml:"arrivals"`
	// Completed is how many of them have ended (any end reason).
	Completed int64 `json:"completed" xml:"completed"`
	// Rejected and Errors count the completed calls that ended rejected or
	// in an error.
	Rejected int64 `json:"rejected" xml:"rejected"`
	Errors   int64 `json:"errors" xml:"errors"`
	// DurationMS is the total duration of the completed calls, in ms.
	DurationMS int64 `json:"duration_ms" xml:"duration-ms"`
	// PeakConcurrency is the highest number of calls up at once.
	PeakConcurrency int `json:"peak_concurrency" xml:"peak-concurrency"`
}

// AggregateOptions tells Aggregate what to compute.
type AggregateOptions struct {
	// Now is the reference time; time.Now() when zero. Periods up to the
	// one containing Now are computed.
	Now time.Time
	// Location sets day, week and month boundaries; UTC when nil.
	Location *time.Location
	// Component whose CDRs are counted; billing.ComponentRM when empty.
	Component billing.Component
	// NotBefore protects history the retention job has thinned out: days
	// starting before it are never recomputed (their CDRs may be gone), and
	// weeks and months starting before it are computed only when they have
	// no row yet. Pass the later of the CDR and aggregate retention
	// horizons. Zero recomputes everything the CDRs touch.
	NotBefore time.Time
}

// AggregateResult tells what one Aggregate run did.
type AggregateResult struct {
	// From is the start of the first day recomputed.
	From time.Time
	// Days, Weeks and Months count the periods recomputed.
	Days, Weeks, Months int
	// Rows is the number of aggregate rows written.
	Rows int
}

// watermarkMargin is subtracted from the wall clock when recording how far
// aggregation has seen stored CDRs: a batch is stamped when its transaction
// starts and may commit up to DefaultCommitTimeout later, so the next run
// looks again at everything stored in that margin (recomputing is
// idempotent).
const watermarkMargin = 2 * DefaultCommitTimeout

// Aggregate recomputes the daily aggregates of every day from the earliest
// start of a CDR stored since the previous run up to the day containing Now
// (at least that day), then the weekly and monthly aggregates containing
// those days, from the daily rows. It is idempotent: rows of a period are
// replaced as a whole, in one transaction per period.
func (s *SQLStore) Aggregate(ctx context.Context, o AggregateOptions) (AggregateResult, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Component == "" {
		o.Component = billing.ComponentRM
	}
	if o.Component != billing.ComponentRM && o.Component != billing.ComponentMCP {
		return AggregateResult{}, fmt.Errorf("%w: component %q", ErrBadQuery, o.Component)
	}
	mark := "aggregate:" + string(o.Component) + ":" + o.Location.String()
	nextMark := time.Now().Add(-watermarkMargin).UnixMicro()
	seen, err := s.stateValue(ctx, mark)
	if err != nil {
		return AggregateResult{}, err
	}
	var minStart sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT MIN(start_us) FROM cdrs WHERE component = ? AND stored_us >= ?"),
		string(o.Component), seen).Scan(&minStart); err != nil {
		return AggregateResult{}, fmt.Errorf("find changed cdrs: %w", err)
	}
	today := PeriodDay.Start(o.Now, o.Location)
	from := today
	if minStart.Valid {
		if t := PeriodDay.Start(time.UnixMicro(minStart.Int64), o.Location); t.Before(from) {
			from = t
		}
	}
	for !o.NotBefore.IsZero() && from.Before(o.NotBefore) && from.Before(today) {
		from = PeriodDay.Next(from)
	}
	res := AggregateResult{From: from}
	for d := from; !d.After(today); d = PeriodDay.Next(d) {
		n, err := s.aggregateDay(ctx, o.Component, d, PeriodDay.Next(d))
		if err != nil {
			return res, err
		}
		res.Days++
		res.Rows += n
	}
	for _, p := range []Period{PeriodWeek, PeriodMonth} {
		for start := p.Start(from, o.Location); !start.After(today); start = p.Next(start) {
			if !o.NotBefore.IsZero() && start.Before(o.NotBefore) {
				exists, err := s.periodExists(ctx, p, o.Component, start)
				if err != nil {
					return res, err
				}
				if exists {
					continue
				}
			}
			n, err := s.rollUp(ctx, p, o.Component, start, p.Next(start))
			if err != nil {
				return res, err
			}
			if p == PeriodWeek {
				res.Weeks++
			} else {
				res.Months++
			}
			res.Rows += n
		}
	}
	if err := s.setStateValue(ctx, mark, nextMark); err != nil {
		return res, err
	}
	return res, nil
}

type aggKey struct{ tenant, profile string }

// aggregateDay replaces the daily rows of [d0, d1).
func (s *SQLStore) aggregateDay(ctx context.Context, comp billing.Component, d0, d1 time.Time) (int, error) {
	lo, hi := d0.UnixMicro(), d1.UnixMicro()
	rows, err := s.db.QueryContext(ctx, s.rebind(
		"SELECT tenant_id, tenant_name, profile, start_us, end_us, state, end_reason, duration_ms FROM cdrs "+
			"WHERE component = ? AND start_us < ? AND (end_us IS NULL OR end_us >= ?)"), string(comp), hi, lo)
	if err != nil {
		return 0, fmt.Errorf("query calls of %s: %w", d0.Format(time.DateOnly), err)
	}
	defer rows.Close()
	groups := map[aggKey][]callSpan{}
	aggs := map[aggKey]*Aggregate{}
	var keys []aggKey
	for rows.Next() {
		var c callSpan
		var end sql.NullInt64
		var state, reason string
		var durMS int64
		if err := rows.Scan(&c.tenant, &c.tenantName, &c.profile, &c.start, &end, &state, &reason, &durMS); err != nil {
			return 0, fmt.Errorf("scan call: %w", err)
		}
		completed := state == string(billing.StateCompleted)
		c.end = forever
		if end.Valid && completed {
			c.end = end.Int64
		}
		k := aggKey{c.tenant, c.profile}
		a := aggs[k]
		if a == nil {
			a = &Aggregate{TenantID: c.tenant, Profile: c.profile}
			aggs[k] = a
			keys = append(keys, k)
		}
		if c.tenantName != "" {
			a.TenantName = c.tenantName
		}
		if c.start >= lo && completed {
			a.Completed++
			a.DurationMS += durMS
			switch billing.EndReason(reason) {
			case billing.EndRejected:
				a.Rejected++
			case billing.EndError:
				a.Errors++
			}
		}
		groups[k] = append(groups[k], c)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read calls: %w", err)
	}
	out := make([]Aggregate, 0, len(keys))
	for _, k := range keys {
		a := aggs[k]
		b := sweep(groups[k], []int64{lo, hi})[0]
		a.Arrivals, a.PeakConcurrency = int64(b.arrivals), b.peak
		if a.Arrivals == 0 && a.PeakConcurrency == 0 {
			continue
		}
		out = append(out, *a)
	}
	return len(out), s.replacePeriod(ctx, PeriodDay, comp, d0, d1, out)
}

// rollUp replaces the rows of a week or month with the sums (and the
// highest peak) of its daily rows.
func (s *SQLStore) rollUp(ctx context.Context, p Period, comp billing.Component, p0, p1 time.Time) (int, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(
		"SELECT tenant_id, MAX(tenant_name), profile, SUM(arrivals), SUM(completed), SUM(rejected), SUM(errors), "+
			"SUM(duration_ms), MAX(peak) FROM aggregates WHERE period = ? AND component = ? AND period_start >= ? "+
			"AND period_start < ? GROUP BY tenant_id, profile"), string(PeriodDay), string(comp), p0.UnixMicro(), p1.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("roll up %s %s: %w", p, p0.Format(time.DateOnly), err)
	}
	defer rows.Close()
	var out []Aggregate
	for rows.Next() {
		var a Aggregate
		if err := rows.Scan(&a.TenantID, &a.TenantName, &a.Profile, &a.Arrivals, &a.Completed, &a.Rejected, &a.Errors,
			&a.DurationMS, &a.PeakConcurrency); err != nil {
			return 0, fmt.Errorf("scan daily rows: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read daily rows: %w", err)
	}
	return len(out), s.replacePeriod(ctx, p, comp, p0, p1, out)
}

// replacePeriod deletes the rows of one period and writes rows, in one
// transaction.
func (s *SQLStore) replacePeriod(ctx context.Context, p Period, comp billing.Component, p0, p1 time.Time, rows []Aggregate) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM aggregates WHERE period = ? AND component = ? AND period_start = ?"),
		string(p), string(comp), p0.UnixMicro()); err != nil {
		return fmt.Errorf("clear %s %s: %w", p, p0.Format(time.DateOnly), err)
	}
	const cols = 14
	now := time.Now().UnixMicro()
	for start := 0; start < len(rows); start += rowsPerInsert {
		chunk := rows[start:min(start+rowsPerInsert, len(rows))]
		args := make([]any, 0, len(chunk)*cols)
		for _, a := range chunk {
			args = append(args, string(p), p0.UnixMicro(), p1.UnixMicro(), string(comp), a.TenantID, a.TenantName, a.Profile,
				a.Arrivals, a.Completed, a.Rejected, a.Errors, a.DurationMS, a.PeakConcurrency, now)
		}
		q := "INSERT INTO aggregates (period, period_start, period_end, component, tenant_id, tenant_name, profile, " +
			"arrivals, completed, rejected, errors, duration_ms, peak, updated_us) VALUES " + placeholders(len(chunk), cols)
		if _, err := tx.ExecContext(ctx, s.rebind(q), args...); err != nil {
			return fmt.Errorf("write %s %s: %w", p, p0.Format(time.DateOnly), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %s %s: %w", p, p0.Format(time.DateOnly), err)
	}
	return nil
}

func (s *SQLStore) periodExists(ctx context.Context, p Period, comp billing.Component, start time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM aggregates WHERE period = ? AND component = ? AND period_start = ?"),
		string(p), string(comp), start.UnixMicro()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up %s %s: %w", p, start.Format(time.DateOnly), err)
	}
	return n > 0, nil
}

// AggregateQuery selects aggregates. Zero fields do not filter.
type AggregateQuery struct {
	// Period is required.
	Period Period
	// Component is billing.ComponentRM when empty.
	Component billing.Component
	// From and To bound the period starts: From inclusive, To exclusive.
	From, To          time.Time
	TenantID, Profile string
}

// Aggregates returns the aggregates matching q, oldest first, then by
// tenant and profile.
func (s *SQLStore) Aggregates(ctx context.Context, q AggregateQuery) ([]Aggregate, error) {
	switch q.Period {
	case PeriodDay, PeriodWeek, PeriodMonth:
	default:
		return nil, fmt.Errorf("%w: period %q (want day, week or month)", ErrBadQuery, q.Period)
	}
	if q.Component == "" {
		q.Component = billing.ComponentRM
	}
	conds := []string{"period = ?", "component = ?"}
	args := []any{string(q.Period), string(q.Component)}
	if !q.From.IsZero() {
		conds, args = append(conds, "period_start >= ?"), append(args, q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		conds, args = append(conds, "period_start < ?"), append(args, q.To.UnixMicro())
	}
	if q.TenantID != "" {
		conds, args = append(conds, "tenant_id = ?"), append(args, q.TenantID)
	}
	if q.Profile != "" {
		conds, args = append(conds, "profile = ?"), append(args, q.Profile)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT period_start, period_end, tenant_id, tenant_name, profile, arrivals, "+
		"completed, rejected, errors, duration_ms, peak FROM aggregates WHERE "+strings.Join(conds, " AND ")+
		" ORDER BY period_start, tenant_id, profile"), args...)
	if err != nil {
		return nil, fmt.Errorf("query aggregates: %w", err)
	}
	defer rows.Close()
	var out []Aggregate
	for rows.Next() {
		a := Aggregate{Period: q.Period, Component: q.Component}
		var p0, p1 int64
		if err := rows.Scan(&p0, &p1, &a.TenantID, &a.TenantName, &a.Profile, &a.Arrivals, &a.Completed, &a.Rejected,
			&a.Errors, &a.DurationMS, &a.PeakConcurrency); err != nil {
			return nil, fmt.Errorf("scan aggregate: %w", err)
		}
		a.Start, a.End = time.UnixMicro(p0).UTC(), time.UnixMicro(p1).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read aggregates: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Aggregate) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// stateValue reads a maintenance value; 0 when unset.
func (s *SQLStore) stateValue(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT value_us FROM maintenance_state WHERE name = ?"), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

func (s *SQLStore) setStateValue(ctx context.Context, name string, v int64) error {
	_, err := s.db.ExecContext(ctx, s.rebind("INSERT INTO maintenance_state (name, value_us) VALUES (?, ?) "+
		"ON CONFLICT (name) DO UPDATE SET value_us = excluded.value_us"), name, v)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
