package cdrstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/opengvp/gvp/internal/sqlutil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/opengvp/gvp/internal/billing"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Storage defaults.
const (
	// DefaultSQLiteFile is the database file name inside the data folder.
	DefaultSQLiteFile = "cdr.db"
	// DefaultSQLiteBusyTimeout is how long SQLite waits for a lock, in ms.
	DefaultSQLiteBusyTimeout = 5000
	// DefaultMaxConns bounds each backend's connection pool.
	DefaultMaxConns = 8
	// rowsPerInsert bounds the rows of one multi-row INSERT (23 parameters
	// per CDR row stays under both SQLite's and PostgreSQL's limits).
	rowsPerInsert = 400
)

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// SQLStore is the Store on a SQL database: SQLite or PostgreSQL. Times are
// stored as BIGINT microseconds since the Unix epoch (UTC), so both backends
// share one schema and one set of queries.
type SQLStore struct {
	db      *sql.DB
	dialect dialect
}

var _ Store = (*SQLStore)(nil)

// OpenSQLite opens (creating if needed) the SQLite database DefaultSQLiteFile
// in dataDir, in WAL mode with synchronous=FULL (a committed batch survives
// power loss, which matters because the consumer acknowledges the broker
// after the commit), and applies the schema migrations.
func OpenSQLite(ctx context.Context, dataDir string) (*SQLStore, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return OpenSQLiteFile(ctx, filepath.Join(dataDir, DefaultSQLiteFile))
}

// OpenSQLiteFile opens (creating if needed) the SQLite database at path, with
// the settings of OpenSQLite, and applies the schema migrations. The folder
// must exist.
func OpenSQLiteFile(ctx context.Context, path string) (*SQLStore, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(DefaultSQLiteBusyTimeout)+")")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(DefaultMaxConns)
	return open(ctx, db, dialectSQLite, "sqlite "+path)
}

// OpenPostgres connects to PostgreSQL at dsn (a postgres:// URL or a
// key=value string) through pgx and applies the schema migrations.
func OpenPostgres(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(DefaultMaxConns)
	db.SetConnMaxIdleTime(time.Minute)
	return open(ctx, db, dialectPostgres, "postgres")
}

func open(ctx context.Context, db *sql.DB, d dialect, what string) (*SQLStore, error) {
	s := &SQLStore{db: db, dialect: d}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate %s: %w", what, err)
	}
	return s, nil
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (s *SQLStore) rebind(q string) string {
	if s.dialect != dialectPostgres {
		return q
	}
	return sqlutil.DollarPlaceholders(q)
}

// Ping implements Store.
func (s *SQLStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLStore) Close() error { return s.db.Close() }

// DB returns the underlying database handle (for tests and maintenance).
func (s *SQLStore) DB() *sql.DB { return s.db }

const cdrColumns = "record_id, session_id, component, component_name, state, tenant_id, tenant_name, profile, " +
	"service_type, dnis, ani, local_uri, remote_uri, call_id, mcp, start_us, answer_us, end_us, duration_ms, " +
	"end_reason, end_detail, end_code, stored_us"

const cdrColumnCount = 23

// cdrUpdate overwrites an existing row unless it is already completed: a
// completed record is final, so a late or repeated start never undoes it.
var cdrUpdate = func() string {
	var b strings.Builder
	b.WriteString(" ON CONFLICT (record_id) DO UPDATE SET ")
	for i, c := range strings.Split(cdrColumns, ", ")[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = excluded.%s", c, c)
	}
	b.WriteString(" WHERE cdrs.state <> 'completed'")
	return b.String()
}()

// Apply implements Store.
func (s *SQLStore) Apply(ctx context.Context, b Batch) error {
	_, err := s.ApplyCount(ctx, b)
	return err
}

