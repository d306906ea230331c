package g711

import (
	"math"
	"testing"
)

func TestKnownValues(t *testing.T) {
	tests := []struct {
		name string
		got  int16
		want int16
	}{
		{"ulaw 0xFF is zero", UlawToLinear(0xFF), 0},
		{"ulaw 0x7F is zero", UlawToLinear(0x7F), 0},
		{"ulaw 0x80 max positive", UlawToLinear(0x80), 32124},
		{"ulaw 0x00 max negative", UlawToLinear(0x00), -32124},
		{"alaw 0xD5 smallest positive", AlawToLinear(0xD5), 8},
		{"alaw 0x55 smallest negative", AlawToLinear(0x55), -8},
		{"alaw 0xAA max positive", AlawToLinear(0xAA), 32256},
		{"alaw 0x2A max negative", AlawToLinear(0x2A), -32256},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if LinearToUlaw(0) != UlawSilence {
		t.Errorf("LinearToUlaw(0) = %#x, want %#x", LinearToUlaw(0), UlawSilence)
	}
	if LinearToAlaw(0) != AlawSilence {
		t.Errorf("LinearToAlaw(0) = %#x, want %#x", LinearToAlaw(0), AlawSilence)
	}
	if LinearToUlaw(math.MaxInt16) != 0x80 || LinearToUlaw(math.MinInt16) != 0x00 {
		t.Errorf("ulaw clipping: %#x %#x", LinearToUlaw(math.MaxInt16), LinearToUlaw(math.MinInt16))
	}
}

// TestRoundTripCodes checks that decoding then encoding every code is the
// identity (mu-law negative zero 0x7F maps to positive zero 0xFF).
func TestRoundTripCodes(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		u := LinearToUlaw(UlawToLinear(c))
		want := c
		if c == 0x7F {
			want = 0xFF
		}
		if u != want {
			t.Errorf("ulaw %#x -> %d -> %#x", c, UlawToLinear(c), u)
		}
		if a := LinearToAlaw(AlawToLinear(c)); a != c {
			t.Errorf("alaw %#x -> %d -> %#x", c, AlawToLinear(c), a)
		}
	}
}

// TestQuantisationError checks that every 16-bit sample survives a round trip
// within the step size of its segment and that the mapping is monotonic.
func TestQuantisationError(t *testing.T) {
	prevU, prevA := int16(math.MinInt16), int16(math.MinInt16)
	for s := math.MinInt16; s <= math.MaxInt16; s++ {
		v := int16(s)
		du := UlawToLinear(LinearToUlaw(v))
		da := AlawToLinear(LinearToAlaw(v))
		mag := math.Abs(float64(s))
		tol := math.Max(mag/16, 16) // half a step is at most ~1/32 of magnitude; allow clipping region
		if mag > 32124 {
			tol = 1100
		}
		if math.Abs(float64(du)-float64(s)) > tol {
			t.Fatalf("ulaw %d -> %d: error too large", s, du)
		}
		if math.Abs(float64(da)-float64(s)) > tol {
			t.Fatalf("alaw %d -> %d: error too large", s, da)
		}
		if du < prevU || da < prevA {
			t.Fatalf("not monotonic at %d", s)
		}
		prevU, prevA = du, da
	}
}

func TestBufferFunctions(t *testing.T) {
	src := []int16{0, 1000, -1000, 32767, -32768}
	enc := make([]byte, 3)
	if n := EncodeUlaw(enc, src); n != 3 {
		t.Fatalf("EncodeUlaw wrote %d, want 3 (short dst)", n)
	}
	dec := make([]int16, 8)
	if n := DecodeUlaw(dec, enc); n != 3 {
		t.Fatalf("DecodeUlaw wrote %d, want 3", n)
	}
	for i := range 3 {
		if dec[i] != UlawToLinear(LinearToUlaw(src[i])) {
			t.Errorf("ulaw sample %d mismatch", i)
		}
	}
	enc = make([]byte, 5)
	EncodeAlaw(enc, src)
	DecodeAlaw(dec, enc)
	for i := range 5 {
		if dec[i] != AlawToLinear(LinearToAlaw(src[i])) {
			t.Errorf("alaw sample %d mismatch", i)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	src := make([]int16, 160)
	dst := make([]byte, 160)
	out := make([]int16, 160)
	allocs := testing.AllocsPerRun(100, func() {
		EncodeUlaw(dst, src)
		DecodeUlaw(out, dst)
		EncodeAlaw(dst, src)
		DecodeAlaw(out, dst)
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v, want 0", allocs)
	}
}

func BenchmarkEncodeUlaw160(b *testing.B) {
	src := make([]int16, 160)
	for i := range src {
		src[i] = int16(i * 200)
	}
	dst := make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		EncodeUlaw(dst, src)
	}
}

func BenchmarkDecodeAlaw160(b *testing.B) {
	src := make([]byte, 160)
	dst := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		DecodeAlaw(dst, src)
	}
}
