// Package g711 implements ITU-T G.711 mu-law (PCMU) and A-law (PCMA)
// companding with lookup tables.
//
// Every function works on caller-provided buffers and never allocates, so it
// can run on the per-packet hot path. Encoding follows the classic reference
// implementation: mu-law uses the top 14 bits of a linear 16-bit sample,
// A-law the top 13 bits; decoding returns 16-bit linear samples.
package g711

// UlawSilence is the mu-law code for a zero sample (positive zero).
const UlawSilence byte = 0xFF

// AlawSilence is the A-law code for the smallest positive sample.
const AlawSilence byte = 0xD5

const (
	ulawBias = 0x84 // bias added before segment search (132)
	ulawClip = 8159 // largest magnitude representable on 14 bits after bias
)

var (
	ulawDecode [256]int16
	alawDecode [256]int16
	// ulawEncode is indexed by the 14-bit two's complement sample (s >> 2).
	ulawEncode [1 << 14]byte
	// alawEncode is indexed by the 13-bit two's complement sample (s >> 3).
	alawEncode [1 << 13]byte
)

var segUEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
var segAEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}

func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

// ulawFromLinear14 encodes a 14-bit signed sample.
func ulawFromLinear14(v int) byte {
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > ulawClip {
		v = ulawClip
	}
	v += ulawBias >> 2
	seg := segment(v, &segUEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	u := seg<<4 | (v>>(seg+1))&0x0F
	return byte(u ^ mask)
}

// alawFromLinear13 encodes a 13-bit signed sample.
func alawFromLinear13(v int) byte {
	mask := 0xD5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := segment(v, &segAEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0x0F
	} else {
		a |= (v >> seg) & 0x0F
	}
	return byte(a ^ mask)
}

func ulawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + ulawBias
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	seg := int(a&0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

func init() {
	for i := range 256 {
		ulawDecode[i] = ulawToLinear(byte(i))
		alawDecode[i] = alawToLinear(byte(i))
	}
	for i := range ulawEncode {
		v := int(int16(uint16(i)<<2)) >> 2 // sign-extend 14 bits
		ulawEncode[i] = ulawFromLinear14(v)
	}
	for i := range alawEncode {
		v := int(int16(uint16(i)<<3)) >> 3 // sign-extend 13 bits
		alawEncode[i] = alawFromLinear13(v)
	}
}

// LinearToUlaw encodes one 16-bit linear sample to mu-law.
func LinearToUlaw(s int16) byte { return ulawEncode[uint16(s)>>2] }

// UlawToLinear decodes one mu-law code to a 16-bit linear sample.
func UlawToLinear(u byte) int16 { return ulawDecode[u] }

// LinearToAlaw encodes one 16-bit linear sample to A-law.
func LinearToAlaw(s int16) byte { return alawEncode[uint16(s)>>3] }

// AlawToLinear decodes one A-law code to a 16-bit linear sample.
func AlawToLinear(a byte) int16 { return alawDecode[a] }

// EncodeUlaw encodes min(len(dst), len(src)) samples from src into dst and
// returns the number of bytes written.
func EncodeUlaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = ulawEncode[uint16(s)>>2]
	}
	return n
}

// DecodeUlaw decodes min(len(dst), len(src)) mu-law codes from src into dst
// and returns the number of samples written.
func DecodeUlaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, c := range src {
		dst[i] = ulawDecode[c]
	}
	return n
}

// EncodeAlaw encodes min(len(dst), len(src)) samples from src into dst and
// returns the number of bytes written.
func EncodeAlaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = alawEncode[uint16(s)>>3]
	}
	return n
}

// DecodeAlaw decodes min(len(dst), len(src)) A-law codes from src into dst
// and returns the number of samples written.
func DecodeAlaw(dst []int16, src []byte) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, c := range src {
		dst[i] = alawDecode[c]
	}
	return n
}
