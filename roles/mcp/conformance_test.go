package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/wav"
	"github.com/opengvp/gvp/internal/tts"
	"github.com/opengvp/gvp/internal/vxml"
	"github.com/opengvp/gvp/internal/vxmlcall"
)

// The VoiceXML conformance suite of internal/vxml, run over real calls: an HTTP server serves
// the suite's folder, every document is called on one mcp by a caller agent that plays the
// document's `<!-- input: ... -->` script (RFC 4733 digits, silences, a BYE), and the
// document's outcome (`<!-- expect: ... -->`, default an exit with value 'pass') is read from
// the interpreter's Result.
//
// The scripts are those of the in-memory suite, whose platform hands a key to the interpreter
// exactly when it asks for one. Over a call the caller cannot see the interpreter, so the test
// application below tells the caller when the mcp starts a prompt or starts waiting for a key:
// the caller then sends the next key over RTP (at a prompt only when it can be barged in, as
// the in-memory platform does), stays silent for a "T", or hangs up for an "H" or when the
// script is exhausted. Everything else — SIP, RTP, RFC 4733 detection, barge-in, timers,
// HTTP fetching — is the production path.

// confDir is the conformance suite of the interpreter.
const confDir = "../../internal/vxml/testdata/conformance"

// confParallel is how many documents are called at once; the suite's real-time timeouts
// (5 s noinput, interdigit timeouts) make a serial run several minutes long.
const confParallel = 16

// confCallTimeout bounds one document's call.
const confCallTimeout = 40 * time.Second

// confExcluded lists the documents whose assertion cannot be observed over a call, and why.
// Each entry must name an existing document (checked), so the list cannot go stale silently.
var confExcluded = map[string]string{
	"052-record.vxml": "checks the scripted platform's canned recording (exactly 1000 ms and 8000 bytes of " +
		"audio/basic); a real recording is a WAV of the caller's audio up to the final silence. " +
		"TestConformanceRecordOverCall asserts the shadow variables of a real recording",
	"054-transfer-blind.vxml": "transfers to sip:queue@127.0.0.1 (port 5060, outside the test); " +
		"TestConformanceBlindTransferOverCall asserts the same outcome with a target the test controls",
	"053-transfer-bridge.vxml": "bridges to sip:agent@127.0.0.1 (port 5060, outside the test); " +
		"TestConformanceBridgeTransferOverCall asserts the same outcome with the INVITE sent through " +
		"mcp.transfer.proxy to a callee the test controls",
}

// confOverCall gives the outcome expected over a call when the mcp's platform deliberately
// differs from the in-memory one, with the reason in a comment.
// None does today.
var confOverCall = map[string]string{}

// confDoc is one document of the suite with its caller script and expected outcome.
type confDoc = vxml.ConformanceCase

func loadConfDocs(t *testing.T) []confDoc {
	t.Helper()
	docs, err := vxml.LoadConformance(confDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range docs {
		if e, ok := confOverCall[d.Name]; ok {
			docs[i].Expect = e
		}
	}
	return docs
}

// confExpect compares a result with an expectation, as in the in-memory suite.
func confExpect(res *vxml.Result, expect string) error { return res.Check(expect) }

// confServer serves the suite's folder like the in-memory fetcher: the same content types,
// status500.vxml answering 500 and hang.vxml never answering. Any method is accepted
// (<submit> posts).
func confServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		switch name {
		case "status500.vxml":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case "hang.vxml":
			<-r.Context().Done()
			return
		case vxml.ConformanceEcho:
			confEcho(w, r)
			return
		}
		if name == "" || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(confDir, filepath.FromSlash(name)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := vxml.ConformanceContentType(name)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(b)
	})
	ln := listenLoopback(t)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// confEcho answers the suite's echo resource from the HTTP request as the in-memory fetcher
// does from the FetchRequest: the multipart parts (file parts as name:Content-Type) or the
// url-encoded fields, in the order sent.
func confEcho(w http.ResponseWriter, r *http.Request) {
	var got []string
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method != http.MethodPost:
		got = formPairs(r.URL.RawQuery)
	case mt == vxml.EnctypeMultipart:
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			if p.FileName() != "" {
				got = append(got, p.FormName()+":"+p.Header.Get("Content-Type"))
			} else {
				got = append(got, p.FormName()+"="+string(b))
			}
		}
	default:
		b, _ := io.ReadAll(r.Body)
		got = formPairs(string(b))
	}
	w.Header().Set("Content-Type", "application/voicexml+xml")
	_, _ = w.Write(vxml.ConformanceEchoDocument(r.URL.Query().Get("expect"), vxml.ConformanceSubmission(r.Method, mt, got)))
}

