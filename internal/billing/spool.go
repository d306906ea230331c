package billing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Spool defaults.
const (
	// DefaultSpoolMaxBytes bounds the spool's files on disk (1 GiB).
	DefaultSpoolMaxBytes = 1 << 30
	// DefaultSegmentBytes is the size at which a segment file is closed and
	// a new one started (16 MiB).
	DefaultSegmentBytes = 16 << 20
	// DefaultSyncInterval is the longest a written record waits for fsync.
	DefaultSyncInterval = 5 * time.Millisecond
	// DefaultSyncRecords triggers an fsync as soon as this many records are
	// written but not yet synced.
	DefaultSyncRecords = 256
)

// Spool file layout.
const (
	segmentSuffix  = ".seg"
	checkpointName = "checkpoint"
	// entryHeaderSize is u32 payload length + u32 CRC-32C of the payload.
	entryHeaderSize = 8
	// payloadFixedSize is u64 seq + i64 unix nanos + u8 dest len + u8 id len.
	payloadFixedSize = 18
	// maxEntrySize bounds one entry: a record plus its header fields.
	maxEntrySize = MaxRecordSize + entryHeaderSize + payloadFixedSize + 2*255
	// readChunk is how much a reader fetches from a segment at a time.
	readChunk = 256 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Spool errors.
var (
	// ErrSpoolFull is returned by Append when the spool holds MaxBytes.
	ErrSpoolFull = errors.New("billing spool full")
	// ErrSpoolClosed is returned after Close.
	ErrSpoolClosed = errors.New("billing spool closed")
)

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	// Dir holds the segment files and the checkpoint; created when missing.
	Dir string
	// MaxBytes bounds the total size of the segment files; when reached,
	// Append fails with ErrSpoolFull. DefaultSpoolMaxBytes when 0.
	MaxBytes int64
	// SegmentBytes is the segment rotation size; DefaultSegmentBytes when 0.
	SegmentBytes int64
	// SyncInterval is the group-commit period; DefaultSyncInterval when 0.
	SyncInterval time.Duration
	// SyncRecords forces an fsync once this many records are unsynced;
	// DefaultSyncRecords when 0.
	SyncRecords int
	// Logger receives recovery warnings; zerolog.Nop() by default.
	Logger zerolog.Logger
}

func (c SpoolConfig) withDefaults() SpoolConfig {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultSpoolMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.SyncRecords == 0 {
		c.SyncRecords = DefaultSyncRecords
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c SpoolConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return errors.New("billing spool: dir is required")
	case c.SegmentBytes < maxEntrySize:
		return fmt.Errorf("billing spool: segment size %d below the largest entry (%d)", c.SegmentBytes, maxEntrySize)
	case c.MaxBytes < c.SegmentBytes:
		return fmt.Errorf("billing spool: max size %d below the segment size %d", c.MaxBytes, c.SegmentBytes)
	case c.SyncInterval < 0 || c.SyncRecords < 0:
		return errors.New("billing spool: sync interval and sync records must not be negative")
	}
	return nil
}

// Entry is one spooled record.
type Entry struct {
	Seq         uint64
	Time        time.Time // when it was appended
	Destination string
	ID          string
	Body        []byte
	size        int64 // bytes on disk, header included
}

type segment struct {
	first uint64 // sequence number of its first entry (from the file name)
	path  string
	size  int64
}

