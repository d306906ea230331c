package rm

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// rawRequest is a request inside a dialog relayed from its bytes (see scan.go): what its relay
// sends, and its parsed form on demand, for the responses rm itself makes to it (a timeout).
type rawRequest struct {
	method sip.RequestMethod
	branch string
	data   []byte // as forwarded, rm's Via included
	via    [2]int // rm's Via line in data
	parser *sip.Parser
	msg    *sip.Request
}

// parsed returns the request as rm received it (with the received and rport it stamped, its
// own Route entries removed); nil when it does not parse.
func (r *rawRequest) parsed() *sip.Request {
	if r.msg == nil {
		b := make([]byte, 0, len(r.data))
		b = append(append(b, r.data[:r.via[0]]...), r.data[r.via[1]:]...)
		m, err := r.parser.ParseSIP(b)
		if err != nil {
			return nil
		}
		r.msg, _ = m.(*sip.Request)
	}
	return r.msg
}

// edit replaces msg[start:end] with repl.
type edit struct {
	start, end int
	repl       []byte
}

// inDialogMethod reports whether a request of method m inside a dialog can be relayed from
// its bytes: INVITE (CANCEL, ACK of errors, failover) and CANCEL take the object path.
func inDialogMethod(m sip.RequestMethod) bool {
	return m != sip.INVITE && m != sip.CANCEL
}

// onRawRequest relays a UDP request inside a dialog (To tag present; not INVITE or CANCEL)
// from its bytes: the sender's Via gets received and rport (RFC 3261 18.2.1, RFC 3581), rm's
// own Route entries go (16.4), Max-Forwards is decremented (16.6) and rm's Via goes on top;
// the next hop is the first remaining Route, else the Request-URI. It returns false, having
// done nothing, for what it leaves to the parser and onRequest: whatever the scanner
// declines, requests that rm answers itself (no Max-Forwards left, a Request-URI of rm's, a
// method mismatch), strict routing, an RFC 2543 branch, a Via already stamped.
func (p *proxy) onRawRequest(data []byte, from peer) bool {
	if bytes.HasPrefix(data, []byte("INVITE ")) || bytes.HasPrefix(data, []byte("CANCEL ")) {
		return false // not even scanned
	}
	s, ok := scanRequest(data)
	if !ok || s.toTag == nil || !inDialogMethod(s.method) || s.seqMethod != s.method || s.mfVal == 0 ||
		!bytes.HasPrefix(s.via.branch, []byte(gvpsip.BranchMagic)) || s.via.received || s.via.rportValue ||
		from.proto != gvpsip.UDP {
		return false
	}
	if s.method == sip.ACK {
		// The ACK of a non-2xx rm relayed is absorbed, before any routing (its Request-URI
		// may not even resolve); confirming twice is harmless if the object path checks too.
		key := txKey{branch: bytesKey(s.via.branch), host: bytesKey(s.via.host), port: s.via.port, method: sip.INVITE}
		if stx, found := p.stx.get(key); found && stx.ack() {
			return true
		}
	}
	ru, ok := scanURI(s.ruri)
	if !ok || p.isOursScanned(ru) {
		return false
	}
	// Routes of rm's own on top are removed; the transport of the last one removed is that of
	// the Record-Route facing the next hop (double record-routing).
	popped, k := "", 0
	for ; k < s.nroutes; k++ {
		u, ok := scanURI(s.routes[k].uri)
		if !ok {
			return false
		}
		if !p.isOursScanned(u) {
			break
		}
		popped = u.transport
		if popped == "" {
			popped = gvpsip.UDP
		}
	}
	next := ru
	if k < s.nroutes {
		if next, ok = scanURI(s.routes[k].uri); !ok {
			return false
		}
	}
	dst, ok := p.scannedHop(next, popped)
	if !ok {
		return false
	}

	var edits [maxScannedRoutes + 4]edit
	n := 0
	var ip [48]byte
	src := from.addr.Addr().AppendTo(ip[:0])
	var stamp [80]byte
	switch {
	case s.via.rport[1] != 0:
		// rport asked for: its value, and received (which rport implies).
		rp := strconv.AppendInt(append(stamp[:0], "rport="...), int64(from.addr.Port()), 10)
		edits[n] = edit{s.via.rport[0], s.via.rport[1], rp}
		n++
		edits[n] = edit{s.via.end, s.via.end, append(append(stamp[len(rp):len(rp)], ";received="...), src...)}
		n++
	case !bytes.Equal(s.via.host, src):
		edits[n] = edit{s.via.end, s.via.end, append(append(stamp[:0], ";received="...), src...)}
		n++
	}
	for j := 0; j < k; j++ {
		r := s.routes[j]
		if r.next != 0 && j+1 == k {
			// Popping stops inside this line: remove from the first value popped on it.
			first := j
			for first > 0 && s.routes[first-1].line == r.line {
				first--
			}
			edits[n] = edit{s.routes[first].start, s.routes[k].start, nil}
			n++
			continue
		}
		if r.next == 0 {
			edits[n] = edit{r.line[0], r.line[1], nil} // every value of the line popped
			n++
		}
		// Otherwise a later value of the same line is popped too: removed with it.
	}
	var mf [4]byte
	edits[n] = edit{s.mf[0], s.mf[1], strconv.AppendInt(mf[:0], int64(s.mfVal-1), 10)}
	n++
	sortEdits(edits[:n])

	branch := gvpsip.NewBranch("")
	b := getBuf()
	b.Write(data[:s.lineEnd])
	via0 := b.Len()
	writeOwnVia(b, dst.proto, p.host, p.port, branch)
	via1 := b.Len()
	at := s.lineEnd
	for _, e := range edits[:n] {
		b.Write(data[at:e.start])
		b.Write(e.repl)
		at = e.end
	}
	b.Write(data[at:])

	c := p.calls.get(bytesKey(s.callID))
	if c != nil {
		c.lastSeen.Store(time.Now().UnixNano())
	}
	if s.method == sip.ACK {
		_ = p.tp.send(dst, b.Bytes())
		putBuf(b)
		return true
	}
	out := append([]byte(nil), b.Bytes()...)
	putBuf(b)

	key := txKey{branch: string(s.via.branch), host: string(s.via.host), port: s.via.port, method: s.method}
	stx, created := p.newServerTx(key, s.method, from)
	if !created {
		if stx != nil {
			stx.retransmission()
		}
		return true
	}
	if c != nil && s.method == sip.BYE {
		reason := billing.EndPlatformHangup
		if string(s.fromTag) == c.callerTag {
			reason = billing.EndCallerHangup
		}
		p.endCall(c, reason, "", 0)
	}
	r := &relay{p: p, stx: stx, fixed: dst,
		raw: &rawRequest{method: s.method, branch: branch, data: out, via: [2]int{via0, via1}, parser: p.tp.parser}}
	stx.setRelay(r)
	r.tryNext()
	return true
}

