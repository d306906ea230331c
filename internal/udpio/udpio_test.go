package udpio

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func listen(t testing.TB, network, addr string) *Conn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	u := New(c)
	t.Cleanup(func() { u.Close() })
	return u
}

func addrOf(u *Conn) netip.AddrPort { return u.UDPConn().LocalAddr().(*net.UDPAddr).AddrPort() }

// readWithin reads one datagram, failing the test if none comes within d.
func readWithin(t *testing.T, r *Reader, d time.Duration) ([]byte, netip.AddrPort) {
	t.Helper()
	type res struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		b, from, err := r.Read()
		ch <- res{append([]byte(nil), b...), from, err}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("read: %v", x.err)
		}
		return x.b, x.from
	case <-time.After(d):
		t.Fatalf("no datagram within %v", d)
	}
	return nil, netip.AddrPort{}
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name                string
		netA, addrA         string
		netB, addrB, target string
		wantFrom            string // the source as the receiver sees it ("" = a's own address)
	}{
		{name: "ipv4", netA: "udp4", addrA: "127.0.0.1:0", netB: "udp4", addrB: "127.0.0.1:0"},
		{name: "ipv6", netA: "udp6", addrA: "[::1]:0", netB: "udp6", addrB: "[::1]:0"},
		// A dual-stack socket writes to an IPv4 address through its v4-mapped form; the IPv4
		// receiver sees the plain IPv4 source.
		{name: "dual-stack to ipv4", netA: "udp", addrA: "[::]:0", netB: "udp4", addrB: "127.0.0.1:0", wantFrom: "127.0.0.1"},
		// A v4-mapped destination on an IPv4 socket is sent to the IPv4 address.
		{name: "mapped on ipv4", netA: "udp4", addrA: "127.0.0.1:0", netB: "udp4", addrB: "127.0.0.1:0", target: "::ffff:127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := listen(t, tc.netA, tc.addrA), listen(t, tc.netB, tc.addrB)
			dst := addrOf(b)
			if tc.target != "" {
				dst = netip.AddrPortFrom(netip.MustParseAddr(tc.target), dst.Port())
			}
			rb, ra := b.NewReader(make([]byte, 2048)), a.NewReader(make([]byte, 2048))
			for i := 0; i < 3; i++ {
				msg := []byte(fmt.Sprintf("OPTIONS sip:x SIP/2.0 #%d", i))
				if err := a.WriteTo(msg, dst); err != nil {
					t.Fatalf("write: %v", err)
				}
				got, from := readWithin(t, rb, 5*time.Second)
				if !bytes.Equal(got, msg) {
					t.Fatalf("got %q, want %q", got, msg)
				}
				if from.Port() != addrOf(a).Port() {
					t.Fatalf("source port %d, want %d", from.Port(), addrOf(a).Port())
				}
				if tc.wantFrom != "" && from.Addr().Unmap().String() != tc.wantFrom {
					t.Fatalf("source %v, want %s", from, tc.wantFrom)
				}
				// And back to the source as read: the reply reaches a.
				if err := b.WriteTo([]byte("SIP/2.0 200 OK"), from); err != nil {
					t.Fatalf("reply: %v", err)
				}
				if got, _ := readWithin(t, ra, 5*time.Second); string(got) != "SIP/2.0 200 OK" {
					t.Fatalf("reply %q", got)
				}
			}
		})
	}
}

func TestEmptyAndTruncated(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	r := b.NewReader(make([]byte, 8))
	if err := a.WriteTo(nil, addrOf(b)); err != nil {
		t.Fatalf("empty datagram: %v", err)
	}
	if got, _ := readWithin(t, r, 5*time.Second); len(got) != 0 {
		t.Fatalf("empty datagram read as %q", got)
	}
	if err := a.WriteTo([]byte("0123456789abcdef"), addrOf(b)); err != nil {
		t.Fatal(err)
	}
	if got, _ := readWithin(t, r, 5*time.Second); string(got) != "01234567" {
		t.Fatalf("long datagram read as %q, want its first 8 bytes", got)
	}
}

func TestWriteErrors(t *testing.T) {
	a := listen(t, "udp4", "127.0.0.1:0")
	if err := a.WriteTo([]byte("x"), netip.MustParseAddrPort("[::1]:5060")); err == nil {
		t.Fatal("an IPv6 destination on an IPv4 socket was accepted")
	}
	big := make([]byte, 70000) // over the UDP maximum: EMSGSIZE from sendto
	err := a.WriteTo(big, addrOf(a))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Fatalf("oversized datagram: %v, want a write *net.OpError", err)
	}
}

func TestCloseEndsReadsAndWrites(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		r := b.NewReader(make([]byte, 1500))
		go func() {
			for {
				if _, _, err := r.Read(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Writers run while the receiver closes; none may fail with anything but ErrClosed
	// (the race detector checks Close against them).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.WriteTo([]byte("x"), addrOf(a)); err != nil && !errors.Is(err, net.ErrClosed) {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a reader still waits after Close")
		}
	}
	close(stop)
	wg.Wait()
	if err := b.WriteTo([]byte("x"), addrOf(a)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
	if err := b.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// BenchmarkWriteTo compares one datagram sent through Conn with net.UDPConn's WriteToUDPAddrPort.
func BenchmarkWriteTo(b *testing.B) {
	dst := listen(b, "udp4", "127.0.0.1:0")
	go func() {
		r := dst.NewReader(make([]byte, 2048))
		for {
			if _, _, err := r.Read(); err != nil {
				return
			}
		}
	}()
	msg := bytes.Repeat([]byte("x"), 500)
	to := addrOf(dst)
	b.Run("udpio", func(b *testing.B) {
		src := listen(b, "udp4", "127.0.0.1:0")
		b.ReportAllocs()
		for b.Loop() {
			if err := src.WriteTo(msg, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net", func(b *testing.B) {
		src := listen(b, "udp4", "127.0.0.1:0")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.UDPConn().WriteToUDPAddrPort(msg, to); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Sending and receiving a datagram allocate nothing (per-packet paths of rm and the media).
func TestNoAllocations(t *testing.T) {
	a, b := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	r := b.NewReader(make([]byte, 1500))
	msg := []byte("RTP packet")
	to := addrOf(b)
	if n := testing.AllocsPerRun(200, func() {
		if err := a.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		if got, _, err := r.Read(); err != nil || len(got) != len(msg) {
			t.Fatalf("read %q, %v", got, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per datagram sent and read", n)
	}
}
