package mcp

import (
	"context"
	"errors"
	"fmt"
	"github.com/opengvp/gvp/internal/vxml"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
)

func dial(t *testing.T, a *caller.Agent, target string, o caller.DialOptions) (*caller.Call, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Dial(ctx, target, o)
}

func wantStatus(t *testing.T, err error, code int) {
	t.Helper()
	var se *caller.StatusError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("want status %d, got %v", code, err)
	}
}

func TestRejections(t *testing.T) {
	h := startMCP(t, nil)
	a := newAgent(t)
	for _, tc := range []struct {
		name   string
		target string
		opts   caller.DialOptions
		code   int
	}{
		{"unknown user", h.uri("nobody", ""), caller.DialOptions{}, 404},
		{"annc without play", h.uri("annc", ";repeat=2"), caller.DialOptions{}, 400},
		{"annc bad repeat", h.annc(t, ";repeat=often"), caller.DialOptions{}, 400},
		{"dialog without voicexml", h.uri("dialog", ""), caller.DialOptions{}, 400},
		{"no common codec", h.annc(t, ""), caller.DialOptions{Codecs: []sdpneg.Codec{{Name: "G722", PayloadType: 9, ClockRate: 8000}}}, 488},
		{"session interval too small", h.annc(t, ""), caller.DialOptions{Headers: map[string]string{"Session-Expires": "30", "Supported": "timer"}}, 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, a, tc.target, tc.opts)
			wantStatus(t, err, tc.code)
		})
	}
	if h.m.Active() != 0 {
		t.Fatalf("%d calls active after rejections", h.m.Active())
	}
	if got := counter(t, h.m.metrics.calls.WithLabelValues(resultRejected)); got != 6 {
		t.Errorf("rejected calls metric %v, want 6", got)
	}
	for _, rec := range h.pub.Records() {
		c := rec.(*billing.CDR)
		if c.State != billing.StateCompleted || c.EndReason != billing.EndRejected || c.EndCode < 400 {
			t.Errorf("rejection CDR %+v", c)
		}
	}
}

func TestCapacityAndReadiness(t *testing.T) {
	h := startMCP(t, func(c *Config, _ *Deps) { c.MaxSessions = 1 })
	a := newAgent(t)
	first, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Ready(); err == nil || !strings.Contains(err.Error(), "at capacity") {
		t.Fatalf("Ready at capacity = %v", err)
	}
	_, err = dial(t, a, h.annc(t, ""), caller.DialOptions{})
	wantStatus(t, err, 503)
	if err := first.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slot released", 5*time.Second, func() bool { return h.m.Ready() == nil })
	second, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{})
	if err != nil {
		t.Fatalf("call after release: %v", err)
	}
	second.Hangup(context.Background())
}

func sipClient(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func options(t *testing.T, c *sipgo.Client, h *harness) *sip.Response {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(h.uri("mcp", ""), &u); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, sip.NewRequest(sip.OPTIONS, u))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDrain(t *testing.T) {
	var deregistered sync.WaitGroup
	deregistered.Add(1)
	h := startMCP(t, func(_ *Config, d *Deps) {
		d.Deregister = func(context.Context) error { deregistered.Done(); return nil }
	})
	a := newAgent(t)
	sc := sipClient(t)
	if res := options(t, sc, h); res.StatusCode != 200 || res.GetHeader(HeaderLoad).Value() != "active=0;capacity=2000;draining=0" {
		t.Fatalf("OPTIONS before drain: %v %v", res.StatusCode, res.GetHeader(HeaderLoad))
	}
	call, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- h.m.Drain(context.Background()) }()
	deregistered.Wait()
	waitFor(t, "draining", 5*time.Second, func() bool { return h.m.draining.Load() })
	_, err = dial(t, a, h.annc(t, ""), caller.DialOptions{})
	wantStatus(t, err, 503)
	if res := options(t, sc, h); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("OPTIONS while draining: %d", res.StatusCode)
	}
	// The call in progress keeps receiving audio.
	before := call.Media().Stats().PacketsReceived
	waitFor(t, "audio during drain", 5*time.Second, func() bool { return call.Media().Stats().PacketsReceived > before+10 })
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a call in progress", err)
	default:
	}
	if err := call.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after the last call ended")
	}
}

