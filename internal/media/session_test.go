package media

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opengvp/gvp/internal/media/g711"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	"github.com/opengvp/gvp/internal/media/wav"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func testEngine(t testing.TB, mutate ...func(*Config)) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BindAddr = loopback
	cfg.PortMin, cfg.PortMax = 40000, 44999
	cfg.PortHoldOff = 0
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func newTestSession(t testing.TB, e *Engine, cfg SessionConfig) *Session {
	t.Helper()
	s, err := e.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// negotiate runs an offer/answer between a (offerer) and b (answerer) and
// starts both sessions.
func negotiate(t testing.TB, a, b *Session, offerCfg, answerCfg sdpneg.Config) (sdpneg.Media, sdpneg.Media) {
	t.Helper()
	na, err := sdpneg.New(offerCfg, sdpneg.Local{Addr: loopback, Port: a.Port()})
	if err != nil {
		t.Fatal(err)
	}
	nb, err := sdpneg.New(answerCfg, sdpneg.Local{Addr: loopback, Port: b.Port()})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := na.Offer()
	if err != nil {
		t.Fatal(err)
	}
	answer, mb, err := nb.Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	ma, err := na.ParseAnswer(answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ma); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(mb); err != nil {
		t.Fatal(err)
	}
	return ma, mb
}

func loadFixture(t testing.TB, name string) []int16 {
	t.Helper()
	a, err := wav.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return a.To8kMono()
}

// waitFor polls cond until it holds or 10 s pass (a hang guard, not a
// timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPromptToRawReceiver plays the fixture to a plain UDP socket and checks
// every packet: count, payload, sequence numbers, timestamps, marker, SSRC.
func TestPromptToRawReceiver(t *testing.T) {
	e := testEngine(t)
	cfg := DefaultSessionConfig()
	cfg.SendSilence = false
	s := newTestSession(t, e, cfg)
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	rtcpRx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtcpRx.Close()
	remote := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	err = s.Start(sdpneg.Media{Remote: remote, RemoteRTCP: rtcpRx.LocalAddr().(*net.UDPAddr).AddrPort(),
		Codec: sdpneg.PCMU, Ptime: 20 * time.Millisecond, Direction: sdpneg.SendRecv})
	if err != nil {
		t.Fatal(err)
	}
	samples := loadFixture(t, "one_two_three_8k_ulaw.wav")
	// Two prompts back to back: timestamps must continue across them.
	pb := s.Play(NewPCMSource(samples), NewPCMSource(samples[:8000]))
	<-pb.Done()
	if err := pb.Err(); err != nil {
		t.Fatal(err)
	}
	wantPackets := (len(samples) + 8000) / frameSamples
	if pb.Frames() != int64(wantPackets) {
		t.Fatalf("played %d frames, want %d", pb.Frames(), wantPackets)
	}
	expected := make([]byte, len(samples)+8000)
	g711.EncodeUlaw(expected, append(append([]int16{}, samples...), samples[:8000]...))

	var p rtp.Packet
	var prevTS uint32
	buf := make([]byte, 1500)
	for i := range wantPackets {
		_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if !p.Marker {
				t.Fatal("first packet without marker bit")
			}
		} else if p.Marker {
			t.Fatalf("marker on packet %d", i)
		}
		if p.PayloadType != 0 || len(p.Payload) != frameSamples || p.SSRC != s.ssrc {
			t.Fatalf("packet %d: pt %d len %d ssrc %x", i, p.PayloadType, len(p.Payload), p.SSRC)
		}
		if p.SequenceNumber != s.seq-uint16(wantPackets)+uint16(i) {
			t.Fatalf("packet %d: seq %d", i, p.SequenceNumber)
		}
		wantTS := p.Timestamp
		if i > 0 {
			wantTS = prevTS + frameSamples
		}
		if p.Timestamp != wantTS {
			t.Fatalf("packet %d: ts %d, want %d", i, p.Timestamp, wantTS)
		}
		prevTS = p.Timestamp
		if string(p.Payload) != string(expected[i*frameSamples:(i+1)*frameSamples]) {
			t.Fatalf("packet %d payload differs from the prompt", i)
		}
	}
	// Nothing more: silence is off.
	_ = rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := rx.Read(buf); err == nil {
		t.Fatal("packet sent after the prompt with SendSilence off")
	}
	// A new prompt after the gap starts a talkspurt: marker, timestamp
	// advanced by the elapsed time (a multiple of 160).
	pb = s.Play(NewPCMSource(samples[:frameSamples]))
	<-pb.Done()
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := rx.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if !p.Marker || (p.Timestamp-prevTS)%frameSamples != 0 || p.Timestamp-prevTS < 5*frameSamples {
		t.Fatalf("talkspurt: marker %v ts delta %d", p.Marker, p.Timestamp-prevTS)
	}
}

