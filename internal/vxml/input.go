package vxml

import (
	"errors"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/opengvp/gvp/internal/vxml/srgs"
)

// maxKeys bounds the keys collected for one input.
const maxKeys = 256

// activeGrammar is a grammar listening during one collection.
type activeGrammar struct {
	m    matcherI
	form bool // form-level grammar of the current dialog (fills its slots)
	// dialog is set for a document-scoped grammar of another dialog: a
	// match transitions to it (VoiceXML 2.0 section 3.1.3).
	dialog *Dialog
	// doc holds the grammar's element: links, choices and dialogs of an
	// application root resolve against it.
	doc *Document
	// jump is set for the grammar of a <link> or a <choice>.
	jump *Jump
}

// grammarMatcher builds a matcher for a <grammar> element of owner; voice
// grammars return nil (this interpreter takes DTMF input only). External
// rule references are resolved (fetched) on the way.
func (c *execCtx) grammarMatcher(g *Grammar, owner *Document) (matcherI, error) {
	if g.Inline != nil {
		if g.Inline.Mode != srgs.ModeDTMF {
			return nil, nil
		}
		gr, err := c.linkGrammar(g.Inline, c.grammarOwnerBase(owner))
		if err != nil {
			return nil, err
		}
		return srgsMatcher{gr}, nil
	}
	src := g.Src
	if g.SrcExpr != "" {
		v, err := c.s.js.evalString(g.SrcExpr)
		if err != nil {
			return nil, err
		}
		src = v
	}
	if strings.HasPrefix(src, "builtin:") {
		if strings.HasPrefix(src, "builtin:voice/") {
			return nil, nil
		}
		b, err := parseBuiltin(src)
		if err != nil {
			return nil, badfetchf("grammar %s: %v", src, err)
		}
		return b, nil
	}
	mode := srgs.Mode(g.Mode)
	if mode == "" {
		mode = srgs.ModeDTMF
	}
	gr, u, err := c.fetchGrammar(owner, src, g.Type, mode)
	if err != nil {
		return nil, err
	}
	if gr.Mode != srgs.ModeDTMF {
		return nil, nil
	}
	if gr, err = c.linkGrammar(gr, u); err != nil {
		return nil, err
	}
	return srgsMatcher{gr}, nil
}

