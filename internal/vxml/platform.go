package vxml

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Fetcher retrieves documents, scripts, grammars and data for an
// interpreter. Implementations carry the transport (HTTP with caching in the
// mcp, a map in tests). Fetch must honour ctx cancellation; the interpreter
// also bounds each fetch with the fetchtimeout property. Fetch must be safe
// for concurrent use: a fetch with fetchaudio runs on its own goroutine
// while the session's goroutine plays the audio.
type Fetcher interface {
	Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error)
}

// FetchKind tells a Fetcher what a resource is for (cache policy, Accept).
type FetchKind string

// Fetch kinds.
const (
	FetchDocument FetchKind = "document"
	FetchScript   FetchKind = "script"
	FetchGrammar  FetchKind = "grammar"
	FetchData     FetchKind = "data"
	FetchAudio    FetchKind = "audio"
)

// Enctypes for submitted values.
const (
	EnctypeURLEncoded = "application/x-www-form-urlencoded"
	EnctypeMultipart  = "multipart/form-data"
)

// FetchRequest describes one fetch.
type FetchRequest struct {
	// URL is absolute, resolved against the current document.
	URL  string
	Kind FetchKind
	// Method is "GET" or "POST".
	Method string
	// Enctype applies to Values on POST (EnctypeURLEncoded by default).
	Enctype string
	// Values are the submitted namelist variables in order. A Value is a
	// string or, for recordings, a FileValue (sent as a file part with
	// multipart/form-data; other ArrayBuffers arrive as []byte).
	Values []NameValue
	// Timeout is the fetchtimeout property.
	Timeout time.Duration
	// MaxAge and MaxStale are the maxage/maxstale attributes or properties;
	// negative when not set.
	MaxAge, MaxStale time.Duration
}

// NameValue is one submitted variable.
type NameValue struct {
	Name  string
	Value any
}

// FileValue is a submitted value sent as a file part with
// multipart/form-data: a recording with its media type and file name.
type FileValue struct {
	// Filename is the part's file name (the variable name and an extension
	// for the format).
	Filename string
	// ContentType is the part's media type (the <record> type).
	ContentType string
	Data        []byte
}

// FetchResponse is a fetched resource.
type FetchResponse struct {
	Body        []byte
	ContentType string
	// URL is the final URL after redirects; relative URLs in the resource
	// resolve against it.
	URL string
}

// FetchError reports a failed fetch. StatusCode is the HTTP status when the
// server answered (the interpreter then throws error.badfetch.http.NNN),
// zero otherwise (error.badfetch).
type FetchError struct {
	URL        string
	StatusCode int
	Err        error
}