// Spool is an on-disk write-ahead log of records waiting for the broker.
// Append writes each record to the active segment file at once (so it
// survives a crash of the process as soon as Append returns) and a
// background syncer fsyncs in groups (so it survives an OS crash within
// SyncInterval or SyncRecords); WaitSynced waits for that fsync. A Reader
// hands the records out in order; Ack marks them delivered, persists the
// checkpoint and deletes segments that hold only delivered records. After a
// restart, everything after the checkpoint is read again.
//
// Each entry is framed as u32 payload length, u32 CRC-32C of the payload,
// then the payload (u64 sequence, i64 append time in unix ns, u8 length and
// bytes of the destination, u8 length and bytes of the record id, the JSON
// body); all integers little-endian. Recovery truncates a segment at its
// first entry that is short or fails its CRC (a torn write).
type Spool struct {
	cfg SpoolConfig
	log zerolog.Logger

	mu         sync.Mutex
	segs       []segment // ordered; the last is the active one
	active     *os.File
	nextSeq    uint64 // sequence of the next Append
	acked      uint64 // every seq <= acked is delivered
	diskBytes  int64
	pendRecs   int64
	pendBytes  int64
	headTime   time.Time // append time of the oldest undelivered entry, if known
	unsynced   int
	syncedSeq  uint64
	syncedCond *sync.Cond
	closed     bool
	torn       int64  // entries dropped at recovery
	wbuf       []byte // write buffer of AppendBatch, reused under mu

	newData chan struct{} // signalled (non-blocking) on Append
	kick    chan struct{} // asks the syncer for an fsync now
	done    chan struct{}
	wg      sync.WaitGroup
}

// OpenSpool opens or creates the spool in cfg.Dir, recovers its segments
// and starts the group-commit syncer.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	s := &Spool{cfg: cfg, log: cfg.Logger, newData: make(chan struct{}, 1),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.syncedCond = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.syncer()
	return s, nil
}

// recover loads the checkpoint and scans every segment.
func (s *Spool) recover() error {
	s.acked = s.readCheckpoint()
	names, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*"+segmentSuffix))
	if err != nil {
		return fmt.Errorf("list spool segments: %w", err)
	}
	for _, p := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), segmentSuffix), 10, 64)
		if err != nil {
			continue // not ours
		}
		s.segs = append(s.segs, segment{first: first, path: p})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpU64(a.first, b.first) })
	lastSeq := s.acked
	for i := range s.segs {
		seg := &s.segs[i]
		good, segMax, err := s.scanSegment(seg)
		if err != nil {
			return err
		}
		seg.size = good
		lastSeq = max(lastSeq, segMax)
	}
	s.nextSeq = lastSeq + 1
	s.syncedSeq = lastSeq
	// Drop segments that hold only delivered entries (all but the last).
	for len(s.segs) > 1 && s.segs[1].first <= s.acked+1 {
		if err := os.Remove(s.segs[0].path); err != nil {
			return fmt.Errorf("remove delivered segment: %w", err)
		}
		s.segs = s.segs[1:]
	}
	for _, seg := range s.segs {
		s.diskBytes += seg.size
	}
	if len(s.segs) == 0 {
		return s.newSegmentLocked()
	}
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open spool segment: %w", err)
	}
	s.active = f
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scanSegment validates seg's entries, truncates a torn tail, counts the
// undelivered ones and returns the valid size and the highest sequence.
func (s *Spool) scanSegment(seg *segment) (good int64, maxSeq uint64, err error) {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("open spool segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("stat spool segment: %w", err)
	}
	r := &segReader{f: f, limit: st.Size()}
	for {
		e, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.torn++
			s.log.Warn().Err(err).Str("segment", seg.path).Int64("offset", r.off).Int64("dropped_bytes", st.Size()-r.off).
				Msg("billing spool: truncating segment at a damaged entry")
			if err := f.Truncate(r.off); err != nil {
				return 0, 0, fmt.Errorf("truncate spool segment: %w", err)
			}
			if err := f.Sync(); err != nil {
				return 0, 0, fmt.Errorf("sync spool segment: %w", err)
			}
			break
		}
		maxSeq = max(maxSeq, e.Seq)
		if e.Seq > s.acked {
			s.pendRecs++
			s.pendBytes += e.size
			if s.headTime.IsZero() {
				s.headTime = e.Time
			}
		}
	}
	return r.off, maxSeq, nil
}

