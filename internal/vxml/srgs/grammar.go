// Package srgs implements W3C Speech Recognition Grammar Specification 1.0
// grammars in their XML and ABNF forms for DTMF input: parsing, an
// incremental matcher that tells a complete match from a prefix that could
// still continue, and Semantic Interpretation for Speech Recognition (SISR
// 1.0) of a match with an ECMAScript runtime.
//
// Supported: rules (public/private), one-of (with weights, ignored for DTMF),
// item repeat "n", "n-m", "n-" and the ABNF <n>, <n-m>, <n-> forms, ruleref
// to local rules and to rules of other grammar documents (SRGS 1.0 section
// 2.2.2: <ruleref uri="other.grxml#rule"/>, ABNF $<other.gram#rule>, and the
// root rule of another grammar without a fragment), the special rules NULL,
// VOID and GARBAGE, token and tag elements, tag-format semantics/1.0 (script)
// and semantics/1.0-literals.
//
// External references are listed by the parser in Grammar.Externals; the
// package does no fetching. The caller fetches and parses each referenced
// document and calls Grammar.Link, which returns a grammar whose matcher
// follows the references (cycles between documents are allowed: recursion is
// bounded while matching, as for local rules).
package srgs

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

const (
	// DefaultMatchBudget is the default number of matcher steps spent on one
	// input before giving up (ambiguous grammars can otherwise explode).
	DefaultMatchBudget = 200000
	// MaxRuleDepth is the deepest nesting of rule references followed while
	// matching; deeper (left-recursive) expansions fail to match.
	MaxRuleDepth = 64
	// MaxRepeat is the largest finite repeat count accepted in a grammar.
	MaxRepeat = 1000
)

// ErrGrammar is wrapped by every grammar parse or validation error.
var ErrGrammar = errors.New("invalid grammar")

// Mode is the input mode of a grammar.
type Mode string

// Grammar modes.
const (
	ModeDTMF  Mode = "dtmf"
	ModeVoice Mode = "voice"
)

// Grammar is a parsed and validated SRGS grammar. It is immutable and may be
// shared by concurrent sessions.
type Grammar struct {
	Mode      Mode
	Root      string
	TagFormat string
	Rules     map[string]*Rule
	// Literal is true when tags are string literals (semantics/1.0-literals).
	Literal bool
	// Base is the grammar's own base URI (xml:base, ABNF "base"), as
	// written; external references resolve against it, then against the
	// grammar's URI.
	Base string
	// Externals lists the grammar documents named by external rule
	// references, one entry per distinct URI, in order of first use.
	Externals []ExternalRef
	// imports resolves external references of a linked grammar: for each
	// grammar reachable from it, the grammars of its Externals by index.
	imports map[*Grammar][]*Grammar
}

// ExternalRef is a grammar document named by external rule references
// (SRGS 1.0 section 2.2.2).
type ExternalRef struct {
	// URI is the reference as written, without its fragment.
	URI string
	// Type is the media type given with the reference (the ruleref type
	// attribute, ABNF ~<type>), if any.
	Type string
	// Rules are the names of the rules referenced in that document; ""
	// stands for its root rule.
	Rules []string
}

// Rule is one rule definition.
type Rule struct {
	ID     string
	Public bool
	Exp    Expansion
}

// Expansion is a node of a rule expansion: one of *Token, *Seq, *Alt,
// *Repeat, *RuleRef, *Tag.
type Expansion interface{ isExpansion() }

// Token matches one input token (for DTMF one key: 0-9, *, #, A-D).
type Token struct{ Text string }

// Seq matches its items in order.
type Seq struct{ Items []Expansion }

// Alt matches one of its items; they are tried in document order.
type Alt struct{ Items []Expansion }

// Repeat matches Item between Min and Max times; Max < 0 means unbounded.
type Repeat struct {
	Min, Max int
	Item     Expansion
}

// Special rule kinds for RuleRef.Special.
const (
	SpecialNone = iota
	SpecialNull
	SpecialVoid
	SpecialGarbage
)