func TestHoldResumeKeepsAudio(t *testing.T) {
	h := startMCP(t, nil)
	a := newAgent(t)
	call, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Hangup(context.Background())
	rx := func() uint64 { return call.Media().Stats().PacketsReceived }
	waitFor(t, "audio", 5*time.Second, func() bool { return rx() > 10 })

	// Hold: we offer sendonly, the mcp answers recvonly and stops sending.
	if code, err := call.Reinvite(context.Background(), sdpneg.SendOnly); err != nil || code != 200 {
		t.Fatalf("hold: %d %v", code, err)
	}
	if d := h.m.Calls()[0].Media().Media().Direction; d != sdpneg.RecvOnly {
		t.Fatalf("mcp direction on hold = %v", d)
	}
	time.Sleep(100 * time.Millisecond) // packets in flight
	held := rx()
	time.Sleep(400 * time.Millisecond)
	if n := rx() - held; n > 1 {
		t.Fatalf("%d packets received while on hold", n)
	}
	// Resume: audio flows again.
	if code, err := call.Reinvite(context.Background(), sdpneg.SendRecv); err != nil || code != 200 {
		t.Fatalf("resume: %d %v", code, err)
	}
	resumed := rx()
	waitFor(t, "audio after resume", 5*time.Second, func() bool { return rx() > resumed+20 })
	if h.m.Active() != 1 {
		t.Fatalf("active = %d", h.m.Active())
	}
}

func TestRTPInactivityReapsCall(t *testing.T) {
	h := startMCP(t, func(c *Config, _ *Deps) { c.RTPTimeout = time.Second })
	a := newAgent(t)
	silent := media.DefaultSessionConfig()
	silent.SendSilence = false // a dead caller: nothing is sent
	call, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{Session: &silent})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-call.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("silent call not reaped")
	}
	if !call.RemoteHangup() {
		t.Fatal("call ended without a BYE from the mcp")
	}
	waitFor(t, "end", 5*time.Second, func() bool { return h.m.Active() == 0 })
	if got := counter(t, h.m.metrics.errors.WithLabelValues(errKindRTPTimeout)); got != 1 {
		t.Fatalf("rtp_timeout errors = %v", got)
	}
	recs := h.pub.Records()
	last := recs[len(recs)-1].(*billing.CDR)
	if last.EndReason != billing.EndError || last.EndDetail != "rtp timeout" {
		t.Fatalf("CDR end %q %q", last.EndReason, last.EndDetail)
	}
}

func TestSessionTimer(t *testing.T) {
	h := startMCP(t, func(c *Config, _ *Deps) {
		c.SessionTimer = SessionTimerConfig{Expires: 3 * time.Second, MinSE: 2 * time.Second}
		c.RTPTimeout = 0
	})
	a := newAgent(t)

	// The caller is the refresher and never refreshes: the mcp ends the call with BYE.
	call, err := dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{Headers: map[string]string{
		"Supported": "timer", "Session-Expires": "2;refresher=uac"}})
	if err != nil {
		t.Fatal(err)
	}
	if se := call.Response.GetHeader("Session-Expires"); se == nil || se.Value() != "2;refresher=uac" {
		t.Fatalf("200 Session-Expires = %v", se)
	}
	if rq := call.Response.GetHeader("Require"); rq == nil || rq.Value() != "timer" {
		t.Fatalf("200 Require = %v", rq)
	}
	select {
	case <-call.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("unrefreshed session not ended")
	}
	if !call.RemoteHangup() {
		t.Fatal("no BYE from the mcp")
	}

	// A caller without timer support: the mcp refreshes (in-dialog OPTIONS, the caller has no
	// UPDATE) and the call outlives several intervals.
	call, err = dial(t, a, h.annc(t, ";repeat=forever"), caller.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if se := call.Response.GetHeader("Session-Expires"); se == nil || se.Value() != "3;refresher=uas" {
		t.Fatalf("200 Session-Expires = %v", se)
	}
	select {
	case <-call.Done():
		t.Fatal("call refreshed by the mcp ended")
	case <-time.After(5 * time.Second):
	}
	call.Hangup(context.Background())
}

