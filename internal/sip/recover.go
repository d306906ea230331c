package sip

import (
	"bytes"
	"strconv"
)

// Limits of BadRequest.
const (
	// maxRecoverLine bounds one header line copied into a recovered 400, in bytes.
	maxRecoverLine = 1024
	// maxRecoverVias bounds the Via lines copied into a recovered 400.
	maxRecoverVias = 16
)

// Recovered is what BadRequest could read from a request that does not parse.
type Recovered struct {
	// Method is the request method.
	Method string
	// Response is a complete 400 Bad Request to send back, with the request's Via, From, To,
	// Call-ID and CSeq lines copied verbatim.
	Response []byte
	// Via is the top Via value, for routing the response.
	Via string
}

// BadRequest looks for a request line and at least one Via header in data, a SIP message
// that failed to parse, and builds the 400 Bad Request that RFC 3261 16.3 asks a proxy to answer
// with. It returns false when data is a response, an ACK (never answered), has no request line
// or no Via: then the message can only be dropped. reason, when not empty, goes in a Warning
// header (code 399).
func BadRequest(data []byte, reason string) (Recovered, bool) {
	var r Recovered
	line, rest := cutLine(data)
	method, ok := requestLineMethod(line)
	if !ok || method == "ACK" {
		return r, false
	}
	r.Method = method
	var (
		vias                   [][]byte
		from, to, callID, cseq []byte
	)
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break // end of headers
		}
		if len(line) > maxRecoverLine {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := string(bytes.ToLower(bytes.TrimSpace(line[:colon])))
		val := bytes.TrimSpace(line[colon+1:])
		if len(val) == 0 || !printable(val) {
			continue
		}
		switch name {
		case "via", "v":
			if len(vias) < maxRecoverVias {
				vias = append(vias, val)
			}
		case "from", "f":
			from = val
		case "to", "t":
			to = val
		case "call-id", "i":
			callID = val
		case "cseq":
			cseq = val
		}
	}
	if len(vias) == 0 {
		return r, false
	}
	var b bytes.Buffer
	b.WriteString("SIP/2.0 400 Bad Request\r\n")
	for _, v := range vias {
		b.WriteString("Via: ")
		b.Write(v)
		b.WriteString("\r\n")
	}
	for _, h := range []struct {
		n string
		v []byte
	}{{"From", from}, {"To", to}, {"Call-ID", callID}, {"CSeq", cseq}} {
		if h.v != nil {
			b.WriteString(h.n)
			b.WriteString(": ")
			b.Write(h.v)
			b.WriteString("\r\n")
		}
	}
	if reason != "" {
		b.WriteString("Warning: 399 gvp ")
		b.WriteString(strconv.Quote(sanitize(reason)))
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	r.Response = b.Bytes()
	r.Via = string(vias[0])
	return r, true
}

// cutLine splits data at the first line end (CRLF or a bare LF).
func cutLine(data []byte) (line, rest []byte) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return data, nil
	}
	line = data[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, data[i+1:]
}

// requestLineMethod returns the method of a line shaped `METHOD SP Request-URI SP SIP/x.y`.
func requestLineMethod(line []byte) (string, bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return "", false
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1 {
		return "", false
	}
	if !bytes.HasPrefix(bytes.ToUpper(line[sp2+1:]), []byte("SIP/")) {
		return "", false
	}
	m := line[:sp1]
	for _, c := range m {
		if !isToken(c) {
			return "", false
		}
	}
	return string(m), true
}

func isToken(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// printable reports whether v holds no control characters (tab allowed): a value copied into
// a response must not smuggle line breaks.
func printable(v []byte) bool {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			b[i] = ' '
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
