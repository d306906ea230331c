package srgs

import (
	"fmt"

	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

// NamespaceSRGS is the SRGS 1.0 XML namespace.
const NamespaceSRGS = "http://www.w3.org/2001/06/grammar"

// ParseXML parses an SRGS XML grammar document.
func ParseXML(data []byte, defaultMode Mode) (*Grammar, error) {
	root, err := xmltree.Parse(data, xmltree.Limits{MaxBytes: 1 << 20})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGrammar, err)
	}
	return FromNode(root, defaultMode)
}

// FromNode builds a grammar from a parsed <grammar> element (inline grammars
// in VoiceXML documents arrive this way).
func FromNode(n *xmltree.Node, defaultMode Mode) (*Grammar, error) {
	if n.Name != "grammar" {
		return nil, fmt.Errorf("%w: root element is <%s>, want <grammar>", ErrGrammar, n.Name)
	}
	g := &Grammar{Mode: defaultMode, Rules: map[string]*Rule{}}
	if m, ok := n.Attr("mode"); ok {
		switch Mode(m) {
		case ModeDTMF, ModeVoice:
			g.Mode = Mode(m)
		default:
			return nil, fmt.Errorf("%w: mode %q", ErrGrammar, m)
		}
	}
	if g.Mode == "" {
		g.Mode = ModeVoice
	}
	g.Root = n.AttrOr("root", "")
	g.TagFormat = n.AttrOr("tag-format", "")
	g.Base, _ = n.XMLAttr("base")
	var first string
	for _, c := range n.Elements() {
		switch c.Name {
		case "rule":
			id, ok := c.Attr("id")
			if !ok || id == "" {
				return nil, fmt.Errorf("%w: line %d: rule without id", ErrGrammar, c.Line)
			}
			if _, dup := g.Rules[id]; dup {
				return nil, fmt.Errorf("%w: line %d: duplicate rule %q", ErrGrammar, c.Line, id)
			}
			exp, err := g.xmlContent(c)
			if err != nil {
				return nil, err
			}
			g.Rules[id] = &Rule{ID: id, Public: c.AttrOr("scope", "private") == "public", Exp: exp}
			if first == "" {
				first = id
			}
		case "meta", "metadata", "lexicon", "tag":
		default:
			return nil, fmt.Errorf("%w: line %d: unexpected <%s> in <grammar>", ErrGrammar, c.Line, c.Name)
		}
	}
	if g.Root == "" {
		g.Root = first
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// xmlContent converts the mixed content of rule/item/one-of children.
func (g *Grammar) xmlContent(n *xmltree.Node) (Expansion, error) {
	var items []Expansion
	for _, c := range n.Children {
		if c.IsText() {
			toks, err := splitTokens(c.Text, g.Mode)
			if err != nil {
				return nil, err
			}
			if len(toks) > 0 {
				items = append(items, tokensExp(toks))
			}
			continue
		}
		e, err := g.xmlElement(c)
		if err != nil {
			return nil, err
		}
		if e != nil {
			items = append(items, e)
		}
	}
	return simplify(items), nil
}

func (g *Grammar) xmlElement(c *xmltree.Node) (Expansion, error) {
	switch c.Name {
	case "item":
		body, err := g.xmlContent(c)
		if err != nil {
			return nil, err
		}
		if r, ok := c.Attr("repeat"); ok {
			lo, hi, err := parseRepeat(r)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", c.Line, err)
			}
			return &Repeat{Min: lo, Max: hi, Item: body}, nil
		}
		return body, nil
	case "one-of":
		alt := &Alt{}
		for _, it := range c.Elements() {
			if it.Name != "item" {
				return nil, fmt.Errorf("%w: line %d: <%s> in <one-of>", ErrGrammar, it.Line, it.Name)
			}
			e, err := g.xmlElement(it)
			if err != nil {
				return nil, err
			}
			alt.Items = append(alt.Items, e)
		}
		if len(alt.Items) == 0 {
			return nil, fmt.Errorf("%w: line %d: empty <one-of>", ErrGrammar, c.Line)
		}
		return alt, nil
	case "ruleref":
		if sp, ok := c.Attr("special"); ok {
			switch sp {
			case "NULL":
				return &RuleRef{Special: SpecialNull}, nil
			case "VOID":
				return &RuleRef{Special: SpecialVoid}, nil
			case "GARBAGE":
				return &RuleRef{Special: SpecialGarbage}, nil
			}
			return nil, fmt.Errorf("%w: line %d: special %q", ErrGrammar, c.Line, sp)
		}
		ref, err := g.ruleRef(c.AttrOr("uri", ""), c.AttrOr("type", ""))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", c.Line, err)
		}
		return ref, nil
	case "token":
		toks, err := splitTokens(c.InnerText(), g.Mode)
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			return nil, fmt.Errorf("%w: line %d: empty <token>", ErrGrammar, c.Line)
		}
		return tokensExp(toks), nil
	case "tag":
		return &Tag{Text: c.InnerText()}, nil
	case "example", "meta", "metadata", "lexicon":
		return nil, nil
	}
	return nil, fmt.Errorf("%w: line %d: unexpected <%s>", ErrGrammar, c.Line, c.Name)
}
