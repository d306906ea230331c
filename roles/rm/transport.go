package rm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"

	gvpsip "github.com/opengvp/gvp/internal/sip"
	"github.com/opengvp/gvp/internal/udpio"
)

// Transport limits.
const (
	// udpReadSize is the largest datagram read, in bytes (the UDP maximum).
	udpReadSize = 65535
	// tcpQueueLen is the number of messages queued for one TCP connection before it is
	// considered stuck and closed.
	tcpQueueLen = 1024
	// tcpDialTimeout bounds connecting to a TCP peer.
	tcpDialTimeout = 5 * time.Second
	// tcpWriteTimeout bounds one write to a TCP peer.
	tcpWriteTimeout = 10 * time.Second
	// tcpReadSize is the read buffer of a TCP connection, in bytes.
	tcpReadSize = 16 << 10
)

// sendFilter, when set (by tests), vetoes destinations.
var sendFilter atomic.Pointer[func(peer) bool]

// lookupHook, when set (by tests), replaces the resolver to stay off the network.
var lookupHook atomic.Pointer[func(ctx context.Context, network, host string) ([]netip.Addr, error)]

// peer is a transport address: where a message came from or goes to.
type peer struct {
	proto string // gvpsip.UDP or gvpsip.TCP
	addr  netip.AddrPort
}

func (p peer) String() string { return p.proto + ":" + p.addr.String() }

// msgHandler receives each parsed message with its source.
type msgHandler func(msg sip.Message, from peer)

// badHandler receives the bytes of each message that did not parse.
type badHandler func(data []byte, from peer, err error)

// transport reads and writes SIP over UDP and TCP. Messages are handled on the goroutine that
// read them; handlers must not block.
type transport struct {
	log    zerolog.Logger
	udp    *udpio.Conn
	tcp    *net.TCPListener
	parser *sip.Parser // requests, and everything over TCP
	resp   *sip.Parser // UDP responses
	handle msgHandler
	bad    badHandler
	// inPlace, when set, is offered each UDP message before it is parsed; it returns false for
	// those it leaves to the parser.
	inPlace  func(data []byte, from peer) bool
	maxConns int

	mu     sync.Mutex
	conns  map[netip.AddrPort]*tcpConn
	closed atomic.Bool
	wg     sync.WaitGroup
}

func newTransport(l *gvpsip.Listeners, maxMsg, maxConns int, log zerolog.Logger, h msgHandler, bad badHandler) *transport {
	p := sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyHeaders)))
	p.MaxMessageLength = maxMsg
	rp := sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyResponseHeaders)))
	rp.MaxMessageLength = maxMsg
	var udp *udpio.Conn
	if l.UDP != nil {
		udp = udpio.New(l.UDP)
	}
	return &transport{log: log, udp: udp, tcp: l.TCP, parser: p, resp: rp, handle: h, bad: bad,
		maxConns: maxConns, conns: map[netip.AddrPort]*tcpConn{}}
}

// start launches the readers: one UDP reader per CPU and the TCP acceptor.
func (t *transport) start() {
	if t.udp != nil {
		n := runtime.GOMAXPROCS(0)
		for i := 0; i < n; i++ {
			t.wg.Add(1)
			go t.readUDP()
		}
	}
	if t.tcp != nil {
		t.wg.Add(1)
		go t.acceptTCP()
	}
}

// close stops the readers and closes every connection.
func (t *transport) close() {
	t.closed.Store(true)
	if t.udp != nil {
		t.udp.Close()
	}
	if t.tcp != nil {
		t.tcp.Close()
	}
	t.mu.Lock()
	conns := make([]*tcpConn, 0, len(t.conns))
	for _, c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	t.wg.Wait()
}

func (t *transport) readUDP() {
	defer t.wg.Done()
	r := t.udp.NewReader(make([]byte, udpReadSize))
	for {
		data, addr, err := r.Read()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn().Err(err).Msg("udp read")
			continue
		}
		if isKeepAlive(data) {
			continue
		}
		from := peer{proto: gvpsip.UDP, addr: unmap(addr)}
		if t.inPlace != nil && t.inPlace(data, from) {
			continue
		}
		parser := t.parser
		if bytes.HasPrefix(data, sipVersionPrefix) {
			parser = t.resp
		}
		msg, err := parser.ParseSIP(data)
		if err != nil {
			t.bad(data, from, err)
			continue
		}
		t.handle(msg, from)
	}
}

