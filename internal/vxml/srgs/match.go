package srgs

import "strings"

// Status is the outcome of matching an input against a grammar.
type Status int

// Match statuses.
const (
	// NoMatch: the input is not a prefix of any sentence of the grammar.
	NoMatch Status = iota
	// Prefix: the input is a proper prefix of a sentence; more input is
	// needed.
	Prefix
	// Complete: the input is a sentence of the grammar.
	Complete
)

func (s Status) String() string {
	switch s {
	case Prefix:
		return "prefix"
	case Complete:
		return "complete"
	}
	return "nomatch"
}

// Result is the outcome of Match.
type Result struct {
	Status Status
	// CanContinue is true when some longer input could still match, so the
	// caller may wait (interdigittimeout or termtimeout) for more.
	CanContinue bool
	// Tokens is the matched input.
	Tokens []string
	path   *pathNode
}

type pathKind uint8

const (
	pEnter pathKind = iota
	pExit
	pToken
	pTag
)

// pathNode is an immutable linked list (newest first) of parse events.
type pathNode struct {
	kind pathKind
	// lit marks a tag of a semantics/1.0-literals grammar.
	lit  bool
	text string
	prev *pathNode
}

func (p *pathNode) push(k pathKind, text string) *pathNode {
	return &pathNode{kind: k, text: text, prev: p}
}

type matcher struct {
	imports     map[*Grammar][]*Grammar
	in          []string
	steps       int
	budget      int
	depth       int
	complete    *pathNode
	canContinue bool
}

// MatchDTMF matches a string of DTMF keys (one token per key).
func (g *Grammar) MatchDTMF(keys string) Result {
	toks := make([]string, 0, len(keys))
	for _, c := range keys {
		toks = append(toks, string(c))
	}
	return g.Match(toks)
}

// Match matches a token sequence against the grammar's root rule.
func (g *Grammar) Match(tokens []string) Result {
	m := &matcher{imports: g.imports, in: tokens, budget: DefaultMatchBudget}
	root := &RuleRef{Name: g.Root}
	m.match(root, g, 0, nil, func(pos int, path *pathNode) bool {
		if pos == len(m.in) && m.complete == nil {
			m.complete = path
		}
		return m.complete != nil && m.canContinue
	})
	r := Result{Tokens: tokens, CanContinue: m.canContinue}
	switch {
	case m.complete != nil:
		r.Status = Complete
		r.path = m.complete
	case m.canContinue:
		r.Status = Prefix
	}
	return r
}

// match calls k for every way e, an expansion of grammar g, can match
// starting at pos. A true return from k (or from match) stops the search.
func (m *matcher) match(e Expansion, g *Grammar, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
	m.steps++
	if m.steps > m.budget {
		return true
	}
	switch x := e.(type) {
	case *Token:
		if pos >= len(m.in) {
			m.canContinue = true
			return false
		}
		if m.in[pos] != x.Text {
			return false
		}
		return k(pos+1, path.push(pToken, x.Text))
	case *Seq:
		return m.seq(x.Items, g, pos, path, k)
	case *Alt:
		for _, it := range x.Items {
			if m.match(it, g, pos, path, k) {
				return true
			}
		}
		return false
	case *Repeat:
		return m.rep(x, g, 0, pos, path, k)
	case *Tag:
		return k(pos, &pathNode{kind: pTag, lit: g.Literal, text: x.Text, prev: path})
	case *RuleRef:
		switch x.Special {
		case SpecialNull:
			return k(pos, path)
		case SpecialVoid:
			return false
		case SpecialGarbage:
			m.canContinue = true
			for p := pos; p <= len(m.in); p++ {
				if k(p, path) {
					return true
				}
			}
			return false
		}
		if m.depth >= MaxRuleDepth {
			return false
		}
		target, name := g, x.Name
		if x.URI != "" {
			// External reference: resolved by Link; an unlinked grammar
			// matches nothing through it.
			imp := m.imports[g]
			if x.ext >= len(imp) || imp[x.ext] == nil {
				return false
			}
			target = imp[x.ext]
			if name == "" {
				name = target.Root
			}
		}
		r := target.Rules[name]
		if r == nil {
			return false
		}
		m.depth++
		stop := m.match(r.Exp, target, pos, path.push(pEnter, name), func(p int, pp *pathNode) bool {
			m.depth--
			s := k(p, pp.push(pExit, name))
			m.depth++
			return s
		})
		m.depth--
		return stop
	}
	return false
}

func (m *matcher) seq(items []Expansion, g *Grammar, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
	if len(items) == 0 {
		return k(pos, path)
	}
	return m.match(items[0], g, pos, path, func(p int, pp *pathNode) bool {
		return m.seq(items[1:], g, p, pp, k)
	})
}

// rep matches greedily: more repetitions are tried before fewer.
func (m *matcher) rep(r *Repeat, g *Grammar, count, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
	if r.Max < 0 || count < r.Max {
		stop := m.match(r.Item, g, pos, path, func(p int, pp *pathNode) bool {
			if p == pos && count >= r.Min {
				return false // no progress: avoid looping on nullable items
			}
			return m.rep(r, g, count+1, p, pp, k)
		})
		if stop {
			return true
		}
	}
	if count >= r.Min {
		return k(pos, path)
	}
	return false
}

// Text returns the matched tokens joined by spaces.
func (r Result) Text() string { return strings.Join(r.Tokens, " ") }
