// Package wav reads and writes RIFF/WAVE audio files for prompts and
// recordings.
//
// The reader walks every RIFF chunk (so files with LIST, fact, cue or other
// chunks before the audio, such as those written by sox with an 18-byte fmt
// chunk and a fact chunk, are accepted) and decodes PCM (8, 16, 24 and
// 32 bit), IEEE float (32 bit), mu-law and A-law, including
// WAVE_FORMAT_EXTENSIBLE headers. Multi-channel audio is mixed down to mono,
// and [Audio.To8kMono] resamples to the 8 kHz telephony rate (see
// [Resample] for the method and its quality).
//
// The writer produces 8 kHz mono recordings in PCM16, mu-law or A-law and
// patches the sizes in the header when it is closed.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/opengvp/gvp/internal/media/g711"
)

// Format is the WAVE format tag of the fmt chunk.
type Format uint16

// Format tags understood by the reader.
const (
	FormatPCM        Format = 0x0001 // linear PCM
	FormatIEEEFloat  Format = 0x0003 // 32-bit IEEE float
	FormatALaw       Format = 0x0006 // ITU-T G.711 A-law
	FormatMuLaw      Format = 0x0007 // ITU-T G.711 mu-law
	FormatExtensible Format = 0xFFFE // WAVE_FORMAT_EXTENSIBLE; the real tag is in the sub-format GUID
)

// String returns a short name for the format.
func (f Format) String() string {
	switch f {
	case FormatPCM:
		return "pcm"
	case FormatIEEEFloat:
		return "float"
	case FormatALaw:
		return "alaw"
	case FormatMuLaw:
		return "ulaw"
	case FormatExtensible:
		return "extensible"
	}
	return fmt.Sprintf("format(%#04x)", uint16(f))
}

// TelephonyRate is the sample rate of G.711 telephony audio, in Hz.
const TelephonyRate = 8000

// DefaultMaxDataBytes is the default limit on the size of the audio data that
// [Decode] and [ReadFile] accept (64 MiB, about 70 minutes of 8 kHz PCM16),
// protecting the process from huge or hostile files.
const DefaultMaxDataBytes = 64 << 20

// maxChannels bounds the channel count accepted from a header.
const maxChannels = 32

// maxSampleRate bounds the sample rate accepted from a header, in Hz.
const maxSampleRate = 384000

// Errors returned by the reader. They are wrapped with details; test with
// errors.Is.
var (
	ErrNotWAV      = errors.New("not a RIFF/WAVE file")
	ErrNoFormat    = errors.New("no fmt chunk before data chunk")
	ErrNoData      = errors.New("no data chunk")
	ErrUnsupported = errors.New("unsupported WAVE format")
	ErrTooLarge    = errors.New("audio data too large")
)

// Info describes the encoding of a WAVE file.
type Info struct {
	Format        Format // effective format (the sub-format for extensible files)
	Channels      int    // number of interleaved channels
	SampleRate    int    // samples per second per channel, in Hz
	BitsPerSample int    // bits per sample per channel
	DataOffset    int    // byte offset of the audio data in the file
	DataSize      int    // byte length of the audio data used
}

// Audio is a decoded sound: mono 16-bit linear samples at Info.SampleRate.
type Audio struct {
	Info    Info
	Samples []int16
}

// Duration returns the length of the audio in seconds.
func (a *Audio) Duration() float64 {
	if a.Info.SampleRate == 0 {
		return 0
	}
	return float64(len(a.Samples)) / float64(a.Info.SampleRate)
}

// To8kMono returns the samples at 8 kHz. It returns a.Samples itself when the
// audio already is at 8 kHz, otherwise a resampled copy.
func (a *Audio) To8kMono() []int16 {
	if a.Info.SampleRate == TelephonyRate {
		return a.Samples
	}
	return Resample(a.Samples, a.Info.SampleRate, TelephonyRate)
}

// ReadFile reads and decodes the WAVE file at path, accepting at most
// DefaultMaxDataBytes of audio data.
func ReadFile(path string) (*Audio, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open wav: %w", err)
	}
	defer f.Close()
	a, err := Decode(f, DefaultMaxDataBytes)
	if err != nil {
		return nil, fmt.Errorf("read wav %s: %w", path, err)
	}
	return a, nil
}

// Decode reads a whole WAVE file from r and decodes it. maxData limits the
// audio data size in bytes (<= 0 means DefaultMaxDataBytes).
func Decode(r io.Reader, maxData int) (*Audio, error) {
	if maxData <= 0 {
		maxData = DefaultMaxDataBytes
	}
	// Headers rarely exceed a few KiB; allow generous metadata chunks.
	limit := int64(maxData) + 1<<20
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read wav data: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	return parse(data, maxData)
}

