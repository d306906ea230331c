package srgs

import (
	"fmt"
	"strings"
)

// MaxABNFBytes is the largest ABNF grammar text accepted.
const MaxABNFBytes = 1 << 20

// ParseABNF parses an SRGS grammar in its augmented BNF form. The
// "#ABNF 1.0 [charset];" self-identifying header is optional.
func ParseABNF(src string, defaultMode Mode) (*Grammar, error) {
	if len(src) > MaxABNFBytes {
		return nil, fmt.Errorf("%w: ABNF grammar of %d bytes exceeds %d", ErrGrammar, len(src), MaxABNFBytes)
	}
	p := &abnfParser{src: src, g: &Grammar{Mode: defaultMode, Rules: map[string]*Rule{}}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	if p.g.Mode == "" {
		p.g.Mode = ModeVoice
	}
	if p.g.Root == "" {
		p.g.Root = p.first
	}
	if err := p.g.validate(); err != nil {
		return nil, err
	}
	return p.g, nil
}

type abnfParser struct {
	src   string
	pos   int
	g     *Grammar
	first string
	depth int
}

func (p *abnfParser) errf(format string, a ...any) error {
	return fmt.Errorf("%w: ABNF line %d: %s", ErrGrammar, p.line(), fmt.Sprintf(format, a...))
}

// wrap adds the current line to err, already an ErrGrammar.
func (p *abnfParser) wrap(err error) error {
	return fmt.Errorf("ABNF line %d: %w", p.line(), err)
}

// line is the line number of the parser's position.
func (p *abnfParser) line() int { return 1 + strings.Count(p.src[:min(p.pos, len(p.src))], "\n") }

// skip skips white space and comments.
func (p *abnfParser) skip() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "//"):
			if i := strings.IndexByte(p.src[p.pos:], '\n'); i >= 0 {
				p.pos += i + 1
			} else {
				p.pos = len(p.src)
			}
		case strings.HasPrefix(p.src[p.pos:], "/*"):
			if i := strings.Index(p.src[p.pos+2:], "*/"); i >= 0 {
				p.pos += i + 4
			} else {
				p.pos = len(p.src)
			}
		default:
			return
		}
	}
}

func (p *abnfParser) peek() byte {
	p.skip()
	if p.pos >= len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

func isWordByte(c byte) bool {
	return c > ' ' && !strings.ContainsRune(";|()[]<>{}$\"/=!", rune(c))
}

func (p *abnfParser) word() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// until returns the text up to the next ';' (exclusive) and consumes it.
func (p *abnfParser) until() (string, error) { return p.upTo(';', "missing ';'") }

// upTo returns the trimmed text up to the next c (exclusive) and consumes it with c; missing
// is the error when there is no c.
func (p *abnfParser) upTo(c byte, missing string) (string, error) {
	i := strings.IndexByte(p.src[p.pos:], c)
	if i < 0 {
		return "", p.errf("%s", missing)
	}
	s := strings.TrimSpace(p.src[p.pos : p.pos+i])
	p.pos += i + 1
	return s, nil
}

func (p *abnfParser) parse() error {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], "#ABNF") {
		p.pos += len("#ABNF")
		if _, err := p.until(); err != nil {
			return err
		}
	}
	for {
		c := p.peek()
		if c == 0 {
			return nil
		}
		if c == '$' {
			if err := p.rule(false); err != nil {
				return err
			}
			continue
		}
		if c == '{' {
			// Grammar-level tag declaration: ignored.
			if _, err := p.tag(); err != nil {
				return err
			}
			if p.peek() == ';' {
				p.pos++
			}
			continue
		}
		kw := p.word()
		switch kw {
		case "public", "private":
			if p.peek() != '$' {
				return p.errf("expected rule name after %s", kw)
			}
			if err := p.rule(kw == "public"); err != nil {
				return err
			}
		case "mode":
			v, err := p.until()
			if err != nil {
				return err
			}
			if v != string(ModeDTMF) && v != string(ModeVoice) {
				return p.errf("mode %q", v)
			}
			p.g.Mode = Mode(v)
		case "root":
			v, err := p.until()
			if err != nil {
				return err
			}
			if !strings.HasPrefix(v, "$") || len(v) < 2 {
				return p.errf("root %q", v)
			}
			p.g.Root = v[1:]
		case "tag-format":
			v, err := p.until()
			if err != nil {
				return err
			}
			p.g.TagFormat = strings.Trim(v, "<>")
		case "base":
			v, err := p.until()
			if err != nil {
				return err
			}
			p.g.Base = strings.Trim(v, "<>")
		case "language", "lexicon", "meta", "http-equiv":
			if _, err := p.until(); err != nil {
				return err
			}
		case "":
			return p.errf("unexpected %q", string(p.src[p.pos]))
		default:
			return p.errf("unknown declaration %q", kw)
		}
	}
}

