// Package xmltree parses XML into a small generic element tree with size and
// depth limits. It is the shared front end of the VoiceXML and SRGS parsers,
// which both read documents fetched from untrusted servers.
package xmltree

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// DefaultMaxBytes is the default largest document accepted (4 MiB).
	DefaultMaxBytes = 4 << 20
	// DefaultMaxDepth is the default deepest element nesting accepted.
	DefaultMaxDepth = 128
	// DefaultMaxNodes is the default largest number of elements and text
	// nodes accepted in one document.
	DefaultMaxNodes = 200000
)

// Limits bounds the resources spent parsing one document. Zero fields take
// the Default* values.
type Limits struct {
	MaxBytes int
	MaxDepth int
	MaxNodes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	return l
}

// Node is an element or a text node. Text nodes have an empty Name and the
// character data in Text; elements have Name (local name), Space (namespace
// URI), Attrs and Children.
type Node struct {
	Name     string
	Space    string
	Attrs    []xml.Attr
	Children []*Node
	Text     string
	// Line is the 1-based line of the element's start tag.
	Line int
}

// IsText reports whether n is a text node.
func (n *Node) IsText() bool { return n.Name == "" }

// Attr returns the value of the attribute with the given local name and
// whether it is present. Namespaced attributes (xml:lang, xmlns...) are
// matched by local name only when space is empty.
func (n *Node) Attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == n.Space) {
			return a.Value, true
		}
	}
	return "", false
}

// XMLNamespace is the namespace of the xml: prefix (xml:base, xml:lang).
const XMLNamespace = "http://www.w3.org/XML/1998/namespace"

// XMLAttr returns the value of the attribute xml:<name> (xml:base, xml:lang) and whether
// it is present.
func (n *Node) XMLAttr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name && (a.Name.Space == XMLNamespace || a.Name.Space == "xml") {
			return a.Value, true
		}
	}
	return "", false
}

// AttrOr returns the attribute value or def when absent.
func (n *Node) AttrOr(name, def string) string {
	if v, ok := n.Attr(name); ok {
		return v
	}
	return def
}

// InnerText returns the concatenated text of n and its descendants.
func (n *Node) InnerText() string {
	if n.IsText() {
		return n.Text
	}
	var b strings.Builder
	var walk func(*Node)
	walk = func(x *Node) {
		if x.IsText() {
			b.WriteString(x.Text)
			return
		}
		for _, c := range x.Children {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// Elements returns the element children of n (text nodes skipped).
func (n *Node) Elements() []*Node {
	out := make([]*Node, 0, len(n.Children))
	for _, c := range n.Children {
		if !c.IsText() {
			out = append(out, c)
		}
	}
	return out
}

// ErrTooLarge is wrapped by errors about documents exceeding Limits.
var ErrTooLarge = errors.New("document exceeds limits")

// Parse reads one XML document and returns its root element. Comments,
// processing instructions and the DOCTYPE are dropped; character data is
// kept verbatim (CDATA included). Errors carry the line number.
func Parse(data []byte, lim Limits) (*Node, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "ascii", "iso-8859-1", "latin1":
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	var (
		root  *Node
		stack []*Node
		nodes int
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := dec.InputPos()
			return nil, fmt.Errorf("xml syntax at line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			nodes++
			if nodes > lim.MaxNodes {
				return nil, fmt.Errorf("%w: more than %d nodes", ErrTooLarge, lim.MaxNodes)
			}
			if len(stack) >= lim.MaxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d", ErrTooLarge, lim.MaxDepth)
			}
			line, _ := dec.InputPos()
			n := &Node{Name: t.Name.Local, Space: t.Name.Space, Line: line}
			if len(t.Attr) > 0 {
				n.Attrs = make([]xml.Attr, len(t.Attr))
				copy(n.Attrs, t.Attr)
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("xml syntax at line %d: more than one root element", line)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					line, _ := dec.InputPos()
					return nil, fmt.Errorf("xml syntax at line %d: text outside the root element", line)
				}
				continue
			}
			p := stack[len(stack)-1]
			if k := len(p.Children); k > 0 && p.Children[k-1].IsText() {
				p.Children[k-1].Text += string(t)
				continue
			}
			nodes++
			if nodes > lim.MaxNodes {
				return nil, fmt.Errorf("%w: more than %d nodes", ErrTooLarge, lim.MaxNodes)
			}
			p.Children = append(p.Children, &Node{Text: string(t)})
		}
	}
	if root == nil {
		return nil, errors.New("xml syntax: no root element")
	}
	return root, nil
}
