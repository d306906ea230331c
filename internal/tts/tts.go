// Package tts turns prompt text and SSML into 8 kHz 16-bit mono PCM for
// the mcp. A Service wraps an Engine (espeak-ng by default) with a cache
// shared by every call (IVR prompts repeat), coalescing of concurrent
// identical requests, a bound on concurrent engine runs and a timeout per
// synthesis. Without an engine it renders silence of a length estimated
// from the text, so call flows keep their timing.
package tts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// SampleRate is the rate of every Audio: 8000 Hz.
const SampleRate = 8000

// Defaults for Config.
const (
	// DefaultLang is the language used when a request has none.
	DefaultLang = "en-US"
	// DefaultCacheBytes bounds the synthesized-audio cache: 32 MiB, about
	// 35 minutes of 8 kHz 16-bit audio.
	DefaultCacheBytes = 32 << 20
	// DefaultMaxConcurrent bounds engine runs (espeak-ng processes) in
	// flight; more requests wait. Synthesis is CPU bound: a few per core.
	DefaultMaxConcurrent = 4
	// DefaultTimeout bounds one synthesis, waiting for a slot included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxTextBytes bounds the text (or SSML) of one request: 16 KiB.
	DefaultMaxTextBytes = 16 << 10
	// DefaultMaxBreak caps one <break>: 10 s, SSML's suggested maximum
	// for engines.
	DefaultMaxBreak = 10 * time.Second
	// DefaultSilencePerChar is the fallback's estimated speech length per
	// character (about 14 characters per second, a usual speaking rate).
	DefaultSilencePerChar = 70 * time.Millisecond
	// DefaultMinFallback and DefaultMaxFallback bound the fallback
	// silence of one text segment.
	DefaultMinFallback = 300 * time.Millisecond
	DefaultMaxFallback = 30 * time.Second
)

// Errors.
var (
	// ErrTooLong: the request text exceeds Config.MaxTextBytes.
	ErrTooLong = errors.New("tts text too long")
	// ErrNoVoice: no voice of the engine fits the request.
	ErrNoVoice = errors.New("no voice for language")
)

// Engine renders plain text with one voice.
type Engine interface {
	// Name identifies the engine in logs and metrics.
	Name() string
	// Voice returns the engine's voice for a BCP 47 language tag, or ""
	// when it has none.
	Voice(lang string) string
	// Render synthesizes text (plain, no markup) as 8 kHz mono samples.
	Render(ctx context.Context, text, voice string) ([]int16, error)
}

// Request is one synthesis.
type Request struct {
	// Text is plain text or an SSML document (see SSML).
	Text string
	// SSML marks Text as SSML. When false, Text is still treated as SSML
	// if it starts with "<?xml" or "<speak" (IsSSML).
	SSML bool
	// Voice is an engine voice name; empty: chosen from Lang.
	Voice string
	// Lang is a BCP 47 language tag (xml:lang); empty: Config.Lang.
	Lang string
}

// Audio is synthesized speech. Samples are shared with the cache and
// other callers: treat them as read-only.
type Audio struct {
	// Samples are 16-bit linear PCM at SampleRate, mono.
	Samples []int16
	// Fallback is true when the audio is estimated silence (no engine).
	Fallback bool
}

// Duration returns the audio length.
func (a *Audio) Duration() time.Duration {
	return time.Duration(len(a.Samples)) * time.Second / SampleRate
}

// Reader returns the samples as little-endian 16-bit PCM bytes.
func (a *Audio) Reader() io.Reader {
	b := make([]byte, 2*len(a.Samples))
	for i, s := range a.Samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return bytes.NewReader(b)
}

// Synthesizer is what the mcp's prompt player calls.
type Synthesizer interface {
	Synthesize(ctx context.Context, req Request) (*Audio, error)
}

