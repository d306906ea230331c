package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// TickInterval is the pacing interval of the shared scheduler: one 20 ms
// frame per call per tick.
const TickInterval = 20 * time.Millisecond

// maxLagTicks is how far a worker may fall behind (process stalled, machine
// overloaded) before it skips ticks instead of bursting to catch up.
const maxLagTicks = 5

// worker is one scheduler goroutine serving a share of the sessions. It
// wakes at absolute deadlines start+n*TickInterval taken from the monotonic
// clock, so pacing never drifts however long a call lasts, and runs every
// session's tick in turn.
type worker struct {
	mu       sync.Mutex
	sessions []*Session
	dirty    bool
	snapshot []*Session // owned by the worker goroutine
	dead     []*Session // owned by the worker goroutine
	start    time.Time
	stop     chan struct{}
	done     chan struct{}
	metrics  *Metrics
	ticks    atomic.Int64 // ticks served
	workNs   atomic.Int64 // total time spent serving ticks
	maxNs    atomic.Int64 // longest tick
}

// scheduler is the set of workers shared by every session of an engine.
type scheduler struct {
	workers []*worker
}

func newScheduler(n int, m *Metrics) *scheduler {
	s := &scheduler{}
	start := time.Now()
	for range n {
		w := &worker{start: start, stop: make(chan struct{}), done: make(chan struct{}), metrics: m}
		s.workers = append(s.workers, w)
		go w.run()
	}
	return s
}

// pick returns the least loaded worker.
func (sc *scheduler) pick() *worker {
	var best *worker
	bestN := -1
	for _, w := range sc.workers {
		w.mu.Lock()
		n := len(w.sessions)
		w.mu.Unlock()
		if bestN < 0 || n < bestN {
			best, bestN = w, n
		}
	}
	return best
}

func (w *worker) add(s *Session) {
	w.mu.Lock()
	w.sessions = append(w.sessions, s)
	w.dirty = true
	w.mu.Unlock()
}

func (w *worker) remove(s *Session) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.sessions {
		if x == s {
			last := len(w.sessions) - 1
			w.sessions[i] = w.sessions[last]
			w.sessions[last] = nil
			w.sessions = w.sessions[:last]
			w.dirty = true
			return
		}
	}
}

func (sc *scheduler) close() {
	for _, w := range sc.workers {
		close(w.stop)
	}
	for _, w := range sc.workers {
		<-w.done
	}
}

// deadline returns the time of tick n.
func (w *worker) deadline(n int64) time.Time {
	return w.start.Add(time.Duration(n) * TickInterval)
}

func (w *worker) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for n := int64(1); ; n++ {
		d := time.Until(w.deadline(n))
		if d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.stop:
				return
			}
		} else {
			select {
			case <-w.stop:
				return
			default:
			}
			if lag := int64(-d / TickInterval); lag > maxLagTicks {
				n += lag // skip; sessions keep timestamps tied to tick numbers
			}
		}
		w.mu.Lock()
		if w.dirty {
			clear(w.snapshot)
			w.snapshot = append(w.snapshot[:0], w.sessions...)
			w.dirty = false
		}
		w.mu.Unlock()
		now := time.Now()
		w.metrics.TickLateness.Observe(now.Sub(w.deadline(n)).Seconds())
		for _, s := range w.snapshot {
			if !s.tick(w, now, n) {
				w.dead = append(w.dead, s)
			}
		}
		for i, s := range w.dead {
			w.remove(s)
			w.dead[i] = nil
		}
		w.dead = w.dead[:0]
		work := time.Since(now)
		w.metrics.TickDuration.Observe(work.Seconds())
		w.ticks.Add(1)
		w.workNs.Add(int64(work))
		if int64(work) > w.maxNs.Load() {
			w.maxNs.Store(int64(work))
		}
	}
}
