// Package sdpneg implements the SDP offer/answer model of RFC 3264 for the
// audio calls gvp handles: G.711 (PCMU, PCMA) with RFC 4733
// telephone-event, over RTP/AVP.
//
// A [Negotiator] is created per call. It answers a remote offer
// ([Negotiator.Answer]), or builds a local offer ([Negotiator.Offer]) and
// reads the remote answer ([Negotiator.ParseAnswer]); each produces a
// [Media] describing where and how to send and receive RTP. When nothing in
// an offer is acceptable, Answer returns a *[NotAcceptableError], which a
// SIP user agent turns into 488 Not Acceptable Here.
package sdpneg

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// Codec is an RTP audio payload format.
type Codec struct {
	Name        string // encoding name as in a=rtpmap, e.g. "PCMU"
	PayloadType uint8  // RTP payload type
	ClockRate   int    // RTP clock rate in Hz
}

// The codecs this package negotiates. Their payload types are the static
// ones of RFC 3551.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// Defaults of [Config].
const (
	// DefaultPtime is the packetisation interval requested in a=ptime.
	DefaultPtime = 20 * time.Millisecond
	// DefaultTelephoneEventPT is the payload type offered for
	// telephone-event (answers keep the offerer's number).
	DefaultTelephoneEventPT = 101
	// DefaultTelephoneEvents is the a=fmtp event list offered.
	DefaultTelephoneEvents = "0-16"
	// DefaultSessionName is the s= line.
	DefaultSessionName = "gvp"
	// DefaultUsername is the user name of the o= line.
	DefaultUsername = "gvp"
	// maxPtime bounds the accepted a=ptime values.
	maxPtime = 200 * time.Millisecond
)

// Direction is an RFC 3264 media direction attribute, from the point of view
// of the side that wrote it.
type Direction int

// Directions. The zero value is SendRecv, the SDP default.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name.
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Sends reports whether the side using d sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the side using d receives media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// Reverse returns the direction as seen by the other side (sendonly and
// recvonly swap).
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

func directionOf(sends, receives bool) Direction {
	switch {
	case sends && receives:
		return SendRecv
	case sends:
		return SendOnly
	case receives:
		return RecvOnly
	}
	return Inactive
}

// Config holds the local media capabilities. The zero value is not valid;
// start from [DefaultConfig].
type Config struct {
	// Codecs lists the acceptable codecs in order of preference (default
	// PCMU, PCMA). When answering, the first of these that the offer
	// contains is chosen.
	Codecs []Codec
	// TelephoneEvent enables RFC 4733 telephone-event (default true).
	TelephoneEvent bool
	// TelephoneEventPT is the payload type used in offers (default 101).
	TelephoneEventPT uint8
	// Ptime is the packetisation interval written in a=ptime (default
	// 20 ms).
	Ptime time.Duration
	// Direction is the most this side is willing to do (default SendRecv);
	// the answer is the intersection with the mirrored offer.
	Direction Direction
	// SessionName is the s= line (default "gvp").
	SessionName string
	// Username is the o= user name (default "gvp").
	Username string
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Codecs:           []Codec{PCMU, PCMA},
		TelephoneEvent:   true,
		TelephoneEventPT: DefaultTelephoneEventPT,
		Ptime:            DefaultPtime,
		Direction:        SendRecv,
		SessionName:      DefaultSessionName,
		Username:         DefaultUsername,
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if len(c.Codecs) == 0 {
		return errors.New("sdpneg: no codecs configured")
	}
	for _, cd := range c.Codecs {
		if cd.Name == "" || cd.ClockRate <= 0 || cd.PayloadType > 127 {
			return fmt.Errorf("sdpneg: invalid codec %+v", cd)
		}
	}
	if c.TelephoneEvent && (c.TelephoneEventPT < 96 || c.TelephoneEventPT > 127) {
		return fmt.Errorf("sdpneg: telephone-event payload type %d is not dynamic (96-127)", c.TelephoneEventPT)
	}
	if c.Ptime <= 0 || c.Ptime > maxPtime || c.Ptime%(10*time.Millisecond) != 0 {
		return fmt.Errorf("sdpneg: ptime %v must be a multiple of 10 ms up to %v", c.Ptime, maxPtime)
	}
	if c.Direction < SendRecv || c.Direction > Inactive {
		return fmt.Errorf("sdpneg: invalid direction %d", c.Direction)
	}
	if c.SessionName == "" || c.Username == "" || strings.ContainsAny(c.SessionName+c.Username, " \r\n") {
		return errors.New("sdpneg: session name and user name must be non-empty tokens")
	}
	return nil
}

