package media

import (
	"encoding/binary"
	"errors"
	"time"
)

// RTCP packet types (RFC 3550 section 12.1).
const (
	rtcpSR   = 200
	rtcpRR   = 201
	rtcpSDES = 202
	rtcpBYE  = 203
)

// ntpEpochOffset is the number of seconds from 1900-01-01 to 1970-01-01.
const ntpEpochOffset = 2208988800

// errRTCP reports a malformed RTCP compound packet.
var errRTCP = errors.New("malformed RTCP packet")

// ntpTime converts a wall-clock time to the 64-bit NTP format.
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// reportBlock is an RFC 3550 section 6.4.1 reception report block.
type reportBlock struct {
	SSRC         uint32
	FractionLost uint8
	TotalLost    int32 // 24-bit signed on the wire
	HighestSeq   uint32
	Jitter       uint32
	LSR          uint32
	DLSR         uint32
}

func (r *reportBlock) marshal(b []byte) {
	binary.BigEndian.PutUint32(b[0:], r.SSRC)
	lost := uint32(r.TotalLost)
	if r.TotalLost > 0x7FFFFF {
		lost = 0x7FFFFF
	} else if r.TotalLost < -0x800000 {
		lost = 0x800000
	}
	binary.BigEndian.PutUint32(b[4:], uint32(r.FractionLost)<<24|lost&0xFFFFFF)
	binary.BigEndian.PutUint32(b[8:], r.HighestSeq)
	binary.BigEndian.PutUint32(b[12:], r.Jitter)
	binary.BigEndian.PutUint32(b[16:], r.LSR)
	binary.BigEndian.PutUint32(b[20:], r.DLSR)
}

func (r *reportBlock) unmarshal(b []byte) {
	r.SSRC = binary.BigEndian.Uint32(b[0:])
	v := binary.BigEndian.Uint32(b[4:])
	r.FractionLost = uint8(v >> 24)
	r.TotalLost = int32(v<<8) >> 8 // sign-extend 24 bits
	r.HighestSeq = binary.BigEndian.Uint32(b[8:])
	r.Jitter = binary.BigEndian.Uint32(b[12:])
	r.LSR = binary.BigEndian.Uint32(b[16:])
	r.DLSR = binary.BigEndian.Uint32(b[20:])
}

// senderInfo is the sender information of an SR.
type senderInfo struct {
	NTP     uint64
	RTPTime uint32
	Packets uint32
	Octets  uint32
}

// appendSR appends an SR (with rb when non-nil) followed by an SDES CNAME,
// forming the compound packet RFC 3550 section 6.1 requires. b must have
// enough capacity for no allocation (see rtcpBufLen).
func appendSR(b []byte, ssrc uint32, si senderInfo, rb *reportBlock, cname string) []byte {
	rc := 0
	if rb != nil {
		rc = 1
	}
	words := 6 + 6*rc // length in 32-bit words minus one
	start := len(b)
	b = b[:start+4*(words+1)]
	p := b[start:]
	p[0] = 0x80 | byte(rc)
	p[1] = rtcpSR
	binary.BigEndian.PutUint16(p[2:], uint16(words))
	binary.BigEndian.PutUint32(p[4:], ssrc)
	binary.BigEndian.PutUint64(p[8:], si.NTP)
	binary.BigEndian.PutUint32(p[16:], si.RTPTime)
	binary.BigEndian.PutUint32(p[20:], si.Packets)
	binary.BigEndian.PutUint32(p[24:], si.Octets)
	if rb != nil {
		rb.marshal(p[28:])
	}
	return appendSDES(b, ssrc, cname)
}

// appendSDES appends an SDES packet with one CNAME chunk.
func appendSDES(b []byte, ssrc uint32, cname string) []byte {
	// SDES: header, SSRC, CNAME item, terminating zero, pad to 32 bits.
	n := 4 + 4 + 2 + len(cname) + 1
	n = (n + 3) &^ 3
	start := len(b)
	b = b[:start+n]
	p := b[start:]
	clear(p)
	p[0] = 0x81
	p[1] = rtcpSDES
	binary.BigEndian.PutUint16(p[2:], uint16(n/4-1))
	binary.BigEndian.PutUint32(p[4:], ssrc)
	p[8] = 1 // CNAME
	p[9] = byte(len(cname))
	copy(p[10:], cname)
	return b
}

// appendRR appends an RR (with rb when non-nil) followed by an SDES CNAME;
// it is sent instead of an SR while this side has sent no RTP.
func appendRR(b []byte, ssrc uint32, rb *reportBlock, cname string) []byte {
	rc := 0
	if rb != nil {
		rc = 1
	}
	words := 1 + 6*rc
	start := len(b)
	b = b[:start+4*(words+1)]
	p := b[start:]
	p[0] = 0x80 | byte(rc)
	p[1] = rtcpRR
	binary.BigEndian.PutUint16(p[2:], uint16(words))
	binary.BigEndian.PutUint32(p[4:], ssrc)
	if rb != nil {
		rb.marshal(p[8:])
	}
	return appendSDES(b, ssrc, cname)
}

// rtcpBufLen is the buffer size for outgoing compound packets: SR with one
// report block (52 bytes) plus SDES with a CNAME of up to 255 bytes.
const rtcpBufLen = 52 + 4 + 4 + 2 + 255 + 1 + 3

// rtcpInfo collects what the session needs from an incoming compound packet.
type rtcpInfo struct {
	HaveSR  bool
	SRSSRC  uint32
	SR      senderInfo
	Reports [4]reportBlock // report blocks about any source (first 4)
	NReport int
	Bye     bool
}

// parseRTCP parses a compound RTCP packet. It does not allocate.
func parseRTCP(b []byte, out *rtcpInfo) error {
	*out = rtcpInfo{}
	if len(b) < 4 {
		return errRTCP
	}
	for len(b) > 0 {
		if len(b) < 4 || b[0]>>6 != 2 {
			return errRTCP
		}
		count := int(b[0] & 0x1F)
		pt := b[1]
		length := (int(binary.BigEndian.Uint16(b[2:])) + 1) * 4
		if length > len(b) {
			return errRTCP
		}
		body := b[4:length]
		var blocks []byte
		switch pt {
		case rtcpSR:
			if len(body) < 24 {
				return errRTCP
			}
			out.HaveSR = true
			out.SRSSRC = binary.BigEndian.Uint32(body[0:])
			out.SR = senderInfo{
				NTP:     binary.BigEndian.Uint64(body[4:]),
				RTPTime: binary.BigEndian.Uint32(body[12:]),
				Packets: binary.BigEndian.Uint32(body[16:]),
				Octets:  binary.BigEndian.Uint32(body[20:]),
			}
			blocks = body[24:]
		case rtcpRR:
			if len(body) < 4 {
				return errRTCP
			}
			blocks = body[4:]
		case rtcpBYE:
			out.Bye = true
		}
		if blocks != nil {
			if len(blocks) < 24*count {
				return errRTCP
			}
			for i := 0; i < count && out.NReport < len(out.Reports); i++ {
				out.Reports[out.NReport].unmarshal(blocks[24*i:])
				out.NReport++
			}
		}
		b = b[length:]
	}
	return nil
}
