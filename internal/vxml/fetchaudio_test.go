package vxml

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowFetcher delays the answers for some URLs (a slow application server).
type slowFetcher struct {
	*MemoryFetcher
	delay map[string]time.Duration
}

func (f *slowFetcher) Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error) {
	key, _, _ := strings.Cut(req.URL, "?")
	if d := f.delay[key]; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, &FetchError{URL: req.URL, Err: ctx.Err()}
		}
	}
	return f.MemoryFetcher.Fetch(ctx, req)
}

// holdPlay is one play of a fetchaudio clip.
type holdPlay struct {
	prompt   *Prompt
	lasted   time.Duration
	canceled bool
}

// holdPlatform plays prompts whose audio ends in "hold.wav" in real time: each lasts clip,
// or until its context ends. Other prompts are the scripted platform's.
type holdPlatform struct {
	*ScriptedPlatform
	clip  time.Duration
	holds []holdPlay
}

func (p *holdPlatform) Play(ctx context.Context, pr *Prompt) (PlayResult, error) {
	if len(pr.Parts) != 1 || !strings.HasSuffix(pr.Parts[0].URL, "hold.wav") {
		return p.ScriptedPlatform.Play(ctx, pr)
	}
	began := time.Now()
	t := time.NewTimer(p.clip)
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.holds = append(p.holds, holdPlay{prompt: pr, lasted: time.Since(began), canceled: err != nil})
	return PlayResult{}, err
}

const slowFetch = 300 * time.Millisecond

// runHold runs main with the fetchaudio timing properties set on the document, the slow
// resources answering after slowFetch, and fetchaudio clips lasting clip.
func runHold(t *testing.T, clip time.Duration, props, body string, docs map[string]string) (*Result, *holdPlatform, time.Duration) {
	t.Helper()
	return runHoldKeys(t, "", clip, props, body, docs)
}

// runHoldKeys is runHold with the caller pressing keys.
func runHoldKeys(t *testing.T, keys string, clip time.Duration, props, body string, docs map[string]string) (*Result, *holdPlatform, time.Duration) {
	t.Helper()
	mf := NewMemoryFetcher()
	all := map[string]string{
		"main":      vxmlDoc(props + body),
		"slow":      vxmlDoc(`<form><block><exit expr="'pass'"/></block></form>`),
		"fast":      vxmlDoc(`<form><block><exit expr="'pass'"/></block></form>`),
		"slowsub":   vxmlDoc(`<form><block><return/></block></form>`),
		"slow.xml":  `<?xml version="1.0"?><x/>`,
		"slow.js":   `var loaded = true;`,
		"media/x":   "",
		"elsewhere": "",
	}
	for k, v := range docs {
		all[k] = v
	}
	for name, b := range all {
		mf.Add(testBase+name, "application/voicexml+xml", []byte(b))
	}
	f := &slowFetcher{MemoryFetcher: mf, delay: map[string]time.Duration{}}
	for _, name := range []string{"slow", "slowsub", "slow.xml", "slow.js"} {
		f.delay[testBase+name] = slowFetch
	}
	p := &holdPlatform{ScriptedPlatform: NewScriptedPlatform(keys), clip: clip}
	in := testInterpreter(t, f)
	began := time.Now()
	res := in.Run(context.Background(), p, SessionInfo{}, testBase+"main")
	return res, p, time.Since(began)
}

const holdTiming = `<property name="fetchaudiodelay" value="20ms"/><property name="fetchaudiominimum" value="0s"/>`

