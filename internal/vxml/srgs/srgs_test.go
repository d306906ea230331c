package srgs

import (
	"errors"
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
		"mode dtmf; $r = $<http://x/y.grxml#a>;",
		"mode wat;",
		"",
		"mode dtmf; $r = (1 | ;",
		"mode dtmf; root $nope; $r = 1;",
	}
	for _, s := range bad {
		if _, err := ParseABNF(s, ""); !errors.Is(err, ErrGrammar) {
			t.Errorf("%q: err = %v, want ErrGrammar", s, err)
		}
	}
	badXML := []string{
		`<grammar mode="dtmf"><rule id="a"><ruleref uri="http://x/g.grxml"/></rule></grammar>`,
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

func FuzzParseABNF(f *testing.F) {
	f.Add(yesNoABNF)
	f.Add("mode dtmf; $r = ($d) <3>; $d = 0|1|2|3|4|5|6|7|8|9;")
	f.Add("$a = [x] {out=1} | $GARBAGE y <1->;")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := ParseABNF(src, ModeDTMF)
		if err != nil {
			return
		}
		for _, in := range []string{"", "1", "12#", "*9"} {
			_ = g.MatchDTMF(in)
		}
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(pinXML))
	f.Add([]byte(`<grammar mode="dtmf" root="a"><rule id="a"><item repeat="1-">1<tag>out=1</tag></item></rule></grammar>`))
	f.Fuzz(func(t *testing.T, src []byte) {
		g, err := ParseXML(src, ModeDTMF)
		if err != nil {
			return
		}
		_ = g.MatchDTMF("123#")
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
