package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/go-stomp/stomp/v3"
)

// Defaults of SubscribeOptions.
const (
	// DefaultPrefetch is the number of unacknowledged messages the broker
	// may push to one subscription (header activemq.prefetchSize, honoured
	// by ActiveMQ and the embedded broker).
	DefaultPrefetch = 1000
	// DefaultSubscriptionsPerDestination is how many subscriptions (each on
	// its own connection) are opened on each destination.
	DefaultSubscriptionsPerDestination = 1
)

// AckMode is a STOMP subscription acknowledgement mode.
type AckMode string

// Acknowledgement modes a Subscriber supports.
const (
	// AckClientIndividual acknowledges each message on its own; the default,
	// for ActiveMQ.
	AckClientIndividual AckMode = "client-individual"
	// AckClient acknowledges a message and every earlier one of the same
	// subscription (cumulative).
	AckClient AckMode = "client"
)

// SubscribeOptions tune a Subscriber.
type SubscribeOptions struct {
	// Prefetch is sent as activemq.prefetchSize; DefaultPrefetch when 0.
	Prefetch int
	// PerDestination is the number of subscriptions on each destination;
	// DefaultSubscriptionsPerDestination when 0.
	PerDestination int
	// AckMode is AckClientIndividual when empty.
	AckMode AckMode
}

// Delivery is one received message. Acknowledge it with Subscriber.Ack.
type Delivery struct {
	Destination string
	// ID is the record-id header (empty when the sender set none).
	ID   string
	Body []byte
	msg  *stomp.Message
}

// Subscriber receives from one or more destinations, each subscription on a
// connection of its own, with client acknowledgements: a message not
// acknowledged before its connection ends is redelivered by the broker. A
// Subscriber does not reconnect: when any connection fails, all are closed,
// C is closed and Err tells why; the caller subscribes again (after a
// Backoff delay).
type Subscriber struct {
	conns []*stomp.Conn
	ch    chan Delivery
	wg    sync.WaitGroup
	// done is closed by Close: the forwarders stop even when go-stomp never closes a
	// subscription's channel (seen once in a test: a connection's loop gone, its
	// subscription's reader still waiting), so that Close cannot hang.
	done     chan struct{}
	doneOnce sync.Once

	mu     sync.Mutex
	err    error
	closed bool
}

// Subscribe connects to cfg.Addr and subscribes to every destination.
func Subscribe(ctx context.Context, cfg Config, destinations []string, opts SubscribeOptions) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(destinations) == 0 {
		return nil, errors.New("bus: subscribe: no destination")
	}
	cfg = cfg.withDefaults()
	if opts.Prefetch <= 0 {
		opts.Prefetch = DefaultPrefetch
	}
	if opts.PerDestination <= 0 {
		opts.PerDestination = DefaultSubscriptionsPerDestination
	}
	var mode stomp.AckMode
	switch opts.AckMode {
	case "", AckClientIndividual:
		mode = stomp.AckClientIndividual
	case AckClient:
		mode = stomp.AckClient
	default:
		return nil, fmt.Errorf("bus: unsupported ack mode %q", opts.AckMode)
	}
	// The channel holds every message the broker may have in flight (the
	// prefetch window of each subscription), so a reader that is busy
	// acknowledging never blocks go-stomp's connection loop, which would
	// block the acknowledgements themselves.
	s := &Subscriber{ch: make(chan Delivery, opts.Prefetch*opts.PerDestination*len(destinations)), done: make(chan struct{})}
	var subs []*stomp.Subscription
	for _, dest := range destinations {
		for range opts.PerDestination {
			conn, err := dial(ctx, cfg, stomp.V12)
			if err != nil {
				s.closeAll()
				return nil, err
			}
			s.conns = append(s.conns, conn)
			sub, err := conn.Subscribe(dest, mode,
				stomp.SubscribeOpt.Header("activemq.prefetchSize", strconv.Itoa(opts.Prefetch)))
			if err != nil {
				s.closeAll()
				return nil, fmt.Errorf("subscribe to %s on %s: %w", dest, cfg.Addr, err)
			}
			subs = append(subs, sub)
		}
	}
	for _, sub := range subs {
		s.wg.Add(1)
		go s.forward(sub)
	}
	go func() {
		s.wg.Wait()
		close(s.ch)
	}()
	return s, nil
}

// forward copies one subscription's messages to the shared channel; the
// first failure ends every connection.
func (s *Subscriber) forward(sub *stomp.Subscription) {
	defer s.wg.Done()
	for {
		var m *stomp.Message
		var ok bool
		select {
		case m, ok = <-sub.C:
		case <-s.done:
			return
		}
		if !ok {
			break
		}
		if m.Err != nil {
			s.fail(fmt.Errorf("subscription %s: %w", sub.Destination(), m.Err))
			return
		}
		select {
		case s.ch <- Delivery{Destination: sub.Destination(), ID: m.Header.Get(HeaderRecordID), Body: m.Body, msg: m}:
		case <-s.done:
			return
		}
	}
	s.fail(fmt.Errorf("subscription %s ended", sub.Destination()))
}

func (s *Subscriber) fail(err error) {
	s.mu.Lock()
	if s.err == nil && !s.closed {
		s.err = err
	}
	s.mu.Unlock()
	s.closeAll()
}

func (s *Subscriber) closeAll() {
	for _, c := range s.conns {
		_ = c.MustDisconnect()
	}
}

// C returns the channel of deliveries. It is closed when the connections
// end (after Close or a failure).
func (s *Subscriber) C() <-chan Delivery { return s.ch }

// Err returns why the connections ended, or nil while they are up or after
// Close.
func (s *Subscriber) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Ack acknowledges d. A failed Ack ends the Subscriber: the broker will
// redeliver the message.
func (s *Subscriber) Ack(d Delivery) error {
	if d.msg == nil || d.msg.Conn == nil {
		return errors.New("bus: ack of a delivery not received by this subscriber")
	}
	if err := d.msg.Conn.Ack(d.msg); err != nil {
		s.fail(fmt.Errorf("ack: %w", err))
		return fmt.Errorf("ack %s: %w", d.ID, err)
	}
	return nil
}

// Close ends the connections without acknowledging anything more; the
// broker redelivers what was not acknowledged. It drains C so that Close
// never blocks on an unread delivery.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeAll()
	s.doneOnce.Do(func() { close(s.done) })
	for range s.ch {
	}
	return nil
}
