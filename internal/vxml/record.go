package vxml

import (
	"fmt"
	"mime"
	"strings"

	"github.com/dop251/goja"

	"github.com/opengvp/gvp/internal/media/wav"
)

// RecordFormat is the file format of a recording, resolved from the <record>
// type attribute (VoiceXML 2.0 section 2.3.6 and Appendix E). The zero value
// is a 16-bit linear WAV file.
type RecordFormat struct {
	// ContentType is the recording's media type as asked for, without
	// parameters ("audio/wav" when the document gives no type); <submit>
	// sends the recording with it.
	ContentType string
	// Raw is true for headerless samples; otherwise the recording is a
	// RIFF/WAVE file.
	Raw bool
	// Encoding is the sample encoding (every recording is 8 kHz mono).
	Encoding wav.Encoding
}

// Ext returns the file name extension of the format: ".ul" and ".al" for raw
// mu-law and A-law, ".wav" otherwise.
func (f RecordFormat) Ext() string {
	switch {
	case f.Raw && f.Encoding == wav.EncodingALaw:
		return ".al"
	case f.Raw:
		return ".ul"
	}
	return ".wav"
}

// PropertyRecordWAVCodec is the platform property giving the sample encoding
// of WAV recordings whose type names none: "linear" (16-bit, the default),
// "ulaw" or "alaw" (values as for the codec parameter of ParseRecordType).
const PropertyRecordWAVCodec = "org.opengvp.record.wavcodec"

// EventUnsupportedFormat is thrown for a <record> type the platform cannot
// produce.
const EventUnsupportedFormat = "error.unsupported.format"

// ParseRecordType resolves a <record> type attribute. Supported, all 8 kHz
// mono:
//
//	""                                    audio/wav, encoding from codec (16-bit linear by default)
//	audio/basic                           raw (headerless) mu-law
//	audio/x-alaw-basic                    raw (headerless) A-law
//	audio/wav, audio/x-wav, audio/wave,   RIFF/WAVE file; the encoding comes from the type's
//	audio/vnd.wave                        codec parameter, else from codec
//
// A codec (parameter or property) is "linear" (also "pcm", "pcm16", "l16",
// or the WAVE format tag "1"), "ulaw" ("mulaw", "pcmu", "g711u", "7") or
// "alaw" ("pcma", "g711a", "6"). Anything else is an error, for which the
// interpreter throws error.unsupported.format.
func ParseRecordType(typ, codec string) (RecordFormat, error) {
	typ = strings.TrimSpace(typ)
	if typ == "" {
		typ = "audio/wav"
	}
	mt, params, err := mime.ParseMediaType(typ)
	if err != nil {
		return RecordFormat{}, fmt.Errorf("record type %q: %v", typ, err)
	}
	f := RecordFormat{ContentType: mt}
	switch mt {
	case "audio/basic":
		f.Raw, f.Encoding = true, wav.EncodingMuLaw
	case "audio/x-alaw-basic":
		f.Raw, f.Encoding = true, wav.EncodingALaw
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		if c, ok := params["codec"]; ok {
			codec = c
		}
		enc, ok := recordCodec(codec)
		if !ok {
			return RecordFormat{}, fmt.Errorf("record type %q: codec %q is not supported", typ, codec)
		}
		f.Encoding = enc
	default:
		return RecordFormat{}, fmt.Errorf("record type %q is not supported (audio/basic, audio/x-alaw-basic, audio/wav, audio/x-wav)", typ)
	}
	return f, nil
}

func recordCodec(name string) (wav.Encoding, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "linear", "pcm", "pcm16", "l16", "1":
		return wav.EncodingPCM16, true
	case "ulaw", "mulaw", "mu-law", "pcmu", "g711u", "7":
		return wav.EncodingMuLaw, true
	case "alaw", "a-law", "pcma", "g711a", "6":
		return wav.EncodingALaw, true
	}
	return 0, false
}

// recordingMeta travels with a recording's ArrayBuffer (under a symbol only
// the interpreter holds) so that <submit> sends it with its media type.
type recordingMeta struct {
	contentType, filename string
}

// recordingValue wraps audio as the ArrayBuffer value of a <record> variable.
func (s *session) recordingValue(audio []byte, meta recordingMeta) goja.Value {
	rt := s.js.rt
	o := rt.ToValue(rt.NewArrayBuffer(audio)).ToObject(rt)
	if s.recSym == nil {
		s.recSym = goja.NewSymbol("recording")
	}
	_ = o.SetSymbol(s.recSym, rt.ToValue(meta))
	return o
}

// recordingFile returns the submitted form of a recording value: the bytes
// with the media type and file name the <record> gave them.
func (s *session) recordingFile(v goja.Value, data []byte) (FileValue, bool) {
	o, ok := v.(*goja.Object)
	if !ok || s.recSym == nil {
		return FileValue{}, false
	}
	mv := o.GetSymbol(s.recSym)
	if mv == nil {
		return FileValue{}, false
	}
	m, ok := mv.Export().(recordingMeta)
	if !ok {
		return FileValue{}, false
	}
	return FileValue{Filename: m.filename, ContentType: m.contentType, Data: data}, true
}
