package vxml

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
)

const (
	// DefaultScriptBudget is the default CPU time one script, expression or
	// grammar tag evaluation may take before it is interrupted and
	// error.semantic is thrown.
	DefaultScriptBudget = time.Second
	// DefaultMaxCallStack is the default deepest ECMAScript call stack;
	// deeper recursion throws error.semantic.
	DefaultMaxCallStack = 512
	// maxPrograms bounds the process-wide cache of compiled expressions and
	// scripts; the cache is cleared when it is full.
	maxPrograms = 16384
)

var errBudget = errors.New("script exceeded its time budget")

// compiled is a cached compiled script or expression.
type compiled struct {
	prog  *goja.Program
	vars  []string // top-level var declarations (scripts)
	funcs []string // top-level function declarations (scripts)
}

// progCache is a process-wide cache of compiled programs keyed by source.
// goja programs are not tied to a runtime, so all sessions share them.
var progCache = struct {
	sync.Mutex
	m map[string]*compiled
}{m: map[string]*compiled{}}

func cacheGet(key string) *compiled {
	progCache.Lock()
	c := progCache.m[key]
	progCache.Unlock()
	return c
}

func cachePut(key string, c *compiled) {
	progCache.Lock()
	if len(progCache.m) >= maxPrograms {
		clear(progCache.m)
	}
	progCache.m[key] = c
	progCache.Unlock()
}

const chainPrefix = "with($vx$.a)with($vx$.d)with($vx$.g)with($vx$.n)"

func compileExpr(expr string) (*compiled, error) {
	key := "e\x00" + expr
	if c := cacheGet(key); c != nil {
		return c, nil
	}
	p, err := goja.Compile("expr", chainPrefix+"(\n"+expr+"\n)", false)
	if err != nil {
		return nil, err
	}
	c := &compiled{prog: p}
	cachePut(key, c)
	return c, nil
}

func compileScript(src string) (*compiled, error) {
	key := "s\x00" + src
	if c := cacheGet(key); c != nil {
		return c, nil
	}
	tree, err := goja.Parse("script", src)
	if err != nil {
		return nil, err
	}
	c := &compiled{}
	for _, d := range tree.DeclarationList {
		for _, b := range d.List {
			if id, ok := b.Target.(*ast.Identifier); ok {
				c.vars = append(c.vars, string(id.Name))
			}
		}
	}
	var tail strings.Builder
	for _, st := range tree.Body {
		if fd, ok := st.(*ast.FunctionDeclaration); ok && fd.Function.Name != nil {
			n := string(fd.Function.Name.Name)
			c.funcs = append(c.funcs, n)
			fmt.Fprintf(&tail, "$vx$.t[%q]=%s;", n, n)
		}
	}
	c.prog, err = goja.Compile("script", "(function(){"+chainPrefix+"{\n"+src+"\n;"+tail.String()+"}})()", false)
	if err != nil {
		return nil, err
	}
	cachePut(key, c)
	return c, nil
}

// chain is the scope chain in force, innermost last. Unused levels hold the
// shared empty object.
type chain struct {
	app, doc, dlg, anon *goja.Object
}

// scriptEnv is one session's ECMAScript engine: one goja runtime, the scope
// holder and the time-budget watchdog.
type scriptEnv struct {
	rt      *goja.Runtime
	holder  *goja.Object
	global  *goja.Object
	empty   *goja.Object
	session *goja.Object
	dom     *goja.Object
	cur     chain
	budget  time.Duration
	// maxHeapGrowth is the memory budget of one evaluation (0: unchecked).
	maxHeapGrowth uint64
	timer         *time.Timer
	mu            sync.Mutex
	running       bool
}

func newScriptEnv(budget time.Duration, maxStack int) *scriptEnv {
	rt := goja.New()
	rt.SetMaxCallStackSize(maxStack)
	e := &scriptEnv{rt: rt, budget: budget, global: rt.GlobalObject()}
	e.holder = rt.NewObject()
	e.empty = rt.CreateObject(nil)
	_ = e.empty.Set("$vxml$empty", true) // never used, keeps the object distinct
	_ = e.global.Set("$vx$", e.holder)
	e.timer = time.AfterFunc(time.Hour, e.fire)
	e.timer.Stop()
	return e
}

func (e *scriptEnv) close() { e.timer.Stop() }

func (e *scriptEnv) fire() {
	e.mu.Lock()
	if e.running {
		e.rt.Interrupt(errBudget)
	}
	e.mu.Unlock()
}

// newScope returns a fresh scope object without prototype.
func (e *scriptEnv) newScope() *goja.Object { return e.rt.CreateObject(nil) }

func (e *scriptEnv) or(o *goja.Object) *goja.Object {
	if o == nil {
		return e.empty
	}
	return o
}

// setChain installs c as the scope chain used by eval, and points the
// application, document and dialog variables at its scopes.
func (e *scriptEnv) setChain(c chain) {
	c.app, c.doc, c.dlg, c.anon = e.or(c.app), e.or(c.doc), e.or(c.dlg), e.or(c.anon)
	if c == e.cur {
		return
	}
	if c.app != e.cur.app {
		_ = e.holder.Set("a", c.app)
		_ = e.global.Set("application", c.app)
	}
	if c.doc != e.cur.doc {
		_ = e.holder.Set("d", c.doc)
		_ = e.global.Set("document", c.doc)
	}
	if c.dlg != e.cur.dlg {
		_ = e.holder.Set("g", c.dlg)
		_ = e.global.Set("dialog", c.dlg)
	}
	if c.anon != e.cur.anon {
		_ = e.holder.Set("n", c.anon)
	}
	e.cur = c
}

