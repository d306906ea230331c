package media

import (
	"testing"
	"time"
)

func TestRTCPRoundTrip(t *testing.T) {
	rb := reportBlock{SSRC: 0xCAFEBABE, FractionLost: 25, TotalLost: -3, HighestSeq: 70000, Jitter: 42, LSR: 0x12345678, DLSR: 65536}
	now := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	si := senderInfo{NTP: ntpTime(now), RTPTime: 1234, Packets: 10, Octets: 1600}
	var buf [rtcpBufLen]byte
	b := appendSR(buf[:0], 0x01020304, si, &rb, "gvp-test")
	if len(b)%4 != 0 {
		t.Fatalf("length %d not a multiple of 4", len(b))
	}
	var info rtcpInfo
	if err := parseRTCP(b, &info); err != nil {
		t.Fatal(err)
	}
	if !info.HaveSR || info.SRSSRC != 0x01020304 || info.SR != si || info.NReport != 1 || info.Reports[0] != rb {
		t.Fatalf("parsed %+v", info)
	}
	if sec := si.NTP >> 32; sec != uint64(now.Unix())+ntpEpochOffset {
		t.Fatalf("NTP seconds %d", sec)
	}
	if frac := uint32(si.NTP); frac != 1<<31 {
		t.Fatalf("NTP fraction %#x, want half a second", frac)
	}
	b = appendRR(buf[:0], 7, nil, "x")
	if err := parseRTCP(b, &info); err != nil || info.HaveSR || info.NReport != 0 {
		t.Fatalf("RR: %+v %v", info, err)
	}
	if err := parseRTCP(b[:len(b)-1], &info); err == nil {
		t.Fatal("truncated packet accepted")
	}
	allocs := testing.AllocsPerRun(100, func() {
		b = appendSR(buf[:0], 1, si, &rb, "gvp-test")
		_ = parseRTCP(b, &info)
	})
	if allocs != 0 {
		t.Fatalf("allocs %v", allocs)
	}
}

func TestRxStats(t *testing.T) {
	var r rxStats
	r.reset(1, 65530)
	for _, seq := range []uint16{65530, 65531, 65533, 65535, 0, 2, 1, 1} {
		r.update(seq)
	}
	// 65530..2 is 9 expected; received 8 (65532, 65534 missing, 1 duplicated).
	if r.extMax() != 1<<16+2 || r.lost() != 1 {
		t.Fatalf("extMax %d lost %d", r.extMax(), r.lost())
	}
	// A large jump is accepted only when the next packet follows it.
	if r.update(30000) {
		t.Fatal("single jump accepted")
	}
	if !r.update(30001) || r.lost() != 0 {
		t.Fatalf("restart not detected, lost %d", r.lost())
	}
	// Constant transit gives zero jitter; alternating 10 ms gives ~80.
	var j rxStats
	for i := range 200 {
		j.jitterUpdate(uint32(i*160+1000), uint32(i*160))
	}
	if j.jitterQ4>>4 != 0 {
		t.Fatalf("jitter %d", j.jitterQ4>>4)
	}
	for i := range 500 {
		d := uint32(0)
		if i%2 == 1 {
			d = 80
		}
		j.jitterUpdate(uint32(i*160)+d, uint32(i*160))
	}
	if got := j.jitterQ4 >> 4; got < 75 || got > 80 {
		t.Fatalf("jitter %d, want about 80", got)
	}
}

func FuzzParseRTCP(f *testing.F) {
	var buf [rtcpBufLen]byte
	f.Add(appendSR(buf[:0], 1, senderInfo{}, &reportBlock{SSRC: 2}, "c"))
	f.Add(appendRR(buf[:0], 1, &reportBlock{SSRC: 2}, "c"))
	f.Add([]byte{0x81, 203, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var info rtcpInfo
		if parseRTCP(b, &info) == nil && info.NReport > len(info.Reports) {
			t.Fatal("too many reports")
		}
	})
}
