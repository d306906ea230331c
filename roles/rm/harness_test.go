package rm

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/lifecycle"
)

// testUA is a bare UDP SIP endpoint for tests: it sends raw messages and reads parsed ones.
type testUA struct {
	t    testing.TB
	conn *net.UDPConn
	msgs chan sip.Message
}

func newTestUA(t testing.TB) *testUA {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &testUA{t: t, conn: c, msgs: make(chan sip.Message, 256)}
	go func() {
		buf := make([]byte, 65535)
		p := sip.NewParser()
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				close(u.msgs)
				return
			}
			m, err := p.ParseSIP(buf[:n])
			if err != nil {
				continue
			}
			u.msgs <- m
		}
	}()
	t.Cleanup(func() { c.Close() })
	return u
}

func (u *testUA) addr() string { return u.conn.LocalAddr().String() }

func (u *testUA) port() int { return u.conn.LocalAddr().(*net.UDPAddr).Port }

func (u *testUA) send(to string, msg string) {
	u.t.Helper()
	a, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.conn.WriteToUDP([]byte(msg), a); err != nil {
		u.t.Fatal(err)
	}
}

func (u *testUA) sendMsg(to string, m sip.Message) { u.send(to, m.String()) }

// recv returns the next message, failing the test after 5 s.
func (u *testUA) recv() sip.Message {
	u.t.Helper()
	select {
	case m, ok := <-u.msgs:
		if !ok {
			u.t.Fatal("socket closed")
		}
		return m
	case <-time.After(5 * time.Second):
		u.t.Fatal("no SIP message within 5s")
	}
	return nil
}

// recvResponse returns the next response with a code >= min, skipping others.
func (u *testUA) recvResponse(min int) *sip.Response {
	u.t.Helper()
	for {
		m := u.recv()
		if r, ok := m.(*sip.Response); ok && r.StatusCode >= min {
			return r
		}
	}
}

var callSeq atomic.Int64

// invite sends an INVITE from u to rm at rmAddr for ruri and returns its Call-ID and branch.
func (u *testUA) invite(rmAddr, ruri string, extra ...string) (string, string) {
	msg, id, branch := u.inviteMsg(ruri, extra...)
	u.send(rmAddr, msg)
	return id, branch
}

// inviteMsg returns an INVITE from u for ruri, with its Call-ID and branch.
func (u *testUA) inviteMsg(ruri string, extra ...string) (msg, id, branch string) {
	id = fmt.Sprintf("call-%d-%d@test", time.Now().UnixNano(), callSeq.Add(1))
	branch = fmt.Sprintf("z9hG4bK-%d", callSeq.Add(1))
	msg = "INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + u.addr() + ";branch=" + branch + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:caller@127.0.0.1>;tag=caller-" + id + "\r\n" +
		"To: <" + strings.SplitN(ruri, ";", 2)[0] + ">\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:caller@" + u.addr() + ">\r\n"
	for _, h := range extra {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	return msg, id, branch
}

// inDialog builds an in-dialog request from u (the caller) using the 2xx res: Request-URI
// = Contact, Route = reversed Record-Route.
func (u *testUA) inDialog(method sip.RequestMethod, res *sip.Response, seq int) *sip.Request {
	target := res.Contact().Address
	req := sip.NewRequest(method, target)
	branch := fmt.Sprintf("z9hG4bK-%d", callSeq.Add(1))
	p := sip.NewParams()
	p.Add("branch", branch)
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: "127.0.0.1", Port: u.port(), Params: p})
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		req.AppendHeader(&sip.RouteHeader{Address: rr[i].(*sip.RecordRouteHeader).Address})
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.HeaderClone(res.From()))
	req.AppendHeader(sip.HeaderClone(res.To()))
	req.AppendHeader(sip.HeaderClone(res.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(seq), MethodName: method})
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	return req
}

// firstHop is where an in-dialog request goes first: its top Route.
func firstHop(req *sip.Request) string {
	r := req.Route()
	return fmt.Sprintf("%s:%d", r.Address.Host, r.Address.Port)
}

// fakeMCP is a UAS answering INVITEs with a configurable code, OPTIONS with 200, BYE with 200.
type fakeMCP struct {
	*testUA
	code     atomic.Int32 // final answer to INVITE; 0 = answer nothing
	silent   atomic.Bool  // answer nothing at all, OPTIONS included
	mu       sync.Mutex
	invites  []*sip.Request
	byes     []*sip.Request
	others   []*sip.Request
	inviteCh chan *sip.Request
}

func newFakeMCP(t testing.TB, code int) *fakeMCP {
	f := &fakeMCP{testUA: newTestUA(t), inviteCh: make(chan *sip.Request, 64)}
	f.code.Store(int32(code))
	go f.serve()
	return f
}

