package mcp

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"context"
	"errors"
	"fmt"
	"github.com/opengvp/gvp/internal/billing"
	"net/url"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/buildinfo"
	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/tts"
	"github.com/opengvp/gvp/internal/vxml"
	"github.com/opengvp/gvp/internal/vxmlcall"
)

// NewVoiceXML returns the Application that runs `sip:dialog@...;voicexml=URL` calls on r.
func NewVoiceXML(r *vxmlcall.Runner) Application { return voiceXMLApp{r: r} }

type voiceXMLApp struct {
	r *vxmlcall.Runner
	m *MCP // metrics and records; nil in tests that build the app alone
}

// maxTraceRecords bounds the trace entries attached to a call's records as call events.
const maxTraceRecords = 100

// traceRecordKinds are the trace entries attached to the call's records: the path through
// the application (documents, dialogs, events and how the session ended), not every prompt
// and key, which stay in the debug log.
var traceRecordKinds = map[string]bool{
	vxml.TraceDocument: true, vxml.TraceDialog: true, vxml.TraceEvent: true,
	vxml.TraceLog: true, vxml.TraceEnd: true,
}

// maxLogLabels bounds the distinct <log label> values counted; the rest count as "other".
const maxLogLabels = 64

// vxmlMetrics are the application metrics of VoiceXML sessions.
type vxmlMetrics struct {
	sessions *prometheus.CounterVec
	events   *prometheus.CounterVec
	logs     *prometheus.CounterVec
	mu       sync.Mutex
	labels   map[string]bool
}

func newVXMLMetrics(reg prometheus.Registerer) (*vxmlMetrics, error) {
	v := &vxmlMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_vxml_sessions_total", Help: "VoiceXML sessions ended, by reason (exit, disconnect, hangup, transfer, error).",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_vxml_events_total", Help: "VoiceXML events thrown, by family (error, noinput, nomatch, connection, help, other).",
		}, []string{"family"}),
		logs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvp_mcp_vxml_log_total", Help: "<log> elements executed, by label (at most 64 labels; the rest as other).",
		}, []string{"label"}),
		labels: map[string]bool{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{v.sessions, v.events, v.logs} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func eventFamily(name string) string {
	fam, _, _ := strings.Cut(name, ".")
	switch fam {
	case "error", "noinput", "nomatch", "connection", "help", "cancel", "exit", "telephone":
		return fam
	}
	return "other"
}

func (v *vxmlMetrics) logLabel(label string) string {
	if label == "" {
		return "none"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.labels[label] {
		return label
	}
	if len(v.labels) >= maxLogLabels || len(label) > 64 {
		return "other"
	}
	v.labels[label] = true
	return label
}

// account counts the session in the metrics and attaches its path through the application
// to the call's records as call events (kind "vxml.<trace kind>").
func (a voiceXMLApp) account(c *Call, res *vxml.Result) {
	if a.m == nil {
		return
	}
	if v := a.m.vxmlMetrics; v != nil {
		v.sessions.WithLabelValues(string(res.Reason)).Inc()
		for _, t := range res.Trace {
			switch t.Kind {
			case vxml.TraceEvent:
				name, _, _ := strings.Cut(t.Detail, " ")
				v.events.WithLabelValues(eventFamily(name)).Inc()
			case vxml.TraceLog:
				label, _, _ := strings.Cut(t.Detail, ": ")
				v.logs.WithLabelValues(v.logLabel(label)).Inc()
			}
		}
	}
	n := 0
	for _, t := range res.Trace {
		if !traceRecordKinds[t.Kind] || n >= maxTraceRecords {
			continue
		}
		n++
		a.m.publish(billing.NewEvent(c.SessionID(), c.start.Add(t.At), "vxml."+t.Kind, t.Detail), c.log)
	}
}

// Run fetches the initial page with the session's identifiers in its query (as GVP does) and
// runs the application until it ends, every fetch carrying the call's http-auth-* credentials
// (Entry.fetchContext); the execution trace goes to the call's debug log and an uncaught error
// event becomes the call's end reason.
func (a voiceXMLApp) Run(ctx context.Context, c *Call) error {
	res := a.r.Run(c.entry.fetchContext(ctx), callPlatform{c}, sessionInfo(c), initialPage(c), c.log)
	a.account(c, res)
	c.handover.Wait() // a consultation transfer keeps the caller connected to the callee until one hangs up
	if e := c.log.Debug(); e.Enabled() {
		trace := make([]string, len(res.Trace))
		for i, t := range res.Trace {
			trace[i] = fmt.Sprintf("%dms %s", t.At.Milliseconds(), t)
		}
		e.Strs("trace", trace).Str("reason", string(res.Reason)).Str("event", res.Event).Msg("voicexml session ended")
	}
	switch {
	case res.Reason == vxml.ReasonError && !errors.Is(res.Err, context.Canceled):
		if res.Err != nil {
			return fmt.Errorf("voicexml: %s: %w", res.Event, res.Err)
		}
		return fmt.Errorf("voicexml: %s: %s", res.Event, res.Message)
	case res.Reason == vxml.ReasonHangup:
		return ErrCallEnded
	}
	return nil
}

// sessionInfo is the session.* data of a call: the connection's URIs, the INVITE's headers and
// Request-URI parameters, the application-to-application information from User-to-User
// (RFC 7433), and the redirecting numbers from Diversion (RFC 5806).
func sessionInfo(c *Call) vxml.SessionInfo {
	params := map[string]string{}
	for _, p := range c.entry.Params {
		params[p.Name] = p.Value
	}
	headers := c.Headers()
	info := vxml.SessionInfo{
		LocalURI:        c.LocalURI(),
		RemoteURI:       c.RemoteURI(),
		Originator:      "remote",
		ProtocolName:    "sip",
		ProtocolVersion: "2.0",
		SIPHeaders:      headers,
		RequestURI:      params,
		Variables:       map[string]any{"gvp_session_id": c.SessionID()},
	}
	if uui := headers["user-to-user"]; uui != "" {
		info.AAI = strings.TrimSpace(strings.SplitN(uui, ";", 2)[0])
	}
	for _, h := range c.invite.GetHeaders("Diversion") {
		info.Redirect = append(info.Redirect, parseDiversion(h.Value())...)
	}
	return info
}

// parseDiversion reads a Diversion header value (RFC 5806): `<uri>;reason=...;privacy=...;
// screen=...`, possibly several comma-separated entries, most recent first.
func parseDiversion(v string) []vxml.Redirect {
	var out []vxml.Redirect
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var r vxml.Redirect
		rest := entry
		if i := strings.IndexByte(entry, '<'); i >= 0 {
			if j := strings.IndexByte(entry[i:], '>'); j > 0 {
				r.URI = entry[i+1 : i+j]
				rest = entry[i+j+1:]
			}
		} else if i := strings.IndexByte(entry, ';'); i >= 0 {
			r.URI, rest = entry[:i], entry[i:]
		} else {
			r.URI, rest = entry, ""
		}
		for _, p := range strings.Split(rest, ";") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			val = strings.Trim(val, `"`)
			switch strings.ToLower(k) {
			case "reason":
				r.Reason = val
			case "privacy":
				r.PI = val
			case "screen":
				r.SI = val
			}
		}
		out = append(out, r)
	}
	return out
}

