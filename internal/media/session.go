package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/opengvp/gvp/internal/media/dtmf"
	"github.com/opengvp/gvp/internal/media/g711"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	"github.com/opengvp/gvp/internal/udpio"
)

// Session defaults.
const (
	// DefaultRTCPInterval is the interval between RTCP reports.
	DefaultRTCPInterval = 5 * time.Second
	// DefaultDigitDuration is the length of a DTMF digit sent with
	// SendDigits.
	DefaultDigitDuration = 100 * time.Millisecond
	// digitGapTicks is the pause between two sent digits, in ticks (60 ms).
	digitGapTicks = 3
	// maxPendingDigits bounds the digits queued for delivery in one tick.
	maxPendingDigits = 16
	// rtpHeaderLen is the length of an RTP header without CSRC/extension.
	rtpHeaderLen = 12
	// recvBufLen is the receive buffer size (an Ethernet MTU).
	recvBufLen = 1500
)

// InbandMode selects when in-band DTMF detection runs on received audio.
type InbandMode int

// In-band detection modes.
const (
	// InbandAuto detects in-band tones only when telephone-event was not
	// negotiated (the default).
	InbandAuto InbandMode = iota
	// InbandOn always runs the detector.
	InbandOn
	// InbandOff never runs it.
	InbandOff
)

// Digit is a DTMF digit received on a session.
type Digit struct {
	Digit    rune          // '0'-'9', '*', '#', 'A'-'D'
	Method   string        // MethodRFC4733 or MethodInband
	Duration time.Duration // tone length (as far as known when delivered)
}

// Sink receives the audio of the remote party: one frame of FrameSamples
// 8 kHz samples every 20 ms (silence while nothing is received), after the
// jitter buffer. WriteFrame runs on the shared scheduler and must not block
// or keep frame; see Recorder for writing to a file.
type Sink interface {
	WriteFrame(frame []int16)
}

// SessionConfig configures one session. Start from DefaultSessionConfig.
type SessionConfig struct {
	// SendSilence sends silence frames while no prompt plays (default
	// true); when false nothing is sent and the next prompt starts a new
	// talkspurt with the marker bit.
	SendSilence bool
	// SymmetricRTP sends RTP and RTCP to the source address of the first
	// packet received instead of the SDP address (default false).
	SymmetricRTP bool
	// Inband selects in-band DTMF detection (default InbandAuto).
	Inband InbandMode
	// OnDigit is called once per received digit. It runs on a receive
	// goroutine or on the scheduler and must not block; it may call
	// Session methods (for example Playback.Stop for barge-in).
	OnDigit func(Digit)
	// JitterMin and JitterMax bound the adaptive jitter buffer depth, in
	// 20 ms frames (default 2 and 10).
	JitterMin, JitterMax int
	// RTCPInterval is the RTCP report interval (default 5 s).
	RTCPInterval time.Duration
	// DTMFEndTimeout finalises an RFC 4733 event whose end packets were
	// lost (default dtmf.DefaultEndTimeout).
	DTMFEndTimeout time.Duration
	// CNAME is the RTCP canonical name (default random).
	CNAME string
}

// DefaultSessionConfig returns the default session configuration.
func DefaultSessionConfig() SessionConfig {
	return SessionConfig{
		SendSilence:    true,
		Inband:         InbandAuto,
		JitterMin:      DefaultJitterMin,
		JitterMax:      DefaultJitterMax,
		RTCPInterval:   DefaultRTCPInterval,
		DTMFEndTimeout: dtmf.DefaultEndTimeout,
	}
}

// Validate reports configuration errors.
func (c SessionConfig) Validate() error {
	if c.JitterMin < 1 || c.JitterMax < c.JitterMin || c.JitterMax > jbSlots-4 {
		return fmt.Errorf("media: jitter depth %d-%d frames out of range 1-%d", c.JitterMin, c.JitterMax, jbSlots-4)
	}
	if c.RTCPInterval <= 0 {
		return fmt.Errorf("media: RTCP interval %v must be positive", c.RTCPInterval)
	}
	if c.DTMFEndTimeout <= 0 {
		return fmt.Errorf("media: DTMF end timeout %v must be positive", c.DTMFEndTimeout)
	}
	if len(c.CNAME) > 255 {
		return errors.New("media: CNAME longer than 255 bytes")
	}
	return nil
}

// ErrNoTelephoneEvent is returned by SendDigits when telephone-event was
// not negotiated.
var ErrNoTelephoneEvent = errors.New("telephone-event not negotiated")

