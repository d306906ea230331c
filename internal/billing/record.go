// Package billing holds the call detail record (CDR) and call event model
// shared by rm, mcp and rs, their JSON encoding, and the publishers that carry
// records from a producer to the message broker: a disk-spooled STOMP
// publisher for production and a logging publisher for tests.
//
// A CDR is emitted twice for one call: at call start (state in_progress) and
// at call end (state completed), both with the same record id, so the store
// upserts one row per call. Call events each carry their own record id.
package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Broker destinations of billing records, as given by the product spec.
const (
	// CDRDestination is the queue that carries CDRs.
	CDRDestination = "/queue/gvp.cdr"
	// EventDestination is the queue that carries call events.
	EventDestination = "/queue/gvp.events"
)

// MaxRecordSize is the largest encoded record accepted, in bytes (1 MiB).
// Larger records are rejected by Publish and by the decoders.
const MaxRecordSize = 1 << 20

// Component is the kind of platform component that wrote a record.
type Component string

// Components that write records.
const (
	ComponentRM  Component = "rm"
	ComponentMCP Component = "mcp"
)

// State is the life-cycle state of a CDR.
type State string

// CDR states. A completed record always wins over an in-progress one.
const (
	StateInProgress State = "in_progress"
	StateCompleted  State = "completed"
)

// EndReason tells why a call ended.
type EndReason string

// End reasons of a completed CDR.
const (
	EndCallerHangup   EndReason = "caller_hangup"
	EndPlatformHangup EndReason = "platform_hangup"
	EndTransfer       EndReason = "transfer"
	EndError          EndReason = "error"    // EndDetail says what failed
	EndRejected       EndReason = "rejected" // EndCode holds the SIP status code
)

// Record is anything the publishers carry: a *CDR or an *Event.
type Record interface {
	// RecordID returns the record's unique id, sent in the record-id header.
	RecordID() string
	// Destination returns the broker destination of the record.
	Destination() string
	// Validate reports whether the record is complete enough to be stored.
	Validate() error
	// AppendJSON appends the record's JSON encoding to dst.
	AppendJSON(dst []byte) ([]byte, error)
}

// CDR is one call detail record as seen by one component (an rm or an mcp).
// Times are UTC; zero times are omitted from JSON.
type CDR struct {
	ID            string    `json:"record_id"`
	SessionID     string    `json:"gvp_session_id"`
	Component     Component `json:"component"`
	ComponentName string    `json:"component_name,omitempty"`
	State         State     `json:"state"`
	TenantID      string    `json:"tenant_id,omitempty"`
	TenantName    string    `json:"tenant_name,omitempty"`
	Profile       string    `json:"ivr_profile,omitempty"`
	ServiceType   string    `json:"service_type,omitempty"`
	DNIS          string    `json:"dnis,omitempty"`
	ANI           string    `json:"ani,omitempty"`
	LocalURI      string    `json:"local_uri,omitempty"`
	RemoteURI     string    `json:"remote_uri,omitempty"`
	CallID        string    `json:"call_id,omitempty"`
	MCP           string    `json:"mcp,omitempty"`
	Start         time.Time `json:"start"`
	Answer        time.Time `json:"answer,omitzero"`
	End           time.Time `json:"end,omitzero"`
	// Duration is End-Start, in milliseconds in JSON (field duration_ms).
	Duration  time.Duration `json:"-"`
	EndReason EndReason     `json:"end_reason,omitempty"`
	EndDetail string        `json:"end_detail,omitempty"`
	EndCode   int           `json:"end_code,omitempty"`
}

// NewRecordID returns a new random (version 4) record id.
func NewRecordID() string { return uuid.NewString() }

// RecordID implements Record.
func (c *CDR) RecordID() string { return c.ID }

// Destination implements Record: CDRDestination.
func (c *CDR) Destination() string { return CDRDestination }

// Complete marks the record completed at end with the given reason, sets the
// duration from Start, and returns c. detail is kept for EndError, code for
// EndRejected.
func (c *CDR) Complete(end time.Time, reason EndReason, detail string, code int) *CDR {
	c.State = StateCompleted
	c.End = end.UTC()
	if !c.Start.IsZero() && c.End.After(c.Start) {
		c.Duration = c.End.Sub(c.Start)
	}
	c.EndReason = reason
	c.EndDetail = detail
	c.EndCode = code
	return c
}

