package vxml

import (
	"strings"
	"testing"

	"github.com/opengvp/gvp/internal/media/wav"
)

func TestParseRecordType(t *testing.T) {
	for _, tc := range []struct {
		typ, codec string
		want       RecordFormat
	}{
		{"", "", RecordFormat{ContentType: "audio/wav", Encoding: wav.EncodingPCM16}},
		{"", "alaw", RecordFormat{ContentType: "audio/wav", Encoding: wav.EncodingALaw}},
		{"audio/basic", "alaw", RecordFormat{ContentType: "audio/basic", Raw: true, Encoding: wav.EncodingMuLaw}},
		{"Audio/X-ALAW-Basic", "", RecordFormat{ContentType: "audio/x-alaw-basic", Raw: true, Encoding: wav.EncodingALaw}},
		{"audio/x-wav", "PCMU", RecordFormat{ContentType: "audio/x-wav", Encoding: wav.EncodingMuLaw}},
		{"audio/wav; codec=6", "ulaw", RecordFormat{ContentType: "audio/wav", Encoding: wav.EncodingALaw}},
		{"audio/vnd.wave;codec=1", "alaw", RecordFormat{ContentType: "audio/vnd.wave", Encoding: wav.EncodingPCM16}},
	} {
		got, err := ParseRecordType(tc.typ, tc.codec)
		if err != nil || got != tc.want {
			t.Errorf("%q codec %q: %+v %v, want %+v", tc.typ, tc.codec, got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"audio/mpeg", ""}, {"audio/wav;codec=gsm", ""}, {"audio/x-wav", "opus"}, {"audio/", ""}} {
		if f, err := ParseRecordType(bad[0], bad[1]); err == nil {
			t.Errorf("%q codec %q accepted as %+v", bad[0], bad[1], f)
		}
	}
	if e := (RecordFormat{Raw: true, Encoding: wav.EncodingALaw}).Ext(); e != ".al" {
		t.Errorf("ext %q", e)
	}
}

// TestSubmitRecording: a recording is submitted as a FileValue with the media type of its
// <record> type and a file name for it; a copy of its bytes made by the script is plain
// bytes; the platform is asked for the resolved format.
func TestSubmitRecording(t *testing.T) {
	p := NewScriptedPlatform("")
	res, f := runDocs(t, p, map[string]string{
		"main": vxmlDoc(`<property name="org.opengvp.record.wavcodec" value="ulaw"/><form>
			<record name="msg" type="audio/x-alaw-basic"/>
			<record name="memo" type="audio/wav"/>
			<block><var name="copy" expr="msg.slice(0)"/>
				<submit next="next" method="post" enctype="multipart/form-data" namelist="msg memo copy"/></block></form>`),
		"next": vxmlDoc(`<form><block><exit expr="'pass'"/></block></form>`),
	})
	if err := checkExpect(res, "pass"); err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 2 || p.Records[0].Format != (RecordFormat{ContentType: "audio/x-alaw-basic", Raw: true, Encoding: wav.EncodingALaw}) ||
		p.Records[1].Format != (RecordFormat{ContentType: "audio/wav", Encoding: wav.EncodingMuLaw}) || p.Records[0].Type != "audio/x-alaw-basic" {
		t.Fatalf("record requests %+v", p.Records)
	}
	sub := f.Requests[len(f.Requests)-1]
	if !strings.HasSuffix(sub.URL, "next") || len(sub.Values) != 3 {
		t.Fatalf("request %+v", sub)
	}
	msg, ok := sub.Values[0].Value.(FileValue)
	if !ok || msg.ContentType != "audio/x-alaw-basic" || msg.Filename != "msg.al" || len(msg.Data) != 8000 || msg.Data[0] != 0xd5 {
		t.Fatalf("msg %T %v", sub.Values[0].Value, sub.Values[0].Value)
	}
	memo, ok := sub.Values[1].Value.(FileValue)
	if !ok || memo.ContentType != "audio/wav" || memo.Filename != "memo.wav" || string(memo.Data[:4]) != "RIFF" || len(memo.Data) != 58+8000 {
		t.Fatalf("memo %T %v", sub.Values[1].Value, len(memo.Data))
	}
	if cp, ok := sub.Values[2].Value.([]byte); !ok || len(cp) != 8000 {
		t.Fatalf("copy %T", sub.Values[2].Value)
	}
}
