package media

import (
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/opengvp/gvp/internal/media/sdpneg"
)

// phaseCounts returns the number of sessions in each phase of each worker.
func phaseCounts(e *Engine) [][]int {
	var out [][]int
	for _, w := range e.sched.workers {
		w.mu.Lock()
		row := make([]int, len(w.phases))
		for j := range w.phases {
			row[j] = len(w.phases[j].sessions)
		}
		w.mu.Unlock()
		out = append(out, row)
	}
	return out
}

func TestSchedulerPhaseOffsets(t *testing.T) {
	tests := []struct{ workers, slots int }{{1, 1}, {2, 1}, {2, 20}, {3, 10}, {4, 100}}
	for _, tc := range tests {
		e := testEngine(t, func(c *Config) { c.Workers, c.PhaseSlots = tc.workers, tc.slots })
		// In time order (phase j of worker k is number j*workers+k) the
		// offsets must be strictly increasing, start at 0, stay within
		// the tick and be evenly spaced.
		step := TickInterval / time.Duration(tc.workers*tc.slots)
		prev := time.Duration(-1)
		for j := range tc.slots {
			for k, w := range e.sched.workers {
				off := w.offsets[j]
				if off <= prev || off >= TickInterval {
					t.Fatalf("%d workers × %d slots: worker %d phase %d offset %v after %v", tc.workers, tc.slots, k, j, off, prev)
				}
				if want := time.Duration(j*tc.workers+k) * step; off-want > time.Microsecond || want-off > time.Microsecond {
					t.Fatalf("%d workers × %d slots: worker %d phase %d offset %v, want %v", tc.workers, tc.slots, k, j, off, want)
				}
				prev = off
			}
		}
	}
}

// TestSchedulerPlacement checks that sessions fill a phase up to the
// minimum before another is opened, are then spread evenly over all
// phases of all workers, and that a freed place is refilled first.
func TestSchedulerPlacement(t *testing.T) {
	const workers, slots, fill = 2, 3, 4
	e := testEngine(t, func(c *Config) { c.Workers, c.PhaseSlots = workers, slots })
	e.sched.minFill = fill
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	addr := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	m := sdpneg.Media{Remote: addr, RemoteRTCP: addr, Codec: sdpneg.PCMU, Direction: sdpneg.SendOnly}
	var sessions []*Session
	for i := 1; i <= 2*workers*slots*fill+1; i++ {
		s := newTestSession(t, e, quietConfig())
		if err := s.Start(m); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(m); err != nil { // re-INVITE: must not place it again
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		busy, lo, hi, total := 0, 1<<30, 0, 0
		for _, row := range phaseCounts(e) {
			for _, c := range row {
				if c > 0 {
					busy++
				}
				lo, hi, total = min(lo, c), max(hi, c), total+c
			}
		}
		if total != i {
			t.Fatalf("after %d sessions: %d placed: %v", i, total, phaseCounts(e))
		}
		if i <= workers*slots*fill {
			// Filling: phases open one at a time, each up to fill.
			if want := (i + fill - 1) / fill; busy != want {
				t.Fatalf("after %d sessions: %d busy phases, want %d: %v", i, busy, want, phaseCounts(e))
			}
		} else if hi-lo > 1 {
			// All phases full: the least loaded takes the next session.
			t.Fatalf("after %d sessions: counts %v", i, phaseCounts(e))
		}
	}
	victim := sessions[4]
	w, j := victim.worker, victim.phase
	before := phaseCounts(e)[indexOf(e, w)][j]
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	if got := phaseCounts(e)[indexOf(e, w)][j]; got != before-1 {
		t.Fatalf("closed session still counted: phase has %d, had %d", got, before)
	}
	s := newTestSession(t, e, quietConfig())
	if err := s.Start(m); err != nil {
		t.Fatal(err)
	}
	if s.worker != w || s.phase != j {
		t.Fatalf("new session in worker %d phase %d, want the freed worker %d phase %d",
			indexOf(e, s.worker), s.phase, indexOf(e, w), j)
	}
}

func indexOf(e *Engine, w *worker) int {
	for k, x := range e.sched.workers {
		if x == w {
			return k
		}
	}
	return -1
}

// TestSchedulerPhasesKeepTimestamps runs sessions in different phases to
// one receiver and checks that every session sends consecutive sequence
// numbers with timestamps exactly 160 apart, and that sessions in other
// phases keep sending when one closes and a new one joins.
func TestSchedulerPhasesKeepTimestamps(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.Workers, c.PhaseSlots = 2, 4 })
	e.sched.minFill = 1 // one session per phase
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	addr := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	m := sdpneg.Media{Remote: addr, RemoteRTCP: addr, Codec: sdpneg.PCMU, Direction: sdpneg.SendOnly}
	start := func() *Session {
		s := newTestSession(t, e, DefaultSessionConfig()) // sends silence
		if err := s.Start(m); err != nil {
			t.Fatal(err)
		}
		return s
	}
	var sessions []*Session
	for range 6 {
		sessions = append(sessions, start())
	}
	phases := map[[2]int]bool{}
	for _, s := range sessions {
		phases[[2]int{indexOf(e, s.worker), s.phase}] = true
	}
	if len(phases) != 6 {
		t.Fatalf("6 sessions in %d phases", len(phases))
	}
	type last struct {
		seq uint16
		ts  uint32
		n   int
	}
	seen := map[uint32]*last{}
	buf := make([]byte, 1500)
	var h rtp.Header
	read := func(packets int) {
		if err := rx.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for range packets {
			n, err := rx.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Unmarshal(buf[:n]); err != nil {
				t.Fatal(err)
			}
			l := seen[h.SSRC]
			if l == nil {
				seen[h.SSRC] = &last{seq: h.SequenceNumber, ts: h.Timestamp, n: 1}
				continue
			}
			if h.SequenceNumber != l.seq+1 || h.Timestamp != l.ts+frameSamples {
				t.Fatalf("SSRC %x: seq %d ts %d after seq %d ts %d", h.SSRC, h.SequenceNumber, h.Timestamp, l.seq, l.ts)
			}
			l.seq, l.ts, l.n = h.SequenceNumber, h.Timestamp, l.n+1
		}
	}
	read(6 * 10)
	if err := sessions[2].Close(); err != nil {
		t.Fatal(err)
	}
	sessions[2] = start()
	read(6 * 10)
	if len(seen) != 7 {
		t.Fatalf("%d sources, want 7", len(seen))
	}
	for _, s := range sessions {
		if l := seen[s.ssrc]; l == nil || l.n < 3 {
			t.Fatalf("session %x sent too little: %+v", s.ssrc, l)
		}
	}
}

