package vxml

import "github.com/opengvp/gvp/internal/vxml/srgs"

// Document is a parsed VoiceXML document. It is immutable after parsing and
// shared by every session that runs it.
type Document struct {
	URL         string
	Version     string
	Application string // raw application attribute (root document URI)
	Lang        string
	// Base is the raw xml:base attribute of <vxml>.
	Base string
	// baseURI is Base resolved against URL, or URL without xml:base: the base of every
	// relative URI in the document (VoiceXML 2.0 section 1.5.1, XML Base).
	baseURI string
	// Decls are the document-level <var> and <script> in document order.
	Decls   []Stmt
	Props   map[string]string
	Catches []*Catch
	Links   []*Link
	Dialogs []*Dialog
	byID    map[string]*Dialog
	// scoped lists, in document order, the document-level <link>s and the
	// dialogs with document-scoped grammars: the grammars this document
	// contributes to every dialog of it (and, for an application root, of
	// its leaf documents). VoiceXML 2.0 section 3.1.4.
	scoped []scopedSource
}

// scopedSource is a document-level link or a dialog whose grammars have
// document scope.
type scopedSource struct {
	link *Link
	dlg  *Dialog
}

// Dialog returns the dialog with the given id.
func (d *Document) Dialog(id string) *Dialog { return d.byID[id] }

// BaseURI returns the URI relative references in the document resolve against: its
// xml:base (itself resolved against the document's URL) when present, else its URL.
func (d *Document) BaseURI() string {
	if d == nil {
		return ""
	}
	if d.baseURI != "" {
		return d.baseURI
	}
	return d.URL
}

// Dialog is a <form> or a <menu>.
type Dialog struct {
	ID   string
	Menu bool
	// Scope is the scope of the dialog's grammars ("dialog" or "document").
	Scope string
	// Init lists form-level <var>, <script> and form items in document order.
	Init     []initStep
	Props    map[string]string
	Catches  []*Catch
	Links    []*Link
	Grammars []*Grammar
	// DocGrammars are the form-level grammars with document scope (the
	// form's scope="document", or the grammar's own scope="document"):
	// active in the other dialogs of the document too.
	DocGrammars []*Grammar
	Items       []*Item
	Filled      []*Filled // form-level
	// Menu only.
	Choices []*Choice
	DTMF    bool
}

type initStep struct {
	stmt Stmt  // var or script
	item *Item // or a form item
}

// ItemKind is the kind of a form item.
type ItemKind int

// Form item kinds.
const (
	ItemBlock ItemKind = iota
	ItemField
	ItemRecord
	ItemTransfer
	ItemSubdialog
	ItemInitial
	ItemObject
	ItemMenu // the synthetic input item of a <menu>
)

var itemKindNames = [...]string{"block", "field", "record", "transfer", "subdialog", "initial", "object", "menu"}

func (k ItemKind) String() string { return itemKindNames[k] }

// Item is a form item.
type Item struct {
	Kind     ItemKind
	Name     string
	Expr     string
	Cond     string
	Prompts  []*PromptEl
	Catches  []*Catch
	Grammars []*Grammar
	Filled   []*Filled
	Props    map[string]string
	Links    []*Link
	Body     []Stmt // block content
	Options  []*Option
	Params   []*Param
	Modal    bool
	Slot     string
	Type     string // field builtin type
	Attrs    map[string]string
	Line     int
	index    int
}

// Filled is a <filled> element.
type Filled struct {
	ModeAll  bool
	Namelist []string
	Body     []Stmt
	order    int
	owner    *Item // field-level filled
}

// Catch is a <catch> (or shorthand) element.
type Catch struct {
	Events []string // empty: catches everything
	Count  int
	Cond   string
	Body   []Stmt
}

// Jump is what a <link> or a menu <choice> does when its grammar matches: go to a URI or
// throw an event (VoiceXML 2.0 sections 2.2.2 and 2.5).
type Jump struct {
	Next, Expr, Event, EventExpr, Message, MessageExpr string
	DTMF                                               string
	Grammars                                           []*Grammar
	// Fetch holds the fetch attributes given (fetchaudio, fetchtimeout, maxage, maxstale,
	// fetchhint); nil when none.
	Fetch map[string]string
}

// Link is a <link>.
type Link struct{ Jump }

