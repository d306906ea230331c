package vxml

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opengvp/gvp/internal/vxml/srgs"
	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

// NamespaceVXML is the VoiceXML 2.x namespace.
const NamespaceVXML = "http://www.w3.org/2001/vxml"

// ErrInvalidDocument is wrapped by every parse error; the interpreter throws
// error.badfetch for such documents.
var ErrInvalidDocument = errors.New("invalid VoiceXML document")

// Parse parses a VoiceXML document. url is the document's absolute URL.
func Parse(data []byte, url string, lim xmltree.Limits) (*Document, error) {
	root, err := xmltree.Parse(data, lim)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	p := &parser{}
	doc, err := p.document(root, url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidDocument, err)
	}
	return doc, nil
}

type parser struct {
	autoName    int
	filledOrder int
}

func errAt(n *xmltree.Node, format string, a ...any) error {
	return fmt.Errorf("line %d: <%s>: %s", n.Line, n.Name, fmt.Sprintf(format, a...))
}

func isVXML(n *xmltree.Node) bool { return n.Space == "" || n.Space == NamespaceVXML }

func attrMap(n *xmltree.Node) map[string]string {
	m := make(map[string]string, len(n.Attrs))
	for _, a := range n.Attrs {
		if a.Name.Space == "" || a.Name.Space == n.Space {
			m[a.Name.Local] = a.Value
		}
	}
	return m
}

// exactlyOne checks that exactly one of the attributes is present.
func exactlyOne(n *xmltree.Node, names ...string) error {
	c := 0
	for _, nm := range names {
		if _, ok := n.Attr(nm); ok {
			c++
		}
	}
	if c != 1 {
		return errAt(n, "exactly one of %s is required", strings.Join(names, ", "))
	}
	return nil
}

func required(n *xmltree.Node, name string) (string, error) {
	v, ok := n.Attr(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", errAt(n, "attribute %q is required", name)
	}
	return v, nil
}

func namelist(n *xmltree.Node) []string {
	return strings.Fields(n.AttrOr("namelist", ""))
}

// xmlAttr returns the attribute xml:<name> (or, leniently, an unprefixed <name>).
func xmlAttr(n *xmltree.Node, name string) string {
	if v, ok := n.XMLAttr(name); ok {
		return v
	}
	return n.AttrOr(name, "")
}

func fetchAttrs(n *xmltree.Node) map[string]string {
	var m map[string]string
	for _, k := range []string{"fetchtimeout", "maxage", "maxstale", "fetchhint", "fetchaudio"} {
		if v, ok := n.Attr(k); ok {
			if m == nil {
				m = map[string]string{}
			}
			m[k] = v
		}
	}
	return m
}

func (p *parser) document(n *xmltree.Node, url string) (*Document, error) {
	if n.Name != "vxml" || !isVXML(n) {
		return nil, fmt.Errorf("root element is <%s>, want <vxml>", n.Name)
	}
	ver, ok := n.Attr("version")
	if !ok {
		return nil, errAt(n, "attribute \"version\" is required")
	}
	if ver != "2.0" && ver != "2.1" {
		return nil, errAt(n, "unsupported version %q", ver)
	}
	d := &Document{URL: url, Version: ver, Application: n.AttrOr("application", ""),
		Props: map[string]string{}, byID: map[string]*Dialog{}}
	d.Lang = xmlAttr(n, "lang")
	if b, ok := n.XMLAttr("base"); ok && strings.TrimSpace(b) != "" {
		base, err := resolve(url, b)
		if err != nil {
			return nil, errAt(n, "bad xml:base %q", b)
		}
		d.Base, d.baseURI = b, base
	}
	for _, c := range n.Elements() {
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "var", "script", "data":
			s, err := p.stmt(c)
			if err != nil {
				return nil, err
			}
			d.Decls = append(d.Decls, s)
		case "form", "menu":
			dlg, err := p.dialog(c)
			if err != nil {
				return nil, err
			}
			if dlg.ID == "" {
				p.autoName++
				dlg.ID = fmt.Sprintf("$dialog%d", p.autoName)
			} else if _, dup := d.byID[dlg.ID]; dup {
				return nil, errAt(c, "duplicate dialog id %q", dlg.ID)
			}
			d.byID[dlg.ID] = dlg
			d.Dialogs = append(d.Dialogs, dlg)
			if len(dlg.DocGrammars) > 0 || (dlg.Menu && dlg.Scope == "document") {
				d.scoped = append(d.scoped, scopedSource{dlg: dlg})
			}
		case "property":
			if err := p.property(c, d.Props); err != nil {
				return nil, err
			}
		case "link":
			l, err := p.link(c)
			if err != nil {
				return nil, err
			}
			d.Links = append(d.Links, l)
			d.scoped = append(d.scoped, scopedSource{link: l})
		case "meta", "metadata":
		default:
			if ct, ok, err := p.catch(c); ok || err != nil {
				if err != nil {
					return nil, err
				}
				d.Catches = append(d.Catches, ct)
				continue
			}
			return nil, errAt(c, "element not allowed in <vxml>")
		}
	}
	if len(d.Dialogs) == 0 {
		return nil, errAt(n, "document has no <form> or <menu>")
	}
	return d, nil
}