// ApplyCount is Apply that also reports how many records changed nothing
// (duplicates). See ApplyResult.
func (s *SQLStore) ApplyCount(ctx context.Context, b Batch) (ApplyResult, error) {
	var res ApplyResult
	if b.Len() == 0 {
		return res, nil
	}
	cdrs, dupCDRs := mergeCDRs(b.CDRs)
	events := uniqueEvents(b.Events)
	res.Duplicates = dupCDRs + len(b.Events) - len(events)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMicro()
	for start := 0; start < len(cdrs); start += rowsPerInsert {
		chunk := cdrs[start:min(start+rowsPerInsert, len(cdrs))]
		args := make([]any, 0, len(chunk)*cdrColumnCount)
		for _, c := range chunk {
			args = append(args, c.ID, c.SessionID, string(c.Component), c.ComponentName, string(c.State),
				c.TenantID, c.TenantName, c.Profile, c.ServiceType, c.DNIS, c.ANI, c.LocalURI, c.RemoteURI,
				c.CallID, c.MCP, c.Start.UnixMicro(), nullTime(c.Answer), nullTime(c.End),
				c.Duration.Milliseconds(), string(c.EndReason), c.EndDetail, c.EndCode, now)
		}
		q := "INSERT INTO cdrs (" + cdrColumns + ") VALUES " + placeholders(len(chunk), cdrColumnCount) + cdrUpdate
		r, err := tx.ExecContext(ctx, s.rebind(q), args...)
		if err != nil {
			return ApplyResult{}, fmt.Errorf("store %d cdrs: %w", len(chunk), err)
		}
		res.Duplicates += unchanged(r, len(chunk))
	}
	for start := 0; start < len(events); start += rowsPerInsert {
		chunk := events[start:min(start+rowsPerInsert, len(events))]
		args := make([]any, 0, len(chunk)*6)
		for _, e := range chunk {
			args = append(args, e.ID, e.SessionID, e.Time.UnixMicro(), e.Kind, e.Detail, now)
		}
		q := "INSERT INTO events (record_id, session_id, ts_us, kind, detail, stored_us) VALUES " +
			placeholders(len(chunk), 6) + " ON CONFLICT (record_id) DO NOTHING"
		r, err := tx.ExecContext(ctx, s.rebind(q), args...)
		if err != nil {
			return ApplyResult{}, fmt.Errorf("store %d events: %w", len(chunk), err)
		}
		res.Duplicates += unchanged(r, len(chunk))
	}
	if err := tx.Commit(); err != nil {
		return ApplyResult{}, fmt.Errorf("commit: %w", err)
	}
	res.Stored = b.Len() - res.Duplicates
	return res, nil
}

// unchanged returns how many of n rows an INSERT ... ON CONFLICT left alone.
func unchanged(r sql.Result, n int) int {
	a, err := r.RowsAffected()
	if err != nil || a > int64(n) {
		return 0
	}
	return n - int(a)
}

// mergeCDRs keeps one record per id, preferring a completed one, since one
// INSERT may not touch the same row twice. It also returns the number of
// records dropped as duplicates (a start superseded by its end in the same
// batch is not one).
func mergeCDRs(in []*billing.CDR) ([]*billing.CDR, int) {
	idx := make(map[string]int, len(in))
	out := make([]*billing.CDR, 0, len(in))
	dups := 0
	for _, c := range in {
		if i, ok := idx[c.ID]; ok {
			if out[i].State != billing.StateCompleted && c.State == billing.StateCompleted {
				out[i] = c
			} else {
				dups++
			}
			continue
		}
		idx[c.ID] = len(out)
		out = append(out, c)
	}
	return out, dups
}

func uniqueEvents(in []*billing.Event) []*billing.Event {
	seen := make(map[string]struct{}, len(in))
	out := make([]*billing.Event, 0, len(in))
	for _, e := range in {
		if _, ok := seen[e.ID]; ok {
			continue
		}
		seen[e.ID] = struct{}{}
		out = append(out, e)
	}
	return out
}

func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// where builds a WHERE clause from q.
func (q CDRQuery) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	str := func(col, v string) {
		if v != "" {
			add(col+" = ?", v)
		}
	}
	str("component", string(q.Component))
	str("state", string(q.State))
	str("tenant_id", q.TenantID)
	str("profile", q.AppID)
	str("dnis", q.DN)
	str("remote_uri", q.RemoteURI)
	str("local_uri", q.LocalURI)
	str("session_id", q.SessionID)
	str("record_id", q.RecordID)
	tm := func(cond string, t time.Time) {
		if !t.IsZero() {
			add(cond, t.UnixMicro())
		}
	}
	tm("start_us >= ?", q.StartedFrom)
	tm("start_us < ?", q.StartedTo)
	tm("end_us >= ?", q.EndedFrom)
	tm("end_us < ?", q.EndedTo)
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// CDRs implements Store.
func (s *SQLStore) CDRs(ctx context.Context, q CDRQuery) (CDRPage, error) {
	if q.Page < 0 || q.PageSize < 0 {
		return CDRPage{}, fmt.Errorf("%w: page and page size must not be negative", ErrBadQuery)
	}
	if q.State != "" && q.State != billing.StateInProgress && q.State != billing.StateCompleted {
		return CDRPage{}, fmt.Errorf("%w: state %q", ErrBadQuery, q.State)
	}
	if q.Component != "" && q.Component != billing.ComponentRM && q.Component != billing.ComponentMCP {
		return CDRPage{}, fmt.Errorf("%w: component %q", ErrBadQuery, q.Component)
	}
	page := CDRPage{Page: max(q.Page, 1), PageSize: q.PageSize}
	if page.PageSize == 0 {
		page.PageSize = DefaultPageSize
	}
	page.PageSize = min(page.PageSize, MaxPageSize)
	where, args := q.where()
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM cdrs"+where), args...).Scan(&page.Total); err != nil {
		return CDRPage{}, fmt.Errorf("count cdrs: %w", err)
	}
	query := "SELECT " + cdrColumns + " FROM cdrs" + where + " ORDER BY start_us DESC, record_id LIMIT ? OFFSET ?"
	args = append(args, page.PageSize, (page.Page-1)*page.PageSize)
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return CDRPage{}, fmt.Errorf("query cdrs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c billing.CDR
		var comp, state, reason string
		var start, stored int64
		var answer, end sql.NullInt64
		var durMS int64
		if err := rows.Scan(&c.ID, &c.SessionID, &comp, &c.ComponentName, &state, &c.TenantID, &c.TenantName,
			&c.Profile, &c.ServiceType, &c.DNIS, &c.ANI, &c.LocalURI, &c.RemoteURI, &c.CallID, &c.MCP,
			&start, &answer, &end, &durMS, &reason, &c.EndDetail, &c.EndCode, &stored); err != nil {
			return CDRPage{}, fmt.Errorf("scan cdr: %w", err)
		}
		c.Component, c.State, c.EndReason = billing.Component(comp), billing.State(state), billing.EndReason(reason)
		c.Start = time.UnixMicro(start).UTC()
		c.Answer, c.End = fromMicros(answer), fromMicros(end)
		c.Duration = time.Duration(durMS) * time.Millisecond
		page.CDRs = append(page.CDRs, c)
	}
	if err := rows.Err(); err != nil {
		return CDRPage{}, fmt.Errorf("read cdrs: %w", err)
	}
	return page, nil
}

