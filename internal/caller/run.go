package caller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/wav"
)

// DTMF methods of Options.DTMFMethod.
const (
	DTMFRFC4733 = "rfc4733"
	DTMFInfo    = "info"
)

// Defaults of Options.
const (
	// DefaultSetupTimeout bounds the wait for the final answer to the INVITE.
	DefaultSetupTimeout = 32 * time.Second
	// DefaultMaxDuration bounds a call that neither side hangs up.
	DefaultMaxDuration = 10 * time.Minute
	// frameDuration is the RTP packetisation the media engine uses.
	frameDuration = 20 * time.Millisecond
)

// TimedDigit is a DTMF digit sent At after the answer.
type TimedDigit struct {
	Digit rune
	At    time.Duration
}

// ParseDTMF reads a schedule like "1@2s,2@2.5s,#@3s".
func ParseDTMF(spec string) ([]TimedDigit, error) {
	var out []TimedDigit
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(spec, ",") {
		d, at, ok := strings.Cut(strings.TrimSpace(item), "@")
		if !ok || len([]rune(d)) != 1 {
			return nil, fmt.Errorf("dtmf %q: want DIGIT@DELAY, e.g. 1@2s", item)
		}
		r := []rune(strings.ToUpper(d))[0]
		if !strings.ContainsRune("0123456789*#ABCD", r) {
			return nil, fmt.Errorf("dtmf %q: %q is not a DTMF digit", item, d)
		}
		dur, err := time.ParseDuration(at)
		if err != nil || dur < 0 {
			return nil, fmt.Errorf("dtmf %q: bad delay %q", item, at)
		}
		out = append(out, TimedDigit{Digit: r, At: dur})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out, nil
}

// Options describe one call of `gvp call`.
type Options struct {
	// Target is the SIP URI to call.
	Target string
	DialOptions
	// DTMF are the digits to send after the answer.
	DTMF []TimedDigit
	// DTMFMethod is DTMFRFC4733 (default) or DTMFInfo.
	DTMFMethod string
	// Play is a WAV file played once after the answer.
	Play string
	// Record is a WAV file (mu-law) receiving what the far end sends.
	Record string
	// HangupAfter hangs up this long after the answer; 0 waits for the far end.
	HangupAfter time.Duration
	// SetupTimeout bounds the INVITE (default DefaultSetupTimeout).
	SetupTimeout time.Duration
	// MaxDuration bounds the call (default DefaultMaxDuration); then we hang up.
	MaxDuration time.Duration
}

// Result summarises one call.
type Result struct {
	Target string `json:"target"`
	// Code is the final status of the INVITE (0 when none arrived).
	Code   int    `json:"code"`
	Reason string `json:"reason,omitempty"`
	// SetupMS is from INVITE to 200, in milliseconds.
	SetupMS   float64 `json:"setup_ms"`
	SessionID string  `json:"gvp_session_id,omitempty"`
	CallID    string  `json:"call_id,omitempty"`
	// PacketsReceived and AudioSeconds measure the audio heard (20 ms per packet).
	PacketsReceived uint64  `json:"rtp_packets_received"`
	BytesReceived   uint64  `json:"rtp_bytes_received"`
	AudioSeconds    float64 `json:"audio_seconds"`
	PacketsSent     uint64  `json:"rtp_packets_sent"`
	PacketsLost     int64   `json:"rtp_packets_lost"`
	DigitsSent      string  `json:"digits_sent,omitempty"`
	DigitsReceived  string  `json:"digits_received,omitempty"`
	// HungUpBy is "remote" (the far end sent BYE) or "local".
	HungUpBy        string  `json:"hung_up_by,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error,omitempty"`
}

// String formats the result for people.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "target:          %s\n", r.Target)
	fmt.Fprintf(&b, "final code:      %d %s\n", r.Code, r.Reason)
	if r.Code/100 == 2 {
		fmt.Fprintf(&b, "setup time:      %.1f ms\n", r.SetupMS)
		fmt.Fprintf(&b, "gvp session id:  %s\n", r.SessionID)
		fmt.Fprintf(&b, "audio received:  %d packets, %.2f s (%d bytes)\n", r.PacketsReceived, r.AudioSeconds, r.BytesReceived)
		fmt.Fprintf(&b, "audio sent:      %d packets\n", r.PacketsSent)
		fmt.Fprintf(&b, "digits sent:     %q\n", r.DigitsSent)
		fmt.Fprintf(&b, "digits received: %q\n", r.DigitsReceived)
		fmt.Fprintf(&b, "hung up by:      %s after %.2f s\n", r.HungUpBy, r.DurationSeconds)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "error:           %s\n", r.Error)
	}
	return b.String()
}