// RuleRef references a local rule by name, a rule of another grammar
// document, or a special rule.
type RuleRef struct {
	// Name is the rule referenced; for an external reference without a
	// fragment it is empty (the referenced grammar's root rule).
	Name string
	// URI is the external grammar's URI as written, without its fragment;
	// empty for a local reference.
	URI     string
	Special int
	// ext is the index of URI in the grammar's Externals.
	ext int
}

// Tag carries semantic interpretation text.
type Tag struct{ Text string }

func (*Token) isExpansion()   {}
func (*Seq) isExpansion()     {}
func (*Alt) isExpansion()     {}
func (*Repeat) isExpansion()  {}
func (*RuleRef) isExpansion() {}
func (*Tag) isExpansion()     {}

// validate checks references and picks the root.
func (g *Grammar) validate() error {
	if len(g.Rules) == 0 {
		return fmt.Errorf("%w: no rules", ErrGrammar)
	}
	if g.Root == "" {
		return fmt.Errorf("%w: no root rule", ErrGrammar)
	}
	if _, ok := g.Rules[g.Root]; !ok {
		return fmt.Errorf("%w: root rule %q is not defined", ErrGrammar, g.Root)
	}
	if strings.Contains(g.TagFormat, "literals") {
		g.Literal = true
	}
	var check func(e Expansion) error
	check = func(e Expansion) error {
		switch x := e.(type) {
		case *Seq:
			for _, it := range x.Items {
				if err := check(it); err != nil {
					return err
				}
			}
		case *Alt:
			for _, it := range x.Items {
				if err := check(it); err != nil {
					return err
				}
			}
		case *Repeat:
			return check(x.Item)
		case *RuleRef:
			if x.Special == SpecialNone && x.URI == "" {
				if _, ok := g.Rules[x.Name]; !ok {
					return fmt.Errorf("%w: reference to undefined rule %q", ErrGrammar, x.Name)
				}
			}
		}
		return nil
	}
	for _, r := range g.Rules {
		if err := check(r.Exp); err != nil {
			return err
		}
	}
	return nil
}

// ruleRef is the reference uri makes (XML <ruleref uri>, ABNF $<uri>): a rule of this grammar
// ("#name") or of another grammar document (externalRef), of media type typ.
func (g *Grammar) ruleRef(uri, typ string) (*RuleRef, error) {
	uri = strings.TrimSpace(uri)
	switch {
	case uri == "":
		return nil, fmt.Errorf("%w: empty rule reference", ErrGrammar)
	case strings.HasPrefix(uri, "#"):
		if len(uri) < 2 {
			return nil, fmt.Errorf("%w: rule reference %q names no rule", ErrGrammar, uri)
		}
		return &RuleRef{Name: uri[1:]}, nil
	}
	return g.externalRef(uri, typ)
}

// externalRef returns the reference to uri (trimmed, a URI with an optional #rule
// fragment, not starting with '#'), recording it in g.Externals.
func (g *Grammar) externalRef(uri, typ string) (*RuleRef, error) {
	doc, frag, hasFrag := strings.Cut(uri, "#")
	if hasFrag && frag == "" {
		return nil, fmt.Errorf("%w: rule reference %q names no rule", ErrGrammar, uri)
	}
	idx := -1
	for i := range g.Externals {
		if g.Externals[i].URI == doc {
			idx = i
			break
		}
	}
	if idx < 0 {
		g.Externals = append(g.Externals, ExternalRef{URI: doc})
		idx = len(g.Externals) - 1
	}
	e := &g.Externals[idx]
	if e.Type == "" {
		e.Type = typ
	}
	if !slices.Contains(e.Rules, frag) {
		e.Rules = append(e.Rules, frag)
	}
	return &RuleRef{Name: frag, URI: doc, ext: idx}, nil
}