// activeGrammars lists the grammars of a collection in the precedence order
// of VoiceXML 2.0 section 3.1.4: the item's own (with its links), then unless
// the item is modal the form's (with its links), then the document's links
// and the document-scoped grammars of its other forms and menus, in document
// order, then the same for the application root document.
func (c *execCtx) activeGrammars(f *formState, it *Item) ([]*activeGrammar, error) {
	var out []*activeGrammar
	add := func(gs []*Grammar, a activeGrammar) error {
		for _, g := range gs {
			m, err := c.grammarMatcher(g, a.doc)
			if err != nil {
				return err
			}
			if m != nil {
				ag := a
				ag.m = m
				out = append(out, &ag)
			}
		}
		return nil
	}
	addJump := func(j *Jump, doc *Document) error {
		if j.DTMF != "" {
			sm := &seqMatcher{}
			sm.add(j.DTMF, j.DTMF)
			out = append(out, &activeGrammar{m: sm, jump: j, doc: doc})
		}
		return add(j.Grammars, activeGrammar{jump: j, doc: doc})
	}
	addChoices := func(d *Dialog, doc *Document) error {
		for _, ch := range d.Choices {
			if err := addJump(&ch.Jump, doc); err != nil {
				return err
			}
		}
		return nil
	}
	addLinks := func(ls []*Link, doc *Document) error {
		for _, l := range ls {
			if err := addJump(&l.Jump, doc); err != nil {
				return err
			}
		}
		return nil
	}
	switch it.Kind {
	case ItemMenu:
		if err := addChoices(f.dlg, c.doc); err != nil {
			return nil, err
		}
	case ItemField:
		if it.Type != "" {
			b, err := parseBuiltin(it.Type)
			if err != nil {
				return nil, badfetchf("field %s type: %v", it.Name, err)
			}
			out = append(out, &activeGrammar{m: b})
		}
		if len(it.Options) > 0 {
			sm := &seqMatcher{}
			for _, o := range it.Options {
				if o.DTMF != "" {
					sm.add(o.DTMF, o.Value)
				}
			}
			out = append(out, &activeGrammar{m: sm})
		}
		if err := add(it.Grammars, activeGrammar{doc: c.doc}); err != nil {
			return nil, err
		}
	}
	if it.Modal {
		return out, nil
	}
	if err := addLinks(it.Links, c.doc); err != nil {
		return nil, err
	}
	if err := add(f.dlg.Grammars, activeGrammar{form: true, doc: c.doc}); err != nil {
		return nil, err
	}
	if err := addLinks(f.dlg.Links, c.doc); err != nil {
		return nil, err
	}
	docs := []*Document{c.doc}
	if c.app != c.doc {
		docs = append(docs, c.app) // the root is its own current document after its links took us there
	}
	for _, d := range docs {
		if d == nil {
			continue
		}
		for _, sc := range d.scoped {
			var err error
			switch {
			case sc.link != nil:
				err = addJump(&sc.link.Jump, d)
			case sc.dlg == f.dlg:
				// The current dialog's grammars are active at form level.
			case sc.dlg.Menu:
				err = addChoices(sc.dlg, d)
			default:
				err = add(sc.dlg.DocGrammars, activeGrammar{dialog: sc.dlg, doc: d})
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

type evalState struct {
	complete    *activeGrammar
	result      srgs.Result
	canContinue bool
}

func evaluate(gs []*activeGrammar, keys string) evalState {
	var st evalState
	for _, g := range gs {
		r := g.m.match(keys)
		if r.CanContinue {
			st.canContinue = true
		}
		if r.Status == srgs.Complete && st.complete == nil {
			st.complete, st.result = g, r
		}
	}
	return st
}

func (s *session) waitKey(timeout time.Duration) (rune, bool, error) {
	if len(s.pending) > 0 {
		k := s.pending[0]
		s.pending = s.pending[1:]
		return k, true, nil
	}
	k, ok, err := s.p.WaitDigit(s.ctx, timeout)
	if err != nil {
		return 0, false, s.platformErr(err)
	}
	return k, ok, nil
}

// collect is the collect and process phases of a field, initial or menu.
func (c *execCtx) collect(f *formState, it *Item) error {
	s := c.s
	if s.final {
		return &transition{kind: trEnd}
	}
	grams, err := c.activeGrammars(f, it)
	if err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return err
	}
	timeout := s.lastTmo
	s.lastTmo = 0
	if timeout <= 0 {
		timeout = c.timeProp(it, "timeout", "", DefaultTimeout)
	}
	var termchar rune
	if tc := c.strProp(it, "termchar", DefaultTermChar); tc != "" {
		termchar = []rune(tc)[0]
	}
	idt := c.timeProp(it, "interdigittimeout", "", DefaultInterDigitTimeout)
	tt := c.timeProp(it, "termtimeout", "", DefaultTermTimeout)

	keys := ""
	wait := timeout
	for {
		k, ok, err := s.waitKey(wait)
		if err != nil {
			return err
		}
		s.steps = 0
		if !ok {
			if keys == "" {
				s.trace(TraceInput, "noinput after %v", wait)
				return &Event{Name: EventNoInput}
			}
			return c.finishInput(f, it, grams, keys)
		}
		if termchar != 0 && k == termchar {
			if st := evaluate(grams, keys+string(k)); st.complete == nil && !st.canContinue {
				s.trace(TraceInput, "termchar after %q", keys)
				return c.finishInput(f, it, grams, keys)
			}
		}
		keys += string(k)
		st := evaluate(grams, keys)
		switch {
		case st.complete == nil && !st.canContinue, len(keys) >= maxKeys:
			s.trace(TraceInput, "%q nomatch", keys)
			return &Event{Name: EventNoMatch}
		case st.complete != nil && !st.canContinue:
			if termchar != 0 && tt > 0 {
				k2, ok2, err := s.waitKey(tt)
				if err != nil {
					return err
				}
				if ok2 && k2 != termchar {
					s.pending = append(s.pending, k2)
				}
			}
			return c.finishInput(f, it, grams, keys)
		default:
			wait = idt
		}
	}
}

func (c *execCtx) finishInput(f *formState, it *Item, grams []*activeGrammar, keys string) error {
	st := evaluate(grams, keys)
	if st.complete == nil || keys == "" {
		c.s.trace(TraceInput, "%q nomatch", keys)
		return &Event{Name: EventNoMatch}
	}
	return c.processMatch(f, it, st.complete, st.result, keys)
}

// setLastResult fills application.lastresult$ and returns the result
// object also used for shadow variables.
func (c *execCtx) setLastResult(keys string, interp goja.Value) *goja.Object {
	rt := c.s.js.rt
	o := rt.NewObject()
	_ = o.Set("utterance", keys)
	_ = o.Set("inputmode", "dtmf")
	_ = o.Set("confidence", 1.0)
	_ = o.Set("interpretation", interp)
	arr := rt.NewArray(o)
	for _, k := range []string{"utterance", "inputmode", "confidence", "interpretation"} {
		_ = arr.Set(k, o.Get(k))
	}
	_ = c.appScope.Set("lastresult$", arr)
	return o
}

func (c *execCtx) fillItem(f *formState, it *Item, v goja.Value, shadow *goja.Object) {
	js := c.s.js
	js.declare(f.scope, it.Name, v)
	sh := js.rt.NewObject()
	for _, k := range []string{"utterance", "inputmode", "confidence", "interpretation"} {
		_ = sh.Set(k, shadow.Get(k))
	}
	js.declare(f.scope, it.Name+"$", sh)
}

func (c *execCtx) processMatch(f *formState, it *Item, g *activeGrammar, r srgs.Result, keys string) error {
	s := c.s
	js := s.js
	js.setChain(c.chain(f.scope, nil))
	interp, err := g.m.interp(js, r)
	if err != nil {
		return err
	}
	s.trace(TraceInput, "%q matched", keys)
	res := c.setLastResult(keys, interp)
	switch {
	case g.jump != nil:
		return c.follow(g.doc, g.jump)
	case g.dialog != nil:
		return c.enterScopedForm(g, interp, res)
	case g.form:
		return c.fillForm(f, interp, res)
	}
	v := interp
	if obj, ok := interp.(*goja.Object); ok && obj.ClassName() == "Object" {
		if sv := obj.Get(it.Slot); sv != nil && !goja.IsUndefined(sv) {
			v = sv
		}
	}
	c.fillItem(f, it, v, res)
	return c.fillProcess(f, map[*Item]bool{it: true})
}

// fillForm applies the result of a form-level grammar (mixed initiative,
// VoiceXML 2.0 section 2.3.4): each field whose slot is a property of the
// interpretation is filled, every <initial> is set, then the process phase
// runs. Nothing filled is a nomatch.
func (c *execCtx) fillForm(f *formState, interp goja.Value, res *goja.Object) error {
	js := c.s.js
	just := map[*Item]bool{}
	for _, sv := range filledSlots(f.dlg, interp) {
		c.fillItem(f, sv.item, sv.value, res)
		just[sv.item] = true
	}
	if len(just) == 0 {
		return &Event{Name: EventNoMatch, Message: "no slot filled"}
	}
	for _, x := range f.dlg.Items {
		if x.Kind == ItemInitial {
			js.declare(f.scope, x.Name, js.rt.ToValue(true))
		}
	}
	return c.fillProcess(f, just)
}

// slotValue is a field of a dialog and the value a form-level result gives its slot.
type slotValue struct {
	item  *Item
	value goja.Value
}

// filledSlots returns, in document order, the fields of dlg whose slot interp fills.
func filledSlots(dlg *Dialog, interp goja.Value) []slotValue {
	obj, _ := interp.(*goja.Object)
	if obj == nil {
		return nil
	}
	var out []slotValue
	for _, x := range dlg.Items {
		if x.Kind != ItemField {
			continue
		}
		if v := obj.Get(x.Slot); v != nil && !goja.IsUndefined(v) {
			out = append(out, slotValue{x, v})
		}
	}
	return out
}

// formInput is the result of a document-scoped form grammar matched in
// another dialog, carried by the transition to that form.
type formInput struct {
	interp goja.Value
	res    *goja.Object
}

// enterScopedForm handles a match of another dialog's document-scoped
// grammar: the interpreter transitions to that form, which is filled with
// the result once initialised (VoiceXML 2.0 section 3.1.3). A result that
// fills none of its fields is a nomatch where the input was collected.
func (c *execCtx) enterScopedForm(g *activeGrammar, interp goja.Value, res *goja.Object) error {
	if len(filledSlots(g.dialog, interp)) == 0 {
		return &Event{Name: EventNoMatch, Message: "no slot filled"}
	}
	c.s.trace(TraceInput, "document-scoped grammar of dialog %s", g.dialog.ID)
	return c.dialogTransition(g.doc, g.dialog.ID, &formInput{interp: interp, res: res})
}

// follow implements a matched <link> or <choice> of document base.
func (c *execCtx) follow(base *Document, j *Jump) error {
	if j.Event != "" || j.EventExpr != "" {
		name, err := c.attrOrExpr(j.Event, j.EventExpr)
		if err != nil {
			return err
		}
		m, err := c.attrOrExpr(j.Message, j.MessageExpr)
		if err != nil {
			return err
		}
		return &Event{Name: name, Message: m}
	}
	target := j.Next
	if j.Expr != "" {
		v, err := c.s.js.evalString(j.Expr)
		if err != nil {
			return err
		}
		target = v
	}
	if base != nil && base != c.doc && c.app != nil && base == c.app {
		// An element of the application root seen from a leaf: "#id" is
		// a dialog of the root, which becomes the current document with
		// the application's variables kept; other URIs are relative to
		// the root.
		if id, ok := strings.CutPrefix(target, "#"); ok {
			return c.dialogTransition(base, id, nil)
		}
		abs, err := resolve(base.BaseURI(), target)
		if err != nil {
			return err
		}
		target = abs
	}
	return c.transitionTo(target, &FetchRequest{Method: "GET"}, j.Fetch)
}

func (c *execCtx) record(f *formState, it *Item) error {
	s := c.s
	if s.final {
		return &transition{kind: trEnd}
	}
	format, err := ParseRecordType(it.Attrs["type"], c.strProp(it, PropertyRecordWAVCodec, ""))
	if err != nil {
		return &Event{Name: EventUnsupportedFormat, Message: err.Error()}
	}
	if err := s.flush(); err != nil {
		return err
	}
	req := &RecordRequest{
		Beep:         it.Attrs["beep"] == "true",
		MaxTime:      c.timeProp(it, "", it.Attrs["maxtime"], 0),
		FinalSilence: c.timeProp(it, "", it.Attrs["finalsilence"], 0),
		DTMFTerm:     it.Attrs["dtmfterm"] != "false",
		Type:         it.Attrs["type"],
		Format:       format,
	}
	res, err := s.p.Record(s.ctx, req)
	s.steps = 0
	if err != nil {
		return s.platformErr(err)
	}
	if res == nil || len(res.Audio) == 0 {
		s.trace(TraceInput, "record: no audio")
		return &Event{Name: EventNoInput}
	}
	js := s.js
	ct := res.Type
	if ct == "" {
		ct = format.ContentType
	}
	s.trace(TraceInput, "record: %d bytes of %s, %v", len(res.Audio), ct, res.Duration)
	js.declare(f.scope, it.Name, s.recordingValue(res.Audio, recordingMeta{contentType: ct, filename: it.Name + format.Ext()}))
	sh := js.rt.NewObject()
	_ = sh.Set("duration", res.Duration.Milliseconds())
	_ = sh.Set("size", len(res.Audio))
	if res.TermChar != 0 {
		_ = sh.Set("termchar", string(res.TermChar))
	} else {
		_ = sh.Set("termchar", goja.Null())
	}
	_ = sh.Set("maxtime", res.MaxTime)
	js.declare(f.scope, it.Name+"$", sh)
	return c.fillProcess(f, map[*Item]bool{it: true})
}

func (c *execCtx) transfer(f *formState, it *Item) error {
	s := c.s
	js := s.js
	if s.final {
		return &transition{kind: trEnd}
	}
	dest := it.Attrs["dest"]
	if e := it.Attrs["destexpr"]; e != "" {
		v, err := js.evalString(e)
		if err != nil {
			return err
		}
		dest = v
	}
	aai := it.Attrs["aai"]
	if e := it.Attrs["aaiexpr"]; e != "" {
		v, err := js.evalString(e)
		if err != nil {
			return err
		}
		aai = v
	}
	typ := it.Attrs["type"]
	if typ == "" {
		typ = "blind"
		if it.Attrs["bridge"] == "true" {
			typ = "bridge"
		}
	}
	if typ != "blind" && typ != "bridge" && typ != "consultation" {
		return badfetchf("transfer type %q", typ)
	}
	if err := s.flush(); err != nil {
		return err
	}
	req := &TransferRequest{Dest: dest, Type: typ, AAI: aai,
		ConnectTimeout: c.timeProp(it, "", it.Attrs["connecttimeout"], 30*time.Second),
		MaxTime:        c.timeProp(it, "", it.Attrs["maxtime"], 0)}
	if src := it.Attrs["transferaudio"]; src != "" && typ != "blind" {
		if u, err := resolve(c.baseURI(), src); err == nil {
			req.TransferAudio = u
		} else {
			s.trace(TraceItem, "transferaudio %q ignored: %v", src, err)
		}
	}
	s.trace(TraceItem, "transfer %s to %s", typ, dest)
	res, err := s.p.Transfer(s.ctx, req)
	s.steps = 0
	if err != nil {
		var ev *Event
		if errors.As(err, &ev) || errors.Is(err, ErrHangup) {
			return s.platformErr(err)
		}
		return &Event{Name: EventConnection, Message: err.Error()}
	}
	if typ == "blind" || typ == "consultation" && res != nil && res.Status == TransferConnected {
		s.final = true
		s.endReason = ReasonTransfer
		return &Event{Name: EventTransferred}
	}
	status := TransferUnknown
	var dur time.Duration
	if res != nil {
		status, dur = res.Status, res.Duration
	}
	js.declare(f.scope, it.Name, js.rt.ToValue(status))
	sh := js.rt.NewObject()
	_ = sh.Set("duration", dur.Milliseconds()/1000)
	_ = sh.Set("inputmode", goja.Null())
	js.declare(f.scope, it.Name+"$", sh)
	return c.fillProcess(f, map[*Item]bool{it: true})
}

// subdialog runs a subdialog in a new execution context and returns its
// <return> values as the item value.
func (c *execCtx) subdialog(f *formState, it *Item) error {
	s := c.s
	js := s.js
	if c.depth+1 > s.cfg.MaxSubdialogDepth {
		return semanticf("subdialog nesting deeper than %d", s.cfg.MaxSubdialogDepth)
	}
	src := it.Attrs["src"]
	if e := it.Attrs["srcexpr"]; e != "" {
		v, err := js.evalString(e)
		if err != nil {
			return err
		}
		src = v
	}
	params := map[string]goja.Value{}
	for _, p := range it.Params {
		if p.Expr != "" {
			v, err := js.eval(p.Expr)
			if err != nil {
				return err
			}
			params[p.Name] = v
		} else {
			params[p.Name] = js.rt.ToValue(p.Value)
		}
	}
	vals, err := c.submitValues(strings.Fields(it.Attrs["namelist"]))
	if err != nil {
		return err
	}
	child := &execCtx{s: s, parent: c, depth: c.depth + 1, params: params}
	var tr *transition
	if strings.HasPrefix(src, "#") {
		id := src[1:]
		if c.doc.Dialog(id) == nil {
			return badfetchf("subdialog %q not found", src)
		}
		tr = &transition{kind: trDialog, doc: c.doc, root: c.app, newDoc: true, dialog: id}
	} else {
		method := strings.ToUpper(it.Attrs["method"])
		enctype := it.Attrs["enctype"]
		if enctype == "" {
			enctype = EnctypeURLEncoded
		}
		doc, root, err := s.loadDocument(c, src, &FetchRequest{Method: method, Enctype: enctype, Values: vals}, it.Attrs)
		if err != nil {
			return err
		}
		_, frag, _ := strings.Cut(src, "#")
		tr = &transition{kind: trDialog, doc: doc, root: root, newDoc: true, dialog: frag}
	}
	// child.app is nil: a subdialog always gets a new application context,
	// even when it shares the caller's root document.
	s.trace(TraceItem, "subdialog %s depth %d", src, child.depth)
	ret, err := child.run(tr)
	js.setChain(c.chain(f.scope, nil))
	if err != nil {
		return err
	}
	if ret.kind != trReturn {
		return ret // exit or end propagate to the top
	}
	if ret.event != nil {
		return ret.event
	}
	obj := js.rt.NewObject()
	for _, n := range ret.names {
		_ = obj.Set(n, ret.values[n])
	}
	js.declare(f.scope, it.Name, obj)
	return c.fillProcess(f, map[*Item]bool{it: true})
}
