package rm

import (
	"hash/fnv"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// TestWriteMessageMatchesSipgo checks that rm's serialiser writes the bytes sipgo's
// StringWrite writes, for requests and responses with and without bodies.
func TestWriteMessageMatchesSipgo(t *testing.T) {
	res200 := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.1;rport=5060;received=127.0.0.1\r\n" +
		"v: SIP/2.0/TCP [::1]:5070;branch=z9hG4bK-2\r\n" +
		"Record-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n" +
		"Call-ID: x@y\r\nCSeq: 1 INVITE\r\nContact: <sip:mcp@127.0.0.1:5070>\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(benchSDP)) + "\r\n\r\n" + benchSDP
	bye := "BYE sip:mcp@127.0.0.1:5070 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-3\r\nMax-Forwards: 69\r\n" +
		"Route: <sip:127.0.0.1:5060;lr>\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n" +
		"Call-ID: x@y\r\nCSeq: 2 BYE\r\nX-Other: v\r\nContent-Length: 0\r\n\r\n"
	odd := "MESSAGE sip:u:pw@example.com:5080;transport=tcp;x=y?subject=hi&prio=1 SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS host.example;branch=z9hG4bK-4;maddr=\"q\"\r\n" +
		"Route: <sip:[2001:db8::1]:5060;lr>\r\nRoute: <tel:+15551234;phone-context=x>\r\n" +
		"From: \"Bob Smith\" <sip:bob@[::1]>;tag=a;x\r\nTo: Ann <sips:ann@example.com>\r\n" +
		"Call-ID: z\r\nCSeq: 9 MESSAGE\r\nMax-Forwards: 0\r\nContent-Length: 2\r\n\r\nhi"
	p := sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyHeaders)))
	for _, raw := range []string{string(benchInvite), res200, bye, odd} {
		m, err := p.ParseSIP([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		wm := m.(wireMessage)
		b := getBuf()
		writeMessage(b, wm)
		if got, want := b.String(), m.String(); got != want {
			t.Errorf("writeMessage:\n%q\nsipgo:\n%q", got, want)
		}
		putBuf(b)
		if line := strings.SplitN(raw, "\r\n", 2)[0]; !strings.HasPrefix(m.String(), line) {
			t.Errorf("start line changed: %q", line)
		}
	}
}

// TestWriteTryingMatchesNewResponse checks that the 100 Trying rm writes directly is the one
// gvpsip.NewResponse builds.
func TestWriteTryingMatchesNewResponse(t *testing.T) {
	p := sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyHeaders)))
	invites := []string{string(benchInvite),
		"INVITE sip:1@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1;rport\r\n" +
			"Via: SIP/2.0/TCP [::1]:5080;branch=z9hG4bK-0\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@y>\r\n" +
			"i: c@d\r\nCSeq: 7 INVITE\r\nTimestamp: 54\r\nRecord-Route: <sip:p;lr>\r\nl: 0\r\n\r\n"}
	for _, raw := range invites {
		m, err := p.ParseSIP([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sip.Request)
		gvpsip.StampReceived(req.Via(), "127.0.0.1", 5999, false)
		b := getBuf()
		writeTrying(b, req)
		want := gvpsip.NewResponse(req, 100, "Trying").String()
		if b.String() != want {
			t.Errorf("writeTrying:\n%q\nNewResponse:\n%q", b.String(), want)
		}
		putBuf(b)
	}
}

// TestLoopHashIsFNV checks loopHash against hash/fnv over the fields' text forms, so that
// branches stay comparable between rm versions.
func TestLoopHashIsFNV(t *testing.T) {
	p := sip.NewParser(sip.WithHeadersParsers(proxyHeaderParsers(lazyHeaders)))
	for _, raw := range []string{string(benchInvite),
		"INVITE sip:a@b;x=1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\nRoute: <sip:p:5070;lr>\r\n" +
			"From: <sip:f@g>\r\nTo: <sip:a@b>\r\nCall-ID: q\r\nCSeq: 42 INVITE\r\n\r\n"} {
		m, err := p.ParseSIP([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sip.Request)
		h := fnv.New32a()
		h.Write([]byte(req.Recipient.String()))
		h.Write([]byte(req.CallID().Value()))
		if tag, ok := req.From().Params.Get("tag"); ok {
			h.Write([]byte(tag))
		}
		h.Write([]byte(strconv.Itoa(int(req.CSeq().SeqNo))))
		if r := req.Route(); r != nil {
			h.Write([]byte(r.Address.String()))
		}
		if got, want := loopHash(req), strconv.FormatUint(uint64(h.Sum32()), 36)+"."; got != want {
			t.Errorf("loopHash %q, want %q", got, want)
		}
	}
}

func TestIsKeepAlive(t *testing.T) {
	for in, want := range map[string]bool{
		"\r\n\r\n": true, "\r\n": true, "\x00": true, " \r\n": true, "": true,
		"\r\nOPTIONS sip:x SIP/2.0\r\n\r\n": false, "SIP/2.0 200 OK\r\n\r\n": false, "\r\n\r\nx": false,
	} {
		if got := isKeepAlive([]byte(in)); got != want {
			t.Errorf("isKeepAlive(%q) = %v, want %v", in, got, want)
		}
	}
}