// ErrNotStarted is returned by methods that need a started session.
var ErrNotStarted = errors.New("media session not started")

// Stats is a snapshot of a session's counters.
type Stats struct {
	PacketsSent     uint64
	BytesSent       uint64 // payload bytes
	PacketsReceived uint64
	BytesReceived   uint64 // payload bytes
	// PacketsLost is the RFC 3550 cumulative loss (expected - received).
	PacketsLost int64
	// PacketsLate counts packets dropped because they arrived after their
	// playout time.
	PacketsLate uint64
	// PacketsConcealed counts packets missing at playout.
	PacketsConcealed uint64
	Duplicates       uint64
	// Jitter is the RFC 3550 A.8 interarrival jitter of received audio.
	Jitter time.Duration
	// RemoteFractionLost, RemoteLost and RemoteJitter are the peer's view
	// of our stream, from its last RTCP report.
	RemoteFractionLost float64
	RemoteLost         int32
	RemoteJitter       time.Duration
	// RTT is the round-trip time from the peer's last report (0 if unknown).
	RTT          time.Duration
	RTCPSent     uint64
	RTCPReceived uint64
	RemoteBye    bool
	DigitsRFC    uint64
	DigitsInband uint64
}

// rxStats implements RFC 3550 appendix A.1, A.3 and A.8 for one source.
type rxStats struct {
	init          bool
	ssrc          uint32
	maxSeq        uint16
	cycles        uint32
	baseSeq       uint32
	badSeq        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	transit       int32
	haveTransit   bool
	jitterQ4      uint32 // jitter << 4
}

const (
	maxDropout  = 3000
	maxMisorder = 100
)

func (r *rxStats) reset(ssrc uint32, seq uint16) {
	*r = rxStats{init: true, ssrc: ssrc, maxSeq: seq, baseSeq: uint32(seq), badSeq: 1 << 17}
}

// update registers seq; it returns false for a packet to discard.
func (r *rxStats) update(seq uint16) bool {
	udelta := seq - r.maxSeq
	switch {
	case udelta < maxDropout:
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	case udelta <= 0xFFFF-maxMisorder:
		if uint32(seq) == r.badSeq {
			r.reset(r.ssrc, seq) // two sequential packets: the sender restarted
		} else {
			r.badSeq = uint32(seq+1) & 0xFFFF
			return false
		}
	default:
		// duplicate or reordered packet
	}
	r.received++
	return true
}

func (r *rxStats) extMax() uint32 { return r.cycles + uint32(r.maxSeq) }

func (r *rxStats) lost() int64 {
	expected := int64(r.extMax()) - int64(r.baseSeq) + 1
	return expected - int64(r.received)
}

// jitterUpdate applies RFC 3550 A.8 with arrival and ts in samples.
func (r *rxStats) jitterUpdate(arrival, ts uint32) {
	transit := int32(arrival - ts)
	if r.haveTransit {
		d := transit - r.transit
		if d < 0 {
			d = -d
		}
		r.jitterQ4 += uint32(d) - ((r.jitterQ4 + 8) >> 4)
	}
	r.transit, r.haveTransit = transit, true
}

// Session is the media of one call: an RTP/RTCP socket pair, the sending
// state driven by the shared scheduler, and the receiving state fed by one
// goroutine per socket. Its methods are safe for concurrent use.
type Session struct {
	e        *Engine
	cfg      SessionConfig
	port     int
	rtpConn  *udpio.Conn
	rtcpConn *udpio.Conn
	readers  sync.WaitGroup

	mu         sync.Mutex
	started    bool
	closed     bool
	media      sdpneg.Media
	remote     netip.AddrPort
	remoteRTCP netip.AddrPort
	latched    bool
	worker     *worker
	phase      int // the worker phase sending for this session
	silence    byte
	inband     bool

	// sending
	ssrc      uint32
	seq       uint16
	tsBase    uint32
	n0        int64 // first tick, -1 before it
	t0        time.Time
	lastSent  bool
	txHdr     rtp.Header
	sendBuf   [rtpHeaderLen + maxPayload]byte
	frame     [frameSamples]int16
	playback  *Playback
	digitQ    []rune
	digitDur  int
	gen       *dtmf.Generator
	genTS     uint32
	gapTicks  int
	txPackets uint64
	txOctets  uint64
	onSend    func(now time.Time, n int64) // test hook, nil in production

	// receiving (rxBuf and rxHdr belong to the RTP reader goroutine)
	rxBuf      [recvBufLen]byte
	rxHdr      rtp.Header
	rtcpRxBuf  [recvBufLen]byte
	rtcpInfo   rtcpInfo
	jb         *jitterBuffer
	rs         rxStats
	rxPackets  uint64
	rxOctets   uint64
	lostMetric int64
	dtmfRx     *dtmf.Receiver
	detector   *dtmf.Detector
	sink       Sink
	playBuf    [frameSamples]byte
	pcm        [frameSamples]int16
	pending    [maxPendingDigits]Digit
	npending   int
	stats      Stats

	// rtcp
	rtcpBuf   [rtcpBufLen]byte
	nextRTCP  time.Time
	lastSRMid uint32
	lastSRAt  time.Time
	cname     string
}

