package srgs

import (
	"errors"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

const pinXML = `<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" mode="dtmf" root="pin" tag-format="semantics/1.0">
  <rule id="digit"><one-of><item>0</item><item>1</item><item>2</item><item>3</item><item>4</item>
    <item>5</item><item>6</item><item>7</item><item>8</item><item>9</item></one-of></rule>
  <rule id="pin" scope="public">
    <item repeat="2-4"><ruleref uri="#digit"/></item>
    <item repeat="0-1">#</item>
    <tag>out.pin = meta.current().text.replace(/[ #]/g, "");</tag>
  </rule>
</grammar>`

const yesNoABNF = `#ABNF 1.0 UTF-8;
mode dtmf;
root $yn;
tag-format <semantics/1.0>;
// a comment
public $yn = 1 {out = "yes";} | 2 {out = "no";} | * 9 {!{ out = {op: "help"}; }!};
`

func TestMatchStatus(t *testing.T) {
	g, err := ParseXML([]byte(pinXML), ModeDTMF)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in     string
		status Status
		cont   bool
	}{
		{"", Prefix, true},
		{"1", Prefix, true},
		{"12", Complete, true},
		{"1234", Complete, true},
		{"1234#", Complete, false},
		{"12345", NoMatch, false},
		{"1#", NoMatch, false},
		{"*", NoMatch, false},
	}
	for _, tt := range tests {
		r := g.MatchDTMF(tt.in)
		if r.Status != tt.status || r.CanContinue != tt.cont {
			t.Errorf("%q: got %v cont=%v, want %v cont=%v", tt.in, r.Status, r.CanContinue, tt.status, tt.cont)
		}
	}
}

func TestInterpretXML(t *testing.T) {
	g, err := ParseXML([]byte(pinXML), ModeDTMF)
	if err != nil {
		t.Fatal(err)
	}
	rt := goja.New()
	v, err := g.Interpret(rt, g.MatchDTMF("123#"))
	if err != nil {
		t.Fatal(err)
	}
	if got := v.ToObject(rt).Get("pin").String(); got != "123" {
		t.Fatalf("pin = %q", got)
	}
}

func TestABNF(t *testing.T) {
	g, err := ParseABNF(yesNoABNF, "")
	if err != nil {
		t.Fatal(err)
	}
	if g.Mode != ModeDTMF || g.Root != "yn" {
		t.Fatalf("header: %+v", g)
	}
	rt := goja.New()
	for in, want := range map[string]string{"1": "yes", "2": "no"} {
		v, err := g.Interpret(rt, g.MatchDTMF(in))
		if err != nil {
			t.Fatal(err)
		}
		if v.String() != want {
			t.Errorf("%s -> %s, want %s", in, v, want)
		}
	}
	v, err := g.Interpret(rt, g.MatchDTMF("*9"))
	if err != nil {
		t.Fatal(err)
	}
	if v.ToObject(rt).Get("op").String() != "help" {
		t.Errorf("*9 -> %v", v)
	}
	if r := g.MatchDTMF("3"); r.Status != NoMatch {
		t.Errorf("3 -> %v", r.Status)
	}
}

func TestABNFRepeatsAndSpecials(t *testing.T) {
	tests := []struct {
		src    string
		in     string
		status Status
		cont   bool
	}{
		{"mode dtmf; $r = 1 <2-3>;", "11", Complete, true},
		{"mode dtmf; $r = 1 <2->;", "1111111", Complete, true},
		{"mode dtmf; $r = 1 <2>;", "11", Complete, false},
		{"mode dtmf; $r = [1] 2;", "2", Complete, false},
		{"mode dtmf; $r = $NULL 5;", "5", Complete, false},
		{"mode dtmf; $r = $VOID | 5;", "5", Complete, false},
		{"mode dtmf; $r = $VOID;", "", NoMatch, false},
		{"mode dtmf; $r = 9 $GARBAGE #;", "9123#", Complete, true},
		{"mode dtmf; $r = ($d) <3>; $d = 0|1|2|3|4|5|6|7|8|9;", "12", Prefix, true},
		{"mode dtmf; $r = /2/ 1 | /1/ 2;", "2", Complete, false},
		{"mode dtmf; $r = \"1 2\" 3;", "123", Complete, false},
	}
	for _, tt := range tests {
		g, err := ParseABNF(tt.src, "")
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		r := g.MatchDTMF(tt.in)
		if r.Status != tt.status || r.CanContinue != tt.cont {
			t.Errorf("%s on %q: got %v cont=%v want %v cont=%v", tt.src, tt.in, r.Status, r.CanContinue, tt.status, tt.cont)
		}
	}
}