// Choice is a menu <choice>.
type Choice struct {
	Jump
	Content []PNode
}

// Option is a field <option>.
type Option struct {
	DTMF, Value string
	Content     []PNode
}

// Param is a subdialog <param>.
type Param struct {
	Name, Expr, Value string
}

// Grammar is a <grammar> element.
type Grammar struct {
	Src, SrcExpr, Type, Mode, Scope string
	Inline                          *srgs.Grammar
	Line                            int
}

// PromptEl is a <prompt> element (or implicit prompt content).
type PromptEl struct {
	Bargein     string // "", "true", "false"
	BargeinType string
	Count       int
	Cond        string
	Timeout     string
	Lang        string
	Content     []PNode
}

// PNode is a node of prompt content.
type PNode interface{ isPNode() }

// PText is literal prompt text.
type PText struct{ Text string }

// PValue is <value expr>.
type PValue struct{ Expr string }

// PAudio is <audio src|expr> with fallback content.
type PAudio struct {
	Src, Expr string
	Fallback  []PNode
}

// PMark is <mark name|nameexpr>.
type PMark struct{ Name, NameExpr string }

// PEnumerate is <enumerate> with an optional template.
type PEnumerate struct{ Content []PNode }

// PForeach is <foreach> inside a prompt.
type PForeach struct {
	Array, Item string
	Content     []PNode
}

// PSSML is any other SSML element (break, emphasis, say-as, ...).
type PSSML struct {
	Name    string
	Attrs   [][2]string
	Content []PNode
}

func (*PText) isPNode()      {}
func (*PValue) isPNode()     {}
func (*PAudio) isPNode()     {}
func (*PMark) isPNode()      {}
func (*PEnumerate) isPNode() {}
func (*PForeach) isPNode()   {}
func (*PSSML) isPNode()      {}

// Stmt is an executable content element.
type Stmt interface{ isStmt() }

// Executable content elements.
type (
	VarStmt struct{ Name, Expr string }
	// AssignStmt is <assign>.
	AssignStmt struct{ Name, Expr string }
	// ScriptStmt is <script> (inline text or src).
	ScriptStmt struct {
		Src, Text string
		Line      int
	}
	// IfStmt is <if>/<elseif>/<else>; the else branch has an empty Cond.
	IfStmt     struct{ Branches []Branch }
	PromptStmt struct{ Prompt *PromptEl }
	GotoStmt   struct {
		Next, Expr, NextItem, ExprItem string
		Fetch                          map[string]string
	}
	SubmitStmt struct {
		Next, Expr, Method, Enctype string
		Namelist                    []string
		Fetch                       map[string]string
	}
	ExitStmt struct {
		Expr     string
		Namelist []string
	}
	ReturnStmt struct {
		Event, EventExpr, Message, MessageExpr string
		Namelist                               []string
	}
	DisconnectStmt struct{ Namelist []string }
	ThrowStmt      struct{ Event, EventExpr, Message, MessageExpr string }
	LogStmt        struct {
		Label, Expr string
		Content     []PNode
	}
	ClearStmt    struct{ Namelist []string }
	RepromptStmt struct{}
	ForeachStmt  struct {
		Array, Item string
		Body        []Stmt
	}
	DataStmt struct {
		Name, Src, SrcExpr, Method, Enctype string
		Namelist                            []string
		Fetch                               map[string]string
	}
)

// Branch is one arm of an IfStmt.
type Branch struct {
	Cond string
	Body []Stmt
}

func (*VarStmt) isStmt()        {}
func (*AssignStmt) isStmt()     {}
func (*ScriptStmt) isStmt()     {}
func (*IfStmt) isStmt()         {}
func (*PromptStmt) isStmt()     {}
func (*GotoStmt) isStmt()       {}
func (*SubmitStmt) isStmt()     {}
func (*ExitStmt) isStmt()       {}
func (*ReturnStmt) isStmt()     {}
func (*DisconnectStmt) isStmt() {}
func (*ThrowStmt) isStmt()      {}
func (*LogStmt) isStmt()        {}
func (*ClearStmt) isStmt()      {}
func (*RepromptStmt) isStmt()   {}
func (*ForeachStmt) isStmt()    {}
func (*DataStmt) isStmt()       {}