// readCheckpoint returns the last delivered sequence, 0 when unknown.
func (s *Spool) readCheckpoint() uint64 {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, checkpointName))
	if err != nil {
		return 0
	}
	if len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.LittleEndian.Uint32(b[8:]) {
		s.log.Warn().Msg("billing spool: checkpoint damaged, resending every spooled record")
		return 0
	}
	return binary.LittleEndian.Uint64(b[:8])
}

// writeCheckpoint records seq as delivered (write to a temporary file, then
// rename). It is not fsynced: losing it only causes a resend.
func (s *Spool) writeCheckpoint(seq uint64) error {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], seq)
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[:8], castagnoli))
	tmp := filepath.Join(s.cfg.Dir, checkpointName+".tmp")
	if err := os.WriteFile(tmp, b[:], 0o640); err != nil {
		return fmt.Errorf("write spool checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.cfg.Dir, checkpointName)); err != nil {
		return fmt.Errorf("write spool checkpoint: %w", err)
	}
	return nil
}

// newSegmentLocked closes the active segment (after an fsync) and starts a
// new one named after the next sequence.
func (s *Spool) newSegmentLocked() error {
	if s.active != nil {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("sync spool segment: %w", err)
		}
		_ = s.active.Close()
		s.active = nil
		s.syncedSeq = s.nextSeq - 1
		s.unsynced = 0
	}
	p := filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d%s", s.nextSeq, segmentSuffix))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	if err := syncDir(s.cfg.Dir); err != nil {
		_ = f.Close()
		return err
	}
	s.active = f
	s.segs = append(s.segs, segment{first: s.nextSeq, path: p})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync spool dir: %w", err)
	}
	return nil
}

// encodeEntry frames one entry.
func encodeEntry(dst []byte, seq uint64, at time.Time, dest, id string, body []byte) []byte {
	n := payloadFixedSize + len(dest) + len(id) + len(body)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, filled below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, byte(len(dest)))
	dst = append(dst, dest...)
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+entryHeaderSize:], castagnoli))
	return dst
}

// errBadEntry marks a damaged or torn entry.
var errBadEntry = errors.New("damaged spool entry")

// decodeEntry parses the entry at the start of b. It returns io.EOF when b
// is empty, io.ErrUnexpectedEOF when b holds only part of an entry, and
// errBadEntry when the entry is invalid.
func decodeEntry(b []byte) (Entry, error) {
	if len(b) == 0 {
		return Entry{}, io.EOF
	}
	if len(b) < entryHeaderSize {
		return Entry{}, io.ErrUnexpectedEOF
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < payloadFixedSize || n > maxEntrySize {
		return Entry{}, fmt.Errorf("%w: payload length %d", errBadEntry, n)
	}
	if len(b) < entryHeaderSize+n {
		return Entry{}, io.ErrUnexpectedEOF
	}
	p := b[entryHeaderSize : entryHeaderSize+n]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return Entry{}, fmt.Errorf("%w: CRC mismatch", errBadEntry)
	}
	e := Entry{
		Seq:  binary.LittleEndian.Uint64(p),
		Time: time.Unix(0, int64(binary.LittleEndian.Uint64(p[8:]))),
		size: int64(entryHeaderSize + n),
	}
	rest := p[16:]
	dl := int(rest[0])
	if len(rest) < 2+dl {
		return Entry{}, fmt.Errorf("%w: destination overflows", errBadEntry)
	}
	e.Destination = string(rest[1 : 1+dl])
	rest = rest[1+dl:]
	il := int(rest[0])
	if len(rest) < 1+il {
		return Entry{}, fmt.Errorf("%w: record id overflows", errBadEntry)
	}
	e.ID = string(rest[1 : 1+il])
	e.Body = append([]byte(nil), rest[1+il:]...)
	return e, nil
}

// segReader reads entries of one segment up to limit.
type segReader struct {
	f     *os.File
	off   int64 // offset of the next entry
	limit int64
	buf   []byte
	bufAt int64 // file offset of buf[0]
}