func TestDTMFInfoAndRFC4733(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	h := startMCP(t, nil, func(m *MCP) {
		m.onDigitHook = func(c *Call, d rune, method string) {
			mu.Lock()
			got[method] += string(d)
			mu.Unlock()
		}
	})
	a := newAgent(t)
	for _, method := range []string{caller.DTMFInfo, caller.DTMFRFC4733} {
		dtmf, _ := caller.ParseDTMF("1@100ms,2@300ms,#@500ms")
		r := a.Run(context.Background(), caller.Options{Target: h.annc(t, ";repeat=forever"), DTMF: dtmf,
			DTMFMethod: method, HangupAfter: 1500 * time.Millisecond})
		if r.Code != 200 || r.DigitsSent != "12#" {
			t.Fatalf("%s: %+v", method, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got[DigitMethodInfo] != "12#" || got[media.MethodRFC4733] != "12#" {
		t.Fatalf("digits heard by method: %v", got)
	}
	if v := counter(t, h.m.engine.Metrics().Digits.WithLabelValues(DigitMethodInfo)); v != 3 {
		t.Fatalf("info digits metric %v", v)
	}
}

func TestCancelBeforeAnswer(t *testing.T) {
	h := startMCP(t, func(c *Config, _ *Deps) { c.Answer = AnswerConfig{Provisional: 180, Delay: 5 * time.Second} })
	a := newAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "call", 5*time.Second, func() bool { return h.m.Active() == 1 })
		time.Sleep(300 * time.Millisecond) // the 180 is out
		cancel()
	}()
	_, err := a.Dial(ctx, h.annc(t, ""), caller.DialOptions{})
	if err == nil {
		t.Fatal("cancelled call was answered")
	}
	waitFor(t, "cancelled call released", 5*time.Second, func() bool { return h.m.Active() == 0 })
	if v := counter(t, h.m.metrics.calls.WithLabelValues(resultCanceled)); v != 1 {
		t.Fatalf("canceled metric %v", v)
	}
	recs := h.pub.Records()
	last := recs[len(recs)-1].(*billing.CDR)
	if last.EndCode != 487 || last.EndReason != billing.EndCallerHangup {
		t.Fatalf("CDR %+v", last)
	}
}

// promptApp is a test Application: a prompt with barge-in, then one digit, then the result
// spoken back as DTMF is not possible, so it is recorded.
type promptApp struct {
	prompt []int16
	got    chan string
}

func (p *promptApp) Run(ctx context.Context, c *Call) error {
	barged, err := c.Play(ctx, true, media.NewPCMSource(p.prompt))
	if err != nil {
		return err
	}
	d, ok, err := c.WaitDigit(ctx, 5*time.Second)
	if err != nil {
		return err
	}
	if !ok {
		p.got <- "timeout"
		return nil
	}
	p.got <- map[bool]string{true: "barged:", false: "played:"}[barged] + string(d) + ":" + c.Entry().URL
	return nil
}

func TestApplicationSeam(t *testing.T) {
	app := &promptApp{prompt: make([]int16, 8000*5), got: make(chan string, 1)}
	h := startMCP(t, func(_ *Config, d *Deps) { d.VoiceXML = app })
	a := newAgent(t)
	dtmf, _ := caller.ParseDTMF("7@500ms")
	r := a.Run(context.Background(), caller.Options{Target: h.uri("dialog", ";voicexml=http://127.0.0.1:8000/start.vxml"),
		DTMF: dtmf, MaxDuration: 10 * time.Second})
	if r.Code != 200 || r.HungUpBy != "remote" {
		t.Fatalf("%+v", r)
	}
	if got := <-app.got; got != "barged:7:http://127.0.0.1:8000/start.vxml" {
		t.Fatalf("application saw %q", got)
	}
	if r.DurationSeconds > 4 {
		t.Fatalf("barge-in did not stop the 5 s prompt: call lasted %.1f s", r.DurationSeconds)
	}
}

// TestVoiceXMLCall runs a VoiceXML application on a real call: the initial page is fetched
// over HTTP with the session's identifiers in its query, a prompt plays, the caller's RFC 4733
// digit fills the field, <submit> sends it to the application server, whose next page
// disconnects.
func TestVoiceXMLCall(t *testing.T) {
	type hit struct{ path, query string }
	hits := make(chan hit, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/start.vxml", func(w http.ResponseWriter, r *http.Request) {
		hits <- hit{r.URL.Path, r.URL.RawQuery}
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprint(w, `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><block><log label="ivr.step">start</log></block><field name="d" type="digits?length=1"><prompt>Press a key please.</prompt>
<filled><submit next="result.vxml" namelist="d" method="get"/></filled></field></form></vxml>`)
	})
	mux.HandleFunc("/result.vxml", func(w http.ResponseWriter, r *http.Request) {
		hits <- hit{r.URL.Path, r.URL.RawQuery}
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprint(w, `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><block><prompt>Thank you.</prompt><disconnect/></block></form></vxml>`)
	})
	ln := listenLoopback(t)
	srv := http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	h := startMCP(t, nil)
	a := newAgent(t)
	dtmf, _ := caller.ParseDTMF("7@1500ms")
	r := a.Run(context.Background(), caller.Options{
		Target: h.uri("dialog", ";voicexml="+url.QueryEscape("http://"+ln.Addr().String()+"/start.vxml")),
		DTMF:   dtmf, MaxDuration: 20 * time.Second})
	if r.Code != 200 || r.HungUpBy != "remote" {
		t.Fatalf("call %+v", r)
	}
	start, result := <-hits, <-hits
	if start.path != "/start.vxml" || !strings.Contains(start.query, "gvp-session-id=") || !strings.Contains(start.query, "dnis=") {
		t.Fatalf("initial fetch %+v lacks the session identifiers", start)
	}
	if result.path != "/result.vxml" || result.query != "d=7" {
		t.Fatalf("submit %+v, want d=7", result)
	}
	if r.PacketsReceived < 25 {
		t.Fatalf("prompt audio not received: %d packets", r.PacketsReceived)
	}
	// Application metrics and the path through the application in the call's records.
	waitFor(t, "session accounted", 5*time.Second, func() bool {
		return counter(t, h.m.vxmlMetrics.sessions.WithLabelValues(string(vxml.ReasonDisconnect))) == 1
	})
	if v := counter(t, h.m.vxmlMetrics.logs.WithLabelValues("ivr.step")); v != 1 {
		t.Fatalf("<log> counter %v", v)
	}
	var docs, ends int
	for _, rec := range h.pub.Records() {
		if ev, ok := rec.(*billing.Event); ok && ev.SessionID == r.SessionID {
			switch ev.Kind {
			case "vxml.document":
				docs++
			case "vxml.end":
				ends++
			}
		}
	}
	if docs != 2 || ends != 1 {
		t.Fatalf("trace records: %d documents, %d ends; want 2 and 1", docs, ends)
	}
}

