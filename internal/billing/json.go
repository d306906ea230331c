package billing

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// The encoders below write the same JSON as encoding/json does for the record types (same
// fields, same order, same omissions), without reflection: a record is encoded on every call
// start and end of every role, and encoding/json's reflective path was a large share of rm's
// CPU per call. TestAppendJSONMatchesEncodingJSON and FuzzAppendJSON hold them equal.

// errTimeRange is returned for a time encoding/json cannot encode either.
var errTimeRange = errors.New("time outside years 0-9999")

// AppendJSON appends the JSON encoding of c to dst.
func (c *CDR) AppendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = appendRecordHead(dst, c.ID, c.SessionID)
	dst = appendString(dst, `,"component":`, string(c.Component))
	dst = appendOptString(dst, `,"component_name":`, c.ComponentName)
	dst = appendString(dst, `,"state":`, string(c.State))
	dst = appendOptString(dst, `,"tenant_id":`, c.TenantID)
	dst = appendOptString(dst, `,"tenant_name":`, c.TenantName)
	dst = appendOptString(dst, `,"ivr_profile":`, c.Profile)
	dst = appendOptString(dst, `,"service_type":`, c.ServiceType)
	dst = appendOptString(dst, `,"dnis":`, c.DNIS)
	dst = appendOptString(dst, `,"ani":`, c.ANI)
	dst = appendOptString(dst, `,"local_uri":`, c.LocalURI)
	dst = appendOptString(dst, `,"remote_uri":`, c.RemoteURI)
	dst = appendOptString(dst, `,"call_id":`, c.CallID)
	dst = appendOptString(dst, `,"mcp":`, c.MCP)
	if dst, err = appendTime(dst, `,"start":`, c.Start); err != nil {
		return dst, err
	}
	if dst, err = appendOptTime(dst, `,"answer":`, c.Answer); err != nil {
		return dst, err
	}
	if dst, err = appendOptTime(dst, `,"end":`, c.End); err != nil {
		return dst, err
	}
	dst = appendOptString(dst, `,"end_reason":`, string(c.EndReason))
	dst = appendOptString(dst, `,"end_detail":`, c.EndDetail)
	dst = appendOptInt(dst, `,"end_code":`, int64(c.EndCode))
	dst = appendOptInt(dst, `,"duration_ms":`, c.Duration.Milliseconds())
	return append(dst, '}'), nil
}

// AppendJSON appends the JSON encoding of e to dst.
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = appendRecordHead(dst, e.ID, e.SessionID)
	if dst, err = appendTime(dst, `,"time":`, e.Time); err != nil {
		return dst, err
	}
	dst = appendString(dst, `,"kind":`, e.Kind)
	dst = appendOptString(dst, `,"detail":`, e.Detail)
	return append(dst, '}'), nil
}

// appendRecordHead opens a record's object with the fields every record starts with.
func appendRecordHead(dst []byte, id, session string) []byte {
	dst = appendString(append(dst, '{'), `"record_id":`, id)
	return appendString(dst, `,"gvp_session_id":`, session)
}

// appendString appends key and s.
func appendString(dst []byte, key, s string) []byte {
	return appendJSONString(append(dst, key...), s)
}

// appendOptInt appends key and n unless n is 0 (omitempty).
func appendOptInt(dst []byte, key string, n int64) []byte {
	if n == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), n, 10)
}

// appendOptTime appends key and t unless t is zero (omitzero).
func appendOptTime(dst []byte, key string, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return dst, nil
	}
	return appendTime(dst, key, t)
}

// appendTime appends key and t.
func appendTime(dst []byte, key string, t time.Time) ([]byte, error) {
	return appendJSONTime(append(dst, key...), t)
}

// appendOptString appends key and s unless s is empty (omitempty).
func appendOptString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(dst, key, s)
}

// appendJSONTime appends t as encoding/json does: an RFC 3339 string with nanoseconds.
func appendJSONTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, errTimeRange
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json escapes it: quote,
// backslash, control characters, <, > and & (HTML-safe), U+2028 and U+2029; invalid UTF-8 becomes
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