// TestFetchAudioDuringSlowFetch: every element that fetches a document or data plays its
// fetchaudio (attribute, or property) while a slow fetch runs, stopping when it completes;
// the URI is relative to the document (xml:base included) and the clip cannot be barged in.
func TestFetchAudioDuringSlowFetch(t *testing.T) {
	for _, tc := range []struct {
		name, body, url string
	}{
		{"goto", `<form><block><goto next="slow" fetchaudio="hold.wav"/></block></form>`, testBase + "hold.wav"},
		{"submit", `<var name="v" expr="1"/><form><block><submit next="slow" namelist="v" method="post" fetchaudio="hold.wav"/></block></form>`, testBase + "hold.wav"},
		{"subdialog", `<form><subdialog name="s" src="slowsub" fetchaudio="hold.wav"/><block><exit expr="'pass'"/></block></form>`, testBase + "hold.wav"},
		{"data", `<form><data name="d" src="slow.xml" fetchaudio="hold.wav"/><block><exit expr="'pass'"/></block></form>`, testBase + "hold.wav"},
		{"property", `<property name="fetchaudio" value="music/hold.wav"/><form><block><goto next="slow"/></block></form>`, testBase + "music/hold.wav"},
		{"item property", `<form><subdialog name="s" src="slowsub"><property name="fetchaudio" value="hold.wav"/></subdialog><block><exit expr="'pass'"/></block></form>`, testBase + "hold.wav"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, p, _ := runHold(t, time.Minute, holdTiming, tc.body, nil)
			if err := checkExpect(res, "pass"); err != nil {
				t.Fatal(err)
			}
			if len(p.holds) != 1 {
				t.Fatalf("fetchaudio played %d times, want once", len(p.holds))
			}
			h := p.holds[0]
			if h.prompt.Parts[0].URL != tc.url || h.prompt.Bargein || !strings.Contains(h.prompt.SSML, `<audio src="`+tc.url+`"/>`) {
				t.Fatalf("fetchaudio prompt %+v", h.prompt)
			}
			// Started after the 20 ms delay, stopped by the end of the 300 ms fetch.
			if !h.canceled || h.lasted < slowFetch-60*time.Millisecond || h.lasted > slowFetch+time.Second {
				t.Fatalf("fetchaudio lasted %v (stopped %v), want about %v", h.lasted, h.canceled, slowFetch)
			}
			if !traceHas(res, TracePrompt, "fetchaudio "+tc.url) {
				t.Fatal("no fetchaudio trace entry")
			}
		})
	}
	// <link> and <choice> take the same fetch attributes; the caller presses 1 to follow them.
	for _, tc := range []struct{ name, body string }{
		{"link", `<link dtmf="1" next="slow" fetchaudio="hold.wav"/><form><field name="f"><grammar mode="dtmf" version="1.0" root="r" xmlns="http://www.w3.org/2001/06/grammar"><rule id="r">9</rule></grammar></field></form>`},
		{"choice", `<menu><choice dtmf="1" next="slow" fetchaudio="hold.wav">slow</choice></menu>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, p, _ := runHoldKeys(t, "1", time.Minute, holdTiming, tc.body, nil)
			if err := checkExpect(res, "pass"); err != nil {
				t.Fatal(err)
			}
			if len(p.holds) != 1 || p.holds[0].prompt.Parts[0].URL != testBase+"hold.wav" || !p.holds[0].canceled {
				t.Fatalf("holds %+v, want the fetchaudio once, stopped by the fetch", p.holds)
			}
		})
	}
	t.Run("xml:base", func(t *testing.T) {
		body := `<form><block><goto next="slow" fetchaudio="hold.wav"/></block></form>`
		res, p, _ := runHold(t, time.Minute, "", "", map[string]string{
			"main": `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" xml:base="media/x">` +
				holdTiming + strings.Replace(body, `next="slow"`, `next="../slow"`, 1) + `</vxml>`,
		})
		if err := checkExpect(res, "pass"); err != nil {
			t.Fatal(err)
		}
		if len(p.holds) != 1 || p.holds[0].prompt.Parts[0].URL != testBase+"media/hold.wav" {
			t.Fatalf("holds %+v", p.holds)
		}
	})
}

func traceHas(res *Result, kind, prefix string) bool {
	for _, e := range res.Trace {
		if e.Kind == kind && strings.HasPrefix(e.Detail, prefix) {
			return true
		}
	}
	return false
}