func newSession(e *Engine, cfg SessionConfig, port int, rtpConn, rtcpConn *net.UDPConn) *Session {
	s := &Session{
		e: e, cfg: cfg, port: port, rtpConn: udpio.New(rtpConn), rtcpConn: udpio.New(rtcpConn),
		ssrc:   rand.Uint32(),
		seq:    uint16(rand.Uint32()),
		tsBase: rand.Uint32(),
		n0:     -1,
		jb:     newJitterBuffer(cfg.JitterMin, cfg.JitterMax),
		cname:  cfg.CNAME,
	}
	if s.cname == "" {
		s.cname = fmt.Sprintf("gvp-%016x", rand.Uint64())
	}
	s.dtmfRx = dtmf.NewReceiver(func(d dtmf.Digit) { s.queueDigit(d, MethodRFC4733) })
	s.dtmfRx.EndTimeout = cfg.DTMFEndTimeout
	s.detector = dtmf.NewDetector(func(d dtmf.Digit) { s.queueDigit(d, MethodInband) })
	return s
}

// queueDigit records a digit for delivery after the lock is released.
func (s *Session) queueDigit(d dtmf.Digit, method string) {
	if d.Digit == 0 {
		return // not a DTMF digit (e.g. flash)
	}
	if method == MethodRFC4733 {
		s.stats.DigitsRFC++
		s.e.metrics.digitsRFC4733.Inc()
	} else {
		s.stats.DigitsInband++
		s.e.metrics.digitsInband.Inc()
	}
	if s.npending < len(s.pending) {
		s.pending[s.npending] = Digit{Digit: d.Digit, Method: method, Duration: time.Duration(d.Duration) * time.Second / 8000}
		s.npending++
	}
}

// unlockAndDeliver releases s.mu and calls OnDigit for queued digits.
func (s *Session) unlockAndDeliver() {
	n := s.npending
	if n == 0 || s.cfg.OnDigit == nil {
		s.npending = 0
		s.mu.Unlock()
		return
	}
	var digits [maxPendingDigits]Digit
	copy(digits[:], s.pending[:n])
	s.npending = 0
	s.mu.Unlock()
	for _, d := range digits[:n] {
		s.cfg.OnDigit(d)
	}
}

// LocalAddr returns the local RTP address (RTCP is on the next port). When
// the engine binds to 0.0.0.0 the address is unspecified: put the host's
// media address in the SDP.
func (s *Session) LocalAddr() netip.AddrPort {
	return s.rtpConn.UDPConn().LocalAddr().(*net.UDPAddr).AddrPort()
}

// Port returns the local RTP port.
func (s *Session) Port() int { return s.port }

// Start begins sending and receiving with the negotiated media. Calling it
// again (after a re-INVITE) updates the remote address, codec and
// direction while keeping SSRC, sequence numbers and timestamps.
func (s *Session) Start(m sdpneg.Media) error {
	switch m.Codec.Name {
	case sdpneg.PCMU.Name, sdpneg.PCMA.Name:
	default:
		return fmt.Errorf("start media session: unsupported codec %q", m.Codec.Name)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	first := !s.started
	s.media = m
	if !s.latched || !s.cfg.SymmetricRTP {
		s.remote, s.remoteRTCP = m.Remote, m.RemoteRTCP
	}
	s.silence = g711.UlawSilence
	if m.Codec.Name == sdpneg.PCMA.Name {
		s.silence = g711.AlawSilence
	}
	s.jb.silence = s.silence
	s.inband = s.cfg.Inband == InbandOn || (s.cfg.Inband == InbandAuto && !m.TelephoneEvent)
	s.started = true
	s.mu.Unlock()
	if first {
		s.readers.Add(2)
		go s.readRTP()
		go s.readRTCP()
		s.mu.Lock()
		if !s.closed {
			s.worker, s.phase = s.e.sched.place(s)
		}
		s.mu.Unlock()
	}
	return nil
}

// Media returns the negotiated media in use.
func (s *Session) Media() sdpneg.Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media
}

