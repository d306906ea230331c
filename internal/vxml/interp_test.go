package vxml

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

// runDocs serves docs (name -> body) and runs the first one named "main".
func runDocs(t *testing.T, p *ScriptedPlatform, docs map[string]string) (*Result, *MemoryFetcher) {
	t.Helper()
	f := NewMemoryFetcher()
	for name, body := range docs {
		f.Add(testBase+name, "application/voicexml+xml", []byte(body))
	}
	in := testInterpreter(t, f)
	res := in.Run(context.Background(), p, SessionInfo{}, testBase+"main")
	return res, f
}

func vxmlDoc(body string) string {
	return `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">` + body + `</vxml>`
}

func playedTexts(p *ScriptedPlatform) []string {
	var out []string
	for _, pr := range p.Played {
		out = append(out, pr.Text())
	}
	return out
}

func TestPromptSelectionAndReprompt(t *testing.T) {
	p := NewScriptedPlatform("T T 9 1")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<property name="bargein" value="false"/><form><field name="f" type="boolean">
		<prompt>first</prompt><prompt count="2">second <value expr="1+1"/></prompt>
		<noinput count="1">no input</noinput>
		<noinput count="2">again<reprompt/></noinput>
		<nomatch>bad<reprompt/></nomatch>
		<filled><exit expr="'pass'"/></filled></field></form>`)})
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	// T: noinput count 1 without reprompt -> no prompt requeued before the
	// next collect; T: noinput count 2 with reprompt -> prompt count 2;
	// 9: nomatch with reprompt -> prompt count 3 selects the count=2 prompt.
	want := []string{"first", "no input", "again", "second 2", "bad", "second 2"}
	if got := playedTexts(p); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("played %q, want %q", got, want)
	}
}

func TestTimeoutsReachPlatform(t *testing.T) {
	p := NewScriptedPlatform("T 1 2 T")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<property name="interdigittimeout" value="1500ms"/>
		<form><property name="timeout" value="7s"/><field name="f" type="digits?minlength=2">
		<prompt timeout="2.5s">enter</prompt><noinput><reprompt/></noinput>
		<filled><exit expr="f"/></filled></field></form>`)})
	if res.Value != "12" {
		t.Fatalf("value %v (%s %s)", res.Value, res.Event, res.Message)
	}
	want := []time.Duration{2500 * time.Millisecond, 2500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond}
	if fmt.Sprint(p.Waits) != fmt.Sprint(want) {
		t.Fatalf("waits %v, want %v", p.Waits, want)
	}
}

func TestBargeinFlags(t *testing.T) {
	p := NewScriptedPlatform("1")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<property name="bargein" value="false"/>
		<form><field name="f" type="boolean"><prompt>one</prompt><prompt bargein="true">two</prompt><prompt>three</prompt>
		<filled><exit expr="'pass'"/></filled></field></form>`)})
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	// "two" is barged in by the pending key: "three" is dropped.
	if got := playedTexts(p); strings.Join(got, "|") != "one|two" || p.Played[0].Bargein || !p.Played[1].Bargein {
		t.Fatalf("played %q", got)
	}
}

func TestPromptRendering(t *testing.T) {
	p := NewScriptedPlatform("T")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<var name="names" expr="['ann', 'bob']"/>
		<menu dtmf="true"><prompt>Menu <enumerate/> <mark name="m1"/><break time="200ms"/>
		<audio expr="undefined">skipped</audio><audio src="hello.wav">hi &amp; welcome</audio>
		<foreach array="names" item="n"><value expr="n.toUpperCase()"/></foreach></prompt>
		<prompt><enumerate>press <value expr="_dtmf"/> for <value expr="_prompt"/>;</enumerate></prompt>
		<noinput><exit expr="'done'"/></noinput>
		<choice next="#a">Sales</choice><choice next="#a">Support</choice></menu><form id="a"><block/></form>`)})
	if res.Value != "done" {
		t.Fatalf("result %+v", res)
	}
	if len(p.Played) != 2 {
		t.Fatalf("played %d prompts", len(p.Played))
	}
	pr := p.Played[0]
	var kinds []string
	for _, pt := range pr.Parts {
		kinds = append(kinds, fmt.Sprintf("%d:%s%s%s", pt.Kind, pt.Text, pt.URL, pt.Name))
	}
	want := "0:Menu For Sales, press 1. For Support, press 2.|3:m1|2:|1:hi & welcome" + testBase + "hello.wav|0:ANNBOB"
	if got := strings.Join(kinds, "|"); got != want {
		t.Fatalf("parts\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(pr.SSML, `<audio src="`+testBase+`hello.wav">hi &amp; welcome</audio>`) || !strings.Contains(pr.SSML, `<mark name="m1"/>`) {
		t.Fatalf("ssml %s", pr.SSML)
	}
	if got := p.Played[1].Text(); got != "press 1 for Sales; press 2 for Support;" {
		t.Fatalf("enumerate template: %q", got)
	}
}

