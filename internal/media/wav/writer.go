package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/opengvp/gvp/internal/media/g711"
)

// Encoding selects the sample encoding of a recording written by [Writer].
type Encoding int

// Encodings supported by [Writer].
const (
	EncodingPCM16 Encoding = iota // 16-bit linear PCM, 44-byte header
	EncodingMuLaw                 // 8-bit mu-law, 18-byte fmt + fact chunk, 58-byte header
	EncodingALaw                  // 8-bit A-law, 18-byte fmt + fact chunk, 58-byte header
)

// writerChunk is the size of the internal encode buffer, in samples.
const writerChunk = 1024

// ErrClosed is returned by a [Writer] used after Close.
var ErrClosed = errors.New("wav writer closed")

// Writer writes an 8 kHz mono WAVE file. Sizes in the header are written as
// zero first and patched by Close, so the destination must be seekable. A
// Writer is not safe for concurrent use.
type Writer struct {
	w       io.WriteSeeker
	enc     Encoding
	samples int64 // samples written
	headLen int64
	buf     []byte
	closed  bool
}

// NewWriter writes the header of an 8 kHz mono file with encoding enc to w
// and returns a Writer positioned at the start of the audio data.
func NewWriter(w io.WriteSeeker, enc Encoding) (*Writer, error) {
	if enc < EncodingPCM16 || enc > EncodingALaw {
		return nil, fmt.Errorf("new wav writer: unknown encoding %d", enc)
	}
	wr := &Writer{w: w, enc: enc, buf: make([]byte, 2*writerChunk)}
	h := wr.header()
	wr.headLen = int64(len(h))
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("write wav header: %w", err)
	}
	return wr, nil
}

// DataOffset is the length of the header: the audio data starts there.
func (wr *Writer) DataOffset() int64 { return wr.headLen }

func (wr *Writer) header() []byte {
	var (
		tag      Format
		bits     uint16
		fmtLen   uint32 = 16
		withFact bool
	)
	switch wr.enc {
	case EncodingPCM16:
		tag, bits = FormatPCM, 16
	case EncodingMuLaw:
		tag, bits, fmtLen, withFact = FormatMuLaw, 8, 18, true
	case EncodingALaw:
		tag, bits, fmtLen, withFact = FormatALaw, 8, 18, true
	}
	blockAlign := bits / 8
	dataLen := wr.dataBytes()
	h := make([]byte, 0, 58)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 0) // patched below
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, fmtLen)
	h = binary.LittleEndian.AppendUint16(h, uint16(tag))
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint32(h, TelephonyRate)
	h = binary.LittleEndian.AppendUint32(h, TelephonyRate*uint32(blockAlign))
	h = binary.LittleEndian.AppendUint16(h, blockAlign)
	h = binary.LittleEndian.AppendUint16(h, bits)
	if fmtLen == 18 {
		h = binary.LittleEndian.AppendUint16(h, 0) // cbSize
	}
	if withFact {
		h = append(h, "fact"...)
		h = binary.LittleEndian.AppendUint32(h, 4)
		h = binary.LittleEndian.AppendUint32(h, uint32(wr.samples))
	}
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(dataLen))
	riff := uint32(len(h)-8) + uint32(dataLen) + uint32(dataLen&1)
	binary.LittleEndian.PutUint32(h[4:8], riff)
	return h
}

func (wr *Writer) dataBytes() int64 {
	if wr.enc == EncodingPCM16 {
		return wr.samples * 2
	}
	return wr.samples
}

// Samples returns the number of samples written so far.
func (wr *Writer) Samples() int64 { return wr.samples }

// WriteSamples encodes and appends 8 kHz mono linear samples.
func (wr *Writer) WriteSamples(s []int16) error {
	if wr.closed {
		return ErrClosed
	}
	for len(s) > 0 {
		n := min(len(s), writerChunk)
		var b []byte
		switch wr.enc {
		case EncodingPCM16:
			b = wr.buf[:2*n]
			for i, v := range s[:n] {
				binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			}
		case EncodingMuLaw:
			b = wr.buf[:n]
			g711.EncodeUlaw(b, s[:n])
		case EncodingALaw:
			b = wr.buf[:n]
			g711.EncodeAlaw(b, s[:n])
		}
		if _, err := wr.w.Write(b); err != nil {
			return fmt.Errorf("write wav samples: %w", err)
		}
		wr.samples += int64(n)
		s = s[n:]
	}
	return nil
}

// Close writes the pad byte if needed and patches the header sizes. It does
// not close the underlying writer.
func (wr *Writer) Close() error {
	if wr.closed {
		return ErrClosed
	}
	wr.closed = true
	if wr.dataBytes()&1 == 1 {
		if _, err := wr.w.Write([]byte{0}); err != nil {
			return fmt.Errorf("write wav pad: %w", err)
		}
	}
	end, err := wr.w.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("seek wav: %w", err)
	}
	if _, err := wr.w.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek wav header: %w", err)
	}
	if _, err := wr.w.Write(wr.header()); err != nil {
		return fmt.Errorf("patch wav header: %w", err)
	}
	if _, err := wr.w.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("seek wav end: %w", err)
	}
	return nil
}