// isOursScanned reports whether u names rm (the Record-Route it inserts).
func (p *proxy) isOursScanned(u uriScan) bool { return p.isOurHostPort(u.host, u.port) }

// isOurHostPort reports whether host and port (0 when absent: 5060) are rm's, as read in place.
func (p *proxy) isOurHostPort(host []byte, port int) bool {
	if port == 0 {
		port = sip.DefaultUdpPort
	}
	return port == p.port && bytes.EqualFold(host, p.hostBytes)
}

// scannedHop is where a request whose next hop is u goes: u's transport, else popped, else
// UDP; u's port, else 5060.
func (p *proxy) scannedHop(u uriScan, popped string) (peer, bool) {
	tr, port := hopTransportPort(u.transport, popped, u.port)
	if a, err := netip.ParseAddr(bytesKey(u.host)); err == nil {
		return peer{proto: tr, addr: netip.AddrPortFrom(a.Unmap(), uint16(port))}, true
	}
	a, err := resolve(context.Background(), string(u.host), port)
	if err != nil {
		return peer{}, false
	}
	return peer{proto: tr, addr: a}, true
}

// writeOwnVia writes rm's Via line as writeVia(gvpsip.NewVia(...)) does, CRLF included.
func writeOwnVia(b *bytes.Buffer, transport, host string, port int, branch string) {
	b.WriteString("Via: SIP/2.0/")
	b.WriteString(strings.ToUpper(transport))
	b.WriteByte(' ')
	b.WriteString(host)
	b.WriteByte(':')
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(port), 10))
	b.WriteString(";branch=")
	b.WriteString(branch)
	b.WriteString(";rport\r\n")
}

// sortEdits orders a few edits by position.
func sortEdits(e []edit) {
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].start < e[j-1].start; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
}
