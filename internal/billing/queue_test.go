package billing

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// batchRecorder records how records arrive: singly or in batches.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]string
	single  int
}

func (b *batchRecorder) Publish(rec Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.single++
	b.batches = append(b.batches, []string{rec.(*Event).Kind})
	return nil
}

func (b *batchRecorder) PublishBatch(recs []Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.(*Event).Kind)
	}
	b.batches = append(b.batches, ids)
	return nil
}

// TestQueueOrderBatchesAndClose: records published through a queue reach a batch publisher in
// order, in fewer calls than records, none lost at Close; after Close they go straight through.
func TestQueueOrderBatchesAndClose(t *testing.T) {
	pub := &batchRecorder{}
	q := NewQueue(pub, zerolog.Nop())
	now := time.Now()
	const n = 2000
	for i := range n {
		q.Publish(NewEvent("s", now, fmt.Sprint(i), ""))
	}
	q.Close()
	q.Publish(NewEvent("s", now, "late", ""))
	pub.mu.Lock()
	defer pub.mu.Unlock()
	var got []string
	for _, b := range pub.batches {
		got = append(got, b...)
		if len(b) > queueMaxBatch {
			t.Fatalf("batch of %d records, limit %d", len(b), queueMaxBatch)
		}
	}
	if len(got) != n+1 {
		t.Fatalf("%d records published, want %d", len(got), n+1)
	}
	for i := range n {
		if got[i] != fmt.Sprint(i) {
			t.Fatalf("record %d is %q: out of order", i, got[i])
		}
	}
	if got[n] != "late" {
		t.Fatalf("last record %q, want the one published after Close", got[n])
	}
	if pub.single != 1 {
		t.Errorf("%d records published singly, want only the one after Close", pub.single)
	}
	if len(pub.batches) >= n/4 {
		t.Errorf("%d batches for %d records queued at once: not batching", len(pub.batches), n)
	}
}