func (p *abnfParser) ruleName() (string, error) {
	if p.peek() != '$' {
		return "", p.errf("expected '$'")
	}
	p.pos++
	if p.pos < len(p.src) && p.src[p.pos] == '<' {
		return "", p.errf("a rule definition needs a local rule name")
	}
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c == '-' || c == '.' || c == ':' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80 {
			p.pos++
			continue
		}
		break
	}
	if start == p.pos {
		return "", p.errf("empty rule name")
	}
	return p.src[start:p.pos], nil
}

func (p *abnfParser) rule(public bool) error {
	name, err := p.ruleName()
	if err != nil {
		return err
	}
	if p.peek() != '=' {
		return p.errf("expected '=' after $%s", name)
	}
	p.pos++
	exp, err := p.alternatives()
	if err != nil {
		return err
	}
	if p.peek() != ';' {
		return p.errf("expected ';' after rule $%s", name)
	}
	p.pos++
	if _, dup := p.g.Rules[name]; dup {
		return p.errf("duplicate rule $%s", name)
	}
	p.g.Rules[name] = &Rule{ID: name, Public: public, Exp: exp}
	if p.first == "" {
		p.first = name
	}
	return nil
}

func (p *abnfParser) alternatives() (Expansion, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 100 {
		return nil, p.errf("nesting too deep")
	}
	var alts []Expansion
	for {
		if p.peek() == '/' {
			// weight /w/
			if err := p.skipSlashed(); err != nil {
				return nil, err
			}
		}
		seq, err := p.sequence()
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if p.peek() != '|' {
			break
		}
		p.pos++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &Alt{Items: alts}, nil
}

func (p *abnfParser) skipSlashed() error {
	p.pos++
	i := strings.IndexByte(p.src[p.pos:], '/')
	if i < 0 {
		return p.errf("unterminated /weight/")
	}
	p.pos += i + 1
	return nil
}

func (p *abnfParser) sequence() (Expansion, error) {
	var items []Expansion
	for {
		c := p.peek()
		if c == 0 || c == ';' || c == '|' || c == ')' || c == ']' {
			break
		}
		e, err := p.unit()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 0 {
		return nil, p.errf("empty expansion")
	}
	return simplify(items), nil
}

// unit parses a primary with an optional repeat operator.
func (p *abnfParser) unit() (Expansion, error) {
	e, err := p.primary()
	if err != nil {
		return nil, err
	}
	if p.peek() == '<' {
		p.pos++
		i := strings.IndexByte(p.src[p.pos:], '>')
		if i < 0 {
			return nil, p.errf("unterminated repeat")
		}
		spec := p.src[p.pos : p.pos+i]
		p.pos += i + 1
		if j := strings.IndexByte(spec, '/'); j >= 0 {
			spec = spec[:j]
		}
		lo, hi, err := parseRepeat(spec)
		if err != nil {
			return nil, p.wrap(err)
		}
		e = &Repeat{Min: lo, Max: hi, Item: e}
	}
	return e, nil
}

func (p *abnfParser) primary() (Expansion, error) {
	switch c := p.peek(); c {
	case '$':
		if p.pos+1 < len(p.src) && p.src[p.pos+1] == '<' {
			return p.externalRef()
		}
		name, err := p.ruleName()
		if err != nil {
			return nil, err
		}
		switch name {
		case "NULL":
			return &RuleRef{Special: SpecialNull}, nil
		case "VOID":
			return &RuleRef{Special: SpecialVoid}, nil
		case "GARBAGE":
			return &RuleRef{Special: SpecialGarbage}, nil
		}
		return &RuleRef{Name: name}, nil
	case '(':
		p.pos++
		e, err := p.alternatives()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, p.errf("expected ')'")
		}
		p.pos++
		return e, nil
	case '[':
		p.pos++
		e, err := p.alternatives()
		if err != nil {
			return nil, err
		}
		if p.peek() != ']' {
			return nil, p.errf("expected ']'")
		}
		p.pos++
		return &Repeat{Min: 0, Max: 1, Item: e}, nil
	case '{':
		return p.tag()
	case '"':
		p.pos++
		i := strings.IndexByte(p.src[p.pos:], '"')
		if i < 0 {
			return nil, p.errf("unterminated quoted token")
		}
		text := p.src[p.pos : p.pos+i]
		p.pos += i + 1
		p.langSuffix()
		toks, err := splitTokens(text, p.g.Mode)
		if err != nil {
			return nil, p.wrap(err)
		}
		if len(toks) == 0 {
			return nil, p.errf("empty quoted token")
		}
		return tokensExp(toks), nil
	case 0:
		return nil, p.errf("unexpected end of grammar")
	default:
		w := p.word()
		if w == "" {
			return nil, p.errf("unexpected %q", string(c))
		}
		p.langSuffix()
		toks, err := splitTokens(w, p.g.Mode)
		if err != nil {
			return nil, p.wrap(err)
		}
		return tokensExp(toks), nil
	}
}

// externalRef parses $<uri> or $<uri#rule>, with an optional ~<media-type>
// (SRGS 1.0 section 2.2.2); "$<#rule>" is a local reference.
func (p *abnfParser) externalRef() (Expansion, error) {
	p.pos += 2 // "$<"
	uri, err := p.angled()
	if err != nil {
		return nil, err
	}
	typ := ""
	if p.pos+1 < len(p.src) && p.src[p.pos] == '~' && p.src[p.pos+1] == '<' {
		p.pos += 2
		if typ, err = p.angled(); err != nil {
			return nil, err
		}
	}
	ref, err := p.g.ruleRef(uri, typ)
	if err != nil {
		return nil, p.wrap(err)
	}
	return ref, nil
}

// angled returns the text up to the next '>' and consumes it.
func (p *abnfParser) angled() (string, error) { return p.upTo('>', "unterminated <...>") }

func (p *abnfParser) langSuffix() {
	if p.pos < len(p.src) && p.src[p.pos] == '!' {
		p.pos++
		for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
			p.pos++
		}
	}
}

// tag parses {text} or {!{ text }!}.
func (p *abnfParser) tag() (Expansion, error) {
	p.pos++ // '{'
	if strings.HasPrefix(p.src[p.pos:], "!{") {
		p.pos += 2
		i := strings.Index(p.src[p.pos:], "}!}")
		if i < 0 {
			return nil, p.errf("unterminated {!{ tag")
		}
		t := p.src[p.pos : p.pos+i]
		p.pos += i + 3
		return &Tag{Text: t}, nil
	}
	depth := 1
	start := p.pos
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				t := p.src[start:p.pos]
				p.pos++
				return &Tag{Text: t}, nil
			}
		}
		p.pos++
	}
	return nil, p.errf("unterminated tag")
}
