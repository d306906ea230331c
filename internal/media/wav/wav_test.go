package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

const fixtureSpeech = "../testdata/one_two_three_8k_ulaw.wav"

func TestReadSoxFixture(t *testing.T) {
	a, err := ReadFile(fixtureSpeech)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Format: FormatMuLaw, Channels: 1, SampleRate: 8000, BitsPerSample: 8, DataOffset: 58, DataSize: 16000}
	if a.Info != want {
		t.Fatalf("info = %+v, want %+v", a.Info, want)
	}
	if len(a.Samples) != 16000 || a.Duration() != 2 {
		t.Fatalf("samples = %d duration %v", len(a.Samples), a.Duration())
	}
	if got := a.To8kMono(); &got[0] != &a.Samples[0] {
		t.Fatal("To8kMono copied 8 kHz audio")
	}
}

func TestWriterRoundTrip(t *testing.T) {
	src := make([]int16, 1001) // odd length exercises the pad byte
	for i := range src {
		src[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	tests := []struct {
		enc        Encoding
		format     Format
		dataOffset int
		tol        float64
	}{
		{EncodingPCM16, FormatPCM, 44, 0},
		{EncodingMuLaw, FormatMuLaw, 58, 300},
		{EncodingALaw, FormatALaw, 58, 300},
	}
	for _, tc := range tests {
		t.Run(tc.format.String(), func(t *testing.T) {
			var f Buffer
			w, err := NewWriter(&f, tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSamples(src[:500]); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSamples(src[500:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteSamples(src); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
			if len(f.Bytes())%2 != 0 {
				t.Fatalf("file length %d is odd", len(f.Bytes()))
			}
			if riff := binary.LittleEndian.Uint32(f.Bytes()[4:]); int(riff) != len(f.Bytes())-8 {
				t.Fatalf("RIFF size %d, file %d", riff, len(f.Bytes()))
			}
			a, err := Parse(f.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if a.Info.Format != tc.format || a.Info.DataOffset != tc.dataOffset || len(a.Samples) != len(src) {
				t.Fatalf("info %+v, %d samples", a.Info, len(a.Samples))
			}
			for i := range src {
				if math.Abs(float64(a.Samples[i])-float64(src[i])) > tc.tol {
					t.Fatalf("sample %d: %d vs %d", i, a.Samples[i], src[i])
				}
			}
		})
	}
}

func TestWriterToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, EncodingMuLaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(make([]int16, 160)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Samples) != 160 {
		t.Fatalf("got %d samples", len(a.Samples))
	}
}

// buildWAV assembles a WAVE file from chunks.
func buildWAV(chunks ...[]byte) []byte {
	var body []byte
	body = append(body, "WAVE"...)
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

func chunk(id string, data []byte) []byte {
	c := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

func fmtChunk(tag Format, ch, rate, bits int) []byte {
	align := ch * bits / 8
	b := binary.LittleEndian.AppendUint16(nil, uint16(tag))
	b = binary.LittleEndian.AppendUint16(b, uint16(ch))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*align))
	b = binary.LittleEndian.AppendUint16(b, uint16(align))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	return chunk("fmt ", b)
}

func pcm16(s ...int16) []byte {
	var b []byte
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestParseVariants(t *testing.T) {
	ext := binary.LittleEndian.AppendUint16(nil, uint16(FormatExtensible))
	ext = binary.LittleEndian.AppendUint16(ext, 1)
	ext = binary.LittleEndian.AppendUint32(ext, 8000)
	ext = binary.LittleEndian.AppendUint32(ext, 16000)
	ext = binary.LittleEndian.AppendUint16(ext, 2)
	ext = binary.LittleEndian.AppendUint16(ext, 16)
	ext = binary.LittleEndian.AppendUint16(ext, 22) // cbSize
	ext = binary.LittleEndian.AppendUint16(ext, 16) // valid bits
	ext = binary.LittleEndian.AppendUint32(ext, 4)  // channel mask
	ext = binary.LittleEndian.AppendUint16(ext, 1)  // sub-format PCM
	ext = append(ext, make([]byte, 14)...)

	tests := []struct {
		name    string
		file    []byte
		want    []int16
		wantErr error
	}{
		{"pcm16 with LIST before fmt (odd size, padded)",
			buildWAV(chunk("LIST", []byte("abc")), fmtChunk(FormatPCM, 1, 8000, 16), chunk("data", pcm16(1, -2, 3))),
			[]int16{1, -2, 3}, nil},
		{"stereo mixed to mono",
			buildWAV(fmtChunk(FormatPCM, 2, 8000, 16), chunk("data", pcm16(100, 300, -100, -300))),
			[]int16{200, -200}, nil},
		{"pcm8 unsigned",
			buildWAV(fmtChunk(FormatPCM, 1, 8000, 8), chunk("data", []byte{128, 255, 0, 0})),
			[]int16{0, 127 << 8, -128 << 8, -128 << 8}, nil},
		{"alaw",
			buildWAV(fmtChunk(FormatALaw, 1, 8000, 8), chunk("data", []byte{0xD5, 0x55})),
			[]int16{8, -8}, nil},
		{"extensible pcm",
			buildWAV(chunk("fmt ", ext), chunk("data", pcm16(7, 8))),
			[]int16{7, 8}, nil},
		{"data size larger than file is clamped",
			append(buildWAV(fmtChunk(FormatPCM, 1, 8000, 16)), append([]byte("data\xff\xff\xff\xff"), pcm16(5, 6)...)...),
			[]int16{5, 6}, nil},
		{"not riff", []byte("RIFX0000WAVE"), nil, ErrNotWAV},
		{"data before fmt", buildWAV(chunk("data", pcm16(1)), fmtChunk(FormatPCM, 1, 8000, 16)), nil, ErrNoFormat},
		{"no data", buildWAV(fmtChunk(FormatPCM, 1, 8000, 16)), nil, ErrNoData},
		{"gsm unsupported", buildWAV(fmtChunk(0x31, 1, 8000, 8), chunk("data", []byte{1})), nil, ErrUnsupported},
		{"zero channels", buildWAV(fmtChunk(FormatPCM, 0, 8000, 16), chunk("data", nil)), nil, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.file)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Samples) != len(tc.want) {
				t.Fatalf("samples %v, want %v", a.Samples, tc.want)
			}
			for i := range tc.want {
				if a.Samples[i] != tc.want[i] {
					t.Fatalf("samples %v, want %v", a.Samples, tc.want)
				}
			}
		})
	}
}

func TestDecodeLimit(t *testing.T) {
	f := buildWAV(fmtChunk(FormatPCM, 1, 8000, 16), chunk("data", make([]byte, 4000)))
	if _, err := Decode(bytes.NewReader(f), 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := Decode(bytes.NewReader(f), 4000); err != nil {
		t.Fatal(err)
	}
}

// tonePower returns the power of frequency f (Hz) in s sampled at rate.
func tonePower(s []int16, f float64, rate int) float64 {
	var re, im float64
	for i, v := range s {
		ph := 2 * math.Pi * f * float64(i) / float64(rate)
		re += float64(v) * math.Cos(ph)
		im += float64(v) * math.Sin(ph)
	}
	return (re*re + im*im) / float64(len(s)*len(s))
}

func TestResample(t *testing.T) {
	const n = 16000 * 2
	src := make([]int16, n)
	alias := make([]int16, n)
	for i := range src {
		src[i] = int16(10000 * math.Sin(2*math.Pi*1000*float64(i)/16000))
		// 7 kHz at 16 kHz folds to 1 kHz at 8 kHz without filtering.
		alias[i] = int16(10000 * math.Sin(2*math.Pi*7000*float64(i)/16000))
	}
	out := Resample(src, 16000, 8000)
	if len(out) != n/2 {
		t.Fatalf("len %d", len(out))
	}
	passband := tonePower(out[800:], 1000, 8000)
	if ref := tonePower(src, 1000, 16000); passband < ref*0.7 {
		t.Fatalf("1 kHz attenuated: %v vs %v", passband, ref)
	}
	aliased := tonePower(Resample(alias, 16000, 8000)[800:], 1000, 8000)
	if aliased > passband/100 {
		t.Fatalf("7 kHz aliased into passband: %v vs %v", aliased, passband)
	}
	up := Resample(out, 8000, 44100)
	if len(up) != len(out)*44100/8000 {
		t.Fatalf("upsampled len %d", len(up))
	}
	if p := tonePower(up[5000:], 1000, 44100); p < passband*0.7 {
		t.Fatalf("upsampled 1 kHz power %v vs %v", p, passband)
	}
	if Resample(nil, 8000, 16000) != nil || Resample(src, 0, 8000) != nil {
		t.Fatal("degenerate input should return nil")
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(fixtureSpeech); err == nil {
		f.Add(b[:200])
	}
	f.Add(buildWAV(fmtChunk(FormatPCM, 2, 44100, 16), chunk("data", pcm16(1, 2, 3, 4))))
	f.Add(buildWAV(fmtChunk(FormatIEEEFloat, 1, 8000, 32), chunk("data", []byte{0, 0, 0xc0, 0x7f})))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parse(data, 1<<16)
		if err != nil {
			return
		}
		if a.Info.DataSize > len(data) || a.Info.Channels < 1 {
			t.Fatalf("inconsistent info %+v for %d bytes", a.Info, len(data))
		}
		_ = a.To8kMono()
	})
}

func TestBuffer(t *testing.T) {
	var b Buffer
	if _, err := b.Write([]byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Seek(-2, io.SeekEnd); err != nil || n != 4 {
		t.Fatalf("seek end: %d %v", n, err)
	}
	b.Write([]byte("XYZ")) // overwrites the tail and grows
	if n, err := b.Seek(1, io.SeekStart); err != nil || n != 1 {
		t.Fatalf("seek start: %d %v", n, err)
	}
	if n, err := b.Seek(1, io.SeekCurrent); err != nil || n != 2 {
		t.Fatalf("seek current: %d %v", n, err)
	}
	b.Write([]byte("-"))
	if got := string(b.Bytes()); got != "ab-dXYZ" {
		t.Fatalf("content %q", got)
	}
	if _, err := b.Seek(-10, io.SeekCurrent); err == nil {
		t.Fatal("negative offset accepted")
	}
	if _, err := b.Seek(0, 7); err == nil {
		t.Fatal("bad whence accepted")
	}
}