// isKeepAlive reports whether b holds only CR, LF, NUL and spaces (RFC 5626 keep-alives).
func isKeepAlive(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' && c != 0 && c != ' ' {
			return false
		}
	}
	return true
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (t *transport) acceptTCP() {
	defer t.wg.Done()
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn().Err(err).Msg("tcp accept")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ra := unmap(c.RemoteAddr().(*net.TCPAddr).AddrPort())
		tc := t.newConn(ra)
		if tc == nil {
			c.Close()
			continue
		}
		tc.attach(c)
	}
}

// send writes data to p. UDP writes happen now; TCP data is queued on the connection to p,
// which is dialled when there is none.
func (t *transport) send(p peer, data []byte) error {
	if f := sendFilter.Load(); f != nil && !(*f)(p) {
		return errors.New("destination refused by filter")
	}
	switch p.proto {
	case gvpsip.UDP:
		if t.udp == nil {
			return errors.New("udp is not enabled")
		}
		return t.udp.WriteTo(data, p.addr)
	case gvpsip.TCP:
		if t.tcp == nil {
			return errors.New("tcp is not enabled")
		}
		c := t.conn(p.addr)
		if c == nil {
			return errors.New("too many tcp connections")
		}
		return c.enqueue(data)
	}
	return fmt.Errorf("unsupported transport %q", p.proto)
}

// conn returns the connection to a, dialling one when there is none.
func (t *transport) conn(a netip.AddrPort) *tcpConn {
	t.mu.Lock()
	c, ok := t.conns[a]
	t.mu.Unlock()
	if ok {
		return c
	}
	c = t.newConn(a)
	if c == nil {
		return nil
	}
	if c.dialing.CompareAndSwap(false, true) {
		go func() {
			d := net.Dialer{Timeout: tcpDialTimeout}
			nc, err := d.Dial("tcp", a.String())
			if err != nil {
				t.log.Debug().Err(err).Str("peer", a.String()).Msg("tcp dial")
				c.close()
				return
			}
			c.attach(nc.(*net.TCPConn))
		}()
	}
	return c
}

// newConn registers a connection to a, or returns the one already there; nil when the
// connection table is full.
func (t *transport) newConn(a netip.AddrPort) *tcpConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.conns[a]; ok {
		return c
	}
	if len(t.conns) >= t.maxConns || t.closed.Load() {
		return nil
	}
	c := &tcpConn{t: t, addr: a, queue: make(chan []byte, tcpQueueLen), done: make(chan struct{})}
	t.conns[a] = c
	return c
}

func (t *transport) forget(c *tcpConn) {
	t.mu.Lock()
	if t.conns[c.addr] == c {
		delete(t.conns, c.addr)
	}
	t.mu.Unlock()
}

// tcpConn is one TCP connection with a write queue, so that no handler blocks on a slow peer.
type tcpConn struct {
	t       *transport
	addr    netip.AddrPort
	queue   chan []byte
	done    chan struct{}
	once    sync.Once
	dialing atomic.Bool
	mu      sync.Mutex
	nc      *net.TCPConn
}

func (c *tcpConn) enqueue(data []byte) error {
	b := make([]byte, len(data))
	copy(b, data)
	select {
	case <-c.done:
		return errors.New("tcp connection closed")
	default:
	}
	select {
	case c.queue <- b:
		return nil
	default:
		c.close()
		return errors.New("tcp connection stuck: write queue full")
	}
}

// attach starts the reader and writer on nc.
func (c *tcpConn) attach(nc *net.TCPConn) {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	select {
	case <-c.done:
		nc.Close()
		return
	default:
	}
	c.t.wg.Add(2)
	go c.writeLoop(nc)
	go c.readLoop(nc)
}

