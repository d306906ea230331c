package vxml

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

const (
	// DefaultMaxSubdialogDepth is the default deepest nesting of subdialog
	// calls; a deeper call throws error.semantic.
	DefaultMaxSubdialogDepth = 16
	// DefaultMaxStepsWithoutInput is the default number of FIA iterations
	// (item visits and dialog transitions) allowed without collecting input;
	// past it error.semantic is thrown, and at twice it the session ends.
	DefaultMaxStepsWithoutInput = 1000
	// DefaultMaxTrace is the default number of trace entries kept per call.
	DefaultMaxTrace = 2000
	// DefaultFetchTimeout is the fetchtimeout property's default.
	DefaultFetchTimeout = 30 * time.Second
	// maxEventChain bounds events thrown by catch handlers in a row.
	maxEventChain = 64
)

// Config configures an Interpreter.
type Config struct {
	// Fetcher retrieves documents and resources. Required.
	Fetcher Fetcher
	// Cache shares parsed documents and grammars between sessions; nil
	// makes a private cache of DefaultCacheEntries.
	Cache *Cache
	// ScriptBudget bounds one script or expression evaluation
	// (DefaultScriptBudget).
	ScriptBudget time.Duration
	// MaxCallStack bounds ECMAScript recursion (DefaultMaxCallStack).
	MaxCallStack int
	// ScriptHeapGrowth bounds the heap growth during one script or expression, in bytes
	// (DefaultScriptHeapGrowth; see memwatch.go).
	ScriptHeapGrowth uint64
	// MaxSubdialogDepth bounds nested subdialogs (DefaultMaxSubdialogDepth).
	MaxSubdialogDepth int
	// MaxStepsWithoutInput bounds transitions without input
	// (DefaultMaxStepsWithoutInput).
	MaxStepsWithoutInput int
	// MaxTrace bounds the trace entries kept per call (DefaultMaxTrace).
	MaxTrace int
	// Limits bounds parsed documents (xmltree defaults when zero).
	Limits xmltree.Limits
	// Logger receives debug output; default zerolog.Nop().
	Logger zerolog.Logger
}