// Play starts playing the sources one after the other, replacing (and
// stopping with ErrStopped) any playback in progress. The returned
// Playback reports completion and can be stopped for barge-in.
func (s *Session) Play(sources ...Source) *Playback {
	p := &Playback{s: s, sources: sources, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		p.finishLocked(ErrSessionClosed)
		return p
	}
	if s.playback != nil {
		s.playback.finishLocked(ErrStopped)
	}
	s.playback = p
	return p
}

// StopPlayback stops the playback in progress, if any (barge-in).
func (s *Session) StopPlayback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.playback != nil {
		s.playback.finishLocked(ErrStopped)
	}
}

// SendDigits queues DTMF digits to send as RFC 4733 events, each lasting d
// (0 means DefaultDigitDuration) with a 60 ms pause between digits. The
// prompt in progress is paused while digits are sent.
func (s *Session) SendDigits(digits string, d time.Duration) error {
	if d <= 0 {
		d = DefaultDigitDuration
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return ErrNotStarted
	}
	if !s.media.TelephoneEvent {
		return ErrNoTelephoneEvent
	}
	for _, c := range digits {
		if _, ok := dtmf.EventForDigit(c); !ok {
			return fmt.Errorf("send digits: invalid digit %q", c)
		}
	}
	s.digitDur = min(int(d*8000/time.Second), dtmf.MaxDuration)
	s.digitQ = append(s.digitQ, []rune(digits)...)
	return nil
}

// SetSink sets (or, with nil, removes) the receiver of the remote audio.
func (s *Session) SetSink(k Sink) {
	s.mu.Lock()
	s.sink = k
	s.mu.Unlock()
}

// Stats returns a snapshot of the session counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.PacketsSent, st.BytesSent = s.txPackets, s.txOctets
	st.PacketsReceived, st.BytesReceived = s.rxPackets, s.rxOctets
	if s.rs.init {
		st.PacketsLost = s.rs.lost()
	}
	st.PacketsLate, st.PacketsConcealed, st.Duplicates = s.jb.late, s.jb.lost, s.jb.duplicate
	st.Jitter = time.Duration(s.rs.jitterQ4>>4) * time.Second / 8000
	return st
}

// Close stops the session: the playback ends with ErrSessionClosed, a
// pending RFC 4733 digit is delivered, the sockets are closed and the port
// pair is released (reused only after the engine's hold-off). The sink is
// not closed.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.playback != nil {
		s.playback.finishLocked(ErrSessionClosed)
	}
	s.dtmfRx.Flush()
	s.updateLossMetricLocked()
	w, j := s.worker, s.phase
	s.unlockAndDeliver()
	if w != nil {
		w.remove(s, j)
	}
	err := errors.Join(s.rtpConn.Close(), s.rtcpConn.Close())
	s.readers.Wait()
	s.e.ports.Release(s.port)
	s.e.metrics.Sessions.Dec()
	if err != nil {
		return fmt.Errorf("close media session: %w", err)
	}
	return nil
}

func (s *Session) updateLossMetricLocked() {
	if !s.rs.init {
		return
	}
	if l := s.rs.lost(); l > s.lostMetric {
		s.e.metrics.PacketsLost.Add(float64(l - s.lostMetric))
		s.lostMetric = l
	}
}

// tick is called by the session's worker every 20 ms with the tick number
// n and the deadline due of the session's phase in that tick. It returns
// false once the session is closed.
func (s *Session) tick(now time.Time, n int64, due time.Time) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.n0 < 0 {
		s.n0 = n
		s.t0 = due
		s.nextRTCP = now.Add(s.cfg.RTCPInterval / 2)
	}
	s.dtmfRx.Poll(now)
	s.playout()
	if s.media.Direction.Sends() && s.remote.IsValid() {
		s.send(now, n)
	} else {
		s.lastSent = false
	}
	if !now.Before(s.nextRTCP) && s.remoteRTCP.IsValid() {
		s.sendRTCP(now)
		s.nextRTCP = now.Add(s.cfg.RTCPInterval)
	}
	s.unlockAndDeliver()
	return true
}

