package cdrstore

import (
	"context"
	"fmt"
	"time"
)

// migration is one schema version. Statements run in order in one
// transaction; both backends share them (types valid in SQLite and
// PostgreSQL).
type migration struct {
	version int
	stmts   []string
}

// migrations is the schema history; append, never edit a released entry.
var migrations = []migration{
	{1, []string{
		`CREATE TABLE cdrs (
			record_id      TEXT PRIMARY KEY,
			session_id     TEXT NOT NULL,
			component      TEXT NOT NULL,
			component_name TEXT NOT NULL DEFAULT '',
			state          TEXT NOT NULL,
			tenant_id      TEXT NOT NULL DEFAULT '',
			tenant_name    TEXT NOT NULL DEFAULT '',
			profile        TEXT NOT NULL DEFAULT '',
			service_type   TEXT NOT NULL DEFAULT '',
			dnis           TEXT NOT NULL DEFAULT '',
			ani            TEXT NOT NULL DEFAULT '',
			local_uri      TEXT NOT NULL DEFAULT '',
			remote_uri     TEXT NOT NULL DEFAULT '',
			call_id        TEXT NOT NULL DEFAULT '',
			mcp            TEXT NOT NULL DEFAULT '',
			start_us       BIGINT NOT NULL,
			answer_us      BIGINT,
			end_us         BIGINT,
			duration_ms    BIGINT NOT NULL DEFAULT 0,
			end_reason     TEXT NOT NULL DEFAULT '',
			end_detail     TEXT NOT NULL DEFAULT '',
			end_code       INTEGER NOT NULL DEFAULT 0,
			stored_us      BIGINT NOT NULL
		)`,
		`CREATE INDEX cdrs_start ON cdrs (start_us)`,
		`CREATE INDEX cdrs_end ON cdrs (end_us)`,
		`CREATE INDEX cdrs_session ON cdrs (session_id)`,
		`CREATE INDEX cdrs_tenant_start ON cdrs (tenant_id, start_us)`,
		`CREATE INDEX cdrs_state_component ON cdrs (state, component, start_us)`,
		`CREATE TABLE events (
			record_id  TEXT PRIMARY KEY,
			session_id TEXT NOT NULL,
			ts_us      BIGINT NOT NULL,
			kind       TEXT NOT NULL,
			detail     TEXT NOT NULL DEFAULT '',
			stored_us  BIGINT NOT NULL
		)`,
		`CREATE INDEX events_session ON events (session_id, ts_us)`,
	}},
	{2, aggregateSchema},
}

// migrationLockID is the PostgreSQL advisory lock that serialises
// migrations of several rs instances starting at once.
const migrationLockID = 0x67767063647273 // "gvpcdrs"

// migrate applies the migrations not yet recorded in schema_migrations.
func (s *SQLStore) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_us BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("schema version %d: %w", m.version, err)
		}
	}
	return nil
}

func (s *SQLStore) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if s.dialect == dialectPostgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockID)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, st := range m.stmts {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO schema_migrations (version, applied_us) VALUES (?, ?)"),
		m.version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the highest applied schema version.
func (s *SQLStore) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
