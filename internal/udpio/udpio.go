// Package udpio sends and receives datagrams on a *net.UDPConn for servers that handle every
// datagram as it comes (SIP proxies, RTP senders).
//
// On Linux the datagrams move with raw sendto/recvfrom calls on the connection's non-blocking
// socket, which return at once, instead of the Go runtime's system-call path. That path hands
// the goroutine's processor over whenever a call seems to block for more than 20 µs; on loopback
// a sendto also delivers the datagram and wakes its receiver, and on a busy host it is
// preempted often enough that this cost rm about one extra context switch per call.
// A full send buffer, or a read with nothing to read, falls back to the runtime's poller, so
// nothing ever blocks a thread. Elsewhere the net package's methods are used. Deadlines set on
// the connection do not apply to the raw path: it never waits.
package udpio

import (
	"net"
	"net/netip"
	"sync"
)

// Conn is a UDP socket. Writes and reads may run concurrently, with each other and with Close.
type Conn struct {
	c *net.UDPConn

	// mu is held shared around each raw write and exclusively by Close, so that the descriptor
	// stays open (and is not reused) under a raw write.
	mu     sync.RWMutex
	closed bool
	sys    sysConn
}

// New wraps c. c is owned by the Conn from then on: close it with Conn.Close.
func New(c *net.UDPConn) *Conn {
	u := &Conn{c: c}
	u.sys.init(c)
	return u
}

// UDPConn is the wrapped connection (for its address and options).
func (u *Conn) UDPConn() *net.UDPConn { return u.c }

// WriteTo sends b as one datagram to a.
func (u *Conn) WriteTo(b []byte, a netip.AddrPort) error {
	u.mu.RLock()
	if u.closed {
		u.mu.RUnlock()
		return net.ErrClosed
	}
	done, err := u.sys.writeTo(b, a)
	u.mu.RUnlock()
	if done {
		return err
	}
	// The net package waits for room, and Close interrupts that wait.
	_, err = u.c.WriteToUDPAddrPort(b, a)
	return err
}

// Close closes the socket once the raw writes in flight have returned (they never wait).
// Readers waiting in Read return net.ErrClosed.
func (u *Conn) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return net.ErrClosed
	}
	u.closed = true
	u.mu.Unlock()
	return u.c.Close()
}

// Reader reads datagrams into the buffer it was made with. One goroutine uses a Reader; several
// Readers may read from one Conn.
type Reader struct {
	u   *Conn
	buf []byte
	sys sysReader
}

// NewReader returns a Reader that reads into buf: datagrams longer than buf are truncated, as
// net.UDPConn's reads truncate them.
func (u *Conn) NewReader(buf []byte) *Reader {
	r := &Reader{u: u, buf: buf}
	r.sys.init(u.c, r.buf)
	return r
}

// Read waits for the next datagram and returns it with its source. The data is valid until the
// next Read. After Close it returns an error wrapping net.ErrClosed.
func (r *Reader) Read() ([]byte, netip.AddrPort, error) {
	if n, from, done, err := r.sys.read(); done {
		return r.buf[:n], from, err
	}
	n, from, err := r.u.c.ReadFromUDPAddrPort(r.buf)
	return r.buf[:n], from, err
}
