package vxml

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dop251/goja"

	"github.com/opengvp/gvp/internal/vxml/srgs"
)

// matcherI is an active DTMF grammar: SRGS, builtin or generated.
type matcherI interface {
	match(keys string) srgs.Result
	interp(js *scriptEnv, r srgs.Result) (goja.Value, error)
}

type srgsMatcher struct{ g *srgs.Grammar }

func (m srgsMatcher) match(keys string) srgs.Result { return m.g.MatchDTMF(keys) }

func (m srgsMatcher) interp(js *scriptEnv, r srgs.Result) (goja.Value, error) {
	var v goja.Value
	err := js.guard("grammar tags", func() error {
		var err error
		v, err = m.g.Interpret(js.rt, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A rule without tags yields its token text; for DTMF drop the spaces.
	if s, ok := v.Export().(string); ok && m.g.Mode == srgs.ModeDTMF {
		if strings.Join(r.Tokens, " ") == s {
			return js.rt.ToValue(strings.Join(r.Tokens, "")), nil
		}
	}
	return v, nil
}

// seqMatcher matches exact key sequences (options, choices, link dtmf).
type seqMatcher struct {
	seqs   []string
	values []string
}

func (m *seqMatcher) add(keys, value string) {
	m.seqs = append(m.seqs, strings.Join(strings.Fields(keys), ""))
	m.values = append(m.values, value)
}

func (m *seqMatcher) match(keys string) srgs.Result {
	r := srgs.Result{Tokens: splitKeys(keys)}
	for _, s := range m.seqs {
		switch {
		case s == keys:
			r.Status = srgs.Complete
		case strings.HasPrefix(s, keys):
			r.CanContinue = true
		}
	}
	if r.Status != srgs.Complete && r.CanContinue {
		r.Status = srgs.Prefix
	}
	return r
}

func (m *seqMatcher) interp(js *scriptEnv, r srgs.Result) (goja.Value, error) {
	keys := strings.Join(r.Tokens, "")
	for i, s := range m.seqs {
		if s == keys {
			return js.rt.ToValue(m.values[i]), nil
		}
	}
	return goja.Undefined(), nil
}

func splitKeys(keys string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, string(k))
	}
	return out
}

// builtinMatcher implements the DTMF builtin grammars of VoiceXML 2.0
// Appendix P: boolean, date, digits, currency, number, phone, time.
type builtinMatcher struct {
	kind     string
	min, max int // digits; max < 0 unbounded
	yes, no  string
}

// parseBuiltin parses "digits?minlength=2;maxlength=4", with an optional
// "builtin:dtmf/" or "builtin:grammar/" prefix.
func parseBuiltin(spec string) (*builtinMatcher, error) {
	spec = strings.TrimPrefix(spec, "builtin:")
	if i := strings.IndexByte(spec, '/'); i >= 0 {
		kind := spec[:i]
		if kind == "voice" {
			return nil, fmt.Errorf("voice builtin grammars are not supported")
		}
		spec = spec[i+1:]
	}
	name, params, _ := strings.Cut(spec, "?")
	b := &builtinMatcher{kind: name, min: 1, max: -1, yes: "1", no: "2"}
	switch name {
	case "boolean", "date", "digits", "currency", "number", "phone", "time":
	default:
		return nil, fmt.Errorf("unknown builtin type %q", name)
	}
	for _, kv := range strings.Split(params, ";") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		switch k {
		case "minlength":
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bad %s %q", k, v)
			}
			b.min = n
		case "maxlength":
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad %s %q", k, v)
			}
			b.max = n
		case "length":
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad %s %q", k, v)
			}
			b.min, b.max = n, n
		case "y":
			b.yes = v
		case "n":
			b.no = v
		default:
			return nil, fmt.Errorf("unknown builtin parameter %q", k)
		}
	}
	if b.max >= 0 && b.min > b.max {
		return nil, fmt.Errorf("minlength %d > maxlength %d", b.min, b.max)
	}
	return b, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (b *builtinMatcher) match(keys string) srgs.Result {
	r := srgs.Result{Tokens: splitKeys(keys)}
	set := func(complete, cont bool) srgs.Result {
		r.CanContinue = cont
		switch {
		case complete:
			r.Status = srgs.Complete
		case cont:
			r.Status = srgs.Prefix
		}
		return r
	}
	n := len(keys)
	switch b.kind {
	case "boolean":
		if keys == "" {
			return set(false, true)
		}
		if keys == b.yes || keys == b.no {
			return set(true, false)
		}
		return set(false, strings.HasPrefix(b.yes, keys) || strings.HasPrefix(b.no, keys))
	case "digits":
		if !allDigits(keys) || (b.max >= 0 && n > b.max) {
			return r
		}
		return set(n >= b.min && n > 0, b.max < 0 || n < b.max)
	case "number", "currency":
		whole, frac, dot := strings.Cut(keys, "*")
		if !allDigits(whole) || !allDigits(frac) || strings.Contains(frac, "*") {
			return r
		}
		if b.kind == "currency" && len(frac) > 2 {
			return r
		}
		return set(whole != "" && (!dot || frac != ""), true)
	case "phone":
		num, ext, _ := strings.Cut(keys, "*")
		if !allDigits(num) || !allDigits(ext) {
			return r
		}
		return set(num != "" && !strings.HasSuffix(keys, "*"), true)
	case "date":
		if !allDigits(keys) || n > 8 {
			return r
		}
		if n == 8 {
			m, d := atoiDefault(keys[4:6], 0), atoiDefault(keys[6:8], 0)
			if m < 1 || m > 12 || d < 1 || d > 31 {
				return r
			}
			return set(true, false)
		}
		return set(false, true)
	case "time":
		if !allDigits(keys) || n > 4 {
			return r
		}
		if n == 4 {
			h, m := atoiDefault(keys[:2], 99), atoiDefault(keys[2:], 99)
			if h > 23 || m > 59 {
				return r
			}
			return set(true, false)
		}
		return set(false, true)
	}
	return r
}

func (b *builtinMatcher) interp(js *scriptEnv, r srgs.Result) (goja.Value, error) {
	keys := strings.Join(r.Tokens, "")
	switch b.kind {
	case "boolean":
		return js.rt.ToValue(keys == b.yes), nil
	case "number":
		f, err := strconv.ParseFloat(strings.Replace(keys, "*", ".", 1), 64)
		if err != nil {
			return nil, semanticf("number %q: %v", keys, err)
		}
		return js.rt.ToValue(f), nil
	case "currency":
		whole, frac, _ := strings.Cut(keys, "*")
		for len(frac) < 2 {
			frac += "0"
		}
		return js.rt.ToValue(strings.TrimLeft(whole, "0") + "." + frac), nil
	case "phone":
		return js.rt.ToValue(strings.Replace(keys, "*", "x", 1)), nil
	case "time":
		suffix := "h"
		if h := atoiDefault(keys[:2], 0); h >= 1 && h <= 12 {
			suffix = "?"
		}
		return js.rt.ToValue(keys + suffix), nil
	}
	return js.rt.ToValue(keys), nil
}
