// Package vxmlcall runs VoiceXML applications on live calls: it implements the interpreter's
// Platform (internal/vxml) over a call's media — prompts rendered from TTS (internal/tts) and
// fetched audio (internal/fetch) and played with barge-in, DTMF input, recording (WAV or raw G.711),
// blind and bridge transfers and hang-up. The mcp role adapts its calls to the Call interface.
package vxmlcall

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/wav"
	"github.com/opengvp/gvp/internal/tts"
	"github.com/opengvp/gvp/internal/vxml"
)

// Call is what an application needs of a call. Methods return vxml.ErrHangup once the caller
// has hung up.
type Call interface {
	// Play plays sources in order; with bargein a DTMF key stops it (the key stays buffered
	// for WaitDigit) and bargedIn is true.
	Play(ctx context.Context, bargein bool, sources ...media.Source) (bargedIn bool, err error)
	// WaitDigit returns the next buffered or arriving key, waiting at most timeout.
	WaitDigit(ctx context.Context, timeout time.Duration) (key rune, ok bool, err error)
	// Hangup ends the call from our side (BYE).
	Hangup(ctx context.Context) error
	// Refer asks the caller's side to call target (blind transfer, RFC 3515).
	Refer(ctx context.Context, target string) error
	// Bridge places a call to req.Dest and connects the caller with it until one side hangs
	// up or req.MaxTime passes (bridge transfer). It returns the outcome as a TransferResult
	// status, vxml.ErrHangup when the caller hung up (before or during the bridge), or a
	// *vxml.Event (error.connection.*) when the call could not be placed at all. Until the
	// callee answers the caller hears connecting (the transferaudio), played once, or, when
	// nil, what the platform gives: the callee's early media or a ringback tone.
	Bridge(ctx context.Context, req *vxml.TransferRequest, connecting media.Source) (*vxml.TransferResult, error)
	// SetSink routes the caller's decoded audio to k (nil: nowhere).
	SetSink(k media.Sink)
}

// Defaults of the recording behaviour.
const (
	// DefaultNoSpeechTimeout ends a <record> that hears no speech at all (noinput).
	DefaultNoSpeechTimeout = 5 * time.Second
	// DefaultFinalSilence is <record>'s finalsilence when the document gives none.
	DefaultFinalSilence = 2 * time.Second
	// DefaultMaxRecordTime is <record>'s maxtime when the document gives none.
	DefaultMaxRecordTime = 60 * time.Second
	// SpeechRMS is the frame RMS (16-bit linear) above which a frame counts as speech.
	SpeechRMS = 500
	// beepDuration and beepHz describe the tone played before a recording with beep="true".
	beepDuration = 250 * time.Millisecond
	beepHz       = 1000
	// audioCacheEntries bounds the decoded-prompt cache.
	audioCacheEntries = 512
	// FinalProcessingTimeout bounds the final processing state: how long a session may still
	// run (connection.disconnect.hangup handlers, a last <submit>) after its call has ended.
	FinalProcessingTimeout = 10 * time.Second
)

// Runner runs VoiceXML applications. One Runner serves every call of an mcp: the interpreter's
// document cache, the fetch cache, the TTS cache and the decoded-audio cache are shared.
type Runner struct {
	interp *vxml.Interpreter
	fetch  *fetch.Fetcher
	tts    tts.Synthesizer
	log    zerolog.Logger
	audio  *audioCache
}

// New returns a Runner. interp must use f (or a fetcher sharing its cache) as its Fetcher.
func New(interp *vxml.Interpreter, f *fetch.Fetcher, synth tts.Synthesizer, log zerolog.Logger) *Runner {
	return &Runner{interp: interp, fetch: f, tts: synth, log: log, audio: newAudioCache(audioCacheEntries)}
}

// Run executes the application at url on call until it exits, disconnects, transfers, or the
// caller hangs up.
//
// ctx ending (the call's context, cancelled when the call ends) does not stop the session at
// once: the call's methods then report vxml.ErrHangup, the interpreter throws
// connection.disconnect.hangup and runs the document's handlers in the final processing
// state (VoiceXML 2.0 section 5.3.11), for at most FinalProcessingTimeout after ctx ended.
// ctx's values reach every fetch of the session (documents, resources and audio): a call's
// credentials go in with fetch.CallCredentials.Context.
func (r *Runner) Run(ctx context.Context, call Call, info vxml.SessionInfo, url string, log zerolog.Logger) *vxml.Result {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var grace *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		grace = time.AfterFunc(FinalProcessingTimeout, cancel)
		mu.Unlock()
	})
	defer func() {
		stop()
		mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		mu.Unlock()
	}()
	p := &platform{r: r, call: call, log: log}
	return r.interp.Run(sctx, p, info, url)
}

