package billing

import (
	"sync"

	"github.com/rs/zerolog"
)

// Publisher hands records to the billing pipeline. Publish never blocks the
// call path on the broker: it returns once the record is accepted (see the
// implementation for its durability guarantee) or with an error when it
// cannot be accepted; the caller logs the error, the record is not retried.
type Publisher interface {
	Publish(rec Record) error
}

// LogPublisher is a Publisher that logs each record at debug level and keeps
// nothing. Use it in tests and where billing is disabled.
type LogPublisher struct {
	Log zerolog.Logger
}

// Publish implements Publisher.
func (p LogPublisher) Publish(rec Record) error {
	body, err := Encode(rec)
	if err != nil {
		return err
	}
	p.Log.Debug().Str("record_id", rec.RecordID()).Str("destination", rec.Destination()).
		RawJSON("record", body).Msg("billing record")
	return nil
}

// MemoryPublisher is a Publisher that keeps every valid record in memory,
// in order. It is safe for concurrent use; the zero value is ready.
type MemoryPublisher struct {
	mu   sync.Mutex
	recs []Record
}

// Publish implements Publisher.
func (p *MemoryPublisher) Publish(rec Record) error {
	if _, err := Encode(rec); err != nil {
		return err
	}
	p.mu.Lock()
	p.recs = append(p.recs, rec)
	p.mu.Unlock()
	return nil
}

// Records returns a copy of the records published so far.
func (p *MemoryPublisher) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.recs...)
}