// NotAcceptableError reports an offer or answer with nothing usable in it;
// a SIP user agent answers such an offer with 488 Not Acceptable Here.
type NotAcceptableError struct {
	Reason string
}

func (e *NotAcceptableError) Error() string { return "sdp not acceptable: " + e.Reason }

// Media is the outcome of a negotiation: how the local side sends and
// receives the audio stream.
type Media struct {
	// Remote is where to send RTP. It is invalid (zero) when the remote
	// side gave no usable address (for example c=0.0.0.0 hold).
	Remote netip.AddrPort
	// RemoteRTCP is where to send RTCP (a=rtcp or the RTP port + 1).
	RemoteRTCP netip.AddrPort
	// Codec is the audio codec, with the payload type used on the wire.
	Codec Codec
	// TelephoneEventPT is the payload type of telephone-event; valid only
	// when TelephoneEvent is true.
	TelephoneEventPT uint8
	// TelephoneEvent reports whether RFC 4733 events were negotiated.
	TelephoneEvent bool
	// Ptime is the packetisation interval the remote side asked for
	// (a=ptime), or DefaultPtime when it did not say.
	Ptime time.Duration
	// Direction is the local direction: Direction.Sends tells whether to
	// send RTP, Direction.Receives whether to process what arrives.
	Direction Direction
}

// Local is the local transport address written into c= and m=.
type Local struct {
	Addr netip.Addr // local media IP address
	Port int        // local RTP port (RTCP is Port+1)
}

// Negotiator negotiates the media of one call. It keeps the o= session id
// and increments the version for every description it produces, as RFC 3264
// section 8 requires for re-offers. It is not safe for concurrent use.
type Negotiator struct {
	cfg     Config
	local   Local
	id      uint64
	version uint64
	offered []Codec // codecs in our last offer
}

// New returns a negotiator for one call.
func New(cfg Config, local Local) (*Negotiator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !local.Addr.IsValid() || local.Port <= 0 || local.Port > 65535 {
		return nil, fmt.Errorf("sdpneg: invalid local address %v port %d", local.Addr, local.Port)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := binary.BigEndian.Uint64(b[:]) >> 2 // keep it well inside int64 for picky parsers
	return &Negotiator{cfg: cfg, local: local, id: id, version: id}, nil
}

// SetLocal changes the local address used in later descriptions.
func (n *Negotiator) SetLocal(l Local) { n.local = l }

func (n *Negotiator) base() *sdp.SessionDescription {
	n.version++
	netType, addrType := "IN", "IP4"
	if n.local.Addr.Is6() && !n.local.Addr.Is4In6() {
		addrType = "IP6"
	}
	addr := n.local.Addr.Unmap().String()
	return &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: n.cfg.Username, SessionID: n.id, SessionVersion: n.version,
			NetworkType: netType, AddressType: addrType, UnicastAddress: addr,
		},
		SessionName:           sdp.SessionName(n.cfg.SessionName),
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: netType, AddressType: addrType, Address: &sdp.Address{Address: addr}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
	}
}

func ms(d time.Duration) string { return strconv.Itoa(int(d / time.Millisecond)) }

