package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/bus"
)

// TestSpoolAppendBatch: a batch lands in order with consecutive sequence numbers, rolls
// segments inside the batch, survives a reopen, and stops at the record that does not fit.
func TestSpoolAppendBatch(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, dir, func(c *SpoolConfig) { c.SegmentBytes = maxEntrySize; c.MaxBytes = 3 * maxEntrySize })
	big := make([]byte, 400<<10) // two fit in a segment, three do not
	var recs []SpoolRecord
	for i := range 5 {
		body := bytes.Clone(big)
		copy(body, fmt.Sprintf("%08d", i))
		recs = append(recs, SpoolRecord{Dest: CDRDestination, ID: fmt.Sprintf("id-%d", i), Body: body})
	}
	n, last, err := s.AppendBatch(recs)
	if err != nil || n != 5 || last != 5 {
		t.Fatalf("AppendBatch = %d, %d, %v; want 5, 5, nil", n, last, err)
	}
	if segs := segments(t, dir); len(segs) != 3 {
		t.Fatalf("segments after 5 entries of 400 KiB with 1 MiB segments: %v", segs)
	}
	// Three more: the spool holds about 3 MiB, so the third of these no longer fits.
	n, last, err = s.AppendBatch(recs[:3])
	if !errors.Is(err, ErrSpoolFull) || n != 2 || last != 7 {
		t.Fatalf("AppendBatch over the limit = %d, %d, %v; want 2, 7, ErrSpoolFull", n, last, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, dir, nil)
	defer s.Close()
	got := readAll(t, s.NewReader())
	if len(got) != 7 {
		t.Fatalf("after reopen: %d entries, want 7", len(got))
	}
	for i, e := range got {
		want := fmt.Sprintf("%08d", i%5)
		if e.Seq != uint64(i+1) || string(e.Body[:8]) != want || len(e.Body) != len(big) {
			t.Fatalf("entry %d: seq %d body %q..., want seq %d body %q", i, e.Seq, e.Body[:8], i+1, want)
		}
	}
}

// TestSpoolAppendBatchStopsAtBadRecord: the records before one the format cannot hold are
// written, that one and the rest are not, and n says where it stopped.
func TestSpoolAppendBatchStopsAtBadRecord(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), nil)
	defer s.Close()
	recs := []SpoolRecord{
		{Dest: CDRDestination, ID: "ok-1", Body: []byte("{}")},
		{Dest: CDRDestination, ID: string(bytes.Repeat([]byte{'x'}, 256)), Body: []byte("{}")},
		{Dest: CDRDestination, ID: "ok-2", Body: []byte("{}")},
	}
	n, last, err := s.AppendBatch(recs)
	if err == nil || n != 1 || last != 1 {
		t.Fatalf("AppendBatch = %d, %d, %v; want 1, 1 and an error", n, last, err)
	}
	if got := readAll(t, s.NewReader()); len(got) != 1 || got[0].ID != "ok-1" {
		t.Fatalf("spooled %+v, want only ok-1", got)
	}
}

// heldTransport holds every send until released, then acknowledges, so that what was spooled
// stays in the spool for the test to read (a transport that acknowledged at once would let
// the forwarder remove records before the test looks).
type heldTransport struct{ release chan struct{} }

func (h heldTransport) Send(ctx context.Context, _ ...bus.Message) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.release:
		return nil
	}
}

// TestPublishBatch: valid records of a batch are spooled in order even when one is invalid,
// and the error names the invalid one.
func TestPublishBatch(t *testing.T) {
	cfg := DefaultSpooledConfig(t.TempDir())
	held := heldTransport{release: make(chan struct{})}
	p, err := NewSpooledPublisher(cfg, held)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer close(held.release)
	now := time.Now().UTC()
	good := func(id string) *CDR {
		return &CDR{ID: id, SessionID: "s-" + id, Component: ComponentRM, State: StateInProgress, Start: now}
	}
	bad := &CDR{ID: "bad", Component: ComponentRM, State: StateInProgress, Start: now} // no session id
	err = p.PublishBatch([]Record{good("a"), bad, good("b"), NewEvent("s-a", now, "prompt", "")})
	if !errors.Is(err, ErrMissingSession) {
		t.Fatalf("PublishBatch error = %v, want ErrMissingSession", err)
	}
	es := readAll(t, p.spool.NewReader())
	if len(es) != 3 || es[0].ID != "a" || es[1].ID != "b" || es[2].Destination != EventDestination {
		t.Fatalf("spooled %+v", es)
	}
	rec, err := Decode(es[1].Destination, es[1].ID, es[1].Body)
	if err != nil || rec.(*CDR).SessionID != "s-b" {
		t.Fatalf("decode spooled record: %v %+v", err, rec)
	}
	if err := p.PublishBatch([]Record{good("c"), good("d")}); err != nil {
		t.Fatal(err)
	}
}
