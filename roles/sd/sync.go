package sd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/internal/discovery"
)

// LabelVersion is the member label holding the mcp's gvp version (from the instance's meta).
const LabelVersion = "version"

// MemberFor returns the pool member sd writes for a registry instance: its name is the
// instance id made a valid object name, its address host:port, and its transport and capacity
// come from the meta (udp and confmodel.DefaultMCPCapacity when missing or invalid).
func MemberFor(pool string, in discovery.Instance) *confmodel.MCP {
	m := &confmodel.MCP{
		Name:      discovery.SanitizeName(in.ID),
		Pool:      pool,
		Address:   net.JoinHostPort(in.Address, strconv.Itoa(in.Port)),
		Transport: confmodel.DefaultTransport,
		Capacity:  confmodel.DefaultMCPCapacity,
		Managed:   true,
	}
	switch confmodel.Transport(in.Meta[discovery.MetaTransport]) {
	case confmodel.TransportTCP:
		m.Transport = confmodel.TransportTCP
	}
	if c, err := strconv.Atoi(in.Meta[discovery.MetaCapacity]); err == nil && c > 0 {
		m.Capacity = c
	}
	if v := in.Meta[discovery.MetaVersion]; v != "" {
		m.Labels = map[string]string{LabelVersion: v}
	}
	return m
}

// sameMember reports whether two members have the same settings (revision aside).
func sameMember(a, b *confmodel.MCP) bool {
	x, y := *a, *b
	x.Normalize()
	y.Normalize()
	return x.Name == y.Name && x.Pool == y.Pool && x.Address == y.Address && x.Transport == y.Transport &&
		x.Capacity == y.Capacity && x.Managed == y.Managed && maps.Equal(x.Labels, y.Labels)
}

// planInput is everything a sync decision depends on.
type planInput struct {
	Pool string
	// Instances are the passing registry instances.
	Instances []discovery.Instance
	// Current is every MCP in configsrv (all pools).
	Current []*confmodel.MCP
	// Exclude are member names never touched.
	Exclude map[string]bool
	// Missing holds, for managed members already found absent, when they were first absent.
	Missing map[string]time.Time
	Now     time.Time
	// PurgeDelay is how long a member stays absent before removal.
	PurgeDelay time.Duration
	// HoldUntil withholds every removal until then (registry recovery).
	HoldUntil time.Time
}

// planOutput is what a sync pass must do.
type planOutput struct {
	// Put are members to create or update.
	Put []*confmodel.MCP
	// Added counts the members of Put that do not exist yet.
	Added int
	// Delete are member names to remove.
	Delete []string
	// Missing are managed members of the pool absent from the registry and not removed yet,
	// with when they were first absent.
	Missing map[string]time.Time
	// NextRemoval is when the earliest pending removal falls due; zero when none is pending.
	NextRemoval time.Time
	// Conflicts are instances whose name is taken by a hand-written member.
	Conflicts []string
	// Managed counts the managed members of the pool once the plan is applied.
	Managed int
}

// plan computes the changes that bring the pool to the registry's passing instances: members
// of instances are added or updated (never a hand-written one, never an excluded one); managed
// members of the pool absent from the registry are removed once absent for PurgeDelay and not
// before HoldUntil. Members of other pools and hand-written members are left alone.
func plan(in planInput) planOutput {
	out := planOutput{Missing: map[string]time.Time{}}
	current := make(map[string]*confmodel.MCP, len(in.Current))
	for _, m := range in.Current {
		current[m.Name] = m
	}
	want := map[string]bool{}
	for _, inst := range in.Instances {
		m := MemberFor(in.Pool, inst)
		if want[m.Name] || in.Exclude[m.Name] {
			continue
		}
		cur, exists := current[m.Name]
		if exists && !cur.Managed {
			out.Conflicts = append(out.Conflicts, m.Name)
			continue
		}
		want[m.Name] = true
		out.Managed++
		switch {
		case !exists:
			out.Put = append(out.Put, m)
			out.Added++
		case !sameMember(cur, m):
			out.Put = append(out.Put, m)
		}
	}
	for _, cur := range in.Current {
		if cur.Pool != in.Pool || !cur.Managed || in.Exclude[cur.Name] || want[cur.Name] {
			continue
		}
		since, ok := in.Missing[cur.Name]
		if !ok {
			since = in.Now
		}
		due := since.Add(in.PurgeDelay)
		if due.Before(in.HoldUntil) {
			due = in.HoldUntil
		}
		if !in.Now.Before(due) {
			out.Delete = append(out.Delete, cur.Name)
			continue
		}
		out.Managed++
		out.Missing[cur.Name] = since
		if out.NextRemoval.IsZero() || due.Before(out.NextRemoval) {
			out.NextRemoval = due
		}
	}
	sort.Strings(out.Delete)
	return out
}

