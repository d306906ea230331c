package billing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opengvp/gvp/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// SpooledPublisher defaults.
const (
	// DefaultBatchSize is the most records sent to the broker in one
	// STOMP transaction.
	DefaultBatchSize = 256
	// DefaultRetryMin and DefaultRetryMax bound the delay between attempts
	// to send a batch the broker did not acknowledge.
	DefaultRetryMin = 50 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
	// DefaultDrainTimeout is how long Close keeps sending spooled records.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultMetricsName is the value of the metrics' spool label.
	DefaultMetricsName = "billing"
)

// Transport sends messages and returns once the broker acknowledged all of
// them. *bus.Client implements it.
type Transport interface {
	Send(ctx context.Context, msgs ...bus.Message) error
}

// connectedReporter is implemented by transports that know their link state.
type connectedReporter interface{ Connected() bool }

// SpooledConfig configures a SpooledPublisher.
type SpooledConfig struct {
	// Spool is the on-disk spool; Spool.Dir is required.
	Spool SpoolConfig
	// CDRQueue and EventQueue name the broker destinations;
	// CDRDestination and EventDestination when empty.
	CDRQueue, EventQueue string
	// WaitDurable makes Publish wait for the group fsync of its record
	// (at most Spool.SyncInterval) instead of returning after the write.
	WaitDurable bool
	// BatchSize is the most records per broker transaction; DefaultBatchSize.
	BatchSize int
	// RetryMin and RetryMax bound the resend delay; DefaultRetryMin/Max.
	RetryMin, RetryMax time.Duration
	// DrainTimeout bounds the final send in Close; DefaultDrainTimeout.
	DrainTimeout time.Duration
	// MetricsName labels this publisher's metrics (label "spool"), so rm
	// and mcp can run in one process; DefaultMetricsName.
	MetricsName string
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives delivery problems; zerolog.Nop() by default.
	Logger zerolog.Logger
}

// DefaultSpooledConfig returns the defaults with the spool in dir.
func DefaultSpooledConfig(dir string) SpooledConfig {
	return SpooledConfig{
		Spool: SpoolConfig{Dir: dir, MaxBytes: DefaultSpoolMaxBytes, SegmentBytes: DefaultSegmentBytes,
			SyncInterval: DefaultSyncInterval, SyncRecords: DefaultSyncRecords, Logger: zerolog.Nop()},
		BatchSize: DefaultBatchSize, RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax,
		DrainTimeout: DefaultDrainTimeout, MetricsName: DefaultMetricsName, Logger: zerolog.Nop(),
	}
}

func (c SpooledConfig) withDefaults() SpooledConfig {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.MetricsName == "" {
		c.MetricsName = DefaultMetricsName
	}
	if c.CDRQueue == "" {
		c.CDRQueue = CDRDestination
	}
	if c.EventQueue == "" {
		c.EventQueue = EventDestination
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c SpooledConfig) Validate() error {
	c = c.withDefaults()
	if err := c.Spool.Validate(); err != nil {
		return err
	}
	if c.BatchSize < 1 || c.RetryMin < 0 || c.RetryMax < c.RetryMin || c.DrainTimeout < 0 {
		return errors.New("billing publisher: batch size must be positive and 0 <= retry min <= retry max")
	}
	return nil
}

// SpooledPublisher is the production Publisher: Publish appends the record
// to the disk spool and returns; a background sender delivers spooled
// records in order, in STOMP transactions with a receipt, and removes them
// from the spool only after the broker's receipt. Records left when the
// process stops are sent after the next start. Delivery is at least once:
// a record may reach the broker twice (a receipt lost in a crash), and the
// consumer deduplicates by record id.
type SpooledPublisher struct {
	cfg       SpooledConfig
	log       zerolog.Logger
	spool     *Spool
	transport Transport

	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	closing atomic.Bool

	publishErrors *prometheus.CounterVec
	sendErrors    prometheus.Counter
	sent          prometheus.Counter
}

// NewSpooledPublisher opens the spool and starts the sender.
func NewSpooledPublisher(cfg SpooledConfig, t Transport) (*SpooledPublisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sp, err := OpenSpool(cfg.Spool)
	if err != nil {
		return nil, err
	}
	labels := prometheus.Labels{"spool": cfg.MetricsName}
	p := &SpooledPublisher{
		cfg: cfg, log: cfg.Logger, spool: sp, transport: t, done: make(chan struct{}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_billing_publish_errors_total", ConstLabels: labels,
			Help: "Records refused by Publish, by reason (full, invalid, io, closed).",
		}, []string{"reason"}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_billing_send_errors_total", ConstLabels: labels,
			Help: "Batches the broker did not acknowledge (they are resent).",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gvp_billing_records_sent_total", ConstLabels: labels,
			Help: "Records acknowledged by the broker and removed from the spool.",
		}),
	}
	if err := p.register(cfg.Registerer, labels); err != nil {
		_ = sp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.sender(ctx)
	return p, nil
}

