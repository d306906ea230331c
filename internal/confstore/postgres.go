package confstore

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/opengvp/gvp/internal/sqlutil"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// PostgreSQL tuning.
const (
	// pgMaxConns bounds the connection pool.
	pgMaxConns = 10
	// pgChannel is the LISTEN/NOTIFY channel on which commits announce their revision.
	pgChannel = "gvp_confstore"
	// pgMigrationLockKey is the advisory lock key that serializes schema migrations.
	pgMigrationLockKey = 0x67767063 // "gvpc"
	// pgListenRetryMin and pgListenRetryMax bound the backoff of the notification listener.
	pgListenRetryMin = 100 * time.Millisecond
	pgListenRetryMax = 5 * time.Second
)

var pgDialect = dialect{
	name:          "postgres",
	placeholders:  sqlutil.DollarPlaceholders,
	lockRevision:  "SELECT revision FROM meta WHERE id = 1 FOR UPDATE",
	migrationLock: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(pgMigrationLockKey) + ")",
	notify:        "SELECT pg_notify('" + pgChannel + "', ?)",
	readTx:        &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
}

// OpenPostgres connects to the PostgreSQL database at dsn (a URL or key=value string), migrates
// its schema and listens for commits of other processes so that WaitRevision wakes for them too.
func OpenPostgres(ctx context.Context, dsn string, opts ...Option) (Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(pgMaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	s, err := newSQLStore(ctx, db, pgDialect, buildOptions(opts))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	ready := make(chan struct{})
	go s.listen(lctx, dsn, ready)
	select {
	case <-ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	return s, nil
}

// listen relays NOTIFY messages of commits to the notifier, reconnecting with backoff. After
// each (re)connection it reads the revision, so commits missed while disconnected wake waiters.
func (s *sqlStore) listen(ctx context.Context, dsn string, ready chan struct{}) {
	defer close(s.done)
	backoff := pgListenRetryMin
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			close(ready)
		}
	}
	defer signal()
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, dsn, func() { signal(); backoff = pgListenRetryMin })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("configuration change listener disconnected")
		signal() // do not hold up the opening: commits of this process still notify
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, pgListenRetryMax)
	}
}

func (s *sqlStore) listenOnce(ctx context.Context, dsn string, connected func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	if _, err := s.Revision(ctx); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			s.notify.notify(rev)
		}
	}
}