func TestSubmitRequest(t *testing.T) {
	p := NewScriptedPlatform("")
	res, f := runDocs(t, p, map[string]string{
		"main": vxmlDoc(`<var name="a" expr="'x y'"/><var name="o" expr="({k: 1})"/>
			<form><block><submit next="next" method="post" enctype="multipart/form-data" namelist="a o" fetchtimeout="3s" maxage="60"/></block></form>`),
		"next": vxmlDoc(`<form><block><exit expr="'pass'" namelist="document.z"/></block></form>`),
	})
	// document.z is undeclared: the exit's namelist throws error.semantic.
	if err := checkExpect(res, "error error.semantic"); err != nil {
		t.Fatal(err)
	}
	var sub *FetchRequest
	for i := range f.Requests {
		if strings.HasSuffix(f.Requests[i].URL, "next") {
			sub = &f.Requests[i]
		}
	}
	if sub == nil || sub.Method != "POST" || sub.Enctype != EnctypeMultipart || sub.Timeout != 3*time.Second || sub.MaxAge != time.Minute {
		t.Fatalf("request %+v", sub)
	}
	if fmt.Sprint(sub.Values) != `[{a x y} {o {"k":1}}]` {
		t.Fatalf("values %v", sub.Values)
	}
}

func TestExitNamelistAndTrace(t *testing.T) {
	p := NewScriptedPlatform("")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<var name="code" expr="42"/>
		<form id="f"><block><log label="dbg">hello <value expr="code"/></log><exit namelist="code"/></block></form>`)})
	if res.Reason != ReasonExit || res.Namelist["code"] != int64(42) {
		t.Fatalf("result %+v", res)
	}
	if len(p.Logs) != 1 || p.Logs[0] != "dbg: hello 42" {
		t.Fatalf("logs %q", p.Logs)
	}
	var kinds []string
	for _, e := range res.Trace {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "fetch,document,dialog,item,log,end" {
		t.Fatalf("trace kinds %s", got)
	}
}

func TestTransferOutcomes(t *testing.T) {
	doc := vxmlDoc(`<form><transfer name="t" dest="tel:+15551234" type="bridge">
		<catch event="error.connection.noroute"><exit expr="'noroute'"/></catch>
		<filled><exit expr="t"/></filled></transfer></form>`)
	p := NewScriptedPlatform("")
	p.TransferResult = &TransferResult{Status: TransferBusy}
	res, _ := runDocs(t, p, map[string]string{"main": doc})
	if res.Value != "busy" || p.Transfers[0].Type != "bridge" || p.Transfers[0].Dest != "tel:+15551234" {
		t.Fatalf("busy: %+v %+v", res, p.Transfers)
	}
	p = NewScriptedPlatform("")
	p.TransferErr = &Event{Name: "error.connection.noroute"}
	res, _ = runDocs(t, p, map[string]string{"main": doc})
	if res.Value != "noroute" {
		t.Fatalf("noroute: %+v", res)
	}
	p = NewScriptedPlatform("")
	p.TransferErr = errors.New("sip failure")
	res, _ = runDocs(t, p, map[string]string{"main": doc})
	if res.Reason != ReasonError || res.Event != EventConnection {
		t.Fatalf("generic: %+v", res)
	}
}

// TestConsultationTransfer: a consultation transfer that connects ends the session with
// connection.disconnect.transfer (the final processing state runs its catch); one that fails
// sets the item to the failure status, as a bridge does.
func TestConsultationTransfer(t *testing.T) {
	doc := vxmlDoc(`<catch event="connection.disconnect.transfer"><exit expr="'transferred'"/></catch>
		<form><transfer name="t" dest="sip:agent@example.com" type="consultation">
		<filled><exit expr="t"/></filled></transfer></form>`)
	p := NewScriptedPlatform("")
	p.TransferResult = &TransferResult{Status: TransferConnected}
	res, _ := runDocs(t, p, map[string]string{"main": doc})
	if res.Value != "transferred" || p.Transfers[0].Type != "consultation" {
		t.Fatalf("connected: %+v %+v", res, p.Transfers)
	}
	// Without a handler the session ends as transferred.
	p = NewScriptedPlatform("")
	p.TransferResult = &TransferResult{Status: TransferConnected}
	res, _ = runDocs(t, p, map[string]string{"main": strings.Replace(doc, "connection.disconnect.transfer", "never.thrown", 1)})
	if res.Reason != ReasonTransfer {
		t.Fatalf("connected without a handler: %+v", res)
	}
	p = NewScriptedPlatform("")
	p.TransferResult = &TransferResult{Status: TransferNoAnswer}
	res, _ = runDocs(t, p, map[string]string{"main": doc})
	if res.Value != TransferNoAnswer || res.Reason == ReasonTransfer {
		t.Fatalf("no answer: %+v", res)
	}
}

func TestDisconnectEndsAsDisconnect(t *testing.T) {
	p := NewScriptedPlatform("")
	res, _ := runDocs(t, p, map[string]string{"main": vxmlDoc(`<var name="why" expr="'done'"/><form><block>bye<disconnect namelist="why"/></block></form>`)})
	if res.Reason != ReasonDisconnect || !p.Disconnected || res.Namelist["why"] != "done" {
		t.Fatalf("result %+v", res)
	}
	if got := playedTexts(p); len(got) != 1 || got[0] != "bye" {
		t.Fatalf("queued prompts must play before disconnect: %q", got)
	}
}

func TestDocumentLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<vxml version="2.1"><form><block>`)
	for range 300 {
		b.WriteString("<if cond='true'>")
	}
	for range 300 {
		b.WriteString("</if>")
	}
	b.WriteString(`</block></form></vxml>`)
	if _, err := Parse([]byte(b.String()), "x", xmlLimitsForTest()); !errors.Is(err, ErrInvalidDocument) || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("deep: %v", err)
	}
	huge := vxmlDoc(`<form><block>` + strings.Repeat("<log expr='1'/>", 400000) + `</block></form>`)
	p := NewScriptedPlatform("")
	res, _ := runDocs(t, p, map[string]string{"main": huge})
	if res.Reason != ReasonError || res.Event != EventBadFetch || !strings.Contains(res.Message, "exceeds limits") {
		t.Fatalf("huge: %+v", res)
	}
}

