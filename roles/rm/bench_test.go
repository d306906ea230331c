package rm

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// benchSDP is the body of the benchmark's INVITE and 200, the size of a one-codec offer.
const benchSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-16\r\na=sendrecv\r\n"

// discardPublisher drops billing records.
type discardPublisher struct{}

func (discardPublisher) Publish(billing.Record) error { return nil }

// benchPeer is a UDP endpoint that builds and reads SIP by bytes, without allocating, so that
// a benchmark measures rm rather than its peers.
type benchPeer struct {
	conn *net.UDPConn
	ap   netip.AddrPort
	buf  []byte
	out  []byte
}

func newBenchPeer(b *testing.B) *benchPeer {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	b.Cleanup(func() { c.Close() })
	return &benchPeer{conn: c, ap: c.LocalAddr().(*net.UDPAddr).AddrPort(), buf: make([]byte, 65535),
		out: make([]byte, 0, 4096)}
}

// header returns the value of the first header line named name in msg (full names only).
func header(msg []byte, name string) []byte {
	for len(msg) > 0 {
		i := bytes.Index(msg, []byte("\r\n"))
		if i <= 0 {
			return nil
		}
		line := msg[:i]
		if len(line) > len(name) && line[len(name)] == ':' && string(line[:len(name)]) == name {
			return bytes.TrimSpace(line[len(name)+1:])
		}
		msg = msg[i+2:]
	}
	return nil
}

// copyHeaders appends every header line of msg whose name is in names.
func copyHeaders(out, msg []byte, names ...string) []byte {
	for len(msg) > 0 {
		i := bytes.Index(msg, []byte("\r\n"))
		if i <= 0 {
			return out
		}
		line := msg[:i]
		for _, n := range names {
			if len(line) > len(n) && line[len(n)] == ':' && string(line[:len(n)]) == n {
				out = append(out, line...)
				out = append(out, "\r\n"...)
				break
			}
		}
		msg = msg[i+2:]
	}
	return out
}

// serveUAS answers INVITE with 100, 180 and 200 (with SDP), BYE and OPTIONS with 200, until
// the socket closes.
func (u *benchPeer) serveUAS(to netip.AddrPort) {
	for {
		n, _, err := u.conn.ReadFromUDPAddrPort(u.buf)
		if err != nil {
			return
		}
		msg := u.buf[:n]
		sp := bytes.IndexByte(msg, ' ')
		if sp < 0 || bytes.HasPrefix(msg, []byte("SIP/2.0")) {
			continue
		}
		switch string(msg[:sp]) {
		case "INVITE":
			u.respond(to, msg, "100 Trying", false, false)
			u.respond(to, msg, "180 Ringing", true, false)
			u.respond(to, msg, "200 OK", true, true)
		case "BYE", "OPTIONS":
			u.respond(to, msg, "200 OK", false, false)
		}
	}
}

func (u *benchPeer) respond(to netip.AddrPort, req []byte, status string, tag, sdp bool) {
	o := append(u.out[:0], "SIP/2.0 "...)
	o = append(o, status...)
	o = append(o, "\r\n"...)
	o = copyHeaders(o, req, "Via", "Record-Route", "From", "Call-ID", "CSeq")
	o = append(o, "To: "...)
	o = append(o, header(req, "To")...)
	if tag {
		o = append(o, ";tag=uas1"...)
		o = append(o, "\r\nContact: <sip:mcp@"...)
		o = u.ap.AppendTo(o)
		o = append(o, '>')
	}
	o = append(o, "\r\n"...)
	if sdp {
		o = append(o, "Content-Type: application/sdp\r\nContent-Length: "...)
		o = strconv.AppendInt(o, int64(len(benchSDP)), 10)
		o = append(o, "\r\n\r\n"...)
		o = append(o, benchSDP...)
	} else {
		o = append(o, "Content-Length: 0\r\n\r\n"...)
	}
	u.out = o
	_, _ = u.conn.WriteToUDPAddrPort(o, to)
}

// benchCaller places calls through rm and waits for each step's answer.
type benchCaller struct {
	*benchPeer
	b     *testing.B
	rm    netip.AddrPort
	ruri  string
	seq   int64
	to    []byte // To of the 200, with the tag
	route []byte
	cid   []byte
}

