package vxml

import (
	"errors"
	"fmt"
	"time"

	"github.com/dop251/goja"
)

// Property defaults (VoiceXML 2.0 section 6.3).
const (
	// DefaultTimeout is the default noinput timeout ("timeout" property).
	DefaultTimeout = 5 * time.Second
	// DefaultInterDigitTimeout is the default "interdigittimeout".
	DefaultInterDigitTimeout = 3 * time.Second
	// DefaultTermTimeout is the default "termtimeout".
	DefaultTermTimeout = 0
	// DefaultTermChar is the default "termchar".
	DefaultTermChar = "#"
)

// execCtx is one interpreter context level: the top-level application or a
// subdialog invocation.
type execCtx struct {
	s        *session
	parent   *execCtx
	depth    int
	app      *Document
	appScope *goja.Object
	doc      *Document
	docScope *goja.Object
	form     *formState
	params   map[string]goja.Value
	// input is a form-level result to apply when the next form starts.
	input     *formInput
	reprompt  bool
	enumerate []enumEntry
}

type formState struct {
	dlg         *Dialog
	scope       *goja.Object
	promptCount map[*Item]int
	eventCount  map[*Item]map[string]int
	item        *Item // item being visited
}

// run executes dialogs starting at tr until an exit, return or end.
func (c *execCtx) run(tr *transition) (*transition, error) {
	for {
		switch tr.kind {
		case trDialog:
			if tr.newDoc {
				if ntr, err := c.enterDocument(tr.doc, tr.root); err != nil {
					return nil, err
				} else if ntr != nil {
					tr = ntr
					continue
				}
			}
			dlg := c.doc.Dialogs[0]
			if tr.dialog != "" {
				dlg = c.doc.Dialog(tr.dialog)
				if dlg == nil {
					return nil, badfetchf("dialog %q not found in %s", tr.dialog, c.doc.URL)
				}
			}
			c.input = tr.input
			next, err := c.runForm(dlg)
			if err != nil {
				return nil, err
			}
			tr = next
		case trItem:
			return nil, badfetchf("nextitem %q outside a form", tr.item)
		default:
			return tr, nil
		}
	}
}

func (c *execCtx) chain(dlg, anon *goja.Object) chain {
	return chain{app: c.appScope, doc: c.docScope, dlg: dlg, anon: anon}
}

func (c *execCtx) newAppScope() *goja.Object {
	o := c.s.js.newScope()
	_ = o.Set("lastresult$", c.s.js.rt.NewArray())
	return o
}

// enterDocument initialises document (and if needed application) scope.
func (c *execCtx) enterDocument(doc, root *Document) (*transition, error) {
	s := c.s
	if err := s.tick(); err != nil {
		return nil, err
	}
	s.trace(TraceDocument, "%s", doc.URL)
	c.form = nil
	if doc == root && c.app == root {
		// A leaf goes to a dialog of its application root (a root link,
		// choice or document-scoped grammar): the root becomes the current
		// document and its variables are the application's, already set.
		c.doc, c.docScope = doc, c.appScope
		s.js.setChain(c.chain(nil, nil))
		return nil, nil
	}
	if root == nil || c.app != root {
		c.app = root
		c.appScope = c.newAppScope()
		if root != nil {
			c.doc, c.docScope = nil, nil
			s.js.setChain(c.chain(nil, nil))
			s.trace(TraceDocument, "application root %s", root.URL)
			if tr, err := c.initDecls(root, root.Decls, c.appScope); tr != nil || err != nil {
				return tr, err
			}
		}
	}
	c.doc = doc
	c.docScope = s.js.newScope()
	s.js.setChain(c.chain(nil, nil))
	return c.initDecls(doc, doc.Decls, c.docScope)
}

