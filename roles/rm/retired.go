package rm

import (
	"hash/maphash"
	"time"
)

// retiredTable remembers server transactions that have sent their final response and now only
// absorb retransmissions of their request: an INVITE answered with a 2xx (RFC 6026 Accepted,
// Timer L) and a non-INVITE request over UDP (Completed, Timer J), each for 64*T1. At a few
// thousand calls per second that is hundreds of thousands of transactions at any time, so they
// are not kept as serverTx objects with timers: an entry is a 64-bit hash of the transaction
// key, its expiry and the response to repeat (non-INVITE only). The table holds no pointer but
// the responses' bytes, which leaves the collector almost nothing to scan, and expiry walks a
// queue in insertion order instead of running one timer per transaction.
//
// A hash stands for the key: two live transactions would have to collide on 64 bits of a
// seeded hash for a request to be taken for another's retransmission.
type retiredTable struct {
	seed   maphash.Seed
	ttl    time.Duration
	shards [16]retiredShard
}

type retiredShard struct {
	lockedMap[uint64, retiredEntry]
	queue []retiredRef // in insertion order, so in expiry order: every entry lives ttl
	head  int
	peak  int // the most entries m held since it was made
}

// retiredShrinkAbove is the peak from which a shard's map is remade once it has shrunk to a
// quarter of it: a Go map keeps the room of its largest size, and after a burst of calls that
// would stay allocated for good.
const retiredShrinkAbove = 4096

type retiredEntry struct {
	expires int64  // unix nanoseconds
	last    []byte // the final response to repeat; nil for an INVITE (2xx retransmission is the UAS's job)
}

type retiredRef struct {
	key     uint64
	expires int64
}

func newRetiredTable(ttl time.Duration) *retiredTable {
	t := &retiredTable{seed: maphash.MakeSeed(), ttl: ttl}
	for i := range t.shards {
		t.shards[i].m = map[uint64]retiredEntry{}
	}
	return t
}

// hash is the table's key for k.
func (t *retiredTable) hash(k txKey) uint64 { return maphash.Comparable(t.seed, k) }

// put records the transaction k as retired, with the response to repeat (kept, not copied; nil
// for none).
func (t *retiredTable) put(k txKey, last []byte, now time.Time) {
	key := t.hash(k)
	exp := now.Add(t.ttl).UnixNano()
	s := &t.shards[key&15]
	s.mu.Lock()
	s.m[key] = retiredEntry{expires: exp, last: last}
	s.peak = max(s.peak, len(s.m))
	s.queue = append(s.queue, retiredRef{key: key, expires: exp})
	s.mu.Unlock()
}

// get reports whether k is a retired transaction, with the response to repeat.
func (t *retiredTable) get(k txKey) ([]byte, bool) { return t.lookup(t.hash(k)) }

// lookup is get for a key already hashed.
func (t *retiredTable) lookup(key uint64) ([]byte, bool) {
	s := &t.shards[key&15]
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	return e.last, ok
}

// expire forgets the transactions whose time is up.
func (t *retiredTable) expire(now time.Time) {
	n := now.UnixNano()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for s.head < len(s.queue) && s.queue[s.head].expires <= n {
			r := s.queue[s.head]
			if e, ok := s.m[r.key]; ok && e.expires == r.expires {
				delete(s.m, r.key)
			}
			s.head++
		}
		// Reclaim the consumed part of the queue once it is the larger part, and the room of
		// a large one once it is empty.
		switch {
		case s.head == len(s.queue) && cap(s.queue) > retiredShrinkAbove:
			s.queue, s.head = nil, 0
		case s.head == len(s.queue):
			s.queue, s.head = s.queue[:0], 0
		case s.head > 1024 && s.head*2 > len(s.queue):
			s.queue = append(s.queue[:0:0], s.queue[s.head:]...)
			s.head = 0
		}
		if s.peak > retiredShrinkAbove && len(s.m) <= s.peak/4 {
			m := make(map[uint64]retiredEntry, len(s.m))
			for k, e := range s.m {
				m[k] = e
			}
			s.m, s.peak = m, len(m)
		}
		s.mu.Unlock()
	}
}

// len returns the number of retired transactions remembered.
func (t *retiredTable) len() int {
	n := 0
	for i := range t.shards {
		n += t.shards[i].size()
	}
	return n
}