// jitterEmpty reports whether s has played out everything it received.
func jitterEmpty(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jb.count == 0 && s.jb.cur < 0
}

// digitCollector gathers digits delivered by a session.
type digitCollector struct {
	mu     sync.Mutex
	digits []Digit
}

func (c *digitCollector) add(d Digit) { c.mu.Lock(); c.digits = append(c.digits, d); c.mu.Unlock() }
func (c *digitCollector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, d := range c.digits {
		b.WriteRune(d.Digit)
	}
	return b.String()
}

func TestRFC4733BetweenSessions(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := testEngine(t, func(c *Config) { c.Registerer = reg })
	var got digitCollector
	a := newTestSession(t, e, DefaultSessionConfig())
	bcfg := DefaultSessionConfig()
	bcfg.OnDigit = got.add
	b := newTestSession(t, e, bcfg)
	ma, mb := negotiate(t, a, b, sdpneg.DefaultConfig(), sdpneg.DefaultConfig())
	if !ma.TelephoneEvent || !mb.TelephoneEvent {
		t.Fatal("telephone-event not negotiated")
	}
	const digits = "1234567890*#ABCD55"
	if err := a.SendDigits(digits, 80*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "digits", func() bool { return len(got.String()) >= len(digits) })
	// Let every retransmitted end packet arrive, then close: nothing more
	// may be delivered.
	time.Sleep(200 * time.Millisecond)
	_ = a.Close()
	_ = b.Close()
	if got.String() != digits {
		t.Fatalf("received %q, want %q", got.String(), digits)
	}
	for _, d := range got.digits {
		if d.Method != MethodRFC4733 || d.Duration != 80*time.Millisecond {
			t.Fatalf("digit %+v", d)
		}
	}
	if v := testutil.ToFloat64(e.Metrics().Digits.WithLabelValues(MethodRFC4733)); v != float64(len(digits)) {
		t.Fatalf("digit metric %v", v)
	}
	if v := testutil.ToFloat64(e.Metrics().PacketsSent); v == 0 {
		t.Fatal("packets sent metric not incremented")
	}
}

type sinkFunc func([]int16)

func (f sinkFunc) WriteFrame(s []int16) { f(s) }

func TestInbandDTMFBetweenSessions(t *testing.T) {
	e := testEngine(t)
	var got digitCollector
	a := newTestSession(t, e, DefaultSessionConfig())
	bcfg := DefaultSessionConfig()
	bcfg.OnDigit = got.add
	b := newTestSession(t, e, bcfg)
	noTE := sdpneg.DefaultConfig()
	noTE.TelephoneEvent = false
	negotiate(t, a, b, noTE, sdpneg.DefaultConfig())
	if err := a.SendDigits("1", 0); !errors.Is(err, ErrNoTelephoneEvent) {
		t.Fatalf("SendDigits without telephone-event: %v", err)
	}
	pb := a.Play(NewPCMSource(loadFixture(t, "dtmf_123456789s0p.wav")), NewSilenceSource(200*time.Millisecond))
	<-pb.Done()
	waitFor(t, "in-band digits", func() bool { return len(got.String()) >= 12 })
	time.Sleep(100 * time.Millisecond)
	if got.String() != "123456789*0#" {
		t.Fatalf("detected %q", got.String())
	}
	if got.digits[0].Method != MethodInband {
		t.Fatalf("method %q", got.digits[0].Method)
	}
}

// quietConfig sends nothing between prompts, so a receiver's jitter buffer
// drains after a prompt.
func quietConfig() SessionConfig {
	c := DefaultSessionConfig()
	c.SendSilence = false
	return c
}

func TestSpeechGivesNoInbandDigits(t *testing.T) {
	e := testEngine(t)
	var got digitCollector
	a := newTestSession(t, e, quietConfig())
	bcfg := DefaultSessionConfig()
	bcfg.OnDigit = got.add
	bcfg.Inband = InbandOn
	b := newTestSession(t, e, bcfg)
	negotiate(t, a, b, sdpneg.DefaultConfig(), sdpneg.DefaultConfig())
	var voiced atomic.Int32
	b.SetSink(sinkFunc(func(frame []int16) {
		for _, v := range frame {
			if v != 0 {
				voiced.Add(1)
				return
			}
		}
	}))
	speech := loadFixture(t, "one_two_three_8k_ulaw.wav")
	pb := a.Play(NewPCMSource(speech))
	<-pb.Done()
	// Wait until the receiver has played out (and analysed) the speech.
	waitFor(t, "speech played out", func() bool {
		return b.Stats().PacketsReceived >= uint64(len(speech)/frameSamples) && jitterEmpty(b)
	})
	if voiced.Load() < 50 {
		t.Fatalf("only %d voiced frames reached the receiver", voiced.Load())
	}
	if got.String() != "" {
		t.Fatalf("speech detected as %q", got.String())
	}
}

