package udpio

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysConn is the socket's descriptor and address family, or fd -1 when raw calls are not used.
type sysConn struct {
	fd     int
	domain int
	local  net.Addr
}

func (s *sysConn) init(c *net.UDPConn) {
	s.fd = -1
	s.local = c.LocalAddr()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var fd, domain int
	var serr error
	if err := rc.Control(func(f uintptr) {
		fd = int(f)
		domain, serr = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || serr != nil {
		return
	}
	if domain != unix.AF_INET && domain != unix.AF_INET6 {
		return
	}
	s.fd, s.domain = fd, domain
}

// writeTo sends b with one raw sendto. It returns false, leaving the send to the net package,
// when the raw call is not used or the send buffer is full (the net package waits for room).
func (s *sysConn) writeTo(b []byte, a netip.AddrPort) (bool, error) {
	if s.fd < 0 || a.Addr().Zone() != "" {
		return false, nil
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	var e syscall.Errno
	switch s.domain {
	case unix.AF_INET:
		ip := a.Addr().Unmap()
		if !ip.Is4() {
			return false, nil // the net package reports the mismatch
		}
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&sa.Port, a.Port())
		_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	default:
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.Addr().As16()}
		putPort(&sa.Port, a.Port())
		_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	switch e {
	case 0:
		return true, nil
	case unix.EAGAIN, unix.EINTR:
		return false, nil
	}
	return true, &net.OpError{Op: "write", Net: "udp", Source: s.local, Addr: net.UDPAddrFromAddrPort(a),
		Err: os.NewSyscallError("sendto", e)}
}

// putPort stores port in a sockaddr's port field, in network byte order on any host.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// getPort reads a sockaddr's port field (network byte order).
func getPort(src *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(src))
	return uint16(b[0])<<8 | uint16(b[1])
}

// sysReader reads with raw recvfrom calls made through the connection's RawConn.Read, which
// waits in the runtime's poller while there is nothing to read.
type sysReader struct {
	rc    syscall.RawConn
	local net.Addr
	buf   []byte
	f     func(uintptr) bool // r.recv, bound once
	n     int
	from  netip.AddrPort
	errno syscall.Errno
	sa    unix.RawSockaddrAny
}

func (r *sysReader) init(c *net.UDPConn, buf []byte) {
	if len(buf) == 0 {
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	r.rc, r.local, r.buf = rc, c.LocalAddr(), buf
	r.f = r.recv
}

func (r *sysReader) read() (int, netip.AddrPort, bool, error) {
	if r.rc == nil {
		return 0, netip.AddrPort{}, false, nil
	}
	if err := r.rc.Read(r.f); err != nil {
		return 0, netip.AddrPort{}, true, &net.OpError{Op: "read", Net: "udp", Addr: r.local, Err: err}
	}
	if r.errno != 0 {
		return 0, netip.AddrPort{}, true, &net.OpError{Op: "read", Net: "udp", Addr: r.local,
			Err: os.NewSyscallError("recvfrom", r.errno)}
	}
	return r.n, r.from, true, nil
}

// recv is one recvfrom; false asks RawConn.Read to wait until the socket is readable.
func (r *sysReader) recv(fd uintptr) bool {
	for {
		l := uint32(unsafe.Sizeof(r.sa))
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)),
			0, uintptr(unsafe.Pointer(&r.sa)), uintptr(unsafe.Pointer(&l)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.errno, r.n, r.from = e, int(n), netip.AddrPort{}
		if e != 0 {
			r.n = 0
			return true
		}
		switch r.sa.Addr.Family {
		case unix.AF_INET:
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sa))
			r.from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(&sa.Port))
		case unix.AF_INET6:
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.sa))
			ip := netip.AddrFrom16(sa.Addr)
			if sa.Scope_id != 0 {
				ip = ip.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
			}
			r.from = netip.AddrPortFrom(ip, getPort(&sa.Port))
		}
		return true
	}
}
