package media

import (
	"errors"
	"io"
	"sync"
	"time"
)

// FrameSamples is the number of samples in one 20 ms frame at 8 kHz.
const FrameSamples = frameSamples

// Source delivers audio to play: 8 kHz mono 16-bit linear samples, one
// 20 ms frame (FrameSamples samples) per call. A short frame is padded with
// silence; io.EOF (with or without samples) ends the source. ReadFrame is
// called from the shared scheduler, so it must not block: sources are
// expected to read from memory (decode files before playing them).
type Source interface {
	ReadFrame(frame []int16) (n int, err error)
}

// PCMSource plays a slice of 8 kHz samples. The slice is only read, so one
// decoded prompt can be shared by any number of calls, each with its own
// PCMSource.
type PCMSource struct {
	samples []int16
	pos     int
}

// NewPCMSource returns a source over samples.
func NewPCMSource(samples []int16) *PCMSource { return &PCMSource{samples: samples} }

// ReadFrame implements Source.
func (p *PCMSource) ReadFrame(frame []int16) (int, error) {
	if p.pos >= len(p.samples) {
		return 0, io.EOF
	}
	n := copy(frame, p.samples[p.pos:])
	p.pos += n
	return n, nil
}

// SilenceSource plays d of silence (for pauses between prompts).
type SilenceSource struct{ left int }

// NewSilenceSource returns a source of d of silence, rounded up to 20 ms.
func NewSilenceSource(d time.Duration) *SilenceSource {
	return &SilenceSource{left: int((d + 20*time.Millisecond - 1) / (20 * time.Millisecond) * frameSamples)}
}

// ReadFrame implements Source.
func (s *SilenceSource) ReadFrame(frame []int16) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	n := min(len(frame), s.left)
	clear(frame[:n])
	s.left -= n
	return n, nil
}

// ErrStopped is the result of a playback stopped by Stop (barge-in) or
// replaced by another Play.
var ErrStopped = errors.New("playback stopped")

// ErrSessionClosed is returned when the session is closed.
var ErrSessionClosed = errors.New("media session closed")

// Playback is a sequence of sources being played on a session.
type Playback struct {
	s       *Session
	sources []Source
	idx     int
	frames  int64
	done    chan struct{}
	once    sync.Once
	err     error
}

// Done is closed when the playback has ended (completed, stopped or failed).
func (p *Playback) Done() <-chan struct{} { return p.done }

// Err returns nil when every source was played to its end, ErrStopped after
// Stop or replacement, ErrSessionClosed if the session closed first, or the
// error a source returned. It is valid after Done is closed.
func (p *Playback) Err() error {
	<-p.done
	return p.err
}

// Frames returns the number of 20 ms frames played; valid after Done.
func (p *Playback) Frames() int64 {
	<-p.done
	return p.frames
}

// Stop ends the playback at once (barge-in): no further frame of it is sent
// after Stop returns. Stopping a finished playback does nothing.
func (p *Playback) Stop() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.finishLocked(ErrStopped)
}

// finishLocked ends the playback; the session lock must be held.
func (p *Playback) finishLocked(err error) {
	p.once.Do(func() {
		p.err = err
		if p.s.playback == p {
			p.s.playback = nil
		}
		close(p.done)
	})
}

// next reads the next frame into frame; it returns false when the playback
// has ended. The session lock must be held.
func (p *Playback) next(frame []int16) bool {
	for p.idx < len(p.sources) {
		n, err := p.sources[p.idx].ReadFrame(frame)
		if n > 0 {
			clear(frame[n:])
			p.frames++
			if err != nil && !errors.Is(err, io.EOF) {
				p.finishLocked(err)
			} else if err != nil {
				p.idx++
			}
			return true
		}
		if err == nil {
			clear(frame) // nothing ready this tick: play silence
			p.frames++
			return true
		}
		if !errors.Is(err, io.EOF) {
			p.finishLocked(err)
			return false
		}
		p.idx++
	}
	p.finishLocked(nil)
	return false
}
