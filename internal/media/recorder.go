package media

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/opengvp/gvp/internal/media/wav"
)

// DefaultRecorderBuffer is the number of 20 ms frames a Recorder can hold
// while its goroutine writes to disk (100 frames = 2 s).
const DefaultRecorderBuffer = 100

// Recorder is a Sink that writes the received audio to a wav.Writer from
// its own goroutine, so a slow disk never stalls the shared scheduler.
// Frames are copied into a fixed pool of buffers (no allocation per frame);
// when the pool is exhausted frames are dropped and counted.
type Recorder struct {
	w       *wav.Writer
	queue   chan *[frameSamples]int16
	free    chan *[frameSamples]int16
	done    chan struct{}
	err     error
	dropped atomic.Uint64
	mu      sync.Mutex // orders WriteFrame against Close
	closed  bool
}

// NewRecorder starts a recorder writing to w.
func NewRecorder(w *wav.Writer) *Recorder {
	r := &Recorder{
		w:     w,
		queue: make(chan *[frameSamples]int16, DefaultRecorderBuffer),
		free:  make(chan *[frameSamples]int16, DefaultRecorderBuffer),
		done:  make(chan struct{}),
	}
	for range DefaultRecorderBuffer {
		r.free <- new([frameSamples]int16)
	}
	go r.run()
	return r
}

func (r *Recorder) run() {
	defer close(r.done)
	for buf := range r.queue {
		if r.err == nil {
			r.err = r.w.WriteSamples(buf[:])
		}
		r.free <- buf
	}
}

// WriteFrame implements Sink. It never blocks.
func (r *Recorder) WriteFrame(frame []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case buf := <-r.free:
		n := copy(buf[:], frame)
		clear(buf[n:])
		r.queue <- buf // capacity equals the pool: never blocks
	default:
		r.dropped.Add(1)
	}
}

// Dropped returns the number of frames lost because the writer fell behind.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Close waits for queued frames to be written and closes the wav.Writer
// (patching its header). Frames written after Close are ignored.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("recorder already closed")
	}
	r.closed = true
	close(r.queue)
	r.mu.Unlock()
	<-r.done
	return errors.Join(r.err, r.w.Close())
}