func (c *tcpConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.mu.Lock()
		if c.nc != nil {
			c.nc.Close()
		}
		c.mu.Unlock()
		c.t.forget(c)
	})
}

func (c *tcpConn) writeLoop(nc *net.TCPConn) {
	defer c.t.wg.Done()
	w := bufio.NewWriterSize(nc, 16<<10)
	for {
		select {
		case <-c.done:
			return
		case b := <-c.queue:
			_ = nc.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
			_, err := w.Write(b)
			// Batch what is already queued into one write.
			for err == nil && len(c.queue) > 0 && w.Buffered() < 12<<10 {
				_, err = w.Write(<-c.queue)
			}
			if err == nil {
				err = w.Flush()
			}
			if err != nil {
				c.t.log.Debug().Err(err).Str("peer", c.addr.String()).Msg("tcp write")
				c.close()
				return
			}
		}
	}
}

func (c *tcpConn) readLoop(nc *net.TCPConn) {
	defer c.t.wg.Done()
	defer c.close()
	from := peer{proto: gvpsip.TCP, addr: c.addr}
	ps := c.t.parser.NewSIPStream()
	defer ps.Close()
	buf := make([]byte, tcpReadSize)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			return
		}
		err = ps.ParseSIPStream(buf[:n], func(m sip.Message) { c.t.handle(m, from) })
		if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			// No message boundary to resynchronise on: answer what can be recovered and
			// close the connection.
			c.t.bad(ps.Buffer().Bytes(), from, err)
			return
		}
	}
}

// lazyHeaders are headers of a request that rm neither reads on its hot path nor changes: they
// are kept as text when a message is parsed, and so forwarded byte for byte; sipgo parses one on
// first access (res.Contact() for a stray 2xx, for instance) and keeps the result.
var lazyHeaders = []string{"contact", "m", "content-type", "c", "record-route", "refer-to", "referred-by"}

// lazyResponseHeaders are, for responses, lazyHeaders and the headers rm reads only off its hot
// path (To and From for the ACK of a non-2xx, the BYE of a stray 2xx) or never (Call-ID,
// request-only headers). A response's Vias stay parsed: rm removes the top one.
var lazyResponseHeaders = append([]string{"from", "f", "to", "t", "call-id", "i", "max-forwards", "route"},
	lazyHeaders...)

// sipVersionPrefix starts the status line of a response.
var sipVersionPrefix = []byte("SIP/")

// proxyHeaderParsers returns sipgo's header parsers without the lazy ones.
func proxyHeaderParsers(lazy []string) map[string]sip.HeaderParser {
	m := map[string]sip.HeaderParser{}
	for k, v := range sip.DefaultHeadersParser() {
		m[k] = v
	}
	for _, k := range lazy {
		delete(m, k)
	}
	return m
}

// writeMsg serialises m into a pooled buffer and sends it to p.
func (t *transport) writeMsg(p peer, m wireMessage) error {
	b := getBuf()
	writeMessage(b, m)
	err := t.send(p, b.Bytes())
	putBuf(b)
	return err
}

// wireMessage is a request or a response.
type wireMessage interface {
	sip.Message
	StartLineWrite(io.StringWriter)
	Headers() []sip.Header
}

