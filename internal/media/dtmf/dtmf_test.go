package dtmf

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/media/wav"
)

func TestEventRoundTrip(t *testing.T) {
	e := Event{Event: EventPound, End: true, Volume: 10, Duration: 800}
	var b [4]byte
	e.Marshal(b[:])
	if b != [4]byte{11, 0x8A, 0x03, 0x20} {
		t.Fatalf("wire bytes % x", b)
	}
	var got Event
	if err := got.Unmarshal(b[:]); err != nil || got != e {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := DecodePayload(nil, b[:3]); !errors.Is(err, ErrPayload) {
		t.Fatalf("short payload: %v", err)
	}
	if _, err := DecodePayload(nil, nil); !errors.Is(err, ErrPayload) {
		t.Fatalf("empty payload: %v", err)
	}
}

func TestDigitMapping(t *testing.T) {
	for i, c := range "0123456789*#ABCD" {
		ev, ok := EventForDigit(c)
		if !ok || int(ev) != i {
			t.Fatalf("EventForDigit(%c) = %d", c, ev)
		}
		d, ok := DigitForEvent(ev)
		if !ok || d != c {
			t.Fatalf("DigitForEvent(%d) = %c", ev, d)
		}
	}
	if ev, _ := EventForDigit('b'); ev != 13 {
		t.Fatalf("lowercase b = %d", ev)
	}
	if _, ok := EventForDigit('x'); ok {
		t.Fatal("x accepted")
	}
	if _, ok := DigitForEvent(EventFlash); ok {
		t.Fatal("flash has a digit")
	}
}

func TestGeneratorSequence(t *testing.T) {
	g := NewGenerator(5, 800, 160) // 100 ms in 20 ms steps
	type pkt struct {
		marker bool
		ev     Event
	}
	var got []pkt
	var b [4]byte
	for {
		n, m, ok := g.Next(b[:])
		if !ok {
			break
		}
		var e Event
		_ = e.Unmarshal(b[:n])
		got = append(got, pkt{m, e})
	}
	want := []pkt{
		{true, Event{5, false, 10, 160}},
		{false, Event{5, false, 10, 320}},
		{false, Event{5, false, 10, 480}},
		{false, Event{5, false, 10, 640}},
		{false, Event{5, true, 10, 800}},
		{false, Event{5, true, 10, 800}},
		{false, Event{5, true, 10, 800}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d packets: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("packet %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !g.Done() {
		t.Fatal("not done")
	}
	// 50 ms updates, duration not a multiple of the step.
	g = NewGenerator(1, 1000, 400)
	var durs []uint16
	for {
		_, _, ok := g.Next(b[:])
		if !ok {
			break
		}
		var e Event
		_ = e.Unmarshal(b[:])
		durs = append(durs, e.Duration)
	}
	if len(durs) != 5 || durs[0] != 400 || durs[1] != 800 || durs[2] != 1000 || durs[4] != 1000 {
		t.Fatalf("durations %v", durs)
	}
}

type rxPkt struct {
	ts  uint32
	ev  uint8
	end bool
	dur uint16
	at  int // ms since start
}

func payload(p rxPkt) []byte {
	b := make([]byte, 4)
	Event{Event: p.ev, End: p.end, Volume: 10, Duration: p.dur}.Marshal(b)
	return b
}

func TestReceiverEdgeCases(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		pkts    []rxPkt
		pollAt  []int // ms: Poll calls after all packets
		want    string
		wantDur []uint16
	}{
		{
			name: "normal with three end packets",
			pkts: []rxPkt{{100, 1, false, 160, 0}, {100, 1, false, 320, 20}, {100, 1, true, 480, 40}, {100, 1, true, 480, 41}, {100, 1, true, 480, 42}},
			want: "1", wantDur: []uint16{480},
		},
		{
			name: "duration zero start, no marker",
			pkts: []rxPkt{{100, 2, false, 0, 0}, {100, 2, true, 800, 100}},
			want: "2",
		},
		{
			name: "missing end packets finalised by next event",
			pkts: []rxPkt{{100, 3, false, 160, 0}, {100, 3, false, 320, 20}, {2000, 4, false, 160, 300}, {2000, 4, true, 320, 320}},
			want: "34",
		},
		{
			name:   "missing end packets finalised by timeout",
			pkts:   []rxPkt{{100, 5, false, 160, 0}, {100, 5, false, 320, 20}},
			pollAt: []int{100, 319, 320, 400},
			want:   "5",
		},
		{
			name: "same digit twice with new timestamps",
			pkts: []rxPkt{{100, 7, true, 800, 0}, {100, 7, true, 800, 1}, {1900, 7, true, 800, 200}, {1900, 7, true, 800, 201}},
			want: "77",
		},
		{
			name: "reordered end before update within burst",
			pkts: []rxPkt{{100, 8, false, 160, 0}, {100, 8, true, 480, 40}, {100, 8, false, 320, 41}, {100, 8, true, 480, 42}},
			want: "8",
		},
		{
			name: "next event arrives before previous end",
			pkts: []rxPkt{{100, 1, false, 160, 0}, {900, 2, false, 160, 100}, {100, 1, true, 640, 101}, {900, 2, true, 640, 200}, {900, 2, true, 640, 201}},
			want: "12",
		},
		{
			name: "late packet of unseen older event dropped",
			pkts: []rxPkt{{900, 2, false, 160, 0}, {100, 1, true, 640, 1}, {900, 2, true, 640, 60}},
			want: "2",
		},
		{
			name: "end only (all updates lost)",
			pkts: []rxPkt{{100, 11, true, 800, 0}},
			want: "#",
		},
		{
			name:   "retransmission after timeout finalisation is ignored",
			pkts:   []rxPkt{{100, 9, false, 160, 0}, {100, 9, true, 4000, 700}},
			pollAt: []int{400},
			want:   "9",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Digit
			r := NewReceiver(func(d Digit) { got = append(got, d) })
			// Poll before each packet too, as the session does every 20 ms.
			pollIdx := 0
			for _, p := range tc.pkts {
				for pollIdx < len(tc.pollAt) && tc.pollAt[pollIdx] <= p.at {
					r.Poll(t0.Add(time.Duration(tc.pollAt[pollIdx]) * time.Millisecond))
					pollIdx++
				}
				if err := r.Packet(p.ts, payload(p), t0.Add(time.Duration(p.at)*time.Millisecond)); err != nil {
					t.Fatal(err)
				}
			}
			for ; pollIdx < len(tc.pollAt); pollIdx++ {
				r.Poll(t0.Add(time.Duration(tc.pollAt[pollIdx]) * time.Millisecond))
			}
			var s strings.Builder
			for _, d := range got {
				s.WriteRune(d.Digit)
			}
			if s.String() != tc.want {
				t.Fatalf("digits %q, want %q", s.String(), tc.want)
			}
			for i, d := range tc.wantDur {
				if got[i].Duration != d {
					t.Fatalf("digit %d duration %d, want %d", i, got[i].Duration, d)
				}
			}
		})
	}
}

func TestReceiverMultipleEventsInPacket(t *testing.T) {
	var got []rune
	r := NewReceiver(func(d Digit) { got = append(got, d.Digit) })
	now := time.Unix(0, 0)
	// Packet with the final report of '1' (800 units) followed by the start
	// of '2', which therefore starts at ts 100+800.
	p := make([]byte, 8)
	Event{Event: 1, End: true, Duration: 800}.Marshal(p)
	Event{Event: 2, Duration: 160}.Marshal(p[4:])
	if err := r.Packet(100, p, now); err != nil {
		t.Fatal(err)
	}
	// Redundant copy of the same packet, then the regular stream of '2'.
	_ = r.Packet(100, p, now)
	e := make([]byte, 4)
	Event{Event: 2, End: true, Duration: 480}.Marshal(e)
	_ = r.Packet(900, e, now)
	_ = r.Packet(900, e, now)
	if string(got) != "12" {
		t.Fatalf("got %q", string(got))
	}
}

func TestGeneratorToReceiver(t *testing.T) {
	var got []Digit
	r := NewReceiver(func(d Digit) { got = append(got, d) })
	now := time.Unix(0, 0)
	ts := uint32(0xFFFFF000) // crosses the 32-bit wrap
	for _, c := range "159#" {
		ev, _ := EventForDigit(c)
		g := NewGenerator(ev, 800, 160)
		var b [4]byte
		for {
			_, _, ok := g.Next(b[:])
			if !ok {
				break
			}
			_ = r.Packet(ts, b[:], now)
			now = now.Add(20 * time.Millisecond)
		}
		ts += 1600
	}
	if len(got) != 4 || got[0].Digit != '1' || got[3].Digit != '#' || got[2].Duration != 800 {
		t.Fatalf("got %+v", got)
	}
}

func detect(t *testing.T, samples []int16) string {
	t.Helper()
	var s strings.Builder
	d := NewDetector(func(dg Digit) { s.WriteRune(dg.Digit) })
	// Feed in 20 ms frames as the media session does.
	for off := 0; off < len(samples); off += 160 {
		d.Write(samples[off:min(off+160, len(samples))])
	}
	return s.String()
}

func TestDetectorFixture(t *testing.T) {
	a, err := wav.ReadFile("../testdata/dtmf_123456789s0p.wav")
	if err != nil {
		t.Fatal(err)
	}
	if got := detect(t, a.Samples); got != "123456789*0#" {
		t.Fatalf("detected %q, want %q", got, "123456789*0#")
	}
}

func TestDetectorSpeechGivesNothing(t *testing.T) {
	a, err := wav.ReadFile("../testdata/one_two_three_8k_ulaw.wav")
	if err != nil {
		t.Fatal(err)
	}
	if got := detect(t, a.Samples); got != "" {
		t.Fatalf("talk-off: detected %q in speech", got)
	}
}

func synth(lo, hi float64, ampLo, ampHi float64, ms int) []int16 {
	n := ms * 8
	out := make([]int16, n)
	for i := range out {
		ti := float64(i) / 8000
		out[i] = int16(ampLo*math.Sin(2*math.Pi*lo*ti) + ampHi*math.Sin(2*math.Pi*hi*ti))
	}
	return out
}

func TestDetectorSynthetic(t *testing.T) {
	gap := make([]int16, 400)
	join := func(parts ...[]int16) []int16 {
		var out []int16
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		samples []int16
		want    string
	}{
		{"all sixteen keys", func() []int16 {
			var out []int16
			for ri, r := range rowFreqs {
				for ci, c := range colFreqs {
					_ = keypad[ri][ci]
					out = append(out, synth(r, c, 6000, 6000, 60)...)
					out = append(out, gap...)
				}
			}
			return out
		}(), "123A456B789C*0#D"},
		{"long press is one digit", synth(770, 1336, 6000, 6000, 1000), "5"},
		{"too short (20 ms) rejected", join(synth(697, 1209, 6000, 6000, 20), gap), ""},
		{"too quiet rejected", synth(697, 1209, 200, 200, 200), ""},
		{"excessive twist rejected", synth(697, 1209, 8000, 1500, 200), ""},
		{"single tone rejected", synth(697, 697, 6000, 6000, 200), ""},
		{"dial tone 350+440 rejected", synth(350, 440, 6000, 6000, 500), ""},
		{"repeat after gap", join(synth(941, 1477, 6000, 6000, 80), gap, synth(941, 1477, 6000, 6000, 80)), "##"},
		{"acceptable twist 4 dB", synth(852, 1477, 8000, 5000, 100), "9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := detect(t, tc.samples); got != tc.want {
				t.Fatalf("detected %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDetectorZeroAllocs(t *testing.T) {
	d := NewDetector(func(Digit) {})
	frame := synth(697, 1209, 6000, 6000, 20)
	if a := testing.AllocsPerRun(100, func() { d.Write(frame) }); a != 0 {
		t.Fatalf("allocs = %v", a)
	}
}

func BenchmarkDetector20ms(b *testing.B) {
	d := NewDetector(func(Digit) {})
	frame := synth(697, 1209, 6000, 6000, 20)
	b.ReportAllocs()
	for b.Loop() {
		d.Write(frame)
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte{1, 0x8A, 0, 160}, uint32(100))
	f.Add([]byte{1, 0x8A, 0, 160, 2, 0, 0, 0}, uint32(0xFFFFFFF0))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, p []byte, ts uint32) {
		var buf [4]Event
		evs, err := DecodePayload(buf[:0], p)
		if err != nil {
			return
		}
		if len(evs) != len(p)/EventLen {
			t.Fatalf("%d events from %d bytes", len(evs), len(p))
		}
		out := make([]byte, len(p))
		for i, e := range evs {
			e.Marshal(out[i*EventLen:])
		}
		for i := range p {
			want := p[i]
			if i%EventLen == 1 {
				want &= 0xBF // reserved bit is not kept
			}
			if out[i] != want {
				t.Fatalf("round trip differs at %d", i)
			}
		}
		// The receiver must deliver each (timestamp, event) at most once.
		seen := map[[2]uint32]int{}
		r := NewReceiver(func(d Digit) {
			k := [2]uint32{d.Timestamp, uint32(d.Event)}
			seen[k]++
			if seen[k] > 1 {
				t.Fatalf("event delivered twice: %+v", d)
			}
		})
		now := time.Unix(0, 0)
		_ = r.Packet(ts, p, now)
		_ = r.Packet(ts, p, now)
		r.Flush()
	})
}

// TestDetectorDurationLimits checks the Q.24 duration limits at every
// alignment of the tone against the analysis blocks.
func TestDetectorDurationLimits(t *testing.T) {
	for _, tc := range []struct {
		ms   int
		want string
	}{{20, ""}, {25, ""}, {40, "1"}, {45, "1"}} {
		for off := 0; off < DefaultBlockSize; off += 7 {
			s := append(make([]int16, off), synth(697, 1209, 6000, 6000, tc.ms)...)
			s = append(s, make([]int16, 800)...)
			if got := detect(t, s); got != tc.want {
				t.Fatalf("%d ms tone at offset %d: detected %q, want %q", tc.ms, off, got, tc.want)
			}
		}
	}
}
