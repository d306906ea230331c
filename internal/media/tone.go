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
	wave   []int16 // one period of the summed frequencies
	phase  int     // next sample of wave; it runs on through off periods
	pos    int     // sample index within the cadence
	period int     // cadence length in samples; 0 = continuous
	bounds []int   // sample index where each cadence period ends
}

// NewToneSource returns a source playing t. It panics when t has no frequency, a frequency is
// not a whole number of Hz or a period of the cadence is not positive: tones are program
// constants.
func NewToneSource(t Tone) *ToneSource {
	if len(t.Freqs) == 0 {
		panic("media: tone without frequency")
	}
	// The sum of whole-Hz sines repeats every 8000/gcd(8000, f1, f2...) samples: one period
	// is computed here and copied into frames.
	g := 8000
	for _, f := range t.Freqs {
		if f <= 0 || f != math.Trunc(f) {
			panic(fmt.Sprintf("media: tone frequency %v is not a whole number of Hz", f))
		}
		g = gcd(g, int(f))
	}
	s := &ToneSource{wave: make([]int16, 8000/g)}
	for k := range s.wave {
		var v float64
		for _, f := range t.Freqs {
			v += math.Sin(2 * math.Pi * f * float64(k) / 8000)
		}
		s.wave[k] = int16(toneLevel * v)
	}
	for _, d := range t.Cadence {
		if d <= 0 {
			panic(fmt.Sprintf("media: tone cadence period %v", d))
		}
		s.period += int(d * 8000 / time.Second)
		s.bounds = append(s.bounds, s.period)
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ReadFrame implements Source: it always fills the frame.
func (s *ToneSource) ReadFrame(frame []int16) (int, error) {
	for i := 0; i < len(frame); {
		// The run of samples up to the end of the frame or of the cadence period.
		n, on := len(frame)-i, true
		if s.period > 0 {
			seg := 0
			for s.pos >= s.bounds[seg] {
				seg++
			}
			n, on = min(n, s.bounds[seg]-s.pos), seg%2 == 0
			if s.pos += n; s.pos == s.period {
				s.pos = 0
			}
		}
		for j := i; j < i+n; j++ {
			if on {
				frame[j] = s.wave[s.phase]
			} else {
				frame[j] = 0
			}
			if s.phase++; s.phase == len(s.wave) {
				s.phase = 0
			}
		}
		i += n
	}
	return len(frame), nil
}

// LookupRingback returns the ringback tone named name (case-insensitive).
func LookupRingback(name string) (Tone, bool) {
	t, ok := Ringbacks[strings.ToLower(name)]
	return t, ok
}