// Parse decodes a complete WAVE file held in memory, accepting at most
// DefaultMaxDataBytes of audio data.
func Parse(data []byte) (*Audio, error) {
	return parse(data, DefaultMaxDataBytes)
}

func parse(data []byte, maxData int) (*Audio, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, ErrNotWAV
	}
	var (
		info     Info
		haveFmt  bool
		blockLen int
	)
	off := 12
	for off+8 <= len(data) {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := off + 8
		end := body + size
		if size < 0 || end > len(data) || end < body {
			// Truncated file or streaming writer that never patched the size:
			// use what is there.
			end = len(data)
		}
		switch id {
		case "fmt ":
			if err := parseFmt(data[body:end], &info, &blockLen); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, ErrNoFormat
			}
			info.DataOffset = body
			n := end - body
			n -= n % blockLen
			if n > maxData {
				return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, maxData)
			}
			info.DataSize = n
			samples, err := decodeSamples(data[body:body+n], &info, blockLen)
			if err != nil {
				return nil, err
			}
			return &Audio{Info: info, Samples: samples}, nil
		}
		off = end + (end-body)&1 // chunks are padded to even length
	}
	if !haveFmt {
		return nil, ErrNoFormat
	}
	return nil, ErrNoData
}

func parseFmt(b []byte, info *Info, blockLen *int) error {
	if len(b) < 16 {
		return fmt.Errorf("%w: fmt chunk of %d bytes", ErrNotWAV, len(b))
	}
	info.Format = Format(binary.LittleEndian.Uint16(b[0:2]))
	info.Channels = int(binary.LittleEndian.Uint16(b[2:4]))
	info.SampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
	align := int(binary.LittleEndian.Uint16(b[12:14]))
	info.BitsPerSample = int(binary.LittleEndian.Uint16(b[14:16]))
	if info.Format == FormatExtensible {
		if len(b) < 40 {
			return fmt.Errorf("%w: extensible fmt chunk of %d bytes", ErrNotWAV, len(b))
		}
		info.Format = Format(binary.LittleEndian.Uint16(b[24:26]))
	}
	if info.Channels < 1 || info.Channels > maxChannels {
		return fmt.Errorf("%w: %d channels", ErrUnsupported, info.Channels)
	}
	if info.SampleRate < 1000 || info.SampleRate > maxSampleRate {
		return fmt.Errorf("%w: sample rate %d Hz", ErrUnsupported, info.SampleRate)
	}
	var bytesPer int
	switch info.Format {
	case FormatPCM:
		switch info.BitsPerSample {
		case 8, 16, 24, 32:
			bytesPer = info.BitsPerSample / 8
		default:
			return fmt.Errorf("%w: PCM with %d bits per sample", ErrUnsupported, info.BitsPerSample)
		}
	case FormatIEEEFloat:
		if info.BitsPerSample != 32 {
			return fmt.Errorf("%w: float with %d bits per sample", ErrUnsupported, info.BitsPerSample)
		}
		bytesPer = 4
	case FormatMuLaw, FormatALaw:
		if info.BitsPerSample != 8 {
			return fmt.Errorf("%w: G.711 with %d bits per sample", ErrUnsupported, info.BitsPerSample)
		}
		bytesPer = 1
	default:
		return fmt.Errorf("%w: %s", ErrUnsupported, info.Format)
	}
	*blockLen = bytesPer * info.Channels
	if align != 0 && align != *blockLen {
		return fmt.Errorf("%w: block align %d, expected %d", ErrUnsupported, align, *blockLen)
	}
	return nil
}

func decodeSamples(b []byte, info *Info, blockLen int) ([]int16, error) {
	frames := len(b) / blockLen
	out := make([]int16, frames)
	ch := info.Channels
	bytesPer := blockLen / ch
	for i := range frames {
		var sum int
		for c := range ch {
			p := b[i*blockLen+c*bytesPer:]
			sum += int(sampleAt(p, info.Format, bytesPer))
		}
		out[i] = int16(sum / ch)
	}
	return out, nil
}

func sampleAt(p []byte, f Format, bytesPer int) int16 {
	switch f {
	case FormatMuLaw:
		return g711.UlawToLinear(p[0])
	case FormatALaw:
		return g711.AlawToLinear(p[0])
	case FormatIEEEFloat:
		v := math.Float32frombits(binary.LittleEndian.Uint32(p))
		return clamp16(float64(v) * 32767)
	}
	switch bytesPer {
	case 1:
		return int16(int(p[0])-128) << 8
	case 2:
		return int16(binary.LittleEndian.Uint16(p))
	case 3:
		return int16(uint16(p[1]) | uint16(p[2])<<8)
	default:
		return int16(binary.LittleEndian.Uint16(p[2:]))
	}
}

func clamp16(v float64) int16 {
	switch {
	case v != v: // NaN
		return 0
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(v))
}