func (p *parser) property(c *xmltree.Node, props map[string]string) error {
	name, err := required(c, "name")
	if err != nil {
		return err
	}
	v, ok := c.Attr("value")
	if !ok {
		return errAt(c, "attribute \"value\" is required")
	}
	props[name] = v
	return nil
}

func (p *parser) catch(c *xmltree.Node) (*Catch, bool, error) {
	ct := &Catch{}
	switch c.Name {
	case "catch":
		ct.Events = strings.Fields(c.AttrOr("event", ""))
	case "noinput", "nomatch", "help", "error":
		ct.Events = []string{c.Name}
	default:
		return nil, false, nil
	}
	ct.Count = 1
	if v, ok := c.Attr("count"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return nil, true, errAt(c, "bad count %q", v)
		}
		ct.Count = n
	}
	ct.Cond = c.AttrOr("cond", "")
	body, err := p.block(c)
	if err != nil {
		return nil, true, err
	}
	ct.Body = body
	return ct, true, nil
}

// jumpOf reads the attributes shared by <link> and <choice>, of which exactly one of next,
// expr, event and eventexpr names where it goes.
func jumpOf(c *xmltree.Node) (Jump, error) {
	if err := exactlyOne(c, "next", "expr", "event", "eventexpr"); err != nil {
		return Jump{}, err
	}
	return Jump{Next: c.AttrOr("next", ""), Expr: c.AttrOr("expr", ""), Event: c.AttrOr("event", ""),
		EventExpr: c.AttrOr("eventexpr", ""), Message: c.AttrOr("message", ""), MessageExpr: c.AttrOr("messageexpr", ""),
		DTMF: c.AttrOr("dtmf", ""), Fetch: fetchAttrs(c)}, nil
}

func (p *parser) link(c *xmltree.Node) (*Link, error) {
	j, err := jumpOf(c)
	if err != nil {
		return nil, err
	}
	l := &Link{Jump: j}
	for _, g := range c.Elements() {
		if !isVXML(g) {
			continue
		}
		if g.Name != "grammar" {
			return nil, errAt(g, "element not allowed in <link>")
		}
		gr, err := p.grammar(g)
		if err != nil {
			return nil, err
		}
		l.Grammars = append(l.Grammars, gr)
	}
	if len(l.Grammars) == 0 && l.DTMF == "" {
		return nil, errAt(c, "link has no grammar")
	}
	return l, nil
}

