package discovery

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sort"
	"sync"
	"time"
)

// DefaultWaitTime bounds a blocking query that gives no WaitTime, as Consul does.
const DefaultWaitTime = 5 * time.Minute

// Memory is an in-process Registry for local mode and tests. It has Consul's blocking query
// semantics (one index for the whole registry, bumped by every change), a simulated health
// state per instance (SetStatus) and, with WithHTTPChecks, runs the instances' HTTP checks
// itself. The zero value is not usable: call NewMemory.
type Memory struct {
	hc     *http.Client
	checks bool

	mu        sync.Mutex
	index     uint64
	changed   chan struct{} // closed and replaced on every change
	instances map[string]*memEntry
	kv        map[string][]byte
	closed    bool
}

type memEntry struct {
	in            Instance
	criticalSince time.Time
	stop          chan struct{} // stops the check goroutine, nil without one
}

// MemoryOption configures a Memory registry.
type MemoryOption func(*Memory)

// WithHTTPChecks makes the registry probe each instance's Check.HTTP itself, every
// Check.Interval, the first time right after registration; hc is the HTTP client (nil for a
// default client). Without it instances keep the status they were registered with, or the one
// set by SetStatus.
func WithHTTPChecks(hc *http.Client) MemoryOption {
	return func(m *Memory) {
		m.checks = true
		if hc != nil {
			m.hc = hc
		}
	}
}

// NewMemory returns an empty in-memory registry.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		hc:        &http.Client{},
		index:     1,
		changed:   make(chan struct{}),
		instances: map[string]*memEntry{},
		kv:        map[string][]byte{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// bumpLocked records a change and wakes blocked queries; m.mu is held.
func (m *Memory) bumpLocked() {
	m.index++
	close(m.changed)
	m.changed = make(chan struct{})
}

// Register implements Registry.
func (m *Memory) Register(_ context.Context, in Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	in = in.Clone()
	if in.Status == "" {
		in.Status = StatusPassing
		if in.Check != nil {
			in.Status = StatusCritical
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("register %s: registry closed", in.ID)
	}
	if old, ok := m.instances[in.ID]; ok && old.stop != nil {
		close(old.stop)
	}
	e := &memEntry{in: in}
	if in.Status == StatusCritical {
		e.criticalSince = time.Now()
	}
	if m.checks && in.Check != nil {
		e.stop = make(chan struct{})
		go m.runCheck(in.ID, *in.Check, e.stop)
	}
	m.instances[in.ID] = e
	m.bumpLocked()
	return nil
}

// Deregister implements Registry.
func (m *Memory) Deregister(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.instances[id]
	if !ok {
		return fmt.Errorf("deregister %s: %w", id, ErrNotFound)
	}
	if e.stop != nil {
		close(e.stop)
	}
	delete(m.instances, id)
	m.bumpLocked()
	return nil
}

// Registered implements Registry.
func (m *Memory) Registered(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.instances[id]
	return ok, nil
}

// SetStatus sets the health of instance id, as a check result would. Changing it wakes
// blocking queries; setting the current status changes nothing.
func (m *Memory) SetStatus(id string, s Status) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setStatusLocked(id, s, time.Now())
}

func (m *Memory) setStatusLocked(id string, s Status, now time.Time) error {
	e, ok := m.instances[id]
	if !ok {
		return fmt.Errorf("set status of %s: %w", id, ErrNotFound)
	}
	if e.in.Status == s {
		return nil
	}
	switch s {
	case StatusPassing, StatusWarning:
		e.criticalSince = time.Time{}
	case StatusCritical:
		e.criticalSince = now
	default:
		return fmt.Errorf("set status of %s: unknown status %q", id, s)
	}
	e.in.Status = s
	m.bumpLocked()
	return nil
}

// Status returns the health of instance id.
func (m *Memory) Status(id string) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.instances[id]
	if !ok {
		return "", false
	}
	return e.in.Status, true
}

// Index returns the registry's current index.
func (m *Memory) Index() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.index
}

// Reset forgets every instance and key and starts the index again from 1, like a Consul dev
// agent after a restart. Blocked queries return at once with the new, lower index.
func (m *Memory) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.instances {
		if e.stop != nil {
			close(e.stop)
		}
	}
	m.instances = map[string]*memEntry{}
	m.kv = map[string][]byte{}
	m.index = 0
	m.bumpLocked()
}

// Passing implements Registry.
func (m *Memory) Passing(ctx context.Context, service string, q QueryOptions) ([]Instance, uint64, error) {
	wait := q.WaitTime
	if wait <= 0 {
		wait = DefaultWaitTime
	}
	var timer *time.Timer
	for {
		m.mu.Lock()
		if q.WaitIndex == 0 || m.index != q.WaitIndex {
			out := m.passingLocked(service)
			idx := m.index
			m.mu.Unlock()
			return out, idx, nil
		}
		ch := m.changed
		m.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			q.WaitIndex = 0 // answer with the current state
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("query %s: %w", service, ctx.Err())
		}
	}
}

func (m *Memory) passingLocked(service string) []Instance {
	out := []Instance{}
	for _, e := range m.instances {
		if e.in.Service == service && e.in.Status == StatusPassing {
			in := e.in.Clone()
			in.Check = nil
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// KVPut implements Registry. Storing the value already there changes nothing.
func (m *Memory) KVPut(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = append([]byte(nil), value...)
	return nil
}

// KVGet implements Registry.
func (m *Memory) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

// KVDelete implements Registry.
func (m *Memory) KVDelete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kv, key)
	return nil
}

// Keys returns a copy of every key/value pair.
func (m *Memory) Keys() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.kv)
}

// Close stops the check goroutines; later registrations fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, e := range m.instances {
		if e.stop != nil {
			close(e.stop)
			e.stop = nil
		}
	}
	return nil
}

// runCheck probes c.HTTP until stop is closed, setting the instance's status from each answer
// and removing it once critical for c.DeregisterCriticalAfter.
func (m *Memory) runCheck(id string, c Check, stop chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s := probe(m.hc, c)
		now := time.Now()
		m.mu.Lock()
		select {
		case <-stop: // deregistered or replaced while probing
			m.mu.Unlock()
			return
		default:
		}
		_ = m.setStatusLocked(id, s, now)
		if e := m.instances[id]; e != nil && c.DeregisterCriticalAfter > 0 && !e.criticalSince.IsZero() &&
			now.Sub(e.criticalSince) >= c.DeregisterCriticalAfter {
			close(e.stop)
			delete(m.instances, id)
			m.bumpLocked()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		t.Reset(c.Interval)
	}
}

// probe runs one HTTP check with Consul's mapping of statuses.
func probe(hc *http.Client, c Check) Status {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return StatusCritical
	}
	resp, err := hc.Do(req)
	if err != nil {
		return StatusCritical
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return StatusPassing
	case resp.StatusCode == http.StatusTooManyRequests:
		return StatusWarning
	}
	return StatusCritical
}
