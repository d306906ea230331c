package mcp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func parseURI(t testing.TB, s string) *sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return &u
}

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		uri     string
		want    Entry
		unknown bool
		bad     bool
	}{
		{uri: "sip:annc@h;play=file:///p/a.wav", want: Entry{Service: ServiceAnnouncement, URL: "file:///p/a.wav", Repeat: 1}},
		{uri: "sip:annc@h:5070;play=http://w/x.wav;repeat=forever;delay=500;duration=3000",
			want: Entry{Service: ServiceAnnouncement, URL: "http://w/x.wav", Repeat: 0, Delay: 500 * time.Millisecond, Duration: 3 * time.Second}},
		{uri: "sip:annc@h;play=http://w/x.wav%3Fa%3D1;repeat=3", want: Entry{Service: ServiceAnnouncement, URL: "http://w/x.wav?a=1", Repeat: 3}},
		{uri: "sip:dialog@h;voicexml=http://app/start.vxml;gvp-tenant-id=80dd", want: Entry{Service: ServiceVoiceXML, URL: "http://app/start.vxml"}},
		{uri: "sip:DIALOG@h;voicexml=https://app/s.vxml", want: Entry{Service: ServiceVoiceXML, URL: "https://app/s.vxml"}},
		{uri: "sip:5551000@h", unknown: true},
		{uri: "sip:h", unknown: true},
		{uri: "sip:annc@h", bad: true},
		{uri: "sip:annc@h;play=ftp://x/y.wav", bad: true},
		{uri: "sip:annc@h;play=file:///a.wav;repeat=0", bad: true},
		{uri: "sip:annc@h;play=file:///a.wav;delay=-1", bad: true},
		{uri: "sip:annc@h;play=http:///nohost.wav", bad: true},
		{uri: "sip:dialog@h", bad: true},
		{uri: "sip:dialog@h;voicexml=%zz", bad: true},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			e, err := ParseEntry(parseURI(t, tc.uri))
			switch {
			case tc.unknown:
				if !errors.Is(err, ErrUnknownService) {
					t.Fatalf("want unknown service, got %v", err)
				}
				return
			case tc.bad:
				if err == nil || errors.Is(err, ErrUnknownService) {
					t.Fatalf("want a parameter error, got %v (%+v)", err, e)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			e.Params = nil
			if !reflect.DeepEqual(e, tc.want) {
				t.Fatalf("got %+v, want %+v", e, tc.want)
			}
		})
	}
	e, _ := ParseEntry(parseURI(t, "sip:dialog@h;voicexml=http://a/b;gvp-tenant-id=80dd"))
	if e.ParamMap()["gvp-tenant-id"] != "80dd" {
		t.Fatalf("params %v", e.Params)
	}
}

func TestParseInfoDTMF(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		digit    rune
		dur      time.Duration
		err      bool
		notDTMF  bool
	}{
		{ct: "application/dtmf-relay", body: "Signal=5\r\nDuration=160\r\n", digit: '5', dur: 160 * time.Millisecond},
		{ct: "Application/DTMF-Relay; charset=x", body: "signal = #\nduration=100", digit: '#', dur: 100 * time.Millisecond},
		{ct: "application/dtmf-relay", body: "Signal=10\r\n", digit: '*'},
		{ct: "application/dtmf-relay", body: "Signal=11", digit: '#'},
		{ct: "application/dtmf-relay", body: "Signal=a", digit: 'A'},
		{ct: "application/dtmf", body: "7\r\n", digit: '7'},
		{ct: "application/dtmf-relay", body: "Duration=160", err: true},
		{ct: "application/dtmf-relay", body: "Signal=55", err: true},
		{ct: "application/dtmf-relay", body: "Signal=1\nDuration=x", err: true},
		{ct: "application/dtmf", body: "", err: true},
		{ct: "application/dtmf", body: "E", err: true},
		{ct: "application/sdp", body: "v=0", notDTMF: true},
		{ct: "application/dtmf", body: strings.Repeat("1", maxInfoBody+1), err: true},
	} {
		d, dur, err := parseInfoDTMF(tc.ct, []byte(tc.body))
		switch {
		case tc.notDTMF:
			if !errors.Is(err, errNotDTMF) {
				t.Errorf("%q: want errNotDTMF, got %v", tc.body, err)
			}
		case tc.err:
			if err == nil || errors.Is(err, errNotDTMF) {
				t.Errorf("%q %q: want an error, got %q %v", tc.ct, tc.body, d, dur)
			}
		case err != nil || d != tc.digit || dur != tc.dur:
			t.Errorf("%q %q: got %q %v %v, want %q %v", tc.ct, tc.body, d, dur, err, tc.digit, tc.dur)
		}
	}
}