func (e *FetchError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("fetch %s: http status %d", e.URL, e.StatusCode)
	}
	return fmt.Sprintf("fetch %s: %v", e.URL, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// ErrHangup is returned by Platform methods when the caller has hung up.
// The interpreter then throws connection.disconnect.hangup.
var ErrHangup = errors.New("caller hung up")

// Platform is the call seen by the interpreter: prompt playback, DTMF input,
// recording, transfer and disconnect. The interpreter drives all input
// timing through WaitDigit. Methods are called from one goroutine.
type Platform interface {
	// Play renders one prompt. It returns when the prompt has finished, or
	// early when Bargein is true and the caller pressed a key (the key stays
	// buffered for WaitDigit and the result is BargedIn). Keys pressed
	// during a prompt with Bargein false are discarded. When ctx ends first
	// (a fetchaudio stopped because its fetch completed) it stops the audio
	// and returns ctx's error.
	Play(ctx context.Context, p *Prompt) (PlayResult, error)
	// WaitDigit returns the next buffered or arriving DTMF key, waiting at
	// most timeout; ok is false when the timeout elapsed without a key.
	WaitDigit(ctx context.Context, timeout time.Duration) (key rune, ok bool, err error)
	// Record captures caller audio (the <record> element).
	Record(ctx context.Context, req *RecordRequest) (*RecordResult, error)
	// Transfer connects the caller to another party (the <transfer> element).
	// Errors that are *Event values are thrown as is (error.connection.*).
	Transfer(ctx context.Context, req *TransferRequest) (*TransferResult, error)
	// Disconnect hangs up the call.
	Disconnect(ctx context.Context) error
	// Log receives <log> output.
	Log(label, message string)
}

// PlayResult is the outcome of Platform.Play.
type PlayResult struct {
	BargedIn bool
	// Mark is the name of the last <mark> reached, if any.
	Mark string
}

// PartKind is the kind of a prompt part.
type PartKind int

// Prompt part kinds.
const (
	PartText PartKind = iota
	PartAudio
	PartBreak
	PartMark
)

// PromptPart is one piece of a rendered prompt.
type PromptPart struct {
	Kind PartKind
	// Text is the text to speak (PartText), or the fallback text of an
	// audio part.
	Text string
	// URL is the audio URL (PartAudio), resolved against the document.
	URL string
	// Duration is a break's length.
	Duration time.Duration
	// Name is the mark name (PartMark).
	Name string
}

// Prompt is a rendered, ready to play prompt.
type Prompt struct {
	Bargein bool
	// BargeinType is "speech" or "hotword".
	BargeinType string
	// Timeout is the prompt's timeout attribute (0 when not set).
	Timeout time.Duration
	// Lang is the xml:lang in force.
	Lang string
	// SSML is the prompt as an SSML <speak> document with values expanded.
	SSML string
	// Parts is the same content flattened for simple renderers.
	Parts []PromptPart
}

// Text returns the concatenated text parts (audio fallbacks included).
func (p *Prompt) Text() string {
	var b []byte
	for _, pt := range p.Parts {
		if pt.Kind == PartText || pt.Kind == PartAudio {
			if len(b) > 0 && pt.Text != "" {
				b = append(b, ' ')
			}
			b = append(b, pt.Text...)
		}
	}
	return string(b)
}

// RecordRequest carries the <record> attributes.
type RecordRequest struct {
	Beep         bool
	MaxTime      time.Duration
	FinalSilence time.Duration
	DTMFTerm     bool
	// Type is the type attribute as written; Format is what it resolves
	// to (ParseRecordType), the format Audio must have.
	Type   string
	Format RecordFormat
}

// RecordResult is a finished recording.
type RecordResult struct {
	// Audio is the recording in the requested Format (empty: nothing was
	// heard, the interpreter throws noinput).
	Audio []byte
	// Type is the media type of Audio (Format.ContentType when empty).
	Type string
	// Duration is the length of the audio; the name$.duration shadow
	// variable gives it in milliseconds.
	Duration time.Duration
	// TermChar is the key that ended the recording, 0 if none.
	TermChar rune
	MaxTime  bool
}

// TransferRequest carries the <transfer> attributes.
type TransferRequest struct {
	Dest string
	// Type is "blind", "bridge" or "consultation". A consultation transfer is placed like a
	// bridge: a failure is reported to the document (busy, noanswer, ...), a success
	// (TransferConnected) ends the session as a blind transfer does.
	Type           string
	ConnectTimeout time.Duration
	MaxTime        time.Duration
	AAI            string
	// TransferAudio is the absolute URI of the audio to play to the caller until the callee
	// answers (the transferaudio attribute), played once; empty leaves it to the platform
	// (ringback or the callee's early media). A fetch failure is ignored (VoiceXML 2.0 2.3.7).
	TransferAudio string
}

// Transfer outcomes for TransferResult.Status (VoiceXML 2.0 2.3.7.2).
const (
	TransferBusy              = "busy"
	TransferNoAnswer          = "noanswer"
	TransferNetworkBusy       = "network_busy"
	TransferNearEndDisconnect = "near_end_disconnect"
	TransferFarEndDisconnect  = "far_end_disconnect"
	TransferNetworkDisconnect = "network_disconnect"
	TransferMaxTimeDisconnect = "maxtime_disconnect"
	TransferUnknown           = "unknown"
	// TransferConnected is what a platform returns for a consultation transfer whose callee
	// answered: the platform has taken the call over and the interpreter ends the session
	// with connection.disconnect.transfer, as after a blind transfer (VoiceXML 2.1 2.3.7).
	TransferConnected = "connected"
)

// TransferResult is the outcome of a transfer.
type TransferResult struct {
	Status   string
	Duration time.Duration
}

// SessionInfo is the session.* data set by the platform at session start.
type SessionInfo struct {
	LocalURI, RemoteURI string
	// Originator is "remote" (inbound) or "local".
	Originator      string
	ProtocolName    string
	ProtocolVersion string
	// SIPHeaders are the INVITE's headers (lowercase names).
	SIPHeaders map[string]string
	// RequestURI holds the Request-URI parameters.
	RequestURI map[string]string
	Redirect   []Redirect
	AAI        string
	// Variables are extra session.* variables (platform specific).
	Variables map[string]any
}

// Redirect is one entry of session.connection.redirect.
type Redirect struct {
	URI, PI, SI, Reason string
}