// platform is vxml.Platform on one call.
type platform struct {
	r    *Runner
	call Call
	log  zerolog.Logger
}

// Play renders the prompt's parts to audio and plays them.
func (p *platform) Play(ctx context.Context, pr *vxml.Prompt) (vxml.PlayResult, error) {
	var srcs []media.Source
	var mark string
	for _, part := range pr.Parts {
		switch part.Kind {
		case vxml.PartText:
			if s := p.speak(ctx, part.Text, pr.Lang); s != nil {
				srcs = append(srcs, s)
			}
		case vxml.PartAudio:
			samples, err := p.r.LoadAudio(ctx, part.URL)
			if err != nil {
				// VoiceXML 2.0 4.1.3: when the audio cannot be played, its content (the
				// fallback text) is rendered instead.
				p.log.Warn().Err(err).Str("url", part.URL).Msg("audio prompt failed; playing its fallback")
				if s := p.speak(ctx, part.Text, pr.Lang); s != nil {
					srcs = append(srcs, s)
				}
				continue
			}
			srcs = append(srcs, media.NewPCMSource(samples))
		case vxml.PartBreak:
			if part.Duration > 0 {
				srcs = append(srcs, media.NewSilenceSource(part.Duration))
			}
		case vxml.PartMark:
			mark = part.Name
		}
	}
	if len(srcs) == 0 {
		return vxml.PlayResult{Mark: mark}, nil
	}
	barged, err := p.call.Play(ctx, pr.Bargein, srcs...)
	return vxml.PlayResult{BargedIn: barged, Mark: mark}, err
}

func (p *platform) speak(ctx context.Context, text, lang string) media.Source {
	if text == "" || p.r.tts == nil {
		return nil
	}
	a, err := p.r.tts.Synthesize(ctx, tts.Request{Text: text, Lang: lang})
	if err != nil {
		p.log.Warn().Err(err).Msg("text to speech failed; prompt skipped")
		return nil
	}
	return media.NewPCMSource(a.Samples)
}

// WaitDigit waits for one DTMF key.
func (p *platform) WaitDigit(ctx context.Context, timeout time.Duration) (rune, bool, error) {
	return p.call.WaitDigit(ctx, timeout)
}

// Record captures the caller's audio in the requested format (req.Format: a WAV file in 16-bit
// linear, mu-law or A-law, or raw mu-law or A-law samples), ending on final silence after
// speech, a DTMF key (dtmfterm), maxtime, or no speech at all (noinput: an empty result).
func (p *platform) Record(ctx context.Context, req *vxml.RecordRequest) (*vxml.RecordResult, error) {
	maxTime := req.MaxTime
	if maxTime <= 0 {
		maxTime = DefaultMaxRecordTime
	}
	finalSilence := req.FinalSilence
	if finalSilence <= 0 {
		finalSilence = DefaultFinalSilence
	}
	if req.Beep {
		if _, err := p.call.Play(ctx, false, media.NewPCMSource(beep())); err != nil {
			return nil, err
		}
	}
	buf := &wav.Buffer{}
	w, err := wav.NewWriter(buf, req.Format.Encoding)
	if err != nil {
		return nil, err
	}
	sink := newSpeechSink(media.NewRecorder(w))
	p.call.SetSink(sink)
	began := time.Now()
	res := &vxml.RecordResult{Type: req.Format.ContentType}
	if res.Type == "" {
		res.Type = "audio/wav"
	}
	var waitErr error
	for {
		key, ok, err := p.call.WaitDigit(ctx, 50*time.Millisecond)
		if err != nil {
			waitErr = err
			break
		}
		if ok && req.DTMFTerm {
			res.TermChar = key
			break
		}
		now := time.Now()
		if now.Sub(began) >= maxTime {
			res.MaxTime = true
			break
		}
		last, heard := sink.lastSpeech()
		if heard && now.Sub(last) >= finalSilence {
			break
		}
		if !heard && now.Sub(began) >= DefaultNoSpeechTimeout {
			break
		}
	}
	p.call.SetSink(nil)
	if err := sink.rec.Close(); err != nil && waitErr == nil {
		waitErr = fmt.Errorf("write recording: %w", err)
	}
	if waitErr != nil {
		return nil, waitErr
	}
	if _, heard := sink.lastSpeech(); !heard {
		return res, nil // nothing said: the interpreter throws noinput
	}
	res.Audio = buf.Bytes()
	if req.Format.Raw {
		// Headerless G.711: the WAV file's data, one byte per sample.
		off := w.DataOffset()
		res.Audio = res.Audio[off : off+w.Samples()]
	}
	res.Duration = time.Duration(w.Samples()) * time.Second / 8000
	return res, nil
}

