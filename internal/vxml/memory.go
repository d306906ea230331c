package vxml

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opengvp/gvp/internal/media/g711"
	"github.com/opengvp/gvp/internal/media/wav"
)

// MemoryFetcher serves resources from memory; it is the Fetcher of tests
// and of applications embedded in the binary. Safe for concurrent use.
type MemoryFetcher struct {
	mu    sync.Mutex
	files map[string]memFile
	// Requests records every request received, in order.
	Requests []FetchRequest
}

type memFile struct {
	body        []byte
	contentType string
	status      int
	delay       bool
}

// NewMemoryFetcher returns an empty MemoryFetcher.
func NewMemoryFetcher() *MemoryFetcher { return &MemoryFetcher{files: map[string]memFile{}} }

// Add serves body at url (absolute, without query) with a content type.
func (m *MemoryFetcher) Add(url, contentType string, body []byte) {
	m.mu.Lock()
	m.files[url] = memFile{body: body, contentType: contentType}
	m.mu.Unlock()
}

// AddStatus makes url answer with an HTTP error status.
func (m *MemoryFetcher) AddStatus(url string, status int) {
	m.mu.Lock()
	m.files[url] = memFile{status: status}
	m.mu.Unlock()
}

// AddHang makes url never answer: the fetch ends when its context does
// (fetch timeout tests).
func (m *MemoryFetcher) AddHang(url string) {
	m.mu.Lock()
	m.files[url] = memFile{delay: true}
	m.mu.Unlock()
}

// Fetch implements Fetcher. The query string and fragment are ignored when
// looking the URL up.
func (m *MemoryFetcher) Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error) {
	key, _, _ := strings.Cut(req.URL, "#")
	key, _, _ = strings.Cut(key, "?")
	m.mu.Lock()
	m.Requests = append(m.Requests, *req)
	f, ok := m.files[key]
	m.mu.Unlock()
	switch {
	case !ok:
		return nil, &FetchError{URL: req.URL, StatusCode: 404}
	case f.status != 0:
		return nil, &FetchError{URL: req.URL, StatusCode: f.status}
	case f.delay:
		<-ctx.Done()
		return nil, &FetchError{URL: req.URL, Err: ctx.Err()}
	}
	return &FetchResponse{Body: f.body, ContentType: f.contentType, URL: req.URL}, nil
}

// Script tokens understood by ScriptedPlatform.
const (
	// ScriptTimeout makes the next WaitDigit time out.
	ScriptTimeout = "T"
	// ScriptHangup makes the next platform call report a hangup.
	ScriptHangup = "H"
)

// ScriptedPlatform is an in-memory Platform driven by a script of caller
// actions: each token is a DTMF key ("0"-"9", "*", "#", "A"-"D"), "T" for a
// timeout (silence until the interpreter's timer fires) or "H" for a
// hangup. When the script runs out the caller hangs up. Prompts barge in
// when bargein is on and the next token is a key. Time is virtual: no call
// ever sleeps.
type ScriptedPlatform struct {
	script []string
	// Played records rendered prompts.
	Played []*Prompt
	// Logs records <log> output as "label: message".
	Logs []string
	// Waits records the timeout of every WaitDigit call.
	Waits []time.Duration
	// RecordResult is returned by Record (nil: one second of silence in the
	// requested format: 8000 bytes of raw G.711, or a WAV file).
	RecordResult *RecordResult
	// Records records the record requests.
	Records []RecordRequest
	// TransferResult and TransferErr are returned by Transfer.
	TransferResult *TransferResult
	TransferErr    error
	// Transfers records transfer requests.
	Transfers    []TransferRequest
	Disconnected bool
}

// NewScriptedPlatform returns a platform playing the given script; tokens
// are separated by spaces, or given as one string of keys ("12#").
func NewScriptedPlatform(script string) *ScriptedPlatform {
	var toks []string
	for _, f := range strings.Fields(script) {
		if f == ScriptTimeout || f == ScriptHangup {
			toks = append(toks, f)
			continue
		}
		for _, c := range f {
			toks = append(toks, string(c))
		}
	}
	return &ScriptedPlatform{script: toks}
}

// Remaining returns the script tokens not consumed yet.
func (p *ScriptedPlatform) Remaining() []string { return p.script }

func (p *ScriptedPlatform) peek() string {
	if len(p.script) == 0 {
		return ScriptHangup
	}
	return p.script[0]
}

// Play implements Platform.
func (p *ScriptedPlatform) Play(ctx context.Context, pr *Prompt) (PlayResult, error) {
	if err := ctx.Err(); err != nil {
		return PlayResult{}, err
	}
	if p.peek() == ScriptHangup && len(p.script) > 0 {
		return PlayResult{}, ErrHangup
	}
	p.Played = append(p.Played, pr)
	t := p.peek()
	if pr.Bargein && t != ScriptTimeout && t != ScriptHangup {
		return PlayResult{BargedIn: true}, nil
	}
	return PlayResult{}, nil
}

// WaitDigit implements Platform.
func (p *ScriptedPlatform) WaitDigit(ctx context.Context, timeout time.Duration) (rune, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	p.Waits = append(p.Waits, timeout)
	t := p.peek()
	if t == ScriptHangup {
		if len(p.script) > 0 {
			p.script = p.script[1:]
		}
		return 0, false, ErrHangup
	}
	p.script = p.script[1:]
	if t == ScriptTimeout {
		return 0, false, nil
	}
	return []rune(t)[0], true, nil
}

// Record implements Platform.
func (p *ScriptedPlatform) Record(ctx context.Context, req *RecordRequest) (*RecordResult, error) {
	if p.peek() == ScriptHangup && len(p.script) > 0 {
		return nil, ErrHangup
	}
	p.Records = append(p.Records, *req)
	if p.RecordResult != nil {
		return p.RecordResult, nil
	}
	audio, err := encodeRecording(req.Format, make([]int16, 8000))
	if err != nil {
		return nil, err
	}
	return &RecordResult{Audio: audio, Type: req.Format.ContentType, Duration: time.Second}, nil
}

// encodeRecording encodes 8 kHz samples in format f with the media
// package's G.711 and WAV code.
func encodeRecording(f RecordFormat, samples []int16) ([]byte, error) {
	if f.Raw {
		out := make([]byte, len(samples))
		if f.Encoding == wav.EncodingALaw {
			g711.EncodeAlaw(out, samples)
		} else {
			g711.EncodeUlaw(out, samples)
		}
		return out, nil
	}
	var buf wav.Buffer
	w, err := wav.NewWriter(&buf, f.Encoding)
	if err != nil {
		return nil, err
	}
	if err := w.WriteSamples(samples); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Transfer implements Platform.
func (p *ScriptedPlatform) Transfer(ctx context.Context, req *TransferRequest) (*TransferResult, error) {
	p.Transfers = append(p.Transfers, *req)
	if p.TransferErr != nil {
		return nil, p.TransferErr
	}
	if p.TransferResult != nil {
		return p.TransferResult, nil
	}
	return &TransferResult{Status: TransferFarEndDisconnect, Duration: 10 * time.Second}, nil
}

// Disconnect implements Platform.
func (p *ScriptedPlatform) Disconnect(ctx context.Context) error {
	p.Disconnected = true
	return nil
}

// Log implements Platform.
func (p *ScriptedPlatform) Log(label, message string) {
	p.Logs = append(p.Logs, fmt.Sprintf("%s: %s", label, message))
}
