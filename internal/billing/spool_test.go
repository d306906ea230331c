package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTestSpool(t testing.TB, dir string, mod func(*SpoolConfig)) *Spool {
	t.Helper()
	cfg := SpoolConfig{Dir: dir}
	if mod != nil {
		mod(&cfg)
	}
	s, err := OpenSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func appendN(t testing.TB, s *Spool, from, n int, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		body := bytes.Repeat([]byte{'x'}, size)
		copy(body, fmt.Sprintf("%08d", i))
		if _, err := s.Append(CDRDestination, fmt.Sprintf("id-%d", i), body); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every available entry.
func readAll(t testing.TB, r *Reader) []Entry {
	t.Helper()
	var out []Entry
	for {
		got, err := r.read(1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
	}
}

func ackAll(t testing.TB, s *Spool, es []Entry) {
	t.Helper()
	var bytes int64
	for _, e := range es {
		bytes += e.size
	}
	if err := s.ack(es[len(es)-1].Seq, int64(len(es)), bytes); err != nil {
		t.Fatal(err)
	}
}

func checkIDs(t testing.TB, es []Entry, from, n int) {
	t.Helper()
	if len(es) != n {
		t.Fatalf("got %d entries, want %d", len(es), n)
	}
	for i, e := range es {
		if want := fmt.Sprintf("id-%d", from+i); e.ID != want || e.Destination != CDRDestination {
			t.Fatalf("entry %d: id %q dest %q, want %q", i, e.ID, e.Destination, want)
		}
		if !bytes.HasPrefix(e.Body, []byte(fmt.Sprintf("%08d", from+i))) {
			t.Fatalf("entry %d: body %q", i, e.Body[:8])
		}
	}
}

func segments(t testing.TB, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	return m
}

func TestSpoolOrderAckAndRestart(t *testing.T) {
	dir := t.TempDir()
	small := func(c *SpoolConfig) { c.SegmentBytes = maxEntrySize; c.MaxBytes = 64 * maxEntrySize }
	s := openTestSpool(t, dir, small)
	// 3000 entries of ~1 KiB span several segments.
	appendN(t, s, 0, 3000, 1000)
	if n := len(segments(t, dir)); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	r := s.NewReader()
	all := readAll(t, r)
	checkIDs(t, all, 0, 3000)
	if st := s.Stats(); st.Records != 3000 || st.Bytes <= 3000*1000 {
		t.Fatalf("stats %+v", st)
	}
	ackAll(t, s, all[:1800])
	_ = r.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart only the unacknowledged entries come back.
	s = openTestSpool(t, dir, small)
	if st := s.Stats(); st.Records != 1200 {
		t.Fatalf("after restart: %+v", st)
	}
	r = s.NewReader()
	rest := readAll(t, r)
	checkIDs(t, rest, 1800, 1200)
	appendN(t, s, 3000, 10, 100)
	more := readAll(t, r)
	checkIDs(t, more, 3000, 10)
	ackAll(t, s, append(rest, more...))
	if st := s.Stats(); st.Records != 0 || st.Bytes != 0 || st.OldestAge != 0 {
		t.Fatalf("stats after full ack %+v", st)
	}
	if n := len(segments(t, dir)); n != 1 {
		t.Fatalf("%d segments left after full ack, want 1 (active)", n)
	}
	_ = r.Close()
	_ = s.Close()
	s = openTestSpool(t, dir, small)
	defer s.Close()
	if got := readAll(t, s.NewReader()); len(got) != 0 {
		t.Fatalf("%d entries resent after full ack", len(got))
	}
}

func TestSpoolTornAndCorruptEntries(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(t *testing.T, path string, sizes []int64)
		wantKept int
	}{
		{"torn tail", func(t *testing.T, path string, _ []int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			// A header announcing 500 bytes, then only 10 of them.
			_, _ = f.Write([]byte{0xf4, 0x01, 0, 0, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'})
			_ = f.Close()
		}, 10},
		{"half a header", func(t *testing.T, path string, _ []int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			_, _ = f.Write([]byte{0x10, 0})
			_ = f.Close()
		}, 10},
		{"bit flip in entry 7", func(t *testing.T, path string, sizes []int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			var off int64
			for _, sz := range sizes[:6] {
				off += sz
			}
			_, _ = f.WriteAt([]byte{'#'}, off+40)
			_ = f.Close()
		}, 6},
		{"absurd length", func(t *testing.T, path string, sizes []int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			var off int64
			for _, sz := range sizes[:3] {
				off += sz
			}
			_, _ = f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, off)
			_ = f.Close()
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestSpool(t, dir, nil)
			appendN(t, s, 0, 10, 200)
			es := readAll(t, s.NewReader())
			sizes := make([]int64, len(es))
			for i, e := range es {
				sizes[i] = e.size
			}
			_ = s.Close()
			tc.damage(t, segments(t, dir)[0], sizes)
			s = openTestSpool(t, dir, nil)
			defer s.Close()
			if st := s.Stats(); st.Torn != 1 || st.Records != int64(tc.wantKept) {
				t.Fatalf("stats %+v, want torn 1, records %d", st, tc.wantKept)
			}
			r := s.NewReader()
			checkIDs(t, readAll(t, r), 0, tc.wantKept)
			// Appends after the truncation read back cleanly.
			appendN(t, s, 100, 3, 50)
			checkIDs(t, readAll(t, r), 100, 3)
		})
	}
}

func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, dir, func(c *SpoolConfig) { c.SegmentBytes = maxEntrySize; c.MaxBytes = 2 * maxEntrySize })
	defer s.Close()
	r := s.NewReader()
	n := 0
	var err error
	for ; n < 1000; n++ {
		if _, err = s.Append(CDRDestination, fmt.Sprint(n), make([]byte, 64<<10)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("after %d appends: %v, want ErrSpoolFull", n, err)
	}
	if st := s.Stats(); st.DiskBytes > 2*maxEntrySize || st.Records != int64(n) {
		t.Fatalf("stats %+v after %d appends", st, n)
	}
	// Delivering everything frees the space.
	ackAll(t, s, readAll(t, r))
	if _, err := s.Append(CDRDestination, "again", make([]byte, 64<<10)); err != nil {
		t.Fatalf("append after ack: %v", err)
	}
	got := readAll(t, r)
	if len(got) != 1 || got[0].ID != "again" {
		t.Fatalf("read after reclaim: %+v", got)
	}
}

func TestSpoolWaitSyncedAndNext(t *testing.T) {
	s := openTestSpool(t, t.TempDir(), func(c *SpoolConfig) { c.SyncInterval = time.Hour; c.SyncRecords = 4 })
	defer s.Close()
	r := s.NewReader()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan []Entry)
	go func() {
		es, _ := r.Next(ctx, 10)
		got <- es
	}()
	var last uint64
	for i := range 4 { // the fourth append triggers the group fsync
		seq, err := s.Append(EventDestination, fmt.Sprint(i), []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	if err := s.WaitSynced(last); err != nil {
		t.Fatal(err)
	}
	if es := <-got; len(es) == 0 || es[0].ID != "0" {
		t.Fatalf("Next returned %+v", es)
	}
	cancel()
	if _, err := r.Next(ctx, 10); err == nil {
		// entries 1..3 may still be there: drain then expect the ctx error
		if _, err = r.Next(ctx, 10); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v", err)
		}
	}
}

func TestSpoolConfigValidate(t *testing.T) {
	for _, c := range []SpoolConfig{{}, {Dir: "x", SegmentBytes: 10}, {Dir: "x", MaxBytes: 1 << 20, SegmentBytes: 8 << 20}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (SpoolConfig{Dir: "x"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(nil, 1, t0, CDRDestination, "id", []byte(`{"a":1}`)))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again := encodeEntry(nil, e.Seq, e.Time, e.Destination, e.ID, e.Body)
		if !bytes.Equal(again, b[:e.size]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// BenchmarkSpoolAppend measures the cost of Publish's disk write per record
// (fsync happens in the background group commit).
func BenchmarkSpoolAppend(b *testing.B) {
	s := openTestSpool(b, b.TempDir(), nil)
	defer s.Close()
	c := sampleCDR()
	c.Complete(t0.Add(time.Minute), EndCallerHangup, "", 0)
	body, _ := Encode(c)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := s.Append(CDRDestination, c.ID, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpoolAppendDurable waits for the group fsync of each record,
// from 8 goroutines, as calls do with WaitDurable.
func BenchmarkSpoolAppendDurable(b *testing.B) {
	s := openTestSpool(b, b.TempDir(), nil)
	defer s.Close()
	body, _ := Encode(sampleCDR())
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq, err := s.Append(CDRDestination, "x", body)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.WaitSynced(seq); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
