package lifecycle

import (
	"context"
	"sync"
)

// Inflight counts work in progress (calls, dialogs, requests) so that a drain can wait for it.
// The zero value is ready to use.
type Inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n == 0 and nobody waits
}

// Add records one more unit of work in progress.
func (f *Inflight) Add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

// Done records the end of one unit of work.
func (f *Inflight) Done() {
	f.mu.Lock()
	f.n--
	if f.n < 0 {
		f.n = 0
	}
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// Count returns the work in progress.
func (f *Inflight) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Wait returns nil once no work is in progress, or ctx's error.
func (f *Inflight) Wait(ctx context.Context) error {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	ch := f.idle
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