// next returns the next entry, io.EOF at limit, or an error for a damaged
// or torn entry (r.off then stays at its start).
func (r *segReader) next() (Entry, error) {
	if r.off >= r.limit {
		return Entry{}, io.EOF
	}
	for refilled := false; ; refilled = true {
		if lo := r.off - r.bufAt; lo >= 0 && lo < int64(len(r.buf)) {
			e, err := decodeEntry(r.buf[lo:])
			switch {
			case err == nil && r.off+e.size <= r.limit:
				r.off += e.size
				return e, nil
			case err == nil || err == io.ErrUnexpectedEOF:
				if refilled {
					return Entry{}, fmt.Errorf("%w: entry overruns the segment end", errBadEntry)
				}
			default:
				return Entry{}, err
			}
		} else if refilled {
			return Entry{}, fmt.Errorf("%w: segment shorter than expected", errBadEntry)
		}
		// Refill from r.off with at least one whole entry, or all that is left.
		want := min(r.limit-r.off, int64(max(readChunk, maxEntrySize)))
		if int64(cap(r.buf)) < want {
			r.buf = make([]byte, want)
		}
		r.buf = r.buf[:want]
		n, err := r.f.ReadAt(r.buf, r.off)
		r.buf, r.bufAt = r.buf[:n], r.off
		if err != nil && err != io.EOF {
			return Entry{}, fmt.Errorf("read spool segment: %w", err)
		}
	}
}

// Append writes one record and returns its sequence number. It returns
// ErrSpoolFull when the spool holds MaxBytes, ErrSpoolClosed after Close.
// The record survives a process crash once Append returns, and an OS crash
// once WaitSynced(seq) returns.
func (s *Spool) Append(dest, id string, body []byte) (uint64, error) {
	one := [1]SpoolRecord{{Dest: dest, ID: id, Body: body}}
	_, seq, err := s.AppendBatch(one[:])
	return seq, err
}

// SpoolRecord is one record handed to AppendBatch.
type SpoolRecord struct {
	Dest, ID string
	Body     []byte
}

// AppendBatch writes recs in order, with one file write for as many of them as fit in the
// active segment, and returns how many it wrote and the sequence number of the last one
// written. When it fails, recs[n:] are not in the spool (the first of them is the one that
// failed) and recs[:n] are, as if appended one by one.
func (s *Spool) AppendBatch(recs []SpoolRecord) (n int, last uint64, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrSpoolClosed
	}
	buf := s.wbuf[:0]
	defer func() {
		if cap(buf) <= maxWriteBuffer {
			s.wbuf = buf[:0]
		}
	}()
	queued := 0 // records encoded in buf, not yet written
	flush := func() error {
		if queued == 0 {
			return nil
		}
		if err := s.writeLocked(buf, queued, now); err != nil {
			return err
		}
		n += queued
		queued = 0
		buf = buf[:0]
		return nil
	}
	for _, r := range recs {
		if err := checkSpoolRecord(r); err != nil {
			if ferr := flush(); ferr != nil {
				return n, s.nextSeq - 1, ferr
			}
			return n, s.nextSeq - 1, err
		}
		size := int64(entryHeaderSize + payloadFixedSize + len(r.Dest) + len(r.ID) + len(r.Body))
		if s.diskBytes+int64(len(buf))+size > s.cfg.MaxBytes {
			if err := flush(); err != nil {
				return n, s.nextSeq - 1, err
			}
			if err := s.reclaimLocked(); err != nil {
				return n, s.nextSeq - 1, err
			}
			if s.diskBytes+size > s.cfg.MaxBytes {
				return n, s.nextSeq - 1, ErrSpoolFull
			}
		}
		if act := &s.segs[len(s.segs)-1]; act.size+int64(len(buf)) > 0 && act.size+int64(len(buf))+size > s.cfg.SegmentBytes {
			if err := flush(); err != nil {
				return n, s.nextSeq - 1, err
			}
			if err := s.newSegmentLocked(); err != nil {
				return n, s.nextSeq - 1, err
			}
		}
		buf = encodeEntry(buf, s.nextSeq+uint64(queued), now, r.Dest, r.ID, r.Body)
		queued++
	}
	if err := flush(); err != nil {
		return n, s.nextSeq - 1, err
	}
	return n, s.nextSeq - 1, nil
}

