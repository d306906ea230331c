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
	text string
	prev *pathNode
}

func (p *pathNode) push(k pathKind, text string) *pathNode {
	return &pathNode{kind: k, text: text, prev: p}
}

type matcher struct {
	g           *Grammar
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
	m := &matcher{g: g, in: tokens, budget: DefaultMatchBudget}
	root := &RuleRef{Name: g.Root}
	m.match(root, 0, nil, func(pos int, path *pathNode) bool {
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

// match calls k for every way e can match starting at pos. A true return
// from k (or from match) stops the search.
func (m *matcher) match(e Expansion, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
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
		return m.seq(x.Items, pos, path, k)
	case *Alt:
		for _, it := range x.Items {
			if m.match(it, pos, path, k) {
				return true
			}
		}
		return false
	case *Repeat:
		return m.rep(x, 0, pos, path, k)
	case *Tag:
		return k(pos, path.push(pTag, x.Text))
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
		r := m.g.Rules[x.Name]
		m.depth++
		stop := m.match(r.Exp, pos, path.push(pEnter, x.Name), func(p int, pp *pathNode) bool {
			m.depth--
			s := k(p, pp.push(pExit, x.Name))
			m.depth++
			return s
		})
		m.depth--
		return stop
	}
	return false
}

func (m *matcher) seq(items []Expansion, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
	if len(items) == 0 {
		return k(pos, path)
	}
	return m.match(items[0], pos, path, func(p int, pp *pathNode) bool {
		return m.seq(items[1:], p, pp, k)
	})
}

// rep matches greedily: more repetitions are tried before fewer.
func (m *matcher) rep(r *Repeat, count, pos int, path *pathNode, k func(int, *pathNode) bool) bool {
	if r.Max < 0 || count < r.Max {
		stop := m.match(r.Item, pos, path, func(p int, pp *pathNode) bool {
			if p == pos && count >= r.Min {
				return false // no progress: avoid looping on nullable items
			}
			return m.rep(r, count+1, p, pp, k)
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
