package media

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/opengvp/gvp/internal/media/sdpneg"
)

// benchSession returns a session wired to remote but not registered with
// the scheduler and without reader goroutines, so a benchmark can drive the
// hot paths directly.
func benchSession(b *testing.B, e *Engine, remote netip.AddrPort) *Session {
	s := newTestSession(b, e, DefaultSessionConfig())
	s.media = sdpneg.Media{Remote: remote, RemoteRTCP: remote, Codec: sdpneg.PCMU, TelephoneEvent: true,
		TelephoneEventPT: 101, Direction: sdpneg.SendRecv}
	s.remote, s.remoteRTCP = remote, remote
	s.silence = 0xFF
	s.jb.silence = 0xFF
	s.started = true
	return s
}

func sinkSocket(b testing.TB) (*net.UDPConn, netip.AddrPort) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// BenchmarkSendPacket measures one scheduler tick of a session playing a
// prompt: read a frame, encode G.711, marshal the header, sendto on a real
// loopback socket.
func BenchmarkSendPacket(b *testing.B) {
	e := testEngine(b)
	_, addr := sinkSocket(b)
	s := benchSession(b, e, addr)
	s.playback = &Playback{s: s, sources: []Source{NewPCMSource(make([]int16, 8000*3600))}, done: make(chan struct{})}
	now := time.Now()
	b.ReportAllocs()
	n := int64(0)
	for b.Loop() {
		n++
		s.tick(now, n, now)
	}
	if s.txPackets < uint64(n) {
		b.Fatalf("sent %d of %d", s.txPackets, n)
	}
}

// BenchmarkReceivePacket measures the receive path for one packet on real
// loopback sockets: recvfrom, RTP parse, RFC 3550 statistics and jitter,
// jitter buffer insert, and the 20 ms playout (G.711 decode). The sender's
// sendto is included in the time.
func BenchmarkReceivePacket(b *testing.B) {
	e := testEngine(b)
	_, addr := sinkSocket(b)
	s := benchSession(b, e, addr)
	s.t0 = time.Now()
	tx, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.LocalAddr()))
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	h := rtp.Header{Version: 2, PayloadType: 0, SSRC: 1234}
	pkt := make([]byte, 12+160)
	r := s.rtpConn.NewReader(s.rxBuf[:]) // as readRTP reads
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.SequenceNumber = uint16(i)
		h.Timestamp = uint32(i * 160)
		i++
		if _, err := h.MarshalTo(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Write(pkt); err != nil {
			b.Fatal(err)
		}
		got, from, err := r.Read()
		if err != nil {
			b.Fatal(err)
		}
		s.handleRTP(got, from, time.Now())
		s.mu.Lock()
		s.playout()
		s.mu.Unlock()
	}
	if s.rxPackets != uint64(i) {
		b.Fatalf("received %d of %d", s.rxPackets, i)
	}
}

// loadStats collects one session's send intervals (written by one worker).
type loadStats struct {
	last   time.Time
	errors []time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runLoad plays a prompt on n sessions through the shared scheduler for
// warm+measure and reports the send interval error and CPU use. With duplex
// false every session sends to one loopback sink socket that is never read;
// with duplex true sessions are paired and send to each other, so each one
// also receives 50 packets/s (jitter buffer, playout, in-band DTMF
// detection), the full per-call load of a media server.
func runLoad(b *testing.B, n int, duplex bool, warm, measure time.Duration) {
	e := testEngine(b, func(c *Config) { c.PhaseSlots = benchSlots })
	_, addr := sinkSocket(b)
	prompt := make([]int16, 8000*60)
	for i := range prompt {
		prompt[i] = int16(i % 2000)
	}
	stats := make([]*loadStats, n)
	sessions := make([]*Session, n)
	var measuring atomic.Bool
	for i := range n {
		st := &loadStats{errors: make([]time.Duration, 0, int(measure/TickInterval)+50)}
		stats[i] = st
		s, err := e.NewSession(DefaultSessionConfig())
		if err != nil {
			b.Fatal(err)
		}
		s.onSend = func(time.Time, int64) {
			now := time.Now()
			if measuring.Load() && !st.last.IsZero() {
				d := now.Sub(st.last) - TickInterval
				st.errors = append(st.errors, d.Abs())
			}
			st.last = now
		}
		sessions[i] = s
	}
	for i, s := range sessions {
		m := sdpneg.Media{Remote: addr, RemoteRTCP: addr, Codec: sdpneg.PCMU, Direction: sdpneg.SendOnly}
		if duplex {
			peer := sessions[i^1]
			m.Remote = peer.LocalAddr()
			m.RemoteRTCP = netip.AddrPortFrom(loopback, m.Remote.Port()+1)
			m.Direction = sdpneg.SendRecv
		}
		if err := s.Start(m); err != nil {
			b.Fatal(err)
		}
		s.Play(NewPCMSource(prompt))
	}
	time.Sleep(warm)
	for _, w := range e.sched.workers {
		w.ticks.Store(0)
		w.workNs.Store(0)
		w.maxNs.Store(0)
	}
	late0 := histogramCounts(b, e.metrics.TickLateness)
	measuring.Store(true)
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(measure)
	measuring.Store(false)
	cpu, wall := cpuTime()-c0, time.Since(t0)
	late1 := histogramCounts(b, e.metrics.TickLateness)
	var ticks, workNs, maxNs int64
	for _, w := range e.sched.workers {
		ticks += w.ticks.Load()
		workNs += w.workNs.Load()
		maxNs = max(maxNs, w.maxNs.Load())
	}
	var all []time.Duration
	var received, lost, late uint64
	for i, s := range sessions {
		st := s.Stats()
		_ = s.Close()
		all = append(all, stats[i].errors...)
		received += st.PacketsReceived
		lost += uint64(max(st.PacketsLost, 0))
		late += st.PacketsLate
	}
	if duplex {
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(late), "late")
		if received == 0 {
			b.Fatal("nothing received")
		}
	}
	if len(all) == 0 {
		b.Fatal("no packets measured")
	}
	slices.Sort(all)
	p := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-interval-err-us")
	b.ReportMetric(p(0.99), "p99-interval-err-us")
	b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-interval-err-us")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds()/float64(n), "cpu-%core-per-call")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%core-total")
	b.ReportMetric(float64(len(all))/wall.Seconds(), "packets/s")
	b.ReportMetric(histogramQuantile(late0, late1, 0.99)*1e6, "wake-late-p99-le-us")
	if ticks > 0 {
		b.ReportMetric(float64(workNs)/float64(ticks)/1e3, "avg-burst-work-us")
		b.ReportMetric(float64(maxNs)/1e3, "max-burst-work-us")
	}
}

