package confstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLite tuning.
const (
	// sqliteBusyTimeoutMS is how long a statement waits for a lock held by another connection.
	sqliteBusyTimeoutMS = 5000
	// sqliteMaxConns bounds the connection pool (readers run concurrently under WAL).
	sqliteMaxConns = 4
	// DefaultSQLiteFile is the database file name inside a data folder.
	DefaultSQLiteFile = "configsrv.db"
)

var sqliteDialect = dialect{
	name:         "sqlite",
	placeholders: questionMarks,
	lockRevision: "SELECT revision FROM meta WHERE id = 1",
}

// OpenSQLite opens (creating it and its folder if needed) the SQLite database file at path, in
// WAL mode, and migrates its schema. One process at a time may write a given file.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create data folder for %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	s, err := newSQLStore(ctx, db, sqliteDialect, buildOptions(opts))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	close(s.done)
	return s, nil
}