// formPairs returns the name=value pairs of an urlencoded query or body, in order, unescaped,
// without the echo resource's own expect parameter.
func formPairs(s string) []string {
	var out []string
	for _, kv := range strings.Split(s, "&") {
		if k, v, _ := strings.Cut(kv, "="); k != "expect" && k != "" {
			name, _ := url.QueryUnescape(k)
			val, _ := url.QueryUnescape(v)
			out = append(out, name+"="+val)
		}
	}
	return out
}

// confRunner builds the VoiceXML runtime of the mcp (HTTP fetcher, TTS without an engine,
// interpreter) with the in-memory suite's limits, so the limit documents end as quickly.
func confRunner(t *testing.T) *vxmlcall.Runner {
	t.Helper()
	f, err := fetch.New(fetch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tc := tts.DefaultConfig()
	tc.Engine = tts.EngineNone
	// Every text prompt renders as 300 ms of silence: long enough for a barge-in key to
	// arrive while it plays, short enough for a quick suite.
	tc.SilencePerChar, tc.MinFallback, tc.MaxFallback = 0, 300*time.Millisecond, 300*time.Millisecond
	synth, err := tts.New(tc)
	if err != nil {
		t.Fatal(err)
	}
	vc := vxml.DefaultConfig()
	vc.Fetcher = f
	vc.ScriptBudget = 200 * time.Millisecond
	vc.MaxStepsWithoutInput = 200
	interp, err := vxml.New(vc)
	if err != nil {
		t.Fatal(err)
	}
	return vxmlcall.New(interp, f, synth, testLogger())
}

// confSession is one document's call as both ends see it.
type confSession struct {
	doc confDoc

	callerReady chan struct{} // closed once the dial has ended, caller set or not

	mu        sync.Mutex
	caller    *caller.Call // the caller's end of the call; nil when the dial failed
	script    []string     // tokens not yet played
	inFlight  int          // keys sent and not yet returned by WaitDigit
	hungUp    bool
	recording bool
	sent      []string // what the caller did, for failure messages
	// onRecord, when set, is the caller's action when a recording starts.
	onRecord func(*caller.Call)

	result chan *vxml.Result
}

func newConfSession(d confDoc) *confSession {
	var toks []string
	for _, f := range strings.Fields(d.Input) {
		if f == vxml.ScriptTimeout || f == vxml.ScriptHangup {
			toks = append(toks, f)
			continue
		}
		for _, c := range f {
			toks = append(toks, string(c))
		}
	}
	return &confSession{doc: d, script: toks, callerReady: make(chan struct{}), result: make(chan *vxml.Result, 1)}
}

// Points of the interpreter's progress at which the caller acts.
const (
	atPrompt = iota // a prompt starts; bargein says whether a key would stop it
	atWait          // the mcp waits for a key
)

// act is the caller's reaction to the interpreter reaching a point: the in-memory platform's
// rules, played over the call.
func (s *confSession) act(ctx context.Context, point int, bargein bool) {
	select {
	case <-s.callerReady:
	case <-ctx.Done():
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caller == nil || s.hungUp || s.recording || s.inFlight > 0 {
		return
	}
	next := vxml.ScriptHangup
	if len(s.script) > 0 {
		next = s.script[0]
	}
	switch {
	case next == vxml.ScriptHangup:
		// An explicit H hangs up at any point; an exhausted script only when a key is
		// awaited.
		if point == atPrompt && len(s.script) == 0 {
			return
		}
		s.hungUp = true
		s.sent = append(s.sent, "H")
		go func() {
			hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.caller.Hangup(hctx)
		}()
	case next == vxml.ScriptTimeout:
		if point == atWait {
			s.script = s.script[1:]
			s.sent = append(s.sent, "T")
		}
	default:
		if point == atPrompt && !bargein {
			return
		}
		s.script = s.script[1:]
		s.inFlight++
		s.sent = append(s.sent, next)
		if err := s.caller.Media().SendDigits(next, 0); err != nil {
			s.sent = append(s.sent, "send error: "+err.Error())
		}
	}
}

// played notes a key returned to the interpreter.
func (s *confSession) played() {
	s.mu.Lock()
	if s.inFlight > 0 {
		s.inFlight--
	}
	s.mu.Unlock()
}

func (s *confSession) setRecording(on bool) {
	s.mu.Lock()
	s.recording = on
	c, f := s.caller, s.onRecord
	s.mu.Unlock()
	if on && c != nil && f != nil {
		f(c)
	}
}

func (s *confSession) actions() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.sent, " ")
}

