package cdrstore

import (
	"context"
	"fmt"
	"time"
)

// DefaultPurgeChunk is the most rows one DELETE statement removes, so that
// retention never holds a long write lock (SQLite has one writer) or builds
// a huge transaction.
const DefaultPurgeChunk = 5000

// RetentionPolicy tells Purge what to delete. A zero age keeps that kind of
// data forever.
type RetentionPolicy struct {
	// Now is the reference time; time.Now() when zero.
	Now time.Time
	// CDRs is how long a CDR is kept after its call ended (after it started
	// while it has no end).
	CDRs time.Duration
	// Events is how long a call event is kept after its time.
	Events time.Duration
	// Aggregates is how long an aggregate is kept after its period ended.
	Aggregates time.Duration
	// Chunk bounds the rows of one DELETE; DefaultPurgeChunk when 0.
	Chunk int
}

// PurgeResult counts the rows Purge deleted.
type PurgeResult struct {
	CDRs, Events, Aggregates int64
}

// Purge deletes the data older than the policy allows, in chunks of one
// short transaction each. It is safe to run while records are stored.
func (s *SQLStore) Purge(ctx context.Context, p RetentionPolicy) (PurgeResult, error) {
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if p.Chunk <= 0 {
		p.Chunk = DefaultPurgeChunk
	}
	if p.CDRs < 0 || p.Events < 0 || p.Aggregates < 0 {
		return PurgeResult{}, fmt.Errorf("%w: retention must not be negative", ErrBadQuery)
	}
	var res PurgeResult
	var err error
	if p.CDRs > 0 {
		cut := p.Now.Add(-p.CDRs).UnixMicro()
		var n int64
		// Completed calls by end time, calls without an end by start time
		// (their end record never came); each form can use an index.
		if n, err = s.purge(ctx, "cdrs", "record_id", "end_us < ?", cut, p.Chunk); err != nil {
			return res, err
		}
		res.CDRs += n
		if n, err = s.purge(ctx, "cdrs", "record_id", "end_us IS NULL AND start_us < ?", cut, p.Chunk); err != nil {
			return res, err
		}
		res.CDRs += n
	}
	if p.Events > 0 {
		if res.Events, err = s.purge(ctx, "events", "record_id", "ts_us < ?", p.Now.Add(-p.Events).UnixMicro(), p.Chunk); err != nil {
			return res, err
		}
	}
	if p.Aggregates > 0 {
		// Aggregates are few (one row per period, tenant and profile).
		cut := p.Now.Add(-p.Aggregates).UnixMicro()
		r, err := s.db.ExecContext(ctx, s.rebind("DELETE FROM aggregates WHERE period_end < ?"), cut)
		if err != nil {
			return res, fmt.Errorf("purge aggregates: %w", err)
		}
		res.Aggregates, _ = r.RowsAffected()
	}
	return res, nil
}

// purge deletes the rows of table matching cond (one ? bound to arg) in
// chunks until none is left.
func (s *SQLStore) purge(ctx context.Context, table, key, cond string, arg any, chunk int) (int64, error) {
	q := s.rebind("DELETE FROM " + table + " WHERE " + key + " IN (SELECT " + key + " FROM " + table +
		" WHERE " + cond + " LIMIT ?)")
	var total int64
	for {
		r, err := s.db.ExecContext(ctx, q, arg, chunk)
		if err != nil {
			return total, fmt.Errorf("purge %s: %w", table, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("purge %s: %w", table, err)
		}
		total += n
		if n < int64(chunk) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Maintainer is what the reporting server's maintenance jobs and reports
// need besides Store; *SQLStore implements it on both backends.
type Maintainer interface {
	// Aggregate recomputes the daily, weekly and monthly aggregates
	// touched by CDRs stored since its previous run.
	Aggregate(ctx context.Context, o AggregateOptions) (AggregateResult, error)
	// Aggregates returns pre-computed aggregates.
	Aggregates(ctx context.Context, q AggregateQuery) ([]Aggregate, error)
	// Purge deletes data past its retention.
	Purge(ctx context.Context, p RetentionPolicy) (PurgeResult, error)
}

var _ Maintainer = (*SQLStore)(nil)