// Link returns a copy of g whose external rule references resolve through
// imports: imports[h][i] is the grammar named by h.Externals[i], for g and for
// every grammar reachable from it (references may form cycles). It checks
// that every referenced grammar is given and has the mode of the grammar
// referencing it, and that it defines the rules referenced: a rule named by a
// fragment must be public, a root rule referenced without a fragment may be
// private (SRGS 1.0 section 3.4). A grammar without external references is
// returned as is.
func (g *Grammar) Link(imports map[*Grammar][]*Grammar) (*Grammar, error) {
	if len(g.Externals) == 0 {
		return g, nil
	}
	seen := map[*Grammar]bool{g: true}
	todo := []*Grammar{g}
	for len(todo) > 0 {
		h := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		list := imports[h]
		if len(list) != len(h.Externals) {
			return nil, fmt.Errorf("%w: %d of %d external grammars resolved", ErrGrammar, len(list), len(h.Externals))
		}
		for i, ref := range h.Externals {
			t := list[i]
			if t == nil {
				return nil, fmt.Errorf("%w: external grammar %q not resolved", ErrGrammar, ref.URI)
			}
			if t.Mode != h.Mode {
				return nil, fmt.Errorf("%w: grammar %q has mode %s, referenced from a %s grammar", ErrGrammar, ref.URI, t.Mode, h.Mode)
			}
			for _, name := range ref.Rules {
				if name == "" {
					continue
				}
				r, ok := t.Rules[name]
				if !ok {
					return nil, fmt.Errorf("%w: rule %q is not defined in %q", ErrGrammar, name, ref.URI)
				}
				if !r.Public {
					return nil, fmt.Errorf("%w: rule %q of %q is private", ErrGrammar, name, ref.URI)
				}
			}
			if !seen[t] {
				seen[t] = true
				todo = append(todo, t)
			}
		}
	}
	cp := *g
	cp.imports = make(map[*Grammar][]*Grammar, len(imports)+1)
	for h, list := range imports {
		cp.imports[h] = list
	}
	cp.imports[&cp] = imports[g]
	return &cp, nil
}

// WithRoot returns a copy of g whose root is the public rule name: a grammar
// referenced with a fragment (<grammar src="g.grxml#rule">).
func (g *Grammar) WithRoot(name string) (*Grammar, error) {
	r, ok := g.Rules[name]
	if !ok {
		return nil, fmt.Errorf("%w: rule %q is not defined", ErrGrammar, name)
	}
	if !r.Public {
		return nil, fmt.Errorf("%w: rule %q is private", ErrGrammar, name)
	}
	cp := *g
	cp.Root = name
	return &cp, nil
}

// parseRepeat parses an SRGS repeat attribute: "n", "n-m", "n-".
func parseRepeat(s string) (minRep, maxRep int, err error) {
	s = strings.TrimSpace(s)
	lo, hi, dash := strings.Cut(s, "-")
	minRep, err = atoi(lo)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: repeat %q", ErrGrammar, s)
	}
	switch {
	case !dash:
		maxRep = minRep
	case strings.TrimSpace(hi) == "":
		maxRep = -1
	default:
		maxRep, err = atoi(hi)
		if err != nil || maxRep < minRep {
			return 0, 0, fmt.Errorf("%w: repeat %q", ErrGrammar, s)
		}
	}
	if minRep > MaxRepeat || maxRep > MaxRepeat {
		return 0, 0, fmt.Errorf("%w: repeat %q exceeds %d", ErrGrammar, s, MaxRepeat)
	}
	return minRep, maxRep, nil
}

func atoi(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 6 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// isDTMFKey reports whether c is a DTMF key.
func isDTMFKey(c rune) bool {
	return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D')
}

// splitTokens splits token text; in DTMF mode runs of keys become one token
// per key.
func splitTokens(text string, mode Mode) ([]string, error) {
	var out []string
	for _, f := range strings.Fields(text) {
		f = strings.Trim(f, `"`)
		if f == "" {
			continue
		}
		if mode == ModeDTMF {
			for _, c := range f {
				if !isDTMFKey(c) {
					return nil, fmt.Errorf("%w: %q is not a DTMF token", ErrGrammar, f)
				}
				out = append(out, string(c))
			}
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

func tokensExp(toks []string) Expansion {
	if len(toks) == 1 {
		return &Token{Text: toks[0]}
	}
	s := &Seq{}
	for _, t := range toks {
		s.Items = append(s.Items, &Token{Text: t})
	}
	return s
}

func simplify(items []Expansion) Expansion {
	switch len(items) {
	case 0:
		return &RuleRef{Special: SpecialNull}
	case 1:
		return items[0]
	}
	return &Seq{Items: items}
}