// checkSpoolRecord reports a record the entry format cannot hold.
func checkSpoolRecord(r SpoolRecord) error {
	if len(r.Dest) > 255 || len(r.ID) > 255 {
		return errors.New("billing spool: destination and record id are limited to 255 bytes")
	}
	if len(r.Body) > MaxRecordSize {
		return ErrTooLarge
	}
	return nil
}

// maxWriteBuffer is the largest write buffer a spool keeps between appends, in bytes.
const maxWriteBuffer = 1 << 20

// writeLocked writes buf, holding count encoded entries, to the active segment and accounts
// for them.
func (s *Spool) writeLocked(buf []byte, count int, now time.Time) error {
	act := &s.segs[len(s.segs)-1]
	if n, err := s.active.Write(buf); err != nil {
		// Cut a partial write so the next entry starts on a boundary.
		if n > 0 {
			_ = s.active.Truncate(act.size)
		}
		return fmt.Errorf("write billing spool: %w", err)
	}
	size := int64(len(buf))
	act.size += size
	s.diskBytes += size
	s.nextSeq += uint64(count)
	s.pendRecs += int64(count)
	s.pendBytes += size
	if s.headTime.IsZero() {
		s.headTime = now
	}
	s.unsynced += count
	if s.unsynced >= s.cfg.SyncRecords {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	select {
	case s.newData <- struct{}{}:
	default:
	}
	return nil
}

// reclaimLocked starts a fresh active segment when every entry is
// delivered, so a full but delivered active segment frees its space.
func (s *Spool) reclaimLocked() error {
	if s.acked+1 != s.nextSeq || s.segs[len(s.segs)-1].size == 0 {
		return nil
	}
	old := s.segs[len(s.segs)-1]
	if err := s.newSegmentLocked(); err != nil {
		return err
	}
	s.segs = slices.DeleteFunc(s.segs, func(g segment) bool { return g.path == old.path })
	s.diskBytes -= old.size
	if err := os.Remove(old.path); err != nil {
		return fmt.Errorf("remove delivered segment: %w", err)
	}
	return nil
}

// WaitSynced blocks until the entry seq is fsynced or the spool closes.
func (s *Spool) WaitSynced(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.syncedSeq < seq {
		if s.closed {
			return ErrSpoolClosed
		}
		s.syncedCond.Wait()
	}
	return nil
}

// syncer fsyncs the active segment every SyncInterval, or sooner when
// SyncRecords entries wait.
func (s *Spool) syncer() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.Sync(); err != nil {
			s.log.Error().Err(err).Msg("billing spool: fsync failed")
		}
	}
}

// Sync fsyncs what was appended so far.
func (s *Spool) Sync() error {
	s.mu.Lock()
	if s.unsynced == 0 || s.active == nil {
		s.mu.Unlock()
		return nil
	}
	f, upTo := s.active, s.nextSeq-1
	s.unsynced = 0
	s.mu.Unlock()
	err := f.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrClosed) {
		s.unsynced++ // try again next round
		return fmt.Errorf("sync billing spool: %w", err)
	}
	if upTo > s.syncedSeq {
		s.syncedSeq = upTo
	}
	s.syncedCond.Broadcast()
	return nil
}

