package rm

import (
	"bytes"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// response is a response received for a client transaction. A response that rm only relays
// upstream (nearly all of them) is not parsed: it is kept as the bytes received, with where its
// top Via is, and relayed without that line — as a stateful proxy that understands only what it
// routes on does. It is parsed on demand, for the few paths that read more (the ACK of a non-2xx,
// the BYE of a stray 2xx). A response that arrived parsed (over TCP, or one the scanner
// declined) carries its parsed form.
type response struct {
	code   int
	raw    []byte // as received: only valid while the call that delivered the response runs
	via    [2]int // raw[via[0]:via[1]] is the top Via: its header line, CRLF included, or its value and comma
	parser *sip.Parser
	msg    *sip.Response
}

// parsed returns the response parsed by sipgo; nil when it does not parse.
func (r *response) parsed() *sip.Response {
	if r.msg == nil && r.raw != nil {
		m, err := r.parser.ParseSIP(r.raw)
		if err != nil {
			return nil
		}
		r.msg, _ = m.(*sip.Response)
	}
	return r.msg
}

// writeRelayed writes the response as rm relays it upstream: without its top Via. A parsed
// response loses that Via for good.
func (r *response) writeRelayed(b *bytes.Buffer) {
	if r.raw != nil {
		b.Write(r.raw[:r.via[0]])
		b.Write(r.raw[r.via[1]:])
		return
	}
	r.msg.RemoveHeader("Via")
	writeMessage(b, r.msg)
}

// scannedResponse is what rm routes a response on, read in place from its bytes.
type scannedResponse struct {
	code   int
	method sip.RequestMethod // of the CSeq
	branch []byte            // of the top Via
	host   []byte            // sent-by host of the top Via
	port   int               // sent-by port of the top Via; 0 when absent
	via    [2]int            // what removes the top Via: see response.via
}

// scanResponse reads a response's status code, top Via and CSeq method from its bytes, and
// checks its framing (Content-Length equal to the body's length). It declines (false) whatever
// is not plainly formed — folded or bare-LF lines, a quoted string in the top Via line, an IPv6
// sent-by, repeated CSeq or Content-Length, an unknown method — which then goes to the full
// parser, so declining is always safe.
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
	pos := eol + 2
	clen := -1
	var sawVia, sawCSeq bool
	for {
		e := bytes.Index(b[pos:], crlf)
		if e < 0 {
			return s, false
		}
		line := b[pos : pos+e]
		if len(line) == 0 {
			pos += 2
			break
		}
		if line[0] == ' ' || line[0] == '\t' || bytes.IndexByte(line, '\n') >= 0 {
			return s, false
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return s, false
		}
		name, val := bytes.TrimRight(line[:colon], " \t"), bytes.Trim(line[colon+1:], " \t")
		switch {
		case headerIs(name, "via", "v"):
			if !sawVia {
				sawVia = true
				if bytes.IndexByte(val, '"') >= 0 {
					return s, false
				}
				top, rest, more := bytes.Cut(val, []byte(","))
				if !scanVia(bytes.TrimRight(top, " \t"), &s) {
					return s, false
				}
				s.via = [2]int{pos, pos + e + 2}
				if more {
					// Several values on the line: only the first goes, up to the next one.
					rest = bytes.TrimLeft(rest, " \t")
					if len(rest) == 0 {
						return s, false
					}
					s.via = [2]int{pos + e - len(val) - trailingLWS(line), pos + e - len(rest) - trailingLWS(line)}
				}
			}
		case headerIs(name, "cseq", ""):
			if sawCSeq {
				return s, false
			}
			sawCSeq = true
			if s.method, ok = scanCSeqMethod(val); !ok {
				return s, false
			}
		case headerIs(name, "content-length", "l"):
			if clen >= 0 || len(val) == 0 || len(val) > 7 {
				return s, false
			}
			clen = 0
			for _, c := range val {
				if !isDigit(c) {
					return s, false
				}
				clen = clen*10 + int(c-'0')
			}
		}
		pos += e + 2
	}
	return s, sawVia && sawCSeq && clen == len(b)-pos
}

var crlf = []byte("\r\n")

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// headerIs reports whether name is the header full (or its compact form, when not "").
func headerIs(name []byte, full, compact string) bool {
	return bytes.EqualFold(name, unsafe.Slice(unsafe.StringData(full), len(full))) ||
		(compact != "" && len(name) == 1 && name[0]|0x20 == compact[0])
}

// trailingLWS is the number of spaces and tabs that end line.
func trailingLWS(line []byte) int { return len(line) - len(bytes.TrimRight(line, " \t")) }

// scanVia reads the sent-by and branch of one Via value: SIP/2.0/transport host[:port]
// followed by parameters.
func scanVia(v []byte, s *scannedResponse) bool {
	if len(v) < 9 || !bytes.EqualFold(v[:8], []byte("SIP/2.0/")) {
		return false
	}
	sp := bytes.IndexAny(v, " \t")
	if sp < 0 {
		return false
	}
	v = bytes.TrimLeft(v[sp:], " \t")
	end := 0
	for end < len(v) && v[end] != ':' && v[end] != ';' && v[end] != ' ' && v[end] != '\t' {
		end++
	}
	if end == 0 || v[0] == '[' {
		return false
	}
	s.host, v = v[:end], v[end:]
	if len(v) > 0 && v[0] == ':' {
		n, port := 1, 0
		for n < len(v) && isDigit(v[n]) && n <= 5 {
			port = port*10 + int(v[n]-'0')
			n++
		}
		if n == 1 || port > 65535 {
			return false
		}
		s.port, v = port, v[n:]
	}
	s.branch = nil
	for {
		v = bytes.TrimLeft(v, " \t")
		if len(v) == 0 {
			return s.branch != nil
		}
		if v[0] != ';' {
			return false
		}
		v = bytes.TrimLeft(v[1:], " \t")
		end := 0
		for end < len(v) && v[end] != ';' {
			end++
		}
		param := bytes.TrimRight(v[:end], " \t")
		v = v[end:]
		name, val, _ := bytes.Cut(param, []byte("="))
		if headerIs(bytes.TrimRight(name, " \t"), "branch", "") {
			if s.branch != nil {
				return false
			}
			s.branch = bytes.TrimLeft(val, " \t")
			if len(s.branch) == 0 {
				return false
			}
		}
	}
}

// scanCSeqMethod returns the method of a CSeq value ("314159 INVITE").
func scanCSeqMethod(v []byte) (sip.RequestMethod, bool) {
	n := 0
	for n < len(v) && isDigit(v[n]) {
		n++
	}
	if n == 0 || n > 10 || n == len(v) || (v[n] != ' ' && v[n] != '\t') {
		return "", false
	}
	switch string(bytes.TrimLeft(v[n:], " \t")) {
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

// bytesKey views b as a string for a lookup that does not keep it.
func bytesKey(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