func (p *parser) grammar(c *xmltree.Node) (*Grammar, error) {
	g := &Grammar{Src: c.AttrOr("src", ""), SrcExpr: c.AttrOr("srcexpr", ""), Type: c.AttrOr("type", ""),
		Mode: c.AttrOr("mode", ""), Scope: c.AttrOr("scope", ""), Line: c.Line}
	if g.Src != "" && g.SrcExpr != "" {
		return nil, errAt(c, "src and srcexpr are exclusive")
	}
	if g.Scope != "" && g.Scope != "dialog" && g.Scope != "document" {
		return nil, errAt(c, "bad scope %q", g.Scope)
	}
	if g.Src != "" || g.SrcExpr != "" {
		return g, nil
	}
	mode := srgs.Mode(g.Mode)
	if mode == "" {
		mode = srgs.ModeVoice
	}
	if len(c.Elements()) > 0 {
		gg, err := srgs.FromNode(c, mode)
		if err != nil {
			return nil, fmt.Errorf("line %d: inline grammar: %w", c.Line, err)
		}
		g.Inline = gg
		return g, nil
	}
	text := c.InnerText()
	if strings.TrimSpace(text) == "" {
		return nil, errAt(c, "empty grammar")
	}
	gg, err := srgs.ParseABNF(text, mode)
	if err != nil {
		return nil, fmt.Errorf("line %d: inline grammar: %w", c.Line, err)
	}
	g.Inline = gg
	return g, nil
}

func (p *parser) itemName(c *xmltree.Node) string {
	if v, ok := c.Attr("name"); ok && v != "" {
		return v
	}
	p.autoName++
	return fmt.Sprintf("$item%d", p.autoName)
}

func (p *parser) dialog(n *xmltree.Node) (*Dialog, error) {
	d := &Dialog{ID: n.AttrOr("id", ""), Menu: n.Name == "menu", Scope: n.AttrOr("scope", "dialog"), Props: map[string]string{}}
	if d.Scope != "dialog" && d.Scope != "document" {
		return nil, errAt(n, "bad scope %q", d.Scope)
	}
	if d.Menu {
		return d, p.menu(n, d)
	}
	for _, c := range n.Elements() {
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "var", "script", "data":
			s, err := p.stmt(c)
			if err != nil {
				return nil, err
			}
			d.Init = append(d.Init, initStep{stmt: s})
		case "block", "field", "record", "transfer", "subdialog", "initial", "object":
			it, err := p.item(c)
			if err != nil {
				return nil, err
			}
			for _, o := range d.Items {
				if o.Name == it.Name {
					return nil, errAt(c, "duplicate form item name %q", it.Name)
				}
			}
			it.index = len(d.Items)
			d.Items = append(d.Items, it)
			d.Init = append(d.Init, initStep{item: it})
		case "filled":
			f, err := p.filled(c)
			if err != nil {
				return nil, err
			}
			d.Filled = append(d.Filled, f)
		case "grammar":
			g, err := p.grammar(c)
			if err != nil {
				return nil, err
			}
			d.Grammars = append(d.Grammars, g)
			// A form-level grammar takes the form's scope unless it
			// names its own (VoiceXML 2.0 section 3.1.3).
			if g.Scope == "document" || (g.Scope == "" && d.Scope == "document") {
				d.DocGrammars = append(d.DocGrammars, g)
			}
		case "property":
			if err := p.property(c, d.Props); err != nil {
				return nil, err
			}
		case "link":
			l, err := p.link(c)
			if err != nil {
				return nil, err
			}
			d.Links = append(d.Links, l)
		default:
			if ct, ok, err := p.catch(c); ok || err != nil {
				if err != nil {
					return nil, err
				}
				d.Catches = append(d.Catches, ct)
				continue
			}
			return nil, errAt(c, "element not allowed in <form>")
		}
	}
	return d, nil
}

