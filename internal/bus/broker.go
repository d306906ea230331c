package bus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/rs/zerolog"
)

// Embedded broker limits.
const (
	// DefaultBrokerPrefetch is the unacknowledged messages one client-ack
	// subscription may hold when it sends no activemq.prefetchSize header.
	DefaultBrokerPrefetch = 1000
	// brokerOutbound is the frames queued for one client; a client that
	// falls this far behind is disconnected (its unacked messages requeue).
	brokerOutbound = 8192
	// brokerErrorLinger bounds the wait for an ERROR frame to be written
	// before the connection closes.
	brokerErrorLinger = time.Second
)

// Broker is the embedded in-process STOMP broker of local mode: STOMP 1.0 to
// 1.2 over TCP, with queues only (every destination is a queue: each message
// goes to one subscriber, round robin), receipts, transactions
// (BEGIN/COMMIT/ABORT of SENDs) and the auto, client and client-individual
// acknowledgement modes with a per-subscription prefetch window (header
// activemq.prefetchSize, as in ActiveMQ). Frames are read and written with
// go-stomp's frame package. It sends no heart-beats (heart-beat:0,0).
//
// It keeps messages in memory only: a message is lost when the broker stops
// before a consumer acknowledges it. Producers therefore spool records on
// disk and delete them only after the broker's receipt, and consumers
// acknowledge only after storing. Each Start gets fresh, empty queues.
//
// It is a broker of our own rather than go-stomp's server package because
// that server (v3.1.3) never matches client-individual acknowledgements and
// panics on the next delivery after a client-mode acknowledgement.
type Broker struct {
	addr string
	log  zerolog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*brokerConn]struct{}
	queues map[string]*brokerQueue
	nextID uint64
	wg     sync.WaitGroup
}

type brokerMsg struct {
	id     uint64
	dest   string
	header *frame.Header
	body   []byte
}

type brokerQueue struct {
	pending []*brokerMsg
	subs    []*brokerSub
	next    int // round-robin cursor
}

type brokerSub struct {
	conn     *brokerConn
	id       string
	dest     string
	ack      string
	prefetch int
	unacked  []*brokerMsg // in delivery order
}

type brokerConn struct {
	b       *Broker
	nc      net.Conn
	out     chan *frame.Frame
	version string
	subs    map[string]*brokerSub
	txs     map[string][]*frame.Frame
	once    sync.Once
	closed  chan struct{}
}

// NewBroker returns a broker that will listen on addr (DefaultAddr when
// empty; port 0 picks a free port).
func NewBroker(addr string, log zerolog.Logger) *Broker {
	if addr == "" {
		addr = DefaultAddr
	}
	return &Broker{addr: addr, log: log}
}

// Start listens and serves in the background, and returns the bound address.
func (b *Broker) Start() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		return "", errors.New("bus: broker already started")
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return "", fmt.Errorf("start stomp broker on %s: %w", b.addr, err)
	}
	b.ln = ln
	b.conns = make(map[*brokerConn]struct{})
	b.queues = make(map[string]*brokerQueue)
	b.wg.Add(1)
	go b.accept(ln)
	b.log.Info().Str("addr", ln.Addr().String()).Msg("embedded stomp broker listening")
	return ln.Addr().String(), nil
}

