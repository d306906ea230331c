package tts

import (
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Segment is one piece of a prompt: text to speak, or silence.
type Segment struct {
	// Text is the text to speak; empty for a silence.
	Text string
	// Silence is the length of a pause (a <break>).
	Silence time.Duration
}

// Break strengths (SSML 1.1 section 3.2.3) as durations.
var breakStrength = map[string]time.Duration{
	"none":     0,
	"x-weak":   100 * time.Millisecond,
	"weak":     250 * time.Millisecond,
	"medium":   500 * time.Millisecond,
	"strong":   time.Second,
	"x-strong": 2 * time.Second,
}

// defaultBreak is the pause of a <break/> with no attribute (medium).
const defaultBreak = 500 * time.Millisecond

// maxSSMLDepth bounds element nesting in SSML input.
const maxSSMLDepth = 64

// IsSSML reports whether s looks like an SSML document (it starts, after
// white space, with an XML declaration or a <speak> element).
func IsSSML(s string) bool {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	return strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<speak")
}

// ParseSSML converts an SSML document to segments for a plain-text engine:
// text with tags removed and white space collapsed, <break> as silence
// (time, else strength; each at most maxBreak), <say-as
// interpret-as="digits"> spelled digit by digit, "characters" and
// "spell-out" character by character, <sub alias> replaced by its alias;
// <desc>, <metadata>, <lexicon>, <meta> and <mark> contribute nothing.
// <audio> contributes its fallback content (a text engine cannot play the
// audio: renderers that can should split prompts into parts first).
// Malformed XML is not an error: the tags are stripped and the remaining
// text spoken.
func ParseSSML(doc string, maxBreak time.Duration) []Segment {
	segs, err := parseSSML(doc, maxBreak)
	if err != nil {
		return textSegments(stripTags(doc))
	}
	return segs
}

type ssmlBuilder struct {
	segs []Segment
	text strings.Builder
}

func (b *ssmlBuilder) addText(s string) {
	b.text.WriteString(s)
	b.text.WriteByte(' ')
}

func (b *ssmlBuilder) flush() {
	if t := collapseSpace(b.text.String()); t != "" {
		b.segs = append(b.segs, Segment{Text: t})
	}
	b.text.Reset()
}

func (b *ssmlBuilder) addSilence(d time.Duration) {
	if d <= 0 {
		return
	}
	b.flush()
	if n := len(b.segs); n > 0 && b.segs[n-1].Text == "" {
		b.segs[n-1].Silence += d
		return
	}
	b.segs = append(b.segs, Segment{Silence: d})
}

func parseSSML(doc string, maxBreak time.Duration) ([]Segment, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	var b ssmlBuilder
	// Each open element records how its text is handled.
	type frame struct {
		mode  string // "", "skip", "digits", "chars", "sub"
		inner strings.Builder
	}
	var stack []*frame
	mode := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if m := stack[i].mode; m != "" {
				return m
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxSSMLDepth {
				return nil, errors.New("ssml nested too deeply")
			}
			fr := &frame{}
			outer := mode()
			switch t.Name.Local {
			case "break":
				if outer == "" {
					b.addSilence(min(breakDuration(t), maxBreak))
				}
			case "desc", "metadata", "lexicon", "meta", "mark":
				fr.mode = "skip"
			case "say-as":
				switch strings.ToLower(attr(t, "interpret-as")) {
				case "digits":
					fr.mode = "digits"
				case "characters", "spell-out", "letters":
					fr.mode = "chars"
				}
			case "sub":
				fr.mode = "skip"
				if outer == "" {
					b.addText(attr(t, "alias"))
				}
			}
			if outer == "skip" {
				fr.mode = "skip"
			}
			stack = append(stack, fr)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("unbalanced ssml")
			}
			fr := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if (fr.mode == "digits" || fr.mode == "chars") && mode() == "" {
				b.addText(spell(fr.inner.String(), fr.mode == "digits"))
			}
		case xml.CharData:
			switch m := mode(); m {
			case "":
				b.addText(string(t))
			case "digits", "chars":
				// Innermost spelling element collects the text.
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i].mode == m {
						stack[i].inner.Write(t)
						break
					}
				}
			}
		}
	}
	b.flush()
	return b.segs, nil
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// breakDuration reads a <break>'s time ("250ms", "1.5s") or strength.
func breakDuration(e xml.StartElement) time.Duration {
	if t := attr(e, "time"); t != "" {
		if d, ok := parseSSMLTime(t); ok {
			return d
		}
	}
	if s := attr(e, "strength"); s != "" {
		if d, ok := breakStrength[strings.ToLower(s)]; ok {
			return d
		}
	}
	return defaultBreak
}

// parseSSMLTime parses an SSML time designation: a non-negative number
// followed by "s" or "ms" (SSML 1.1 section 2.4).
func parseSSMLTime(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	unit := time.Second
	switch {
	case strings.HasSuffix(s, "ms"):
		unit, s = time.Millisecond, strings.TrimSuffix(s, "ms")
	case strings.HasSuffix(s, "s"):
		s = strings.TrimSuffix(s, "s")
	default:
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0 && v <= 3600) || s == "" || s[0] == '+' {
		return 0, false
	}
	return time.Duration(v * float64(unit)), true
}

// spell separates characters with spaces so the engine reads them one by
// one; digits-only keeps digits and drops other characters except
// separators, which become short pauses (commas).
func spell(s string, digitsOnly bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			continue
		case digitsOnly && !unicode.IsDigit(r):
			if r == '-' || r == '.' || r == '/' || r == '(' || r == ')' {
				b.WriteString(", ")
			}
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.TrimSuffix(strings.TrimSpace(b.String()), ",")
}

// collapseSpace trims s and replaces white-space runs with one space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func textSegments(s string) []Segment {
	if t := collapseSpace(s); t != "" {
		return []Segment{{Text: t}}
	}
	return nil
}

// stripTags removes anything between '<' and '>' and decodes the five XML
// entities: the best effort for malformed markup.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteByte(' ')
		case r == '>' && in:
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&apos;", "'", "&amp;", "&").Replace(b.String())
}
