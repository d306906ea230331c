package media

import (
	"bytes"
	"testing"
)

// frameOf returns a 20 ms payload filled with v.
func frameOf(v byte, n int) []byte { return bytes.Repeat([]byte{v}, n) }

func TestJitterBuffer(t *testing.T) {
	type step struct {
		push []uint16 // sequence numbers pushed (payload byte = low byte of seq)
		pop  int      // pops after pushing
	}
	tests := []struct {
		name      string
		steps     []step
		want      []int // first byte of every popped frame, -1 = buffering, -2 = silence
		late      uint64
		lost      uint64
		duplicate uint64
	}{
		{
			name:  "in order after initial depth",
			steps: []step{{push: []uint16{10}, pop: 1}, {push: []uint16{11}, pop: 1}, {push: []uint16{12}, pop: 1}, {pop: 1}, {pop: 1}},
			want:  []int{-1, 10, 11, 12, -1},
		},
		{
			name:  "reordered packets come out in order",
			steps: []step{{push: []uint16{11, 10, 13, 12}, pop: 4}},
			want:  []int{10, 11, 12, 13},
		},
		{
			name:  "late packet dropped and counted",
			steps: []step{{push: []uint16{10, 11}, pop: 2}, {push: []uint16{10, 12}, pop: 1}},
			want:  []int{10, 11, 12},
			late:  1, duplicate: 0,
		},
		{
			name:  "lost packet concealed with silence",
			steps: []step{{push: []uint16{10, 12, 13}, pop: 3}},
			want:  []int{10, -2, 12},
			lost:  1,
		},
		{
			name:      "duplicate ignored",
			steps:     []step{{push: []uint16{10, 10, 11}, pop: 2}},
			want:      []int{10, 11},
			duplicate: 1,
		},
		{
			name:  "sequence wrap",
			steps: []step{{push: []uint16{65534, 65535, 0, 1}, pop: 4}},
			want:  []int{0xFE, 0xFF, 0, 1},
		},
		{
			name:  "earlier packet before playout starts moves the start back",
			steps: []step{{push: []uint16{21}, pop: 1}, {push: []uint16{20}, pop: 2}},
			want:  []int{-1, 20, 21},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := newJitterBuffer(2, 10)
			j.silence = 0xAA
			var got []int
			out := make([]byte, frameSamples)
			for _, st := range tc.steps {
				for _, seq := range st.push {
					j.push(seq, frameOf(byte(seq), frameSamples))
				}
				for range st.pop {
					r := j.pop(out)
					switch {
					case r < 0:
						got = append(got, -1)
					case r == 0 && out[0] == 0xAA:
						got = append(got, -2)
					default:
						got = append(got, int(out[0]))
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if j.late != tc.late || j.lost != tc.lost || j.duplicate != tc.duplicate {
				t.Fatalf("late %d lost %d dup %d, want %d %d %d", j.late, j.lost, j.duplicate, tc.late, tc.lost, tc.duplicate)
			}
		})
	}
}

// TestJitterBufferPacketisation checks that 30 ms packets play out as
// continuous 20 ms frames.
func TestJitterBufferPacketisation(t *testing.T) {
	j := newJitterBuffer(5, 10) // deep enough that nothing is trimmed
	var in []byte
	for i := range 4 {
		p := make([]byte, 240)
		for k := range p {
			p[k] = byte(i*240 + k)
		}
		in = append(in, p...)
		j.push(uint16(100+i), p)
	}
	var out []byte
	buf := make([]byte, frameSamples)
	for range 6 {
		if r := j.pop(buf); r != frameSamples {
			t.Fatalf("pop returned %d", r)
		}
		out = append(out, buf...)
	}
	if !bytes.Equal(out, in) {
		t.Fatal("samples reordered or lost across packet boundaries")
	}
}

func TestJitterBufferAdaptiveDepth(t *testing.T) {
	j := newJitterBuffer(2, 10)
	j.setJitter(0)
	if j.target != 2 {
		t.Fatalf("target %d at zero jitter", j.target)
	}
	j.setJitter(320) // 40 ms jitter
	if j.target != 7 {
		t.Fatalf("target %d at 40 ms jitter", j.target)
	}
	j.setJitter(8000)
	if j.target != 10 {
		t.Fatalf("target %d not clamped", j.target)
	}
	// A burst deeper than target+2 is trimmed while playing.
	j.setJitter(0)
	for i := range 12 {
		j.push(uint16(i), frameOf(byte(i), frameSamples))
	}
	buf := make([]byte, frameSamples)
	for range 12 {
		j.pop(buf)
	}
	if j.dropped == 0 {
		t.Fatal("deep buffer was not trimmed")
	}
}
