package media

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Port range defaults (SPEC: mcp RTP 20000-45000).
const (
	// DefaultPortMin is the lowest RTP port handed out.
	DefaultPortMin = 20000
	// DefaultPortMax is the highest port (RTP or RTCP) handed out.
	DefaultPortMax = 45000
	// DefaultPortHoldOff is how long a released port pair stays unused so
	// that late packets of an ended call never reach a new call.
	DefaultPortHoldOff = 2 * time.Second
)

// ErrNoPorts is returned when every port pair is in use or held off.
var ErrNoPorts = errors.New("no free RTP port pair")

type heldPort struct {
	port  int
	until time.Time
}

// PortAllocator hands out RTP/RTCP port pairs (an even RTP port and the odd
// port above it) from a range. Released pairs are held off for a while
// before reuse, and free pairs are reused in FIFO order, so a port is reused
// as late as possible. It is safe for concurrent use.
type PortAllocator struct {
	mu      sync.Mutex
	min     int
	max     int
	holdOff time.Duration
	now     func() time.Time
	free    []int // FIFO: take from head
	head    int
	held    []heldPort // FIFO ordered by until (hold-off is constant)
	inUse   map[int]struct{}
}

// NewPortAllocator returns an allocator for the ports [min, max]. min is
// rounded up to even; the range must hold at least one pair. holdOff may be
// zero.
func NewPortAllocator(min, max int, holdOff time.Duration) (*PortAllocator, error) {
	if min%2 == 1 {
		min++
	}
	if min < 1024 || max > 65535 || max < min+1 {
		return nil, fmt.Errorf("invalid RTP port range %d-%d", min, max)
	}
	if holdOff < 0 {
		return nil, fmt.Errorf("negative port hold-off %v", holdOff)
	}
	a := &PortAllocator{min: min, max: max, holdOff: holdOff, now: time.Now, inUse: make(map[int]struct{})}
	for p := min; p+1 <= max; p += 2 {
		a.free = append(a.free, p)
	}
	return a, nil
}

// Pairs returns the number of port pairs in the range.
func (a *PortAllocator) Pairs() int { return (a.max - a.min + 1) / 2 }

// release held ports whose hold-off is over; a.mu must be held.
func (a *PortAllocator) expire(now time.Time) {
	i := 0
	for ; i < len(a.held) && !now.Before(a.held[i].until); i++ {
		a.free = append(a.free, a.held[i].port)
	}
	if i > 0 {
		a.held = append(a.held[:0], a.held[i:]...)
	}
}

// Allocate returns a free RTP port (even; RTCP is the port + 1).
func (a *PortAllocator) Allocate() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expire(a.now())
	if a.head == len(a.free) {
		return 0, fmt.Errorf("%w (%d in use, %d held off)", ErrNoPorts, len(a.inUse), len(a.held))
	}
	p := a.free[a.head]
	a.head++
	if a.head > len(a.free)/2 && a.head > 64 { // compact the queue
		a.free = append(a.free[:0], a.free[a.head:]...)
		a.head = 0
	}
	a.inUse[p] = struct{}{}
	return p, nil
}

// Release returns the pair of RTP port p; it becomes available again after
// the hold-off. Releasing a port that is not allocated is a no-op.
func (a *PortAllocator) Release(p int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.inUse[p]; !ok {
		return
	}
	delete(a.inUse, p)
	if a.holdOff == 0 {
		a.free = append(a.free, p)
		return
	}
	a.held = append(a.held, heldPort{port: p, until: a.now().Add(a.holdOff)})
}

// PortStats is a snapshot of the allocator.
type PortStats struct {
	InUse   int // pairs allocated
	HeldOff int // pairs released but not yet reusable
	Free    int // pairs available now
}

// Stats returns the current counts.
func (a *PortAllocator) Stats() PortStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expire(a.now())
	return PortStats{InUse: len(a.inUse), HeldOff: len(a.held), Free: len(a.free) - a.head}
}