func (c *benchCaller) startLine(o []byte, method, ruri string, seq int64, cseqMethod string) []byte {
	o = append(o, method...)
	o = append(o, ' ')
	o = append(o, ruri...)
	o = append(o, " SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	o = c.ap.AppendTo(o)
	o = append(o, ";branch=z9hG4bK-b"...)
	o = strconv.AppendInt(o, seq, 10)
	o = append(o, method...)
	o = append(o, ";rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c"...)
	o = strconv.AppendInt(o, seq, 10)
	o = append(o, "\r\nCall-ID: "...)
	o = append(o, c.cid...)
	o = append(o, "\r\nCSeq: "...)
	if cseqMethod == "BYE" {
		o = append(o, '2')
	} else {
		o = append(o, '1')
	}
	o = append(o, ' ')
	o = append(o, cseqMethod...)
	return append(o, "\r\n"...)
}

// await reads until a final response to method, and returns it.
func (c *benchCaller) await(method string) []byte {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.conn.ReadFromUDPAddrPort(c.buf)
		if err != nil {
			c.b.Fatalf("waiting for the answer to %s: %v", method, err)
		}
		msg := c.buf[:n]
		if !bytes.HasPrefix(msg, []byte("SIP/2.0 ")) || len(msg) < 12 || msg[8] < '2' {
			continue
		}
		if cs := header(msg, "CSeq"); bytes.HasSuffix(cs, []byte(method)) {
			if msg[8] != '2' {
				c.b.Fatalf("%s answered %s", method, msg[8:12])
			}
			return msg
		}
	}
}

// call runs one call: INVITE (with SDP) until 200, ACK, BYE until 200.
func (c *benchCaller) call() {
	c.seq++
	c.cid = strconv.AppendInt(append(c.cid[:0], "bench-"...), c.seq, 10)
	o := c.startLine(c.out[:0], "INVITE", c.ruri, c.seq, "INVITE")
	o = append(o, "To: <sip:5551000@127.0.0.1>\r\nContact: <sip:caller@"...)
	o = c.ap.AppendTo(o)
	o = append(o, ">\r\nContent-Type: application/sdp\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(len(benchSDP)), 10)
	o = append(o, "\r\n\r\n"...)
	o = append(o, benchSDP...)
	c.out = o
	_, _ = c.conn.WriteToUDPAddrPort(o, c.rm)

	ok := c.await("INVITE")
	c.to = append(c.to[:0], header(ok, "To")...)
	c.route = append(c.route[:0], header(ok, "Record-Route")...)
	target := string(bytes.TrimSuffix(bytes.TrimPrefix(header(ok, "Contact"), []byte("<")), []byte(">")))

	for _, m := range [...]string{"ACK", "BYE"} {
		o = c.startLine(c.out[:0], m, target, c.seq, m)
		o = append(o, "Route: "...)
		o = append(o, c.route...)
		o = append(o, "\r\nTo: "...)
		o = append(o, c.to...)
		o = append(o, "\r\nContent-Length: 0\r\n\r\n"...)
		c.out = o
		_, _ = c.conn.WriteToUDPAddrPort(o, c.rm)
	}
	c.await("BYE")
}

// startBenchRM starts rm on loopback with one mcp (a benchPeer UAS) and no billing store.
func startBenchRM(b *testing.B) (*RM, *benchPeer) {
	uas := newBenchPeer(b)
	docs := `
kind: Tenant
name: t100
id: 80dd
defaultApplication: app
---
kind: Pool
name: bench
loadBalance: round-robin
monitor: {method: none}
---
kind: IVRProfile
name: app
tenant: t100
initialPage: http://127.0.0.1:8000/app.vxml
---
kind: MCP
name: uas1
pool: bench
address: ` + uas.ap.String() + `
capacity: 100000
`
	src := &MemorySource{}
	if err := src.SetDocuments(1, []byte(docs)); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.SIP.Transports = []string{"udp"}
	cfg.Admin.Listen = "127.0.0.1:0"
	r, err := New(cfg, Deps{Common: lifecycle.Common{Log: zerolog.Nop(), Metrics: prometheus.NewRegistry()},
		Config: src, Billing: discardPublisher{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Stop(context.Background()) })
	rmAP := netip.MustParseAddrPort(r.SIPAddr())
	go uas.serveUAS(rmAP)
	return r, uas
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxyCall pushes whole calls through rm over loopback UDP, one at a time: INVITE
// (100, 180 and 200 relayed), ACK, BYE and its 200 — 11 datagrams in and out of rm. The peers
// do not allocate, so allocs/op and B/op are rm's. cpu-ns/op is the process's CPU time per
// call (rm and both peers).
func BenchmarkProxyCall(b *testing.B) {
	r, _ := startBenchRM(b)
	rmAP := netip.MustParseAddrPort(r.SIPAddr())
	c := &benchCaller{benchPeer: newBenchPeer(b), b: b, rm: rmAP,
		ruri: "sip:5551000@" + rmAP.String() + ";gvp-tenant-id=80dd"}
	c.call() // warm up
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c.call()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkProxyCallParallel runs calls from several callers at once, to show contention.
func BenchmarkProxyCallParallel(b *testing.B) {
	r, _ := startBenchRM(b)
	rmAP := netip.MustParseAddrPort(r.SIPAddr())
	var id atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		c := &benchCaller{benchPeer: newBenchPeer(b), b: b, rm: rmAP, ruri: "sip:5551000@" + rmAP.String() + ";gvp-tenant-id=80dd",
			seq: id.Add(1) << 40}
		for pb.Next() {
			c.call()
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// benchInvite is an INVITE as a SIP Server sends it.
var benchInvite = []byte("INVITE sip:5551000@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-524287-1---77ba4d5b2f0e4a2c;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"caller\" <sip:4155551234@127.0.0.1:5090>;tag=8c4a2f11\r\n" +
	"To: <sip:5551000@127.0.0.1:5060>\r\n" +
	"Call-ID: 3c26700d8b1f4e3a9a2e@127.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:4155551234@127.0.0.1:5090>\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: " + strconv.Itoa(len(benchSDP)) + "\r\n\r\n" + benchSDP)

// benchRinging is a 180 as an mcp sends it back through rm.
var benchRinging = []byte("SIP/2.0 180 Ringing\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1x2y3z.9f8e7d6c5b4a3f2e;rport=5060\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-524287-1---77ba4d5b2f0e4a2c;rport=5090;received=127.0.0.1\r\n" +
	"Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n" +
	"From: \"caller\" <sip:4155551234@127.0.0.1:5090>;tag=8c4a2f11\r\n" +
	"To: <sip:5551000@127.0.0.1:5060>;tag=mcp-1\r\n" +
	"Call-ID: 3c26700d8b1f4e3a9a2e@127.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:dialog@127.0.0.1:5070>\r\n" +
	"Content-Length: 0\r\n\r\n")

// BenchmarkParse measures parsing an INVITE and a 180 with sipgo's default parser and with
// rm's (headers rm does not use kept as text).
func BenchmarkParse(b *testing.B) {
	cases := []struct {
		name   string
		parser *sip.Parser
		msg    []byte
	}{
		{"invite/sipgo", sip.NewParser(), benchInvite},
		{"invite/rm", sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyHeaders))), benchInvite},
		{"180/sipgo", sip.NewParser(), benchRinging},
		{"180/rm", sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyResponseHeaders))), benchRinging},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.msg)))
			for i := 0; i < b.N; i++ {
				if _, err := c.parser.ParseSIP(c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSerialize measures writing a parsed INVITE into a pooled buffer with sipgo's
// StringWrite and with rm's writeMessage.
func BenchmarkSerialize(b *testing.B) {
	m, err := sip.NewParser().ParseSIP(benchInvite)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sipgo", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf := getBuf()
			m.StringWrite(buf)
			putBuf(buf)
		}
	})
	b.Run("rm", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf := getBuf()
			writeMessage(buf, m.(wireMessage))
			putBuf(buf)
		}
	})
}

