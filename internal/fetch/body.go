package fetch

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/opengvp/gvp/internal/vxml"
)

// FileValue is a submitted value sent as a file part with
// multipart/form-data: a recording with its media type (the interpreter
// submits <record> variables as such). An empty Filename defaults to the
// variable name plus an extension for the media type, an empty ContentType
// is sniffed. A plain []byte value is sent the same way, with a media type
// sniffed from its first bytes (RIFF/WAVE: audio/wav, Sun .au: audio/basic,
// otherwise application/octet-stream).
type FileValue = vxml.FileValue

// sniffAudio returns the media type and file extension of a recording.
func sniffAudio(b []byte) (contentType, ext string) {
	switch {
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return "audio/wav", ".wav"
	case len(b) >= 4 && string(b[0:4]) == ".snd":
		return "audio/basic", ".au"
	}
	return "application/octet-stream", ".bin"
}

// stringValue renders a non-file value as text.
func stringValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case FileValue:
		return string(x.Data)
	case *FileValue:
		return string(x.Data)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// encodeQuery encodes values as application/x-www-form-urlencoded in
// namelist order (url.Values.Encode would sort them).
func encodeQuery(values []vxml.NameValue) string {
	var b strings.Builder
	for i, nv := range values {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(nv.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(stringValue(nv.Value)))
	}
	return b.String()
}

// withQuery appends an encoded query to raw, before any fragment.
func withQuery(raw, query string) string {
	if query == "" {
		return raw
	}
	raw, _, _ = strings.Cut(raw, "#")
	if strings.Contains(raw, "?") {
		if strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "&") {
			return raw + query
		}
		return raw + "&" + query
	}
	return raw + "?" + query
}

// encodeBody builds a POST body for values with enctype (default
// application/x-www-form-urlencoded).
func encodeBody(enctype string, values []vxml.NameValue) (body []byte, contentType string, err error) {
	mt := strings.ToLower(strings.TrimSpace(enctype))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	switch mt {
	case "", vxml.EnctypeURLEncoded:
		return []byte(encodeQuery(values)), vxml.EnctypeURLEncoded, nil
	case vxml.EnctypeMultipart:
		return encodeMultipart(values)
	}
	return nil, "", fmt.Errorf("unsupported enctype %q", enctype)
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

func encodeMultipart(values []vxml.NameValue) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, nv := range values {
		var f *FileValue
		switch x := nv.Value.(type) {
		case []byte:
			f = &FileValue{Data: x}
		case FileValue:
			f = &x
		case *FileValue:
			f = x
		}
		if f == nil {
			if err := w.WriteField(nv.Name, stringValue(nv.Value)); err != nil {
				return nil, "", fmt.Errorf("write field %s: %w", nv.Name, err)
			}
			continue
		}
		ct, ext := sniffAudio(f.Data)
		if f.ContentType != "" {
			ct = f.ContentType
		}
		name := f.Filename
		if name == "" {
			name = nv.Name + ext
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`,
			quoteEscaper.Replace(nv.Name), quoteEscaper.Replace(name)))
		h.Set("Content-Type", ct)
		pw, err := w.CreatePart(h)
		if err != nil {
			return nil, "", fmt.Errorf("create part %s: %w", nv.Name, err)
		}
		if _, err := pw.Write(f.Data); err != nil {
			return nil, "", fmt.Errorf("write part %s: %w", nv.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", fmt.Errorf("close multipart body: %w", err)
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}
