package media

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestPortAllocatorHoldOff(t *testing.T) {
	clk := &fakeClock{t: time.Unix(100, 0)}
	a, err := NewPortAllocator(20001, 20007, 2*time.Second) // pairs 20002, 20004, 20006
	if err != nil {
		t.Fatal(err)
	}
	a.now = clk.Now
	if a.Pairs() != 3 {
		t.Fatalf("pairs = %d", a.Pairs())
	}
	var got []int
	for range 3 {
		p, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if p%2 != 0 {
			t.Fatalf("odd RTP port %d", p)
		}
		got = append(got, p)
	}
	if got[0] != 20002 || got[2] != 20006 {
		t.Fatalf("ports %v", got)
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("exhausted: %v", err)
	}
	a.Release(20004)
	a.Release(20004) // double release is harmless
	a.Release(31000) // never allocated
	if s := a.Stats(); s != (PortStats{InUse: 2, HeldOff: 1, Free: 0}) {
		t.Fatalf("stats %+v", s)
	}
	clk.Advance(1999 * time.Millisecond)
	if _, err := a.Allocate(); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("port reused before hold-off: %v", err)
	}
	clk.Advance(time.Millisecond)
	p, err := a.Allocate()
	if err != nil || p != 20004 {
		t.Fatalf("after hold-off: %d %v", p, err)
	}
}

func TestPortAllocatorFIFOReuse(t *testing.T) {
	a, err := NewPortAllocator(30000, 30009, 0)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := a.Allocate()
	a.Release(p1)
	p2, _ := a.Allocate()
	if p2 == p1 {
		t.Fatalf("released port %d reused first; want least recently used", p1)
	}
}

func TestPortAllocatorConcurrent(t *testing.T) {
	a, err := NewPortAllocator(20000, 20999, 0)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[int]bool{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				p, err := a.Allocate()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[p] {
					t.Errorf("port %d handed out twice", p)
				}
				seen[p] = true
				mu.Unlock()
				mu.Lock()
				delete(seen, p)
				mu.Unlock()
				a.Release(p)
			}
		}()
	}
	wg.Wait()
	if s := a.Stats(); s.InUse != 0 || s.Free != 500 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPortAllocatorInvalid(t *testing.T) {
	for _, r := range [][2]int{{100, 200}, {20000, 20000}, {20000, 70000}} {
		if _, err := NewPortAllocator(r[0], r[1], 0); err == nil {
			t.Errorf("range %v accepted", r)
		}
	}
	if _, err := NewPortAllocator(20000, 20010, -1); err == nil {
		t.Error("negative hold-off accepted")
	}
}