func (p *parser) menu(n *xmltree.Node, d *Dialog) error {
	d.DTMF = n.AttrOr("dtmf", "false") == "true"
	it := &Item{Kind: ItemMenu, Name: "$menu", Props: map[string]string{}, Line: n.Line}
	d.Items = []*Item{it}
	d.Init = []initStep{{item: it}}
	for _, c := range n.Elements() {
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "prompt":
			pr, err := p.prompt(c)
			if err != nil {
				return err
			}
			it.Prompts = append(it.Prompts, pr)
		case "audio", "value", "enumerate":
			pn, err := p.pnode(c)
			if err != nil {
				return err
			}
			it.Prompts = append(it.Prompts, &PromptEl{Count: 1, Content: []PNode{pn}})
		case "choice":
			j, err := jumpOf(c)
			if err != nil {
				return err
			}
			ch := &Choice{Jump: j}
			if err := p.choiceContent(c, ch); err != nil {
				return err
			}
			d.Choices = append(d.Choices, ch)
		case "property":
			if err := p.property(c, d.Props); err != nil {
				return err
			}
		case "script", "var":
			s, err := p.stmt(c)
			if err != nil {
				return err
			}
			d.Init = append([]initStep{{stmt: s}}, d.Init...)
		case "link":
			l, err := p.link(c)
			if err != nil {
				return err
			}
			d.Links = append(d.Links, l)
		default:
			if ct, ok, err := p.catch(c); ok || err != nil {
				if err != nil {
					return err
				}
				d.Catches = append(d.Catches, ct)
				continue
			}
			return errAt(c, "element not allowed in <menu>")
		}
	}
	if len(d.Choices) == 0 {
		return errAt(n, "menu has no <choice>")
	}
	next := 1
	for _, ch := range d.Choices {
		if ch.DTMF == "" && d.DTMF {
			if next > 9 {
				return errAt(n, "more than 9 choices for dtmf=\"true\"")
			}
			ch.DTMF = strconv.Itoa(next)
			next++
		}
	}
	return nil
}

// choiceContent parses a <choice>'s children: <grammar> elements and prompt
// content (the choice's text for <enumerate>).
func (p *parser) choiceContent(n *xmltree.Node, ch *Choice) error {
	for _, c := range n.Children {
		if c.IsText() {
			if strings.TrimSpace(c.Text) != "" {
				ch.Content = append(ch.Content, &PText{Text: c.Text})
			}
			continue
		}
		if c.Name == "grammar" && isVXML(c) {
			g, err := p.grammar(c)
			if err != nil {
				return err
			}
			ch.Grammars = append(ch.Grammars, g)
			continue
		}
		pn, err := p.pnode(c)
		if err != nil {
			return err
		}
		if pn != nil {
			ch.Content = append(ch.Content, pn)
		}
	}
	return nil
}

var itemKinds = map[string]ItemKind{"block": ItemBlock, "field": ItemField, "record": ItemRecord,
	"transfer": ItemTransfer, "subdialog": ItemSubdialog, "initial": ItemInitial, "object": ItemObject}

func (p *parser) item(n *xmltree.Node) (*Item, error) {
	it := &Item{Kind: itemKinds[n.Name], Name: p.itemName(n), Expr: n.AttrOr("expr", ""), Cond: n.AttrOr("cond", ""),
		Props: map[string]string{}, Attrs: attrMap(n), Line: n.Line, Modal: n.AttrOr("modal", "false") == "true",
		Slot: n.AttrOr("slot", ""), Type: n.AttrOr("type", "")}
	if it.Slot == "" {
		it.Slot = it.Name
	}
	switch it.Kind {
	case ItemBlock:
		body, err := p.block(n)
		if err != nil {
			return nil, err
		}
		it.Body = body
		return it, nil
	case ItemSubdialog:
		if err := exactlyOne(n, "src", "srcexpr"); err != nil {
			return nil, err
		}
	case ItemTransfer:
		if _, ok := n.Attr("dest"); ok {
			if _, ok2 := n.Attr("destexpr"); ok2 {
				return nil, errAt(n, "dest and destexpr are exclusive")
			}
		}
	}
	for _, c := range n.Elements() {
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "prompt":
			pr, err := p.prompt(c)
			if err != nil {
				return nil, err
			}
			it.Prompts = append(it.Prompts, pr)
		case "audio", "value", "enumerate":
			pn, err := p.pnode(c)
			if err != nil {
				return nil, err
			}
			it.Prompts = append(it.Prompts, &PromptEl{Count: 1, Content: []PNode{pn}})
		case "grammar":
			g, err := p.grammar(c)
			if err != nil {
				return nil, err
			}
			it.Grammars = append(it.Grammars, g)
		case "filled":
			f, err := p.filled(c)
			if err != nil {
				return nil, err
			}
			f.owner = it
			it.Filled = append(it.Filled, f)
		case "property":
			if err := p.property(c, it.Props); err != nil {
				return nil, err
			}
		case "link":
			l, err := p.link(c)
			if err != nil {
				return nil, err
			}
			it.Links = append(it.Links, l)
		case "option":
			if it.Kind != ItemField {
				return nil, errAt(c, "option outside <field>")
			}
			o := &Option{DTMF: c.AttrOr("dtmf", ""), Value: c.AttrOr("value", "")}
			content, err := p.pcontent(c, true)
			if err != nil {
				return nil, err
			}
			o.Content = content
			if o.Value == "" {
				o.Value = strings.TrimSpace(c.InnerText())
			}
			it.Options = append(it.Options, o)
		case "param":
			if it.Kind != ItemSubdialog && it.Kind != ItemObject {
				return nil, errAt(c, "param outside <subdialog> or <object>")
			}
			name, err := required(c, "name")
			if err != nil {
				return nil, err
			}
			it.Params = append(it.Params, &Param{Name: name, Expr: c.AttrOr("expr", ""), Value: c.AttrOr("value", "")})
		default:
			if ct, ok, err := p.catch(c); ok || err != nil {
				if err != nil {
					return nil, err
				}
				it.Catches = append(it.Catches, ct)
				continue
			}
			return nil, errAt(c, "element not allowed in <%s>", n.Name)
		}
	}
	return it, nil
}