// playout moves one frame from the jitter buffer to the detector and sink.
func (s *Session) playout() {
	r := s.jb.pop(s.playBuf[:])
	if r < 0 {
		if s.sink != nil {
			clear(s.pcm[:])
			s.sink.WriteFrame(s.pcm[:])
		}
		return
	}
	if s.media.Codec.Name == sdpneg.PCMA.Name {
		g711.DecodeAlaw(s.pcm[:], s.playBuf[:])
	} else {
		g711.DecodeUlaw(s.pcm[:], s.playBuf[:])
	}
	if s.inband && s.media.Direction.Receives() {
		s.detector.Write(s.pcm[:])
	}
	if s.sink != nil {
		s.sink.WriteFrame(s.pcm[:])
	}
}

// send produces this tick's packet, if any.
func (s *Session) send(now time.Time, n int64) {
	ts := s.tsBase + uint32(n-s.n0)*frameSamples
	payload := s.sendBuf[rtpHeaderLen:]
	if !s.media.TelephoneEvent {
		s.gen, s.digitQ = nil, s.digitQ[:0] // renegotiated without events
	}
	if s.gen == nil && s.gapTicks == 0 && len(s.digitQ) > 0 {
		ev, _ := dtmf.EventForDigit(s.digitQ[0])
		s.digitQ = s.digitQ[1:]
		s.gen = dtmf.NewGenerator(ev, s.digitDur, frameSamples)
		s.genTS = ts
	}
	if s.gen != nil {
		m, marker, ok := s.gen.Next(payload)
		if ok {
			s.writeRTP(now, n, s.media.TelephoneEventPT, marker, s.genTS, m)
		}
		if s.gen.Done() {
			s.gen = nil
			s.gapTicks = digitGapTicks
		}
		s.lastSent = true
		return
	}
	if s.gapTicks > 0 {
		s.gapTicks--
	}
	have := false
	if s.playback != nil {
		have = s.playback.next(s.frame[:])
	}
	if !have {
		if !s.cfg.SendSilence {
			s.lastSent = false
			return
		}
		fill(payload[:frameSamples], s.silence)
	} else if s.media.Codec.Name == sdpneg.PCMA.Name {
		g711.EncodeAlaw(payload, s.frame[:])
	} else {
		g711.EncodeUlaw(payload, s.frame[:])
	}
	s.writeRTP(now, n, s.media.Codec.PayloadType, !s.lastSent, ts, frameSamples)
	s.lastSent = true
}

// writeRTP sends the packet whose payload (n bytes) is already in sendBuf.
func (s *Session) writeRTP(now time.Time, tick int64, pt uint8, marker bool, ts uint32, n int) {
	h := &s.txHdr
	h.Version = 2
	h.PayloadType = pt
	h.Marker = marker
	h.SequenceNumber = s.seq
	h.Timestamp = ts
	h.SSRC = s.ssrc
	if _, err := h.MarshalTo(s.sendBuf[:rtpHeaderLen]); err != nil {
		return
	}
	s.seq++
	if err := s.rtpConn.WriteTo(s.sendBuf[:rtpHeaderLen+n], s.remote); err != nil {
		return // ICMP errors and full buffers are not fatal for RTP
	}
	s.txPackets++
	s.txOctets += uint64(n)
	s.e.metrics.PacketsSent.Inc()
	s.e.metrics.BytesSent.Add(float64(n))
	if s.onSend != nil {
		s.onSend(now, tick)
	}
}

// sendRTCP sends an SR (or an RR when nothing was sent yet) with SDES.
func (s *Session) sendRTCP(now time.Time) {
	var rb *reportBlock
	var block reportBlock
	if s.rs.init {
		expected := s.rs.extMax() - s.rs.baseSeq + 1
		expInt := expected - s.rs.expectedPrior
		recvInt := s.rs.received - s.rs.receivedPrior
		s.rs.expectedPrior, s.rs.receivedPrior = expected, s.rs.received
		var frac uint8
		if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
			frac = uint8(lostInt << 8 / int64(expInt))
		}
		block = reportBlock{
			SSRC: s.rs.ssrc, FractionLost: frac, TotalLost: int32(s.rs.lost()),
			HighestSeq: s.rs.extMax(), Jitter: s.rs.jitterQ4 >> 4,
		}
		if !s.lastSRAt.IsZero() {
			block.LSR = s.lastSRMid
			block.DLSR = uint32(now.Sub(s.lastSRAt) * 65536 / time.Second)
		}
		rb = &block
	}
	var b []byte
	if s.txPackets > 0 {
		elapsed := now.Sub(s.t0)
		si := senderInfo{
			NTP:     ntpTime(now),
			RTPTime: s.tsBase + uint32(elapsed*8000/time.Second),
			Packets: uint32(s.txPackets),
			Octets:  uint32(s.txOctets),
		}
		b = appendSR(s.rtcpBuf[:0], s.ssrc, si, rb, s.cname)
	} else {
		b = appendRR(s.rtcpBuf[:0], s.ssrc, rb, s.cname)
	}
	if err := s.rtcpConn.WriteTo(b, s.remoteRTCP); err == nil {
		s.stats.RTCPSent++
	}
	s.updateLossMetricLocked()
}