// initialPage adds the session's identifiers to an http(s) initial page's query, so the
// application server can tell calls apart from the first fetch.
func initialPage(c *Call) string {
	u, err := url.Parse(c.entry.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return c.entry.URL
	}
	q := u.Query()
	set := func(k, v string) {
		if v != "" && !q.Has(k) {
			q.Set(k, v)
		}
	}
	set("session.connection.local.uri", c.LocalURI())
	set("session.connection.remote.uri", c.RemoteURI())
	set("gvp-session-id", c.SessionID())
	set("dnis", c.DNIS())
	set("ani", c.ANI())
	u.RawQuery = q.Encode()
	return u.String()
}

// callPlatform adapts a Call to vxmlcall.Call: a call that has ended reports vxml.ErrHangup.
type callPlatform struct{ c *Call }

func hangupErr(err error) error {
	if errors.Is(err, ErrCallEnded) {
		return vxml.ErrHangup
	}
	return err
}

func (p callPlatform) Play(ctx context.Context, bargein bool, src ...media.Source) (bool, error) {
	b, err := p.c.Play(ctx, bargein, src...)
	return b, hangupErr(err)
}

func (p callPlatform) WaitDigit(ctx context.Context, d time.Duration) (rune, bool, error) {
	k, ok, err := p.c.WaitDigit(ctx, d)
	return k, ok, hangupErr(err)
}

func (p callPlatform) Hangup(ctx context.Context) error { return hangupErr(p.c.Hangup(ctx)) }

func (p callPlatform) Refer(ctx context.Context, target string) error {
	return hangupErr(p.c.Refer(ctx, target))
}

func (p callPlatform) Bridge(ctx context.Context, req *vxml.TransferRequest, connecting media.Source) (*vxml.TransferResult, error) {
	res, err := p.c.Bridge(ctx, req, connecting)
	return res, hangupErr(err)
}

func (p callPlatform) SetSink(k media.Sink) { p.c.Media().SetSink(k) }

// startVoiceXML builds the shared VoiceXML runtime — fetch cache, TTS, interpreter — unless
// Deps provide the application and the audio loader; announcements load their audio through
// the same fetch cache.
func (m *MCP) startVoiceXML() error {
	if m.deps.VoiceXML != nil && m.audio != nil {
		m.vxml = m.deps.VoiceXML
		return nil
	}
	fc := fetch.DefaultConfig()
	fc.AllowFile = m.cfg.VoiceXML.AllowFile
	fc.CacheBytes = m.cfg.VoiceXML.FetchCacheBytes
	fc.Policy.Allow, fc.Policy.Deny = m.cfg.VoiceXML.Allow, m.cfg.VoiceXML.Deny
	fc.UserAgent = "gvp-mcp/" + buildinfo.Version
	f, err := fetch.New(fc, fetch.WithLogger(m.log), fetch.WithRegisterer(m.deps.Metrics))
	if err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	tc := tts.DefaultConfig()
	tc.Engine, tc.Lang = m.cfg.VoiceXML.TTSEngine, m.cfg.VoiceXML.TTSLang
	synth, err := tts.New(tc, tts.WithLogger(m.log), tts.WithRegisterer(m.deps.Metrics))
	if err != nil {
		return fmt.Errorf("tts: %w", err)
	}
	vc := vxml.DefaultConfig()
	vc.Fetcher = f
	vc.Logger = m.log
	interp, err := vxml.New(vc)
	if err != nil {
		return fmt.Errorf("voicexml interpreter: %w", err)
	}
	r := vxmlcall.New(interp, f, synth, m.log)
	if m.audio == nil {
		m.audio = r
	}
	m.vxml = m.deps.VoiceXML
	if m.vxml == nil {
		vm, err := newVXMLMetrics(m.deps.Metrics)
		if err != nil {
			return fmt.Errorf("voicexml metrics: %w", err)
		}
		m.vxmlMetrics = vm
		m.vxml = voiceXMLApp{r: r, m: m}
	}
	m.log.Info().Str("tts", synth.EngineName()).Bool("allow_file", fc.AllowFile).Msg("voicexml runtime ready")
	return nil
}