func TestLiteralTagsAndRuleValues(t *testing.T) {
	src := `<grammar mode="dtmf" root="main" tag-format="semantics/1.0-literals" version="1.0">
	<rule id="main"><one-of><item>1<tag>sales</tag></item><item>2<tag>support</tag></item></one-of></rule></grammar>`
	g, err := ParseXML([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	rt := goja.New()
	v, err := g.Interpret(rt, g.MatchDTMF("2"))
	if err != nil || v.String() != "support" {
		t.Fatalf("got %v, %v", v, err)
	}
	// Untagged rules take their token text; rules.X exposes sub-rule values.
	g2, err := ParseABNF(`mode dtmf; root $m; $m = $a $b {out = rules.a + "-" + rules.latest();}; $a = 1 2; $b = 3;`, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err = g2.Interpret(rt, g2.MatchDTMF("123"))
	if err != nil || v.String() != "1 2-3" {
		t.Fatalf("got %v, %v", v, err)
	}
}

func TestParseErrors(t *testing.T) {
	bad := []string{
		"mode dtmf; $r = $undefined;",
		"mode dtmf; $r = 1",
		"mode dtmf; $r = x;",
		"mode dtmf; $r = 1 <5-2>;",
		"mode dtmf; $r = $<http://x/y.grxml#>;",
		"mode dtmf; $r = $<>;",
		"mode dtmf; $r = $<http://x/y.grxml;",
		"mode dtmf; $<http://x/y.grxml> = 1;",
		"mode wat;",
		"",
		"mode dtmf; $r = (1 | ;",
		"mode dtmf; root $nope; $r = 1;",
	}
	for _, s := range bad {
		_, err := ParseABNF(s, "")
		if !errors.Is(err, ErrGrammar) {
			t.Errorf("%q: err = %v, want ErrGrammar", s, err)
		} else if n := strings.Count(err.Error(), ErrGrammar.Error()); n != 1 {
			t.Errorf("%q: %q says %q %d times", s, err, ErrGrammar, n)
		}
	}
	badXML := []string{
		`<grammar mode="dtmf"><rule id="a"><ruleref uri="http://x/g.grxml#"/></rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a"><ruleref/></rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a"><one-of><ruleref uri="#a"/></one-of></rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a">x</rule></grammar>`,
		`<grammar mode="dtmf"><rule>1</rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a">1</rule><rule id="a">2</rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a"><item repeat="x">1</item></rule></grammar>`,
		`<grammar mode="dtmf"><rule id="a">1</rule>`,
		`<notgrammar/>`,
	}
	for _, s := range badXML {
		if _, err := ParseXML([]byte(s), ""); !errors.Is(err, ErrGrammar) {
			t.Errorf("%q: err = %v, want ErrGrammar", s, err)
		}
	}
}

// digitsXML is a grammar other grammars reference: a public rule, a private
// one and a private root.
const digitsXML = `<grammar xmlns="http://www.w3.org/2001/06/grammar" mode="dtmf" root="two" tag-format="semantics/1.0-literals">
  <rule id="digit" scope="public"><one-of><item>1<tag>one</tag></item><item>2<tag>two</tag></item></one-of></rule>
  <rule id="hidden">9</rule>
  <rule id="two"><ruleref uri="#digit"/><ruleref uri="#digit"/></rule>
</grammar>`

func mustXML(t *testing.T, s string) *Grammar {
	t.Helper()
	g, err := ParseXML([]byte(s), ModeDTMF)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestExternalRefs(t *testing.T) {
	digits := mustXML(t, digitsXML)
	top, err := ParseABNF(`#ABNF 1.0; mode dtmf; base <http://app/g/>; tag-format <semantics/1.0>;
		public $pin = $<digits.grxml#digit> $<digits.grxml> * {out.d = rules.digit; out.t = rules.two;} | # $<#star>;
		$star = "*";`, "")
	if err != nil {
		t.Fatal(err)
	}
	if top.Base != "http://app/g/" || len(top.Externals) != 1 {
		t.Fatalf("base %q externals %+v", top.Base, top.Externals)
	}
	ref := top.Externals[0]
	if ref.URI != "digits.grxml" || len(ref.Rules) != 2 || ref.Rules[0] != "digit" || ref.Rules[1] != "" {
		t.Fatalf("external %+v", ref)
	}
	// Not linked: the external rule matches nothing.
	if r := top.MatchDTMF("112*"); r.Status != NoMatch {
		t.Fatalf("unlinked grammar: %v", r.Status)
	}
	linked, err := top.Link(map[*Grammar][]*Grammar{top: {digits}})
	if err != nil {
		t.Fatal(err)
	}
	if linked == top || len(top.imports) != 0 {
		t.Fatal("Link changed the shared grammar")
	}
	for in, want := range map[string]Status{"1": Prefix, "112": Prefix, "121*": Complete, "19": NoMatch, "#*": Complete} {
		if r := linked.MatchDTMF(in); r.Status != want {
			t.Errorf("%q: %v, want %v", in, r.Status, want)
		}
	}
	rt := goja.New()
	v, err := linked.Interpret(rt, linked.MatchDTMF("212*"))
	if err != nil {
		t.Fatal(err)
	}
	// The referenced grammar's literal tags apply to its rules; the root rule
	// of a reference without a fragment is named by its id.
	o := v.ToObject(rt)
	if d, two := o.Get("d").String(), o.Get("two"); d != "two" || two != nil {
		t.Fatalf("d=%q two=%v", d, two)
	}
	// An untagged rule takes its tokens' text.
	if tv := o.Get("t").String(); tv != "1 2" {
		t.Fatalf("t=%q", tv)
	}
}

func TestExternalRefErrors(t *testing.T) {
	digits := mustXML(t, digitsXML)
	voice, err := ParseABNF("mode voice; public $digit = one;", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		src  string
		with *Grammar
	}{
		"private rule":   {`<grammar mode="dtmf"><rule id="r"><ruleref uri="d.grxml#hidden"/></rule></grammar>`, digits},
		"undefined rule": {`<grammar mode="dtmf"><rule id="r"><ruleref uri="d.grxml#nope"/></rule></grammar>`, digits},
		"other mode":     {`<grammar mode="dtmf"><rule id="r"><ruleref uri="v.gram#digit"/></rule></grammar>`, voice},
		"unresolved":     {`<grammar mode="dtmf"><rule id="r"><ruleref uri="d.grxml"/></rule></grammar>`, nil},
	} {
		g := mustXML(t, tc.src)
		imports := map[*Grammar][]*Grammar{g: {tc.with}}
		if _, err := g.Link(imports); !errors.Is(err, ErrGrammar) {
			t.Errorf("%s: err = %v, want ErrGrammar", name, err)
		}
	}
	// A private root is referenced through the document without a fragment.
	g := mustXML(t, `<grammar mode="dtmf"><rule id="r"><ruleref uri="d.grxml" type="application/srgs+xml"/></rule></grammar>`)
	if g.Externals[0].Type != "application/srgs+xml" {
		t.Fatalf("type %q", g.Externals[0].Type)
	}
	l, err := g.Link(map[*Grammar][]*Grammar{g: {digits}})
	if err != nil {
		t.Fatal(err)
	}
	if r := l.MatchDTMF("21"); r.Status != Complete {
		t.Fatalf("root of the referenced grammar: %v", r.Status)
	}
	if _, err := digits.WithRoot("hidden"); !errors.Is(err, ErrGrammar) {
		t.Fatalf("WithRoot of a private rule: %v", err)
	}
	d, err := digits.WithRoot("digit")
	if err != nil || d.Root != "digit" || digits.Root != "two" || d.MatchDTMF("1").Status != Complete {
		t.Fatalf("WithRoot: %v %+v", err, d)
	}
}

// TestExternalCycle: two documents that reference each other are linked once
// each; right recursion through them matches, left recursion ends at the
// matcher's depth bound.
func TestExternalCycle(t *testing.T) {
	a := mustXML(t, `<grammar mode="dtmf" root="a"><rule id="a" scope="public">1 <item repeat="0-1"><ruleref uri="b.grxml#b"/></item></rule></grammar>`)
	b := mustXML(t, `<grammar mode="dtmf" root="b"><rule id="b" scope="public">2 <ruleref uri="a.grxml#a"/></rule></grammar>`)
	imports := map[*Grammar][]*Grammar{a: {b}, b: {a}}
	l, err := a.Link(imports)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]Status{"1": Complete, "121": Complete, "12121": Complete, "12": Prefix, "11": NoMatch} {
		if r := l.MatchDTMF(in); r.Status != want {
			t.Errorf("%q: %v, want %v", in, r.Status, want)
		}
	}
	left := mustXML(t, `<grammar mode="dtmf" root="x"><rule id="x" scope="public"><ruleref uri="self.grxml#x"/> 1</rule></grammar>`)
	l, err = left.Link(map[*Grammar][]*Grammar{left: {left}})
	if err != nil {
		t.Fatal(err)
	}
	if r := l.MatchDTMF("111"); r.Status == Complete {
		t.Fatal("left recursion matched")
	}
}

func TestLeftRecursionTerminates(t *testing.T) {
	g, err := ParseABNF("mode dtmf; $r = $r 1 | 1;", "")
	if err != nil {
		t.Fatal(err)
	}
	_ = g.MatchDTMF("1111")
	// Exponentially ambiguous grammar stays within the step budget.
	g, err = ParseABNF("mode dtmf; $r = ((1|1|1) <0->) <0-> 2;", "")
	if err != nil {
		t.Fatal(err)
	}
	if r := g.MatchDTMF("1111111111111111111111111111113"); r.Status == Complete {
		t.Fatal("unexpected match")
	}
}

// selfLinked links every external reference of g to g itself (a cycle), or returns g when
// that does not link.
func selfLinked(g *Grammar) *Grammar {
	list := make([]*Grammar, len(g.Externals))
	for i := range list {
		list[i] = g
	}
	if l, err := g.Link(map[*Grammar][]*Grammar{g: list}); err == nil {
		return l
	}
	return g
}

func FuzzParseABNF(f *testing.F) {
	f.Add(yesNoABNF)
	f.Add("mode dtmf; $r = ($d) <3>; $d = 0|1|2|3|4|5|6|7|8|9;")
	f.Add("$a = [x] {out=1} | $GARBAGE y <1->;")
	f.Add("mode dtmf; public $r = 1 [$<self.gram#r>] | $<other.gram>~<application/srgs> 2;")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := ParseABNF(src, ModeDTMF)
		if err != nil {
			return
		}
		g = selfLinked(g)
		for _, in := range []string{"", "1", "12#", "*9"} {
			_ = g.MatchDTMF(in)
		}
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(pinXML))
	f.Add([]byte(`<grammar mode="dtmf" root="a"><rule id="a"><item repeat="1-">1<tag>out=1</tag></item></rule></grammar>`))
	f.Add([]byte(`<grammar mode="dtmf" root="a"><rule id="a" scope="public">1<ruleref uri="x.grxml#a"/></rule></grammar>`))
	f.Fuzz(func(t *testing.T, src []byte) {
		g, err := ParseXML(src, ModeDTMF)
		if err != nil {
			return
		}
		_ = selfLinked(g).MatchDTMF("123#")
	})
}

func FuzzMatch(f *testing.F) {
	g, err := ParseXML([]byte(pinXML), ModeDTMF)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("1234#")
	f.Add("*#")
	f.Fuzz(func(t *testing.T, in string) {
		r := g.MatchDTMF(in)
		if r.Status == Complete {
			if _, err := g.Interpret(goja.New(), r); err != nil {
				t.Fatalf("interpret %q: %v", in, err)
			}
		}
	})
}