// initDecls runs document-level var/script/data declarations; events go to
// document and application handlers.
func (c *execCtx) initDecls(doc *Document, decls []Stmt, scope *goja.Object) (*transition, error) {
	for _, st := range decls {
		err := c.exec(st, scope)
		if err == nil {
			continue
		}
		var ev *Event
		if errors.As(err, &ev) {
			return c.handleEvent(nil, ev)
		}
		var tr *transition
		if errors.As(err, &tr) {
			return tr, nil
		}
		return nil, err
	}
	return nil, nil
}

// runForm is the Form Interpretation Algorithm for one dialog.
func (c *execCtx) runForm(dlg *Dialog) (*transition, error) {
	s := c.s
	s.trace(TraceDialog, "%s", dlg.ID)
	f := &formState{dlg: dlg, scope: s.js.newScope(), promptCount: map[*Item]int{}, eventCount: map[*Item]map[string]int{}}
	c.form = f
	s.js.setChain(c.chain(f.scope, nil))
	// Initialisation phase: vars, scripts and form item variables in
	// document order.
	for _, st := range dlg.Init {
		var err error
		if st.item != nil {
			var v goja.Value = goja.Undefined()
			if st.item.Expr != "" {
				v, err = s.js.eval(st.item.Expr)
			}
			if err == nil {
				s.js.declare(f.scope, st.item.Name, v)
			}
		} else if vs, ok := st.stmt.(*VarStmt); ok && c.params != nil {
			if pv, ok := c.params[vs.Name]; ok {
				s.js.declare(f.scope, vs.Name, pv)
				delete(c.params, vs.Name)
				continue
			}
			err = c.exec(st.stmt, f.scope)
		} else {
			err = c.exec(st.stmt, f.scope)
		}
		if err != nil {
			tr, ferr := c.dispatch(nil, err)
			if tr != nil || ferr != nil {
				return c.formExit(tr, ferr)
			}
		}
	}
	if len(c.params) > 0 {
		c.params = nil
		if tr, err := c.dispatch(nil, semanticf("subdialog parameter without matching <var>")); tr != nil || err != nil {
			return c.formExit(tr, err)
		}
	}
	c.params = nil

	nextItem := ""
	lastCatchNoReprompt := false
	input := c.input
	c.input = nil
	for {
		if err := s.tick(); err != nil {
			if tr, ferr := c.dispatch(nil, err); tr != nil || ferr != nil {
				if tr != nil && tr.kind == trItem {
					nextItem = tr.item
					continue
				}
				return c.formExit(tr, ferr)
			}
			continue
		}
		// Select phase.
		var item *Item
		if input != nil {
			// Input brought by a document-scoped grammar of this form,
			// matched in another dialog: processed before any item is
			// selected.
			f.item = nil
			c.reprompt = false
			err := c.fillForm(f, input.interp, input.res)
			input = nil
			var exit *transition
			nextItem, lastCatchNoReprompt, exit, err = c.settle(f, nil, err)
			if exit != nil || err != nil {
				return exit, err
			}
			continue
		}
		if nextItem != "" {
			item = dlg.item(nextItem)
			nextItem = ""
			if item == nil {
				if tr, err := c.dispatch(nil, badfetchf("form item not found")); tr != nil || err != nil {
					return c.formExit(tr, err)
				}
				continue
			}
		} else {
			var err error
			item, err = c.selectItem(f)
			if err != nil {
				if tr, ferr := c.dispatch(nil, err); tr != nil || ferr != nil {
					return c.formExit(tr, ferr)
				}
				continue
			}
		}
		if item == nil {
			// No eligible item: the form is done, which exits the session.
			return &transition{kind: trExit}, nil
		}
		// Collect and process phases.
		f.item = item
		c.reprompt = false
		err := c.visit(f, item, !lastCatchNoReprompt)
		var exit *transition
		nextItem, lastCatchNoReprompt, exit, err = c.settle(f, item, err)
		if exit != nil || err != nil {
			return exit, err
		}
	}
}