// syncer keeps the pool in step with the registry.
type syncer struct {
	cfg     Config
	reg     discovery.Registry
	cc      *confclient.Client
	m       *metrics
	log     zerolog.Logger
	exclude map[string]bool
	now     func() time.Time

	kick chan struct{} // a new registry answer is there
	full chan struct{} // a full resync is asked for

	mu        sync.Mutex
	instances []discovery.Instance
	have      bool // instances holds a successful answer
	regErr    error
	csErr     error
	synced    bool
	holdUntil time.Time
	missing   map[string]time.Time
	conflicts map[string]bool
}

func newSyncer(cfg Config, reg discovery.Registry, cc *confclient.Client, m *metrics, log zerolog.Logger) *syncer {
	ex := map[string]bool{}
	for _, e := range cfg.Exclude {
		ex[e] = true
	}
	s := &syncer{
		cfg: cfg, reg: reg, cc: cc, m: m, log: log, exclude: ex, now: time.Now,
		kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		missing: map[string]time.Time{}, conflicts: map[string]bool{},
	}
	s.holdUntil = s.now().Add(cfg.RecoveryGrace)
	return s
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *syncer) requestFull() { signal(s.full) }

// readyErr says why the pool may be stale.
func (s *syncer) readyErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.regErr != nil {
		errs = append(errs, fmt.Errorf("registry: %w", s.regErr))
	}
	if s.csErr != nil {
		errs = append(errs, fmt.Errorf("configsrv: %w", s.csErr))
	}
	if len(errs) == 0 && !s.synced {
		errs = append(errs, errors.New("no successful sync yet"))
	}
	return errors.Join(errs...)
}

// backoff doubles d within [minBackoff, maxBackoff].
func backoff(d time.Duration) time.Duration {
	d *= 2
	if d < minBackoff {
		return minBackoff
	}
	return min(d, maxBackoff)
}

// record stores a registry answer (or error). An error resets the watch and withholds removals
// for the recovery grace after the next success; so does an index that went backwards.
func (s *syncer) record(ins []discovery.Instance, err error, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.regErr = err
		return
	}
	if s.regErr != nil || reset {
		s.holdUntil = s.now().Add(s.cfg.RecoveryGrace)
	}
	s.regErr = nil
	s.instances = ins
	s.have = true
	s.m.instances.Set(float64(len(ins)))
}

// watch runs blocking queries and signals each changed answer to run.
func (s *syncer) watch(ctx context.Context) {
	var idx uint64
	var delay time.Duration
	for ctx.Err() == nil {
		ins, next, err := s.reg.Passing(ctx, s.cfg.Service, discovery.QueryOptions{WaitIndex: idx, WaitTime: s.cfg.Wait})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.m.errors.WithLabelValues(sourceRegistry).Inc()
			s.log.Warn().Err(err).Msg("registry query failed; keeping the pool as it is")
			s.record(nil, err, false)
			idx = 0
			delay = backoff(delay)
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		reset := next < idx
		if reset {
			s.log.Warn().Uint64("index", next).Uint64("previous", idx).Msg("registry index went backwards (agent restart?)")
		}
		if next == 0 {
			next = 1
		}
		changed := next != idx
		idx = next
		s.record(ins, nil, reset)
		if changed {
			signal(s.kick)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run applies registry answers to the pool: on every change, at every full resync (first after
// FirstResync, then every Resync), when a pending removal falls due, and on retries after
// configsrv errors.
func (s *syncer) run(ctx context.Context) {
	nextFull := s.now().Add(s.cfg.FirstResync)
	var retryAt, removalAt time.Time
	var delay time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wake := nextFull
		for _, t := range []time.Time{retryAt, removalAt} {
			if !t.IsZero() && t.Before(wake) {
				wake = t
			}
		}
		timer.Reset(max(time.Until(wake), 0))
		full := false
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-s.full:
			full = true
		case <-timer.C:
			if !s.now().Before(nextFull) {
				full = true
			}
		}
		if full {
			nextFull = s.now().Add(s.cfg.Resync)
			s.refresh(ctx)
		}
		next, err := s.once(ctx)
		if ctx.Err() != nil {
			return
		}
		removalAt = next
		if err != nil {
			delay = backoff(delay)
			retryAt = s.now().Add(delay)
			continue
		}
		delay, retryAt = 0, time.Time{}
	}
}

// refresh runs a non-blocking registry query (full resync).
func (s *syncer) refresh(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ins, _, err := s.reg.Passing(qctx, s.cfg.Service, discovery.QueryOptions{})
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.m.errors.WithLabelValues(sourceRegistry).Inc()
		s.log.Warn().Err(err).Msg("registry query failed; keeping the pool as it is")
	}
	s.record(ins, err, false)
}

// once runs one sync pass. It returns when a pending removal falls due (zero if none), and an
// error when configsrv failed (the caller retries with backoff). Without a successful registry
// answer it changes nothing.
func (s *syncer) once(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	if !s.have || s.regErr != nil {
		s.mu.Unlock()
		s.m.syncRuns.WithLabelValues("skipped").Inc()
		return time.Time{}, nil
	}
	in := planInput{
		Pool: s.cfg.Pool, Instances: s.instances, Exclude: s.exclude, Missing: s.missing,
		Now: s.now(), PurgeDelay: s.cfg.PurgeDelay, HoldUntil: s.holdUntil,
	}
	s.mu.Unlock()

	out, err := s.apply(ctx, in)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.csErr = err
			s.m.syncRuns.WithLabelValues("error").Inc()
			s.m.errors.WithLabelValues(sourceConfigsrv).Inc()
			s.log.Warn().Err(err).Msg("pool sync failed; will retry")
		}
		return time.Time{}, err
	}
	s.csErr = nil
	s.synced = true
	s.missing = out.Missing
	s.m.syncRuns.WithLabelValues("ok").Inc()
	s.m.lastSuccess.SetToCurrentTime()
	s.m.members.Set(float64(out.Managed))
	conflicts := map[string]bool{}
	for _, c := range out.Conflicts {
		conflicts[c] = true
		if !s.conflicts[c] {
			s.log.Warn().Str("member", c).Msg("a hand-written member has the name of a registered instance; leaving it alone")
		}
	}
	s.conflicts = conflicts
	return out.NextRemoval, nil
}