// scriptedCall is the production call adapter with the caller's script hooked in.
type scriptedCall struct {
	vxmlcall.Call
	s *confSession
}

func (p scriptedCall) Play(ctx context.Context, bargein bool, src ...media.Source) (bool, error) {
	p.s.act(ctx, atPrompt, bargein)
	return p.Call.Play(ctx, bargein, src...)
}

func (p scriptedCall) WaitDigit(ctx context.Context, d time.Duration) (rune, bool, error) {
	p.s.act(ctx, atWait, false)
	k, ok, err := p.Call.WaitDigit(ctx, d)
	if ok {
		p.s.played()
	}
	return k, ok, err
}

func (p scriptedCall) SetSink(k media.Sink) {
	p.s.setRecording(k != nil)
	p.Call.SetSink(k)
}

// confApp is the mcp's VoiceXML application with the session registry of the test; it builds
// the session like voiceXMLApp and keeps the Result.
type confApp struct {
	r  *vxmlcall.Runner
	mu sync.Mutex
	// sessions by initial page URL.
	sessions map[string]*confSession
}

func (a *confApp) add(url string, s *confSession) {
	a.mu.Lock()
	a.sessions[url] = s
	a.mu.Unlock()
}

func (a *confApp) Run(ctx context.Context, c *Call) error {
	a.mu.Lock()
	s := a.sessions[c.Entry().URL]
	a.mu.Unlock()
	if s == nil {
		return fmt.Errorf("no conformance session for %s", c.Entry().URL)
	}
	res := a.r.Run(ctx, scriptedCall{Call: callPlatform{c}, s: s}, sessionInfo(c), initialPage(c), c.log)
	s.result <- res
	if res.Reason == vxml.ReasonHangup {
		return ErrCallEnded
	}
	return nil
}

// confOutcome is what one document's call produced.
type confOutcome struct {
	res     *vxml.Result
	callErr error
	caller  string
	// note is set when the dial failed after the session had already ended (a session that
	// ends at once races the caller's own bookkeeping of the 200).
	note string
}

// runConfDoc calls one document and returns the interpreter's result.
func runConfDoc(ctx context.Context, a *caller.Agent, target string, s *confSession) confOutcome {
	ctx, cancel := context.WithTimeout(ctx, confCallTimeout)
	defer cancel()
	call, err := a.Dial(ctx, target, caller.DialOptions{Headers: map[string]string{
		"To":                       "<sip:5551000@127.0.0.1>",
		"X-Genesys-GVP-Session-ID": "abc;gvp.rm.datanodes=node-id=1",
		"User-to-User":             "hello;encoding=ascii", // session.connection.aai
	}})
	if err != nil {
		// A session that ends at once may send its BYE before the caller has taken the
		// 200 in (see confOutcome.note): the document ran, so its outcome still counts.
		close(s.callerReady)
		select {
		case res := <-s.result:
			return confOutcome{res: res, note: fmt.Sprintf("dial reported %v after the session ended", err)}
		case <-time.After(2 * time.Second):
			return confOutcome{callErr: fmt.Errorf("dial: %w", err)}
		}
	}
	s.mu.Lock()
	s.caller = call
	s.mu.Unlock()
	close(s.callerReady)
	var out confOutcome
	select {
	case out.res = <-s.result:
	case <-ctx.Done():
		out.callErr = errors.New("no result before the call timeout")
	}
	select {
	case <-call.Done():
	case <-ctx.Done():
		if out.callErr == nil {
			out.callErr = errors.New("call still up after the session ended")
		}
		_ = call.Hangup(context.Background())
	}
	out.caller = s.actions()
	return out
}