// writeMessage writes m exactly as sipgo's StringWrite does, without its per-message copies
// (the body converted to a string, URIs, Vias and numbers formatted into strings first, an
// IPv6 test that parses every host).
func writeMessage(b *bytes.Buffer, m wireMessage) {
	switch m := m.(type) {
	case *sip.Request:
		b.WriteString(string(m.Method))
		b.WriteByte(' ')
		writeURI(b, &m.Recipient)
		b.WriteByte(' ')
		b.WriteString(m.SipVersion)
	case *sip.Response:
		b.WriteString(m.SipVersion)
		b.WriteByte(' ')
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(m.StatusCode), 10))
		b.WriteByte(' ')
		b.WriteString(m.Reason)
	default:
		m.StartLineWrite(b)
	}
	b.WriteString("\r\n")
	for _, h := range m.Headers() {
		writeHeader(b, h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(m.Body())
}

// writeHeader writes h as its StringWrite does.
func writeHeader(b *bytes.Buffer, h sip.Header) {
	switch h := h.(type) {
	case *sip.ViaHeader:
		writeVia(b, h)
	case *sip.MaxForwardsHeader:
		b.WriteString("Max-Forwards: ")
		b.Write(strconv.AppendUint(b.AvailableBuffer(), uint64(*h), 10))
	case *sip.ContentLengthHeader:
		b.WriteString("Content-Length: ")
		b.Write(strconv.AppendUint(b.AvailableBuffer(), uint64(*h), 10))
	case *sip.FromHeader:
		b.WriteString("From: ")
		writeNameAddr(b, h.DisplayName, &h.Address, h.Params)
	case *sip.ToHeader:
		b.WriteString("To: ")
		writeNameAddr(b, h.DisplayName, &h.Address, h.Params)
	case *sip.RouteHeader:
		b.WriteString("Route: ")
		writeNameAddr(b, "", &h.Address, nil)
	case *sip.RecordRouteHeader:
		b.WriteString("Record-Route: ")
		writeNameAddr(b, "", &h.Address, nil)
	default:
		h.StringWrite(b)
	}
}

// writeNameAddr writes ["name" ]<uri>[;params].
func writeNameAddr(b *bytes.Buffer, name string, u *sip.Uri, params sip.HeaderParams) {
	if name != "" {
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString("\" ")
	}
	b.WriteByte('<')
	writeURI(b, u)
	b.WriteByte('>')
	if params != nil && params.Length() > 0 {
		b.WriteByte(';')
		params.ToStringWrite(';', b)
	}
}

// writeURI writes u as sipgo's Uri.StringWrite does.
func writeURI(b *bytes.Buffer, u *sip.Uri) {
	if u.Raw() != "" || strings.IndexByte(u.Host, ':') >= 0 {
		u.StringWrite(b) // a non-SIP URI, or an IPv6 host that sipgo brackets
		return
	}
	if u.Scheme == "" {
		b.WriteString("sip")
	} else {
		b.WriteString(u.Scheme)
	}
	b.WriteByte(':')
	if u.HierarhicalSlashes {
		b.WriteString("//")
	}
	if u.User != "" {
		b.WriteString(u.User)
		if u.Password != "" {
			b.WriteByte(':')
			b.WriteString(u.Password)
		}
		b.WriteByte('@')
	}
	b.WriteString(u.Host)
	if u.Port > 0 {
		b.WriteByte(':')
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(u.Port), 10))
	}
	if u.UriParams != nil && u.UriParams.Length() > 0 {
		b.WriteByte(';')
		u.UriParams.ToStringWrite(';', b)
	}
	if u.Headers != nil && u.Headers.Length() > 0 {
		b.WriteByte('?')
		u.Headers.ToStringWrite('&', b)
	}
}

// writeVia writes a Via header as sipgo's ViaHeader.StringWrite does.
func writeVia(b *bytes.Buffer, h *sip.ViaHeader) {
	if strings.IndexByte(h.Host, ':') >= 0 {
		h.StringWrite(b) // an IPv6 host: sipgo brackets it
		return
	}
	b.WriteString("Via: ")
	b.WriteString(h.ProtocolName)
	b.WriteByte('/')
	b.WriteString(h.ProtocolVersion)
	b.WriteByte('/')
	b.WriteString(h.Transport)
	b.WriteByte(' ')
	b.WriteString(h.Host)
	if h.Port > 0 {
		b.WriteByte(':')
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(h.Port), 10))
	}
	if h.Params != nil && h.Params.Length() > 0 {
		b.WriteByte(';')
		h.Params.ToStringWrite(';', b)
	}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		bufPool.Put(b)
	}
}

// resolve turns host:port into an address; host names go through the resolver with a timeout.
func resolve(ctx context.Context, host string, port int) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(trimBrackets(host)); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lookup := net.DefaultResolver.LookupNetIP
	if h := lookupHook.Load(); h != nil {
		lookup = *h
	}
	ips, err := lookup(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
