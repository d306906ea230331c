package vxml

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// grammarDoc is a document whose field uses the grammar src (and exits with the field's
// value), catching error.badfetch as 'badfetch'.
func grammarDoc(src string) string {
	return vxmlDoc(`<catch event="error.badfetch"><exit expr="'badfetch'"/></catch>
		<form><field name="f"><grammar src="` + src + `"/><filled><exit expr="'' + f"/></filled></field></form>`)
}

func runGrammarDoc(t *testing.T, input, src string, files map[string]string) (*Result, *MemoryFetcher) {
	t.Helper()
	f := NewMemoryFetcher()
	f.Add(testBase+"main", "application/voicexml+xml", []byte(grammarDoc(src)))
	for name, body := range files {
		f.Add(testBase+name, "application/srgs+xml", []byte(body))
	}
	in := testInterpreter(t, f)
	return in.Run(context.Background(), NewScriptedPlatform(input), SessionInfo{}, testBase+"main"), f
}

func grxml(rules string) string {
	return `<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" mode="dtmf">` + rules + `</grammar>`
}

// TestExternalRefsResolveAgainstTheGrammar: a grammar in a folder references a sibling by a
// relative URI and one elsewhere through its xml:base; each document is fetched once.
func TestExternalRefsResolveAgainstTheGrammar(t *testing.T) {
	files := map[string]string{
		"g/main.grxml": grxml(`<rule id="r" scope="public"><ruleref uri="one.grxml#one"/><ruleref uri="lib/two.grxml#two"/><ruleref uri="one.grxml#one"/></rule>`),
		"g/one.grxml":  grxml(`<rule id="one" scope="public">1</rule>`),
		// Relative to its own xml:base, not to g/lib/.
		"g/lib/two.grxml": `<grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" mode="dtmf" xml:base="` + testBase + `shared/">` +
			`<rule id="two" scope="public"><ruleref uri="digit.grxml"/></rule></grammar>`,
		"shared/digit.grxml": grxml(`<rule id="d">2</rule>`),
	}
	res, f := runGrammarDoc(t, "121", "g/main.grxml", files)
	if res.Value != "121" {
		t.Fatalf("value %v (%s %s)", res.Value, res.Event, res.Message)
	}
	fetched := map[string]int{}
	for _, r := range f.Requests {
		fetched[strings.TrimPrefix(r.URL, testBase)]++
	}
	for name := range files {
		if fetched[name] != 1 {
			t.Errorf("%s fetched %d times, want once", name, fetched[name])
		}
	}
}

// TestExternalRefLimits: a chain of grammar documents deeper than MaxGrammarImportDepth,
// or more documents than MaxGrammarImports, fails with error.badfetch instead of fetching on.
func TestExternalRefLimits(t *testing.T) {
	chain := map[string]string{}
	for i := 0; i <= MaxGrammarImportDepth+1; i++ {
		chain[fmt.Sprintf("c%d.grxml", i)] = grxml(fmt.Sprintf(`<rule id="r" scope="public">1 <item repeat="0-1"><ruleref uri="c%d.grxml"/></item></rule>`, i+1))
	}
	res, f := runGrammarDoc(t, "1", "c0.grxml", chain)
	if res.Value != "badfetch" {
		t.Fatalf("deep chain: %v %s %s", res.Value, res.Event, res.Message)
	}
	if n := len(f.Requests); n > MaxGrammarImportDepth+2 {
		t.Fatalf("%d fetches for a chain bounded at %d", n, MaxGrammarImportDepth)
	}
	// Within the bound the chain works.
	short := map[string]string{}
	for i := 0; i < MaxGrammarImportDepth; i++ {
		short[fmt.Sprintf("c%d.grxml", i)] = chain[fmt.Sprintf("c%d.grxml", i)]
	}
	short[fmt.Sprintf("c%d.grxml", MaxGrammarImportDepth)] = grxml(`<rule id="r">1</rule>`)
	if res, _ := runGrammarDoc(t, "111#", "c0.grxml", short); res.Value != "111" {
		t.Fatalf("chain of %d: %v %s %s", MaxGrammarImportDepth, res.Value, res.Event, res.Message)
	}
	var refs strings.Builder
	wide := map[string]string{}
	for i := 0; i <= MaxGrammarImports; i++ {
		fmt.Fprintf(&refs, `<item><ruleref uri="w%d.grxml"/></item>`, i)
		wide[fmt.Sprintf("w%d.grxml", i)] = grxml(`<rule id="r">1</rule>`)
	}
	wide["top.grxml"] = grxml(`<rule id="top" scope="public"><one-of>` + refs.String() + `</one-of></rule>`)
	if res, _ := runGrammarDoc(t, "1", "top.grxml", wide); res.Value != "badfetch" {
		t.Fatalf("wide: %v %s %s", res.Value, res.Event, res.Message)
	}
}

// TestExternalGrammarParsedOnce: the grammars an external reference pulls in are parsed once
// and shared through the Cache by every session and every collection.
func TestExternalGrammarParsedOnce(t *testing.T) {
	f := NewMemoryFetcher()
	f.Add(testBase+"main", "application/voicexml+xml", []byte(vxmlDoc(`<form>
		<field name="a"><grammar mode="dtmf" version="1.0" root="r"><rule id="r"><ruleref uri="d.grxml#d"/></rule></grammar></field>
		<field name="b"><grammar mode="dtmf" version="1.0" root="r"><rule id="r"><ruleref uri="d.grxml#d"/></rule></grammar></field>
		<block><exit expr="a + b"/></block></form>`)))
	f.Add(testBase+"d.grxml", "application/srgs+xml", []byte(grxml(`<rule id="d" scope="public"><one-of><item>1</item><item>2</item></one-of></rule>`)))
	in := testInterpreter(t, f)
	var grammars []any
	for range 3 {
		res := in.Run(context.Background(), NewScriptedPlatform("12"), SessionInfo{}, testBase+"main")
		if res.Value != "12" {
			t.Fatalf("value %v (%s %s)", res.Value, res.Event, res.Message)
		}
		in.cache.mu.Lock()
		grammars = append(grammars, in.cache.entries["g dtmf "+testBase+"d.grxml"].gram)
		in.cache.mu.Unlock()
	}
	if grammars[0] == nil || grammars[0] != grammars[1] || grammars[1] != grammars[2] {
		t.Fatalf("referenced grammar parsed more than once: %v", grammars)
	}
}
