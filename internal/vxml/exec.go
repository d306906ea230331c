package vxml

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// execList runs statements in order; scope receives <var> declarations.
func (c *execCtx) execList(list []Stmt, scope *goja.Object) error {
	for _, st := range list {
		if err := c.exec(st, scope); err != nil {
			return err
		}
	}
	return nil
}

// exec runs one executable content element.
func (c *execCtx) exec(st Stmt, scope *goja.Object) error {
	s := c.s
	js := s.js
	switch x := st.(type) {
	case *VarStmt:
		var v goja.Value = goja.Undefined()
		if x.Expr != "" {
			var err error
			if v, err = js.eval(x.Expr); err != nil {
				return err
			}
		}
		js.declare(scope, x.Name, v)
	case *AssignStmt:
		v, err := js.eval(x.Expr)
		if err != nil {
			return err
		}
		return js.assign(x.Name, v)
	case *ScriptStmt:
		src := x.Text
		if x.Src != "" {
			resp, err := c.fetchResource(x.Src, FetchScript, nil)
			if err != nil {
				return err
			}
			src = string(resp.Body)
		}
		return js.runScript(src, scope)
	case *IfStmt:
		for _, b := range x.Branches {
			ok, err := js.evalBool(b.Cond)
			if err != nil {
				return err
			}
			if ok {
				return c.execList(b.Body, scope)
			}
		}
	case *PromptStmt:
		ok, err := js.evalBool(x.Prompt.Cond)
		if err != nil || !ok {
			return err
		}
		return c.queuePrompt(x.Prompt, nil)
	case *GotoStmt:
		return c.gotoStmt(x)
	case *SubmitStmt:
		return c.submit(x)
	case *ExitStmt:
		tr := &transition{kind: trExit}
		if x.Expr != "" {
			v, err := js.eval(x.Expr)
			if err != nil {
				return err
			}
			tr.value = v
		}
		vals, err := c.namelistValues(x.Namelist)
		if err != nil {
			return err
		}
		tr.values = vals
		return tr
	case *ReturnStmt:
		if c.parent == nil {
			return semanticf("<return> outside a subdialog")
		}
		tr := &transition{kind: trReturn}
		if x.Event != "" || x.EventExpr != "" {
			name, err := c.attrOrExpr(x.Event, x.EventExpr)
			if err != nil {
				return err
			}
			msg, err := c.attrOrExpr(x.Message, x.MessageExpr)
			if err != nil {
				return err
			}
			tr.event = &Event{Name: name, Message: msg}
			return tr
		}
		vals, err := c.namelistValues(x.Namelist)
		if err != nil {
			return err
		}
		tr.values, tr.names = vals, x.Namelist
		return tr
	case *DisconnectStmt:
		vals, err := c.namelistValues(x.Namelist)
		if err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
		s.namelist = s.exportValues(vals)
		if !s.final {
			s.final = true
			s.endReason = ReasonDisconnect
			if err := s.p.Disconnect(s.ctx); err != nil && !errors.Is(err, ErrHangup) {
				return &fatal{err: fmt.Errorf("disconnect: %w", err)}
			}
		}
		return &Event{Name: EventHangup}
	case *ThrowStmt:
		name, err := c.attrOrExpr(x.Event, x.EventExpr)
		if err != nil {
			return err
		}
		msg, err := c.attrOrExpr(x.Message, x.MessageExpr)
		if err != nil {
			return err
		}
		if name == "" {
			return semanticf("<throw> with empty event name")
		}
		return &Event{Name: name, Message: msg}
	case *LogStmt:
		var b strings.Builder
		text, err := c.renderText(x.Content)
		if err != nil {
			return err
		}
		b.WriteString(strings.TrimSpace(text))
		if x.Expr != "" {
			v, err := js.evalString(x.Expr)
			if err != nil {
				return err
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(v)
		}
		s.trace(TraceLog, "%s: %s", x.Label, b.String())
		s.p.Log(x.Label, b.String())
	case *ClearStmt:
		return c.clear(x.Namelist)
	case *RepromptStmt:
		c.reprompt = true
	case *ForeachStmt:
		return c.foreach(x.Array, x.Item, scope, func() error { return c.execList(x.Body, scope) })
	case *DataStmt:
		return c.data(x, scope)
	default:
		return semanticf("unsupported statement %T", st)
	}
	return nil
}

func (c *execCtx) attrOrExpr(attr, expr string) (string, error) {
	if expr != "" {
		return c.s.js.evalString(expr)
	}
	return attr, nil
}

// namelistValues reads variables named in a namelist.
func (c *execCtx) namelistValues(names []string) (map[string]goja.Value, error) {
	if len(names) == 0 {
		return nil, nil
	}
	m := make(map[string]goja.Value, len(names))
	for _, n := range names {
		v := c.s.js.lookup(n)
		if v == nil {
			return nil, semanticf("namelist variable %q is not declared", n)
		}
		m[n] = v
	}
	return m, nil
}

func (c *execCtx) foreach(arrayExpr, itemName string, scope *goja.Object, body func() error) error {
	js := c.s.js
	v, err := js.eval(arrayExpr)
	if err != nil {
		return err
	}
	obj, ok := v.(*goja.Object)
	if !ok || obj.ClassName() != "Array" {
		return semanticf("foreach array %q is not an array", arrayExpr)
	}
	n := int(obj.Get("length").ToInteger())
	for i := range n {
		js.declare(scope, itemName, obj.Get(fmt.Sprint(i)))
		if err := body(); err != nil {
			return err
		}
	}
	return nil
}

func (c *execCtx) clear(names []string) error {
	f := c.form
	js := c.s.js
	if len(names) == 0 {
		if f == nil {
			return nil
		}
		for _, it := range f.dlg.Items {
			c.clearItem(f, it)
		}
		return nil
	}
	for _, n := range names {
		if f != nil {
			if it := f.dlg.item(n); it != nil {
				c.clearItem(f, it)
				continue
			}
		}
		if err := js.assign(n, goja.Undefined()); err != nil {
			return err
		}
	}
	return nil
}

func (c *execCtx) clearItem(f *formState, it *Item) {
	_ = f.scope.Set(it.Name, goja.Undefined())
	delete(f.promptCount, it)
	delete(f.eventCount, it)
}

// baseURI is the base of relative URIs in the executing document: the current
// document's, or the application root's while the root's declarations run
// (c.doc is nil then).
func (c *execCtx) baseURI() string {
	if c.doc == nil {
		return c.app.BaseURI()
	}
	return c.doc.BaseURI()
}

// fetchResource fetches a script, grammar or data resource relative to the
// current document's base URI.
func (c *execCtx) fetchResource(ref string, kind FetchKind, attrs map[string]string) (*FetchResponse, error) {
	u, err := resolve(c.baseURI(), ref)
	if err != nil {
		return nil, err
	}
	return c.s.fetch(c, &FetchRequest{URL: u, Kind: kind, Method: "GET"}, attrs)
}

func (c *execCtx) gotoStmt(x *GotoStmt) error {
	js := c.s.js
	if x.NextItem != "" || x.ExprItem != "" {
		name, err := c.attrOrExpr(x.NextItem, x.ExprItem)
		if err != nil {
			return err
		}
		if c.form == nil || c.form.dlg.item(name) == nil {
			return badfetchf("goto: form item %q not found", name)
		}
		return &transition{kind: trItem, item: name}
	}
	target := x.Next
	if x.Expr != "" {
		v, err := js.evalString(x.Expr)
		if err != nil {
			return err
		}
		target = v
	}
	return c.transitionTo(target, &FetchRequest{Method: "GET"}, x.Fetch)
}

// dialogTransition goes to dialog id of d, the current document or the application root
// (which then becomes the current document, the application's variables kept), with the
// input that is to fill it, if any.
func (c *execCtx) dialogTransition(d *Document, id string, in *formInput) error {
	if d.Dialog(id) == nil {
		return badfetchf("dialog %q not found in %s", id, d.URL)
	}
	if d == c.doc {
		return &transition{kind: trDialog, dialog: id, input: in}
	}
	return &transition{kind: trDialog, doc: d, root: d, newDoc: true, dialog: id, input: in}
}

// transitionTo builds the transition to a URI: "#id" stays in the document.
func (c *execCtx) transitionTo(target string, req *FetchRequest, attrs map[string]string) error {
	if strings.HasPrefix(target, "#") && len(req.Values) == 0 && req.Method != "POST" {
		return c.dialogTransition(c.doc, target[1:], nil)
	}
	if strings.TrimSpace(target) == "" {
		return badfetchf("empty URI")
	}
	doc, root, err := c.s.loadDocument(c, target, req, attrs)
	if err != nil {
		return err
	}
	_, frag, _ := strings.Cut(target, "#")
	if frag != "" && doc.Dialog(frag) == nil {
		return badfetchf("dialog %q not found in %s", frag, doc.URL)
	}
	return &transition{kind: trDialog, doc: doc, root: root, newDoc: true, dialog: frag}
}

func (c *execCtx) submit(x *SubmitStmt) error {
	target := x.Next
	if x.Expr != "" {
		v, err := c.s.js.evalString(x.Expr)
		if err != nil {
			return err
		}
		target = v
	}
	vals, err := c.submitValues(x.Namelist)
	if err != nil {
		return err
	}
	return c.transitionTo(target, &FetchRequest{Method: x.Method, Enctype: x.Enctype, Values: vals}, x.Fetch)
}

// submitValues converts namelist variables for submission: strings as is,
// recordings as a FileValue with their media type (other ArrayBuffers as
// bytes), objects as JSON.
func (c *execCtx) submitValues(names []string) ([]NameValue, error) {
	vals := make([]NameValue, 0, len(names))
	for _, n := range names {
		v := c.s.js.lookup(n)
		if v == nil {
			return nil, semanticf("namelist variable %q is not declared", n)
		}
		vals = append(vals, NameValue{Name: n, Value: c.submitValue(v)})
	}
	return vals, nil
}

func (c *execCtx) submitValue(v goja.Value) any {
	if isUndefined(v) {
		return ""
	}
	switch x := v.Export().(type) {
	case goja.ArrayBuffer:
		if f, ok := c.s.recordingFile(v, x.Bytes()); ok {
			return f
		}
		return x.Bytes()
	case []byte:
		return x
	case string:
		return x
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err == nil {
			return string(b)
		}
	}
	return v.String()
}

// ---- prompts ----

type enumEntry struct {
	dtmf    string
	content []PNode
}

func (c *execCtx) menuEntries(d *Dialog) []enumEntry {
	out := make([]enumEntry, 0, len(d.Choices))
	for _, ch := range d.Choices {
		out = append(out, enumEntry{dtmf: ch.DTMF, content: ch.Content})
	}
	return out
}

func optionEntries(it *Item) []enumEntry {
	out := make([]enumEntry, 0, len(it.Options))
	for _, o := range it.Options {
		out = append(out, enumEntry{dtmf: o.DTMF, content: o.Content})
	}
	return out
}

// queuePrompt renders a prompt and appends it to the queue.
func (c *execCtx) queuePrompt(pe *PromptEl, item *Item) error {
	s := c.s
	r := &renderer{c: c}
	if err := r.nodes(pe.Content); err != nil {
		return err
	}
	p := &Prompt{Bargein: c.boolProp(item, "bargein", true), BargeinType: c.strProp(item, "bargeintype", "speech"), Lang: pe.Lang}
	if pe.Bargein != "" {
		p.Bargein = pe.Bargein == "true"
	}
	if pe.BargeinType != "" {
		p.BargeinType = pe.BargeinType
	}
	if pe.Timeout != "" {
		if d, ok := parseTime(pe.Timeout); ok {
			p.Timeout = d
		}
	}
	p.Parts = r.finish()
	p.SSML = `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis">` + r.ssml.String() + `</speak>`
	s.queue = append(s.queue, p)
	s.trace(TracePrompt, "queued %q", shorten(p.Text()))
	return nil
}

// flush plays queued prompts. A barge-in drops the rest of the queue.
func (s *session) flush() error {
	q := s.queue
	s.queue = s.queue[:0]
	for i, p := range q {
		if p.Timeout > 0 {
			s.lastTmo = p.Timeout
		}
		if s.final {
			continue
		}
		res, err := s.p.Play(s.ctx, p)
		if err != nil {
			return s.platformErr(err)
		}
		if res.BargedIn {
			for _, rest := range q[i+1:] {
				if rest.Timeout > 0 {
					s.lastTmo = rest.Timeout
				}
			}
			break
		}
	}
	return nil
}

// platformErr maps a platform failure: hangup becomes the hangup event.
func (s *session) platformErr(err error) error {
	if errors.Is(err, ErrHangup) {
		s.final = true
		if s.endReason == "" {
			s.endReason = ReasonHangup
		}
		return &Event{Name: EventHangup}
	}
	var ev *Event
	if errors.As(err, &ev) {
		return ev
	}
	if s.ctx.Err() != nil {
		return &fatal{err: s.ctx.Err()}
	}
	return &fatal{err: err}
}

type renderer struct {
	c     *execCtx
	parts []PromptPart
	ssml  strings.Builder
}

func (r *renderer) text(t string) {
	if t == "" {
		return
	}
	norm := strings.Join(strings.Fields(t), " ")
	if norm == "" {
		norm = " "
	} else {
		if isSpace(t[0]) {
			norm = " " + norm
		}
		if isSpace(t[len(t)-1]) {
			norm += " "
		}
	}
	r.ssml.WriteString(html.EscapeString(norm))
	if n := len(r.parts); n > 0 && r.parts[n-1].Kind == PartText {
		prev := r.parts[n-1].Text
		if strings.HasSuffix(prev, " ") && strings.HasPrefix(norm, " ") {
			norm = norm[1:]
		}
		r.parts[n-1].Text = prev + norm
		return
	}
	r.parts = append(r.parts, PromptPart{Kind: PartText, Text: norm})
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// finish trims text parts and drops empty ones.
func (r *renderer) finish() []PromptPart {
	out := r.parts[:0]
	for _, p := range r.parts {
		p.Text = strings.TrimSpace(p.Text)
		if p.Kind == PartText && p.Text == "" {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (r *renderer) nodes(ns []PNode) error {
	for _, n := range ns {
		if err := r.node(n); err != nil {
			return err
		}
	}
	return nil
}

func (r *renderer) node(n PNode) error {
	js := r.c.s.js
	switch x := n.(type) {
	case *PText:
		r.text(x.Text)
	case *PValue:
		v, err := js.evalString(x.Expr)
		if err != nil {
			return err
		}
		r.text(v)
	case *PAudio:
		src := x.Src
		if x.Expr != "" {
			v, err := js.eval(x.Expr)
			if err != nil {
				return err
			}
			if isUndefined(v) || goja.IsNull(v) {
				return nil // VoiceXML 2.1: an undefined expr skips the audio
			}
			src = v.String()
		}
		u, err := resolve(r.c.baseURI(), src)
		if err != nil {
			return err
		}
		sub := &renderer{c: r.c}
		if err := sub.nodes(x.Fallback); err != nil {
			return err
		}
		fb := ""
		for _, p := range sub.finish() {
			fb = strings.TrimSpace(fb + " " + p.Text)
		}
		r.parts = append(r.parts, PromptPart{Kind: PartAudio, URL: u, Text: fb})
		fmt.Fprintf(&r.ssml, `<audio src="%s">%s</audio>`, html.EscapeString(u), sub.ssml.String())
	case *PMark:
		name, err := r.c.attrOrExpr(x.Name, x.NameExpr)
		if err != nil {
			return err
		}
		r.parts = append(r.parts, PromptPart{Kind: PartMark, Name: name})
		fmt.Fprintf(&r.ssml, `<mark name="%s"/>`, html.EscapeString(name))
	case *PEnumerate:
		return r.enumerate(x)
	case *PForeach:
		anon := js.newScope()
		saved := js.cur
		js.setChain(chain{app: saved.app, doc: saved.doc, dlg: saved.dlg, anon: anon})
		defer js.setChain(saved)
		if saved.anon != js.empty {
			// Keep the enclosing anonymous variables visible.
			_ = anon.SetPrototype(saved.anon)
		}
		return r.c.foreach(x.Array, x.Item, anon, func() error { return r.nodes(x.Content) })
	case *PSSML:
		if x.Name == "break" {
			d := 500 * time.Millisecond
			for _, a := range x.Attrs {
				if a[0] == "time" {
					if t, ok := parseTime(a[1]); ok {
						d = t
					}
				}
			}
			r.parts = append(r.parts, PromptPart{Kind: PartBreak, Duration: d})
		}
		r.ssml.WriteString("<" + x.Name)
		for _, a := range x.Attrs {
			fmt.Fprintf(&r.ssml, ` %s="%s"`, a[0], html.EscapeString(a[1]))
		}
		r.ssml.WriteString(">")
		if err := r.nodes(x.Content); err != nil {
			return err
		}
		r.ssml.WriteString("</" + x.Name + ">")
	}
	return nil
}

// enumerate renders menu choices or field options: the template runs with
// _prompt and _dtmf set; without template "For <prompt>, press <dtmf>.".
func (r *renderer) enumerate(x *PEnumerate) error {
	js := r.c.s.js
	for _, e := range r.c.enumerate {
		sub := &renderer{c: r.c}
		if err := sub.nodes(e.content); err != nil {
			return err
		}
		ptxt := ""
		for _, p := range sub.finish() {
			ptxt = strings.TrimSpace(ptxt + " " + p.Text)
		}
		if len(x.Content) == 0 {
			if e.dtmf != "" {
				r.text(fmt.Sprintf(" For %s, press %s. ", ptxt, e.dtmf))
			} else {
				r.text(" " + ptxt + ". ")
			}
			continue
		}
		anon := js.newScope()
		_ = anon.Set("_prompt", ptxt)
		_ = anon.Set("_dtmf", e.dtmf)
		saved := js.cur
		js.setChain(chain{app: saved.app, doc: saved.doc, dlg: saved.dlg, anon: anon})
		err := r.nodes(x.Content)
		js.setChain(saved)
		if err != nil {
			return err
		}
		r.text(" ")
	}
	return nil
}

// renderText renders prompt content to plain text (for <log>).
func (c *execCtx) renderText(ns []PNode) (string, error) {
	r := &renderer{c: c}
	if err := r.nodes(ns); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range r.finish() {
		if p.Text != "" {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}