// Addr returns the bound address, or "" when not started.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Stop closes the listener and all client connections and waits for their
// goroutines. Messages not yet acknowledged are dropped. Stopping a stopped
// broker does nothing.
func (b *Broker) Stop() error {
	b.mu.Lock()
	if b.ln == nil {
		b.mu.Unlock()
		return nil
	}
	err := b.ln.Close()
	conns := make([]*brokerConn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.ln = nil
	b.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	b.wg.Wait()
	b.mu.Lock()
	b.conns, b.queues = nil, nil
	b.mu.Unlock()
	return err
}

func (b *Broker) accept(ln net.Listener) {
	defer b.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := &brokerConn{b: b, nc: nc, out: make(chan *frame.Frame, brokerOutbound),
			subs: map[string]*brokerSub{}, txs: map[string][]*frame.Frame{}, closed: make(chan struct{})}
		b.mu.Lock()
		if b.conns == nil || b.ln != ln {
			b.mu.Unlock()
			_ = nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(2)
		go c.writeLoop()
		go c.readLoop()
	}
}

func (c *brokerConn) close() {
	c.once.Do(func() {
		close(c.closed)
		_ = c.nc.Close()
	})
}

// send queues f for the client; a client too slow to drain its queue is
// disconnected. Callers hold b.mu or own the connection.
func (c *brokerConn) send(f *frame.Frame) {
	select {
	case c.out <- f:
	case <-c.closed:
	default:
		c.b.log.Warn().Str("client", c.nc.RemoteAddr().String()).Msg("embedded broker: client too slow, disconnecting")
		c.close()
	}
}

func (c *brokerConn) writeLoop() {
	defer c.b.wg.Done()
	w := frame.NewWriter(c.nc)
	for {
		select {
		case <-c.closed:
			return
		case f := <-c.out:
			if f == closeFrame {
				c.close()
				return
			}
			if err := w.Write(f); err != nil {
				c.close()
				return
			}
		}
	}
}

func (c *brokerConn) readLoop() {
	defer c.b.wg.Done()
	defer c.cleanup()
	r := frame.NewReader(c.nc)
	connected := false
	for {
		f, err := r.Read()
		if err != nil {
			return
		}
		if f == nil {
			continue // heart-beat
		}
		if !connected {
			if f.Command != frame.CONNECT && f.Command != frame.STOMP {
				c.fail(f, "expected CONNECT")
				return
			}
			if err := c.connect(f); err != nil {
				c.fail(f, err.Error())
				return
			}
			connected = true
			continue
		}
		if err := c.handle(f); err != nil {
			c.fail(f, err.Error())
			return
		}
		if f.Command == frame.DISCONNECT {
			return
		}
	}
}

// closeFrame asks the writer to close the connection once the frames
// queued before it are written.
var closeFrame = &frame.Frame{}

// fail sends an ERROR frame and closes the connection after it is written.
func (c *brokerConn) fail(f *frame.Frame, msg string) {
	e := frame.New(frame.ERROR, frame.Message, msg)
	if r, ok := f.Header.Contains(frame.Receipt); ok {
		e.Header.Set(frame.ReceiptId, r)
	}
	c.send(e)
	c.send(closeFrame)
	select {
	case <-c.closed:
	case <-time.After(brokerErrorLinger):
	}
}

func (c *brokerConn) connect(f *frame.Frame) error {
	c.version = "1.0"
	if acc, ok := f.Header.Contains(frame.AcceptVersion); ok {
		c.version = ""
		for _, v := range []string{"1.2", "1.1", "1.0"} {
			for _, a := range strings.Split(acc, ",") {
				if strings.TrimSpace(a) == v && c.version == "" {
					c.version = v
				}
			}
		}
		if c.version == "" {
			return fmt.Errorf("unsupported versions %q", acc)
		}
	}
	c.send(frame.New(frame.CONNECTED, frame.Version, c.version, frame.HeartBeat, "0,0",
		frame.Server, "gvp-embedded"))
	return nil
}

func (c *brokerConn) receipt(f *frame.Frame) {
	if r, ok := f.Header.Contains(frame.Receipt); ok {
		c.send(frame.New(frame.RECEIPT, frame.ReceiptId, r))
	}
}

func (c *brokerConn) handle(f *frame.Frame) error {
	b := c.b
	switch f.Command {
	case frame.SEND:
		if f.Header.Get(frame.Destination) == "" {
			return errors.New("SEND without destination")
		}
		if tx, ok := f.Header.Contains(frame.Transaction); ok {
			if _, open := c.txs[tx]; !open {
				return fmt.Errorf("unknown transaction %q", tx)
			}
			c.txs[tx] = append(c.txs[tx], f)
		} else {
			b.mu.Lock()
			b.enqueueLocked(f)
			b.mu.Unlock()
		}
	case frame.BEGIN:
		tx := f.Header.Get(frame.Transaction)
		if _, open := c.txs[tx]; open || tx == "" {
			return fmt.Errorf("cannot begin transaction %q", tx)
		}
		c.txs[tx] = nil
	case frame.COMMIT, frame.ABORT:
		tx := f.Header.Get(frame.Transaction)
		frames, open := c.txs[tx]
		if !open {
			return fmt.Errorf("unknown transaction %q", tx)
		}
		delete(c.txs, tx)
		if f.Command == frame.COMMIT {
			b.mu.Lock()
			for _, sf := range frames {
				b.enqueueLocked(sf)
			}
			b.mu.Unlock()
		}
	case frame.SUBSCRIBE:
		if err := c.subscribe(f); err != nil {
			return err
		}
	case frame.UNSUBSCRIBE:
		b.mu.Lock()
		sub := c.subs[f.Header.Get(frame.Id)]
		if sub != nil {
			b.dropSubLocked(sub)
		}
		b.mu.Unlock()
	case frame.ACK, frame.NACK:
		if err := c.ack(f); err != nil {
			return err
		}
	case frame.DISCONNECT:
	default:
		return fmt.Errorf("unsupported command %q", f.Command)
	}
	c.receipt(f)
	return nil
}

func (c *brokerConn) subscribe(f *frame.Frame) error {
	dest, id := f.Header.Get(frame.Destination), f.Header.Get(frame.Id)
	if dest == "" {
		return errors.New("SUBSCRIBE without destination")
	}
	if id == "" && c.version != "1.0" {
		return errors.New("SUBSCRIBE without id")
	}
	mode := f.Header.Get(frame.Ack)
	switch mode {
	case "":
		mode = frame.AckAuto
	case frame.AckAuto, frame.AckClient, frame.AckClientIndividual:
	default:
		return fmt.Errorf("unsupported ack mode %q", mode)
	}
	prefetch := DefaultBrokerPrefetch
	if p, err := strconv.Atoi(f.Header.Get("activemq.prefetchSize")); err == nil && p > 0 {
		prefetch = p
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := c.subs[id]; dup {
		return fmt.Errorf("duplicate subscription id %q", id)
	}
	sub := &brokerSub{conn: c, id: id, dest: dest, ack: mode, prefetch: prefetch}
	c.subs[id] = sub
	q := b.queueLocked(dest)
	q.subs = append(q.subs, sub)
	b.dispatchLocked(q)
	return nil
}

// ack handles ACK and NACK in STOMP 1.2 (id header) and 1.0/1.1
// (message-id header) forms.
func (c *brokerConn) ack(f *frame.Frame) error {
	key := f.Header.Get(frame.Id)
	if c.version != "1.2" || key == "" {
		key = f.Header.Get(frame.MessageId)
	}
	id, err := strconv.ParseUint(key, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: bad message id %q", f.Command, key)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sub := range c.subs {
		for i, m := range sub.unacked {
			if m.id != id {
				continue
			}
			var done []*brokerMsg
			if sub.ack == frame.AckClient {
				done = sub.unacked[:i+1] // cumulative
			} else {
				done = sub.unacked[i : i+1]
			}
			rest := make([]*brokerMsg, 0, len(sub.unacked)-len(done))
			rest = append(rest, sub.unacked[:i+1-len(done)]...)
			rest = append(rest, sub.unacked[i+1:]...)
			sub.unacked = rest
			q := b.queueLocked(sub.dest)
			if f.Command == frame.NACK {
				q.pending = append(append([]*brokerMsg(nil), done...), q.pending...)
			}
			b.dispatchLocked(q)
			return nil
		}
	}
	return nil // already acknowledged or unknown: ignore, like ActiveMQ
}

// cleanup requeues the unacknowledged messages of a closed connection.
func (c *brokerConn) cleanup() {
	c.close()
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sub := range c.subs {
		b.dropSubLocked(sub)
	}
	if b.conns != nil {
		delete(b.conns, c)
	}
}

func (b *Broker) queueLocked(dest string) *brokerQueue {
	q := b.queues[dest]
	if q == nil {
		q = &brokerQueue{}
		if b.queues == nil {
			b.queues = map[string]*brokerQueue{}
		}
		b.queues[dest] = q
	}
	return q
}

// dropSubLocked removes sub and puts its unacknowledged messages back at
// the head of its queue, in order.
func (b *Broker) dropSubLocked(sub *brokerSub) {
	delete(sub.conn.subs, sub.id)
	q := b.queueLocked(sub.dest)
	for i, s := range q.subs {
		if s == sub {
			q.subs = append(q.subs[:i], q.subs[i+1:]...)
			break
		}
	}
	if len(sub.unacked) > 0 {
		q.pending = append(append([]*brokerMsg(nil), sub.unacked...), q.pending...)
		sub.unacked = nil
	}
	b.dispatchLocked(q)
}

func (b *Broker) enqueueLocked(f *frame.Frame) {
	b.nextID++
	h := f.Header.Clone()
	for _, k := range []string{frame.Receipt, frame.Transaction, frame.ContentLength} {
		h.Del(k)
	}
	m := &brokerMsg{id: b.nextID, dest: f.Header.Get(frame.Destination), header: h, body: f.Body}
	q := b.queueLocked(m.dest)
	q.pending = append(q.pending, m)
	b.dispatchLocked(q)
}

// dispatchLocked hands pending messages to subscribers with room, round
// robin.
func (b *Broker) dispatchLocked(q *brokerQueue) {
	for len(q.pending) > 0 && len(q.subs) > 0 {
		var sub *brokerSub
		for range len(q.subs) {
			s := q.subs[q.next%len(q.subs)]
			q.next++
			if s.ack == frame.AckAuto || len(s.unacked) < s.prefetch {
				sub = s
				break
			}
		}
		if sub == nil {
			return // every subscriber is full
		}
		m := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		f := &frame.Frame{Command: frame.MESSAGE, Header: m.header.Clone(), Body: m.body}
		idStr := strconv.FormatUint(m.id, 10)
		f.Header.Set(frame.Subscription, sub.id)
		f.Header.Set(frame.MessageId, idStr)
		if sub.ack != frame.AckAuto {
			f.Header.Set(frame.Ack, idStr)
			sub.unacked = append(sub.unacked, m)
		}
		sub.conn.send(f)
	}
}
