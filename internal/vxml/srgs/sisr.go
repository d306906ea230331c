package srgs

import (
	"fmt"
	"strings"
	"sync"

	"github.com/dop251/goja"
)

// maxTagPrograms bounds the shared cache of compiled tag scripts.
const maxTagPrograms = 4096

var (
	tagMu    sync.Mutex
	tagProgs = map[string]*goja.Program{}
)

func tagProgram(text string) (*goja.Program, error) {
	tagMu.Lock()
	p, ok := tagProgs[text]
	tagMu.Unlock()
	if ok {
		return p, nil
	}
	p, err := goja.Compile("tag", "(function(out, rules, meta){\n"+text+"\n;return out;})", false)
	if err != nil {
		return nil, err
	}
	tagMu.Lock()
	if len(tagProgs) >= maxTagPrograms {
		clear(tagProgs)
	}
	tagProgs[text] = p
	tagMu.Unlock()
	return p, nil
}

type ruleFrame struct {
	name   string
	out    goja.Value
	tagged bool
	tokens []string
	rules  *goja.Object
	meta   *goja.Object
	latest goja.Value
}

// Interpret computes the SISR semantic result of a complete match in rt:
// each rule's "out" starts as an empty object; script tags run with out,
// rules (with rules.latest()) and meta (meta.current().text) in scope;
// literal tags set the rule's value to the tag text; a rule whose expansion
// ran no tag takes the text of its tokens. The result is the root rule's
// value. A rule of another grammar document (an external reference) is
// interpreted with that grammar's tag format and is named rules.<rule> in
// the referencing rule (its root rule's name for a reference without a
// fragment).
func (g *Grammar) Interpret(rt *goja.Runtime, r Result) (v goja.Value, err error) {
	if r.Status != Complete {
		return nil, fmt.Errorf("interpret: input did not match")
	}
	var events []*pathNode
	for p := r.path; p != nil; p = p.prev {
		events = append(events, p)
	}
	defer func() {
		if x := recover(); x != nil {
			err = fmt.Errorf("interpret: %v", x)
		}
	}()
	var stack []*ruleFrame
	newFrame := func(name string) *ruleFrame {
		f := &ruleFrame{name: name, out: rt.NewObject(), rules: rt.NewObject(), meta: rt.NewObject()}
		f.latest = goja.Undefined()
		_ = f.rules.Set("latest", func() goja.Value { return f.latest })
		_ = f.meta.Set("current", func() goja.Value {
			o := rt.NewObject()
			_ = o.Set("text", strings.Join(f.tokens, " "))
			return o
		})
		return f
	}
	var result goja.Value = goja.Undefined()
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		switch ev.kind {
		case pEnter:
			stack = append(stack, newFrame(ev.text))
		case pToken:
			for _, f := range stack {
				f.tokens = append(f.tokens, ev.text)
			}
		case pTag:
			f := stack[len(stack)-1]
			f.tagged = true
			if ev.lit {
				f.out = rt.ToValue(strings.TrimSpace(ev.text))
				continue
			}
			prog, err := tagProgram(ev.text)
			if err != nil {
				return nil, fmt.Errorf("compile tag %q: %w", ev.text, err)
			}
			fv, err := rt.RunProgram(prog)
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", ev.text, err)
			}
			fn, ok := goja.AssertFunction(fv)
			if !ok {
				return nil, fmt.Errorf("tag %q: not a function", ev.text)
			}
			out, err := fn(goja.Undefined(), f.out, f.rules, f.meta)
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", ev.text, err)
			}
			f.out = out
		case pExit:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			val := f.out
			if !f.tagged {
				val = rt.ToValue(strings.Join(f.tokens, " "))
			}
			if len(stack) == 0 {
				result = val
				continue
			}
			parent := stack[len(stack)-1]
			_ = parent.rules.Set(f.name, val)
			parent.latest = val
			m := rt.NewObject()
			_ = m.Set("text", strings.Join(f.tokens, " "))
			_ = parent.meta.Set(f.name, m)
		}
	}
	return result, nil
}