// benchBye is a BYE inside a dialog as a caller sends it back through rm.
var benchBye = []byte("BYE sip:dialog@127.0.0.1:5070 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-524287-1---9a8b7c6d5e4f3a2b;rport\r\n" +
	"Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"caller\" <sip:4155551234@127.0.0.1:5090>;tag=8c4a2f11\r\n" +
	"To: <sip:5551000@127.0.0.1:5060>;tag=mcp-1\r\n" +
	"Call-ID: 3c26700d8b1f4e3a9a2e@127.0.0.1\r\n" +
	"CSeq: 2 BYE\r\n" +
	"Content-Length: 0\r\n\r\n")

// BenchmarkScan measures reading in place what rm relays a 180 and a BYE on (scan.go), the
// counterpart of BenchmarkParse for the messages that take that path.
func BenchmarkScan(b *testing.B) {
	b.Run("180", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRinging)))
		for i := 0; i < b.N; i++ {
			if _, ok := scanResponse(benchRinging); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("bye", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchBye)))
		for i := 0; i < b.N; i++ {
			s, ok := scanRequest(benchBye)
			if !ok {
				b.Fatal("declined")
			}
			if _, ok := scanURI(s.routes[0].uri); !ok {
				b.Fatal("route declined")
			}
		}
	})
}
