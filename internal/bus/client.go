// Package bus is gvp's STOMP messaging layer: a producer client that sends
// with broker receipts and reconnects with exponential backoff, a subscriber
// with client-individual acknowledgements, and an embedded in-memory broker
// for local mode. It wraps github.com/go-stomp/stomp/v3, which neither
// reconnects nor survives a failed send.
package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	// DefaultAddr is the broker's STOMP address (ActiveMQ's and the embedded
	// broker's usual STOMP port).
	DefaultAddr = "127.0.0.1:61613"
	// DefaultConnectTimeout bounds one TCP connect plus STOMP handshake.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultReceiptTimeout bounds the wait for a broker receipt.
	DefaultReceiptTimeout = 30 * time.Second
	// DefaultHeartBeat is the STOMP heart-beat interval, both directions.
	DefaultHeartBeat = 10 * time.Second
	// DefaultBackoffMin is the first reconnect delay after a failure.
	DefaultBackoffMin = 100 * time.Millisecond
	// DefaultBackoffMax caps the reconnect delay.
	DefaultBackoffMax = 10 * time.Second
)

// Header names sent with every message.
const (
	// HeaderRecordID carries the unique id of the record in the body.
	HeaderRecordID = "record-id"
	// HeaderPersistent asks the broker to store the message (ActiveMQ
	// keeps STOMP messages in memory only without it).
	HeaderPersistent = "persistent"
	// ContentTypeJSON is the content type of billing bodies.
	ContentTypeJSON = "application/json"
)

// ErrClosed is returned by a Client after Close.
var ErrClosed = errors.New("bus: client closed")