// ack marks every entry up to last as delivered: n and bytes are the count
// and total size of the entries acknowledged since the previous ack.
func (s *Spool) ack(last uint64, n, bytes int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last <= s.acked {
		return nil
	}
	s.acked = last
	s.pendRecs -= n
	s.pendBytes -= bytes
	s.headTime = time.Time{} // the reader notes the next head
	err := s.writeCheckpoint(last)
	for len(s.segs) > 1 && s.segs[1].first <= s.acked+1 {
		if rerr := os.Remove(s.segs[0].path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("remove delivered segment: %w", rerr)
		}
		s.diskBytes -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	return err
}

// noteHead records the append time of the oldest undelivered entry.
func (s *Spool) noteHead(t time.Time) {
	s.mu.Lock()
	s.headTime = t
	s.mu.Unlock()
}

// SpoolStats is a snapshot of the spool's depth.
type SpoolStats struct {
	Records   int64         // records not yet delivered
	Bytes     int64         // their size on disk
	DiskBytes int64         // size of all segment files
	OldestAge time.Duration // age of the oldest undelivered record, 0 if none
	Torn      int64         // damaged entries dropped at recovery
}

// Stats returns the current depth.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SpoolStats{Records: s.pendRecs, Bytes: s.pendBytes, DiskBytes: s.diskBytes, Torn: s.torn}
	if s.pendRecs > 0 && !s.headTime.IsZero() {
		st.OldestAge = time.Since(s.headTime)
	}
	return st
}

// Close fsyncs and closes the spool. Undelivered records stay on disk and
// are read again by the next OpenSpool.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.syncedCond.Broadcast()
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.active != nil {
		err = s.active.Sync()
		if cerr := s.active.Close(); err == nil {
			err = cerr
		}
		s.active = nil
	}
	return err
}

// Reader returns the undelivered entries in order. Only one Reader may be
// in use at a time; it starts after the last acknowledged entry.
type Reader struct {
	s    *Spool
	seg  uint64 // first seq of the segment being read; 0 before the first
	r    *segReader
	next uint64 // sequence expected next; entries below are skipped
}

// NewReader returns a Reader positioned after the last delivered entry.
func (s *Spool) NewReader() *Reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Reader{s: s, next: s.acked + 1}
}

// Next waits until at least one entry is available and returns up to max
// entries, or returns ctx's error or ErrSpoolClosed.
func (r *Reader) Next(ctx context.Context, limit int) ([]Entry, error) {
	for {
		out, err := r.read(limit)
		if len(out) > 0 {
			r.s.noteHead(out[0].Time)
		}
		if err != nil || len(out) > 0 {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.s.done:
			return nil, ErrSpoolClosed
		case <-r.s.newData:
		}
	}
}

// read returns the entries available now, up to limit.
func (r *Reader) read(limit int) ([]Entry, error) {
	var out []Entry
	for len(out) < limit {
		r.s.mu.Lock()
		if r.next >= r.s.nextSeq {
			r.s.mu.Unlock()
			break
		}
		// Find the segment holding r.next and its current valid size.
		idx := -1
		for i := len(r.s.segs) - 1; i >= 0; i-- {
			if r.s.segs[i].first <= r.next || i == 0 {
				idx = i
				break
			}
		}
		seg := r.s.segs[idx]
		isLast := idx == len(r.s.segs)-1
		var nextFirst uint64
		if !isLast {
			nextFirst = r.s.segs[idx+1].first
		}
		r.s.mu.Unlock()

		if r.r == nil || r.seg != seg.first {
			if r.r != nil {
				_ = r.r.f.Close()
			}
			f, err := os.Open(seg.path)
			if err != nil {
				return out, fmt.Errorf("open spool segment: %w", err)
			}
			r.r, r.seg = &segReader{f: f}, seg.first
		}
		r.r.limit = seg.size
		e, err := r.r.next()
		if err == io.EOF {
			if isLast {
				break
			}
			// Everything left in this segment was skipped: go on.
			r.next = max64(r.next, nextFirst)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("read spool segment %s: %w", seg.path, err)
		}
		if e.Seq < r.next {
			continue // delivered before a restart
		}
		r.next = e.Seq + 1
		out = append(out, e)
	}
	return out, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Close releases the Reader's file.
func (r *Reader) Close() error {
	if r.r != nil {
		return r.r.f.Close()
	}
	return nil
}