func (p *parser) filled(c *xmltree.Node) (*Filled, error) {
	f := &Filled{Namelist: namelist(c)}
	switch m := c.AttrOr("mode", "all"); m {
	case "all":
		f.ModeAll = true
	case "any":
	default:
		return nil, errAt(c, "bad mode %q", m)
	}
	body, err := p.block(c)
	if err != nil {
		return nil, err
	}
	f.Body = body
	p.filledOrder++
	f.order = p.filledOrder
	return f, nil
}

func (p *parser) prompt(c *xmltree.Node) (*PromptEl, error) {
	pr := &PromptEl{Bargein: c.AttrOr("bargein", ""), BargeinType: c.AttrOr("bargeintype", ""), Count: 1,
		Cond: c.AttrOr("cond", ""), Timeout: c.AttrOr("timeout", "")}
	pr.Lang = xmlAttr(c, "lang")
	if pr.Bargein != "" && pr.Bargein != "true" && pr.Bargein != "false" {
		return nil, errAt(c, "bad bargein %q", pr.Bargein)
	}
	if v, ok := c.Attr("count"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return nil, errAt(c, "bad count %q", v)
		}
		pr.Count = n
	}
	content, err := p.pcontent(c, true)
	if err != nil {
		return nil, err
	}
	pr.Content = content
	return pr, nil
}

// ssmlElements are SSML elements kept as-is in prompts.
var ssmlElements = map[string]bool{"break": true, "emphasis": true, "prosody": true, "say-as": true, "voice": true,
	"p": true, "s": true, "sub": true, "phoneme": true, "paragraph": true, "sentence": true, "lexicon": true,
	"meta": true, "metadata": true, "desc": true, "speak": true}

func (p *parser) pcontent(n *xmltree.Node, allowText bool) ([]PNode, error) {
	var out []PNode
	for _, c := range n.Children {
		if c.IsText() {
			if allowText && strings.TrimSpace(c.Text) != "" {
				out = append(out, &PText{Text: c.Text})
			}
			continue
		}
		pn, err := p.pnode(c)
		if err != nil {
			return nil, err
		}
		if pn != nil {
			out = append(out, pn)
		}
	}
	return out, nil
}

