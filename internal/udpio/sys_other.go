//go:build !linux

package udpio

import (
	"net"
	"net/netip"
)

type sysConn struct{}

func (*sysConn) init(*net.UDPConn) {}

func (*sysConn) writeTo([]byte, netip.AddrPort) (bool, error) { return false, nil }

type sysReader struct{}

func (*sysReader) init(*net.UDPConn, []byte) {}

func (*sysReader) read() (int, netip.AddrPort, bool, error) { return 0, netip.AddrPort{}, false, nil }