// histogramCounts returns the cumulative bucket counts of h with their
// upper bounds, the last one +Inf.
func histogramCounts(b *testing.B, h prometheus.Histogram) [][2]float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	var out [][2]float64
	for _, bk := range m.GetHistogram().GetBucket() {
		out = append(out, [2]float64{bk.GetUpperBound(), float64(bk.GetCumulativeCount())})
	}
	return append(out, [2]float64{math.Inf(1), float64(m.GetHistogram().GetSampleCount())})
}

// histogramQuantile returns the upper bound of the bucket holding quantile
// q of the observations made between the snapshots a and b.
func histogramQuantile(a, b [][2]float64, q float64) float64 {
	total := b[len(b)-1][1] - a[len(a)-1][1]
	for i := range b {
		if b[i][1]-a[i][1] >= q*total {
			return b[i][0]
		}
	}
	return math.Inf(1)
}

// BenchmarkScheduler runs N concurrent calls playing a prompt through the
// shared scheduler on loopback (1 s warm-up, 3 s measured), send only.
func BenchmarkScheduler(b *testing.B) {
	for _, n := range benchCalls {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			for b.Loop() {
				runLoad(b, n, false, time.Second, 3*time.Second)
			}
		})
	}
}

// BenchmarkSchedulerDuplex is BenchmarkScheduler with sessions paired so
// that each one sends and receives 50 packets/s.
func BenchmarkSchedulerDuplex(b *testing.B) {
	for _, n := range benchCalls {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			for b.Loop() {
				runLoad(b, n, true, time.Second, 3*time.Second)
			}
		})
	}
}

// benchCalls are the call counts of BenchmarkScheduler; override with
// GVP_BENCH_CALLS=n1,n2.
var benchCalls = []int{500, 1500}

// benchSlots is Config.PhaseSlots in BenchmarkScheduler; override with
// GVP_BENCH_SLOTS=n (1 = one burst per worker per tick).
var benchSlots = DefaultPhaseSlots

func init() {
	if n, err := strconv.Atoi(os.Getenv("GVP_BENCH_SLOTS")); err == nil && n > 0 {
		benchSlots = n
	}
	if v := os.Getenv("GVP_BENCH_CALLS"); v != "" {
		benchCalls = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				benchCalls = append(benchCalls, n)
			}
		}
	}
}

// TestHotPathsDoNotAllocate guards the zero-allocation property of the
// per-packet send and receive paths.
func TestHotPathsDoNotAllocate(t *testing.T) {
	e := testEngine(t)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := newTestSession(t, e, DefaultSessionConfig())
	addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
	s.media = sdpneg.Media{Remote: addr, RemoteRTCP: addr, Codec: sdpneg.PCMU, TelephoneEvent: true, TelephoneEventPT: 101, Direction: sdpneg.SendRecv}
	s.remote, s.remoteRTCP, s.started = addr, addr, true
	s.t0 = time.Now()
	s.playback = &Playback{s: s, sources: []Source{NewPCMSource(make([]int16, 8000*60))}, done: make(chan struct{})}
	n := int64(0)
	if a := testing.AllocsPerRun(200, func() { n++; now := time.Now(); s.tick(now, n, now) }); a != 0 {
		t.Fatalf("send tick allocates %v per packet", a)
	}
	h := rtp.Header{Version: 2, SSRC: 5}
	pkt := make([]byte, 12+160)
	from := netip.MustParseAddrPort("127.0.0.1:9")
	i := 0
	if a := testing.AllocsPerRun(200, func() {
		h.SequenceNumber, h.Timestamp = uint16(i), uint32(i*160)
		i++
		_, _ = h.MarshalTo(pkt)
		s.handleRTP(pkt, from, time.Now())
	}); a != 0 {
		t.Fatalf("receive path allocates %v per packet", a)
	}
}