// TestConformanceOverCalls runs every document of the interpreter's conformance suite on a
// real call to one mcp; documents that pass in memory must pass here (see confExcluded).
func TestConformanceOverCalls(t *testing.T) {
	docs := loadConfDocs(t)
	if len(docs) == 0 {
		t.Fatal("no conformance documents")
	}
	names := map[string]bool{}
	for _, d := range docs {
		names[d.Name] = true
	}
	for n := range confExcluded {
		if !names[n] {
			t.Errorf("confExcluded names %s, which is not in the suite", n)
		}
	}
	for n := range confOverCall {
		if !names[n] {
			t.Errorf("confOverCall names %s, which is not in the suite", n)
		}
	}
	base := confServer(t)
	app := &confApp{r: confRunner(t), sessions: map[string]*confSession{}}
	h := startMCP(t, func(_ *Config, d *Deps) { d.VoiceXML = app })
	// The caller speaks whenever a document records (the speech fixture, then silence), so
	// the recording documents see real audio ended by final silence.
	speech, err := wav.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	samples := speech.To8kMono()
	acfg := caller.DefaultAgentConfig()
	acfg.User = "alice"
	acfg.Logger = testLogger()
	a, err := caller.NewAgent(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	outcomes := make([]confOutcome, len(docs))
	sem := make(chan struct{}, confParallel)
	var wg sync.WaitGroup
	for i, d := range docs {
		if _, ok := confExcluded[d.Name]; ok {
			continue
		}
		u := base + d.Name
		s := newConfSession(d)
		s.onRecord = func(c *caller.Call) { c.Media().Play(media.NewPCMSource(samples)) }
		app.add(u, s)
		target := h.uri("dialog", ";voicexml="+url.QueryEscape(u)+";gvp-tenant-id=80dd")
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i] = runConfDoc(context.Background(), a, target, s)
		}()
	}
	wg.Wait()

	for i, d := range docs {
		t.Run(strings.TrimSuffix(d.Name, ".vxml"), func(t *testing.T) {
			if why, ok := confExcluded[d.Name]; ok {
				t.Skipf("not observable over a call: %s", why)
			}
			o := outcomes[i]
			if o.note != "" {
				t.Logf("%s: the mcp sent BYE before the ACK", o.note)
			}
			if o.callErr != nil {
				t.Fatalf("%s (%s): %v (caller did %q)", d.Name, d.Assert, o.callErr, o.caller)
			}
			if err := confExpect(o.res, d.Expect); err != nil {
				t.Errorf("%s (%s): %v\ninput %q, caller did %q", d.Name, d.Assert, err, d.Input, o.caller)
				for _, e := range o.res.Trace {
					t.Logf("  %8v %s", e.At.Round(time.Millisecond), e)
				}
			}
		})
	}
	waitFor(t, "calls to end", 10*time.Second, func() bool { return h.m.Active() == 0 })
}

// TestConformanceBlindTransferOverCall is 054-transfer-blind with a transfer target the test
// controls (an announcement on the same mcp): the REFER succeeds, the session ends with
// reason transfer and the caller is connected to the target.
func TestConformanceBlindTransferOverCall(t *testing.T) {
	const doc = `<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form>
    <transfer name="xfer" destexpr="session.connection.protocol.sip.requesturi['target']" type="blind"/>
    <block><exit expr="'fail'"/></block>
  </form>
</vxml>`
	mux := http.NewServeMux()
	mux.HandleFunc("/transfer.vxml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprint(w, doc)
	})
	ln := listenLoopback(t)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	app := &confApp{r: confRunner(t), sessions: map[string]*confSession{}}
	h := startMCP(t, func(_ *Config, d *Deps) { d.VoiceXML = app })
	u := "http://" + ln.Addr().String() + "/transfer.vxml"
	s := newConfSession(confDoc{Name: "transfer.vxml", Expect: string(vxml.ReasonTransfer)})
	app.add(u, s)
	transferTo := h.annc(t, "")
	target := h.uri("dialog", ";voicexml="+url.QueryEscape(u)+";target="+url.QueryEscape(transferTo))
	a := newAgent(t)
	o := runConfDoc(context.Background(), a, target, s)
	if o.callErr != nil {
		t.Fatal(o.callErr)
	}
	if err := confExpect(o.res, string(vxml.ReasonTransfer)); err != nil {
		t.Fatal(err)
	}
	tr := s.caller.Transferred()
	if tr == nil {
		t.Fatal("the caller did not call the transfer target")
	}
	select {
	case <-tr.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the announcement after the transfer did not end")
	}
	if !tr.RemoteHangup() || tr.Media().Stats().PacketsReceived == 0 {
		t.Fatalf("transferred call: remote hangup %v, packets %d", tr.RemoteHangup(), tr.Media().Stats().PacketsReceived)
	}
}