// settle handles the outcome of visiting item (nil: input brought to the
// form by a transition): an event goes to its handler, a <goto nextitem>
// names the next item, any other transition (exit) or a fatal error ends
// the form. noReprompt is true when a handled event did not ask for a
// reprompt (the next visit queues no prompts).
func (c *execCtx) settle(f *formState, item *Item, err error) (next string, noReprompt bool, exit *transition, fatalErr error) {
	if err == nil {
		return "", false, nil, nil
	}
	var ev *Event
	if errors.As(err, &ev) {
		c.count(f, item, ev.Name)
		c.reprompt = false
		tr, herr := c.handleEvent(item, ev)
		if herr != nil {
			return "", false, nil, herr
		}
		if tr == nil {
			return "", !c.reprompt, nil, nil
		}
		err = tr
	}
	var tr *transition
	if errors.As(err, &tr) {
		if tr.kind == trItem {
			return tr.item, false, nil, nil
		}
		exit, err = c.formExit(tr, nil)
		return "", false, exit, err
	}
	return "", false, nil, err
}

func (c *execCtx) formExit(tr *transition, err error) (*transition, error) {
	if err != nil {
		return nil, err
	}
	if tr.kind == trItem {
		return nil, badfetchf("goto nextitem %q during form initialisation", tr.item)
	}
	return tr, nil
}

// dispatch handles an error from executable content outside item visits.
func (c *execCtx) dispatch(item *Item, err error) (*transition, error) {
	var ev *Event
	if errors.As(err, &ev) {
		if c.form != nil {
			c.count(c.form, item, ev.Name)
		}
		return c.handleEvent(item, ev)
	}
	var tr *transition
	if errors.As(err, &tr) {
		return tr, nil
	}
	return nil, err
}

func (d *Dialog) item(name string) *Item {
	for _, it := range d.Items {
		if it.Name == name {
			return it
		}
	}
	return nil
}

// selectItem returns the first item whose guard condition is satisfied.
func (c *execCtx) selectItem(f *formState) (*Item, error) {
	js := c.s.js
	js.setChain(c.chain(f.scope, nil))
	for _, it := range f.dlg.Items {
		if !isUndefined(f.scope.Get(it.Name)) {
			continue
		}
		ok, err := js.evalBool(it.Cond)
		if err != nil {
			return nil, err
		}
		if ok {
			return it, nil
		}
	}
	return nil, nil
}

func (c *execCtx) count(f *formState, item *Item, name string) int {
	m := f.eventCount[item]
	if m == nil {
		m = map[string]int{}
		f.eventCount[item] = m
	}
	m[name]++
	return m[name]
}

// handleEvent selects and runs the catch handler for ev (VoiceXML 2.0
// 5.2.4). It returns a transition, or nil to resume the FIA.
func (c *execCtx) handleEvent(item *Item, ev *Event) (*transition, error) {
	s := c.s
	for range maxEventChain {
		s.trace(TraceEvent, "%s %s", ev.Name, ev.Message)
		if ev.Name == EventHangup {
			s.final = true
			if s.endReason == "" {
				s.endReason = ReasonHangup
			}
		}
		cnt := 1
		if c.form != nil {
			if m := c.form.eventCount[item]; m != nil && m[ev.Name] > 0 {
				cnt = m[ev.Name]
			}
		}
		ct, err := c.selectCatch(item, ev, cnt)
		if err != nil {
			var nev *Event
			if errors.As(err, &nev) {
				ev = nev
				continue
			}
			return nil, err
		}
		if ct == nil {
			return c.defaultHandler(ev)
		}
		s.trace(TraceCatch, "%s count=%d", ev.Name, ct.Count)
		anon := s.js.newScope()
		_ = anon.Set("_event", ev.Name)
		if ev.Message != "" {
			_ = anon.Set("_message", ev.Message)
		} else {
			_ = anon.Set("_message", goja.Undefined())
		}
		err = c.execBody(ct.Body, anon)
		if err == nil {
			return nil, nil
		}
		var nev *Event
		if errors.As(err, &nev) {
			if c.form != nil {
				c.count(c.form, item, nev.Name)
			}
			ev = nev
			continue
		}
		var tr *transition
		if errors.As(err, &tr) {
			return tr, nil
		}
		return nil, err
	}
	s.endReason = ReasonError
	return &transition{kind: trEnd, event: semanticf("event handlers loop: last event %s", ev.Name)}, nil
}