func TestAnnouncementFetchFailureEndsCall(t *testing.T) {
	h := startMCP(t, nil)
	a := newAgent(t)
	r := a.Run(context.Background(), caller.Options{Target: h.uri("annc", ";play=file:///nonexistent/x.wav"), MaxDuration: 10 * time.Second})
	if r.Code != 200 || r.HungUpBy != "remote" {
		t.Fatalf("%+v", r)
	}
	waitFor(t, "end", 5*time.Second, func() bool { return h.m.Active() == 0 })
	if v := counter(t, h.m.metrics.errors.WithLabelValues(errKindFetch)); v != 1 {
		t.Fatalf("fetch errors %v", v)
	}
}

// TestNoByeBeforeAck: a call the mcp ends before the caller's ACK arrived (here: the
// announcement cannot load, and the caller is slow to acknowledge) gets its BYE only after the
// ACK, as RFC 3261 section 15 requires; the 200 is retransmitted meanwhile.
func TestNoByeBeforeAck(t *testing.T) {
	h := startMCP(t, nil)
	a := newAgent(t)
	c, err := dial(t, a, h.uri("annc", ";play=file:///nonexistent/x.wav"), caller.DialOptions{AckDelay: 700 * time.Millisecond})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE from the mcp")
	}
	if !c.RemoteHangup() || c.ByeBeforeAck() {
		t.Fatalf("remote hangup %v, BYE before ACK %v", c.RemoteHangup(), c.ByeBeforeAck())
	}
}

