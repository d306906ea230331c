package confclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
)

// Cache defaults.
const (
	// DefaultWatchTimeout is how long each watch request waits on the server.
	DefaultWatchTimeout = 30 * time.Second
	// DefaultBackoffMin is the first wait after a failed request to configsrv.
	DefaultBackoffMin = 100 * time.Millisecond
	// DefaultBackoffMax caps the wait between retries (it doubles after each failure).
	DefaultBackoffMax = 10 * time.Second
)

// Cache keeps the latest configuration snapshot: it loads the snapshot, then follows the watch,
// applying each change to a new snapshot. When configsrv is unreachable it keeps the last good
// snapshot and retries with exponential backoff. Snapshot is safe for concurrent use and
// costs one atomic load.
type Cache struct {
	c            *Client
	log          zerolog.Logger
	persist      string
	watchTimeout time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration

	snap      atomic.Pointer[confmodel.Snapshot]
	mu        sync.Mutex
	callbacks []func(*confmodel.Snapshot)
	ready     chan struct{}
	readyOnce sync.Once
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithPersistFile saves each new snapshot to path (atomically, by rename) and loads it at start,
// so a restarted client works even when configsrv is down. Default: no file.
func WithPersistFile(path string) CacheOption { return func(c *Cache) { c.persist = path } }

// WithCacheLogger sets the logger (default zerolog.Nop()).
func WithCacheLogger(l zerolog.Logger) CacheOption { return func(c *Cache) { c.log = l } }

// WithWatchTimeout sets how long each watch waits on the server (default DefaultWatchTimeout).
func WithWatchTimeout(d time.Duration) CacheOption { return func(c *Cache) { c.watchTimeout = d } }

// WithBackoff sets the first and the longest wait between retries (defaults DefaultBackoffMin
// and DefaultBackoffMax).
func WithBackoff(min, max time.Duration) CacheOption {
	return func(c *Cache) { c.backoffMin, c.backoffMax = min, max }
}

// NewCache returns a cache fed by client. Call Run to start it.
func NewCache(client *Client, opts ...CacheOption) *Cache {
	c := &Cache{c: client, log: zerolog.Nop(), watchTimeout: DefaultWatchTimeout,
		backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax, ready: make(chan struct{})}
	for _, f := range opts {
		f(c)
	}
	return c
}

// Snapshot returns the current snapshot, or nil before the first one is loaded.
func (c *Cache) Snapshot() *confmodel.Snapshot { return c.snap.Load() }

// OnChange registers fn, called with each new snapshot (from the cache's goroutine, one call at
// a time, in revision order). If a snapshot is already loaded, fn is called with it at once.
func (c *Cache) OnChange(fn func(*confmodel.Snapshot)) {
	c.mu.Lock()
	c.callbacks = append(c.callbacks, fn)
	s := c.snap.Load()
	if s != nil {
		fn(s)
	}
	c.mu.Unlock()
}

// Ready is closed once a first snapshot is available (from configsrv or the persisted file).
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// WaitReady blocks until a first snapshot is available or ctx ends.
func (c *Cache) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the configuration snapshot: %w", ctx.Err())
	}
}

// set publishes s and calls the callbacks.
func (c *Cache) set(s *confmodel.Snapshot, persist bool) {
	c.mu.Lock()
	c.snap.Store(s)
	for _, fn := range c.callbacks {
		fn(s)
	}
	c.mu.Unlock()
	c.readyOnce.Do(func() { close(c.ready) })
	if persist && c.persist != "" {
		if err := c.save(s); err != nil {
			c.log.Warn().Err(err).Str("file", c.persist).Msg("cannot persist the configuration snapshot")
		}
	}
}

// Run keeps the cache current until ctx ends; it returns ctx's error.
func (c *Cache) Run(ctx context.Context) error {
	if c.persist != "" && c.snap.Load() == nil {
		if s, err := c.load(); err == nil {
			c.log.Info().Int64("revision", s.Revision()).Str("file", c.persist).Msg("configuration loaded from the persisted snapshot")
			c.set(s, false)
		} else if !errors.Is(err, os.ErrNotExist) {
			c.log.Warn().Err(err).Str("file", c.persist).Msg("cannot read the persisted configuration snapshot")
		}
	}
	backoff := c.backoffMin
	fail := func(err error, what string) bool {
		c.log.Warn().Err(err).Dur("retry_in", backoff).Msg("configsrv " + what + " failed")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, c.backoffMax)
		return true
	}
	reload := true
	for ctx.Err() == nil {
		if reload {
			s, err := c.c.Snapshot(ctx)
			if err != nil {
				if ctx.Err() != nil || !fail(err, "snapshot") {
					break
				}
				continue
			}
			reload = false
			backoff = c.backoffMin
			if cur := c.snap.Load(); cur == nil || cur.Revision() != s.Revision() {
				c.set(s, true)
			} else {
				c.readyOnce.Do(func() { close(c.ready) })
			}
		}
		cur := c.snap.Load()
		wb, err := c.c.Watch(ctx, cur.Revision(), c.watchTimeout)
		if err != nil {
			if ctx.Err() != nil || !fail(err, "watch") {
				break
			}
			continue
		}
		backoff = c.backoffMin
		switch {
		case wb.Reset:
			c.log.Info().Int64("revision", cur.Revision()).Int64("server_revision", wb.Revision).Msg("configuration reset by configsrv: reloading")
			reload = true
		case len(wb.Events) > 0:
			s, err := applyEvents(cur, wb)
			if err != nil {
				c.log.Warn().Err(err).Msg("cannot apply configuration changes: reloading the snapshot")
				reload = true
				continue
			}
			c.set(s, true)
		}
	}
	return ctx.Err()
}

// applyEvents returns the snapshot cur with the events of wb applied.
func applyEvents(cur *confmodel.Snapshot, wb *confstore.WatchBody) (*confmodel.Snapshot, error) {
	objs := make(map[confmodel.Ref]confmodel.Object, len(cur.Objects())+len(wb.Events))
	for _, o := range cur.Objects() {
		objs[confmodel.RefOf(o)] = o
	}
	for _, e := range wb.Events {
		r := confmodel.Ref{Kind: e.Kind, Key: e.Name}
		switch e.Op {
		case confstore.OpDelete:
			delete(objs, r)
		case confstore.OpPut:
			o, err := confmodel.DecodeObject(e.Kind, e.Object)
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", r, err)
			}
			o.Metadata().Revision = e.Revision
			objs[r] = o
		default:
			return nil, fmt.Errorf("event %s: unknown op %q", r, e.Op)
		}
	}
	list := make([]confmodel.Object, 0, len(objs))
	for _, o := range objs {
		list = append(list, o)
	}
	return confmodel.NewSnapshot(wb.Revision, list)
}

func (c *Cache) save(s *confmodel.Snapshot) error {
	b, err := json.Marshal(confstore.SnapshotBody{Revision: s.Revision(), Objects: s.Set()})
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.persist)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), c.persist)
}

func (c *Cache) load() (*confmodel.Snapshot, error) {
	b, err := os.ReadFile(c.persist)
	if err != nil {
		return nil, err
	}
	var sb confstore.SnapshotBody
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("decode %s: %w", c.persist, err)
	}
	return confmodel.NewSnapshot(sb.Revision, sb.Objects.Objects())
}