// Run places one call as described by o and returns its summary; errors are in
// Result.Error (and Code for rejected calls).
func (a *Agent) Run(ctx context.Context, o Options) Result {
	return a.run(ctx, o, nil)
}

func (a *Agent) run(ctx context.Context, o Options, prompt []int16) Result {
	r := Result{Target: o.Target}
	if o.SetupTimeout <= 0 {
		o.SetupTimeout = DefaultSetupTimeout
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	if o.Play != "" && prompt == nil {
		au, err := wav.ReadFile(o.Play)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		prompt = au.To8kMono()
	}
	var (
		dmu   sync.Mutex
		heard []rune
	)
	user := o.DialOptions.OnDigit
	o.DialOptions.OnDigit = func(d media.Digit) {
		dmu.Lock()
		heard = append(heard, d.Digit)
		dmu.Unlock()
		if user != nil {
			user(d)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, o.SetupTimeout)
	call, err := a.Dial(sctx, o.Target, o.DialOptions)
	cancel()
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			r.Code, r.Reason = se.Code, se.Reason
		}
		r.Error = err.Error()
		return r
	}
	answered := time.Now()
	r.Code, r.Reason = call.Response.StatusCode, call.Response.Reason
	r.SetupMS = float64(call.SetupTime.Microseconds()) / 1000
	r.SessionID, r.CallID = call.SessionID, call.callID

	var rec *media.Recorder
	var recFile *os.File
	if o.Record != "" {
		f, err := os.Create(o.Record)
		if err == nil {
			var w *wav.Writer
			if w, err = wav.NewWriter(f, wav.EncodingMuLaw); err == nil {
				rec, recFile = media.NewRecorder(w), f
				call.sess.SetSink(rec)
			} else {
				f.Close()
			}
		}
		if err != nil {
			r.Error = fmt.Sprintf("record: %v", err)
		}
	}
	if prompt != nil {
		call.sess.Play(media.NewPCMSource(prompt))
	}
	var sent []rune
	var stop <-chan time.Time
	if o.HangupAfter > 0 {
		t := time.NewTimer(o.HangupAfter)
		defer t.Stop()
		stop = t.C
	}
	maxT := time.NewTimer(o.MaxDuration)
	defer maxT.Stop()
	digits := o.DTMF
	local := false
loop:
	for {
		var next <-chan time.Time
		var dt *time.Timer
		if len(digits) > 0 {
			dt = time.NewTimer(time.Until(answered.Add(digits[0].At)))
			next = dt.C
		}
		stopDT := func() {
			if dt != nil {
				dt.Stop()
			}
		}
		select {
		case <-next:
			d := digits[0]
			digits = digits[1:]
			var err error
			if o.DTMFMethod == DTMFInfo {
				var code int
				code, err = call.SendInfo(ctx, d.Digit, 0)
				if err == nil && code/100 != 2 {
					err = fmt.Errorf("INFO answered %d", code)
				}
			} else {
				err = call.sess.SendDigits(string(d.Digit), 0)
			}
			if err != nil {
				r.Error = fmt.Sprintf("send digit %c: %v", d.Digit, err)
			} else {
				sent = append(sent, d.Digit)
			}
		case <-call.Done():
			stopDT()
			break loop
		case <-stop:
			stopDT()
			local = true
			break loop
		case <-maxT.C:
			stopDT()
			local = true
			break loop
		case <-ctx.Done():
			stopDT()
			local = true
			break loop
		}
	}
	st := call.sess.Stats()
	if local {
		r.HungUpBy = "local"
		if err := call.Hangup(context.Background()); err != nil && r.Error == "" {
			r.Error = err.Error()
		}
	} else {
		r.HungUpBy = "remote"
		st = call.sess.Stats()
	}
	r.DurationSeconds = time.Since(answered).Seconds()
	r.PacketsReceived, r.BytesReceived = st.PacketsReceived, st.BytesReceived
	r.AudioSeconds = float64(st.PacketsReceived) * frameDuration.Seconds()
	r.PacketsSent, r.PacketsLost = st.PacketsSent, st.PacketsLost
	r.DigitsSent = string(sent)
	dmu.Lock()
	r.DigitsReceived = string(heard)
	dmu.Unlock()
	if rec != nil {
		call.sess.SetSink(nil)
		if err := rec.Close(); err != nil && r.Error == "" {
			r.Error = fmt.Sprintf("record: %v", err)
		}
		recFile.Close()
	}
	return r
}

// LoadOptions run many calls.
type LoadOptions struct {
	Options
	// Calls is the number of calls to place.
	Calls int
	// Rate is new calls per second (0: as fast as Concurrency allows).
	Rate float64
	// Concurrency bounds the calls up at once (default Calls).
	Concurrency int
	// MinAudio counts a successful call as "with audio" when it received at least this many
	// RTP packets (default 1).
	MinAudio uint64
}

