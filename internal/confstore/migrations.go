package confstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one versioned schema step. Steps are applied in order, each once, in one
// transaction with the record of its version.
type migration struct {
	version    int
	statements []string
}

// migrations is the schema history. Append new steps; never edit a released one.
var migrations = []migration{
	{version: 1, statements: []string{
		// meta holds the single global revision row.
		`CREATE TABLE meta (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL)`,
		// objects holds the current objects: body is the JSON form without the revision.
		`CREATE TABLE objects (
			kind TEXT NOT NULL,
			name TEXT NOT NULL,
			revision BIGINT NOT NULL,
			body TEXT NOT NULL,
			PRIMARY KEY (kind, name))`,
		// changes is the change log read by watchers.
		`CREATE TABLE changes (
			revision BIGINT NOT NULL,
			kind TEXT NOT NULL,
			name TEXT NOT NULL,
			op TEXT NOT NULL,
			PRIMARY KEY (revision, kind, name))`,
		// The root tenant exists from the start, at revision 1.
		`INSERT INTO meta (id, revision) VALUES (1, 1)`,
		`INSERT INTO objects (kind, name, revision, body) VALUES ('Tenant', 'Environment', 1, '{"name":"Environment"}')`,
		`INSERT INTO changes (revision, kind, name, op) VALUES (1, 'Tenant', 'Environment', 'put')`,
	}},
}

// SchemaVersion is the schema version this package writes.
var SchemaVersion = migrations[len(migrations)-1].version

// migrate brings the schema to SchemaVersion. It refuses a database written by a newer version.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if cur > SchemaVersion {
		return fmt.Errorf("migrate: database schema version %d is newer than this program's %d", cur, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= cur {
			continue
		}
		for i, stmt := range m.statements {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate: version %d statement %d: %w", m.version, i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.placeholders(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`),
			m.version, time.Now().Unix()); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", m.version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