// Transfer performs blind transfers by REFER and bridge transfers through the call's Bridge.
// Consultation transfers go through Bridge too: the call hands back TransferConnected once the
// callee answered (it keeps the two parties connected after the session ends).
func (p *platform) Transfer(ctx context.Context, req *vxml.TransferRequest) (*vxml.TransferResult, error) {
	switch req.Type {
	case "blind":
		if err := p.call.Refer(ctx, req.Dest); err != nil {
			if errors.Is(err, vxml.ErrHangup) {
				return nil, err
			}
			return nil, &vxml.Event{Name: "error.connection.baddestination", Message: err.Error()}
		}
		return &vxml.TransferResult{Status: vxml.TransferUnknown}, nil
	case "bridge", "consultation":
		var connecting media.Source
		if req.TransferAudio != "" {
			if pcm, err := p.r.LoadAudio(ctx, req.TransferAudio); err != nil {
				// VoiceXML 2.0 2.3.7: a transferaudio that cannot be fetched is ignored.
				p.log.Warn().Err(err).Str("transferaudio", req.TransferAudio).Msg("transferaudio not played")
			} else {
				connecting = media.NewPCMSource(pcm)
			}
		}
		res, err := p.call.Bridge(ctx, req, connecting)
		var ev *vxml.Event
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, vxml.ErrHangup), errors.As(err, &ev), ctx.Err() != nil:
			return nil, err
		default:
			return nil, &vxml.Event{Name: "error.connection.noroute", Message: err.Error()}
		}
	}
	return nil, &vxml.Event{Name: "error.unsupported.transfer." + req.Type,
		Message: req.Type + " transfer is not supported by this platform"}
}

// Disconnect hangs up.
func (p *platform) Disconnect(ctx context.Context) error { return p.call.Hangup(ctx) }

// Log writes <log> output to the call's log.
func (p *platform) Log(label, message string) {
	p.log.Info().Str("label", label).Str("vxml_log", message).Msg("application log")
}

// LoadAudio fetches and decodes an audio prompt, caching the decoded samples per fetched body.
func (r *Runner) LoadAudio(ctx context.Context, url string) ([]int16, error) {
	if r.fetch == nil {
		return nil, errors.New("no fetcher")
	}
	res, err := r.fetch.Get(ctx, url, fetch.WithKind(vxml.FetchAudio))
	if err != nil {
		return nil, err
	}
	if s, ok := r.audio.get(url, res.Body); ok {
		return s, nil
	}
	a, err := wav.Parse(res.Body)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", url, err)
	}
	s := a.To8kMono()
	r.audio.put(url, res.Body, s)
	return s, nil
}

func beep() []int16 {
	n := int(beepDuration.Seconds() * 8000)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*beepHz*float64(i)/8000))
	}
	return out
}

// speechSink forwards frames to a recorder and notes when it last heard speech.
type speechSink struct {
	rec   *media.Recorder
	mu    sync.Mutex
	last  time.Time
	heard bool
}

func newSpeechSink(rec *media.Recorder) *speechSink { return &speechSink{rec: rec} }

func (s *speechSink) WriteFrame(frame []int16) {
	s.rec.WriteFrame(frame)
	var sum float64
	for _, v := range frame {
		sum += float64(v) * float64(v)
	}
	if len(frame) > 0 && math.Sqrt(sum/float64(len(frame))) >= SpeechRMS {
		s.mu.Lock()
		s.last, s.heard = time.Now(), true
		s.mu.Unlock()
	}
}

func (s *speechSink) lastSpeech() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.heard
}

// audioCache keeps decoded prompts keyed by URL, valid while the fetch cache returns the same
// body (a changed resource is decoded again).
type audioCache struct {
	mu    sync.Mutex
	max   int
	items map[string]audioEntry
	order []string
}

type audioEntry struct {
	body    *byte
	n       int
	samples []int16
}

func newAudioCache(max int) *audioCache {
	return &audioCache{max: max, items: map[string]audioEntry{}}
}

func bodyID(b []byte) *byte {
	if len(b) == 0 {
		return nil
	}
	return &b[0]
}

func (c *audioCache) get(url string, body []byte) ([]int16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[url]
	if !ok || e.body != bodyID(body) || e.n != len(body) {
		return nil, false
	}
	return e.samples, true
}

func (c *audioCache) put(url string, body []byte, s []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[url]; !ok {
		c.order = append(c.order, url)
		if len(c.order) > c.max {
			delete(c.items, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.items[url] = audioEntry{body: bodyID(body), n: len(body), samples: s}
}