func TestRecordingAndBargeIn(t *testing.T) {
	e := testEngine(t)
	a := newTestSession(t, e, quietConfig())
	b := newTestSession(t, e, DefaultSessionConfig())
	pcma := sdpneg.DefaultConfig()
	pcma.Codecs = []sdpneg.Codec{sdpneg.PCMA}
	negotiate(t, a, b, sdpneg.DefaultConfig(), pcma)
	if a.Media().Codec != sdpneg.PCMA {
		t.Fatalf("codec %+v", a.Media().Codec)
	}
	path := filepath.Join(t.TempDir(), "rec.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wav.NewWriter(f, wav.EncodingPCM16)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(w)
	b.SetSink(rec)
	speech := loadFixture(t, "one_two_three_8k_ulaw.wav")
	pb := a.Play(NewPCMSource(speech))
	<-pb.Done()
	waitFor(t, "received audio played out", func() bool {
		return b.Stats().PacketsReceived >= uint64(len(speech)/frameSamples) && jitterEmpty(b)
	})
	b.SetSink(nil)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := wav.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The recording contains the whole prompt (through A-law) somewhere.
	energy := func(s []int16) (e float64) {
		for _, v := range s {
			e += float64(v) * float64(v)
		}
		return e
	}
	if len(got.Samples) < len(speech) || energy(got.Samples) < 0.8*energy(speech) {
		t.Fatalf("recording %d samples, energy %.3g vs prompt %.3g", len(got.Samples), energy(got.Samples), energy(speech))
	}
	if rec.Dropped() != 0 {
		t.Fatalf("recorder dropped %d frames", rec.Dropped())
	}

	// Barge-in: a digit from B stops A's long prompt.
	long := make([]int16, 8000*60)
	pb = a.Play(NewPCMSource(long))
	other := a.Play(NewPCMSource(long)) // replaces pb
	if err := pb.Err(); !errors.Is(err, ErrStopped) {
		t.Fatalf("replaced playback: %v", err)
	}
	other.Stop()
	if err := other.Err(); !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped playback: %v", err)
	}
	pb = a.Play(NewPCMSource(long))
	_ = a.Close()
	if err := pb.Err(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("playback after close: %v", err)
	}
}