// Events implements Store.
func (s *SQLStore) Events(ctx context.Context, sessionID string) ([]billing.Event, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("%w: session id is required", ErrBadQuery)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(
		"SELECT record_id, session_id, ts_us, kind, detail FROM events WHERE session_id = ? ORDER BY ts_us, record_id"), sessionID)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []billing.Event
	for rows.Next() {
		var e billing.Event
		var ts int64
		if err := rows.Scan(&e.ID, &e.SessionID, &ts, &e.Kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e.Time = time.UnixMicro(ts).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// callSpan is one call's tenant, profile and life span.
type callSpan struct {
	tenant, tenantName, profile string
	start, end                  int64 // µs; end is maxInt64 while in progress
	inProgress                  bool
}

const forever = int64(^uint64(0) >> 1)

// spans loads the calls of component that overlap [from, to).
func (s *SQLStore) spans(ctx context.Context, comp billing.Component, from, to time.Time, tenant, profile string) ([]callSpan, error) {
	q := "SELECT tenant_id, tenant_name, profile, start_us, end_us, state FROM cdrs " +
		"WHERE component = ? AND start_us < ? AND (end_us IS NULL OR end_us >= ?)"
	args := []any{string(comp), to.UnixMicro(), from.UnixMicro()}
	if tenant != "" {
		q += " AND tenant_id = ?"
		args = append(args, tenant)
	}
	if profile != "" {
		q += " AND profile = ?"
		args = append(args, profile)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("query calls: %w", err)
	}
	defer rows.Close()
	var out []callSpan
	for rows.Next() {
		var c callSpan
		var end sql.NullInt64
		var state string
		if err := rows.Scan(&c.tenant, &c.tenantName, &c.profile, &c.start, &end, &state); err != nil {
			return nil, fmt.Errorf("scan call: %w", err)
		}
		c.end = forever
		if end.Valid && state == string(billing.StateCompleted) {
			c.end = end.Int64
		}
		c.inProgress = state == string(billing.StateInProgress)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read calls: %w", err)
	}
	return out, nil
}

// TenantUsage implements Store. A call counts as in progress while its CDR
// is in state in_progress; peak concurrency is measured since midnight.
func (s *SQLStore) TenantUsage(ctx context.Context, q UsageQuery) ([]TenantUsage, error) {
	comp, now, loc := q.Component, q.Now, q.Location
	if comp == "" {
		comp = billing.ComponentRM
	}
	if now.IsZero() {
		now = time.Now()
	}
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	hour := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), 0, 0, 0, loc)
	calls, err := s.spans(ctx, comp, day, now.Add(time.Microsecond), "", "")
	if err != nil {
		return nil, err
	}
	// Calls in progress that started before today also count as in progress.
	byTenant := map[string]*TenantUsage{}
	groups := map[string][]callSpan{}
	var order []string
	for _, c := range calls {
		u := byTenant[c.tenant]
		if u == nil {
			u = &TenantUsage{TenantID: c.tenant, TenantName: c.tenantName}
			byTenant[c.tenant] = u
			order = append(order, c.tenant)
		}
		if c.inProgress {
			u.InProgress++
		}
		if c.start >= day.UnixMicro() {
			u.ArrivalsToday++
			if c.start >= hour.UnixMicro() {
				u.ArrivalsThisHour++
			}
		}
		groups[c.tenant] = append(groups[c.tenant], c)
	}
	out := make([]TenantUsage, 0, len(order))
	for _, t := range order {
		u := byTenant[t]
		peaks := sweep(groups[t], []int64{day.UnixMicro(), now.UnixMicro() + 1})
		u.PeakToday = peaks[0].peak
		out = append(out, *u)
	}
	sortUsage(out)
	return out, nil
}

