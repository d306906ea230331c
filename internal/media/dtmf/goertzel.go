package dtmf

import "math"

// Detector defaults. Levels are per tone, relative to a full-scale 16-bit
// sine wave.
const (
	// DefaultBlockSize is the Goertzel block length in samples at 8 kHz
	// (205 samples = 25.6 ms, the classic choice giving about 39 Hz bins).
	DefaultBlockSize = 205
	// DefaultHop is the number of new samples between two analysed blocks:
	// blocks overlap by half, so a tone is seen in two consecutive blocks
	// after about 38 ms.
	DefaultHop = 102
	// DefaultMinLevelDB is the minimum level of each tone (-36 dBFS).
	DefaultMinLevelDB = -36.0
	// DefaultMaxTwistDB is the largest allowed excess of the low-group tone
	// over the high-group tone ("normal" twist), in dB.
	DefaultMaxTwistDB = 8.0
	// DefaultMaxReverseTwistDB is the largest allowed excess of the
	// high-group tone over the low-group tone, in dB.
	DefaultMaxReverseTwistDB = 6.0
	// DefaultMinPeakRatioDB is how far each winning tone must stand above
	// the other tones of its group, in dB.
	DefaultMinPeakRatioDB = 8.0
	// DefaultMinToneFraction is the minimum share of the block's energy that
	// the two tones must carry; speech and noise spread their energy wider.
	DefaultMinToneFraction = 0.75
	// DefaultMinBlocks is the number of consecutive (overlapping) blocks
	// that must agree before a digit is reported: with DefaultHop, tones of
	// 40 ms or more are always accepted and tones of 25 ms or less always
	// rejected, as ITU-T Q.24 asks.
	DefaultMinBlocks = 2
	// DefaultGapBlocks is the number of consecutive blocks without the digit
	// needed before the same digit can be reported again.
	DefaultGapBlocks = 2
)

var rowFreqs = [4]float64{697, 770, 852, 941}
var colFreqs = [4]float64{1209, 1336, 1477, 1633}

// keypad maps row x column to the digit.
var keypad = [4][4]rune{
	{'1', '2', '3', 'A'},
	{'4', '5', '6', 'B'},
	{'7', '8', '9', 'C'},
	{'*', '0', '#', 'D'},
}

// Detector finds in-band DTMF tones in 8 kHz 16-bit linear audio with the
// Goertzel algorithm and reports each key press once. It checks the level of
// each tone, normal and reverse twist, the dominance of each tone in its
// group, and the share of the total energy carried by the two tones (which
// rejects speech). It does not allocate after construction.
//
// A Detector is not safe for concurrent use.
type Detector struct {
	onDigit func(Digit)

	coef        [8]float64 // row then column filter coefficients
	blockSize   int
	minPower    float64 // per tone, in Goertzel power units
	maxTwist    float64
	maxReverse  float64
	peakRatio   float64
	minFraction float64

	buf     [DefaultBlockSize]float64
	n       int
	cand    rune // candidate seen in the previous block(s)
	candN   int
	current rune // digit currently reported as pressed, 0 if none
	gapN    int
}

// NewDetector returns a detector with the default thresholds that calls
// onDigit for each detected key press.
func NewDetector(onDigit func(Digit)) *Detector {
	d := &Detector{onDigit: onDigit, blockSize: DefaultBlockSize}
	for i := range 4 {
		d.coef[i] = 2 * math.Cos(2*math.Pi*rowFreqs[i]/8000)
		d.coef[4+i] = 2 * math.Cos(2*math.Pi*colFreqs[i]/8000)
	}
	// A sine of amplitude A over N samples gives Goertzel power (A*N/2)^2.
	amp := 32767 * math.Pow(10, DefaultMinLevelDB/20)
	d.minPower = math.Pow(amp*float64(d.blockSize)/2, 2)
	d.maxTwist = math.Pow(10, DefaultMaxTwistDB/10)
	d.maxReverse = math.Pow(10, DefaultMaxReverseTwistDB/10)
	d.peakRatio = math.Pow(10, DefaultMinPeakRatioDB/10)
	d.minFraction = DefaultMinToneFraction
	return d
}