// DefaultConfig returns a Config with every default set and no Fetcher.
func DefaultConfig() Config {
	return Config{
		ScriptBudget:         DefaultScriptBudget,
		MaxCallStack:         DefaultMaxCallStack,
		ScriptHeapGrowth:     DefaultScriptHeapGrowth,
		MaxSubdialogDepth:    DefaultMaxSubdialogDepth,
		MaxStepsWithoutInput: DefaultMaxStepsWithoutInput,
		MaxTrace:             DefaultMaxTrace,
		Logger:               zerolog.Nop(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Fetcher == nil {
		return errors.New("vxml: Fetcher is required")
	}
	if c.ScriptBudget <= 0 || c.MaxCallStack <= 0 || c.MaxSubdialogDepth <= 0 || c.MaxStepsWithoutInput <= 0 || c.MaxTrace <= 0 {
		return errors.New("vxml: limits must be positive")
	}
	return nil
}

// Interpreter runs VoiceXML applications. It is safe for concurrent use:
// each Run is one call with its own ECMAScript runtime, sharing parsed
// documents through the Cache.
type Interpreter struct {
	cfg   Config
	cache *Cache
}

// New returns an Interpreter.
func New(cfg Config) (*Interpreter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.Cache
	if c == nil {
		c = NewCache(DefaultCacheEntries)
	}
	return &Interpreter{cfg: cfg, cache: c}, nil
}

// Reason tells why a session ended.
type Reason string

// Session end reasons.
const (
	// ReasonExit: <exit>, end of the last form, or an uncaught exit event.
	ReasonExit Reason = "exit"
	// ReasonDisconnect: the application executed <disconnect>.
	ReasonDisconnect Reason = "disconnect"
	// ReasonHangup: the caller hung up.
	ReasonHangup Reason = "hangup"
	// ReasonTransfer: a blind transfer succeeded.
	ReasonTransfer Reason = "transfer"
	// ReasonError: an uncaught error event (Event names it) or a fatal
	// platform failure.
	ReasonError Reason = "error"
)

// Result is the outcome of a session.
type Result struct {
	Reason Reason
	// Value is the exported <exit expr> value.
	Value any
	// Namelist holds <exit namelist> or <disconnect namelist> variables.
	Namelist map[string]any
	// Event and Message name the uncaught event for ReasonError.
	Event, Message string
	// Err is a fatal non-VoiceXML error (context cancelled, platform).
	Err   error
	Trace []TraceEntry
	// TraceDropped counts entries past Config.MaxTrace.
	TraceDropped int
}

// TraceEntry is one step of a call's execution.
type TraceEntry struct {
	// At is the time since the session started.
	At     time.Duration
	Kind   string
	Detail string
}

func (t TraceEntry) String() string { return t.Kind + " " + t.Detail }

// Trace kinds.
const (
	TraceFetch    = "fetch"
	TraceDocument = "document"
	TraceDialog   = "dialog"
	TraceItem     = "item"
	TraceEvent    = "event"
	TraceCatch    = "catch"
	TraceInput    = "input"
	TracePrompt   = "prompt"
	TraceLog      = "log"
	TraceEnd      = "end"
)

type session struct {
	in        *Interpreter
	cfg       *Config
	ctx       context.Context
	p         Platform
	js        *scriptEnv
	start     time.Time
	res       *Result
	queue     []*Prompt
	lastTmo   time.Duration
	pending   []rune // keys read past a complete match, replayed first
	steps     int
	final     bool // final processing state (after disconnect/hangup)
	endReason Reason
	namelist  map[string]any
	// recSym keys the media type attached to recording values.
	recSym *goja.Symbol
}

// Run executes the application whose first document is at url until it
// exits, the caller hangs up or ctx is cancelled. It never panics on bad
// documents or scripts: every failure ends as a Result with a trace.
func (in *Interpreter) Run(ctx context.Context, p Platform, info SessionInfo, startURL string) *Result {
	s := &session{in: in, cfg: &in.cfg, ctx: ctx, p: p, start: time.Now(), res: &Result{}}
	s.js = newScriptEnv(in.cfg.ScriptBudget, in.cfg.MaxCallStack)
	s.js.maxHeapGrowth = in.cfg.ScriptHeapGrowth
	defer s.js.close()
	s.js.session = s.sessionObject(info)
	_ = s.js.global.Set("session", s.js.session)
	stop := context.AfterFunc(ctx, func() { s.js.rt.Interrupt(ctx.Err()) })
	defer stop()

	s.finish(s.runTop(startURL))
	in.cfg.Logger.Debug().Str("url", startURL).Str("reason", string(s.res.Reason)).Str("event", s.res.Event).
		Dur("elapsed", time.Since(s.start)).Msg("vxml session ended")
	return s.res
}

func (s *session) trace(kind, format string, a ...any) {
	if len(s.res.Trace) >= s.cfg.MaxTrace {
		s.res.TraceDropped++
		return
	}
	s.res.Trace = append(s.res.Trace, TraceEntry{At: time.Since(s.start), Kind: kind, Detail: fmt.Sprintf(format, a...)})
}

func (s *session) sessionObject(info SessionInfo) *goja.Object {
	if info.ProtocolName == "" {
		info.ProtocolName = "sip"
	}
	if info.ProtocolVersion == "" {
		info.ProtocolVersion = "2.0"
	}
	if info.Originator == "" {
		info.Originator = "remote"
	}
	redirect := make([]any, 0, len(info.Redirect))
	for _, r := range info.Redirect {
		redirect = append(redirect, map[string]any{"uri": r.URI, "pi": r.PI, "si": r.SI, "reason": r.Reason})
	}
	headers := map[string]any{}
	for k, v := range info.SIPHeaders {
		headers[strings.ToLower(k)] = v
	}
	requri := map[string]any{}
	for k, v := range info.RequestURI {
		requri[k] = v
	}
	conn := map[string]any{
		"local":      map[string]any{"uri": info.LocalURI},
		"remote":     map[string]any{"uri": info.RemoteURI},
		"originator": info.Originator,
		"protocol": map[string]any{
			"name":                             info.ProtocolName,
			"version":                          info.ProtocolVersion,
			strings.ToLower(info.ProtocolName): map[string]any{"headers": headers, "requesturi": requri},
		},
		"redirect": redirect,
		"aai":      info.AAI,
	}
	root := map[string]any{"connection": conn}
	for k, v := range info.Variables {
		if k != "connection" {
			root[k] = v
		}
	}
	return s.js.toJS(root).(*goja.Object)
}

// endTransition is returned by a context when the session ends.
type tkind int

const (
	trDialog tkind = iota
	trItem
	trExit
	trReturn
	trEnd // session ends with s.endReason (hangup, disconnect, error)
)

// transition is a change of control flow (it travels as an error).
type transition struct {
	kind   tkind
	doc    *Document
	root   *Document
	dialog string
	newDoc bool
	item   string
	value  goja.Value
	names  []string
	values map[string]goja.Value
	event  *Event
	// input fills the target form once initialised (a document-scoped
	// form grammar matched in another dialog).
	input *formInput
}

func (t *transition) Error() string { return fmt.Sprintf("transition %d", t.kind) }

// fatal wraps non-VoiceXML failures that end the session.
type fatal struct{ err error }

func (f *fatal) Error() string { return f.err.Error() }

func (s *session) runTop(startURL string) error {
	c := &execCtx{s: s}
	doc, root, err := s.loadDocument(c, startURL, &FetchRequest{Method: "GET"}, nil)
	if err != nil {
		return err
	}
	tr, err := c.run(&transition{kind: trDialog, doc: doc, root: root, newDoc: true})
	if err != nil {
		return err
	}
	return tr
}

// finish converts the final control value into the Result.
func (s *session) finish(err error) {
	var tr *transition
	var ev *Event
	var ft *fatal
	switch {
	case errors.As(err, &tr):
		switch tr.kind {
		case trExit:
			s.flush()
			s.res.Reason = ReasonExit
			if tr.value != nil && !goja.IsUndefined(tr.value) {
				s.res.Value = tr.value.Export()
			}
			s.res.Namelist = s.exportValues(tr.values)
		case trEnd:
			s.res.Reason = s.endReason
			if tr.event != nil {
				s.res.Event, s.res.Message = tr.event.Name, tr.event.Message
			}
		case trReturn:
			s.res.Reason = ReasonError
			s.res.Event, s.res.Message = EventSemantic, "<return> outside a subdialog"
		default:
			s.res.Reason = ReasonError
			s.res.Err = fmt.Errorf("unexpected transition %d", tr.kind)
		}
	case errors.As(err, &ev):
		s.res.Reason = ReasonError
		s.res.Event, s.res.Message = ev.Name, ev.Message
	case errors.As(err, &ft):
		s.res.Reason = ReasonError
		s.res.Err = ft.err
	case err == nil:
		s.res.Reason = ReasonExit
	default:
		s.res.Reason = ReasonError
		s.res.Err = err
	}
	if s.res.Namelist == nil && s.namelist != nil {
		s.res.Namelist = s.namelist
	}
	s.trace(TraceEnd, "%s %s %s", s.res.Reason, s.res.Event, s.res.Message)
}

func (s *session) exportValues(m map[string]goja.Value) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = v.Export()
		}
	}
	return out
}