func TestAnnouncementOverHTTP(t *testing.T) {
	h := startMCP(t, nil)
	srv := http.Server{Handler: http.FileServer(http.Dir("testdata"))}
	ln := listenLoopback(t)
	go srv.Serve(ln)
	defer srv.Close()
	a := newAgent(t)
	r := a.Run(context.Background(), caller.Options{Target: h.uri("annc", ";play=http://"+ln.Addr().String()+"/one_two_three_8k_ulaw.wav"),
		MaxDuration: 10 * time.Second})
	if r.Code != 200 || r.HungUpBy != "remote" || r.PacketsReceived < 50 {
		t.Fatalf("%+v", r)
	}
}

// referApp transfers the caller to target and reports the outcome.
type referApp struct {
	target chan string
	result chan error
}

func (r *referApp) Run(ctx context.Context, c *Call) error {
	target := <-r.target
	err := c.Refer(ctx, target)
	r.result <- err
	return nil
}

func TestReferBlindTransfer(t *testing.T) {
	app := &referApp{target: make(chan string, 1), result: make(chan error, 1)}
	h := startMCP(t, func(_ *Config, d *Deps) { d.VoiceXML = app })
	app.target <- h.annc(t, "")
	a := newAgent(t)
	call, err := dial(t, a, h.uri("dialog", ";voicexml=http://127.0.0.1:8000/transfer.vxml"), caller.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-app.result:
		if err != nil {
			t.Fatalf("Refer: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Refer did not return")
	}
	<-call.Done() // the mcp hangs up the transferred call
	tr := call.Transferred()
	if tr == nil {
		t.Fatal("caller did not call the transfer target")
	}
	select {
	case <-tr.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("announcement after transfer did not end")
	}
	if !tr.RemoteHangup() || tr.Media().Stats().PacketsReceived < 90 {
		t.Fatalf("transferred call: remote hangup %v, packets %d", tr.RemoteHangup(), tr.Media().Stats().PacketsReceived)
	}
}

func TestOutboundDial(t *testing.T) {
	callee := startMCP(t, nil)
	h := startMCP(t, func(c *Config, _ *Deps) { c.RTP.PortMin, c.RTP.PortMax = 50000, 51998 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := h.m.Dial(ctx, callee.annc(t, ""), DialOptions{Headers: map[string]string{"X-Genesys-GVP-Session-ID": "OUT1"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("outbound call did not end with the announcement")
	}
	if n := o.Media().Stats().PacketsReceived; n < 90 {
		t.Fatalf("outbound leg received %d packets", n)
	}
	_, err = h.m.Dial(ctx, callee.uri("nobody", ""), DialOptions{})
	var de *DialError
	if !errors.As(err, &de) || de.Code != 404 {
		t.Fatalf("dial unknown: %v", err)
	}
	recs := callee.pub.Records()
	if recs[0].(*billing.CDR).SessionID != "OUT1" {
		t.Fatalf("callee CDR session id %q", recs[0].(*billing.CDR).SessionID)
	}
}

// TestVoiceXMLDeniedFetch: an initial page on a denied target is never fetched; the session
// ends with error.badfetch.
func TestVoiceXMLDeniedFetch(t *testing.T) {
	var hits atomic.Int64
	ln := listenLoopback(t)
	srv := http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })}
	go srv.Serve(ln)
	defer srv.Close()
	h := startMCP(t, func(c *Config, _ *Deps) { c.VoiceXML.Deny = []string{"127.0.0.0/8"} })
	a := newAgent(t)
	r := a.Run(context.Background(), caller.Options{
		Target: h.uri("dialog", ";voicexml="+url.QueryEscape("http://"+ln.Addr().String()+"/start.vxml")), MaxDuration: 10 * time.Second})
	if r.Code != 200 || r.HungUpBy != "remote" {
		t.Fatalf("call %+v", r)
	}
	waitFor(t, "session accounted", 5*time.Second, func() bool {
		return counter(t, h.m.vxmlMetrics.sessions.WithLabelValues(string(vxml.ReasonError))) == 1
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("denied target fetched %d times", n)
	}
}