// selectCatch implements the catch selection rules: candidates from the
// item up to the application root in document order, filtered by name and
// cond, highest count not above cnt, first such in order.
func (c *execCtx) selectCatch(item *Item, ev *Event, cnt int) (*Catch, error) {
	var lists [4][]*Catch
	if item != nil {
		lists[0] = item.Catches
	}
	if c.form != nil {
		lists[1] = c.form.dlg.Catches
	}
	if c.doc != nil {
		lists[2] = c.doc.Catches
	}
	if c.app != nil && c.app != c.doc {
		lists[3] = c.app.Catches
	}
	var cands []*Catch
	best := 0
	for _, l := range lists {
		for _, ct := range l {
			match := len(ct.Events) == 0
			for _, n := range ct.Events {
				if eventMatches(n, ev.Name) {
					match = true
					break
				}
			}
			if !match || ct.Count > cnt {
				continue
			}
			if ct.Cond != "" {
				c.s.js.setChain(c.catchChain())
				ok, err := c.s.js.evalBool(ct.Cond)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			cands = append(cands, ct)
			if ct.Count > best {
				best = ct.Count
			}
		}
	}
	for _, ct := range cands {
		if ct.Count == best {
			return ct, nil
		}
	}
	return nil, nil
}

// catchChain is the chain catch conditions are evaluated in.
func (c *execCtx) catchChain() chain {
	var dlg *goja.Object
	if c.form != nil {
		dlg = c.form.scope
	}
	return c.chain(dlg, nil)
}

// defaultHandler applies the platform's default catch (VoiceXML 2.0
// 5.2.5): reprompt for noinput, nomatch, help, maxspeechtimeout; nothing
// for cancel; exit for everything else (errors end the session with the
// error).
func (c *execCtx) defaultHandler(ev *Event) (*transition, error) {
	s := c.s
	switch {
	case ev.Name == EventNoInput || ev.Name == EventNoMatch || ev.Name == EventHelp || ev.Name == "maxspeechtimeout":
		c.reprompt = true
		return nil, nil
	case ev.Name == EventCancel:
		return nil, nil
	case eventMatches("error", ev.Name):
		s.endReason = ReasonError
		return &transition{kind: trEnd, event: ev}, nil
	case eventMatches("connection.disconnect", ev.Name):
		if s.endReason == "" {
			s.endReason = ReasonHangup
		}
		return &transition{kind: trEnd}, nil
	case ev.Name == EventExit:
		return &transition{kind: trExit}, nil
	}
	s.endReason = ReasonExit
	return &transition{kind: trEnd, event: ev}, nil
}

// execBody runs executable content in a fresh anonymous scope.
func (c *execCtx) execBody(body []Stmt, anon *goja.Object) error {
	if anon == nil {
		anon = c.s.js.newScope()
	}
	var dlg *goja.Object
	if c.form != nil {
		dlg = c.form.scope
	}
	c.s.js.setChain(c.chain(dlg, anon))
	return c.execList(body, anon)
}

// prop returns the value of a property from the innermost scope setting it.
func (c *execCtx) prop(item *Item, name string) (string, bool) {
	if item != nil {
		if v, ok := item.Props[name]; ok {
			return v, true
		}
	}
	if c.form != nil {
		if v, ok := c.form.dlg.Props[name]; ok {
			return v, true
		}
	}
	if c.doc != nil {
		if v, ok := c.doc.Props[name]; ok {
			return v, true
		}
	}
	if c.app != nil {
		if v, ok := c.app.Props[name]; ok {
			return v, true
		}
	}
	return "", false
}

// timeProp returns a time property; attr (an element attribute) wins.
func (c *execCtx) timeProp(item *Item, name, attr string, def time.Duration) time.Duration {
	if attr != "" {
		if d, ok := parseTime(attr); ok {
			return d
		}
	}
	if c == nil {
		return def
	}
	if v, ok := c.prop(item, name); ok {
		if d, ok := parseTime(v); ok {
			return d
		}
	}
	return def
}

func (c *execCtx) boolProp(item *Item, name string, def bool) bool {
	if v, ok := c.prop(item, name); ok {
		return v == "true"
	}
	return def
}

func (c *execCtx) strProp(item *Item, name, def string) string {
	if v, ok := c.prop(item, name); ok {
		return v
	}
	return def
}

// visit executes one form item (collect and process phases).
func (c *execCtx) visit(f *formState, it *Item, queuePrompts bool) error {
	s := c.s
	s.trace(TraceItem, "%s %s", it.Kind, it.Name)
	if queuePrompts && it.Kind != ItemBlock {
		f.promptCount[it]++
		if err := c.queueItemPrompts(f, it); err != nil {
			return err
		}
	}
	switch it.Kind {
	case ItemBlock:
		s.js.declare(f.scope, it.Name, s.js.rt.ToValue(true))
		return c.execBody(it.Body, nil)
	case ItemField, ItemInitial, ItemMenu:
		return c.collect(f, it)
	case ItemRecord:
		return c.record(f, it)
	case ItemTransfer:
		return c.transfer(f, it)
	case ItemSubdialog:
		return c.subdialog(f, it)
	case ItemObject:
		s.js.declare(f.scope, it.Name, s.js.rt.ToValue(true))
		return &Event{Name: EventObjectType, Message: fmt.Sprintf("object %q is not supported", it.Name)}
	}
	return nil
}

// queueItemPrompts selects the item's prompts by count and cond.
func (c *execCtx) queueItemPrompts(f *formState, it *Item) error {
	n := f.promptCount[it]
	c.s.js.setChain(c.chain(f.scope, nil))
	best := 0
	for _, p := range it.Prompts {
		if p.Count <= n && p.Count > best {
			ok, err := c.s.js.evalBool(p.Cond)
			if err != nil {
				return err
			}
			if ok {
				best = p.Count
			}
		}
	}
	if it.Kind == ItemMenu {
		c.enumerate = c.menuEntries(f.dlg)
	} else if len(it.Options) > 0 {
		c.enumerate = optionEntries(it)
	}
	for _, p := range it.Prompts {
		if p.Count != best {
			continue
		}
		ok, err := c.s.js.evalBool(p.Cond)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := c.queuePrompt(p, it); err != nil {
			return err
		}
	}
	return nil
}

// fillProcess runs the process phase after items were just filled.
func (c *execCtx) fillProcess(f *formState, just map[*Item]bool) error {
	var fills []*Filled
	for _, it := range f.dlg.Items {
		fills = append(fills, it.Filled...)
	}
	fills = append(fills, f.dlg.Filled...)
	sortFilled(fills)
	for _, fl := range fills {
		names := fl.Namelist
		if fl.owner != nil {
			if !just[fl.owner] {
				continue
			}
		} else {
			if len(names) == 0 {
				for _, it := range f.dlg.Items {
					if it.Kind != ItemBlock && it.Kind != ItemInitial {
						names = append(names, it.Name)
					}
				}
			}
			anyJust, all := false, true
			for _, n := range names {
				it := f.dlg.item(n)
				if it != nil && just[it] {
					anyJust = true
				}
				if isUndefined(f.scope.Get(n)) {
					all = false
				}
			}
			if !anyJust || (fl.ModeAll && !all) {
				continue
			}
		}
		if err := c.execBody(fl.Body, nil); err != nil {
			return err
		}
	}
	return nil
}

func sortFilled(fs []*Filled) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].order < fs[j-1].order; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}