func (s *Session) readRTP() {
	defer s.readers.Done()
	r := s.rtpConn.NewReader(s.rxBuf[:])
	for {
		b, from, err := r.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.handleRTP(b, from, time.Now())
	}
}

// handleRTP processes one received RTP packet.
func (s *Session) handleRTP(b []byte, from netip.AddrPort, now time.Time) {
	h := &s.rxHdr
	off, err := h.Unmarshal(b)
	if err != nil || h.Version != 2 {
		return
	}
	payload := b[off:]
	if h.Padding {
		if len(payload) == 0 || int(payload[len(payload)-1]) > len(payload) {
			return
		}
		payload = payload[:len(payload)-int(payload[len(payload)-1])]
	}
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		return
	}
	if s.cfg.SymmetricRTP && !s.latched {
		s.remote = from
		s.remoteRTCP = netip.AddrPortFrom(from.Addr(), from.Port()+1)
		s.latched = true
	}
	if !s.rs.init || h.SSRC != s.rs.ssrc {
		s.rs.reset(h.SSRC, h.SequenceNumber)
		s.jb.reset()
		s.dtmfRx.Reset()
		s.detector.Reset()
		s.lostMetric = 0
	}
	if !s.rs.update(h.SequenceNumber) {
		s.mu.Unlock()
		return
	}
	s.rxPackets++
	s.rxOctets += uint64(len(payload))
	s.e.metrics.PacketsReceived.Inc()
	s.e.metrics.BytesReceived.Add(float64(len(payload)))
	receives := s.media.Direction.Receives()
	switch {
	case s.media.TelephoneEvent && h.PayloadType == s.media.TelephoneEventPT:
		if receives {
			_ = s.dtmfRx.Packet(h.Timestamp, payload, now)
		}
	case h.PayloadType == s.media.Codec.PayloadType:
		if !s.t0.IsZero() {
			arrival := uint32(now.Sub(s.t0) * 8000 / time.Second)
			s.rs.jitterUpdate(arrival, h.Timestamp)
			s.jb.setJitter(s.rs.jitterQ4 >> 4)
		}
		if receives {
			late := s.jb.late
			s.jb.push(h.SequenceNumber, payload)
			if s.jb.late != late {
				s.e.metrics.PacketsLate.Inc()
			}
		}
	}
	s.unlockAndDeliver()
}

func (s *Session) readRTCP() {
	defer s.readers.Done()
	r := s.rtcpConn.NewReader(s.rtcpRxBuf[:])
	for {
		b, from, err := r.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.handleRTCP(b, from, time.Now())
	}
}

// handleRTCP processes one received compound RTCP packet.
func (s *Session) handleRTCP(b []byte, from netip.AddrPort, now time.Time) {
	info := &s.rtcpInfo
	if err := parseRTCP(b, info); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.stats.RTCPReceived++
	if s.cfg.SymmetricRTP && s.latched {
		s.remoteRTCP = from
	}
	if info.HaveSR {
		s.lastSRMid = uint32(info.SR.NTP >> 16)
		s.lastSRAt = now
	}
	for i := range info.NReport {
		r := &info.Reports[i]
		if r.SSRC != s.ssrc {
			continue
		}
		s.stats.RemoteFractionLost = float64(r.FractionLost) / 256
		s.stats.RemoteLost = r.TotalLost
		s.stats.RemoteJitter = time.Duration(r.Jitter) * time.Second / 8000
		if r.LSR != 0 {
			nowMid := uint32(ntpTime(now) >> 16)
			if rtt := int64(nowMid) - int64(r.LSR) - int64(r.DLSR); rtt >= 0 {
				s.stats.RTT = time.Duration(rtt) * time.Second / 65536
			}
		}
	}
	if info.Bye {
		s.stats.RemoteBye = true
	}
}