func TestParseSessionExpires(t *testing.T) {
	for _, tc := range []struct {
		v   string
		d   time.Duration
		ref string
		ok  bool
	}{
		{"1800", 1800 * time.Second, "", true},
		{"90;refresher=uac", 90 * time.Second, "uac", true},
		{" 120 ; Refresher=UAS", 120 * time.Second, "uas", true},
		{"0", 0, "", false},
		{"x", 0, "", false},
		{"60;refresher=proxy", 0, "", false},
	} {
		d, ref, ok := parseSessionExpires(tc.v)
		if d != tc.d || ref != tc.ref || ok != tc.ok {
			t.Errorf("%q: got %v %q %v", tc.v, d, ref, ok)
		}
	}
}

func TestSipfragStatus(t *testing.T) {
	for in, want := range map[string]int{
		"SIP/2.0 200 OK\r\n":         200,
		"SIP/2.0 100 Trying":         100,
		"SIP/2.0 486 Busy Here\r\nX": 486,
		"SIP/2.0 2x0 OK":             0,
		"HTTP/1.1 200 OK":            0,
		"":                           0,
		"SIP/2.0 99 Low":             0,
	} {
		got, ok := sipfragStatus([]byte(in))
		if got != want || ok != (want != 0) {
			t.Errorf("%q: got %d %v", in, got, ok)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	for _, s := range []string{
		"sip:annc@h;play=file:///p/a.wav;repeat=forever;delay=500;duration=3000",
		"sip:dialog@h;voicexml=http://app/start.vxml%3Fx%3D1",
		"sip:annc@h;play=http://w/x.wav;repeat=3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var u sip.Uri
		if sip.ParseUri(s, &u) != nil {
			return
		}
		e, err := ParseEntry(&u)
		if err != nil {
			return
		}
		if e.Service != ServiceAnnouncement && e.Service != ServiceVoiceXML || e.URL == "" || e.Repeat < 0 || e.Delay < 0 || e.Duration < 0 {
			t.Fatalf("accepted inconsistent entry %+v", e)
		}
	})
}

func FuzzParseInfoDTMF(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, dur, err := parseInfoDTMF(ct, body)
		if err != nil {
			return
		}
		if !strings.ContainsRune("0123456789*#ABCD", d) || dur < 0 {
			t.Fatalf("accepted digit %q duration %v", d, dur)
		}
	})
}

func FuzzSessionHeaders(f *testing.F) {
	f.Add("1800;refresher=uac", []byte("SIP/2.0 200 OK"))
	f.Fuzz(func(t *testing.T, se string, frag []byte) {
		if d, ref, ok := parseSessionExpires(se); ok && (d <= 0 || (ref != "" && ref != "uac" && ref != "uas")) {
			t.Fatalf("accepted %q as %v %q", se, d, ref)
		}
		if code, ok := sipfragStatus(frag); ok && (code < 100 || code > 699) {
			t.Fatalf("status %d", code)
		}
	})
}

func TestParseDiversion(t *testing.T) {
	got := parseDiversion(`<sip:5551234@carrier.example>;reason=unconditional;privacy=off;screen=no, sip:5559999@pbx;reason="user-busy"`)
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if got[0].URI != "sip:5551234@carrier.example" || got[0].Reason != "unconditional" || got[0].PI != "off" || got[0].SI != "no" {
		t.Fatalf("first %+v", got[0])
	}
	if got[1].URI != "sip:5559999@pbx" || got[1].Reason != "user-busy" {
		t.Fatalf("second %+v", got[1])
	}
	if parseDiversion("") != nil {
		t.Fatal("empty header gave entries")
	}
}
