// Package sip holds gvp's shared SIP plumbing on top of github.com/emiago/sipgo: binding UDP and
// TCP listeners on one host:port (port 0 included), building sipgo user agents and servers on
// them, header helpers for proxies (Via, Record-Route, Route, Max-Forwards), response helpers
// (Retry-After, `code[;reason]` responses) and the recovery of a 400 Bad Request answer from a
// request that does not parse.
//
// Package-level names avoid sipgo's: import this package as gvpsip next to sipgo's sip package.
package sip

import (
	"errors"
	"fmt"
	"github.com/opengvp/gvp/internal/config"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Transport names.
const (
	UDP = "udp"
	TCP = "tcp"
)

// Defaults of ListenConfig.
const (
	// DefaultSocketBuffer is the UDP socket receive and send buffer asked of the kernel, in
	// bytes (4 MiB): a proxy under load otherwise drops datagrams in bursts. The kernel caps
	// it at net.core.rmem_max / wmem_max.
	DefaultSocketBuffer = 4 << 20
	// bindAttempts bounds the retries of a port-0 bind whose kernel-chosen UDP port turns out
	// to be taken for TCP.
	bindAttempts = 32
)

// ListenConfig says where and how to listen.
type ListenConfig struct {
	// Addr is host:port for every transport; port 0 lets the kernel choose one port used by
	// all of them.
	Addr string
	// Transports lists "udp" and/or "tcp".
	Transports []string
	// SocketBuffer is the UDP receive/send buffer in bytes; 0 means DefaultSocketBuffer and a
	// negative value leaves the kernel default.
	SocketBuffer int
}

// Listeners are bound sockets sharing one port.
type Listeners struct {
	// UDP is nil unless "udp" was asked for.
	UDP *net.UDPConn
	// TCP is nil unless "tcp" was asked for.
	TCP  *net.TCPListener
	addr netip.AddrPort
}

// Listen binds every transport of cfg on cfg.Addr. With port 0 it binds the first transport on
// a kernel-chosen port and the others on the same port, retrying with a new port when that one
// is taken.
func Listen(cfg ListenConfig) (*Listeners, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", cfg.Addr)
	}
	var wantUDP, wantTCP bool
	for _, t := range cfg.Transports {
		switch t {
		case UDP:
			wantUDP = true
		case TCP:
			wantTCP = true
		default:
			return nil, fmt.Errorf("unknown transport %q", t)
		}
	}
	if !wantUDP && !wantTCP {
		return nil, errors.New("no transport to listen on")
	}
	attempts := 1
	if port == 0 {
		attempts = bindAttempts
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		l, err := bindOnce(host, port, wantUDP, wantTCP, cfg.SocketBuffer)
		if err == nil {
			return l, nil
		}
		lastErr = err
		if port != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, lastErr
}

func bindOnce(host string, port int, wantUDP, wantTCP bool, buf int) (*Listeners, error) {
	l := &Listeners{}
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	if wantUDP {
		ua, err := net.ResolveUDPAddr("udp", hp)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", hp, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", hp, err)
		}
		if buf == 0 {
			buf = DefaultSocketBuffer
		}
		if buf > 0 {
			// Best effort: the kernel caps the size, which is not an error.
			_ = c.SetReadBuffer(buf)
			_ = c.SetWriteBuffer(buf)
		}
		l.UDP = c
		l.addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
		hp = l.addr.String()
	}
	if wantTCP {
		ta, err := net.ResolveTCPAddr("tcp", hp)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("resolve %s: %w", hp, err)
		}
		ln, err := net.ListenTCP("tcp", ta)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen tcp %s: %w", hp, err)
		}
		l.TCP = ln
		l.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	}
	return l, nil
}

// Addr returns the bound address (the same port for every transport).
func (l *Listeners) Addr() netip.AddrPort { return l.addr }

// Close closes every listener.
func (l *Listeners) Close() error {
	var errs []error
	if l.UDP != nil {
		errs = append(errs, l.UDP.Close())
	}
	if l.TCP != nil {
		errs = append(errs, l.TCP.Close())
	}
	return errors.Join(errs...)
}

// AdvertiseHost returns the host to put in Via, Record-Route and Contact for a listener bound
// to addr: advertise when set, else the bound IP, else (for an unspecified bind address) the
// first non-loopback IPv4 address of the host, else 127.0.0.1.
func AdvertiseHost(advertise string, addr netip.AddrPort) string {
	if advertise != "" {
		return advertise
	}
	if ip := addr.Addr(); ip.IsValid() && !ip.IsUnspecified() {
		return ip.Unmap().String()
	}
	if ifaces, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaces {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// CheckListen validates a role's SIP listen address and transports; prefix is the key of the
// section ("rm.sip"). Errors name the key.
func CheckListen(prefix, listen string, transports []string) error {
	if err := config.CheckHostPort(prefix+".listen", listen); err != nil {
		return err
	}
	if len(transports) == 0 {
		return config.Errorf(prefix+".transports", "at least one transport is needed")
	}
	for _, t := range transports {
		if t != UDP && t != TCP {
			return config.Errorf(prefix+".transports", "unknown transport %q (want udp or tcp)", t)
		}
	}
	return nil
}
