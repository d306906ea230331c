package billing

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// BatchPublisher is a Publisher that also takes many records in one call (SpooledPublisher
// writes them with one spool write).
type BatchPublisher interface {
	Publisher
	// PublishBatch publishes recs in order; the error covers the records not accepted.
	PublishBatch(recs []Record) error
}

// Queue publishes records on a goroutine of its own, in order and in batches, so that encoding
// and spooling (a file write, slowed down by the spool's fsync) stay off the goroutines that
// handle calls. Publish waits only when QueueLen records are already waiting: records are never
// dropped. Errors are logged. After Close, Publish publishes on the caller's goroutine.
type Queue struct {
	pub    Publisher
	log    zerolog.Logger
	mu     sync.RWMutex
	closed bool
	ch     chan Record
	done   chan struct{}
}

// Queue sizing.
const (
	// QueueLen is the number of records waiting before Publish waits for room: about 8 s of
	// records at 4,000 calls/s.
	QueueLen = 1 << 16
	// queueBatchDelay is how long the queue waits after a record for more to arrive, so that
	// one wake-up of its goroutine publishes many records under load.
	queueBatchDelay = 5 * time.Millisecond
	// queueMaxBatch bounds the records published in one batch.
	queueMaxBatch = 512
)

// NewQueue starts a queue in front of pub.
func NewQueue(pub Publisher, log zerolog.Logger) *Queue {
	q := &Queue{pub: pub, log: log, ch: make(chan Record, QueueLen), done: make(chan struct{})}
	go q.run()
	return q
}

func (q *Queue) run() {
	defer close(q.done)
	batch := make([]Record, 0, queueMaxBatch)
	flush := func() {
		if len(batch) > 0 {
			q.publishBatch(batch)
			clear(batch) // let the records go
			batch = batch[:0]
		}
	}
	for rec := range q.ch {
		batch = append(batch, rec)
		time.Sleep(queueBatchDelay)
	more:
		for {
			select {
			case rec, ok := <-q.ch:
				if !ok {
					flush()
					return
				}
				if batch = append(batch, rec); len(batch) == queueMaxBatch {
					flush()
				}
			default:
				break more
			}
		}
		flush()
	}
}

func (q *Queue) publishBatch(recs []Record) {
	if bp, ok := q.pub.(BatchPublisher); ok {
		if err := bp.PublishBatch(recs); err != nil {
			q.log.Warn().Err(err).Int("records", len(recs)).Msg("publish billing records")
		}
		return
	}
	for _, rec := range recs {
		q.publishNow(rec)
	}
}

func (q *Queue) publishNow(rec Record) {
	if err := q.pub.Publish(rec); err != nil {
		q.log.Warn().Err(err).Str("record_id", rec.RecordID()).Msg("publish billing record")
	}
}

// Publish queues rec, waiting for room when the queue is full.
func (q *Queue) Publish(rec Record) {
	q.mu.RLock()
	if !q.closed {
		q.ch <- rec
		q.mu.RUnlock()
		return
	}
	q.mu.RUnlock()
	q.publishNow(rec)
}

// Close publishes what is queued and returns when it is done.
func (q *Queue) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
}
