package vxml

import (
	"context"
	"testing"
)

// TestXMLBaseParse: xml:base and xml:lang are read from the XML namespace; a relative
// xml:base resolves against the document's URL.
func TestXMLBaseParse(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", testBase + "dir/doc.vxml"},
		{"http://other.invalid/app/", "http://other.invalid/app/"},
		{"sub/", testBase + "dir/sub/"},
		{"../up.vxml", testBase + "up.vxml"},
	} {
		attr := ""
		if tc.base != "" {
			attr = ` xml:base="` + tc.base + `"`
		}
		d, err := Parse([]byte(`<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" xml:lang="fr-FR"`+attr+
			`><form><block><prompt xml:lang="de-DE">x</prompt></block></form></vxml>`), testBase+"dir/doc.vxml", xmlLimitsForTest())
		if err != nil {
			t.Fatal(err)
		}
		if d.BaseURI() != tc.want || d.Base != tc.base || d.Lang != "fr-FR" {
			t.Errorf("xml:base %q: base URI %q (raw %q, lang %q), want %q", tc.base, d.BaseURI(), d.Base, d.Lang, tc.want)
		}
	}
}

// TestXMLBaseAudioAndGoto: audio URIs (src and computed expr) of prompts and a <goto> to
// another host resolve against an absolute xml:base.
func TestXMLBaseAudioAndGoto(t *testing.T) {
	f := NewMemoryFetcher()
	f.Add(testBase+"main", "application/voicexml+xml", []byte(`<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" xml:base="http://media.invalid/p/">
<form><block><prompt xml:lang="de-DE"><audio src="hi.wav"/><audio expr="'x/' + 'y.wav'"/></prompt><goto next="next"/></block></form></vxml>`))
	f.Add("http://media.invalid/p/next", "application/voicexml+xml", []byte(vxmlDoc(`<form><block><exit expr="'pass'"/></block></form>`)))
	p := NewScriptedPlatform("")
	res := testInterpreter(t, f).Run(context.Background(), p, SessionInfo{}, testBase+"main")
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	if len(p.Played) != 1 || len(p.Played[0].Parts) != 2 {
		t.Fatalf("played %+v", p.Played)
	}
	pr := p.Played[0]
	if pr.Parts[0].URL != "http://media.invalid/p/hi.wav" || pr.Parts[1].URL != "http://media.invalid/p/x/y.wav" || pr.Lang != "de-DE" {
		t.Fatalf("prompt %+v", pr)
	}
}
