package media

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Tone is a call-progress tone: one or two frequencies played together in a cadence of on and
// off periods that repeats for as long as the tone plays.
type Tone struct {
	// Freqs are the frequencies in Hz (one or two).
	Freqs []float64
	// Cadence alternates on and off periods, starting with on; empty plays continuously.
	Cadence []time.Duration
}

// Ringback tones by name, for mcp.transfer.ringback (ITU-T E.180 and its national variants).
var Ringbacks = map[string]Tone{
	// us: North America, 440 + 480 Hz, 2 s on, 4 s off.
	"us": {Freqs: []float64{440, 480}, Cadence: []time.Duration{2 * time.Second, 4 * time.Second}},
	// eu: the ITU-T E.180 recommendation used across most of Europe, 425 Hz, 1 s on, 4 s off.
	"eu": {Freqs: []float64{425}, Cadence: []time.Duration{time.Second, 4 * time.Second}},
	// uk: 400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off.
	"uk": {Freqs: []float64{400, 450}, Cadence: []time.Duration{400 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 2 * time.Second}},
}

// RingbackNames lists the names of Ringbacks, for messages.
func RingbackNames() string { return strings.Join(slices.Sorted(maps.Keys(Ringbacks)), ", ") }

// toneLevel is the peak amplitude of each frequency: two at this level stay below -6 dBFS.
const toneLevel = 0.25 * math.MaxInt16

// ToneSource plays a Tone without end (until the playback is stopped).
type ToneSource struct {
	tone    Tone
	pos     int   // sample index within the cadence
	period  int   // cadence length in samples; 0 = continuous
	bounds  []int // sample index where each cadence period ends
	samples int64 // samples produced, for the phase of each frequency
}

// NewToneSource returns a source playing t. It panics when t has no frequency or a period of
// the cadence is not positive: tones are program constants.
func NewToneSource(t Tone) *ToneSource {
	if len(t.Freqs) == 0 {
		panic("media: tone without frequency")
	}
	s := &ToneSource{tone: t}
	for _, d := range t.Cadence {
		if d <= 0 {
			panic(fmt.Sprintf("media: tone cadence period %v", d))
		}
		s.period += int(d * 8000 / time.Second)
		s.bounds = append(s.bounds, s.period)
	}
	return s
}

// on reports whether the cadence is in an on period at sample pos.
func (s *ToneSource) on(pos int) bool {
	for i, b := range s.bounds {
		if pos < b {
			return i%2 == 0
		}
	}
	return true
}

// ReadFrame implements Source: it always fills the frame.
func (s *ToneSource) ReadFrame(frame []int16) (int, error) {
	for i := range frame {
		if s.period == 0 || s.on(s.pos) {
			var v float64
			t := float64(s.samples) / 8000
			for _, f := range s.tone.Freqs {
				v += math.Sin(2 * math.Pi * f * t)
			}
			frame[i] = int16(toneLevel * v)
		} else {
			frame[i] = 0
		}
		s.samples++
		if s.period > 0 {
			if s.pos++; s.pos == s.period {
				s.pos = 0
			}
		}
	}
	return len(frame), nil
}

// LookupRingback returns the ringback tone named name (case-insensitive).
func LookupRingback(name string) (Tone, bool) {
	t, ok := Ringbacks[strings.ToLower(name)]
	return t, ok
}