// Validation errors.
var (
	ErrMissingID      = errors.New("missing record id")
	ErrMissingSession = errors.New("missing gvp session id")
	ErrBadComponent   = errors.New("component must be rm or mcp")
	ErrBadState       = errors.New("state must be in_progress or completed")
	ErrMissingStart   = errors.New("missing start time")
	ErrBadEnd         = errors.New("a completed record needs an end time and an end reason")
	ErrMissingKind    = errors.New("missing event kind")
	ErrMissingTime    = errors.New("missing event time")
	ErrTooLarge       = fmt.Errorf("record larger than %d bytes", MaxRecordSize)
)

// Validate implements Record.
func (c *CDR) Validate() error {
	switch {
	case c.ID == "":
		return ErrMissingID
	case c.SessionID == "":
		return ErrMissingSession
	case c.Component != ComponentRM && c.Component != ComponentMCP:
		return fmt.Errorf("%w: %q", ErrBadComponent, c.Component)
	case c.State != StateInProgress && c.State != StateCompleted:
		return fmt.Errorf("%w: %q", ErrBadState, c.State)
	case c.Start.IsZero():
		return ErrMissingStart
	case c.State == StateCompleted && (c.End.IsZero() || c.EndReason == ""):
		return ErrBadEnd
	}
	return nil
}

// cdrJSON adds the JSON-only duration field.
type cdrJSON struct {
	*cdrAlias
	DurationMS int64 `json:"duration_ms,omitempty"`
}

type cdrAlias CDR

// MarshalJSON encodes the record with its duration in milliseconds.
func (c *CDR) MarshalJSON() ([]byte, error) { return c.AppendJSON(nil) }

// UnmarshalJSON decodes a record encoded by MarshalJSON.
func (c *CDR) UnmarshalJSON(b []byte) error {
	v := cdrJSON{cdrAlias: (*cdrAlias)(c)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.Duration = time.Duration(v.DurationMS) * time.Millisecond
	return nil
}

// Event is one call event (a prompt played, a transfer started, a
// recognition result, ...). Each event has its own record id.
type Event struct {
	ID        string    `json:"record_id"`
	SessionID string    `json:"gvp_session_id"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Detail    string    `json:"detail,omitempty"`
}

// NewEvent returns an event with a new record id.
func NewEvent(sessionID string, at time.Time, kind, detail string) *Event {
	return &Event{ID: NewRecordID(), SessionID: sessionID, Time: at.UTC(), Kind: kind, Detail: detail}
}

// RecordID implements Record.
func (e *Event) RecordID() string { return e.ID }

// Destination implements Record: EventDestination.
func (e *Event) Destination() string { return EventDestination }

// Validate implements Record.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return ErrMissingID
	case e.SessionID == "":
		return ErrMissingSession
	case e.Kind == "":
		return ErrMissingKind
	case e.Time.IsZero():
		return ErrMissingTime
	}
	return nil
}

// Encode validates rec and returns its JSON body.
func Encode(rec Record) ([]byte, error) { return AppendEncoded(nil, rec) }

// AppendEncoded validates rec and appends its JSON body to dst. On error dst is returned
// unchanged.
func AppendEncoded(dst []byte, rec Record) ([]byte, error) {
	if err := rec.Validate(); err != nil {
		return dst, fmt.Errorf("validate record %q: %w", rec.RecordID(), err)
	}
	n := len(dst)
	b, err := rec.AppendJSON(dst)
	if err != nil {
		return dst, fmt.Errorf("encode record %q: %w", rec.RecordID(), err)
	}
	if len(b)-n > MaxRecordSize {
		return b[:n], fmt.Errorf("encode record %q: %w", rec.RecordID(), ErrTooLarge)
	}
	return b, nil
}

// Decode parses a record body received on destination (CDRDestination or
// EventDestination) and validates it. headerID, when not empty, must equal the
// id in the body.
func Decode(destination, headerID string, body []byte) (Record, error) {
	if len(body) > MaxRecordSize {
		return nil, ErrTooLarge
	}
	var rec Record
	switch destination {
	case CDRDestination:
		c := new(CDR)
		if err := json.Unmarshal(body, c); err != nil {
			return nil, fmt.Errorf("decode cdr: %w", err)
		}
		rec = c
	case EventDestination:
		e := new(Event)
		if err := json.Unmarshal(body, e); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		rec = e
	default:
		return nil, fmt.Errorf("decode record: unknown destination %q", destination)
	}
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if headerID != "" && headerID != rec.RecordID() {
		return nil, fmt.Errorf("decode record: header record-id %q differs from body %q", headerID, rec.RecordID())
	}
	return rec, nil
}
