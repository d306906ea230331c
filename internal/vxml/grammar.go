package vxml

import (
	"strings"

	"github.com/opengvp/gvp/internal/vxml/srgs"
)

// Limits of external rule references (SRGS 1.0 section 2.2.2). Grammar
// documents that reference each other are fetched once each, so cycles end;
// these bound how far and how wide one grammar may pull in others. Past
// either, the grammar fails with error.badfetch.
const (
	// MaxGrammarImportDepth is the longest chain of grammar documents, each
	// referencing the next, followed from one grammar.
	MaxGrammarImportDepth = 8
	// MaxGrammarImports is the most grammar documents one grammar pulls in
	// through external references, directly or not.
	MaxGrammarImports = 32
)

// grammarOwnerBase is the base URI of the elements of owner (the current
// document when owner is nil).
func (c *execCtx) grammarOwnerBase(owner *Document) string {
	if owner == nil {
		return c.baseURI()
	}
	return owner.BaseURI()
}

// fetchGrammar fetches and parses the grammar document src of a <grammar>
// element of owner. A fragment names the rule used as root (it must be
// public). It returns the grammar and its final URL.
func (c *execCtx) fetchGrammar(owner *Document, src, typ string, mode srgs.Mode) (*srgs.Grammar, string, error) {
	ref, rule, hasRule := strings.Cut(strings.TrimSpace(src), "#")
	if ref == "" {
		return nil, "", badfetchf("grammar %q: a rule of the VoiceXML document itself is not a grammar", src)
	}
	// Relative to the element's document (the application root's for its elements).
	u, err := resolve(c.grammarOwnerBase(owner), ref)
	if err != nil {
		return nil, "", err
	}
	gr, final, err := c.loadGrammar(u, typ, mode)
	if err != nil {
		return nil, "", err
	}
	if hasRule {
		if gr, err = gr.WithRoot(rule); err != nil {
			return nil, "", badfetchf("grammar %s: %v", src, err)
		}
	}
	return gr, final, nil
}

// loadGrammar fetches the grammar document at u and parses it through the shared Cache; it
// returns the grammar and its final URL.
func (c *execCtx) loadGrammar(u, typ string, mode srgs.Mode) (*srgs.Grammar, string, error) {
	resp, err := c.s.fetch(c, &FetchRequest{URL: u, Kind: FetchGrammar, Method: "GET"}, nil)
	if err != nil {
		return nil, "", err
	}
	gr, err := c.s.in.cache.grammar(resp, typ, mode)
	if err != nil {
		return nil, "", badfetchf("grammar %s: %v", resp.URL, err)
	}
	return gr, resp.URL, nil
}

// linkGrammar resolves the external rule references of g, whose own URI is
// base: every grammar document reachable from it is fetched through the
// session's Fetcher (HTTP caching is the Fetcher's) and parsed through the
// shared Cache (once per URL and body), each at most once per call of
// linkGrammar. References resolve against the referencing grammar's xml:base
// (ABNF "base") and URI. A grammar without external references is returned
// as is.
func (c *execCtx) linkGrammar(g *srgs.Grammar, base string) (*srgs.Grammar, error) {
	if len(g.Externals) == 0 {
		return g, nil
	}
	type node struct {
		g     *srgs.Grammar
		url   string
		depth int
	}
	imports := map[*srgs.Grammar][]*srgs.Grammar{}
	byURL := map[string]*srgs.Grammar{}
	if base != "" {
		byURL[base] = g
	}
	queue := []node{{g, base, 0}}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if _, done := imports[n.g]; done {
			continue
		}
		b := n.url
		if n.g.Base != "" {
			var err error
			if b, err = resolve(n.url, n.g.Base); err != nil {
				return nil, err
			}
		}
		list := make([]*srgs.Grammar, len(n.g.Externals))
		for i, ref := range n.g.Externals {
			u, err := resolve(b, ref.URI)
			if err != nil {
				return nil, err
			}
			u, _, _ = strings.Cut(u, "#")
			if h, ok := byURL[u]; ok {
				list[i] = h
				continue
			}
			if n.depth+1 > MaxGrammarImportDepth {
				return nil, badfetchf("grammar %s: external rule references nested deeper than %d documents", u, MaxGrammarImportDepth)
			}
			if len(byURL) >= MaxGrammarImports {
				return nil, badfetchf("grammar %s: more than %d grammar documents referenced", u, MaxGrammarImports)
			}
			h, final, err := c.loadGrammar(u, ref.Type, n.g.Mode)
			if err != nil {
				return nil, err
			}
			byURL[u] = h
			byURL[final] = h
			list[i] = h
			queue = append(queue, node{h, final, n.depth + 1})
		}
		imports[n.g] = list
	}
	lg, err := g.Link(imports)
	if err != nil {
		return nil, badfetchf("grammar %s: %v", base, err)
	}
	return lg, nil
}