// Write feeds samples to the detector.
func (d *Detector) Write(samples []int16) {
	for _, s := range samples {
		d.buf[d.n] = float64(s)
		d.n++
		if d.n == d.blockSize {
			d.block()
			copy(d.buf[:], d.buf[DefaultHop:d.blockSize])
			d.n = d.blockSize - DefaultHop
		}
	}
}

// goertzel8 runs the eight DTMF Goertzel filters (rows then columns) and
// the energy sum in one pass; the independent recurrences interleave, which
// is several times faster than eight separate passes.
func goertzel8(x []float64, c *[8]float64, p *[8]float64) (energy float64) {
	var a1, a2, b1, b2, c1, c2, d1, d2, e1, e2, f1, f2, g1, g2, h1, h2 float64
	for _, v := range x {
		energy += v * v
		a1, a2 = v+c[0]*a1-a2, a1
		b1, b2 = v+c[1]*b1-b2, b1
		c1, c2 = v+c[2]*c1-c2, c1
		d1, d2 = v+c[3]*d1-d2, d1
		e1, e2 = v+c[4]*e1-e2, e1
		f1, f2 = v+c[5]*f1-f2, f1
		g1, g2 = v+c[6]*g1-g2, g1
		h1, h2 = v+c[7]*h1-h2, h1
	}
	pow := func(s1, s2, k float64) float64 { return s1*s1 + s2*s2 - k*s1*s2 }
	p[0], p[1], p[2], p[3] = pow(a1, a2, c[0]), pow(b1, b2, c[1]), pow(c1, c2, c[2]), pow(d1, d2, c[3])
	p[4], p[5], p[6], p[7] = pow(e1, e2, c[4]), pow(f1, f2, c[5]), pow(g1, g2, c[6]), pow(h1, h2, c[7])
	return energy
}

// classify returns the digit present in the block, or 0.
func (d *Detector) classify(x []float64) rune {
	var pw [8]float64
	energy := goertzel8(x, &d.coef, &pw)
	rowP, colP := [4]float64(pw[:4]), [4]float64(pw[4:])
	ri, ci := 0, 0
	for i := range 4 {
		if rowP[i] > rowP[ri] {
			ri = i
		}
		if colP[i] > colP[ci] {
			ci = i
		}
	}
	r, c := rowP[ri], colP[ci]
	if r < d.minPower || c < d.minPower {
		return 0
	}
	if r > c*d.maxTwist || c > r*d.maxReverse {
		return 0
	}
	for i := range 4 {
		if i != ri && rowP[i]*d.peakRatio > r {
			return 0
		}
		if i != ci && colP[i]*d.peakRatio > c {
			return 0
		}
	}
	// Power (A*N/2)^2 corresponds to energy A^2*N/2 = 2*power/N.
	toneEnergy := 2 * (r + c) / float64(len(x))
	if toneEnergy < d.minFraction*energy {
		return 0
	}
	return keypad[ri][ci]
}

func (d *Detector) block() {
	got := d.classify(d.buf[:d.blockSize])
	if got != 0 && got == d.cand {
		d.candN++
	} else {
		d.cand, d.candN = got, 1
	}
	if got == 0 || got != d.current {
		d.gapN++
		if d.gapN >= DefaultGapBlocks {
			d.current = 0
		}
	} else {
		d.gapN = 0
	}
	if got != 0 && got != d.current && d.candN >= DefaultMinBlocks {
		d.current, d.gapN = got, 0
		if d.onDigit != nil {
			ev, _ := EventForDigit(got)
			d.onDigit(Digit{Digit: got, Event: ev, Duration: uint16(DefaultMinBlocks * d.blockSize)})
		}
	}
}

// Reset clears the detector state (for example after a barge-in or a
// codec change).
func (d *Detector) Reset() {
	d.n, d.cand, d.candN, d.current, d.gapN = 0, 0, 0, 0, 0
}
