package tts

import (
	"bytes"
	"context"
	"errors"
	"github.com/opengvp/gvp/internal/testenv"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// needEspeak returns the espeak-ng engine. Without espeak-ng the test fails
// under CI (CI=true) and is skipped elsewhere, like other tests that need
// an installed program.
func needEspeak(t testing.TB) *Espeak {
	t.Helper()
	e, err := NewEspeak("", 0)
	if err != nil {
		testenv.Missing(t, "espeak-ng is required: apt-get install espeak-ng ("+err.Error()+")")
	}
	return e
}

// countingEngine counts runs of an inner engine.
type countingEngine struct {
	Engine
	runs atomic.Int32
}

func (c *countingEngine) Render(ctx context.Context, text, voice string) ([]int16, error) {
	c.runs.Add(1)
	return c.Engine.Render(ctx, text, voice)
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

func newService(t testing.TB, mut func(*Config), opts ...Option) *Service {
	t.Helper()
	cfg := DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEspeakOneTwoThree(t *testing.T) {
	eng := &countingEngine{Engine: needEspeak(t)}
	s := newService(t, nil, WithEngine(eng))
	a, err := s.Synthesize(context.Background(), Request{Text: "one two three", Lang: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Duration(); d < 500*time.Millisecond || d > 3*time.Second {
		t.Fatalf("duration %v, want 0.5-3 s", d)
	}
	if r := rms(a.Samples); r < 300 {
		t.Fatalf("RMS %.0f: no speech energy", r)
	}
	if a.Fallback {
		t.Fatal("espeak output flagged as fallback")
	}
	// The cache answers the same prompt without running the engine again.
	b, err := s.Synthesize(context.Background(), Request{Text: "one two three", Lang: "en-US"})
	if err != nil {
		t.Fatal(err)
	}
	if eng.runs.Load() != 1 {
		t.Fatalf("engine ran %d times, want 1", eng.runs.Load())
	}
	if len(b.Samples) != len(a.Samples) || &b.Samples[0] != &a.Samples[0] {
		t.Fatal("cache returned different samples")
	}
	// Another voice is another prompt.
	if _, err := s.Synthesize(context.Background(), Request{Text: "one two three", Lang: "en-GB"}); err != nil {
		t.Fatal(err)
	}
	if eng.runs.Load() != 2 {
		t.Fatalf("engine ran %d times, want 2 (voice is part of the key)", eng.runs.Load())
	}
	if n, _ := io.Copy(io.Discard, a.Reader()); n != int64(2*len(a.Samples)) {
		t.Fatalf("Reader gave %d bytes", n)
	}
}

func TestEspeakSSML(t *testing.T) {
	eng := &countingEngine{Engine: needEspeak(t)}
	s := newService(t, nil, WithEngine(eng))
	ctx := context.Background()
	one, err := s.Synthesize(ctx, Request{Text: "one"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Synthesize(ctx, Request{Text: "two"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Synthesize(ctx, Request{Text: `<?xml version="1.0"?><speak version="1.0" xml:lang="en-US">one <break time="1200ms"/> two</speak>`})
	if err != nil {
		t.Fatal(err)
	}
	// Each text segment is rendered alone, the break is exact silence.
	if want := len(one.Samples) + 9600 + len(two.Samples); len(a.Samples) != want {
		t.Fatalf("SSML gave %d samples, want %d", len(a.Samples), want)
	}
	gap := a.Samples[len(one.Samples) : len(one.Samples)+9600]
	for _, v := range gap {
		if v != 0 {
			t.Fatal("break is not silent")
		}
	}
	// say-as digits: spoken as "one two three".
	digits, err := s.Synthesize(ctx, Request{Text: `<speak><say-as interpret-as="digits">123</say-as></speak>`})
	if err != nil {
		t.Fatal(err)
	}
	words, err := s.Synthesize(ctx, Request{Text: "1 2 3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(digits.Samples) != len(words.Samples) {
		t.Fatalf("digits %d samples, spelled words %d", len(digits.Samples), len(words.Samples))
	}
}

func TestEspeakVoices(t *testing.T) {
	e := needEspeak(t)
	for lang, want := range map[string]string{"en-US": "en-us", "EN_gb": "en-gb", "de-AT": "de", "fr-CA": "fr-fr", "tlh": ""} {
		if got := e.Voice(lang); got != want {
			t.Errorf("Voice(%q) = %q, want %q", lang, got, want)
		}
	}
	if _, err := e.Render(context.Background(), "x", "--help"); err == nil {
		t.Fatal("unknown voice accepted")
	}
	// Text starting with a dash is text, not an option.
	pcm, err := e.Render(context.Background(), "-v xx --version", "en-us")
	if err != nil || len(pcm) == 0 {
		t.Fatalf("dash text: %d samples, %v", len(pcm), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Render(ctx, "one", "en-us"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled render: %v", err)
	}
	// Unknown language: the default voice speaks.
	s := newService(t, nil, WithEngine(e))
	if a, err := s.Synthesize(context.Background(), Request{Text: "yes", Lang: "tlh"}); err != nil || len(a.Samples) == 0 {
		t.Fatalf("unknown language: %v", err)
	}
}

func TestFallbackSilence(t *testing.T) {
	var logs bytes.Buffer
	s := newService(t, func(c *Config) { c.Engine = EngineNone }, WithLogger(zerolog.New(&logs)))
	if s.EngineName() != EngineNone {
		t.Fatalf("engine %q", s.EngineName())
	}
	for _, tc := range []struct {
		text string
		want time.Duration
	}{
		{"hello world", 11 * 70 * time.Millisecond},
		{"hi", DefaultMinFallback},
		{strings.Repeat("long ", 200), DefaultMaxFallback},
		{`<speak>hello world<break time="1s"/>hi</speak>`, 11*70*time.Millisecond + time.Second + DefaultMinFallback},
		{"  ", 0},
	} {
		a, err := s.Synthesize(context.Background(), Request{Text: tc.text})
		if err != nil {
			t.Fatal(err)
		}
		if !a.Fallback || a.Duration() != tc.want {
			t.Errorf("%.20q: %v (fallback %v), want %v", tc.text, a.Duration(), a.Fallback, tc.want)
		}
		for _, v := range a.Samples {
			if v != 0 {
				t.Fatalf("%q: fallback is not silent", tc.text)
			}
		}
	}
	if n := strings.Count(logs.String(), "no text-to-speech engine available"); n != 1 {
		t.Fatalf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
	// A missing espeak-ng program also falls back.
	s2 := newService(t, func(c *Config) { c.EspeakPath = "/nonexistent/espeak-ng" })
	if a, err := s2.Synthesize(context.Background(), Request{Text: "hello"}); err != nil || !a.Fallback {
		t.Fatalf("missing program: %v %+v", err, a)
	}
}

// blockingEngine renders 100 samples per text after release is closed,
// tracking concurrency.
type blockingEngine struct {
	release         chan struct{}
	runs            atomic.Int32
	running, maxRun atomic.Int32
}

func (b *blockingEngine) Name() string        { return "block" }
func (b *blockingEngine) Voice(string) string { return "v" }
func (b *blockingEngine) Render(ctx context.Context, text, voice string) ([]int16, error) {
	b.runs.Add(1)
	n := b.running.Add(1)
	defer b.running.Add(-1)
	for {
		m := b.maxRun.Load()
		if n <= m || b.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-b.release:
		return make([]int16, 100), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func waitFor(cond func() bool) {
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrencyBoundAndCoalescing(t *testing.T) {
	eng := &blockingEngine{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	s := newService(t, func(c *Config) { c.MaxConcurrent = 2 }, WithEngine(eng), WithRegisterer(reg))
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// 10 distinct prompts, each asked 3 times.
			_, err := s.Synthesize(context.Background(), Request{Text: "prompt " + string(rune('a'+i%10))})
			errs <- err
		}()
	}
	waitFor(func() bool { return eng.running.Load() == 2 })
	close(eng.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := eng.maxRun.Load(); m != 2 {
		t.Fatalf("max concurrent engine runs %d, want 2", m)
	}
	if r := eng.runs.Load(); r != 10 {
		t.Fatalf("engine runs %d, want 10 (one per distinct prompt)", r)
	}
	hits := testutil.ToFloat64(s.m.requests[resultHit]) + testutil.ToFloat64(s.m.requests[resultCoalesced])
	if miss := testutil.ToFloat64(s.m.requests[resultMiss]); miss != 10 || hits != 20 {
		t.Fatalf("metrics: %v misses, %v hits+coalesced", miss, hits)
	}
}

func TestTimeout(t *testing.T) {
	eng := &blockingEngine{release: make(chan struct{})}
	s := newService(t, func(c *Config) { c.Timeout = 50 * time.Millisecond }, WithEngine(eng))
	_, err := s.Synthesize(context.Background(), Request{Text: "never"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// A failed synthesis is not cached.
	close(eng.release)
	if a, err := s.Synthesize(context.Background(), Request{Text: "never"}); err != nil || len(a.Samples) != 100 {
		t.Fatalf("retry: %v", err)
	}
}

func TestLimitsAndConfig(t *testing.T) {
	s := newService(t, func(c *Config) { c.Engine = EngineNone; c.MaxTextBytes = 10 })
	if _, err := s.Synthesize(context.Background(), Request{Text: "01234567890"}); !errors.Is(err, ErrTooLong) {
		t.Fatalf("err = %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"lang":        func(c *Config) { c.Lang = "" },
		"engine":      func(c *Config) { c.Engine = "festival" },
		"concurrency": func(c *Config) { c.MaxConcurrent = 0 },
		"timeout":     func(c *Config) { c.Timeout = 0 },
		"fallback":    func(c *Config) { c.MaxFallback = time.Millisecond },
		"rate":        func(c *Config) { c.Rate = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}

func TestAudioCacheEviction(t *testing.T) {
	var bytes int64
	c := newAudioCache(1200, func(b int64, _ int) { bytes = b })     // room for two
	c.put(promptKey{text: "a"}, &Audio{Samples: make([]int16, 200)}) // 400+1+128
	c.put(promptKey{text: "b"}, &Audio{Samples: make([]int16, 200)})
	if c.get(promptKey{text: "a"}) == nil || c.get(promptKey{text: "b"}) == nil {
		t.Fatal("entries missing")
	}
	c.put(promptKey{text: "c"}, &Audio{Samples: make([]int16, 200)}) // evicts a (least recent)
	if c.get(promptKey{text: "a"}) != nil || c.get(promptKey{text: "c"}) == nil {
		t.Fatal("wrong eviction")
	}
	if b, n := c.stats(); b != bytes || n != 2 || b > 1200 {
		t.Fatalf("stats %d %d (callback %d)", b, n, bytes)
	}
	c.put(promptKey{text: "big"}, &Audio{Samples: make([]int16, 1000)})
	if c.get(promptKey{text: "big"}) != nil {
		t.Fatal("oversized audio cached")
	}
}

func BenchmarkCacheHit(b *testing.B) {
	eng := &blockingEngine{release: make(chan struct{})}
	close(eng.release)
	s := newService(b, nil, WithEngine(eng))
	ctx := context.Background()
	req := Request{Text: "Welcome to the billing line. Press 1 for your balance.", Lang: "en-US"}
	if _, err := s.Synthesize(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Synthesize(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEspeakRender measures one espeak-ng run (process start, a
// three-second prompt, WAV decoding and resampling to 8 kHz).
func BenchmarkEspeakRender(b *testing.B) {
	e := needEspeak(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Render(ctx, "Welcome to the billing line. Press 1 for your balance.", "en-us"); err != nil {
			b.Fatal(err)
		}
	}
}