// TestFetchAudioSilent: no fetchaudio for a fetch that completes within fetchaudiodelay, for
// scripts (no fetchaudio applies to them), nor when the attribute is empty.
func TestFetchAudioSilent(t *testing.T) {
	for _, tc := range []struct{ name, props, body string }{
		{"fast fetch", `<property name="fetchaudiodelay" value="200ms"/>`,
			`<form><block><goto next="fast" fetchaudio="hold.wav"/></block></form>`},
		{"default delay", ``, `<form><block><goto next="slow" fetchaudio="hold.wav"/></block></form>`},
		{"script", holdTiming + `<property name="fetchaudio" value="hold.wav"/>`,
			`<script src="slow.js"/><form><block><exit expr="'pass'"/></block></form>`},
		{"empty attribute", holdTiming + `<property name="fetchaudio" value="hold.wav"/>`,
			`<form><data name="d" src="slow.xml" fetchaudio=""/><block><exit expr="'pass'"/></block></form>`},
		{"none", holdTiming, `<form><block><goto next="slow"/></block></form>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, p, _ := runHold(t, time.Minute, tc.props, tc.body, nil)
			if err := checkExpect(res, "pass"); err != nil {
				t.Fatal(err)
			}
			if len(p.holds) != 0 {
				t.Fatalf("fetchaudio played: %+v", p.holds[0])
			}
		})
	}
}

// TestFetchAudioMinimum: once started, the fetchaudio plays fetchaudiominimum even though
// the fetch completed before; a clip shorter than the fetch ends and is not repeated.
func TestFetchAudioMinimum(t *testing.T) {
	body := `<form><block><goto next="slow" fetchaudio="hold.wav"/></block></form>`
	res, p, _ := runHold(t, time.Minute,
		`<property name="fetchaudiodelay" value="20ms"/><property name="fetchaudiominimum" value="700ms"/>`, body, nil)
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	if len(p.holds) != 1 || p.holds[0].lasted < 700*time.Millisecond || p.holds[0].lasted > 2*time.Second {
		t.Fatalf("holds %+v, want one of about 700 ms", p.holds)
	}

	res, p, took := runHold(t, 50*time.Millisecond, holdTiming, body, nil)
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	if len(p.holds) != 1 || p.holds[0].canceled || took < slowFetch {
		t.Fatalf("short clip: holds %+v, session %v", p.holds, took)
	}
}

// TestFetchAudioPlaysQueueFirst: the prompts queued before a fetch with fetchaudio play
// before the fetch begins (VoiceXML 2.0 section 4.1.8), then the fetchaudio.
func TestFetchAudioPlaysQueueFirst(t *testing.T) {
	mf := NewMemoryFetcher()
	mf.Add(testBase+"main", "application/voicexml+xml", []byte(vxmlDoc(holdTiming+
		`<form><block><prompt>before</prompt><goto next="slow" fetchaudio="hold.wav"/></block></form>`)))
	mf.Add(testBase+"slow", "application/voicexml+xml", []byte(vxmlDoc(`<form><block><prompt>after</prompt><exit expr="'pass'"/></block></form>`)))
	order := &eventLog{}
	f := &orderFetcher{Fetcher: &slowFetcher{MemoryFetcher: mf, delay: map[string]time.Duration{testBase + "slow": slowFetch}}, order: order}
	p := &orderPlatform{holdPlatform: &holdPlatform{ScriptedPlatform: NewScriptedPlatform(""), clip: time.Minute}, order: order}
	res := testInterpreter(t, f).Run(context.Background(), p, SessionInfo{}, testBase+"main")
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	want := "fetch main|play before|fetch slow|play hold.wav|play after"
	if got := order.String(); got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

// eventLog records what happened, from any goroutine (fetches run on their own while a
// fetchaudio plays).
type eventLog struct {
	mu sync.Mutex
	e  []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	l.e = append(l.e, s)
	l.mu.Unlock()
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.e, "|")
}

type orderFetcher struct {
	Fetcher
	order *eventLog
}

func (f *orderFetcher) Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error) {
	f.order.add("fetch " + strings.TrimPrefix(req.URL, testBase))
	return f.Fetcher.Fetch(ctx, req)
}

type orderPlatform struct {
	*holdPlatform
	order *eventLog
}

func (p *orderPlatform) Play(ctx context.Context, pr *Prompt) (PlayResult, error) {
	what := pr.Text()
	if len(pr.Parts) == 1 && pr.Parts[0].Kind == PartAudio {
		what = strings.TrimPrefix(pr.Parts[0].URL, testBase)
	}
	p.order.add("play " + what)
	return p.holdPlatform.Play(ctx, pr)
}
