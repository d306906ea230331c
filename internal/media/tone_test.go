package media

import (
	"math"
	"testing"
)

// power returns the power of frequency f in frame (Goertzel), normalised by the frame length.
func power(frame []int16, f float64) float64 {
	k := 2 * math.Cos(2*math.Pi*f/8000)
	var s1, s2 float64
	for _, v := range frame {
		s0 := float64(v) + k*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / float64(len(frame)*len(frame))
}

// TestRingbackCadenceAndFrequencies: each ringback is on and off for its cadence (frame by
// frame over two full cycles), and its on frames carry its frequencies and not others.
func TestRingbackCadenceAndFrequencies(t *testing.T) {
	for name, tone := range Ringbacks {
		t.Run(name, func(t *testing.T) {
			src := NewToneSource(tone)
			var cycleFrames int
			for _, d := range tone.Cadence {
				cycleFrames += int(d.Milliseconds() / 20)
			}
			frame := make([]int16, FrameSamples)
			for i := 0; i < 2*cycleFrames; i++ {
				if n, err := src.ReadFrame(frame); n != FrameSamples || err != nil {
					t.Fatalf("frame %d: n %d err %v", i, n, err)
				}
				// Which cadence period is frame i in?
				ms, on := (i%cycleFrames)*20, true
				for j, d := range tone.Cadence {
					if ms < int(d.Milliseconds()) {
						on = j%2 == 0
						break
					}
					ms -= int(d.Milliseconds())
				}
				var energy float64
				for _, v := range frame {
					energy += float64(v) * float64(v)
				}
				if loud := energy > 0; loud != on {
					t.Fatalf("frame %d (%d ms into the cycle): loud %v, want %v", i, (i%cycleFrames)*20, loud, on)
				}
				if on {
					for _, f := range tone.Freqs {
						if power(frame, f) < 100*power(frame, 1000) {
							t.Fatalf("frame %d: %g Hz not dominant over 1 kHz", i, f)
						}
					}
				}
			}
		})
	}
	if _, ok := LookupRingback("US"); !ok {
		t.Error("LookupRingback is not case-insensitive")
	}
}

// TestToneSourceMatchesFormula: read in frames of any size, a tone is sample for sample the sum
// of its sines (phase running on through off periods) where its cadence is on, and silence
// where it is off.
func TestToneSourceMatchesFormula(t *testing.T) {
	for name, tone := range Ringbacks {
		src := NewToneSource(tone)
		var bounds []int
		period := 0
		for _, d := range tone.Cadence {
			period += int(d.Milliseconds() * 8)
			bounds = append(bounds, period)
		}
		frame := make([]int16, 37) // not a divisor of any cadence period
		for k := 0; k < 10*8000; {
			src.ReadFrame(frame)
			for _, got := range frame {
				on, pos := true, k%period
				for j, b := range bounds {
					if pos < b {
						on = j%2 == 0
						break
					}
				}
				want := 0.0
				if on {
					for _, f := range tone.Freqs {
						want += math.Sin(2 * math.Pi * f * float64(k) / 8000)
					}
					want *= toneLevel
				}
				if math.Abs(float64(got)-want) > 1 {
					t.Fatalf("%s: sample %d = %d, want %.1f", name, k, got, want)
				}
				k++
			}
		}
	}
}

func BenchmarkToneSource(b *testing.B) {
	src := NewToneSource(Ringbacks["us"])
	frame := make([]int16, FrameSamples)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src.ReadFrame(frame)
	}
}
