package confstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confmodel"
)

// dialect holds what differs between the SQL backends.
type dialect struct {
	name string
	// placeholders rewrites '?' placeholders for the backend.
	placeholders func(string) string
	// lockRevision reads and locks the revision row for the rest of the transaction.
	lockRevision string
	// migrationLock serializes migrations across processes; empty when not needed.
	migrationLock string
	// notify, when set, is run in each write transaction with the new revision.
	notify string
	// readTx are the options of consistent multi-statement reads.
	readTx *sql.TxOptions
}

func questionMarks(q string) string { return q }

// state is the whole configuration at one revision. It is immutable once published.
type state struct {
	rev  int64
	objs map[confmodel.Ref]confmodel.Object
}

// sqlStore implements Store over database/sql.
type sqlStore struct {
	db     *sql.DB
	d      dialect
	log    zerolog.Logger
	notify *notifier

	writeMu sync.Mutex            // serializes writers of this process
	cache   atomic.Pointer[state] // the last state read or written
	closed  atomic.Bool
	stop    context.CancelFunc // stops background work (the PostgreSQL listener)
	done    chan struct{}      // closed when background work has ended
}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect, o options) (*sqlStore, error) {
	s := &sqlStore{db: db, d: d, log: o.log, done: make(chan struct{})}
	if err := migrate(ctx, db, d); err != nil {
		return nil, err
	}
	st, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.cache.Store(st)
	s.notify = newNotifier(st.rev)
	return s, nil
}

func (s *sqlStore) q(query string) string { return s.d.placeholders(query) }

// Revision implements Store.
func (s *sqlStore) Revision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	var rev int64
	if err := s.db.QueryRowContext(ctx, "SELECT revision FROM meta WHERE id = 1").Scan(&rev); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	s.notify.notify(rev)
	return rev, nil
}

// current returns the state at the database's current revision, from the cache when it is
// up to date.
func (s *sqlStore) current(ctx context.Context) (*state, error) {
	rev, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	if st := s.cache.Load(); st != nil && st.rev == rev {
		return st, nil
	}
	st, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.publish(st)
	return st, nil
}

// publish replaces the cache with st unless the cache is newer.
func (s *sqlStore) publish(st *state) {
	for {
		old := s.cache.Load()
		if old != nil && old.rev >= st.rev {
			return
		}
		if s.cache.CompareAndSwap(old, st) {
			return
		}
	}
}

// load reads the whole configuration in one consistent transaction.
func (s *sqlStore) load(ctx context.Context) (*state, error) {
	tx, err := s.db.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var rev int64
	if err := tx.QueryRowContext(ctx, "SELECT revision FROM meta WHERE id = 1").Scan(&rev); err != nil {
		return nil, fmt.Errorf("read revision: %w", err)
	}
	st, err := loadTx(ctx, tx, rev)
	if err != nil {
		return nil, err
	}
	return st, tx.Commit()
}

// loadTx reads every object in tx, which sees revision rev.
func loadTx(ctx context.Context, tx *sql.Tx, rev int64) (*state, error) {
	st := &state{rev: rev, objs: map[confmodel.Ref]confmodel.Object{}}
	rows, err := tx.QueryContext(ctx, "SELECT kind, name, revision, body FROM objects")
	if err != nil {
		return nil, fmt.Errorf("read objects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind, name string
			rev        int64
			body       []byte
		)
		if err := rows.Scan(&kind, &name, &rev, &body); err != nil {
			return nil, fmt.Errorf("read objects: %w", err)
		}
		o := confmodel.New(confmodel.Kind(kind))
		if o == nil {
			return nil, fmt.Errorf("read objects: unknown kind %q of %q", kind, name)
		}
		if err := json.Unmarshal(body, o); err != nil {
			return nil, fmt.Errorf("read %s %q: %w", kind, name, err)
		}
		o.Normalize()
		o.Metadata().Revision = rev
		st.objs[confmodel.RefOf(o)] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read objects: %w", err)
	}
	return st, nil
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, k confmodel.Kind, key string) (confmodel.Object, error) {
	st, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	o, ok := st.objs[confmodel.Ref{Kind: k, Key: key}]
	if !ok {
		return nil, fmt.Errorf("%s %q: %w", k, key, ErrNotFound)
	}
	return o, nil
}

