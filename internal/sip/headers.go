package sip

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Header names used by gvp that sipgo has no constant for.
const (
	// HeaderRetryAfter is RFC 3261 Retry-After.
	HeaderRetryAfter = "Retry-After"
	// HeaderSessionID carries the GVP session id of a call.
	HeaderSessionID = "X-Genesys-GVP-Session-ID"
)

// BranchMagic starts every RFC 3261 branch parameter.
const BranchMagic = "z9hG4bK"

// DefaultMaxForwards is the Max-Forwards put in a request that has none (RFC 3261 8.1.1.6).
const DefaultMaxForwards = 70

// NewBranch returns a new Via branch: the RFC 3261 magic cookie, prefix (may be empty) and 16
// random hex digits.
func NewBranch(prefix string) string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	var buf [64]byte
	out := append(append(buf[:0], BranchMagic...), prefix...)
	out = hex.AppendEncode(out, b[:])
	return string(out)
}

// NewVia returns a Via for this element: SIP/2.0/<TRANSPORT> host:port;branch=...;rport.
func NewVia(transport, host string, port int, branch string) *sip.ViaHeader {
	p := sip.NewParams()
	p.Add("branch", branch)
	p.Add("rport", "")
	return &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0",
		Transport: upperTransport(transport), Host: host, Port: port, Params: p}
}

// upperTransport is strings.ToUpper(t) without allocating for the usual transports.
func upperTransport(t string) string {
	switch t {
	case UDP, "UDP":
		return "UDP"
	case TCP, "TCP":
		return "TCP"
	}
	return strings.ToUpper(t)
}

// ElementURI returns the URI of this element for Record-Route or Route:
// sip:host:port;transport=<t>;lr.
func ElementURI(host string, port int, transport string) sip.Uri {
	p := sip.NewParams()
	p.Add("transport", strings.ToLower(transport))
	p.Add("lr", "")
	return sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: p}
}

// IsElementURI reports whether u names this element: same host and port (5060 when absent).
func IsElementURI(u *sip.Uri, host string, port int) bool {
	if u == nil {
		return false
	}
	up := u.Port
	if up == 0 {
		up = sip.DefaultUdpPort
	}
	return up == port && strings.EqualFold(strings.Trim(u.Host, "[]"), strings.Trim(host, "[]"))
}

// URITransport returns the transport a URI asks for: its transport parameter in lower case,
// else "udp".
func URITransport(u *sip.Uri) string {
	if u != nil && u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok && t != "" {
			return strings.ToLower(t)
		}
	}
	return UDP
}

// DecrementMaxForwards lowers the request's Max-Forwards by one, adding DefaultMaxForwards-1
// when it has none. It returns false when the value was already 0: the request must be
// answered 483 (Too Many Hops) instead of forwarded.
func DecrementMaxForwards(req *sip.Request) bool {
	mf := req.MaxForwards()
	if mf == nil {
		h := sip.MaxForwardsHeader(DefaultMaxForwards - 1)
		req.AppendHeader(&h)
		return true
	}
	if mf.Val() == 0 {
		return false
	}
	mf.Dec()
	return true
}

// ViaDestination returns where a response travelling back along v goes (RFC 3261 18.2.2 with
// RFC 3581): host = received, else the sent-by host; port = rport, else the sent-by port,
// else 5060. transport is the Via's transport in lower case.
func ViaDestination(v *sip.ViaHeader) (host string, port int, transport string) {
	host, port = v.Host, v.Port
	if r, ok := v.Params.Get("received"); ok && r != "" {
		host = r
	}
	if rp, ok := v.Params.Get("rport"); ok && rp != "" {
		if n, err := strconv.Atoi(rp); err == nil && n > 0 && n < 65536 {
			port = n
		}
	}
	if port == 0 {
		port = sip.DefaultUdpPort
	}
	return host, port, strings.ToLower(v.Transport)
}

// StampReceived adds received and rport to the top Via of a request that came from srcHost:
// srcPort (RFC 3261 18.2.1, RFC 3581 4): received when the sent-by host differs from the
// source, rport's value when the client asked for it or alwaysRport is set (connection-oriented
// transports, so responses find the connection).
func StampReceived(v *sip.ViaHeader, srcHost string, srcPort int, alwaysRport bool) {
	if v == nil {
		return
	}
	if v.Params == nil {
		v.Params = sip.NewParams()
	}
	if v.Host != srcHost {
		v.Params.Add("received", srcHost)
	}
	if _, ok := v.Params.Get("rport"); ok || alwaysRport {
		v.Params.Add("rport", strconv.Itoa(srcPort))
		if !v.Params.Has("received") {
			v.Params.Add("received", srcHost)
		}
	}
}

// NewResponse returns the response code reason to req as this element, the UAS of that
// response: Via, From, To (with a To tag added for codes other than 100), Call-ID, CSeq copied.
// An empty reason takes the standard phrase.
func NewResponse(req *sip.Request, code int, reason string) *sip.Response {
	if reason == "" {
		reason = ReasonPhrase(code)
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	// sipgo copies Record-Route into 18x/2xx responses; responses this element makes are
	// final rejections or 100 and carry none.
	for res.RemoveHeader("Record-Route") {
	}
	return res
}

// SetRetryAfter adds Retry-After: d in whole seconds (at least 1) to res.
func SetRetryAfter(res *sip.Response, d time.Duration) {
	s := int(d / time.Second)
	if s < 1 {
		s = 1
	}
	res.RemoveHeader(HeaderRetryAfter)
	res.AppendHeader(sip.NewHeader(HeaderRetryAfter, strconv.Itoa(s)))
}

// ReasonPhrase returns the RFC 3261 reason phrase of code, or a generic one for its class.
func ReasonPhrase(code int) string {
	if r, ok := reasons[code]; ok {
		return r
	}
	switch code / 100 {
	case 1:
		return "Trying"
	case 2:
		return "OK"
	case 3:
		return "Redirect"
	case 4:
		return "Client Error"
	case 5:
		return "Server Error"
	}
	return "Global Failure"
}

var reasons = map[int]string{
	100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
	200: "OK", 202: "Accepted",
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
	415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
	480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
	483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
	488: "Not Acceptable Here", 491: "Request Pending",
	500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

// EscapeParam escapes s for use as a SIP URI parameter value (RFC 3261 25.1 paramchar):
// unreserved characters and []/:&+$ stay, everything else is %XX.
func EscapeParam(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isParamChar(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isParamChar(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexd[c>>4], hexd[c&15])
	}
	return string(b)
}

func isParamChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '~', '*', '\'', '(', ')', '[', ']', '/', ':', '&', '+', '$':
		return true
	}
	return false
}