func TestSymmetricRTPAndRTCP(t *testing.T) {
	e := testEngine(t)
	a := newTestSession(t, e, DefaultSessionConfig())
	bcfg := DefaultSessionConfig()
	bcfg.SymmetricRTP = true
	bcfg.RTCPInterval = 100 * time.Millisecond
	b := newTestSession(t, e, bcfg)
	a.cfg.RTCPInterval = 100 * time.Millisecond
	// B is told a wrong address for A (as behind a NAT); it must latch to
	// where A's packets come from.
	wrong, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	wrongAddr := wrong.LocalAddr().(*net.UDPAddr).AddrPort()
	mb := sdpneg.Media{Remote: wrongAddr, RemoteRTCP: wrongAddr, Codec: sdpneg.PCMU, Direction: sdpneg.SendRecv}
	ma := sdpneg.Media{Remote: b.LocalAddr(), RemoteRTCP: netip.AddrPortFrom(loopback, b.LocalAddr().Port()+1), Codec: sdpneg.PCMU, Direction: sdpneg.SendRecv}
	if err := a.Start(ma); err != nil {
		t.Fatal(err)
	}
	// A sends silence; once B latches, A receives B's silence.
	if err := b.Start(mb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B's packets at A", func() bool { return a.Stats().PacketsReceived > 10 })
	waitFor(t, "RTCP reports", func() bool {
		sa, sb := a.Stats(), b.Stats()
		return sa.RTCPReceived > 2 && sb.RTCPReceived > 2 && sa.RTT > 0
	})
	sa := a.Stats()
	if sa.PacketsLost != 0 || sa.RemoteLost != 0 || sa.RTT > time.Second {
		t.Fatalf("stats %+v", sa)
	}
	if sa.Jitter > 20*time.Millisecond {
		t.Fatalf("loopback jitter %v", sa.Jitter)
	}
}

func TestEnginePortHoldOff(t *testing.T) {
	e := testEngine(t, func(c *Config) {
		c.PortMin, c.PortMax = 44990, 44991 // a single pair
		c.PortHoldOff = time.Hour
	})
	s, err := e.NewSession(DefaultSessionConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.Port() != 44990 || s.LocalAddr().Port() != 44990 {
		t.Fatalf("port %d", s.Port())
	}
	if _, err := e.NewSession(DefaultSessionConfig()); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("second session: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewSession(DefaultSessionConfig()); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("port reused during hold-off: %v", err)
	}
	if st := e.Ports().Stats(); st.HeldOff != 1 || st.InUse != 0 {
		t.Fatalf("port stats %+v", st)
	}
}

func TestConfigValidation(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultSessionConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Workers = 0
	if _, err := NewEngine(c); err == nil {
		t.Fatal("zero workers accepted")
	}
	sc := DefaultSessionConfig()
	sc.JitterMax = 100
	if sc.Validate() == nil {
		t.Fatal("jitter max 100 accepted")
	}
}

// TestSenderReports checks the SRs a session sends: SSRC, packet and octet
// counts, and NTP/RTP timestamps that advance together.
func TestSenderReports(t *testing.T) {
	e := testEngine(t)
	cfg := DefaultSessionConfig()
	cfg.RTCPInterval = 100 * time.Millisecond
	cfg.CNAME = "gvp-sr-test"
	s := newTestSession(t, e, cfg)
	rtpRx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtpRx.Close()
	rtcpRx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rtcpRx.Close()
	err = s.Start(sdpneg.Media{
		Remote:     rtpRx.LocalAddr().(*net.UDPAddr).AddrPort(),
		RemoteRTCP: rtcpRx.LocalAddr().(*net.UDPAddr).AddrPort(),
		Codec:      sdpneg.PCMU, Direction: sdpneg.SendRecv,
	})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	var srs []rtcpInfo
	for len(srs) < 3 {
		_ = rtcpRx.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := rtcpRx.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var info rtcpInfo
		if err := parseRTCP(buf[:n], &info); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(buf[:n]), "gvp-sr-test") {
			t.Fatal("SDES CNAME missing")
		}
		if info.HaveSR {
			srs = append(srs, info)
		}
	}
	for i, sr := range srs {
		if sr.SRSSRC != s.ssrc || sr.SR.Octets != sr.SR.Packets*frameSamples || sr.SR.Packets == 0 {
			t.Fatalf("SR %d: %+v", i, sr)
		}
		if i == 0 {
			continue
		}
		prev := srs[i-1].SR
		ntpDelta := time.Duration(float64(sr.SR.NTP-prev.NTP) / (1 << 32) * float64(time.Second))
		rtpDelta := time.Duration(sr.SR.RTPTime-prev.RTPTime) * time.Second / 8000
		if d := (ntpDelta - rtpDelta).Abs(); d > time.Millisecond {
			t.Fatalf("SR %d: NTP advanced %v but RTP %v", i, ntpDelta, rtpDelta)
		}
		if sr.SR.Packets <= prev.Packets {
			t.Fatalf("SR %d: packet count did not grow", i)
		}
	}
}

// FuzzHandleRTP feeds arbitrary datagrams to the RTP receive path.
func FuzzHandleRTP(f *testing.F) {
	h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 9}
	pkt, _ := h.Marshal()
	f.Add(append(pkt, make([]byte, 160)...))
	h.PayloadType, h.Padding = 101, true
	ev, _ := h.Marshal()
	f.Add(append(ev, 1, 0x8A, 0, 160, 0, 0, 2))
	h.CSRC = []uint32{1, 2}
	h.Extension, h.ExtensionProfile = true, 0xBEDE
	_ = h.SetExtension(1, []byte{1, 2})
	ext, _ := h.Marshal()
	f.Add(ext)
	e := testEngine(f)
	s := newTestSession(f, e, DefaultSessionConfig())
	s.media = sdpneg.Media{Codec: sdpneg.PCMU, TelephoneEvent: true, TelephoneEventPT: 101, Direction: sdpneg.SendRecv}
	s.started = true
	s.t0 = time.Now()
	from := netip.MustParseAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, b []byte) {
		s.handleRTP(b, from, time.Now())
		s.mu.Lock()
		s.playout()
		s.mu.Unlock()
	})
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	testEngine(t, func(c *Config) { c.Registerer = reg })
	cfg := DefaultConfig()
	cfg.BindAddr = loopback
	cfg.Registerer = reg
	if _, err := NewEngine(cfg); err == nil {
		t.Fatal("second engine on the same registry accepted")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"gvp_mcp_rtp_packets_sent_total", "gvp_mcp_rtp_sessions", "gvp_mcp_rtp_port_pairs_in_use"} {
		if !names[want] {
			t.Errorf("metric %s not registered (have %v)", want, names)
		}
	}
}