// Arrivals implements Store.
func (s *SQLStore) Arrivals(ctx context.Context, q IntervalQuery) ([]IntervalStat, error) {
	switch q.Interval {
	case 5 * time.Minute, time.Hour, 24 * time.Hour:
	default:
		return nil, fmt.Errorf("%w: interval %v (want 5m, 1h or 24h)", ErrBadQuery, q.Interval)
	}
	if q.From.IsZero() || !q.To.After(q.From) {
		return nil, fmt.Errorf("%w: need from < to", ErrBadQuery)
	}
	comp, loc := q.Component, q.Location
	if comp == "" {
		comp = billing.ComponentRM
	}
	if loc == nil {
		loc = time.UTC
	}
	bounds := intervalBounds(q.From, q.To, q.Interval, loc)
	if len(bounds) > 100_000 {
		return nil, fmt.Errorf("%w: too many intervals", ErrBadQuery)
	}
	calls, err := s.spans(ctx, comp, time.UnixMicro(bounds[0]), q.To, q.TenantID, q.Profile)
	if err != nil {
		return nil, err
	}
	type key struct{ tenant, profile string }
	groups := map[key][]callSpan{}
	var keys []key
	for _, c := range calls {
		k := key{c.tenant, c.profile}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], c)
	}
	var out []IntervalStat
	for _, k := range keys {
		for i, b := range sweep(groups[k], bounds) {
			if b.arrivals == 0 && b.peak == 0 {
				continue
			}
			out = append(out, IntervalStat{Start: time.UnixMicro(bounds[i]).In(loc), TenantID: k.tenant,
				Profile: k.profile, Arrivals: b.arrivals, PeakConcurrency: b.peak})
		}
	}
	sortStats(out)
	return out, nil
}

// intervalBounds returns the interval starts from from (rounded down) up to
// to, plus to as the last bound, in µs.
func intervalBounds(from, to time.Time, d time.Duration, loc *time.Location) []int64 {
	var t time.Time
	if d == 24*time.Hour {
		l := from.In(loc)
		t = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	} else {
		t = from.Truncate(d)
	}
	var out []int64
	for t.Before(to) {
		out = append(out, t.UnixMicro())
		if d == 24*time.Hour {
			t = t.AddDate(0, 0, 1)
		} else {
			t = t.Add(d)
		}
	}
	return append(out, to.UnixMicro())
}

type bucket struct{ arrivals, peak int }

// sweep computes, for each interval [bounds[i], bounds[i+1]), the calls
// that started in it and the highest number of calls up at once.
func sweep(calls []callSpan, bounds []int64) []bucket {
	type ev struct {
		t     int64
		delta int
	}
	evs := make([]ev, 0, 2*len(calls))
	for _, c := range calls {
		evs = append(evs, ev{c.start, +1})
		if c.end != forever {
			evs = append(evs, ev{c.end, -1})
		}
	}
	// Ends sort before starts at the same instant: back-to-back calls do
	// not overlap.
	slices.SortFunc(evs, func(a, b ev) int {
		if a.t != b.t {
			return cmpInt64(a.t, b.t)
		}
		return a.delta - b.delta
	})
	out := make([]bucket, len(bounds)-1)
	cur, j := 0, 0
	for i := range out {
		lo, hi := bounds[i], bounds[i+1]
		// Calls that ended exactly at lo are no longer up in this interval.
		for j < len(evs) && (evs[j].t < lo || evs[j].t == lo && evs[j].delta < 0) {
			cur += evs[j].delta
			j++
		}
		b := bucket{peak: cur}
		for j < len(evs) && evs[j].t < hi {
			cur += evs[j].delta
			if evs[j].delta > 0 {
				b.arrivals++
				b.peak = max(b.peak, cur)
			}
			j++
		}
		out[i] = b
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortUsage(u []TenantUsage) {
	slices.SortFunc(u, func(a, b TenantUsage) int { return strings.Compare(a.TenantID, b.TenantID) })
}

func sortStats(st []IntervalStat) {
	slices.SortFunc(st, func(a, b IntervalStat) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := strings.Compare(a.TenantID, b.TenantID); c != 0 {
			return c
		}
		return strings.Compare(a.Profile, b.Profile)
	})
}