func (p *SpooledPublisher) register(reg prometheus.Registerer, labels prometheus.Labels) error {
	if reg == nil {
		return nil
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f)
	}
	cs := []prometheus.Collector{
		p.publishErrors, p.sendErrors, p.sent,
		gauge("gvp_billing_spool_records", "Records in the spool not yet acknowledged by the broker.",
			func() float64 { return float64(p.spool.Stats().Records) }),
		gauge("gvp_billing_spool_bytes", "Size on disk of the records not yet acknowledged.",
			func() float64 { return float64(p.spool.Stats().Bytes) }),
		gauge("gvp_billing_spool_disk_bytes", "Size of the spool's segment files.",
			func() float64 { return float64(p.spool.Stats().DiskBytes) }),
		gauge("gvp_billing_spool_oldest_record_age_seconds", "Age of the oldest record not yet acknowledged, 0 when empty.",
			func() float64 { return p.spool.Stats().OldestAge.Seconds() }),
		gauge("gvp_billing_broker_connected", "1 while the publisher's broker connection is up.",
			func() float64 {
				if c, ok := p.transport.(connectedReporter); ok && c.Connected() {
					return 1
				}
				return 0
			}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register billing metrics: %w", err)
		}
	}
	return nil
}

// Publish validates and encodes rec and appends it to the spool. When it
// returns nil the record survives a crash of the process, and an OS crash
// after the next group fsync (at most SyncInterval later; with WaitDurable
// Publish waits for that fsync). It never waits for the broker. It fails
// with ErrSpoolFull when the spool holds MaxBytes, with ErrSpoolClosed after
// Close, or on a validation or disk error; the caller logs it.
func (p *SpooledPublisher) Publish(rec Record) error {
	one := [1]Record{rec}
	return p.PublishBatch(one[:])
}

// PublishBatch publishes recs, in order, as Publish would one by one, with one spool write
// for all of them. It returns nil when every record was accepted, else the errors of those
// that were not: an invalid record keeps no other out, a spool error keeps out the records
// from the one that met it on.
func (p *SpooledPublisher) PublishBatch(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if p.closing.Load() {
		p.publishErrors.WithLabelValues("closed").Add(float64(len(recs)))
		return batchError(recs[0].RecordID(), len(recs), ErrSpoolClosed)
	}
	var errs []error
	body := make([]byte, 0, 640*len(recs))
	ends := make([]int, 0, len(recs))
	valid := make([]Record, 0, len(recs))
	for _, rec := range recs {
		var err error
		if body, err = AppendEncoded(body, rec); err != nil {
			p.publishErrors.WithLabelValues("invalid").Inc()
			errs = append(errs, err)
			continue
		}
		ends = append(ends, len(body))
		valid = append(valid, rec)
	}
	srs := make([]SpoolRecord, len(valid))
	from := 0
	for i, rec := range valid {
		dest := p.cfg.CDRQueue
		if rec.Destination() == EventDestination {
			dest = p.cfg.EventQueue
		}
		srs[i] = SpoolRecord{Dest: dest, ID: rec.RecordID(), Body: body[from:ends[i]]}
		from = ends[i]
	}
	n, seq, err := p.spool.AppendBatch(srs)
	if err != nil {
		reason := "io"
		switch {
		case errors.Is(err, ErrSpoolFull):
			reason = "full"
		case errors.Is(err, ErrSpoolClosed):
			reason = "closed"
		}
		p.publishErrors.WithLabelValues(reason).Add(float64(len(srs) - n))
		errs = append(errs, batchError(srs[n].ID, len(srs)-n, err))
	}
	if p.cfg.WaitDurable && n > 0 {
		if err := p.spool.WaitSynced(seq); err != nil {
			errs = append(errs, batchError(srs[n-1].ID, n, err))
		}
	}
	return errors.Join(errs...)
}

// batchError says that count records, starting with id, were not published.
func batchError(id string, count int, err error) error {
	if count == 1 {
		return fmt.Errorf("publish record %s: %w", id, err)
	}
	return fmt.Errorf("publish record %s and %d more: %w", id, count-1, err)
}

// Stats returns the spool's depth.
func (p *SpooledPublisher) Stats() SpoolStats { return p.spool.Stats() }

// sender delivers spooled records in order until ctx ends.
func (p *SpooledPublisher) sender(ctx context.Context) {
	defer close(p.done)
	r := p.spool.NewReader()
	defer r.Close()
	backoff := bus.NewBackoff(p.cfg.RetryMin, p.cfg.RetryMax)
	for {
		batch, err := r.Next(ctx, p.cfg.BatchSize)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrSpoolClosed) {
				p.log.Error().Err(err).Msg("billing spool: read failed; records stay spooled until restart")
			}
			return
		}
		msgs := make([]bus.Message, len(batch))
		var bytes int64
		for i, e := range batch {
			msgs[i] = bus.Message{Destination: e.Destination, ID: e.ID, ContentType: bus.ContentTypeJSON, Body: e.Body}
			bytes += e.size
		}
		for {
			err := p.transport.Send(ctx, msgs...)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.sendErrors.Inc()
			d := backoff.Next()
			if backoff.Failures() == 1 || backoff.Failures()%20 == 0 {
				p.log.Warn().Err(err).Int("records", len(msgs)).Int("attempt", backoff.Failures()).
					Msg("billing: broker did not take the records; they stay spooled and are retried")
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		backoff.Reset()
		p.sent.Add(float64(len(batch)))
		if err := p.spool.ack(batch[len(batch)-1].Seq, int64(len(batch)), bytes); err != nil {
			p.log.Warn().Err(err).Msg("billing spool: checkpoint failed; records may be sent again after a restart")
		}
	}
}

// Close stops accepting records, keeps sending for up to DrainTimeout, then
// stops the sender and closes the spool. Records not delivered by then stay
// on disk for the next start.
func (p *SpooledPublisher) Close() error {
	var err error
	p.once.Do(func() {
		p.closing.Store(true)
		deadline := time.Now().Add(p.cfg.DrainTimeout)
		for p.spool.Stats().Records > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		p.cancel()
		<-p.done
		err = p.spool.Close()
	})
	return err
}