// Config configures a Service. Start from DefaultConfig.
type Config struct {
	// Lang is the default language. Default DefaultLang.
	Lang string `yaml:"lang"`
	// Voice, when set, overrides the voice chosen from the language.
	Voice string `yaml:"voice"`
	// Engine is "espeak" (the default: espeak-ng when installed, else
	// silence) or "none" (always silence).
	Engine string `yaml:"engine"`
	// EspeakPath is the espeak-ng program; empty looks it up in PATH.
	EspeakPath string `yaml:"espeak_path"`
	// Rate is the speaking rate in words per minute; 0 is the engine's
	// default.
	Rate int `yaml:"rate"`
	// CacheBytes bounds the audio cache; 0 disables it. Default
	// DefaultCacheBytes.
	CacheBytes int64 `yaml:"cache_bytes"`
	// MaxConcurrent bounds engine runs in flight. Default
	// DefaultMaxConcurrent.
	MaxConcurrent int `yaml:"max_concurrent"`
	// Timeout bounds one synthesis. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MaxTextBytes bounds a request's text. Default DefaultMaxTextBytes.
	MaxTextBytes int `yaml:"max_text_bytes"`
	// MaxBreak caps one SSML <break>. Default DefaultMaxBreak.
	MaxBreak time.Duration `yaml:"max_break"`
	// SilencePerChar, MinFallback and MaxFallback shape the silence
	// rendered without an engine: per character, bounded per segment.
	SilencePerChar time.Duration `yaml:"silence_per_char"`
	MinFallback    time.Duration `yaml:"min_fallback"`
	MaxFallback    time.Duration `yaml:"max_fallback"`
}

// Engine names for Config.Engine.
const (
	EngineEspeak = "espeak"
	EngineNone   = "none"
)

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Lang:           DefaultLang,
		Engine:         EngineEspeak,
		CacheBytes:     DefaultCacheBytes,
		MaxConcurrent:  DefaultMaxConcurrent,
		Timeout:        DefaultTimeout,
		MaxTextBytes:   DefaultMaxTextBytes,
		MaxBreak:       DefaultMaxBreak,
		SilencePerChar: DefaultSilencePerChar,
		MinFallback:    DefaultMinFallback,
		MaxFallback:    DefaultMaxFallback,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Lang == "":
		return errors.New("tts: lang is empty")
	case c.Engine != EngineEspeak && c.Engine != EngineNone:
		return fmt.Errorf("tts: engine %q is not %q or %q", c.Engine, EngineEspeak, EngineNone)
	case c.Rate < 0 || c.Rate > 1000:
		return fmt.Errorf("tts: rate %d words per minute is out of range", c.Rate)
	case c.CacheBytes < 0:
		return fmt.Errorf("tts: cache_bytes %d is negative", c.CacheBytes)
	case c.MaxConcurrent <= 0:
		return fmt.Errorf("tts: max_concurrent %d must be positive", c.MaxConcurrent)
	case c.Timeout <= 0:
		return fmt.Errorf("tts: timeout %s must be positive", c.Timeout)
	case c.MaxTextBytes <= 0:
		return fmt.Errorf("tts: max_text_bytes %d must be positive", c.MaxTextBytes)
	case c.MaxBreak < 0:
		return fmt.Errorf("tts: max_break %s is negative", c.MaxBreak)
	case c.SilencePerChar < 0 || c.MinFallback < 0 || c.MaxFallback < c.MinFallback:
		return errors.New("tts: silence_per_char and min_fallback must not be negative, max_fallback not below min_fallback")
	}
	return nil
}

// Option configures a Service's dependencies.
type Option func(*options)

type options struct {
	log    zerolog.Logger
	reg    prometheus.Registerer
	engine Engine
}

// WithLogger sets the logger (default zerolog.Nop()).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the service's metrics (default: none).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithEngine uses e instead of the engine named by Config.Engine.
func WithEngine(e Engine) Option { return func(o *options) { o.engine = e } }