// List implements Store.
func (s *sqlStore) List(ctx context.Context, k confmodel.Kind) ([]confmodel.Object, int64, error) {
	st, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	var out []confmodel.Object
	for r, o := range st.objs {
		if r.Kind == k {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, st.rev, nil
}

// Snapshot implements Store.
func (s *sqlStore) Snapshot(ctx context.Context) ([]confmodel.Object, int64, error) {
	st, err := s.current(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := make([]confmodel.Object, 0, len(st.objs))
	for _, o := range st.objs {
		out = append(out, o)
	}
	confmodel.SortObjects(out)
	return out, st.rev, nil
}

// WaitRevision implements Store.
func (s *sqlStore) WaitRevision(ctx context.Context, after int64) (int64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.notify.wait(ctx, after)
}

// Changes implements Store.
func (s *sqlStore) Changes(ctx context.Context, after int64) (*ChangeSet, error) {
	st, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	cs := &ChangeSet{After: after, Revision: st.rev, Events: []Event{}}
	if after > st.rev || after < 0 {
		cs.Reset = true
		return cs, nil
	}
	if after == st.rev {
		return cs, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT revision, kind, name, op FROM changes WHERE revision > ? AND revision <= ? ORDER BY revision"), after, st.rev)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	last := map[confmodel.Ref]int{}
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Revision, &e.Kind, &e.Name, &e.Op); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		r := confmodel.Ref{Kind: e.Kind, Key: e.Name}
		if i, ok := last[r]; ok {
			cs.Events[i].Kind = "" // superseded; dropped below
		}
		last[r] = len(cs.Events)
		cs.Events = append(cs.Events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	out := cs.Events[:0]
	for _, e := range cs.Events {
		if e.Kind == "" {
			continue
		}
		if o, ok := st.objs[confmodel.Ref{Kind: e.Kind, Key: e.Name}]; ok {
			e.Op, e.Object = OpPut, o
		} else {
			e.Op = OpDelete
		}
		out = append(out, e)
	}
	cs.Events = out
	return cs, nil
}

// body returns the stored form of o: its JSON without the revision.
func body(o confmodel.Object) ([]byte, error) {
	c := confmodel.Clone(o)
	c.Metadata().Revision = 0
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", confmodel.RefOf(o), err)
	}
	return b, nil
}

// Apply implements Store.
func (s *sqlStore) Apply(ctx context.Context, changes []Change, opts ApplyOptions) (*Result, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	// Prepare the requested objects outside the lock: copies, normalized, checked alone.
	type prepared struct {
		Change
		body []byte
	}
	reqs := make([]prepared, len(changes))
	docs := map[confmodel.Ref]int{}
	var errs confmodel.ErrorList
	for i, c := range changes {
		p := prepared{Change: c}
		if c.Op == OpPut {
			if c.Object == nil {
				return nil, fmt.Errorf("change %d: put without an object", i)
			}
			p.Object = confmodel.Clone(c.Object)
			p.Object.Metadata().Revision = 0
			if err := confmodel.ValidateObject(p.Object); err != nil {
				l, _ := confmodel.AsErrorList(err)
				for _, e := range l {
					e.Document = c.Document
					errs = append(errs, e)
				}
				continue
			}
			p.Ref = confmodel.RefOf(p.Object)
			b, err := body(p.Object)
			if err != nil {
				return nil, err
			}
			p.body = b
		} else if c.Op != OpDelete {
			return nil, fmt.Errorf("change %d: unknown op %q", i, c.Op)
		}
		if prev, dup := docs[p.Ref]; dup {
			errs = append(errs, confmodel.FieldError{Document: c.Document, Kind: p.Ref.Kind, Name: p.Ref.Key,
				Message: fmt.Sprintf("changed twice in one apply (also in document %d)", prev)})
			continue
		}
		docs[p.Ref] = c.Document
		reqs[i] = p
	}
	if len(errs) > 0 {
		return nil, errs
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin apply: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var rev int64
	if err := tx.QueryRowContext(ctx, s.d.lockRevision).Scan(&rev); err != nil {
		return nil, fmt.Errorf("lock revision: %w", err)
	}
	cur := s.cache.Load()
	if cur == nil || cur.rev != rev {
		// Another process wrote: reload inside the transaction, which holds the lock.
		if cur, err = loadTx(ctx, tx, rev); err != nil {
			return nil, err
		}
	}

	res := &Result{Revision: rev, DryRun: opts.DryRun, Objects: make([]ObjectResult, len(reqs))}
	next := make(map[confmodel.Ref]confmodel.Object, len(cur.objs)+len(reqs))
	for r, o := range cur.objs {
		next[r] = o
	}
	var deletes []confmodel.Ref
	for i, p := range reqs {
		or := ObjectResult{Kind: p.Ref.Kind, Name: p.Ref.Key, Document: p.Document}
		old, exists := cur.objs[p.Ref]
		switch {
		case p.Op == OpDelete && !exists:
			return nil, fmt.Errorf("delete %s: %w", p.Ref, ErrNotFound)
		case p.Op == OpDelete:
			or.Outcome = OutcomeDeleted
			delete(next, p.Ref)
			deletes = append(deletes, p.Ref)
		case !exists:
			or.Outcome = OutcomeCreated
			next[p.Ref] = p.Object
		default:
			ob, err := body(old)
			if err != nil {
				return nil, err
			}
			if bytes.Equal(ob, p.body) {
				or.Outcome = OutcomeUnchanged
			} else {
				or.Outcome = OutcomeUpdated
				next[p.Ref] = p.Object
			}
		}
		if or.Outcome != OutcomeUnchanged {
			res.Changed++
		}
		res.Objects[i] = or
	}
	if res.Changed == 0 {
		return res, nil
	}
	all := make([]confmodel.Object, 0, len(next))
	for _, o := range next {
		all = append(all, o)
	}
	if err := confmodel.Validate(all); err != nil {
		return nil, explain(err, docs, deletes)
	}
	if opts.DryRun {
		return res, nil
	}

	newRev := rev + 1
	if _, err := tx.ExecContext(ctx, s.q("UPDATE meta SET revision = ? WHERE id = 1"), newRev); err != nil {
		return nil, fmt.Errorf("bump revision: %w", err)
	}
	upsert, err := tx.PrepareContext(ctx, s.q("INSERT INTO objects (kind, name, revision, body) VALUES (?, ?, ?, ?) "+
		"ON CONFLICT (kind, name) DO UPDATE SET revision = excluded.revision, body = excluded.body"))
	if err != nil {
		return nil, fmt.Errorf("prepare upsert: %w", err)
	}
	defer upsert.Close()
	del, err := tx.PrepareContext(ctx, s.q("DELETE FROM objects WHERE kind = ? AND name = ?"))
	if err != nil {
		return nil, fmt.Errorf("prepare delete: %w", err)
	}
	defer del.Close()
	logc, err := tx.PrepareContext(ctx, s.q("INSERT INTO changes (revision, kind, name, op) VALUES (?, ?, ?, ?)"))
	if err != nil {
		return nil, fmt.Errorf("prepare change log: %w", err)
	}
	defer logc.Close()
	for i, p := range reqs {
		op := OpPut
		switch res.Objects[i].Outcome {
		case OutcomeUnchanged:
			continue
		case OutcomeDeleted:
			op = OpDelete
			if _, err := del.ExecContext(ctx, string(p.Ref.Kind), p.Ref.Key); err != nil {
				return nil, fmt.Errorf("delete %s: %w", p.Ref, err)
			}
		default:
			if _, err := upsert.ExecContext(ctx, string(p.Ref.Kind), p.Ref.Key, newRev, string(p.body)); err != nil {
				return nil, fmt.Errorf("write %s: %w", p.Ref, err)
			}
			p.Object.Metadata().Revision = newRev
		}
		if _, err := logc.ExecContext(ctx, newRev, string(p.Ref.Kind), p.Ref.Key, string(op)); err != nil {
			return nil, fmt.Errorf("log change of %s: %w", p.Ref, err)
		}
	}
	if s.d.notify != "" {
		if _, err := tx.ExecContext(ctx, s.q(s.d.notify), strconv.FormatInt(newRev, 10)); err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit apply: %w", err)
	}
	s.publish(&state{rev: newRev, objs: next})
	s.notify.notify(newRev)
	res.Revision = newRev
	s.log.Debug().Int64("revision", newRev).Int("changed", res.Changed).Msg("configuration applied")
	return res, nil
}

// explain turns validation errors of an apply into errors naming the documents, or into a
// ReferencedError when the apply deletes an object that others still reference.
func explain(err error, docs map[confmodel.Ref]int, deletes []confmodel.Ref) error {
	l, ok := confmodel.AsErrorList(err)
	if !ok {
		return err
	}
	deleted := map[confmodel.Ref]bool{}
	// Profiles are referenced by name from a tenant and resolved up the tenant tree, so a
	// reference "t100/app" may break because "Environment/app" is deleted.
	deletedProfiles := map[string]confmodel.Ref{}
	for _, r := range deletes {
		deleted[r] = true
		if r.Kind == confmodel.KindIVRProfile {
			_, name, _ := strings.Cut(r.Key, "/")
			deletedProfiles[name] = r
		}
	}
	target := func(to *confmodel.Ref) (confmodel.Ref, bool) {
		if to == nil {
			return confmodel.Ref{}, false
		}
		if deleted[*to] {
			return *to, true
		}
		if to.Kind == confmodel.KindIVRProfile {
			_, name, _ := strings.Cut(to.Key, "/")
			r, ok := deletedProfiles[name]
			return r, ok
		}
		return confmodel.Ref{}, false
	}
	var refs *ReferencedError
	for i := range l {
		e := &l[i]
		if d, ok := docs[confmodel.Ref{Kind: e.Kind, Key: e.Name}]; ok {
			e.Document = d
		}
		if to, ok := target(e.RefersTo); ok {
			if refs == nil {
				refs = &ReferencedError{Ref: to}
			}
			if to == refs.Ref {
				refs.By = append(refs.By, *e)
			}
		}
		if e.Kind == confmodel.KindTenant && e.Name == confmodel.RootTenant && e.Field == "" &&
			deleted[confmodel.Ref{Kind: confmodel.KindTenant, Key: confmodel.RootTenant}] {
			return &ReferencedError{Ref: confmodel.Ref{Kind: confmodel.KindTenant, Key: confmodel.RootTenant},
				By: []confmodel.FieldError{{Document: -1, Message: "the root tenant is always present"}}}
		}
	}
	if refs != nil {
		return refs
	}
	return l
}

// Close implements Store.
func (s *sqlStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	return s.db.Close()
}