// guard runs f under the time budget and converts script failures into
// error.semantic events.
func (e *scriptEnv) guard(what string, f func() error) (err error) {
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	e.timer.Reset(e.budget)
	if e.maxHeapGrowth > 0 {
		watchStart(e)
	}
	defer func() {
		if e.maxHeapGrowth > 0 {
			watchStop(e)
		}
		e.timer.Stop()
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
		e.rt.ClearInterrupt()
		if x := recover(); x != nil {
			err = semanticf("%s: %v", what, x)
		}
	}()
	if err := f(); err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			if v, ok := ie.Value().(error); ok && errors.Is(v, errMemory) {
				return semanticf("%s: %v", what, errMemory)
			}
			return semanticf("%s: %v", what, errBudget)
		}
		var ev *Event
		if errors.As(err, &ev) {
			return ev
		}
		return semanticf("%s: %v", what, err)
	}
	return nil
}

// eval evaluates an ECMAScript expression in the current chain.
func (e *scriptEnv) eval(expr string) (goja.Value, error) {
	c, err := compileExpr(expr)
	if err != nil {
		return nil, semanticf("expression %q: %v", expr, err)
	}
	var v goja.Value
	err = e.guard(fmt.Sprintf("expression %q", shorten(expr)), func() error {
		var err error
		v, err = e.rt.RunProgram(c.prog)
		return err
	})
	return v, err
}

// evalBool evaluates a condition; the empty condition is true.
func (e *scriptEnv) evalBool(cond string) (bool, error) {
	if cond == "" {
		return true, nil
	}
	v, err := e.eval(cond)
	if err != nil {
		return false, err
	}
	return v.ToBoolean(), nil
}

// evalString evaluates an expression to a string.
func (e *scriptEnv) evalString(expr string) (string, error) {
	v, err := e.eval(expr)
	if err != nil {
		return "", err
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return "", nil
	}
	return v.String(), nil
}

// runScript runs script source with target as the scope receiving its
// top-level var and function declarations.
func (e *scriptEnv) runScript(src string, target *goja.Object) error {
	c, err := compileScript(src)
	if err != nil {
		return semanticf("script: %v", err)
	}
	for _, n := range c.vars {
		if target.Get(n) == nil {
			_ = target.Set(n, goja.Undefined())
		}
	}
	_ = e.holder.Set("t", target)
	return e.guard("script", func() error {
		_, err := e.rt.RunProgram(c.prog)
		return err
	})
}

// declare creates (or re-initialises) a variable in scope.
func (e *scriptEnv) declare(scope *goja.Object, name string, v goja.Value) {
	if v == nil {
		v = goja.Undefined()
	}
	_ = scope.Set(name, v)
}

var identRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// scopeByName maps a scope prefix to its object in the current chain.
func (e *scriptEnv) scopeByName(name string) *goja.Object {
	switch name {
	case "application":
		return e.cur.app
	case "document":
		return e.cur.doc
	case "dialog":
		return e.cur.dlg
	case "session":
		return e.session
	}
	return nil
}

// lookupScope returns the innermost scope declaring name.
func (e *scriptEnv) lookupScope(name string) *goja.Object {
	for _, s := range [...]*goja.Object{e.cur.anon, e.cur.dlg, e.cur.doc, e.cur.app} {
		if s != e.empty && s.Get(name) != nil {
			return s
		}
	}
	return nil
}

// assign implements <assign>: the variable must already be declared.
func (e *scriptEnv) assign(name string, v goja.Value) error {
	if identRE.MatchString(name) {
		s := e.lookupScope(name)
		if s == nil {
			return semanticf("assign to undeclared variable %q", name)
		}
		return s.Set(name, v)
	}
	if pre, rest, ok := strings.Cut(name, "."); ok && identRE.MatchString(rest) {
		if s := e.scopeByName(pre); s != nil && s != e.empty {
			if pre == "session" {
				return semanticf("session variables are read-only")
			}
			if s.Get(rest) == nil {
				return semanticf("assign to undeclared variable %q", name)
			}
			return s.Set(rest, v)
		}
	}
	_ = e.holder.Set("v", v)
	_, err := e.eval(name + " = $vx$.v")
	return err
}

// lookup reads a variable through the chain (nil when undeclared).
func (e *scriptEnv) lookup(name string) goja.Value {
	if identRE.MatchString(name) {
		if s := e.lookupScope(name); s != nil {
			return s.Get(name)
		}
		return nil
	}
	if pre, rest, ok := strings.Cut(name, "."); ok && identRE.MatchString(rest) {
		if s := e.scopeByName(pre); s != nil && s != e.empty {
			return s.Get(rest)
		}
	}
	v, err := e.eval(name)
	if err != nil {
		return nil
	}
	return v
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// toJS converts Go data (maps, slices, scalars) into native ECMAScript
// values so scripts see ordinary objects and arrays.
func (e *scriptEnv) toJS(v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Undefined()
	case map[string]any:
		o := e.rt.NewObject()
		for k, vv := range x {
			_ = o.Set(k, e.toJS(vv))
		}
		return o
	case map[string]string:
		o := e.rt.NewObject()
		for k, vv := range x {
			_ = o.Set(k, vv)
		}
		return o
	case []any:
		vals := make([]any, len(x))
		for i, vv := range x {
			vals[i] = e.toJS(vv)
		}
		return e.rt.NewArray(vals...)
	case goja.Value:
		return x
	}
	return e.rt.ToValue(v)
}

// isUndefined reports whether v is absent or undefined.
func isUndefined(v goja.Value) bool { return v == nil || goja.IsUndefined(v) }