// apply reads the members from configsrv, plans and writes the changes.
func (s *syncer) apply(ctx context.Context, in planInput) (planOutput, error) {
	objs, _, err := s.cc.List(ctx, confmodel.KindMCP, confclient.ListFilter{})
	if err != nil {
		return planOutput{}, fmt.Errorf("list members: %w", err)
	}
	in.Current = make([]*confmodel.MCP, 0, len(objs))
	for _, o := range objs {
		if m, ok := o.(*confmodel.MCP); ok {
			in.Current = append(in.Current, m)
		}
	}
	out := plan(in)
	if len(out.Put) > 0 {
		if err := s.put(ctx, out.Put); err != nil {
			return planOutput{}, err
		}
		s.m.added.Add(float64(out.Added))
		s.m.updated.Add(float64(len(out.Put) - out.Added))
		for _, m := range out.Put {
			s.log.Info().Str("member", m.Name).Str("address", m.Address).Str("pool", m.Pool).Msg("member added or updated")
		}
	}
	for _, name := range out.Delete {
		_, err := s.cc.Delete(ctx, confmodel.KindMCP, name, false)
		if err != nil && !errors.Is(err, confstore.ErrNotFound) {
			return planOutput{}, fmt.Errorf("remove member %s: %w", name, err)
		}
		s.m.removed.Inc()
		s.log.Info().Str("member", name).Str("pool", in.Pool).Msg("member removed (gone or critical)")
	}
	return out, nil
}

// put writes members in one atomic apply, creating the pool first when it is missing. When
// configsrv rejects the batch, members are written one by one so that one bad instance does not
// hold back the others; the rejected ones are logged and skipped.
func (s *syncer) put(ctx context.Context, members []*confmodel.MCP) error {
	if _, err := confclient.GetAs[*confmodel.Pool](ctx, s.cc, s.cfg.Pool); errors.Is(err, confstore.ErrNotFound) {
		s.log.Info().Str("pool", s.cfg.Pool).Msg("creating missing pool with default settings")
		if _, err := s.cc.ApplyObjects(ctx, []confmodel.Object{&confmodel.Pool{Name: s.cfg.Pool}}, false); err != nil {
			return fmt.Errorf("create pool %s: %w", s.cfg.Pool, err)
		}
	} else if err != nil {
		return fmt.Errorf("get pool %s: %w", s.cfg.Pool, err)
	}
	objs := make([]confmodel.Object, 0, len(members))
	for _, m := range members {
		objs = append(objs, m)
	}
	_, err := s.cc.ApplyObjects(ctx, objs, false)
	if err == nil {
		return nil
	}
	if !errors.Is(err, confmodel.ErrInvalid) || len(members) == 1 {
		if errors.Is(err, confmodel.ErrInvalid) {
			s.m.errors.WithLabelValues(sourceConfigsrv).Inc()
			s.log.Error().Err(err).Str("member", members[0].Name).Msg("configsrv rejected a registered instance; skipped")
			return nil
		}
		return fmt.Errorf("apply members: %w", err)
	}
	for _, m := range members {
		if _, err := s.cc.ApplyObjects(ctx, []confmodel.Object{m}, false); err != nil {
			if errors.Is(err, confmodel.ErrInvalid) {
				s.m.errors.WithLabelValues(sourceConfigsrv).Inc()
				s.log.Error().Err(err).Str("member", m.Name).Msg("configsrv rejected a registered instance; skipped")
				continue
			}
			return fmt.Errorf("apply member %s: %w", m.Name, err)
		}
	}
	return nil
}
