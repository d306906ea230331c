package cdrstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Consumer defaults.
const (
	// DefaultBatchSize is the most records stored in one transaction.
	DefaultBatchSize = 500
	// DefaultBatchIdle ends a batch when no message arrived for this long.
	DefaultBatchIdle = 2 * time.Millisecond
	// DefaultBatchLinger is the longest a batch stays open after its first
	// message.
	DefaultBatchLinger = 50 * time.Millisecond
	// DefaultCommitTimeout bounds one batch transaction.
	DefaultCommitTimeout = 30 * time.Second
	// DefaultSubscriptionsPerDestination opens this many subscriptions
	// (each on its own connection) per queue; one suffices with prefetch.
	DefaultSubscriptionsPerDestination = 1
	// DefaultRetryMin and DefaultRetryMax bound the delay between attempts
	// to reach the broker or the database again.
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Broker is the STOMP connection configuration.
	Broker bus.Config
	// CDRQueue and EventQueue are the destinations consumed;
	// billing.CDRDestination and billing.EventDestination when empty.
	CDRQueue, EventQueue string
	// BatchSize, BatchIdle and BatchLinger shape batches; see the defaults.
	BatchSize   int
	BatchIdle   time.Duration
	BatchLinger time.Duration
	// CommitTimeout bounds one transaction; DefaultCommitTimeout.
	CommitTimeout time.Duration
	// PerDestination is the number of subscriptions per destination;
	// DefaultSubscriptionsPerDestination.
	PerDestination int
	// Prefetch is ActiveMQ's per-subscription prefetch; bus.DefaultPrefetch.
	Prefetch int
	// RetryMin and RetryMax bound reconnect delays; DefaultRetryMin/Max.
	RetryMin, RetryMax time.Duration
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives state changes and rejected records; zerolog.Nop().
	Logger zerolog.Logger
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.CDRQueue == "" {
		c.CDRQueue = billing.CDRDestination
	}
	if c.EventQueue == "" {
		c.EventQueue = billing.EventDestination
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchIdle == 0 {
		c.BatchIdle = DefaultBatchIdle
	}
	if c.BatchLinger == 0 {
		c.BatchLinger = DefaultBatchLinger
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultCommitTimeout
	}
	if c.PerDestination == 0 {
		c.PerDestination = DefaultSubscriptionsPerDestination
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c ConsumerConfig) Validate() error {
	c = c.withDefaults()
	if err := c.Broker.Validate(); err != nil {
		return err
	}
	if c.BatchSize < 1 || c.BatchIdle < 0 || c.BatchLinger < 0 || c.CommitTimeout < 0 || c.PerDestination < 1 {
		return errors.New("cdr consumer: batch size and subscriptions must be positive, durations not negative")
	}
	if c.RetryMin < 0 || c.RetryMax < c.RetryMin {
		return errors.New("cdr consumer: want 0 <= retry min <= retry max")
	}
	return nil
}

// ErrNotStarted is Ready's answer before Run connected the first time.
var ErrNotStarted = errors.New("cdr consumer not started")

// dbError marks a failure of the store (as opposed to the broker).
type dbError struct{ err error }

func (e dbError) Error() string { return e.err.Error() }
func (e dbError) Unwrap() error { return e.err }

// Consumer moves records from the broker into a Store: it subscribes with
// client-individual acknowledgements, stores messages in batches of one
// transaction, and acknowledges them only after the commit. A crash between
// commit and ack makes the broker redeliver; the store's idempotence turns
// that into no change. When the database fails, the Consumer disconnects
// from the broker (unacknowledged messages stay there), reports not ready,
// probes the database with backoff and resumes by itself; the same for the
// broker.
type Consumer struct {
	cfg   ConsumerConfig
	store Store
	log   zerolog.Logger

	mu       sync.Mutex
	notReady error

	stored     atomic.Int64
	rejected   atomic.Int64
	duplicates atomic.Int64
	dbErrors   atomic.Int64
	// pending counts messages received in the batch being built or stored,
	// not yet acknowledged; sub is the live subscription (its buffer holds
	// messages the broker pushed that the batch loop has not read yet).
	pending atomic.Int64
	sub     atomic.Pointer[bus.Subscriber]

	recordsTotal    *prometheus.CounterVec
	rejectedTotal   prometheus.Counter
	duplicatesTotal prometheus.Counter
	dbErrorsTotal   prometheus.Counter
	batchSeconds    prometheus.Histogram
}

// NewConsumer returns a Consumer for store. Start it with Run.
func NewConsumer(cfg ConsumerConfig, store Store) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Consumer{cfg: cfg, store: store, log: cfg.Logger, notReady: ErrNotStarted,
		recordsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_rs_records_stored_total", Help: "Records stored and acknowledged, by destination.",
		}, []string{"destination"}),
		rejectedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_rs_records_rejected_total", Help: "Messages that were not valid records (logged and acknowledged).",
		}),
		duplicatesTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_rs_records_duplicate_total", Help: "Records received again that changed nothing (redeliveries), acknowledged.",
		}),
		dbErrorsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_rs_db_errors_total", Help: "Batches the database failed to store (nothing acknowledged; retried).",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gvp_rs_batch_commit_seconds", Help: "Time to store one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if r := cfg.Registerer; r != nil {
		ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gvp_rs_consumer_ready", Help: "1 while the consumer is connected to the broker and the database works.",
		}, func() float64 {
			if c.Ready() == nil {
				return 1
			}
			return 0
		})
		queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gvp_rs_queue_size",
			Help: "Messages the broker delivered to rs that are not stored and acknowledged yet (consumer lag).",
		}, func() float64 { return float64(c.QueueSize()) })
		for _, m := range []prometheus.Collector{c.recordsTotal, c.rejectedTotal, c.duplicatesTotal, c.dbErrorsTotal,
			c.batchSeconds, ready, queue} {
			if err := r.Register(m); err != nil {
				return nil, fmt.Errorf("register consumer metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Ready returns nil while the consumer is consuming, else the reason.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notReady
}

func (c *Consumer) setReady(err error) {
	c.mu.Lock()
	prev := c.notReady
	c.notReady = err
	c.mu.Unlock()
	switch {
	case err == nil && prev != nil:
		c.log.Info().Msg("cdr consumer ready")
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		c.log.Warn().Err(err).Msg("cdr consumer not ready")
	}
}

// Stored returns how many records were stored and acknowledged.
func (c *Consumer) Stored() int64 { return c.stored.Load() }

// Rejected returns how many invalid messages were dropped.
func (c *Consumer) Rejected() int64 { return c.rejected.Load() }

// Duplicates returns how many records were received again and changed
// nothing (counted when the store reports it; see ApplyResult).
func (c *Consumer) Duplicates() int64 { return c.duplicates.Load() }

// DBErrors returns how many batches the database failed to store.
func (c *Consumer) DBErrors() int64 { return c.dbErrors.Load() }

// QueueSize returns the consumer lag: messages the broker delivered that
// are not stored and acknowledged yet (the batch in progress plus those
// waiting in the subscription's buffer). Messages still in the broker's
// queue (not yet pushed, beyond the prefetch window) are not counted.
func (c *Consumer) QueueSize() int {
	n := int(c.pending.Load())
	if sub := c.sub.Load(); sub != nil {
		n += len(sub.C())
	}
	return n
}

// Run consumes until ctx ends, reconnecting to the broker and waiting for
// the database as needed. It returns nil when ctx ends.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := bus.NewBackoff(c.cfg.RetryMin, c.cfg.RetryMax)
	dbDown := false
	for ctx.Err() == nil {
		if dbDown {
			if err := c.store.Ping(ctx); err != nil {
				c.setReady(fmt.Errorf("database unavailable: %w", err))
				sleep(ctx, backoff.Next())
				continue
			}
			dbDown = false
		}
		sub, err := bus.Subscribe(ctx, c.cfg.Broker, []string{c.cfg.CDRQueue, c.cfg.EventQueue},
			bus.SubscribeOptions{Prefetch: c.cfg.Prefetch, PerDestination: c.cfg.PerDestination})
		if err != nil {
			c.setReady(fmt.Errorf("broker unavailable: %w", err))
			sleep(ctx, backoff.Next())
			continue
		}
		c.setReady(nil)
		c.sub.Store(sub)
		err = c.consume(ctx, sub, backoff)
		c.sub.Store(nil)
		c.pending.Store(0)
		_ = sub.Close()
		if ctx.Err() != nil {
			break
		}
		var de dbError
		if errors.As(err, &de) {
			dbDown = true
			c.setReady(fmt.Errorf("database unavailable: %w", err))
		} else {
			c.setReady(fmt.Errorf("broker unavailable: %w", err))
		}
		sleep(ctx, backoff.Next())
	}
	c.setReady(fmt.Errorf("cdr consumer stopped: %w", context.Canceled))
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// consume stores batches until the subscription or the store fails.
func (c *Consumer) consume(ctx context.Context, sub *bus.Subscriber, backoff *bus.Backoff) error {
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	batch := make([]bus.Delivery, 0, c.cfg.BatchSize)
	for {
		batch = batch[:0]
		if ctx.Err() != nil { // select picks at random when both are ready
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-sub.C():
			if !ok {
				return fmt.Errorf("broker connection ended: %w", sub.Err())
			}
			batch = append(batch, d)
			c.pending.Add(1)
		}
		deadline := time.Now().Add(c.cfg.BatchLinger)
	collect:
		for len(batch) < c.cfg.BatchSize {
			wait := min(c.cfg.BatchIdle, time.Until(deadline))
			if wait <= 0 {
				break
			}
			idle.Reset(wait)
			select {
			case d, ok := <-sub.C():
				if !ok {
					return fmt.Errorf("broker connection ended: %w", sub.Err())
				}
				batch = append(batch, d)
				c.pending.Add(1)
			case <-idle.C:
				break collect
			}
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		if err := c.storeBatch(ctx, batch); err != nil {
			return err
		}
		for _, d := range batch {
			if err := sub.Ack(d); err != nil {
				return err
			}
			c.pending.Add(-1)
		}
		backoff.Reset()
	}
}

// storeBatch decodes and stores one batch; invalid messages are logged and
// counted, and acknowledged with the rest.
func (c *Consumer) storeBatch(ctx context.Context, batch []bus.Delivery) error {
	var b Batch
	for _, d := range batch {
		kind := billing.CDRDestination
		if d.Destination == c.cfg.EventQueue {
			kind = billing.EventDestination
		}
		rec, err := billing.Decode(kind, d.ID, d.Body)
		if err != nil {
			c.rejected.Add(1)
			c.rejectedTotal.Inc()
			c.log.Error().Err(err).Str("record_id", d.ID).Str("destination", d.Destination).
				Int("bytes", len(d.Body)).Msg("dropping a message that is not a valid billing record")
			continue
		}
		switch r := rec.(type) {
		case *billing.CDR:
			b.CDRs = append(b.CDRs, r)
		case *billing.Event:
			b.Events = append(b.Events, r)
		}
	}
	start := time.Now()
	// The batch is stored even when ctx ends meanwhile (a drain): the
	// commit completes and the messages are acknowledged before Run returns.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CommitTimeout)
	defer cancel()
	var dups int
	var err error
	if ac, ok := c.store.(applyCounter); ok {
		var res ApplyResult
		res, err = ac.ApplyCount(cctx, b)
		dups = res.Duplicates
	} else {
		err = c.store.Apply(cctx, b)
	}
	if err != nil {
		c.dbErrors.Add(1)
		c.dbErrorsTotal.Inc()
		return dbError{fmt.Errorf("store batch of %d records: %w", b.Len(), err)}
	}
	c.batchSeconds.Observe(time.Since(start).Seconds())
	c.duplicates.Add(int64(dups))
	c.duplicatesTotal.Add(float64(dups))
	c.stored.Add(int64(b.Len()))
	c.recordsTotal.WithLabelValues(billing.CDRDestination).Add(float64(len(b.CDRs)))
	c.recordsTotal.WithLabelValues(billing.EventDestination).Add(float64(len(b.Events)))
	return nil
}
