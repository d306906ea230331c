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

// bytesKey views b as a string for a lookup that does not keep it.
func bytesKey(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