func xmlLimitsForTest() xmltree.Limits { return xmltree.Limits{} }

func TestParseErrors(t *testing.T) {
	bad := map[string]string{
		"not xml":         `<vxml version="2.1"><form>`,
		"root":            `<html/>`,
		"no version":      `<vxml><form><block/></form></vxml>`,
		"no dialog":       `<vxml version="2.1"><var name="x"/></vxml>`,
		"unknown element": `<vxml version="2.1"><form><blink/></form></vxml>`,
		"goto attrs":      `<vxml version="2.1"><form><block><goto/></block></form></vxml>`,
		"assign no expr":  `<vxml version="2.1"><form><block><assign name="x"/></block></form></vxml>`,
		"if no cond":      `<vxml version="2.1"><form><block><if/></block></form></vxml>`,
		"else outside":    `<vxml version="2.1"><form><block><else/></block></form></vxml>`,
		"dup form":        `<vxml version="2.1"><form id="a"><block/></form><form id="a"><block/></form></vxml>`,
		"dup item":        `<vxml version="2.1"><form><block name="a"/><block name="a"/></form></vxml>`,
		"bad grammar":     `<vxml version="2.1"><form><field name="f"><grammar mode="dtmf">$r = ;</grammar></field></form></vxml>`,
		"bad count":       `<vxml version="2.1"><form><field name="f"><prompt count="0">x</prompt></field></form></vxml>`,
		"menu empty":      `<vxml version="2.1"><menu><prompt>x</prompt></menu></vxml>`,
		"scoped var":      `<vxml version="2.1"><form><var name="document.x"/></form></vxml>`,
	}
	for name, src := range bad {
		if _, err := Parse([]byte(src), "http://x/", xmlLimitsForTest()); !errors.Is(err, ErrInvalidDocument) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestContextCancelEndsSession(t *testing.T) {
	f := NewMemoryFetcher()
	f.Add(testBase+"main", "", []byte(vxmlDoc(`<form><block><script>while(true){}</script></block></form>`)))
	cfg := DefaultConfig()
	cfg.Fetcher = f
	cfg.ScriptBudget = time.Hour
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	res := in.Run(ctx, NewScriptedPlatform(""), SessionInfo{}, testBase+"main")
	if res.Reason != ReasonError {
		t.Fatalf("result %+v", res)
	}
}

func TestConcurrentSessionsShareCache(t *testing.T) {
	f := conformanceFetcher(t)
	in := testInterpreter(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := in.Run(context.Background(), NewScriptedPlatform("1234#"), SessionInfo{}, testBase+"002-field-digits.vxml")
			if err := checkExpect(res, "pass"); err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if in.cache.Len() != 1 {
		t.Fatalf("cache holds %d documents, want 1", in.cache.Len())
	}
}

func TestEventMatches(t *testing.T) {
	tests := []struct {
		name, event string
		want        bool
	}{
		{"error", "error.badfetch.http.404", true},
		{"error.badfetch", "error.badfetch", true},
		{"error.bad", "error.badfetch", false},
		{"error.", "error.semantic", true},
		{"", "anything", true},
		{"noinput", "nomatch", false},
		{"connection.disconnect", "connection.disconnect.hangup", true},
	}
	for _, tt := range tests {
		if got := eventMatches(tt.name, tt.event); got != tt.want {
			t.Errorf("eventMatches(%q, %q) = %v", tt.name, tt.event, got)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := map[string]time.Duration{"5s": 5 * time.Second, "250ms": 250 * time.Millisecond, "2.5s": 2500 * time.Millisecond, "0s": 0, ".5s": 500 * time.Millisecond}
	for in, want := range tests {
		if got, ok := parseTime(in); !ok || got != want {
			t.Errorf("parseTime(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "5", "s", "-1s", "1.2.3s", "abcms"} {
		if _, ok := parseTime(in); ok {
			t.Errorf("parseTime(%q) accepted", in)
		}
	}
}

func TestBuiltinParams(t *testing.T) {
	for _, spec := range []string{"digits?length=0", "digits?minlength=5;maxlength=2", "colour", "digits?foo=1", "builtin:voice/digits"} {
		if _, err := parseBuiltin(spec); err == nil {
			t.Errorf("%s accepted", spec)
		}
	}
	b, err := parseBuiltin("builtin:dtmf/boolean?y=7;n=9")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.match("7"); r.Status != 2 {
		t.Fatalf("y=7: %v", r.Status)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(vxmlDoc(`<form><field name="f" type="digits"><prompt>hi <value expr="x"/></prompt><filled><exit/></filled></field></form>`)))
	f.Add([]byte(vxmlDoc(`<menu dtmf="true"><choice next="#a">A</choice></menu><form id="a"><block><goto next="x.vxml"/></block></form>`)))
	f.Add([]byte(`<vxml version="2.0"><form><grammar mode="dtmf" root="r"><rule id="r">1</rule></grammar><initial/></form></vxml>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data, "http://fuzz/", xmlLimitsForTest())
		if err != nil {
			if !errors.Is(err, ErrInvalidDocument) {
				t.Fatalf("error not wrapped: %v", err)
			}
			return
		}
		if len(doc.Dialogs) == 0 {
			t.Fatal("document without dialogs accepted")
		}
	})
}

// TestRunawayAllocationStopped: a script that doubles a string without end is interrupted by
// the memory budget (well before its long time budget) with error.semantic, and the heap it
// built is released.
func TestRunawayAllocationStopped(t *testing.T) {
	f := NewMemoryFetcher()
	f.Add(testBase+"main", "", []byte(vxmlDoc(`<catch event="error.semantic"><exit expr="'caught: ' + _message"/></catch>
		<form><block><script>var s = 'x'; while (true) { s = s + s + 'y'; }</script></block></form>`)))
	cfg := DefaultConfig()
	cfg.Fetcher = f
	cfg.ScriptBudget = 30 * time.Second
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := in.Run(context.Background(), NewScriptedPlatform(""), SessionInfo{}, testBase+"main")
	v, _ := res.Value.(string)
	if res.Reason != ReasonExit || !strings.Contains(v, "memory budget") {
		t.Fatalf("result %+v, want error.semantic about the memory budget caught", res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopped after %s: the time budget, not the memory budget, ended it", d)
	}
}
