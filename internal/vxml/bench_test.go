package vxml

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const benchPages = 18

// benchApp builds an 18-page DTMF application taking 50 keys: 16 pages
// read three digits and submit them, 2 pages read a yes/no; every page has
// document variables, a script, prompts with values and catch handlers.
func benchApp() (*MemoryFetcher, string) {
	f := NewMemoryFetcher()
	for i := 1; i <= benchPages; i++ {
		next := fmt.Sprintf(`<submit next="page%d.vxml" namelist="acct" method="post"/>`, i+1)
		if i == benchPages {
			next = `<exit expr="'done:' + acct"/>`
		}
		field := `<field name="acct" type="digits?length=3">`
		if i%9 == 0 {
			field = `<field name="acct" type="boolean">`
		}
		doc := fmt.Sprintf(`<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <var name="page" expr="%d"/>
  <var name="tries" expr="0"/>
  <script>function label(n) { return 'step ' + n; }</script>
  <catch event="error"><exit expr="'error:' + _event"/></catch>
  <link dtmf="*0" next="#agent"/>
  <form id="main">
    <block><prompt bargein="true">Welcome to <value expr="label(page)"/>.</prompt></block>
    %s
      <prompt>Please enter the code for page <value expr="page"/>.</prompt>
      <prompt count="2">Enter the code again.</prompt>
      <noinput><assign name="tries" expr="tries + 1"/><reprompt/></noinput>
      <nomatch><assign name="tries" expr="tries + 1"/><reprompt/></nomatch>
      <filled><if cond="tries &gt; 3"><exit expr="'too many'"/></if><log label="flow">page <value expr="page"/></log>%s</filled>
    </field>
  </form>
  <form id="agent"><block><exit expr="'agent'"/></block></form>
</vxml>`, i, field, next)
		f.Add(fmt.Sprintf("%spage%d.vxml", testBase, i), "application/voicexml+xml", []byte(doc))
	}
	var keys []string
	for i := 1; i <= benchPages; i++ {
		if i%9 == 0 {
			keys = append(keys, "1")
		} else {
			keys = append(keys, fmt.Sprintf("%03d", i))
		}
	}
	return f, strings.Join(keys, " ")
}

// quietPlatform is ScriptedPlatform without the recording of prompts.
type quietPlatform struct{ ScriptedPlatform }

func (p *quietPlatform) Play(ctx context.Context, pr *Prompt) (PlayResult, error) {
	return PlayResult{}, nil
}

func (p *quietPlatform) Log(label, message string) {}

func TestBenchAppRuns(t *testing.T) {
	f, keys := benchApp()
	if n := len(strings.ReplaceAll(keys, " ", "")); n != 50 {
		t.Fatalf("script has %d keys", n)
	}
	in := testInterpreter(t, f)
	res := in.Run(context.Background(), NewScriptedPlatform(keys), SessionInfo{}, testBase+"page1.vxml")
	if res.Reason != ReasonExit || res.Value != "done:true" {
		t.Fatalf("result %+v", res)
	}
}

func BenchmarkParse(b *testing.B) {
	f, _ := benchApp()
	resp, err := f.Fetch(context.Background(), &FetchRequest{URL: testBase + "page1.vxml"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(resp.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(resp.Body, resp.URL, xmlLimitsForTest()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallFlow runs the whole 18-page, 50-key call per iteration,
// with parsed documents shared through the cache as in production.
func BenchmarkCallFlow(b *testing.B) {
	f, keys := benchApp()
	cfg := DefaultConfig()
	cfg.Fetcher = f
	in, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		p := &quietPlatform{ScriptedPlatform: *NewScriptedPlatform(keys)}
		res := in.Run(context.Background(), p, SessionInfo{}, testBase+"page1.vxml")
		if res.Value != "done:true" {
			b.Fatalf("result %+v", res)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/benchPages, "ns/page")
}

// blockingPlatform parks every session in WaitDigit until released.
type blockingPlatform struct {
	quietPlatform
	waiting *sync.WaitGroup
	release chan struct{}
	once    sync.Once
}

func (p *blockingPlatform) WaitDigit(ctx context.Context, timeout time.Duration) (rune, bool, error) {
	p.once.Do(p.waiting.Done)
	<-p.release
	return 0, false, ErrHangup
}

// BenchmarkSessionFootprint reports the live heap held by one session
// parked waiting for input on page 1 (documents are shared).
func BenchmarkSessionFootprint(b *testing.B) {
	const sessions = 200
	f, _ := benchApp()
	cfg := DefaultConfig()
	cfg.Fetcher = f
	in, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Warm the document cache.
	in.Run(context.Background(), NewScriptedPlatform(""), SessionInfo{}, testBase+"page1.vxml")
	for b.Loop() {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		var waiting, done sync.WaitGroup
		release := make(chan struct{})
		for range sessions {
			waiting.Add(1)
			done.Add(1)
			p := &blockingPlatform{waiting: &waiting, release: release}
			go func() {
				defer done.Done()
				in.Run(context.Background(), p, SessionInfo{LocalURI: "sip:a@127.0.0.1", RemoteURI: "sip:b@127.0.0.1"}, testBase+"page1.vxml")
			}()
		}
		waiting.Wait()
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		close(release)
		done.Wait()
		b.ReportMetric(float64(ms1.HeapInuse-ms0.HeapInuse)/sessions, "heap-bytes/session")
		b.ReportMetric(float64(ms1.StackInuse-ms0.StackInuse)/sessions, "stack-bytes/session")
	}
}