// TestConformanceBridgeTransferOverCall is 053-transfer-bridge over a call: the mcp sends the
// outbound INVITE (Request-URI sip:agent@127.0.0.1) through mcp.transfer.proxy to a callee
// that answers and hangs up 10.5 s later, so the document sees far_end_disconnect with a
// duration of 10 s, as in memory.
func TestConformanceBridgeTransferOverCall(t *testing.T) {
	const name = "053-transfer-bridge.vxml"
	uas := startUAS(t, 200, 10500*time.Millisecond)
	base := confServer(t)
	app := &confApp{r: confRunner(t), sessions: map[string]*confSession{}}
	h := startMCP(t, func(c *Config, d *Deps) {
		d.VoiceXML = app
		c.Transfer.Proxy = uas.addr
	})
	u := base + name
	s := newConfSession(confDoc{Name: name, Expect: "pass"})
	app.add(u, s)
	o := runConfDoc(context.Background(), newAgent(t), h.uri("dialog", ";voicexml="+url.QueryEscape(u)), s)
	if o.callErr != nil {
		t.Fatal(o.callErr)
	}
	if err := confExpect(o.res, "pass"); err != nil {
		for _, e := range o.res.Trace {
			t.Logf("  %8v %s", e.At.Round(time.Millisecond), e)
		}
		t.Fatal(err)
	}
	inv := uas.last()
	if inv == nil || inv.Recipient.String() != "sip:agent@127.0.0.1" {
		t.Fatalf("INVITE at the proxy %v, want Request-URI sip:agent@127.0.0.1", inv)
	}
	if sid := inv.GetHeader(headerSessionID); sid == nil || sid.Value() != "abc" {
		t.Fatalf("%s %v, want the caller's session id abc", headerSessionID, sid)
	}
}

// TestConformanceRecordOverCall is 052-record with the caller speaking: the caller plays the
// speech fixture, the recording ends on final silence, and the document sees a recording
// with its duration and size shadow variables set from the real audio.
func TestConformanceRecordOverCall(t *testing.T) {
	const doc = `<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form>
    <record name="msg" beep="true" maxtime="10s" finalsilence="1s">
      <filled>
        <if cond="msg$.duration &gt; 500 &amp;&amp; msg$.duration &lt; 10000 &amp;&amp; msg$.size == msg.byteLength"><exit expr="'pass'"/></if>
        <exit expr="'fail:' + msg$.duration + ' ' + msg$.size"/>
      </filled>
    </record>
  </form>
</vxml>`
	mux := http.NewServeMux()
	mux.HandleFunc("/record.vxml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprint(w, doc)
	})
	ln := listenLoopback(t)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	speech, err := wav.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	samples := speech.To8kMono()

	app := &confApp{r: confRunner(t), sessions: map[string]*confSession{}}
	h := startMCP(t, func(_ *Config, d *Deps) { d.VoiceXML = app })
	u := "http://" + ln.Addr().String() + "/record.vxml"
	s := newConfSession(confDoc{Name: "record.vxml", Expect: "pass"})
	app.add(u, s)
	// The caller speaks once the recording has started (after the beep).
	s.onRecord = func(c *caller.Call) { c.Media().Play(media.NewPCMSource(samples)) }
	a := newAgent(t)
	o := runConfDoc(context.Background(), a, h.uri("dialog", ";voicexml="+url.QueryEscape(u)), s)
	if o.callErr != nil {
		t.Fatal(o.callErr)
	}
	if err := confExpect(o.res, "pass"); err != nil {
		t.Fatal(err)
	}
}