// Offer builds an offer with every configured codec in preference order
// plus telephone-event.
func (n *Negotiator) Offer() ([]byte, error) {
	s := n.base()
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: n.local.Port}, Protos: []string{"RTP", "AVP"}}}
	for _, c := range n.cfg.Codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PayloadType)))
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/%d", c.PayloadType, c.Name, c.ClockRate)))
	}
	if n.cfg.TelephoneEvent {
		pt := strconv.Itoa(int(n.cfg.TelephoneEventPT))
		md.MediaName.Formats = append(md.MediaName.Formats, pt)
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" "+DefaultTelephoneEvents))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", ms(n.cfg.Ptime)),
		sdp.NewPropertyAttribute(n.cfg.Direction.String()))
	s.MediaDescriptions = []*sdp.MediaDescription{md}
	n.offered = n.cfg.Codecs
	out, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal sdp offer: %w", err)
	}
	return out, nil
}

// rtpmap is one parsed a=rtpmap line.
type rtpmap struct {
	name string
	rate int
}

func parseRtpmaps(md *sdp.MediaDescription) map[uint8]rtpmap {
	m := make(map[uint8]rtpmap)
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		ptStr, rest, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			continue
		}
		parts := strings.Split(strings.TrimSpace(rest), "/")
		rate := 0
		if len(parts) > 1 {
			rate, _ = strconv.Atoi(parts[1])
		}
		m[uint8(pt)] = rtpmap{name: parts[0], rate: rate}
	}
	return m
}

// formatCodec identifies the payload format pt of a media description.
func formatCodec(pt uint8, maps map[uint8]rtpmap) (rtpmap, bool) {
	if r, ok := maps[pt]; ok {
		return r, true
	}
	// Static payload types need no rtpmap (RFC 3551 table 4).
	switch pt {
	case PCMU.PayloadType:
		return rtpmap{PCMU.Name, PCMU.ClockRate}, true
	case PCMA.PayloadType:
		return rtpmap{PCMA.Name, PCMA.ClockRate}, true
	}
	return rtpmap{}, false
}

func formats(md *sdp.MediaDescription) []uint8 {
	var out []uint8
	for _, f := range md.MediaName.Formats {
		if pt, err := strconv.ParseUint(f, 10, 7); err == nil {
			out = append(out, uint8(pt))
		}
	}
	return out
}

func directionAttr(attrs []sdp.Attribute) (Direction, bool) {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv":
			return SendRecv, true
		case "sendonly":
			return SendOnly, true
		case "recvonly":
			return RecvOnly, true
		case "inactive":
			return Inactive, true
		}
	}
	return SendRecv, false
}

func mediaDirection(s *sdp.SessionDescription, md *sdp.MediaDescription) Direction {
	if d, ok := directionAttr(md.Attributes); ok {
		return d
	}
	d, _ := directionAttr(s.Attributes)
	return d
}

// remoteAddrs returns the RTP and RTCP destinations of md. ok is false when
// the address is missing or unspecified (hold).
func remoteAddrs(s *sdp.SessionDescription, md *sdp.MediaDescription) (rtp, rtcp netip.AddrPort, ok bool) {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = s.ConnectionInformation
	}
	if ci == nil || ci.Address == nil || ci.NetworkType != "IN" {
		return rtp, rtcp, false
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil || addr.IsUnspecified() {
		return rtp, rtcp, false
	}
	port := md.MediaName.Port.Value
	if port <= 0 || port > 65535 {
		return rtp, rtcp, false
	}
	rtp = netip.AddrPortFrom(addr, uint16(port))
	rtcp = netip.AddrPortFrom(addr, uint16(port+1))
	if v, found := md.Attribute("rtcp"); found {
		// RFC 3605: a=rtcp:port [nettype addrtype address]
		f := strings.Fields(v)
		if len(f) > 0 {
			if p, err := strconv.ParseUint(f[0], 10, 16); err == nil && p > 0 {
				rtcp = netip.AddrPortFrom(addr, uint16(p))
			}
		}
		if len(f) == 4 {
			if a, err := netip.ParseAddr(f[3]); err == nil && !a.IsUnspecified() {
				rtcp = netip.AddrPortFrom(a, rtcp.Port())
			}
		}
	}
	return rtp, rtcp, true
}

