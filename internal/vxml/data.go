package vxml

import (
	"github.com/dop251/goja"

	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

// domLimits bounds documents fetched by <data>.
var domLimits = xmltree.Limits{MaxBytes: 1 << 20, MaxDepth: 64, MaxNodes: 20000}

const domProtoSrc = `(function(){
var P = {};
P.getAttribute = function(n){ var a = this.attributes || []; for (var i = 0; i < a.length; i++) { if (a[i].name === n) return a[i].value; } return ""; };
P.hasAttribute = function(n){ var a = this.attributes || []; for (var i = 0; i < a.length; i++) { if (a[i].name === n) return true; } return false; };
P.hasChildNodes = function(){ return this.childNodes.length > 0; };
P.getElementsByTagName = function(n){
  var out = [];
  (function walk(x){ for (var i = 0; i < x.childNodes.length; i++) { var c = x.childNodes[i];
    if (c.nodeType === 1) { if (n === "*" || c.nodeName === n) out.push(c); walk(c); } } })(this);
  return out; };
return P; })()`

var domProtoProg = goja.MustCompile("dom", domProtoSrc, false)

func (js *scriptEnv) domProto() (*goja.Object, error) {
	if js.dom != nil {
		return js.dom, nil
	}
	v, err := js.rt.RunProgram(domProtoProg)
	if err != nil {
		return nil, err
	}
	js.dom = v.ToObject(js.rt)
	return js.dom, nil
}

// buildDOM exposes a parsed XML tree as a read-only DOM subset:
// documentElement, childNodes, firstChild, lastChild, parentNode,
// nextSibling, previousSibling, nodeType, nodeName, tagName, nodeValue,
// data, textContent, attributes, getAttribute, hasAttribute,
// hasChildNodes and getElementsByTagName.
func (js *scriptEnv) buildDOM(root *xmltree.Node) (*goja.Object, error) {
	proto, err := js.domProto()
	if err != nil {
		return nil, err
	}
	rt := js.rt
	var build func(n *xmltree.Node, parent *goja.Object) *goja.Object
	build = func(n *xmltree.Node, parent *goja.Object) *goja.Object {
		o := rt.CreateObject(proto)
		_ = o.Set("parentNode", parent)
		if n.IsText() {
			_ = o.Set("nodeType", 3)
			_ = o.Set("nodeName", "#text")
			_ = o.Set("nodeValue", n.Text)
			_ = o.Set("data", n.Text)
			_ = o.Set("textContent", n.Text)
			_ = o.Set("childNodes", rt.NewArray())
			return o
		}
		_ = o.Set("nodeType", 1)
		_ = o.Set("nodeName", n.Name)
		_ = o.Set("tagName", n.Name)
		_ = o.Set("localName", n.Name)
		_ = o.Set("namespaceURI", n.Space)
		_ = o.Set("nodeValue", goja.Null())
		_ = o.Set("textContent", n.InnerText())
		attrs := make([]any, 0, len(n.Attrs))
		for _, a := range n.Attrs {
			ao := rt.NewObject()
			_ = ao.Set("name", a.Name.Local)
			_ = ao.Set("nodeName", a.Name.Local)
			_ = ao.Set("value", a.Value)
			_ = ao.Set("nodeValue", a.Value)
			attrs = append(attrs, ao)
		}
		_ = o.Set("attributes", rt.NewArray(attrs...))
		kids := make([]any, 0, len(n.Children))
		var prev *goja.Object
		for _, c := range n.Children {
			co := build(c, o)
			if prev != nil {
				_ = prev.Set("nextSibling", co)
				_ = co.Set("previousSibling", prev)
			} else {
				_ = co.Set("previousSibling", goja.Null())
			}
			prev = co
			kids = append(kids, co)
		}
		if prev != nil {
			_ = prev.Set("nextSibling", goja.Null())
		}
		_ = o.Set("childNodes", rt.NewArray(kids...))
		if len(kids) > 0 {
			_ = o.Set("firstChild", kids[0])
			_ = o.Set("lastChild", kids[len(kids)-1])
		} else {
			_ = o.Set("firstChild", goja.Null())
			_ = o.Set("lastChild", goja.Null())
		}
		return o
	}
	doc := rt.CreateObject(proto)
	_ = doc.Set("nodeType", 9)
	_ = doc.Set("nodeName", "#document")
	_ = doc.Set("nodeValue", goja.Null())
	el := build(root, doc)
	_ = doc.Set("documentElement", el)
	_ = doc.Set("childNodes", rt.NewArray(el))
	_ = doc.Set("firstChild", el)
	_ = doc.Set("lastChild", el)
	return doc, nil
}

// data implements <data>: fetch XML and expose it as a DOM.
func (c *execCtx) data(x *DataStmt, scope *goja.Object) error {
	js := c.s.js
	src := x.Src
	if x.SrcExpr != "" {
		v, err := js.evalString(x.SrcExpr)
		if err != nil {
			return err
		}
		src = v
	}
	vals, err := c.submitValues(x.Namelist)
	if err != nil {
		return err
	}
	u, err := resolve(c.baseURI(), src)
	if err != nil {
		return err
	}
	resp, err := c.s.fetch(c, &FetchRequest{URL: u, Kind: FetchData, Method: x.Method, Enctype: x.Enctype, Values: vals}, x.Fetch)
	if err != nil {
		return err
	}
	root, err := xmltree.Parse(resp.Body, domLimits)
	if err != nil {
		return badfetchf("data %s: %v", resp.URL, err)
	}
	var dom *goja.Object
	err = js.guard("data", func() error {
		var err error
		dom, err = js.buildDOM(root)
		return err
	})
	if err != nil {
		return err
	}
	if x.Name != "" {
		js.declare(scope, x.Name, dom)
	}
	return nil
}
