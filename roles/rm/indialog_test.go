package rm

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// TestInPlaceMatchesObjectPath sends requests inside a dialog through a real rm and checks
// that what it forwards from their bytes is, header for header, what the object path makes of
// the same request: the sender's Via stamped (received, rport), rm's Route entries gone (one
// per line, several on a line, double record-routing), Max-Forwards decremented, rm's Via on
// top, the rest untouched. The messages rm must not relay in place go through the object path
// and arrive all the same.
func TestInPlaceMatchesObjectPath(t *testing.T) {
	r, _, _, _ := startRM(t, nil, baseDocs)
	rm := r.SIPAddr()
	caller, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	next, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	cport := caller.LocalAddr().(*net.UDPAddr).Port
	nextAddr := next.LocalAddr().String()
	ours := "<sip:" + rm + ";lr>"

	type tc struct {
		name    string
		reqLine string
		headers string // after the Via line
		via     string
		body    string
		inPlace bool
	}
	stdVia := fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-%%s;rport\r\n", cport)
	dialog := "From: <sip:caller@127.0.0.1>;tag=a1\r\nTo: <sip:5551000@127.0.0.1>;tag=b2\r\n" +
		"Call-ID: c-%s@test\r\nX-Odd:    spaced\r\n"
	cases := []tc{
		{name: "BYE one Route", reqLine: "BYE sip:mcp@" + nextAddr + " SIP/2.0",
			headers: "Route: " + ours + "\r\nMax-Forwards: 70\r\n" + dialog + "CSeq: 2 BYE\r\n", via: stdVia, inPlace: true},
		{name: "ACK two Routes on a line", reqLine: "ACK sip:mcp@10.9.9.9:5999 SIP/2.0",
			headers: "Max-Forwards: 5\r\nRoute: " + ours + " , <sip:" + nextAddr + ";lr>\r\n" + dialog + "CSeq: 1 ACK\r\n",
			via:     stdVia, inPlace: true},
		{name: "INFO double record-route", reqLine: "INFO sip:mcp@" + nextAddr + " SIP/2.0",
			headers: "Route: <sip:" + rm + ";transport=tcp;lr>\r\nRoute: " + ours + "\r\nMax-Forwards: 70\r\n" + dialog +
				"CSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\n", body: "Signal=5\r\nDuration=160\r\n",
			via: stdVia, inPlace: true},
		{name: "compact forms, sent-by not the source", reqLine: "MESSAGE sip:mcp@" + nextAddr + " SIP/2.0",
			headers: "Route: " + ours + "\r\nMax-Forwards: 70\r\nf: <sip:caller@127.0.0.1>;tag=a1\r\nt: <sip:x@y>;tag=b2\r\n" +
				"i: c-%s@test\r\nX-Odd:    spaced\r\nCSeq: 4 MESSAGE\r\n", body: "hello",
			via: "v: SIP/2.0/UDP caller.example.com:5062;branch=z9hG4bK-%s\r\n", inPlace: true},
		{name: "Via already stamped", reqLine: "BYE sip:mcp@" + nextAddr + " SIP/2.0",
			headers: "Route: " + ours + "\r\nMax-Forwards: 70\r\n" + dialog + "CSeq: 5 BYE\r\n",
			via:     fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;received=127.0.0.1;branch=z9hG4bK-%%s\r\n", cport)},
		{name: "no Max-Forwards", reqLine: "BYE sip:mcp@" + nextAddr + " SIP/2.0",
			headers: "Route: " + ours + "\r\n" + dialog + "CSeq: 6 BYE\r\n", via: stdVia},
	}
	buf := make([]byte, 65535)
	for i, c := range cases {
		id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)
		headers := c.headers
		if strings.Contains(headers, "%s") {
			headers = fmt.Sprintf(headers, id)
		}
		msg := c.reqLine + "\r\n" + fmt.Sprintf(c.via, id) + headers +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(c.body)) + c.body
		if _, err := caller.WriteToUDP([]byte(msg), mustAddrPort(t, rm)); err != nil {
			t.Fatal(err)
		}
		_ = next.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := next.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%s: nothing forwarded: %v", c.name, err)
		}
		got := append([]byte(nil), buf[:n]...)
		if kept := bytes.Contains(got, []byte("X-Odd:    spaced")); kept != c.inPlace {
			t.Fatalf("%s: relayed in place %v, want %v:\n%s", c.name, kept, c.inPlace, got)
		}

		// The object path on the same request.
		m, err := sip.NewParser().ParseSIP([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		want := m.(*sip.Request)
		gvpsip.StampReceived(want.Via(), "127.0.0.1", cport, false)
		popped := r.px.popRoutes(want)
		gvpsip.DecrementMaxForwards(want)
		dst, err := r.px.nextHop(want, popped)
		if err != nil || dst.addr.String() != nextAddr {
			t.Fatalf("%s: object path goes to %v (%v)", c.name, dst, err)
		}
		fwd, err := sip.NewParser().ParseSIP(got)
		if err != nil {
			t.Fatalf("%s: forwarded request does not parse: %v\n%s", c.name, err, got)
		}
		top := fwd.(*sip.Request).Via()
		br, _ := top.Params.Get("branch")
		want.PrependHeader(gvpsip.NewVia(dst.proto, r.px.host, r.px.port, br))
		var a, b bytes.Buffer
		writeMessage(&a, fwd.(wireMessage))
		writeMessage(&b, want)
		if a.String() != b.String() {
			t.Fatalf("%s: forwarded\n%s\nobject path\n%s", c.name, a.String(), b.String())
		}
		if !strings.HasPrefix(br, gvpsip.BranchMagic) || top.Host != r.px.host || top.Port != r.px.port {
			t.Fatalf("%s: rm's Via %s", c.name, top.Value())
		}
	}
}