func TestConfigPhaseSlots(t *testing.T) {
	tests := []struct {
		slots int
		ok    bool
	}{{0, false}, {-1, false}, {1, true}, {DefaultPhaseSlots, true}, {maxPhaseSlots, true}, {maxPhaseSlots + 1, false}}
	for _, tc := range tests {
		c := DefaultConfig()
		c.PhaseSlots = tc.slots
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("PhaseSlots %d: Validate() = %v, want ok=%v", tc.slots, err, tc.ok)
		}
	}
}

// TestSendIntervalErrorMetric: the send interval error histogram gets one observation per
// burst of a phase after its first, each the distance from 20 ms of the time between the
// phase's bursts, which is the session's own send interval error to within its place in the
// burst.
func TestSendIntervalErrorMetric(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.Workers, c.PhaseSlots = 1, 4 })
	_, addr := sinkSocket(t)
	s := newTestSession(t, e, DefaultSessionConfig())
	var mu sync.Mutex
	var sends []time.Time
	s.onSend = func(time.Time, int64) {
		mu.Lock()
		sends = append(sends, time.Now())
		mu.Unlock()
	}
	if err := s.Start(sdpneg.Media{Remote: addr, RemoteRTCP: addr, Codec: sdpneg.PCMU, Direction: sdpneg.SendOnly}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := e.metrics.SendIntervalError.Write(&m); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var measured float64
	for i := 1; i < len(sends); i++ {
		measured += (sends[i].Sub(sends[i-1]) - TickInterval).Abs().Seconds()
	}
	count, sum := int(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
	if len(sends) < 20 || count < len(sends)-2 || count > len(sends) {
		t.Fatalf("%d observations for %d packets sent, want one per interval", count, len(sends))
	}
	// The two measures differ only by where the send fell within its burst: microseconds
	// per packet for a burst of one.
	if diff := math.Abs(sum - measured); diff > float64(count)*200e-6 {
		t.Fatalf("metric sum %.6f s, measured send interval error %.6f s over %d intervals", sum, measured, count)
	}
}
