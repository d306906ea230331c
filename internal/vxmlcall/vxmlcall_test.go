package vxmlcall

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/g711"
	"github.com/opengvp/gvp/internal/media/wav"
	"github.com/opengvp/gvp/internal/tts"
	"github.com/opengvp/gvp/internal/vxml"
)

// frame is one 20 ms frame at 8 kHz.
const frame = 160

// fakeTTS renders each text as one frame of a constant sample value chosen per text, so a
// played prompt shows which texts it contains and in which order.
type fakeTTS struct {
	mu    sync.Mutex
	texts []string
	value map[string]int16
}

func (f *fakeTTS) Synthesize(_ context.Context, req tts.Request) (*tts.Audio, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.texts = append(f.texts, req.Text)
	v, ok := f.value[req.Text]
	if !ok {
		return nil, errors.New("no voice for " + req.Text)
	}
	return &tts.Audio{Samples: constant(v, frame)}, nil
}

func constant(v int16, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// play is one Call.Play as the fake saw it.
type play struct {
	bargein bool
	samples []int16
}

// fakeCall is a Call driven by the test.
type fakeCall struct {
	mu      sync.Mutex
	plays   []play
	bargeIn bool  // Play reports a barge-in
	playErr error // Play fails
	// keys are returned by WaitDigit in order, each once the sink has been set for a
	// recording when afterSink is true; then WaitDigit times out (returns at once: time is
	// not simulated) or fails with waitErr.
	keys      []rune
	afterSink bool
	waitErr   error
	// onSink feeds a sink as soon as it is set (the caller's audio during a recording).
	onSink   func(media.Sink)
	sink     media.Sink
	sinkSets int
	refers   []string
	referErr error
	hangups  int
	// bridges are the Bridge requests; bridgeRes and bridgeErr their outcome.
	bridges   []vxml.TransferRequest
	connects  []media.Source // the connecting audio of each Bridge
	bridgeRes *vxml.TransferResult
	bridgeErr error
}

func (c *fakeCall) Play(_ context.Context, bargein bool, srcs ...media.Source) (bool, error) {
	var all []int16
	buf := make([]int16, frame)
	for _, s := range srcs {
		for {
			n, err := s.ReadFrame(buf)
			all = append(all, buf[:n]...)
			if err != nil || n == 0 {
				break
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plays = append(c.plays, play{bargein: bargein, samples: all})
	if c.playErr != nil {
		return false, c.playErr
	}
	return bargein && c.bargeIn, nil
}

func (c *fakeCall) WaitDigit(ctx context.Context, timeout time.Duration) (rune, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waitErr != nil {
		return 0, false, c.waitErr
	}
	if len(c.keys) > 0 && (!c.afterSink || c.sink != nil) {
		k := c.keys[0]
		c.keys = c.keys[1:]
		return k, true, nil
	}
	c.mu.Unlock()
	// A short real wait keeps the recording loop from spinning; tests never assert on it.
	select {
	case <-time.After(min(timeout, 5*time.Millisecond)):
	case <-ctx.Done():
	}
	c.mu.Lock()
	return 0, false, ctx.Err()
}

func (c *fakeCall) Hangup(context.Context) error {
	c.mu.Lock()
	c.hangups++
	c.mu.Unlock()
	return nil
}

func (c *fakeCall) Refer(_ context.Context, target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refers = append(c.refers, target)
	return c.referErr
}

func (c *fakeCall) Bridge(_ context.Context, req *vxml.TransferRequest, connecting media.Source) (*vxml.TransferResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bridges = append(c.bridges, *req)
	c.connects = append(c.connects, connecting)
	return c.bridgeRes, c.bridgeErr
}

func (c *fakeCall) SetSink(k media.Sink) {
	c.mu.Lock()
	c.sink = k
	c.sinkSets++
	feed := c.onSink
	c.mu.Unlock()
	if k != nil && feed != nil {
		feed(k)
	}
}

// wavBody encodes samples as a 16-bit WAV file.
func wavBody(t *testing.T, samples []int16) []byte {
	t.Helper()
	var f wav.Buffer
	w, err := wav.NewWriter(&f, wav.EncodingPCM16)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Bytes()
}

// audioServer serves /tone.wav (one frame of 3000), /garbage.wav (not audio) and 404
// elsewhere.
func audioServer(t *testing.T) string {
	t.Helper()
	tone := wavBody(t, constant(3000, frame))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/tone.wav":
			w.Header().Set("Content-Type", "audio/wav")
			_, _ = w.Write(tone)
		case "/garbage.wav":
			w.Header().Set("Content-Type", "audio/wav")
			_, _ = w.Write([]byte("this is not a wav file"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func newTestRunner(t *testing.T, synth tts.Synthesizer, docs map[string]string) *Runner {
	t.Helper()
	f, err := fetch.New(fetch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	mf := vxml.NewMemoryFetcher()
	for u, d := range docs {
		mf.Add(u, "application/voicexml+xml", []byte(d))
	}
	cfg := vxml.DefaultConfig()
	cfg.Fetcher = mf
	interp, err := vxml.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return New(interp, f, synth, zerolog.Nop())
}

func newPlatform(t *testing.T, call Call, synth tts.Synthesizer) *platform {
	return &platform{r: newTestRunner(t, synth, nil), call: call, log: zerolog.Nop()}
}

// runs compresses samples into (value, count) pairs.
type run struct {
	v int16
	n int
}

func runs(s []int16) []run {
	var out []run
	for _, v := range s {
		if len(out) > 0 && out[len(out)-1].v == v {
			out[len(out)-1].n++
			continue
		}
		out = append(out, run{v, 1})
	}
	return out
}

func TestPlayRendersPartsInOrder(t *testing.T) {
	base := audioServer(t)
	synth := &fakeTTS{value: map[string]int16{"hello": 100, "bye": 200, "fallback": 300}}
	call := &fakeCall{}
	p := newPlatform(t, call, synth)
	pr := &vxml.Prompt{Bargein: true, Parts: []vxml.PromptPart{
		{Kind: vxml.PartText, Text: "hello"},
		{Kind: vxml.PartAudio, URL: base + "/tone.wav", Text: "fallback"},
		{Kind: vxml.PartBreak, Duration: 40 * time.Millisecond},
		{Kind: vxml.PartMark, Name: "m1"},
		{Kind: vxml.PartText, Text: "bye"},
	}}
	res, err := p.Play(context.Background(), pr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mark != "m1" || res.BargedIn {
		t.Fatalf("result %+v, want mark m1 and no barge-in", res)
	}
	if len(call.plays) != 1 || !call.plays[0].bargein {
		t.Fatalf("plays %d (bargein %v), want one with bargein", len(call.plays), len(call.plays) > 0 && call.plays[0].bargein)
	}
	want := []run{{100, frame}, {3000, frame}, {0, 2 * frame}, {200, frame}}
	if got := runs(call.plays[0].samples); !slices.Equal(got, want) {
		t.Fatalf("played %v, want %v (text, audio, 40 ms break, text)", got, want)
	}
	if slices.Contains(synth.texts, "fallback") {
		t.Fatal("the fallback text of a playable audio part was synthesized")
	}
}

func TestPlayAudioFallback(t *testing.T) {
	base := audioServer(t)
	for _, tc := range []struct {
		name, url string
		fallback  string
		want      []run
	}{
		{"404 plays the fallback text", base + "/missing.wav", "fallback", []run{{300, frame}}},
		{"undecodable audio plays the fallback text", base + "/garbage.wav", "fallback", []run{{300, frame}}},
		{"no fallback text plays nothing", base + "/missing.wav", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := &fakeCall{}
			p := newPlatform(t, call, &fakeTTS{value: map[string]int16{"fallback": 300}})
			_, err := p.Play(context.Background(), &vxml.Prompt{Parts: []vxml.PromptPart{{Kind: vxml.PartAudio, URL: tc.url, Text: tc.fallback}}})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(call.plays) != 0 {
					t.Fatalf("played %v, want nothing", runs(call.plays[0].samples))
				}
				return
			}
			if len(call.plays) != 1 || !slices.Equal(runs(call.plays[0].samples), tc.want) {
				t.Fatalf("plays %+v, want %v", call.plays, tc.want)
			}
		})
	}
}

func TestPlayBargeInAndErrors(t *testing.T) {
	synth := &fakeTTS{value: map[string]int16{"hi": 1}}
	pr := func(bargein bool) *vxml.Prompt {
		return &vxml.Prompt{Bargein: bargein, Parts: []vxml.PromptPart{{Kind: vxml.PartText, Text: "hi"}}}
	}
	t.Run("barge-in is reported", func(t *testing.T) {
		call := &fakeCall{bargeIn: true}
		res, err := newPlatform(t, call, synth).Play(context.Background(), pr(true))
		if err != nil || !res.BargedIn {
			t.Fatalf("res %+v err %v, want a barge-in", res, err)
		}
	})
	t.Run("no barge-in on a prompt that forbids it", func(t *testing.T) {
		call := &fakeCall{bargeIn: true}
		res, err := newPlatform(t, call, synth).Play(context.Background(), pr(false))
		if err != nil || res.BargedIn || call.plays[0].bargein {
			t.Fatalf("res %+v err %v bargein passed %v", res, err, call.plays[0].bargein)
		}
	})
	t.Run("hangup during a prompt", func(t *testing.T) {
		call := &fakeCall{playErr: vxml.ErrHangup}
		if _, err := newPlatform(t, call, synth).Play(context.Background(), pr(true)); !errors.Is(err, vxml.ErrHangup) {
			t.Fatalf("err %v, want ErrHangup", err)
		}
	})
	t.Run("failed synthesis skips the text", func(t *testing.T) {
		call := &fakeCall{}
		p := newPlatform(t, call, synth)
		res, err := p.Play(context.Background(), &vxml.Prompt{Parts: []vxml.PromptPart{{Kind: vxml.PartText, Text: "unknown"}, {Kind: vxml.PartMark, Name: "end"}}})
		if err != nil || res.Mark != "end" || len(call.plays) != 0 {
			t.Fatalf("res %+v err %v plays %d, want the mark and nothing played", res, err, len(call.plays))
		}
	})
}

// speech feeds n frames of a loud tone.
func speech(n int) func(media.Sink) {
	return func(k media.Sink) {
		for i := 0; i < n; i++ {
			f := make([]int16, frame)
			for j := range f {
				f[j] = int16(4000 * math.Sin(2*math.Pi*440*float64(i*frame+j)/8000))
			}
			k.WriteFrame(f)
		}
	}
}

func silence(n int) func(media.Sink) {
	return func(k media.Sink) {
		for i := 0; i < n; i++ {
			k.WriteFrame(make([]int16, frame))
		}
	}
}

func TestRecord(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      vxml.RecordRequest
		call     *fakeCall
		wantAud  bool
		wantTerm rune
		wantMax  bool
		wantBeep bool
	}{
		{"speech then final silence", vxml.RecordRequest{FinalSilence: 50 * time.Millisecond, MaxTime: time.Minute},
			&fakeCall{onSink: speech(10)}, true, 0, false, false},
		{"dtmfterm ends with the key", vxml.RecordRequest{DTMFTerm: true, FinalSilence: time.Minute, MaxTime: time.Minute},
			&fakeCall{onSink: speech(5), keys: []rune{'#'}, afterSink: true}, true, '#', false, false},
		{"a key without dtmfterm does not end it", vxml.RecordRequest{FinalSilence: 50 * time.Millisecond, MaxTime: time.Minute},
			&fakeCall{onSink: speech(5), keys: []rune{'#'}, afterSink: true}, true, 0, false, false},
		{"no speech is an empty result", vxml.RecordRequest{FinalSilence: 50 * time.Millisecond, MaxTime: 100 * time.Millisecond},
			&fakeCall{onSink: silence(10)}, false, 0, true, false},
		{"beep before recording", vxml.RecordRequest{Beep: true, FinalSilence: 50 * time.Millisecond, MaxTime: time.Minute},
			&fakeCall{onSink: speech(3)}, true, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlatform(t, tc.call, nil)
			res, err := p.Record(context.Background(), &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Audio) > 0; got != tc.wantAud {
				t.Fatalf("audio %d bytes, want audio %v", len(res.Audio), tc.wantAud)
			}
			if res.TermChar != tc.wantTerm || res.MaxTime != tc.wantMax {
				t.Fatalf("termchar %q maxtime %v, want %q %v", res.TermChar, res.MaxTime, tc.wantTerm, tc.wantMax)
			}
			if tc.call.sink != nil || tc.call.sinkSets != 2 {
				t.Fatalf("sink left %v after %d sets, want set then removed", tc.call.sink, tc.call.sinkSets)
			}
			if tc.wantAud {
				a, err := wav.Parse(res.Audio)
				if err != nil {
					t.Fatalf("recording is not a WAV file: %v", err)
				}
				samples := a.To8kMono()
				if len(samples) == 0 || res.Duration != time.Duration(len(samples))*time.Second/8000 {
					t.Fatalf("%d samples, duration %v", len(samples), res.Duration)
				}
				if peak := slices.Max(samples); peak < 3000 {
					t.Fatalf("recorded peak %d: the caller's speech is missing", peak)
				}
			}
			if tc.wantBeep {
				if len(tc.call.plays) != 1 || tc.call.plays[0].bargein {
					t.Fatalf("plays %d, want one beep without barge-in", len(tc.call.plays))
				}
				b := tc.call.plays[0].samples
				if len(b) != int(beepDuration.Seconds()*8000) || slices.Max(b) < 7000 {
					t.Fatalf("beep of %d samples, peak %d", len(b), slices.Max(b))
				}
			} else if len(tc.call.plays) != 0 {
				t.Fatal("played a beep that was not asked for")
			}
		})
	}
}

// TestRecordFormats records the same speech in every format of <record type> and checks the
// bytes: WAV files with the asked encoding, raw G.711 of the asked law, sizes matching the
// duration.
func TestRecordFormats(t *testing.T) {
	for _, tc := range []struct {
		typ, codec string
		wavFormat  wav.Format // 0 for raw audio
		bytesPer   int
		decode     func([]int16, []byte) int
	}{
		{"", "", wav.FormatPCM, 2, nil},
		{"audio/wav", "", wav.FormatPCM, 2, nil},
		{"audio/x-wav;codec=ulaw", "", wav.FormatMuLaw, 1, nil},
		{"audio/wav", "alaw", wav.FormatALaw, 1, nil},
		{"audio/basic", "", 0, 1, g711.DecodeUlaw},
		{"audio/x-alaw-basic", "", 0, 1, g711.DecodeAlaw},
	} {
		t.Run(tc.typ+" "+tc.codec, func(t *testing.T) {
			format, err := vxml.ParseRecordType(tc.typ, tc.codec)
			if err != nil {
				t.Fatal(err)
			}
			call := &fakeCall{onSink: speech(10)}
			res, err := newPlatform(t, call, nil).Record(context.Background(),
				&vxml.RecordRequest{FinalSilence: 50 * time.Millisecond, MaxTime: time.Minute, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			want := format.ContentType
			if res.Type != want {
				t.Fatalf("type %q, want %q", res.Type, want)
			}
			var samples []int16
			dataBytes := len(res.Audio)
			if tc.wavFormat != 0 {
				a, err := wav.Parse(res.Audio)
				if err != nil {
					t.Fatalf("not a WAV file: %v", err)
				}
				if a.Info.Format != tc.wavFormat || a.Info.BitsPerSample != 8*tc.bytesPer || a.Info.SampleRate != 8000 {
					t.Fatalf("WAV %+v, want format %v", a.Info, tc.wavFormat)
				}
				samples, dataBytes = a.Samples, a.Info.DataSize
			} else {
				if len(res.Audio) >= 4 && string(res.Audio[:4]) == "RIFF" {
					t.Fatal("raw recording has a WAV header")
				}
				samples = make([]int16, len(res.Audio))
				tc.decode(samples, res.Audio)
			}
			if dataBytes != len(samples)*tc.bytesPer || res.Duration != time.Duration(len(samples))*time.Second/8000 {
				t.Fatalf("%d data bytes, %d samples, duration %v", dataBytes, len(samples), res.Duration)
			}
			// The tone's peak is 4000: decoded with the right law it comes back within the
			// G.711 step.
			if peak := slices.Max(samples); peak < 3700 || peak > 4300 {
				t.Fatalf("peak %d, want about 4000", peak)
			}
		})
	}
}

func TestRecordHangup(t *testing.T) {
	call := &fakeCall{onSink: speech(2), waitErr: vxml.ErrHangup}
	_, err := newPlatform(t, call, nil).Record(context.Background(), &vxml.RecordRequest{MaxTime: time.Minute})
	if !errors.Is(err, vxml.ErrHangup) || call.sink != nil {
		t.Fatalf("err %v sink %v, want ErrHangup and the sink removed", err, call.sink)
	}
}

func TestTransferBridge(t *testing.T) {
	req := vxml.TransferRequest{Type: "bridge", Dest: "sip:agent@127.0.0.1", ConnectTimeout: 5 * time.Second,
		MaxTime: time.Minute, AAI: "case=42"}
	badDest := &vxml.Event{Name: "error.connection.baddestination"}
	for _, tc := range []struct {
		name       string
		res        *vxml.TransferResult
		err        error
		wantStatus string
		wantEvent  string
		wantErr    error
	}{
		{"far end hangs up", &vxml.TransferResult{Status: vxml.TransferFarEndDisconnect, Duration: 3 * time.Second},
			nil, vxml.TransferFarEndDisconnect, "", nil},
		{"busy", &vxml.TransferResult{Status: vxml.TransferBusy}, nil, vxml.TransferBusy, "", nil},
		{"caller hangs up", nil, vxml.ErrHangup, "", "", vxml.ErrHangup},
		{"bad destination event passes through", nil, badDest, "", "error.connection.baddestination", nil},
		{"other failure is no route", nil, errors.New("dial: no transport"), "", "error.connection.noroute", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := &fakeCall{bridgeRes: tc.res, bridgeErr: tc.err}
			r := req
			res, err := newPlatform(t, call, nil).Transfer(context.Background(), &r)
			if len(call.bridges) != 1 || call.bridges[0] != req || len(call.refers) != 0 {
				t.Fatalf("bridges %+v refers %v, want one bridge of %+v", call.bridges, call.refers, req)
			}
			var ev *vxml.Event
			switch {
			case tc.wantEvent != "":
				if !errors.As(err, &ev) || ev.Name != tc.wantEvent {
					t.Fatalf("err %v, want event %s", err, tc.wantEvent)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil || res == nil || res.Status != tc.wantStatus || res.Duration != tc.res.Duration {
					t.Fatalf("res %+v err %v, want %+v", res, err, tc.res)
				}
			}
		})
	}
}

// TestTransferConsultation: a consultation transfer is placed through Bridge, whose outcome
// (connected, or a failure status) goes back to the interpreter unchanged.
func TestTransferConsultation(t *testing.T) {
	for _, status := range []string{vxml.TransferConnected, vxml.TransferBusy} {
		call := &fakeCall{bridgeRes: &vxml.TransferResult{Status: status}}
		req := vxml.TransferRequest{Type: "consultation", Dest: "sip:agent@127.0.0.1"}
		res, err := newPlatform(t, call, nil).Transfer(context.Background(), &req)
		if err != nil || res.Status != status || len(call.bridges) != 1 || call.bridges[0].Type != "consultation" {
			t.Fatalf("res %+v err %v bridges %+v, want %s through one consultation Bridge", res, err, call.bridges, status)
		}
	}
}

// TestTransferAudio: a bridge's transferaudio is fetched and handed to Bridge as the audio
// the caller hears until the answer; one that cannot be fetched is ignored (VoiceXML 2.0
// 2.3.7) and the transfer goes on with the platform's own (nil).
func TestTransferAudio(t *testing.T) {
	base := audioServer(t)
	for _, tc := range []struct {
		url      string
		wantPlay bool
	}{
		{base + "/tone.wav", true},
		{base + "/missing.wav", false},
		{"", false},
	} {
		call := &fakeCall{bridgeRes: &vxml.TransferResult{Status: vxml.TransferFarEndDisconnect}}
		req := vxml.TransferRequest{Type: "bridge", Dest: "sip:agent@127.0.0.1", TransferAudio: tc.url}
		res, err := newPlatform(t, call, nil).Transfer(context.Background(), &req)
		if err != nil || res.Status != vxml.TransferFarEndDisconnect || len(call.connects) != 1 {
			t.Fatalf("%q: res %+v err %v bridges %d", tc.url, res, err, len(call.connects))
		}
		src := call.connects[0]
		if (src != nil) != tc.wantPlay {
			t.Fatalf("%q: connecting audio %v, want it played: %v", tc.url, src, tc.wantPlay)
		}
		if src != nil {
			buf := make([]int16, media.FrameSamples)
			if n, err := src.ReadFrame(buf); n != media.FrameSamples || err != nil || buf[0] != 3000 {
				t.Fatalf("connecting audio frame: n %d err %v sample %d, want the tone's 3000", n, err, buf[0])
			}
		}
	}
}

func TestTransfer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req       vxml.TransferRequest
		referErr  error
		wantRefer bool
		wantEvent string
		wantErr   error
	}{
		{"blind is a REFER", vxml.TransferRequest{Type: "blind", Dest: "sip:agent@127.0.0.1"}, nil, true, "", nil},
		{"refused REFER is a bad destination", vxml.TransferRequest{Type: "blind", Dest: "sip:agent@127.0.0.1"}, errors.New("refer failed at notify: status 486"),
			true, "error.connection.baddestination", nil},
		{"hangup during REFER", vxml.TransferRequest{Type: "blind", Dest: "sip:agent@127.0.0.1"}, vxml.ErrHangup, true, "", vxml.ErrHangup},
		{"other types are unsupported", vxml.TransferRequest{Type: "supervised", Dest: "sip:agent@127.0.0.1"}, nil, false, "error.unsupported.transfer.supervised", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := &fakeCall{referErr: tc.referErr}
			res, err := newPlatform(t, call, nil).Transfer(context.Background(), &tc.req)
			if got := len(call.refers) == 1 && call.refers[0] == tc.req.Dest; got != tc.wantRefer {
				t.Fatalf("refers %v, want a REFER to %s: %v", call.refers, tc.req.Dest, tc.wantRefer)
			}
			var ev *vxml.Event
			switch {
			case tc.wantEvent != "":
				if !errors.As(err, &ev) || ev.Name != tc.wantEvent {
					t.Fatalf("err %v, want event %s", err, tc.wantEvent)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil || res == nil || res.Status != vxml.TransferUnknown {
					t.Fatalf("res %+v err %v, want status unknown", res, err)
				}
			}
		})
	}
}

const (
	docBase = "http://app.invalid/"
	// fieldDoc waits for a key; a hangup ends it unless caught.
	fieldDoc = `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><field name="f" type="digits?length=1"><filled><exit expr="'got:' + f"/></filled></field></form></vxml>`
	// caughtDoc handles the hangup (final processing).
	caughtDoc = `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<catch event="connection.disconnect.hangup"><exit expr="'pass'"/></catch>
<form><field name="f" type="digits?length=1"><filled><exit expr="'fail'"/></filled></field></form></vxml>`
	// disconnectDoc hangs up from the platform side.
	disconnectDoc = `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<catch event="connection.disconnect.hangup"><exit expr="'pass'"/></catch>
<form><block><disconnect/><exit expr="'fail'"/></block></form></vxml>`
	// transferDoc transfers blind.
	transferDoc = `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><transfer name="x" dest="sip:agent@127.0.0.1" type="blind"/><block><exit expr="'fail'"/></block></form></vxml>`
)

func TestRunMapsCallOutcomes(t *testing.T) {
	r := newTestRunner(t, nil, map[string]string{
		docBase + "field.vxml": fieldDoc, docBase + "caught.vxml": caughtDoc,
		docBase + "disconnect.vxml": disconnectDoc, docBase + "transfer.vxml": transferDoc,
	})
	for _, tc := range []struct {
		name, doc string
		call      *fakeCall
		// cancel ends the run's context when the call reports the hangup, as the mcp's
		// call context ends with the call.
		cancel      bool
		wantReason  vxml.Reason
		wantValue   any
		wantHangups int
		wantRefers  int
	}{
		{"a key fills the field", "field.vxml", &fakeCall{keys: []rune{'7'}}, false, vxml.ReasonExit, "got:7", 0, 0},
		{"uncaught caller hangup", "field.vxml", &fakeCall{waitErr: vxml.ErrHangup}, false, vxml.ReasonHangup, nil, 0, 0},
		{"uncaught caller hangup with the call context ended", "field.vxml", &fakeCall{waitErr: vxml.ErrHangup}, true, vxml.ReasonHangup, nil, 0, 0},
		{"caught caller hangup runs its handler", "caught.vxml", &fakeCall{waitErr: vxml.ErrHangup}, false, vxml.ReasonExit, "pass", 0, 0},
		{"caught caller hangup runs its handler after the call context ended", "caught.vxml", &fakeCall{waitErr: vxml.ErrHangup}, true, vxml.ReasonExit, "pass", 0, 0},
		{"disconnect hangs up and runs the handler", "disconnect.vxml", &fakeCall{}, false, vxml.ReasonExit, "pass", 1, 0},
		{"blind transfer ends the session", "transfer.vxml", &fakeCall{}, false, vxml.ReasonTransfer, nil, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var call Call = tc.call
			if tc.cancel {
				call = cancelOnHangup{fakeCall: tc.call, cancel: cancel}
			}
			res := r.Run(ctx, call, vxml.SessionInfo{}, docBase+tc.doc, zerolog.Nop())
			if res.Reason != tc.wantReason || res.Value != tc.wantValue {
				t.Fatalf("reason %s value %v (event %s %s err %v), want %s %v", res.Reason, res.Value, res.Event, res.Message, res.Err, tc.wantReason, tc.wantValue)
			}
			if tc.call.hangups != tc.wantHangups || len(tc.call.refers) != tc.wantRefers {
				t.Fatalf("hangups %d refers %d, want %d %d", tc.call.hangups, len(tc.call.refers), tc.wantHangups, tc.wantRefers)
			}
		})
	}
}

// cancelOnHangup is a call whose caller has hung up, seen as the mcp sees it: the call's
// context, which is the application's, has ended, and a method reports that context's error
// when it is the one done.
type cancelOnHangup struct {
	*fakeCall
	cancel context.CancelFunc
}

func (c cancelOnHangup) WaitDigit(ctx context.Context, d time.Duration) (rune, bool, error) {
	c.cancel()
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	return 0, false, vxml.ErrHangup
}

func BenchmarkPlayPrompt(b *testing.B) {
	synth := &fakeTTS{value: map[string]int16{"hello": 100}}
	call := &fakeCall{}
	p := &platform{r: &Runner{tts: synth, audio: newAudioCache(audioCacheEntries)}, call: call, log: zerolog.Nop()}
	pr := &vxml.Prompt{Bargein: true, Parts: []vxml.PromptPart{
		{Kind: vxml.PartText, Text: "hello"}, {Kind: vxml.PartBreak, Duration: 20 * time.Millisecond},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Play(context.Background(), pr); err != nil {
			b.Fatal(err)
		}
		call.plays = call.plays[:0]
		synth.texts = synth.texts[:0]
	}
}