// Service is a caching Synthesizer over an Engine. It is safe for
// concurrent use; one Service serves every call of a process.
type Service struct {
	cfg    Config
	log    zerolog.Logger
	engine Engine // nil: silence fallback
	sem    chan struct{}
	cache  *audioCache
	m      *metrics

	fallbackOnce sync.Once
	flightsMu    sync.Mutex
	flights      map[promptKey]*flight
}

type flight struct {
	done chan struct{}
	a    *Audio
	err  error
}

// New validates cfg and returns a Service. With Config.Engine "espeak" and
// espeak-ng missing, the Service renders silence and logs that once, at
// the first synthesis (New itself does not fail).
func New(cfg Config, opts ...Option) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:     cfg,
		log:     o.log,
		engine:  o.engine,
		sem:     make(chan struct{}, cfg.MaxConcurrent),
		m:       m,
		flights: make(map[promptKey]*flight),
	}
	if s.engine == nil && cfg.Engine == EngineEspeak {
		e, err := NewEspeak(cfg.EspeakPath, cfg.Rate)
		if err != nil {
			if !errors.Is(err, ErrNoEngine) {
				return nil, fmt.Errorf("tts: %w", err)
			}
			s.log.Debug().Err(err).Msg("tts engine unavailable")
		} else {
			s.engine = e
		}
	}
	if cfg.CacheBytes > 0 {
		s.cache = newAudioCache(cfg.CacheBytes, func(b int64, n int) {
			m.cacheBytes.Set(float64(b))
			m.cacheEntries.Set(float64(n))
		})
	}
	return s, nil
}

// EngineName returns the engine in use, "none" when rendering silence.
func (s *Service) EngineName() string {
	if s.engine == nil {
		return EngineNone
	}
	return s.engine.Name()
}

// Synthesize implements Synthesizer.
func (s *Service) Synthesize(ctx context.Context, req Request) (*Audio, error) {
	began := time.Now()
	a, res, err := s.synthesize(ctx, req)
	if err != nil {
		res = resultError
	}
	s.m.requests[res].Inc()
	s.m.duration[res].Observe(time.Since(began).Seconds())
	return a, err
}

func (s *Service) synthesize(ctx context.Context, req Request) (*Audio, result, error) {
	if len(req.Text) > s.cfg.MaxTextBytes {
		return nil, resultError, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(req.Text), s.cfg.MaxTextBytes)
	}
	voice := ""
	if s.engine != nil {
		var err error
		if voice, err = s.voice(req); err != nil {
			return nil, resultError, err
		}
	}
	ssml := req.SSML || IsSSML(req.Text)
	key := promptKey{engine: s.EngineName(), voice: voice, ssml: ssml, text: req.Text}
	if s.cache != nil {
		if a := s.cache.get(key); a != nil {
			return a, resultHit, nil
		}
	}
	var fl *flight
	for waits := 0; ; waits++ {
		s.flightsMu.Lock()
		fl = s.flights[key]
		if fl == nil || waits >= maxFlightWaits {
			break
		}
		s.flightsMu.Unlock()
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, resultError, fmt.Errorf("tts: %w", ctx.Err())
		}
		// A leader whose own context ended says nothing about this
		// request: try again (possibly leading).
		if fl.err == nil || !isContextErr(fl.err) {
			return fl.a, resultCoalesced, fl.err
		}
	}
	// Still locked here.
	lead := fl == nil
	if lead {
		fl = &flight{done: make(chan struct{})}
		s.flights[key] = fl
	}
	s.flightsMu.Unlock()
	if !lead {
		fl = &flight{done: make(chan struct{})} // private, not published
	}

	fl.a, fl.err = s.render(ctx, req.Text, ssml, voice)
	if fl.err == nil && s.cache != nil {
		s.cache.put(key, fl.a)
	}
	if lead {
		s.flightsMu.Lock()
		delete(s.flights, key)
		s.flightsMu.Unlock()
	}
	close(fl.done)
	res := resultMiss
	if fl.err == nil && fl.a.Fallback {
		res = resultFallback
	}
	return fl.a, res, fl.err
}