func (p *parser) pnode(c *xmltree.Node) (PNode, error) {
	switch c.Name {
	case "value":
		e, err := required(c, "expr")
		if err != nil {
			return nil, err
		}
		return &PValue{Expr: e}, nil
	case "audio":
		a := &PAudio{Src: c.AttrOr("src", ""), Expr: c.AttrOr("expr", "")}
		if err := exactlyOne(c, "src", "expr"); err != nil {
			return nil, err
		}
		fb, err := p.pcontent(c, true)
		if err != nil {
			return nil, err
		}
		a.Fallback = fb
		return a, nil
	case "mark":
		if err := exactlyOne(c, "name", "nameexpr"); err != nil {
			return nil, err
		}
		return &PMark{Name: c.AttrOr("name", ""), NameExpr: c.AttrOr("nameexpr", "")}, nil
	case "enumerate":
		content, err := p.pcontent(c, true)
		if err != nil {
			return nil, err
		}
		return &PEnumerate{Content: content}, nil
	case "foreach":
		arr, err := required(c, "array")
		if err != nil {
			return nil, err
		}
		item, err := required(c, "item")
		if err != nil {
			return nil, err
		}
		content, err := p.pcontent(c, true)
		if err != nil {
			return nil, err
		}
		return &PForeach{Array: arr, Item: item, Content: content}, nil
	}
	if ssmlElements[c.Name] {
		s := &PSSML{Name: c.Name}
		for _, a := range c.Attrs {
			if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
				continue
			}
			s.Attrs = append(s.Attrs, [2]string{a.Name.Local, a.Value})
		}
		content, err := p.pcontent(c, true)
		if err != nil {
			return nil, err
		}
		s.Content = content
		return s, nil
	}
	if !isVXML(c) {
		return nil, nil
	}
	return nil, errAt(c, "element not allowed in prompt content")
}

// block parses executable content. Text, <audio>, <value>, <enumerate> and
// <mark> directly in it become implicit prompts.
func (p *parser) block(n *xmltree.Node) ([]Stmt, error) {
	var out []Stmt
	var pending []PNode
	flush := func() {
		if len(pending) > 0 {
			out = append(out, &PromptStmt{Prompt: &PromptEl{Count: 1, Content: pending}})
			pending = nil
		}
	}
	kids := n.Children
	for i := 0; i < len(kids); i++ {
		c := kids[i]
		if c.IsText() {
			if strings.TrimSpace(c.Text) != "" {
				pending = append(pending, &PText{Text: c.Text})
			}
			continue
		}
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "audio", "value", "enumerate", "mark", "break":
			pn, err := p.pnode(c)
			if err != nil {
				return nil, err
			}
			pending = append(pending, pn)
			continue
		case "elseif", "else":
			return nil, errAt(c, "outside <if>")
		}
		flush()
		s, err := p.stmt(c)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	flush()
	return out, nil
}