// LoadResult summarises a load run.
type LoadResult struct {
	Calls     int `json:"calls"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// WithAudio counts answered calls that received at least MinAudio packets.
	WithAudio int `json:"with_audio"`
	// FailuresByCode counts failures by final status ("0" for no answer or a local error).
	FailuresByCode map[string]int `json:"failures_by_code,omitempty"`
	// Setup percentiles in milliseconds (answered calls only).
	SetupP50MS float64 `json:"setup_p50_ms"`
	SetupP95MS float64 `json:"setup_p95_ms"`
	SetupP99MS float64 `json:"setup_p99_ms"`
	SetupMaxMS float64 `json:"setup_max_ms"`
	// ElapsedSeconds is the whole run; CallsPerSecond is Calls started per second of
	// the start phase.
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	CallsPerSecond  float64 `json:"calls_per_second"`
	PeakConcurrent  int     `json:"peak_concurrent"`
	PacketsReceived uint64  `json:"rtp_packets_received"`
	// FirstErrors keeps a few error messages.
	FirstErrors []string `json:"first_errors,omitempty"`
}

// String formats the summary for people.
func (l *LoadResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "calls: %d, succeeded: %d, failed: %d, with audio: %d\n", l.Calls, l.Succeeded, l.Failed, l.WithAudio)
	fmt.Fprintf(&b, "setup ms: p50 %.1f, p95 %.1f, p99 %.1f, max %.1f\n", l.SetupP50MS, l.SetupP95MS, l.SetupP99MS, l.SetupMaxMS)
	fmt.Fprintf(&b, "rate: %.1f calls/s over %.1f s, peak concurrent %d, rtp packets received %d\n",
		l.CallsPerSecond, l.ElapsedSeconds, l.PeakConcurrent, l.PacketsReceived)
	if len(l.FailuresByCode) > 0 {
		codes := make([]string, 0, len(l.FailuresByCode))
		for c := range l.FailuresByCode {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(&b, "failures %s: %d\n", c, l.FailuresByCode[c])
		}
	}
	for _, e := range l.FirstErrors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	return b.String()
}

// Load places o.Calls calls at o.Rate per second with at most o.Concurrency up at once.
func (a *Agent) Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	res := LoadResult{Calls: o.Calls, FailuresByCode: map[string]int{}}
	if o.Calls < 1 {
		return res, errors.New("load: calls must be at least 1")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = o.Calls
	}
	if o.MinAudio == 0 {
		o.MinAudio = 1
	}
	var prompt []int16
	if o.Play != "" {
		au, err := wav.ReadFile(o.Play)
		if err != nil {
			return res, err
		}
		prompt = au.To8kMono()
	}
	sem := make(chan struct{}, o.Concurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		setups   []float64
		cur, pk  int
		interval time.Duration
	)
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	start := time.Now()
	var startedAll time.Duration
	for i := 0; i < o.Calls; i++ {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			res.Calls = i
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		mu.Lock()
		cur++
		pk = max(pk, cur)
		mu.Unlock()
		go func() {
			defer wg.Done()
			r := a.run(ctx, o.Options, prompt)
			<-sem
			mu.Lock()
			defer mu.Unlock()
			cur--
			res.PacketsReceived += r.PacketsReceived
			if r.Code/100 == 2 && (r.Error == "" || r.HungUpBy != "") {
				res.Succeeded++
				setups = append(setups, r.SetupMS)
				if r.PacketsReceived >= o.MinAudio {
					res.WithAudio++
				}
				return
			}
			res.Failed++
			res.FailuresByCode[strconv.Itoa(r.Code)]++
			if len(res.FirstErrors) < 5 && r.Error != "" {
				res.FirstErrors = append(res.FirstErrors, r.Error)
			}
		}()
		startedAll = time.Since(start)
	}
	wg.Wait()
	res.ElapsedSeconds = time.Since(start).Seconds()
	if startedAll > 0 && res.Calls > 1 {
		res.CallsPerSecond = float64(res.Calls-1) / startedAll.Seconds()
	}
	res.PeakConcurrent = pk
	sort.Float64s(setups)
	res.SetupP50MS, res.SetupP95MS, res.SetupP99MS = pct(setups, 50), pct(setups, 95), pct(setups, 99)
	if len(setups) > 0 {
		res.SetupMaxMS = setups[len(setups)-1]
	}
	if len(res.FailuresByCode) == 0 {
		res.FailuresByCode = nil
	}
	return res, nil
}

// pct returns the p-th percentile (nearest rank) of sorted values.
func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
