// Package dtmf handles DTMF digits in both forms a caller can send them:
// RFC 4733 telephone-event RTP payloads (encoder, packet-sequence generator
// and a fault-tolerant receiver) and in-band tones (a Goertzel detector over
// 8 kHz linear PCM).
//
// All types here are single-threaded state machines without I/O; the media
// session serialises calls into them.
package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EventLen is the size of one RFC 4733 event block in bytes.
const EventLen = 4

// MaxDuration is the largest duration an event block can carry, in timestamp
// units (samples at 8 kHz: about 8.19 s).
const MaxDuration = 0xFFFF

// DefaultVolume is the volume (power level, in -dBm0, 0-63) written by the
// generator.
const DefaultVolume = 10

// Event codes 0-15 are the DTMF digits of RFC 4733 section 3.2; 16 is flash.
const (
	EventStar  = 10
	EventPound = 11
	EventA     = 12
	EventD     = 15
	EventFlash = 16
)

const digitChars = "0123456789*#ABCD"

// ErrPayload is returned for malformed telephone-event payloads.
var ErrPayload = errors.New("malformed telephone-event payload")

// Event is one RFC 4733 event block.
type Event struct {
	Event    uint8  // event code (0-9, 10 = *, 11 = #, 12-15 = A-D, 16 = flash)
	End      bool   // E bit: this is a final report of the event
	Volume   uint8  // power level in -dBm0 (0-63)
	Duration uint16 // duration so far, in RTP timestamp units
}

// Marshal writes the 4-byte block to b, which must be at least EventLen long.
func (e Event) Marshal(b []byte) {
	_ = b[3]
	b[0] = e.Event
	b[1] = e.Volume & 0x3F
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], e.Duration)
}

// Unmarshal reads one block from b.
func (e *Event) Unmarshal(b []byte) error {
	if len(b) < EventLen {
		return fmt.Errorf("%w: %d bytes", ErrPayload, len(b))
	}
	e.Event = b[0]
	e.End = b[1]&0x80 != 0
	e.Volume = b[1] & 0x3F
	e.Duration = binary.BigEndian.Uint16(b[2:4])
	return nil
}

// DecodePayload decodes every block of a telephone-event payload into dst
// (without allocating when dst has room) and returns the blocks. The payload
// length must be a non-zero multiple of EventLen.
func DecodePayload(dst []Event, payload []byte) ([]Event, error) {
	if len(payload) == 0 || len(payload)%EventLen != 0 {
		return dst[:0], fmt.Errorf("%w: length %d", ErrPayload, len(payload))
	}
	dst = dst[:0]
	for off := 0; off < len(payload); off += EventLen {
		var e Event
		_ = e.Unmarshal(payload[off:])
		dst = append(dst, e)
	}
	return dst, nil
}

// DigitForEvent returns the character of a DTMF event code ('0'-'9', '*',
// '#', 'A'-'D') and false for other codes.
func DigitForEvent(ev uint8) (rune, bool) {
	if int(ev) < len(digitChars) {
		return rune(digitChars[ev]), true
	}
	return 0, false
}

// EventForDigit returns the event code of a DTMF character (case-insensitive
// for A-D) and false for other characters.
func EventForDigit(d rune) (uint8, bool) {
	if d >= 'a' && d <= 'd' {
		d -= 'a' - 'A'
	}
	for i, c := range digitChars {
		if c == d {
			return uint8(i), true
		}
	}
	return 0, false
}

// DefaultEndRepeats is the number of times the generator sends the final
// (E bit) report, as recommended by RFC 4733 section 2.5.1.4.
const DefaultEndRepeats = 3

// Generator produces the packet sequence of one event per RFC 4733 section
// 2.5: a first packet with the marker bit, updates with the cumulative
// duration every step, and DefaultEndRepeats final reports carrying the E
// bit. All packets share the RTP timestamp of the event start.
type Generator struct {
	event    uint8
	volume   uint8
	total    uint16
	step     uint16
	sent     int // packets produced
	duration uint16
	ends     int
}

// NewGenerator returns a generator for event lasting total timestamp units
// (clamped to MaxDuration) with an update every step units (160 = 20 ms at
// 8 kHz).
func NewGenerator(event uint8, total, step int) *Generator {
	total = min(max(total, 1), MaxDuration)
	step = min(max(step, 1), total)
	return &Generator{event: event, volume: DefaultVolume, total: uint16(total), step: uint16(step)}
}

// Next writes the next payload into b (at least EventLen bytes) and reports
// whether the packet carries the marker bit. It returns ok=false once the
// sequence is complete.
func (g *Generator) Next(b []byte) (n int, marker, ok bool) {
	if g.ends >= DefaultEndRepeats {
		return 0, false, false
	}
	marker = g.sent == 0
	g.sent++
	if g.duration < g.total {
		g.duration = uint16(min(int(g.duration)+int(g.step), int(g.total)))
	}
	end := g.duration >= g.total
	if end {
		g.ends++
	}
	Event{Event: g.event, End: end, Volume: g.volume, Duration: g.duration}.Marshal(b)
	return EventLen, marker, true
}

// Done reports whether the whole sequence has been produced.
func (g *Generator) Done() bool { return g.ends >= DefaultEndRepeats }