func mustAddrPort(t *testing.T, s string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWriteOwnViaMatchesNewVia(t *testing.T) {
	for _, tr := range []string{gvpsip.UDP, gvpsip.TCP} {
		var a, b bytes.Buffer
		writeOwnVia(&a, tr, "10.1.2.3", 5060, "z9hG4bKabc")
		writeVia(&b, gvpsip.NewVia(tr, "10.1.2.3", 5060, "z9hG4bKabc"))
		b.WriteString("\r\n")
		if a.String() != b.String() {
			t.Fatalf("%q, want %q", a.String(), b.String())
		}
	}
}

// FuzzScanRequest: the request scanner never fails on any input, and what it accepts sipgo
// reads the same way where both read it.
func FuzzScanRequest(f *testing.F) {
	f.Add([]byte("BYE sip:mcp@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-1;rport\r\n" +
		"Route: <sip:127.0.0.1:5060;lr>, <sip:10.0.0.1;lr;transport=tcp>\r\nMax-Forwards: 70\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x@y\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("INFO sip:h SIP/2.0\r\nv: SIP/2.0/UDP h\t;branch=z9hG4bK2\r\nf: \"A\" <sip:a@b>;tag=1\r\n" +
		"t: <sip:c@d>\r\ni: x\r\nCSeq: 1 INFO\r\nl: 3\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := scanRequest(b)
		if !ok {
			return
		}
		for i := 0; i < s.nroutes; i++ {
			scanURI(s.routes[i].uri)
		}
		scanURI(s.ruri)
		m, err := sip.NewParser().ParseSIP(b)
		if err != nil {
			return
		}
		req, isReq := m.(*sip.Request)
		if !isReq {
			t.Fatalf("scanned a request, sipgo parsed %T", m)
		}
		if req.Method != s.method {
			t.Fatalf("method %s, sipgo %s", s.method, req.Method)
		}
		if id := req.CallID(); id != nil && id.Value() != string(s.callID) {
			t.Fatalf("Call-ID %q, sipgo %q", s.callID, id.Value())
		}
		if v := req.Via(); v != nil {
			if br, _ := v.Params.Get("branch"); br != "" && br == strings.TrimSpace(br) && br != string(s.via.branch) {
				t.Fatalf("branch %q, sipgo %q", s.via.branch, br)
			}
			// The transaction key must come out the same on both paths (an ACK relayed in
			// place finds the INVITE's transaction made on the object path).
			if v.Host != string(s.via.host) || v.Port != s.via.port {
				t.Fatalf("sent-by %s:%d, sipgo %s:%d", s.via.host, s.via.port, v.Host, v.Port)
			}
		}
	})
}

// TestNonSuccessACKAbsorbed: the ACK of an error rm relayed ends rm's retransmissions of the
// error and goes no further, even when its Request-URI is not rm's (the caller sent the INVITE
// through rm by a Route), which is the path that relays in place.
func TestNonSuccessACKAbsorbed(t *testing.T) {
	mcp := newFakeMCP(t, 486)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("mcp-0", mcp.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	beyond, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer beyond.Close()

	id := fmt.Sprintf("ack-%d@test", time.Now().UnixNano())
	ruri := "sip:5551000@" + beyond.LocalAddr().String() + ";gvp-tenant-id=80dd"
	head := " " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + caller.addr() + ";branch=z9hG4bK-" + id + ";rport\r\n" +
		"Route: <sip:" + rm + ";lr>\r\nMax-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=c1\r\nCall-ID: " + id + "\r\n"
	caller.send(rm, "INVITE"+head+"To: <sip:5551000@127.0.0.1>\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:caller@"+caller.addr()+">\r\nContent-Length: 0\r\n\r\n")
	busy := caller.recvResponse(200)
	if busy.StatusCode != 486 {
		t.Fatalf("got %d, want 486", busy.StatusCode)
	}
	caller.send(rm, "ACK"+head+busy.To().String()+"\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")

	// The ACK confirms the INVITE's transaction, which stops retransmitting the 486 (every T1
	// until then): once confirmed, none may come (one sent just before may still be on its way).
	key := txKey{branch: "z9hG4bK-" + id, host: "127.0.0.1", port: caller.port(), method: sip.INVITE}
	waitFor(t, "the ACK to confirm the transaction", func() bool {
		stx, ok := r.px.stx.get(key)
		if !ok {
			return false
		}
		stx.mu.Lock()
		defer stx.mu.Unlock()
		return stx.state == stConfirmed
	})
	time.Sleep(50 * time.Millisecond)
	for len(caller.msgs) > 0 {
		<-caller.msgs
	}
	select {
	case m := <-caller.msgs:
		t.Fatalf("after the ACK rm sent\n%s", m)
	case <-time.After(1200 * time.Millisecond):
	}
	_ = beyond.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := beyond.ReadFromUDP(make([]byte, 2048)); err == nil {
		t.Fatalf("the ACK went past rm (%d bytes)", n)
	}
}

// TestRawRelayFinish: rm's own answer to a request it relayed from bytes (a timeout) is built
// from those bytes — without rm's Via — and reaches the sender; when the bytes do not parse,
// the transaction still ends instead of staying open.
func TestRawRelayFinish(t *testing.T) {
	r, _, _, _ := startRM(t, nil, baseDocs)
	caller := newTestUA(t)
	from := peer{proto: gvpsip.UDP, addr: mustAddrPort(t, caller.addr()).AddrPort()}
	ours := "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKours;rport\r\n"
	for _, c := range []struct {
		name, reqLine string
		answered      bool
	}{
		{"parses", "BYE sip:mcp@127.0.0.1:9 SIP/2.0\r\n", true},
		{"does not parse", "BYE sip:mcp@[::1 SIP/2.0\r\n", false},
	} {
		rest := "Via: SIP/2.0/UDP " + caller.addr() + ";branch=z9hG4bK-" + c.name[:4] + "\r\n" +
			"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: raw-" + c.name[:4] + "\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
		data := []byte(c.reqLine + ours + rest)
		key := txKey{branch: "z9hG4bK-" + c.name[:4], host: "127.0.0.1", port: caller.port(), method: sip.BYE}
		stx, created := r.px.newServerTx(key, sip.BYE, from)
		if !created {
			t.Fatalf("%s: transaction exists", c.name)
		}
		rel := &relay{p: r.px, stx: stx, attempts: 1, raw: &rawRequest{method: sip.BYE, data: data,
			via: [2]int{len(c.reqLine), len(c.reqLine) + len(ours)}, parser: r.px.tp.parser}}
		stx.setRelay(rel)
		rel.finish(408, "")
		if c.answered {
			res := caller.recvResponse(100)
			if res.StatusCode != 408 || len(res.GetHeaders("Via")) != 1 || res.Via().Host != "127.0.0.1" ||
				res.Via().Port != caller.port() {
				t.Fatalf("%s: answered %d with Vias %v", c.name, res.StatusCode, res.GetHeaders("Via"))
			}
		}
		if _, live := r.px.stx.get(key); live && !c.answered {
			t.Fatalf("%s: transaction left open", c.name)
		}
	}
}