// tick counts an FIA step without input.
func (s *session) tick() error {
	s.steps++
	switch {
	case s.steps == s.cfg.MaxStepsWithoutInput:
		return semanticf("more than %d transitions without input", s.cfg.MaxStepsWithoutInput)
	case s.steps >= 2*s.cfg.MaxStepsWithoutInput:
		s.endReason = ReasonError
		return &transition{kind: trEnd, event: semanticf("application loops without input; session ended")}
	}
	return nil
}

// resolve resolves ref against base.
func resolve(base, ref string) (string, error) {
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", badfetchf("bad URI %q: %v", ref, err)
	}
	if base == "" {
		return r.String(), nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return r.String(), nil
	}
	return b.ResolveReference(r).String(), nil
}

func fetchEvent(err error, u string) *Event {
	var fe *FetchError
	if errors.As(err, &fe) && fe.StatusCode != 0 {
		return &Event{Name: fmt.Sprintf("%s.http.%d", EventBadFetch, fe.StatusCode), Message: fe.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return badfetchf("fetch %s: timed out", u)
	}
	return badfetchf("fetch %s: %v", u, err)
}

// fetch performs one fetch bounded by fetchtimeout, with its fetchaudio if it has one.
func (s *session) fetch(c *execCtx, req *FetchRequest, attrs map[string]string) (*FetchResponse, error) {
	req.Timeout = c.timeProp(nil, "fetchtimeout", attrs["fetchtimeout"], DefaultFetchTimeout)
	req.MaxAge, req.MaxStale = -1, -1
	if v, ok := attrs["maxage"]; ok {
		req.MaxAge = time.Duration(atoiDefault(v, -1)) * time.Second
	}
	if v, ok := attrs["maxstale"]; ok {
		req.MaxStale = time.Duration(atoiDefault(v, -1)) * time.Second
	}
	if req.Method == "" {
		req.Method = "GET"
	}
	fa, withAudio := c.fetchAudioFor(req.Kind, attrs)
	if withAudio {
		// VoiceXML 2.0 section 4.1.8: the prompts queued before a fetch with fetchaudio
		// play to completion before the fetch begins.
		if err := s.flush(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, req.Timeout)
	defer cancel()
	var (
		resp *FetchResponse
		err  error
	)
	if withAudio {
		resp, err = s.fetchWithAudio(ctx, req, fa)
	} else {
		resp, err = s.in.cfg.Fetcher.Fetch(ctx, req)
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, &fatal{err: s.ctx.Err()}
		}
		s.trace(TraceFetch, "%s %s %s failed: %v", req.Kind, req.Method, req.URL, err)
		return nil, fetchEvent(err, req.URL)
	}
	if resp.URL == "" {
		resp.URL = req.URL
	}
	s.trace(TraceFetch, "%s %s %s (%d bytes)", req.Kind, req.Method, resp.URL, len(resp.Body))
	return resp, nil
}

// loadDocument fetches and parses a document and its application root.
func (s *session) loadDocument(c *execCtx, u string, req *FetchRequest, attrs map[string]string) (*Document, *Document, error) {
	abs, err := resolve(c.baseURI(), u)
	if err != nil {
		return nil, nil, err
	}
	abs, _, _ = strings.Cut(abs, "#")
	req.URL, req.Kind = abs, FetchDocument
	resp, err := s.fetch(c, req, attrs)
	if err != nil {
		return nil, nil, err
	}
	doc, err := s.in.cache.document(resp, s.cfg.Limits)
	if err != nil {
		s.trace(TraceDocument, "%s invalid: %v", resp.URL, err)
		return nil, nil, badfetchf("%s: %v", resp.URL, err)
	}
	var root *Document
	if doc.Application != "" {
		rootURL, err := resolve(doc.BaseURI(), doc.Application)
		if err != nil {
			return nil, nil, err
		}
		rootURL, _, _ = strings.Cut(rootURL, "#")
		if c.app != nil && c.app.URL == rootURL {
			root = c.app
		} else {
			rresp, err := s.fetch(c, &FetchRequest{URL: rootURL, Kind: FetchDocument, Method: "GET"}, attrs)
			if err != nil {
				return nil, nil, err
			}
			root, err = s.in.cache.document(rresp, s.cfg.Limits)
			if err != nil {
				return nil, nil, badfetchf("application root %s: %v", rresp.URL, err)
			}
			if root.Application != "" {
				return nil, nil, badfetchf("application root %s itself names a root document", rresp.URL)
			}
		}
	}
	return doc, root, nil
}

func atoiDefault(s string, def int) int {
	n := 0
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' || n > 1e8 {
			return def
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// parseTime parses a CSS2 time designation ("5s", "250ms").
func parseTime(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	mult := time.Second
	switch {
	case strings.HasSuffix(v, "ms"):
		mult, v = time.Millisecond, strings.TrimSuffix(v, "ms")
	case strings.HasSuffix(v, "s"):
		v = strings.TrimSuffix(v, "s")
	default:
		return 0, false
	}
	whole, frac, _ := strings.Cut(v, ".")
	if whole == "" && frac == "" {
		return 0, false
	}
	n := atoiDefault(whole, -1)
	if whole == "" {
		n = 0
	}
	if n < 0 {
		return 0, false
	}
	d := time.Duration(n) * mult
	if frac != "" {
		f := atoiDefault(frac, -1)
		if f < 0 || len(frac) > 6 {
			return 0, false
		}
		scale := time.Duration(1)
		for range len(frac) {
			scale *= 10
		}
		d += time.Duration(f) * mult / scale
	}
	return d, true
}
