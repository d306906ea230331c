package confmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in documents as a Go duration string ("5s", "1m30s") or
// as a number of seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return d.parse(s)
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("invalid duration %s: want a string like \"5s\" or a number of seconds", b)
	}
	return d.seconds(f)
}

// UnmarshalYAML reads a duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: invalid duration: want a string like \"5s\" or a number of seconds", n.Line)
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return fmt.Errorf("line %d: invalid duration %q", n.Line, n.Value)
		}
		return d.seconds(f)
	}
	if err := d.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a string like \"5s\"", s)
	}
	*d = Duration(v)
	return nil
}

func (d *Duration) seconds(f float64) error {
	if f < 0 || f > float64(1<<62)/float64(time.Second) {
		return fmt.Errorf("invalid duration %v seconds", f)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Response is a SIP final response written `code[;reason]`, e.g. "403" or "480;Busy Here".
type Response struct {
	// Code is the SIP status code, 400-699.
	Code int
	// Reason is the reason phrase; empty means the standard one for Code.
	Reason string
}

// Limits of Response.
const (
	minResponseCode = 400
	maxResponseCode = 699
	// maxReasonLen is the longest reason phrase accepted, in bytes.
	maxReasonLen = 128
)

// String formats r as `code[;reason]`.
func (r Response) String() string {
	if r.Reason == "" {
		return strconv.Itoa(r.Code)
	}
	return strconv.Itoa(r.Code) + ";" + r.Reason
}

// ParseResponse parses `code[;reason]`: a three-digit code from 400 to 699, optionally followed
// by a semicolon and a reason phrase of printable characters (no control characters, at most
// 128 bytes).
func ParseResponse(s string) (Response, error) {
	code, reason, hasReason := strings.Cut(strings.TrimSpace(s), ";")
	code = strings.TrimSpace(code)
	if len(code) != 3 {
		return Response{}, fmt.Errorf("invalid response %q: want code[;reason] with a code from 400 to 699", s)
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < minResponseCode || n > maxResponseCode {
		return Response{}, fmt.Errorf("invalid response %q: want code[;reason] with a code from 400 to 699", s)
	}
	reason = strings.TrimSpace(reason)
	if hasReason && reason == "" {
		return Response{}, fmt.Errorf("invalid response %q: empty reason after ';'", s)
	}
	if len(reason) > maxReasonLen {
		return Response{}, fmt.Errorf("invalid response %q: reason longer than %d bytes", s, maxReasonLen)
	}
	for _, c := range reason {
		if c < 0x20 || c == 0x7f {
			return Response{}, fmt.Errorf("invalid response %q: control character in reason", s)
		}
	}
	return Response{Code: n, Reason: reason}, nil
}

// mustResponse parses a response known to be valid (a default).
func mustResponse(s string) Response {
	r, err := ParseResponse(s)
	if err != nil {
		panic(err)
	}
	return r
}

// FieldError is one problem with one object: the object, the field (a dotted path such as
// "policy.usageLimit"; empty for the whole object) and a message. Document is the 0-based
// index of the document the object came from, or -1 when unknown.
type FieldError struct {
	Document int    `json:"document"`
	Kind     Kind   `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	// RefersTo is set when the problem is a reference to a missing object: the object referred to.
	RefersTo *Ref `json:"refersTo,omitempty"`
}

// Error formats e as `document 2 (IVRProfile "t100/billing"): field "policy.usageLimit": message`.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Document >= 0 {
		fmt.Fprintf(&b, "document %d", e.Document)
	}
	if e.Kind != "" {
		if b.Len() > 0 {
			b.WriteString(" (")
			fmt.Fprintf(&b, "%s %q)", e.Kind, e.Name)
		} else {
			fmt.Fprintf(&b, "%s %q", e.Kind, e.Name)
		}
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		fmt.Fprintf(&b, "field %q", e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ErrorList is a list of FieldErrors; it is an error when not empty. Errors are kept in the
// order found.
type ErrorList []FieldError

// ErrInvalid is matched by errors.Is for every ErrorList.
var ErrInvalid = errors.New("invalid configuration")

// maxErrorsInMessage bounds how many errors Error() spells out.
const maxErrorsInMessage = 20

// Error joins the errors, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == maxErrorsInMessage {
			fmt.Fprintf(&b, "\n... and %d more", len(l)-i)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Is makes errors.Is(l, ErrInvalid) true.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }

// Err returns l as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l *ErrorList) add(o Object, field, format string, args ...any) {
	*l = append(*l, FieldError{Document: -1, Kind: o.Kind(), Name: o.Key(), Field: field,
		Message: fmt.Sprintf(format, args...)})
}

func (l *ErrorList) addRef(o Object, field string, to Ref, format string, args ...any) {
	*l = append(*l, FieldError{Document: -1, Kind: o.Kind(), Name: o.Key(), Field: field,
		Message: fmt.Sprintf(format, args...), RefersTo: &to})
}

// AsErrorList returns the ErrorList inside err, if any.
func AsErrorList(err error) (ErrorList, bool) {
	var l ErrorList
	if errors.As(err, &l) {
		return l, true
	}
	return nil, false
}
