package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Content types of SIP INFO DTMF.
const (
	// contentDTMFRelay is the de-facto application/dtmf-relay body: "Signal=5\r\nDuration=160".
	contentDTMFRelay = "application/dtmf-relay"
	// contentDTMF is the application/dtmf body: the digit alone.
	contentDTMF = "application/dtmf"
	// maxInfoBody bounds a DTMF INFO body, in bytes.
	maxInfoBody = 1024
)

// errNotDTMF is returned by parseInfoDTMF for a content type that carries no DTMF.
var errNotDTMF = errors.New("not a DTMF content type")

// parseInfoDTMF reads the digit and duration of a SIP INFO body of type contentType
// (application/dtmf-relay or application/dtmf; parameters after ';' are ignored). Event codes
// 10 and 11 stand for '*' and '#' as some gateways send them. The duration is 0 when absent;
// dtmf-relay durations are in milliseconds.
func parseInfoDTMF(contentType string, body []byte) (rune, time.Duration, error) {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	if len(body) > maxInfoBody {
		return 0, 0, fmt.Errorf("dtmf info body of %d bytes is too large", len(body))
	}
	switch ct {
	case contentDTMF:
		d, err := dtmfDigit(string(bytes.TrimSpace(body)))
		return d, 0, err
	case contentDTMFRelay:
		var (
			digit rune
			dur   time.Duration
			found bool
		)
		for _, line := range strings.FieldsFunc(string(body), func(r rune) bool { return r == '\n' || r == '\r' }) {
			name, val, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
			switch name {
			case "signal":
				d, err := dtmfDigit(val)
				if err != nil {
					return 0, 0, err
				}
				digit, found = d, true
			case "duration":
				ms, err := strconv.Atoi(val)
				if err != nil || ms < 0 || ms > 60000 {
					return 0, 0, fmt.Errorf("dtmf-relay duration %q", val)
				}
				dur = time.Duration(ms) * time.Millisecond
			}
		}
		if !found {
			return 0, 0, errors.New("dtmf-relay body without Signal")
		}
		return digit, dur, nil
	}
	return 0, 0, errNotDTMF
}

// dtmfDigit maps one signal value to a DTMF character.
func dtmfDigit(s string) (rune, error) {
	switch s {
	case "10":
		return '*', nil
	case "11":
		return '#', nil
	}
	if len(s) != 1 {
		return 0, fmt.Errorf("dtmf signal %q", s)
	}
	c := rune(s[0])
	switch {
	case c >= '0' && c <= '9', c == '*', c == '#':
		return c, nil
	case c >= 'A' && c <= 'D':
		return c, nil
	case c >= 'a' && c <= 'd':
		return c - 'a' + 'A', nil
	}
	return 0, fmt.Errorf("dtmf signal %q", s)
}
