package rm

import (
	"bytes"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// This file reads, in place, the few fields rm routes a message on: the responses of its
// client transactions and requests inside a dialog are relayed from their bytes, with the
// edits a proxy makes (RFC 3261 16.6/16.7: its Via added or removed, the received and rport
// of the sender's Via, its own Route entries removed, Max-Forwards decremented) spliced in —
// the way Kamailio relays, instead of parsing every header into objects and writing them all
// out again. Every scanner declines (returns false) what is not plainly formed; the message
// then goes to sipgo's parser and the object path, so declining is always safe.

var (
	crlf  = []byte("\r\n")
	comma = []byte(",")
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// bytesEq reports whether b equals s ignoring ASCII case.
func bytesEq(b []byte, s string) bool {
	return len(b) == len(s) && bytes.EqualFold(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// headerIs reports whether name is the header full (or its compact form, when not "").
func headerIs(name []byte, full, compact string) bool {
	return bytesEq(name, full) || (compact != "" && len(name) == 1 && name[0]|0x20 == compact[0])
}

// trimLWS trims spaces and tabs.
func trimLWS(b []byte) []byte { return trimRightLWS(trimLeftLWS(b)) }

// trimLeftLWS trims leading spaces and tabs (bytes.TrimLeft builds its cutset at every call).
func trimLeftLWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// trimRightLWS trims trailing spaces and tabs.
func trimRightLWS(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// scannedHeader is one header line met by scanHeaders.
type scannedHeader struct {
	name  []byte
	value []byte // without surrounding spaces and tabs
	vs    int    // offset of value in the message
	line  [2]int // the line in the message, CRLF included
}

// scanHeaders walks the header lines of b from pos (just after the start line), calling f for
// each, and returns the offset of the body. It fails on folded lines, bare LFs, a line without
// a colon, a missing end of headers, or when f returns false.
func scanHeaders(b []byte, pos int, f func(h scannedHeader) bool) (int, bool) {
	for {
		e := bytes.Index(b[pos:], crlf)
		if e < 0 {
			return 0, false
		}
		line := b[pos : pos+e]
		if len(line) == 0 {
			return pos + 2, true
		}
		if line[0] == ' ' || line[0] == '\t' || bytes.IndexByte(line, '\n') >= 0 {
			return 0, false
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, false
		}
		raw := line[colon+1:]
		val := trimLeftLWS(raw)
		h := scannedHeader{name: trimRightLWS(line[:colon]), value: trimRightLWS(val),
			vs: pos + colon + 1 + len(raw) - len(val), line: [2]int{pos, pos + e + 2}}
		if !f(h) {
			return 0, false
		}
		pos += e + 2
	}
}

// scanDecimal reads a header value of up to 7 digits (Content-Length, Max-Forwards).
func scanDecimal(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 7 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// scanPort reads the port at the start of b: up to 5 digits, at most 65535. n is the number of
// digits read, 0 when there is no valid port.
func scanPort(b []byte) (port, n int) {
	for n < len(b) && n < 5 && isDigit(b[n]) {
		port = port*10 + int(b[n]-'0')
		n++
	}
	if port > 65535 {
		return 0, 0
	}
	return port, n
}

// viaScan is the first value of a Via header.
type viaScan struct {
	host       []byte
	port       int // 0 when absent
	branch     []byte
	rport      [2]int // the rport parameter (name and value) in the message; zero when absent
	rportValue bool   // rport has a value
	received   bool   // a received parameter is present
	end        int    // where the value ends in the message
	remove     [2]int // what removes the value: its line, or the value up to the next one
}

// scanTopVia reads the first value of the Via header h of b: SIP/2.0/transport host[:port]
// then parameters.
func scanTopVia(b []byte, h scannedHeader, v *viaScan) bool {
	val := h.value
	if bytes.IndexByte(val, '"') >= 0 {
		return false
	}
	top, rest, more := bytes.Cut(val, comma)
	top = trimRightLWS(top)
	v.end = h.vs + len(top)
	v.remove = h.line
	if more {
		rest = trimLeftLWS(rest)
		if len(rest) == 0 {
			return false
		}
		v.remove = [2]int{h.vs, h.vs + len(val) - len(rest)}
	}
	if len(top) < 9 || !bytesEq(top[:8], "SIP/2.0/") {
		return false
	}
	i := bytes.IndexAny(top, " \t")
	if i < 0 {
		return false
	}
	for i < len(top) && (top[i] == ' ' || top[i] == '\t') {
		i++
	}
	hs := i
	for i < len(top) && top[i] != ':' && top[i] != ';' && top[i] != ' ' && top[i] != '\t' {
		i++
	}
	if i == hs || top[hs] == '[' {
		return false
	}
	v.host = top[hs:i]
	if i < len(top) && top[i] == ':' {
		port, n := scanPort(top[i+1:])
		if n == 0 {
			return false
		}
		v.port, i = port, i+1+n
	}
	v.branch = nil
	for {
		for i < len(top) && (top[i] == ' ' || top[i] == '\t') {
			i++
		}
		if i == len(top) {
			return v.branch != nil
		}
		if top[i] != ';' {
			return false
		}
		i++
		for i < len(top) && (top[i] == ' ' || top[i] == '\t') {
			i++
		}
		ps := i
		for i < len(top) && top[i] != ';' {
			i++
		}
		param := trimRightLWS(top[ps:i])
		name, pv, hasValue := bytes.Cut(param, []byte("="))
		name = trimRightLWS(name)
		switch {
		case bytesEq(name, "branch"):
			pv = trimLeftLWS(pv)
			if v.branch != nil || len(pv) == 0 {
				return false
			}
			v.branch = pv
		case bytesEq(name, "rport"):
			if v.rport[1] != 0 {
				return false
			}
			v.rport = [2]int{h.vs + ps, h.vs + ps + len(param)}
			v.rportValue = hasValue
		case bytesEq(name, "received"):
			v.received = true
		}
	}
}

// methodOf returns the method named m, for the methods rm knows.
func methodOf(m []byte) (sip.RequestMethod, bool) {
	switch string(m) {
	case "INVITE":
		return sip.INVITE, true
	case "ACK":
		return sip.ACK, true
	case "BYE":
		return sip.BYE, true
	case "CANCEL":
		return sip.CANCEL, true
	case "OPTIONS":
		return sip.OPTIONS, true
	case "INFO":
		return sip.INFO, true
	case "UPDATE":
		return sip.UPDATE, true
	case "REFER":
		return sip.REFER, true
	case "NOTIFY":
		return sip.NOTIFY, true
	case "PRACK":
		return sip.PRACK, true
	case "MESSAGE":
		return sip.MESSAGE, true
	case "SUBSCRIBE":
		return sip.SUBSCRIBE, true
	}
	return "", false
}

// scanCSeq reads a CSeq value ("314159 INVITE").
func scanCSeq(v []byte) (uint32, sip.RequestMethod, bool) {
	n, seq := 0, uint64(0)
	for n < len(v) && isDigit(v[n]) {
		seq = seq*10 + uint64(v[n]-'0')
		n++
	}
	if n == 0 || n > 10 || seq > 1<<32-1 || n == len(v) || (v[n] != ' ' && v[n] != '\t') {
		return 0, "", false
	}
	m, ok := methodOf(trimLeftLWS(v[n:]))
	return uint32(seq), m, ok
}

// commonScan is what every scanned message needs: its top Via, its CSeq method and its
// Content-Length.
type commonScan struct {
	via       viaScan
	seqMethod sip.RequestMethod
	clen      int // -1 until seen
	sawVia    bool
	sawCSeq   bool
}

// header reads h when it is one of the common headers (handled); ok is false when it is
// malformed or repeated.
func (c *commonScan) header(b []byte, h scannedHeader) (handled, ok bool) {
	switch {
	case headerIs(h.name, "via", "v"):
		if c.sawVia {
			return true, true // only the top one matters
		}
		c.sawVia = true
		return true, scanTopVia(b, h, &c.via)
	case headerIs(h.name, "cseq", ""):
		if c.sawCSeq {
			return true, false
		}
		c.sawCSeq = true
		_, c.seqMethod, ok = scanCSeq(h.value)
		return true, ok
	case headerIs(h.name, "content-length", "l"):
		if c.clen >= 0 {
			return true, false
		}
		c.clen, ok = scanDecimal(h.value)
		return true, ok
	}
	return false, true
}

// complete reports whether the Via and CSeq were there and the body, from offset body, is as
// long as the Content-Length says.
func (c *commonScan) complete(b []byte, body int) bool {
	return c.sawVia && c.sawCSeq && c.clen == len(b)-body
}

// scannedResponse is what rm routes a response on.
type scannedResponse struct {
	commonScan
	code int
}

// scanResponse reads a response's status code, top Via and CSeq method, and checks its
// framing (Content-Length equal to the body's length).
func scanResponse(b []byte) (s scannedResponse, ok bool) {
	if len(b) < 13 || string(b[:8]) != "SIP/2.0 " || b[11] != ' ' ||
		b[8] < '1' || b[8] > '6' || !isDigit(b[9]) || !isDigit(b[10]) {
		return s, false
	}
	s.code = int(b[8]-'0')*100 + int(b[9]-'0')*10 + int(b[10]-'0')
	eol := bytes.Index(b, crlf)
	if eol < 0 || bytes.IndexByte(b[:eol], '\n') >= 0 {
		return s, false
	}
	s.clen = -1
	body, ok := scanHeaders(b, eol+2, func(h scannedHeader) bool {
		_, ok := s.header(b, h)
		return ok
	})
	return s, ok && s.complete(b, body)
}

// maxScannedRoutes is the most Route values the request scanner keeps; more are declined.
const maxScannedRoutes = 8

// routeScan is one Route value.
type routeScan struct {
	uri   []byte // between the angle brackets
	start int    // where the value starts in the message
	next  int    // where the next value on its line starts; 0 when it is the line's last
	line  [2]int // its header line, CRLF included
}

// scannedRequest is what rm relays a request inside a dialog on.
type scannedRequest struct {
	commonScan
	method  sip.RequestMethod
	lineEnd int // end of the request line, CRLF included
	ruri    []byte
	routes  [maxScannedRoutes]routeScan
	nroutes int
	mf      [2]int // the Max-Forwards value in the message; zero when absent
	mfVal   int
	callID  []byte
	fromTag []byte // nil when absent
	toTag   []byte // nil when absent
}

// scanRequest reads a request's line, top Via, Route values, Max-Forwards, Call-ID, CSeq and
// the From and To tags, and checks its framing.
func scanRequest(b []byte) (s scannedRequest, ok bool) {
	eol := bytes.Index(b, crlf)
	if eol < 0 || bytes.IndexByte(b[:eol], '\n') >= 0 {
		return s, false
	}
	line := b[:eol]
	m, rest, _ := bytes.Cut(line, []byte(" "))
	ruri, version, _ := bytes.Cut(rest, []byte(" "))
	if s.method, ok = methodOf(m); !ok || len(ruri) == 0 || string(version) != "SIP/2.0" {
		return s, false
	}
	s.ruri, s.lineEnd, s.clen = ruri, eol+2, -1
	var sawCallID, sawFrom, sawTo bool
	body, ok := scanHeaders(b, eol+2, func(h scannedHeader) bool {
		if handled, ok := s.header(b, h); handled {
			return ok
		}
		switch {
		case headerIs(h.name, "route", ""):
			return scanRoutes(h, &s)
		case headerIs(h.name, "max-forwards", ""):
			if s.mf[1] != 0 || len(h.value) > 3 {
				return false
			}
			var ok bool
			s.mfVal, ok = scanDecimal(h.value)
			s.mf = [2]int{h.vs, h.vs + len(h.value)}
			return ok && s.mfVal <= 255
		case headerIs(h.name, "call-id", "i"):
			if sawCallID || len(h.value) == 0 {
				return false
			}
			sawCallID, s.callID = true, h.value
		case headerIs(h.name, "from", "f"):
			return scanTagOnce(h.value, &sawFrom, &s.fromTag)
		case headerIs(h.name, "to", "t"):
			return scanTagOnce(h.value, &sawTo, &s.toTag)
		}
		return true
	})
	return s, ok && sawCallID && sawFrom && sawTo && s.complete(b, body)
}

// scanRoutes adds the values of the Route header h: name-addrs, as RFC 3261 requires of
// Route, separated by commas.
func scanRoutes(h scannedHeader, s *scannedRequest) bool {
	v := h.value
	if bytes.IndexByte(v, '"') >= 0 {
		return false
	}
	i := 0
	for {
		if s.nroutes == maxScannedRoutes || i >= len(v) || v[i] != '<' {
			return false
		}
		gt := bytes.IndexByte(v[i:], '>')
		if gt < 0 {
			return false
		}
		r := &s.routes[s.nroutes]
		s.nroutes++
		*r = routeScan{uri: v[i+1 : i+gt], start: h.vs + i, line: h.line}
		c := bytes.IndexByte(v[i+gt:], ',')
		if c < 0 {
			return true
		}
		i += gt + c + 1
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		r.next = h.vs + i
	}
}

// scanTagOnce reads the tag of a From or To header into tag, refusing a second header.
func scanTagOnce(v []byte, saw *bool, tag *[]byte) bool {
	if *saw {
		return false
	}
	*saw = true
	var ok bool
	*tag, ok = scanTag(v)
	return ok
}

// scanTag returns the tag parameter of a From or To value, nil when it has none. A value
// without angle brackets is declined: its parameters could be the URI's.
func scanTag(v []byte) ([]byte, bool) {
	gt := bytes.LastIndexByte(v, '>')
	if gt < 0 || bytes.IndexByte(v, '<') < 0 {
		return nil, false
	}
	params := v[gt+1:]
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		name, val, _ := bytes.Cut(p, []byte("="))
		if bytesEq(trimLWS(name), "tag") {
			if val = trimLWS(val); len(val) == 0 {
				return nil, false
			}
			return val, true
		}
	}
	return nil, true
}

// uriScan is what rm routes on in a SIP URI.
type uriScan struct {
	host      []byte
	port      int    // 0 when absent
	transport string // "udp", "tcp", or "" when absent
}

// scanURI reads a sip: URI. Other schemes, IPv6 references and transports other than UDP and
// TCP are declined.
func scanURI(u []byte) (s uriScan, ok bool) {
	if len(u) < 5 || !bytesEq(u[:4], "sip:") {
		return s, false
	}
	u = u[4:]
	if q := bytes.IndexByte(u, '?'); q >= 0 {
		u = u[:q]
	}
	if at := bytes.LastIndexByte(u, '@'); at >= 0 {
		u = u[at+1:]
	}
	i := 0
	for i < len(u) && u[i] != ':' && u[i] != ';' {
		i++
	}
	if i == 0 || u[0] == '[' || bytes.ContainsAny(u[:i], " \t<>,\"") {
		return s, false
	}
	s.host = u[:i]
	if i < len(u) && u[i] == ':' {
		port, n := scanPort(u[i+1:])
		if i += 1 + n; n == 0 || (i < len(u) && u[i] != ';') {
			return s, false
		}
		s.port = port
	}
	params := u[i:]
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		name, val, _ := bytes.Cut(p, []byte("="))
		if bytesEq(name, "transport") {
			switch {
			case bytesEq(val, "udp"):
				s.transport = "udp"
			case bytesEq(val, "tcp"):
				s.transport = "tcp"
			default:
				return s, false
			}
		}
	}
	return s, true
}