// voice picks the engine voice for req.
func (s *Service) voice(req Request) (string, error) {
	for _, v := range []string{req.Voice, s.cfg.Voice} {
		if v != "" {
			return v, nil
		}
	}
	lang := req.Lang
	if lang == "" {
		lang = s.cfg.Lang
	}
	if v := s.engine.Voice(lang); v != "" {
		return v, nil
	}
	if v := s.engine.Voice(s.cfg.Lang); v != "" {
		s.log.Debug().Str("lang", lang).Str("voice", v).Msg("no voice for language, using the default")
		return v, nil
	}
	return "", fmt.Errorf("%w %q (engine %s)", ErrNoVoice, lang, s.engine.Name())
}

// maxFlightWaits is how many failed concurrent syntheses of the same
// prompt a request waits for before running the engine on its own.
const maxFlightWaits = 2

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// promptKey identifies a synthesis: engine, voice, input kind and text. A
// struct key costs no allocation on lookup.
type promptKey struct {
	engine, voice string
	ssml          bool
	text          string
}

func (k promptKey) size() int { return len(k.engine) + len(k.voice) + len(k.text) }

// render synthesizes every segment within the timeout.
func (s *Service) render(ctx context.Context, text string, ssml bool, voice string) (*Audio, error) {
	var segs []Segment
	if ssml {
		segs = ParseSSML(text, s.cfg.MaxBreak)
	} else {
		segs = textSegments(text)
	}
	if s.engine == nil {
		s.fallbackOnce.Do(func() {
			s.log.Warn().Str("engine", s.cfg.Engine).
				Msg("no text-to-speech engine available (install espeak-ng): prompts are rendered as silence of estimated length")
		})
		return &Audio{Samples: s.fallbackSamples(segs), Fallback: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var out []int16
	for _, seg := range segs {
		if seg.Text == "" {
			out = append(out, make([]int16, samplesFor(seg.Silence))...)
			continue
		}
		pcm, err := s.run(ctx, seg.Text, voice)
		if err != nil {
			return nil, err
		}
		out = append(out, pcm...)
	}
	return &Audio{Samples: out}, nil
}

// run executes the engine once, within the concurrency bound.
func (s *Service) run(ctx context.Context, text, voice string) ([]int16, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("tts: waiting for an engine slot: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	s.m.running.Inc()
	defer s.m.running.Dec()
	began := time.Now()
	pcm, err := s.engine.Render(ctx, text, voice)
	s.m.engineDuration.Observe(time.Since(began).Seconds())
	if err != nil {
		s.m.engineErrors.Inc()
		return nil, fmt.Errorf("tts %s voice %s: %w", s.engine.Name(), voice, err)
	}
	s.m.audioSeconds.Add(float64(len(pcm)) / SampleRate)
	return pcm, nil
}

// fallbackSamples is the silence standing in for segs.
func (s *Service) fallbackSamples(segs []Segment) []int16 {
	var d time.Duration
	for _, seg := range segs {
		if seg.Text == "" {
			d += seg.Silence
			continue
		}
		d += FallbackDuration(seg.Text, s.cfg.SilencePerChar, s.cfg.MinFallback, s.cfg.MaxFallback)
	}
	return make([]int16, samplesFor(d))
}

// FallbackDuration estimates how long text takes to speak: perChar per
// character, bounded to [minD, maxD].
func FallbackDuration(text string, perChar, minD, maxD time.Duration) time.Duration {
	d := time.Duration(utf8.RuneCountInString(text)) * perChar
	return min(max(d, minD), maxD)
}

func samplesFor(d time.Duration) int {
	return int(d * SampleRate / time.Second)
}
