package media

// Jitter buffer defaults.
const (
	// DefaultJitterMin is the smallest playout delay, in 20 ms frames.
	DefaultJitterMin = 2
	// DefaultJitterMax is the largest playout delay, in 20 ms frames.
	DefaultJitterMax = 10
	// jbSlots is the number of packet slots; it bounds the buffered audio
	// (32 x 20 ms = 640 ms) and must be a power of two.
	jbSlots = 32
	// maxPayload is the largest audio payload kept per packet, in bytes
	// (60 ms of G.711). Larger payloads are truncated.
	maxPayload = 480
	// frameSamples is the number of 8 kHz samples in 20 ms.
	frameSamples = 160
)

type jbSlot struct {
	seq   uint16
	valid bool
	n     int
	data  [maxPayload]byte
}

// jitterBuffer reorders G.711 packets by sequence number and plays them out
// at a steady 20 ms pace. Its depth adapts to the measured interarrival
// jitter between minDepth and maxDepth frames. Because G.711 has one byte
// per sample, playout works on samples, so any packetisation (10, 20, 30 ms
// ...) is played out correctly by 20 ms ticks.
//
// It is not safe for concurrent use; the session serialises access.
type jitterBuffer struct {
	slots    [jbSlots]jbSlot
	next     uint16 // sequence number of the next packet to play
	init     bool   // next is valid
	playing  bool
	count    int // valid slots
	cur      int // slot being played, -1 if none
	off      int // bytes of slots[cur] already played
	lastLen  int // payload length of the last played packet
	minDepth int
	maxDepth int
	target   int  // frames
	silence  byte // codec byte used to conceal gaps

	late      uint64 // packets that arrived after their playout
	lost      uint64 // packets missing at playout time
	dropped   uint64 // packets discarded to shrink the buffer or on overflow
	duplicate uint64
}

func newJitterBuffer(minDepth, maxDepth int) *jitterBuffer {
	j := &jitterBuffer{minDepth: minDepth, maxDepth: maxDepth, target: minDepth, cur: -1}
	return j
}

// reset empties the buffer (new SSRC, sequence jump).
func (j *jitterBuffer) reset() {
	for i := range j.slots {
		j.slots[i].valid = false
	}
	j.init, j.playing, j.count, j.cur, j.off = false, false, 0, -1, 0
}

// setJitter adapts the target depth to the interarrival jitter (in samples).
func (j *jitterBuffer) setJitter(jitterSamples uint32) {
	// Cover about three times the mean deviation, plus one frame.
	t := 1 + int(3*jitterSamples+frameSamples-1)/frameSamples
	j.target = min(max(t, j.minDepth), j.maxDepth)
}

// bufferedSamples returns the audio waiting to be played, in samples.
func (j *jitterBuffer) bufferedSamples() int {
	n := 0
	for i := range j.slots {
		if j.slots[i].valid {
			n += j.slots[i].n
		}
	}
	if j.cur >= 0 {
		n -= j.off
	}
	return n
}

// push stores one packet.
func (j *jitterBuffer) push(seq uint16, payload []byte) {
	if !j.init {
		j.next, j.init = seq, true
	}
	d := int16(seq - j.next)
	if d < 0 {
		if j.playing || d < -jbSlots {
			j.late++
			return
		}
		// Not playing yet: a reordered earlier packet moves the start back.
		j.next = seq
		d = 0
	}
	if int(d) >= jbSlots {
		if d > 3*jbSlots {
			// The sender jumped (restart, long silence): start again.
			j.reset()
			j.next, j.init = seq, true
		} else {
			// Overflow: drop old audio to make room.
			for int16(seq-j.next) >= jbSlots {
				j.skip()
			}
		}
	}
	s := &j.slots[seq%jbSlots]
	if s.valid {
		if s.seq == seq {
			j.duplicate++
			return
		}
		j.dropped++
		j.count--
	}
	s.seq, s.valid = seq, true
	s.n = copy(s.data[:], payload)
	j.count++
}

// skip discards the packet at the playout point.
func (j *jitterBuffer) skip() {
	s := &j.slots[j.next%jbSlots]
	if s.valid && s.seq == j.next {
		s.valid = false
		j.count--
		j.dropped++
	}
	if j.cur == int(j.next%jbSlots) {
		j.cur, j.off = -1, 0
	}
	j.next++
}

// pop fills out (one 20 ms frame of G.711 bytes) and reports how many bytes
// are received audio (gaps are filled with silence), or -1 when nothing is
// being played (buffering; out is untouched).
func (j *jitterBuffer) pop(out []byte) int {
	if !j.playing {
		if j.count == 0 || j.bufferedSamples() < j.target*frameSamples {
			return -1
		}
		j.playing = true
	}
	// Shrink when much deeper than needed (after a burst or a jitter drop).
	if j.cur < 0 && j.bufferedSamples() > (j.target+2)*frameSamples {
		j.skip()
	}
	n := 0
	real := 0
	for n < len(out) {
		if j.cur < 0 {
			if j.count == 0 {
				// Underrun: stop and rebuffer; the gap is not loss.
				j.playing = false
				if n == 0 {
					return -1
				}
				fill(out[n:], j.silence)
				break
			}
			idx := int(j.next % jbSlots)
			s := &j.slots[idx]
			if !s.valid || s.seq != j.next {
				// Missing packet with later ones buffered: lost. Conceal
				// with the size of the previous packet.
				j.lost++
				j.next++
				gap := j.lastLen
				if gap <= 0 {
					gap = frameSamples
				}
				g := min(gap, len(out)-n)
				fill(out[n:n+g], j.silence)
				n += g
				continue
			}
			j.cur, j.off = idx, 0
		}
		s := &j.slots[j.cur]
		c := copy(out[n:], s.data[j.off:s.n])
		n += c
		real += c
		j.off += c
		if j.off >= s.n {
			j.lastLen = s.n
			s.valid = false
			j.count--
			j.cur, j.off = -1, 0
			j.next++
		}
	}
	return real
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