func (f *fakeMCP) serve() {
	for m := range f.msgs {
		req, ok := m.(*sip.Request)
		if !ok || f.silent.Load() {
			continue
		}
		dst := f.respAddr(req)
		switch req.Method {
		case sip.OPTIONS:
			f.sendMsg(dst, sip.NewResponseFromRequest(req, 200, "OK", nil))
		case sip.INVITE:
			f.mu.Lock()
			f.invites = append(f.invites, req)
			f.mu.Unlock()
			select {
			case f.inviteCh <- req:
			default:
			}
			code := int(f.code.Load())
			if code == 0 {
				continue
			}
			if code < 300 {
				ring := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
				f.sendMsg(dst, ring)
			}
			res := sip.NewResponseFromRequest(req, code, "X", nil)
			if code < 300 {
				res.ReplaceHeader(sip.HeaderClone(ringTo(res)))
				res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "mcp", Host: "127.0.0.1", Port: f.port()}})
			}
			f.sendMsg(dst, res)
		case sip.BYE:
			f.mu.Lock()
			f.byes = append(f.byes, req)
			f.mu.Unlock()
			f.sendMsg(dst, sip.NewResponseFromRequest(req, 200, "OK", nil))
		case sip.ACK:
			f.mu.Lock()
			f.others = append(f.others, req)
			f.mu.Unlock()
		default:
			f.mu.Lock()
			f.others = append(f.others, req)
			f.mu.Unlock()
			f.sendMsg(dst, sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
}

func ringTo(res *sip.Response) *sip.ToHeader { return res.To() }

// respAddr is where a response to req goes: the top Via's received/rport or sent-by.
func (f *fakeMCP) respAddr(req *sip.Request) string {
	v := req.Via()
	return fmt.Sprintf("%s:%d", v.Host, v.Port)
}

func (f *fakeMCP) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch kind {
	case "invite":
		return len(f.invites)
	case "bye":
		return len(f.byes)
	}
	n := 0
	for _, r := range f.others {
		if string(r.Method) == kind {
			n++
		}
	}
	return n
}

// startRM starts rm on 127.0.0.1:0 with the configuration documents docs.
func startRM(t testing.TB, mutate func(*Config), docs string) (*RM, *MemorySource, *billing.MemoryPublisher, *prometheus.Registry) {
	t.Helper()
	src := &MemorySource{}
	if err := src.SetDocuments(1, []byte(docs)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.MCP.InviteTimeout = 300 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	pub := &billing.MemoryPublisher{}
	reg := prometheus.NewRegistry()
	r, err := New(cfg, Deps{Common: lifecycle.Common{Log: zerolog.Nop(), Metrics: reg}, Config: src, Billing: pub})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	return r, src, pub, reg
}

// heapAlloc is the heap in use after two collections.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tcpUA is a caller over one TCP connection.
type tcpUA struct {
	t    testing.TB
	conn net.Conn
	msgs chan sip.Message
}

func newTCPUA(t testing.TB, rm string) *tcpUA {
	c, err := net.Dial("tcp", rm)
	if err != nil {
		t.Fatal(err)
	}
	u := &tcpUA{t: t, conn: c, msgs: make(chan sip.Message, 64)}
	go func() {
		ps := sip.NewParser().NewSIPStream()
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_ = ps.ParseSIPStream(buf[:n], func(m sip.Message) { u.msgs <- m })
		}
	}()
	t.Cleanup(func() { c.Close() })
	return u
}

func (u *tcpUA) port() int { return u.conn.LocalAddr().(*net.TCPAddr).Port }

func (u *tcpUA) inviteTCP(ruri string) {
	la := u.conn.LocalAddr().String()
	msg := "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/TCP " + la + ";branch=z9hG4bK-tcp1\r\nMax-Forwards: 70\r\n" +
		"From: <sip:caller@127.0.0.1>;tag=tcpcaller\r\nTo: <" + strings.SplitN(ruri, ";", 2)[0] + ">\r\nCall-ID: tcp-call-1\r\n" +
		"CSeq: 1 INVITE\r\nContact: <sip:caller@" + la + ";transport=tcp>\r\nContent-Length: 0\r\n\r\n"
	if _, err := u.conn.Write([]byte(msg)); err != nil {
		u.t.Fatal(err)
	}
}

func (u *tcpUA) recv() sip.Message {
	u.t.Helper()
	select {
	case m := <-u.msgs:
		return m
	case <-time.After(5 * time.Second):
		u.t.Fatal("no SIP message over TCP within 5s")
	}
	return nil
}

func (u *tcpUA) recvFinal() *sip.Response {
	for {
		if r, ok := u.recv().(*sip.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}

func (u *tcpUA) recvRequest() *sip.Request {
	for {
		if r, ok := u.recv().(*sip.Request); ok {
			return r
		}
	}
}

func metricSum(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	return metricSum(t, reg, name)
}

func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	return metricSum(t, reg, name)
}
