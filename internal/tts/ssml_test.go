package tts

import (
	"reflect"
	"testing"
	"time"
)

func TestParseSSML(t *testing.T) {
	ms := time.Millisecond
	txt := func(s string) Segment { return Segment{Text: s} }
	sil := func(d time.Duration) Segment { return Segment{Silence: d} }
	for _, tc := range []struct {
		name string
		in   string
		want []Segment
	}{
		{"plain", `<speak>Hello   world</speak>`, []Segment{txt("Hello world")}},
		{"declaration and namespace", `<?xml version="1.0"?><speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">Hi <emphasis>there</emphasis></speak>`, []Segment{txt("Hi there")}},
		{"break time ms", `<speak>one<break time="250ms"/>two</speak>`, []Segment{txt("one"), sil(250 * ms), txt("two")}},
		{"break time s", `<speak>one <break time="1.5s"/> two</speak>`, []Segment{txt("one"), sil(1500 * ms), txt("two")}},
		{"break strength", `<speak>a<break strength="strong"/>b<break strength="none"/>c</speak>`, []Segment{txt("a"), sil(time.Second), txt("b c")}},
		{"break default", `<speak>a<break/>b</speak>`, []Segment{txt("a"), sil(500 * ms), txt("b")}},
		{"bad break time uses strength", `<speak>a<break time="fast" strength="weak"/>b</speak>`, []Segment{txt("a"), sil(250 * ms), txt("b")}},
		{"break capped", `<speak>a<break time="600s"/>b</speak>`, []Segment{txt("a"), sil(10 * time.Second), txt("b")}},
		{"leading and adjacent breaks", `<speak><break time="100ms"/><break time="200ms"/>x</speak>`, []Segment{sil(300 * ms), txt("x")}},
		{"digits", `<speak>Your code is <say-as interpret-as="digits">4 0-7</say-as>.</speak>`, []Segment{txt("Your code is 4 0, 7 .")}},
		{"characters", `<speak><say-as interpret-as="characters">AB1</say-as></speak>`, []Segment{txt("A B 1")}},
		{"other say-as spoken as is", `<speak><say-as interpret-as="date" format="mdy">1/2/2025</say-as></speak>`, []Segment{txt("1/2/2025")}},
		{"sub alias", `<speak><sub alias="World Wide Web Consortium">W3C</sub> rocks</speak>`, []Segment{txt("World Wide Web Consortium rocks")}},
		{"skipped elements", `<speak><metadata>x</metadata><mark name="m"/>a<desc>d</desc> b</speak>`, []Segment{txt("a b")}},
		{"audio fallback", `<speak><audio src="x.wav">sorry</audio></speak>`, []Segment{txt("sorry")}},
		{"entities", `<speak>A &amp; B &lt; C &eacute;</speak>`, []Segment{txt("A & B < C é")}},
		{"p and s", `<speak><p><s>One.</s><s>Two.</s></p></speak>`, []Segment{txt("One. Two.")}},
		{"malformed falls back to stripping", `<speak>Hello <b>world & more</speak>`, []Segment{txt("Hello world & more")}},
		{"empty", `<speak/>`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseSSML(tc.in, DefaultMaxBreak)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestIsSSML(t *testing.T) {
	for in, want := range map[string]bool{
		"<speak>x</speak>":        true,
		"  \n<?xml version='1'?>": true,
		"press 1 < 2":             false,
		"":                        false,
	} {
		if IsSSML(in) != want {
			t.Errorf("IsSSML(%q) != %v", in, want)
		}
	}
}

func TestParseSSMLTime(t *testing.T) {
	for in, want := range map[string]time.Duration{"250ms": 250 * time.Millisecond, "2s": 2 * time.Second, "0.5s": 500 * time.Millisecond, " 10MS ": 10 * time.Millisecond} {
		if d, ok := parseSSMLTime(in); !ok || d != want {
			t.Errorf("%q: %v %v", in, d, ok)
		}
	}
	for _, in := range []string{"", "s", "ms", "-1s", "+1s", "1h", "1e9s", "NaNs"} {
		if _, ok := parseSSMLTime(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseSSML(f *testing.F) {
	for _, s := range []string{`<speak>a<break time="1s"/>b</speak>`, `<speak><say-as interpret-as="digits">12</say-as></speak>`, `<speak><sub alias="x">y</sub>`, "plain <", "&amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var total time.Duration
		for _, seg := range ParseSSML(s, DefaultMaxBreak) {
			if seg.Silence < 0 || seg.Silence > DefaultMaxBreak*time.Duration(len(s)+1) {
				t.Fatalf("silence %v", seg.Silence)
			}
			if seg.Text == "" && seg.Silence == 0 {
				t.Fatal("empty segment")
			}
			total += seg.Silence
		}
	})
}
