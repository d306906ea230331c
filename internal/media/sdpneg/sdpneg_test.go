package sdpneg

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

var local = Local{Addr: netip.MustParseAddr("127.0.0.1"), Port: 20000}

func sdpText(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

func offerWith(conn string, media ...string) []byte {
	lines := []string{"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-"}
	if conn != "" {
		lines = append(lines, conn)
	}
	lines = append(lines, "t=0 0")
	lines = append(lines, media...)
	return sdpText(lines...)
}

func mustNew(t *testing.T, cfg Config) *Negotiator {
	t.Helper()
	n, err := New(cfg, local)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func parse(t *testing.T, b []byte) *sdp.SessionDescription {
	t.Helper()
	var s sdp.SessionDescription
	if err := s.Unmarshal(b); err != nil {
		t.Fatalf("answer does not parse: %v\n%s", err, b)
	}
	return &s
}

func TestAnswer(t *testing.T) {
	pcmaFirst := DefaultConfig()
	pcmaFirst.Codecs = []Codec{PCMA, PCMU}
	recvOnlyCfg := DefaultConfig()
	recvOnlyCfg.Direction = RecvOnly
	noTE := DefaultConfig()
	noTE.TelephoneEvent = false

	tests := []struct {
		name       string
		cfg        Config
		offer      []byte
		codec      Codec
		te         int // -1 none
		dir        Direction
		answerDir  string
		remote     string
		rtcp       string
		ptime      time.Duration
		formats    string
		mLines     int
		notAccept  bool
		answerHas  []string
		answerLack []string
	}{
		{
			name:  "basic PCMU PCMA telephone-event",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv"),
			codec: PCMU, te: 101, dir: SendRecv, answerDir: "sendrecv",
			remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001", ptime: 20 * time.Millisecond,
			formats: "0 101", mLines: 1, answerHas: []string{"a=fmtp:101 0-15", "a=ptime:20", "c=IN IP4 127.0.0.1", "m=audio 20000 RTP/AVP 0 101"},
		},
		{
			name:  "preference PCMA first",
			cfg:   pcmaFirst,
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 0 8"),
			codec: PCMA, te: -1, dir: SendRecv, answerDir: "sendrecv", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "8", mLines: 1, answerLack: []string{"telephone-event"},
		},
		{
			name:  "dynamic telephone-event PT kept, media-level c= and ptime 30",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 0 96", "c=IN IP4 198.51.100.7", "a=rtpmap:96 telephone-event/8000", "a=ptime:30"),
			codec: PCMU, te: 96, dir: SendRecv, answerDir: "sendrecv", remote: "198.51.100.7:30000", rtcp: "198.51.100.7:30001",
			ptime: 30 * time.Millisecond, formats: "0 96", mLines: 1, answerHas: []string{"a=fmtp:96 0-16"},
		},
		{
			name:  "offer sendonly answered recvonly (hold)",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 0", "a=sendonly"),
			codec: PCMU, te: -1, dir: RecvOnly, answerDir: "recvonly", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name:  "offer recvonly answered sendonly, session-level attribute",
			cfg:   DefaultConfig(),
			offer: sdpText("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0", "a=recvonly", "m=audio 30000 RTP/AVP 0"),
			codec: PCMU, te: -1, dir: SendOnly, answerDir: "sendonly", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name:  "offer inactive answered inactive",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 0", "a=inactive"),
			codec: PCMU, te: -1, dir: Inactive, answerDir: "inactive", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name:  "local recvonly limits a sendrecv offer",
			cfg:   recvOnlyCfg,
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 0"),
			codec: PCMU, te: -1, dir: RecvOnly, answerDir: "recvonly", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name:  "legacy hold c=0.0.0.0: we do not send",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP4 0.0.0.0", "m=audio 30000 RTP/AVP 0"),
			codec: PCMU, te: -1, dir: RecvOnly, answerDir: "sendrecv", remote: "invalid AddrPort", rtcp: "invalid AddrPort",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name:  "a=rtcp port and IPv6",
			cfg:   DefaultConfig(),
			offer: offerWith("c=IN IP6 2001:db8::1", "m=audio 30000 RTP/AVP 0", "a=rtcp:40001"),
			codec: PCMU, te: -1, dir: SendRecv, answerDir: "sendrecv", remote: "[2001:db8::1]:30000", rtcp: "[2001:db8::1]:40001",
			ptime: DefaultPtime, formats: "0", mLines: 1,
		},
		{
			name: "video rejected, second audio rejected, order kept",
			cfg:  DefaultConfig(),
			offer: offerWith("c=IN IP4 192.0.2.1", "m=video 30002 RTP/AVP 96", "a=rtpmap:96 H264/90000",
				"m=audio 30000 RTP/AVP 0", "m=audio 30004 RTP/AVP 8"),
			codec: PCMU, te: -1, dir: SendRecv, answerDir: "sendrecv", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "0", mLines: 3, answerHas: []string{"m=video 0 RTP/AVP 96", "m=audio 0 RTP/AVP 8"},
		},
		{
			name:  "dynamic PT for PCMU by rtpmap, telephone-event disabled locally",
			cfg:   noTE,
			offer: offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 112 101", "a=rtpmap:112 pcmu/8000", "a=rtpmap:101 telephone-event/8000"),
			codec: Codec{"PCMU", 112, 8000}, te: -1, dir: SendRecv, answerDir: "sendrecv", remote: "192.0.2.1:30000", rtcp: "192.0.2.1:30001",
			ptime: DefaultPtime, formats: "112", mLines: 1,
		},
		{
			name:      "no common codec",
			cfg:       DefaultConfig(),
			offer:     offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 9 18", "a=rtpmap:9 G722/8000"),
			notAccept: true,
		},
		{
			name:      "only SRTP offered",
			cfg:       DefaultConfig(),
			offer:     offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/SAVP 0"),
			notAccept: true,
		},
		{
			name:      "PCMU mapped to another rate is not PCMU",
			cfg:       DefaultConfig(),
			offer:     offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 96", "a=rtpmap:96 PCMU/16000"),
			notAccept: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNew(t, tc.cfg)
			ans, m, err := n.Answer(tc.offer)
			if tc.notAccept {
				var na *NotAcceptableError
				if !errors.As(err, &na) {
					t.Fatalf("err = %v, want NotAcceptableError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Codec != tc.codec {
				t.Errorf("codec %+v, want %+v", m.Codec, tc.codec)
			}
			if (tc.te >= 0) != m.TelephoneEvent || (tc.te >= 0 && int(m.TelephoneEventPT) != tc.te) {
				t.Errorf("telephone-event %v/%d, want %d", m.TelephoneEvent, m.TelephoneEventPT, tc.te)
			}
			if m.Direction != tc.dir {
				t.Errorf("direction %v, want %v", m.Direction, tc.dir)
			}
			if m.Remote.String() != tc.remote || m.RemoteRTCP.String() != tc.rtcp {
				t.Errorf("remote %v rtcp %v, want %v %v", m.Remote, m.RemoteRTCP, tc.remote, tc.rtcp)
			}
			if m.Ptime != tc.ptime {
				t.Errorf("ptime %v, want %v", m.Ptime, tc.ptime)
			}
			s := parse(t, ans)
			if len(s.MediaDescriptions) != tc.mLines {
				t.Fatalf("%d m-lines, want %d\n%s", len(s.MediaDescriptions), tc.mLines, ans)
			}
			var audio *sdp.MediaDescription
			for _, md := range s.MediaDescriptions {
				if md.MediaName.Port.Value != 0 {
					audio = md
				}
			}
			if audio == nil {
				t.Fatalf("no accepted m-line\n%s", ans)
			}
			if got := strings.Join(audio.MediaName.Formats, " "); got != tc.formats {
				t.Errorf("answer formats %q, want %q", got, tc.formats)
			}
			if d, _ := directionAttr(audio.Attributes); d.String() != tc.answerDir {
				t.Errorf("answer direction %v, want %v", d, tc.answerDir)
			}
			for _, h := range tc.answerHas {
				if !strings.Contains(string(ans), h) {
					t.Errorf("answer lacks %q\n%s", h, ans)
				}
			}
			for _, h := range tc.answerLack {
				if strings.Contains(string(ans), h) {
					t.Errorf("answer has %q\n%s", h, ans)
				}
			}
		})
	}
}

func TestOfferAnswerBetweenNegotiators(t *testing.T) {
	caller := mustNew(t, DefaultConfig())
	offer, err := caller.Offer()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 20000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv"} {
		if !strings.Contains(string(offer), want) {
			t.Fatalf("offer lacks %q\n%s", want, offer)
		}
	}
	calleeCfg := DefaultConfig()
	calleeCfg.Codecs = []Codec{PCMA}
	callee, err := New(calleeCfg, Local{Addr: netip.MustParseAddr("127.0.0.2"), Port: 30000})
	if err != nil {
		t.Fatal(err)
	}
	answer, calleeMedia, err := callee.Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	m, err := caller.ParseAnswer(answer)
	if err != nil {
		t.Fatal(err)
	}
	if m.Codec != PCMA || calleeMedia.Codec != PCMA || !m.TelephoneEvent || m.TelephoneEventPT != 101 {
		t.Fatalf("caller media %+v callee %+v", m, calleeMedia)
	}
	if m.Remote.String() != "127.0.0.2:30000" || calleeMedia.Remote.String() != "127.0.0.1:20000" {
		t.Fatalf("addresses %v %v", m.Remote, calleeMedia.Remote)
	}
	// The o= version increases on every description.
	o1 := parse(t, offer).Origin
	o2 := parse(t, mustOffer(t, caller)).Origin
	if o2.SessionID != o1.SessionID || o2.SessionVersion <= o1.SessionVersion {
		t.Fatalf("origin %+v then %+v", o1, o2)
	}
}

func mustOffer(t *testing.T, n *Negotiator) []byte {
	t.Helper()
	b, err := n.Offer()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAnswerErrors(t *testing.T) {
	n := mustNew(t, DefaultConfig())
	mustOffer(t, n)
	var na *NotAcceptableError
	if _, err := n.ParseAnswer(offerWith("c=IN IP4 192.0.2.1", "m=audio 0 RTP/AVP 0")); !errors.As(err, &na) {
		t.Fatalf("rejected stream: %v", err)
	}
	if _, err := n.ParseAnswer(offerWith("c=IN IP4 192.0.2.1", "m=audio 3000 RTP/AVP 18")); !errors.As(err, &na) {
		t.Fatalf("unoffered codec: %v", err)
	}
	if _, err := n.ParseAnswer([]byte("garbage")); err == nil || errors.As(err, &na) {
		t.Fatalf("garbage: %v", err)
	}
	m, err := n.ParseAnswer(offerWith("c=IN IP4 192.0.2.1", "m=audio 3000 RTP/AVP 8", "a=recvonly"))
	if err != nil || m.Direction != SendOnly || m.Codec != PCMA {
		t.Fatalf("recvonly answer: %+v %v", m, err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Codecs = nil },
		func(c *Config) { c.TelephoneEventPT = 50 },
		func(c *Config) { c.Ptime = 25 * time.Millisecond },
		func(c *Config) { c.Direction = 9 },
		func(c *Config) { c.SessionName = "" },
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if _, err := New(DefaultConfig(), Local{}); err == nil {
		t.Error("invalid local accepted")
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(offerWith("c=IN IP4 192.0.2.1", "m=audio 30000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv"))
	f.Add(offerWith("c=IN IP6 ::1", "m=audio 30000 RTP/AVP 96 97", "a=rtpmap:96 PCMA/8000", "a=rtcp:1 IN IP4 1.2.3.4", "a=ptime:abc"))
	f.Add(offerWith("", "m=audio 1 RTP/AVP 0", "m=video 0 RTP/AVP"))
	f.Fuzz(func(t *testing.T, offer []byte) {
		n, err := New(DefaultConfig(), local)
		if err != nil {
			t.Fatal(err)
		}
		ans, m, err := n.Answer(offer)
		if err != nil {
			return
		}
		// An answer must parse, and the caller side must agree on the codec.
		caller, _ := New(DefaultConfig(), local)
		got, err := caller.ParseAnswer(ans)
		if err != nil {
			t.Fatalf("answer does not parse back: %v\n%s", err, ans)
		}
		if got.Codec != m.Codec {
			t.Fatalf("codec mismatch %+v vs %+v", got.Codec, m.Codec)
		}
	})
}