// Config configures a Client or a Subscriber.
type Config struct {
	// Addr is the broker's host:port; DefaultAddr when empty.
	Addr string
	// Login and Passcode are sent in CONNECT when not empty.
	Login, Passcode string
	// ConnectTimeout bounds one connection attempt; DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReceiptTimeout bounds the wait for a receipt; DefaultReceiptTimeout.
	ReceiptTimeout time.Duration
	// HeartBeat is the STOMP heart-beat interval; DefaultHeartBeat.
	HeartBeat time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay, which doubles
	// after each consecutive failure; DefaultBackoffMin, DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Logger receives connection state changes; zerolog.Nop() by default.
	Logger zerolog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Addr:           DefaultAddr,
		ConnectTimeout: DefaultConnectTimeout,
		ReceiptTimeout: DefaultReceiptTimeout,
		HeartBeat:      DefaultHeartBeat,
		BackoffMin:     DefaultBackoffMin,
		BackoffMax:     DefaultBackoffMax,
		Logger:         zerolog.Nop(),
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.ReceiptTimeout == 0 {
		c.ReceiptTimeout = d.ReceiptTimeout
	}
	if c.HeartBeat == 0 {
		c.HeartBeat = d.HeartBeat
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = d.BackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = d.BackoffMax
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !strings.Contains(c.Addr, ":") {
		return fmt.Errorf("bus: addr %q: want host:port", c.Addr)
	}
	if c.ConnectTimeout < 0 || c.ReceiptTimeout < 0 || c.HeartBeat < 0 {
		return errors.New("bus: timeouts must not be negative")
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("bus: backoff min %v max %v: want 0 <= min <= max", c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// Message is one message to send.
type Message struct {
	// Destination is the queue, e.g. "/queue/gvp.cdr".
	Destination string
	// ID is sent in the record-id header; required.
	ID string
	// ContentType defaults to ContentTypeJSON.
	ContentType string
	// Body is the payload.
	Body []byte
}

// Backoff computes exponential reconnect delays with ±20% jitter. The zero
// value is not usable; build one with NewBackoff. Not safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	failures int
}

// NewBackoff returns a Backoff between min and max.
func NewBackoff(min, max time.Duration) *Backoff { return &Backoff{min: min, max: max} }

// Next records a failure and returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.min
	for i := 0; i < b.failures && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.failures++
	if d <= 0 {
		return 0
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// Reset records a success.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures returns the number of consecutive failures.
func (b *Backoff) Failures() int { return b.failures }

// Client sends messages to a STOMP broker with receipts, so a successful
// Send means the broker has the message (and, for ActiveMQ with
// persistent:true, has stored it). It connects lazily, and after any failure
// drops the connection and reconnects on the next Send after an exponential
// backoff. Safe for concurrent use; sends are serialised on one connection.
type Client struct {
	cfg Config
	log zerolog.Logger

	mu        sync.Mutex // serialises Send and guards the fields below
	conn      *stomp.Conn
	backoff   *Backoff
	nextDial  time.Time
	closed    bool
	connected atomic.Bool
	onState   func(connected bool)
}

// NewClient returns a Client for cfg. It does not connect.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, log: cfg.Logger, backoff: NewBackoff(cfg.BackoffMin, cfg.BackoffMax)}, nil
}

// OnStateChange registers fn, called with the new state each time the
// connection comes up or goes down. Call it before the first Send.
func (c *Client) OnStateChange(fn func(connected bool)) { c.onState = fn }

// Connected reports whether the client holds a live connection.
func (c *Client) Connected() bool { return c.connected.Load() }

// Addr returns the broker address.
func (c *Client) Addr() string { return c.cfg.Addr }

// Send sends msgs and returns once the broker has acknowledged all of them.
// One message goes as a SEND with a receipt; several go in one STOMP
// transaction whose COMMIT carries the receipt, so the broker stores them
// atomically. Every SEND has the headers persistent:true, record-id and
// content-type. On failure the connection is dropped; the caller retries
// (the broker may then see a message twice: consumers deduplicate by
// record-id). A Send waiting for the reconnect backoff returns early with
// ctx's error.
func (c *Client) Send(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.connectLocked(ctx)
	if err != nil {
		return err
	}
	if err := sendOn(conn, msgs); err != nil {
		c.dropLocked(err)
		return fmt.Errorf("send %d message(s) to %s: %w", len(msgs), c.cfg.Addr, err)
	}
	return nil
}

func sendOn(conn *stomp.Conn, msgs []Message) error {
	if len(msgs) == 1 {
		m := msgs[0]
		return conn.Send(m.Destination, contentType(m), m.Body, sendHeaders(m, stomp.SendOpt.Receipt)...)
	}
	tx, err := conn.BeginWithError()
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for _, m := range msgs {
		if err := tx.Send(m.Destination, contentType(m), m.Body, sendHeaders(m)...); err != nil {
			return fmt.Errorf("send in transaction: %w", err)
		}
	}
	if err := tx.CommitWithReceipt(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func contentType(m Message) string {
	if m.ContentType == "" {
		return ContentTypeJSON
	}
	return m.ContentType
}

func sendHeaders(m Message, extra ...func(*frame.Frame) error) []func(*frame.Frame) error {
	return append([]func(*frame.Frame) error{
		stomp.SendOpt.Header(HeaderPersistent, "true"),
		stomp.SendOpt.Header(HeaderRecordID, m.ID),
	}, extra...)
}

// connectLocked returns the live connection or dials a new one, waiting for
// the backoff delay first.
func (c *Client) connectLocked(ctx context.Context) (*stomp.Conn, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn != nil {
		return c.conn, nil
	}
	if wait := time.Until(c.nextDial); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("connect to %s: %w", c.cfg.Addr, ctx.Err())
		case <-t.C:
		}
	}
	conn, err := dial(ctx, c.cfg, stomp.V12)
	if err != nil {
		c.nextDial = time.Now().Add(c.backoff.Next())
		return nil, err
	}
	c.backoff.Reset()
	c.conn = conn
	c.connected.Store(true)
	c.log.Info().Str("broker", c.cfg.Addr).Msg("connected to broker")
	if c.onState != nil {
		c.onState(true)
	}
	return conn, nil
}

// dropLocked closes the current connection after a failure.
func (c *Client) dropLocked(cause error) {
	if c.conn == nil {
		return
	}
	_ = c.conn.MustDisconnect()
	c.conn = nil
	c.connected.Store(false)
	c.nextDial = time.Now().Add(c.backoff.Next())
	c.log.Warn().Err(cause).Str("broker", c.cfg.Addr).Msg("broker connection lost")
	if c.onState != nil {
		c.onState(false)
	}
}

// Close disconnects gracefully. Later Sends return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Disconnect()
	c.conn = nil
	c.connected.Store(false)
	if c.onState != nil {
		c.onState(false)
	}
	return err
}

// dial connects to cfg.Addr and performs the STOMP handshake, offering
// version v.
func dial(ctx context.Context, cfg Config, v stomp.Version) (*stomp.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.HeartBeat(cfg.HeartBeat, cfg.HeartBeat),
		stomp.ConnOpt.RcvReceiptTimeout(cfg.ReceiptTimeout),
		stomp.ConnOpt.MsgSendTimeout(cfg.ReceiptTimeout),
		stomp.ConnOpt.Logger(stompLogger{cfg.Logger}),
		stomp.ConnOpt.AcceptVersion(v),
	}
	if host, _, ok := strings.Cut(cfg.Addr, ":"); ok && host != "" {
		opts = append(opts, stomp.ConnOpt.Host(host))
	}
	if cfg.Login != "" || cfg.Passcode != "" {
		opts = append(opts, stomp.ConnOpt.Login(cfg.Login, cfg.Passcode))
	}
	conn, err := stomp.DialWithContext(ctx, "tcp", cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// stompLogger routes go-stomp's log lines to zerolog at debug level (its
// messages repeat what the returned errors say).
type stompLogger struct{ l zerolog.Logger }

func (s stompLogger) Debugf(f string, v ...any)   { s.l.Debug().Msgf(f, v...) }
func (s stompLogger) Infof(f string, v ...any)    { s.l.Debug().Msgf(f, v...) }
func (s stompLogger) Warningf(f string, v ...any) { s.l.Debug().Msgf(f, v...) }
func (s stompLogger) Errorf(f string, v ...any)   { s.l.Debug().Msgf(f, v...) }
func (s stompLogger) Debug(m string)              { s.l.Debug().Msg(m) }
func (s stompLogger) Info(m string)               { s.l.Debug().Msg(m) }
func (s stompLogger) Warning(m string)            { s.l.Debug().Msg(m) }
func (s stompLogger) Error(m string)              { s.l.Debug().Msg(m) }
