package sip

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestListenSharesPort(t *testing.T) {
	l, err := Listen(ListenConfig{Addr: "127.0.0.1:0", Transports: []string{UDP, TCP}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().Port() == 0 {
		t.Fatal("no port reported")
	}
	if u, tc := l.UDP.LocalAddr().String(), l.TCP.Addr().String(); u != tc || u != l.Addr().String() {
		t.Fatalf("udp %s tcp %s reported %s", u, tc, l.Addr())
	}
	// The same fixed port twice fails for the second.
	if _, err := Listen(ListenConfig{Addr: l.Addr().String(), Transports: []string{UDP}}); err == nil {
		t.Fatal("second bind on a used port succeeded")
	}
	if _, err := Listen(ListenConfig{Addr: "127.0.0.1:0", Transports: []string{"sctp"}}); err == nil {
		t.Fatal("unknown transport accepted")
	}
}

func TestBadRequest(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
		has      []string
	}{
		{"bad header", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\nTo: <<broken\r\nFrom: <sip:x@y>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n",
			true, []string{"SIP/2.0 400 Bad Request\r\n", "Via: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\n", "Call-ID: c1\r\n", "CSeq: 1 INVITE\r\n", "Content-Length: 0\r\n\r\n"}},
		{"compact via", "OPTIONS sip:a@b SIP/2.0\nv: SIP/2.0/UDP h;branch=z9hG4bK2\n\n", true, []string{"Via: SIP/2.0/UDP h;branch=z9hG4bK2\r\n"}},
		{"no via", "INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n", false, nil},
		{"ack", "ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\r\n\r\n", false, nil},
		{"response", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", false, nil},
		{"garbage", "\x00\x01\x02", false, nil},
		{"injection", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK4\r\nCall-ID: a\x00b\r\n\r\n", true, []string{"Via:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, ok := BadRequest([]byte(c.in), "bad \"thing\"\r\n")
			if ok != c.ok {
				t.Fatalf("ok=%v want %v", ok, c.ok)
			}
			for _, h := range c.has {
				if !strings.Contains(string(r.Response), h) {
					t.Errorf("response lacks %q:\n%s", h, r.Response)
				}
			}
			if ok {
				if strings.Contains(string(r.Response), "\x00") {
					t.Fatal("control character copied")
				}
				if _, err := sip.ParseMessage(r.Response); err != nil && c.name != "bad header" {
					t.Fatalf("recovered response does not parse: %v\n%s", err, r.Response)
				}
			}
		})
	}
}

func FuzzBadRequest(f *testing.F) {
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte("OPTIONS x SIP/2.0\nv: a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := BadRequest(data, "x")
		if !ok {
			return
		}
		if !strings.HasPrefix(string(r.Response), "SIP/2.0 400 Bad Request\r\n") || !strings.HasSuffix(string(r.Response), "\r\n\r\n") {
			t.Fatalf("malformed 400: %q", r.Response)
		}
		body := string(r.Response[:len(r.Response)-4])
		for _, line := range strings.Split(body, "\r\n") {
			if strings.ContainsAny(line, "\r\n\x00") {
				t.Fatalf("line break smuggled: %q", line)
			}
		}
	})
}

func TestHeaderHelpers(t *testing.T) {
	if got := EscapeParam("http://h:80/a b?x=1&y"); got != "http://h:80/a%20b%3Fx%3D1&y" {
		t.Fatalf("EscapeParam: %s", got)
	}
	v := NewVia("udp", "10.0.0.1", 5060, NewBranch("p"))
	if !strings.HasPrefix(v.Value(), "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp") || !v.Params.Has("rport") {
		t.Fatalf("Via %s", v.Value())
	}
	StampReceived(v, "192.0.2.9", 4000, false)
	h, p, tr := ViaDestination(v)
	if h != "192.0.2.9" || p != 4000 || tr != "udp" {
		t.Fatalf("ViaDestination %s %d %s", h, p, tr)
	}
	u := ElementURI("10.0.0.1", 5060, "TCP")
	if u.String() != "sip:10.0.0.1:5060;transport=tcp;lr" || !IsElementURI(&u, "10.0.0.1", 5060) || URITransport(&u) != "tcp" {
		t.Fatalf("ElementURI %s", u.String())
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", Host: "h"})
	if !DecrementMaxForwards(req) || req.MaxForwards().Val() != 69 {
		t.Fatal("absent Max-Forwards not set to 69")
	}
	zero := sip.MaxForwardsHeader(0)
	req.ReplaceHeader(&zero)
	if DecrementMaxForwards(req) {
		t.Fatal("Max-Forwards 0 forwarded")
	}
	res := sip.NewResponse(503, "x")
	SetRetryAfter(res, 1500*time.Millisecond)
	if res.GetHeader(HeaderRetryAfter).Value() != "1" {
		t.Fatal("Retry-After")
	}
	if ReasonPhrase(480) != "Temporarily Unavailable" || ReasonPhrase(499) != "Client Error" {
		t.Fatal("ReasonPhrase")
	}
}