func (p *parser) stmt(c *xmltree.Node) (Stmt, error) {
	switch c.Name {
	case "var":
		name, err := required(c, "name")
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(name, ".[") {
			return nil, errAt(c, "variable name %q must not contain a scope prefix", name)
		}
		return &VarStmt{Name: name, Expr: c.AttrOr("expr", "")}, nil
	case "assign":
		name, err := required(c, "name")
		if err != nil {
			return nil, err
		}
		expr, err := required(c, "expr")
		if err != nil {
			return nil, err
		}
		return &AssignStmt{Name: name, Expr: expr}, nil
	case "script":
		s := &ScriptStmt{Src: c.AttrOr("src", ""), Text: c.InnerText(), Line: c.Line}
		if s.Src != "" && strings.TrimSpace(s.Text) != "" {
			return nil, errAt(c, "src and inline content are exclusive")
		}
		return s, nil
	case "if":
		return p.ifStmt(c)
	case "prompt":
		pr, err := p.prompt(c)
		if err != nil {
			return nil, err
		}
		return &PromptStmt{Prompt: pr}, nil
	case "goto":
		if err := exactlyOne(c, "next", "expr", "nextitem", "expritem"); err != nil {
			return nil, err
		}
		return &GotoStmt{Next: c.AttrOr("next", ""), Expr: c.AttrOr("expr", ""), NextItem: c.AttrOr("nextitem", ""),
			ExprItem: c.AttrOr("expritem", ""), Fetch: fetchAttrs(c)}, nil
	case "submit":
		if err := exactlyOne(c, "next", "expr"); err != nil {
			return nil, err
		}
		s := &SubmitStmt{Next: c.AttrOr("next", ""), Expr: c.AttrOr("expr", ""), Method: strings.ToUpper(c.AttrOr("method", "GET")),
			Enctype: c.AttrOr("enctype", EnctypeURLEncoded), Namelist: namelist(c), Fetch: fetchAttrs(c)}
		if s.Method != "GET" && s.Method != "POST" {
			return nil, errAt(c, "bad method %q", s.Method)
		}
		return s, nil
	case "exit":
		return &ExitStmt{Expr: c.AttrOr("expr", ""), Namelist: namelist(c)}, nil
	case "return":
		return &ReturnStmt{Event: c.AttrOr("event", ""), EventExpr: c.AttrOr("eventexpr", ""), Message: c.AttrOr("message", ""),
			MessageExpr: c.AttrOr("messageexpr", ""), Namelist: namelist(c)}, nil
	case "disconnect":
		return &DisconnectStmt{Namelist: namelist(c)}, nil
	case "throw":
		if err := exactlyOne(c, "event", "eventexpr"); err != nil {
			return nil, err
		}
		return &ThrowStmt{Event: c.AttrOr("event", ""), EventExpr: c.AttrOr("eventexpr", ""), Message: c.AttrOr("message", ""),
			MessageExpr: c.AttrOr("messageexpr", "")}, nil
	case "log":
		content, err := p.pcontent(c, true)
		if err != nil {
			return nil, err
		}
		return &LogStmt{Label: c.AttrOr("label", ""), Expr: c.AttrOr("expr", ""), Content: content}, nil
	case "clear":
		return &ClearStmt{Namelist: namelist(c)}, nil
	case "reprompt":
		return &RepromptStmt{}, nil
	case "foreach":
		arr, err := required(c, "array")
		if err != nil {
			return nil, err
		}
		item, err := required(c, "item")
		if err != nil {
			return nil, err
		}
		body, err := p.block(c)
		if err != nil {
			return nil, err
		}
		return &ForeachStmt{Array: arr, Item: item, Body: body}, nil
	case "data":
		if err := exactlyOne(c, "src", "srcexpr"); err != nil {
			return nil, err
		}
		return &DataStmt{Name: c.AttrOr("name", ""), Src: c.AttrOr("src", ""), SrcExpr: c.AttrOr("srcexpr", ""),
			Method: strings.ToUpper(c.AttrOr("method", "GET")), Enctype: c.AttrOr("enctype", EnctypeURLEncoded),
			Namelist: namelist(c), Fetch: fetchAttrs(c)}, nil
	}
	return nil, errAt(c, "element not allowed in executable content")
}

func (p *parser) ifStmt(n *xmltree.Node) (Stmt, error) {
	cond, err := required(n, "cond")
	if err != nil {
		return nil, err
	}
	st := &IfStmt{}
	cur := Branch{Cond: cond}
	var pending []PNode
	sawElse := false
	flush := func() {
		if len(pending) > 0 {
			cur.Body = append(cur.Body, &PromptStmt{Prompt: &PromptEl{Count: 1, Content: pending}})
			pending = nil
		}
	}
	for _, c := range n.Children {
		if c.IsText() {
			if strings.TrimSpace(c.Text) != "" {
				pending = append(pending, &PText{Text: c.Text})
			}
			continue
		}
		if !isVXML(c) {
			continue
		}
		switch c.Name {
		case "elseif", "else":
			if sawElse {
				return nil, errAt(c, "after <else>")
			}
			flush()
			st.Branches = append(st.Branches, cur)
			cur = Branch{}
			if c.Name == "elseif" {
				cond, err := required(c, "cond")
				if err != nil {
					return nil, err
				}
				cur.Cond = cond
			} else {
				sawElse = true
				cur.Cond = "true"
			}
			continue
		case "audio", "value", "enumerate", "mark", "break":
			pn, err := p.pnode(c)
			if err != nil {
				return nil, err
			}
			pending = append(pending, pn)
			continue
		}
		flush()
		s, err := p.stmt(c)
		if err != nil {
			return nil, err
		}
		cur.Body = append(cur.Body, s)
	}
	flush()
	st.Branches = append(st.Branches, cur)
	return st, nil
}