func remotePtime(s *sdp.SessionDescription, md *sdp.MediaDescription) time.Duration {
	v, ok := md.Attribute("ptime")
	if !ok {
		v, ok = s.Attribute("ptime")
	}
	if !ok {
		return DefaultPtime
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 10 || f > float64(maxPtime/time.Millisecond) {
		return DefaultPtime
	}
	return time.Duration(f) * time.Millisecond
}

func isAudioAVP(md *sdp.MediaDescription) bool {
	return md.MediaName.Media == "audio" && strings.Join(md.MediaName.Protos, "/") == "RTP/AVP"
}

func fmtpFor(md *sdp.MediaDescription, pt uint8) (string, bool) {
	prefix := strconv.Itoa(int(pt)) + " "
	for _, a := range md.Attributes {
		if a.Key == "fmtp" && strings.HasPrefix(a.Value, prefix) {
			return strings.TrimSpace(a.Value[len(prefix):]), true
		}
	}
	return "", false
}

// Answer parses a remote offer and returns the answer and the negotiated
// media. The first audio RTP/AVP stream with a common codec is accepted;
// every other m-line is rejected with port 0, as RFC 3264 section 6
// requires. The codec is the first of Config.Codecs present in the offer,
// with the offerer's payload type; telephone-event keeps the offerer's
// payload type. The answer's direction mirrors the offer's (section 6.1),
// limited by Config.Direction. A *NotAcceptableError is returned when no
// stream can be accepted; other errors mean the offer could not be parsed.
func (n *Negotiator) Answer(offer []byte) ([]byte, Media, error) {
	var off sdp.SessionDescription
	if err := off.Unmarshal(offer); err != nil {
		return nil, Media{}, fmt.Errorf("parse sdp offer: %w", err)
	}
	if len(off.MediaDescriptions) == 0 {
		return nil, Media{}, &NotAcceptableError{Reason: "offer has no media"}
	}
	ans := n.base()
	var (
		media    Media
		accepted bool
	)
	for _, md := range off.MediaDescriptions {
		if !accepted && isAudioAVP(md) && md.MediaName.Port.Value != 0 {
			if am, m, ok := n.answerAudio(&off, md); ok {
				ans.MediaDescriptions = append(ans.MediaDescriptions, am)
				media, accepted = m, true
				continue
			}
		}
		ans.MediaDescriptions = append(ans.MediaDescriptions, rejected(md))
	}
	if !accepted {
		return nil, Media{}, &NotAcceptableError{Reason: "no audio stream with a supported codec"}
	}
	out, err := ans.Marshal()
	if err != nil {
		return nil, Media{}, fmt.Errorf("marshal sdp answer: %w", err)
	}
	return out, media, nil
}

// rejected returns the answer m-line refusing md (port 0).
func rejected(md *sdp.MediaDescription) *sdp.MediaDescription {
	name := md.MediaName
	name.Port = sdp.RangedPort{Value: 0}
	if len(name.Formats) > 1 {
		name.Formats = name.Formats[:1]
	}
	if len(name.Formats) == 0 {
		name.Formats = []string{"0"}
	}
	if len(name.Protos) == 0 {
		name.Protos = []string{"RTP", "AVP"}
	}
	if name.Media == "" {
		name.Media = "audio"
	}
	return &sdp.MediaDescription{MediaName: name}
}

func (n *Negotiator) answerAudio(s *sdp.SessionDescription, md *sdp.MediaDescription) (*sdp.MediaDescription, Media, bool) {
	maps := parseRtpmaps(md)
	offered := formats(md)
	var (
		m      Media
		found  bool
		tePT   uint8
		haveTE bool
	)
	for _, want := range n.cfg.Codecs {
		for _, pt := range offered {
			r, ok := formatCodec(pt, maps)
			if ok && strings.EqualFold(r.name, want.Name) && (r.rate == want.ClockRate || r.rate == 0) {
				m.Codec = Codec{Name: want.Name, PayloadType: pt, ClockRate: want.ClockRate}
				found = true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		return nil, Media{}, false
	}
	if n.cfg.TelephoneEvent {
		for _, pt := range offered {
			if r, ok := maps[pt]; ok && strings.EqualFold(r.name, "telephone-event") && r.rate == m.Codec.ClockRate {
				tePT, haveTE = pt, true
				break
			}
		}
	}
	m.TelephoneEvent, m.TelephoneEventPT = haveTE, tePT
	m.Ptime = remotePtime(s, md)
	remoteDir := mediaDirection(s, md)
	var addrOK bool
	m.Remote, m.RemoteRTCP, addrOK = remoteAddrs(s, md)
	// RFC 3264 section 6.1: sendonly is answered recvonly and vice versa.
	mirrored := remoteDir.Reverse()
	sends := mirrored.Sends() && n.cfg.Direction.Sends() && addrOK
	receives := mirrored.Receives() && n.cfg.Direction.Receives()
	m.Direction = directionOf(sends, receives)
	answerDir := m.Direction
	if !addrOK && remoteDir == SendRecv && n.cfg.Direction.Sends() {
		// Legacy hold (c=0.0.0.0): answer in kind, we simply do not send.
		answerDir = directionOf(true, receives)
	}

	am := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media: "audio", Port: sdp.RangedPort{Value: n.local.Port}, Protos: []string{"RTP", "AVP"},
		Formats: []string{strconv.Itoa(int(m.Codec.PayloadType))},
	}}
	am.Attributes = append(am.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/%d", m.Codec.PayloadType, m.Codec.Name, m.Codec.ClockRate)))
	if haveTE {
		pt := strconv.Itoa(int(tePT))
		am.MediaName.Formats = append(am.MediaName.Formats, pt)
		events := DefaultTelephoneEvents
		if f, ok := fmtpFor(md, tePT); ok && f != "" {
			events = f
		}
		am.Attributes = append(am.Attributes,
			sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
			sdp.NewAttribute("fmtp", pt+" "+events))
	}
	am.Attributes = append(am.Attributes,
		sdp.NewAttribute("ptime", ms(n.cfg.Ptime)),
		sdp.NewPropertyAttribute(answerDir.String()))
	return am, m, true
}

// ParseAnswer reads the remote answer to the last [Negotiator.Offer]. The
// codec is the first payload type of the answer's audio m-line that was
// offered. A *NotAcceptableError is returned when the answer rejected the
// stream or chose nothing that was offered.
func (n *Negotiator) ParseAnswer(answer []byte) (Media, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(answer); err != nil {
		return Media{}, fmt.Errorf("parse sdp answer: %w", err)
	}
	if len(s.MediaDescriptions) == 0 {
		return Media{}, &NotAcceptableError{Reason: "answer has no media"}
	}
	md := s.MediaDescriptions[0]
	if !isAudioAVP(md) || md.MediaName.Port.Value == 0 {
		return Media{}, &NotAcceptableError{Reason: "audio stream rejected"}
	}
	maps := parseRtpmaps(md)
	var m Media
	found := false
	offered := n.offered
	if offered == nil {
		offered = n.cfg.Codecs
	}
	for _, pt := range formats(md) {
		r, ok := formatCodec(pt, maps)
		if !ok {
			continue
		}
		if !found {
			for _, c := range offered {
				if strings.EqualFold(r.name, c.Name) && (r.rate == c.ClockRate || r.rate == 0) {
					m.Codec = Codec{Name: c.Name, PayloadType: pt, ClockRate: c.ClockRate}
					found = true
					break
				}
			}
		}
		if n.cfg.TelephoneEvent && !m.TelephoneEvent && strings.EqualFold(r.name, "telephone-event") {
			m.TelephoneEvent, m.TelephoneEventPT = true, pt
		}
	}
	if !found {
		return Media{}, &NotAcceptableError{Reason: "answer selected no offered codec"}
	}
	var addrOK bool
	m.Remote, m.RemoteRTCP, addrOK = remoteAddrs(&s, md)
	m.Ptime = remotePtime(&s, md)
	remoteDir := mediaDirection(&s, md).Reverse()
	m.Direction = directionOf(remoteDir.Sends() && n.cfg.Direction.Sends() && addrOK,
		remoteDir.Receives() && n.cfg.Direction.Receives())
	return m, nil
}
