package confmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Document is one decoded object and its 0-based position in the input stream.
type Document struct {
	Index  int
	Object Object
}

// DecodeDocuments decodes a stream of documents, each an object with a `kind` field:
// multi-document YAML (separated by `---`), or JSON (one object, an array of objects, or
// several concatenated objects; detected by a first non-space character of '{' or '[').
// Unknown fields are rejected. Each object is normalized and validated on its own (references
// to other objects are checked later, against the whole configuration). Empty YAML documents
// are skipped but counted. Errors are an ErrorList whose entries name the document index, the
// kind, the object's name and the field.
func DecodeDocuments(data []byte) ([]Document, error) {
	docs, errs := decodeRaw(data)
	for _, d := range docs {
		errs = append(errs, validateDoc(d)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return docs, nil
}

// decodeRaw decodes documents without normalizing or validating them.
func decodeRaw(data []byte) ([]Document, ErrorList) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return decodeJSONStream(trimmed)
	}
	return decodeYAMLStream(data)
}

// validateDoc normalizes and validates the object of d alone.
func validateDoc(d Document) ErrorList {
	var oe ErrorList
	d.Object.Normalize()
	d.Object.validate(&oe)
	for i := range oe {
		oe[i].Document = d.Index
	}
	return oe
}

// DecodeObjects is DecodeDocuments without the positions.
func DecodeObjects(data []byte) ([]Object, error) {
	docs, err := DecodeDocuments(data)
	if err != nil {
		return nil, err
	}
	out := make([]Object, len(docs))
	for i, d := range docs {
		out[i] = d.Object
	}
	return out, nil
}

// DecodeObject decodes one object of kind k from JSON or YAML; a `kind` field is optional and
// must match k when present. The object is normalized and validated on its own.
func DecodeObject(k Kind, data []byte) (Object, error) { return DecodeObjectAt(k, "", data) }

// DecodeObjectAt is DecodeObject for an object whose key is known (from a URL path, for
// example): identity fields missing from data are filled in from key ("name", "tenant/name" or
// "tenant/pattern" depending on the kind), and the object's key must then equal key. An empty
// key checks nothing.
func DecodeObjectAt(k Kind, key string, data []byte) (Object, error) {
	docs, errs := decodeRaw(withKind(k, data))
	if len(errs) > 0 {
		return nil, errs
	}
	if len(docs) != 1 {
		return nil, ErrorList{{Document: -1, Kind: k, Name: key, Message: fmt.Sprintf("want exactly one object, got %d", len(docs))}}
	}
	o := docs[0].Object
	if o.Kind() != k {
		return nil, ErrorList{{Document: -1, Kind: o.Kind(), Name: o.Key(), Field: "kind",
			Message: fmt.Sprintf("kind %s does not match the expected %s", o.Kind(), k)}}
	}
	if key != "" {
		fillKey(o, key)
	}
	d := Document{Index: -1, Object: o}
	if errs := validateDoc(d); len(errs) > 0 {
		return nil, errs
	}
	if key != "" && o.Key() != key {
		return nil, ErrorList{{Document: -1, Kind: k, Name: o.Key(),
			Message: fmt.Sprintf("the object's name %q does not match %q", o.Key(), key)}}
	}
	return o, nil
}

// fillKey sets the identity fields of o that are empty from key.
func fillKey(o Object, key string) {
	first, rest, hasSlash := strings.Cut(key, "/")
	switch v := o.(type) {
	case *Tenant:
		if v.Name == "" {
			v.Name = key
		}
	case *Pool:
		if v.Name == "" {
			v.Name = key
		}
	case *MCP:
		if v.Name == "" {
			v.Name = key
		}
	case *Settings:
		if v.Name == "" {
			v.Name = key
		}
	case *IVRProfile:
		if hasSlash {
			if v.Tenant == "" {
				v.Tenant = first
			}
			if v.Name == "" {
				v.Name = rest
			}
		}
	case *DID:
		if hasSlash {
			if v.Tenant == "" {
				v.Tenant = first
			}
			if v.Pattern == "" {
				v.Pattern = rest
			}
		}
	}
}

// withKind adds `kind: k` to a single JSON object or YAML mapping that lacks one.
func withKind(k Kind, data []byte) []byte {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var probe struct {
			Kind *string `json:"kind"`
		}
		if json.Unmarshal(trimmed, &probe) == nil && probe.Kind == nil {
			inner := bytes.TrimSpace(trimmed[1:])
			if len(inner) > 0 && inner[0] == '}' {
				return []byte(fmt.Sprintf(`{"kind":%q}`, k))
			}
			return append([]byte(fmt.Sprintf(`{"kind":%q,`, k)), trimmed[1:]...)
		}
		return trimmed
	}
	var n yaml.Node
	if yaml.Unmarshal(data, &n) == nil && len(n.Content) == 1 && n.Content[0].Kind == yaml.MappingNode {
		if scalarField(n.Content[0], "kind") == "" {
			return append([]byte("kind: "+string(k)+"\n"), data...)
		}
	}
	return data
}

func decodeJSONStream(data []byte) ([]Document, ErrorList) {
	var (
		docs []Document
		errs ErrorList
		raws []json.RawMessage
	)
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, FieldError{Document: len(raws), Message: "invalid JSON: " + err.Error()})
			return nil, errs
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
			var items []json.RawMessage
			if err := json.Unmarshal(t, &items); err != nil {
				errs = append(errs, FieldError{Document: len(raws), Message: "invalid JSON array: " + err.Error()})
				return nil, errs
			}
			raws = append(raws, items...)
			continue
		}
		raws = append(raws, raw)
	}
	for i, raw := range raws {
		o, fe := decodeJSONObject(i, raw)
		if fe != nil {
			errs = append(errs, *fe)
			continue
		}
		docs = append(docs, Document{Index: i, Object: o})
	}
	return docs, errs
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]*)"`)

func decodeJSONObject(i int, raw json.RawMessage) (Object, *FieldError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &FieldError{Document: i, Message: "want a JSON object with a kind field"}
	}
	var kindStr string
	if k, ok := fields["kind"]; !ok {
		return nil, &FieldError{Document: i, Field: "kind", Message: "required"}
	} else if err := json.Unmarshal(k, &kindStr); err != nil {
		return nil, &FieldError{Document: i, Field: "kind", Message: "want a string"}
	}
	kind := Kind(kindStr)
	o := New(kind)
	if o == nil {
		return nil, &FieldError{Document: i, Field: "kind", Message: fmt.Sprintf("unknown kind %q (want one of %s)", kindStr, kindList())}
	}
	delete(fields, "kind")
	name := nameFromFields(kind, func(f string) string {
		var s string
		if v, ok := fields[f]; ok && json.Unmarshal(v, &s) != nil {
			s = string(bytes.Trim(v, `"`))
		}
		return s
	})
	body, _ := json.Marshal(fields)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		fe := &FieldError{Document: i, Kind: kind, Name: name, Message: err.Error()}
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			fe.Field = te.Field
			fe.Message = fmt.Sprintf("cannot use a JSON %s here (want %s)", te.Value, typeName(te.Type))
		case unknownFieldRE.MatchString(err.Error()):
			fe.Field = unknownFieldRE.FindStringSubmatch(err.Error())[1]
			fe.Message = "unknown field"
		default:
			fe.Message = strings.TrimPrefix(err.Error(), "json: ")
		}
		return nil, fe
	}
	return o, nil
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

// nameFromFields returns the key an object of kind k will have, for error messages.
func nameFromFields(k Kind, get func(string) string) string {
	switch k {
	case KindIVRProfile:
		return orRoot(get("tenant")) + "/" + get("name")
	case KindDID:
		return orRoot(get("tenant")) + "/" + get("pattern")
	}
	return get("name")
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

func decodeYAMLStream(data []byte) ([]Document, ErrorList) {
	var (
		docs []Document
		errs ErrorList
	)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, FieldError{Document: i, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
			return docs, errs // the decoder cannot resynchronize after a syntax error
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue
		}
		root := n.Content[0]
		if root.Kind != yaml.MappingNode {
			errs = append(errs, FieldError{Document: i, Message: fmt.Sprintf("line %d: want a mapping with a kind field", root.Line)})
			continue
		}
		kindStr := scalarField(root, "kind")
		if kindStr == "" {
			errs = append(errs, FieldError{Document: i, Field: "kind", Message: "required"})
			continue
		}
		kind := Kind(kindStr)
		o := New(kind)
		if o == nil {
			errs = append(errs, FieldError{Document: i, Field: "kind", Message: fmt.Sprintf("unknown kind %q (want one of %s)", kindStr, kindList())})
			continue
		}
		name := nameFromFields(kind, func(f string) string { return scalarField(root, f) })
		lines := map[int]string{}
		var fes ErrorList
		checkFields(root, reflect.TypeOf(o).Elem(), "", true, lines, &fes)
		if len(fes) > 0 {
			for _, fe := range fes {
				fe.Document, fe.Kind, fe.Name = i, kind, name
				errs = append(errs, fe)
			}
			continue
		}
		if err := root.Decode(o); err != nil {
			var te *yaml.TypeError
			msgs := []string{err.Error()}
			if errors.As(err, &te) {
				msgs = te.Errors
			}
			for _, m := range msgs {
				fe := FieldError{Document: i, Kind: kind, Name: name, Message: strings.TrimPrefix(m, "yaml: ")}
				if sub := yamlLineRE.FindStringSubmatch(fe.Message); sub != nil {
					line, _ := strconv.Atoi(sub[1])
					fe.Field = lines[line]
					fe.Message = fmt.Sprintf("line %d: %s", line, sub[2])
				}
				errs = append(errs, fe)
			}
			continue
		}
		if st, ok := o.(*Settings); ok {
			for k, v := range st.Values {
				st.Values[k] = stringKeys(v)
			}
		}
		docs = append(docs, Document{Index: i, Object: o})
	}
	return docs, errs
}

// stringKeys converts the maps with non-string keys that YAML allows ({1: a}) into maps with
// string keys, recursively, so that every value has a JSON form.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case map[string]any:
		for k, e := range t {
			t[k] = stringKeys(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = stringKeys(e)
		}
		return t
	}
	return v
}

// scalarField returns the value of the scalar key f of mapping m, or "".
func scalarField(m *yaml.Node, f string) string {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == f && m.Content[j+1].Kind == yaml.ScalarNode {
			return m.Content[j+1].Value
		}
	}
	return ""
}

var (
	durationType = reflect.TypeOf(Duration(0))
	anyType      = reflect.TypeOf((*any)(nil)).Elem()
)

// checkFields reports keys of n that t has no field for, and records the dotted path of every
// key by line so that decoder errors (which only give lines) can name the field.
func checkFields(n *yaml.Node, t reflect.Type, path string, top bool, lines map[int]string, errs *ErrorList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t == durationType || t == anyType {
		return
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			p := join(k.Value)
			lines[k.Line] = p
			lines[v.Line] = p
			if top && k.Value == "kind" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, FieldError{Field: p, Message: fmt.Sprintf("line %d: unknown field", k.Line)})
				continue
			}
			checkFields(v, ft, p, false, lines, errs)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], n.Content[j+1]
			p := join(k.Value)
			lines[k.Line] = p
			lines[v.Line] = p
			checkFields(v, t.Elem(), p, false, lines, errs)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for j, v := range n.Content {
			p := path + "[" + strconv.Itoa(j) + "]"
			lines[v.Line] = p
			checkFields(v, t.Elem(), p, false, lines, errs)
		}
	}
}

// yamlFields maps the yaml keys of struct t (inline structs flattened) to field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// Format is an output format of EncodeDocuments.
type Format string

// The output formats.
const (
	FormatYAML Format = "yaml"
	FormatJSON Format = "json"
)

// EncodeDocuments writes objs as documents with a leading kind field: a multi-document YAML
// stream, or a JSON array.
func EncodeDocuments(w io.Writer, objs []Object, f Format) error {
	switch f {
	case FormatJSON:
		out := make([]json.RawMessage, 0, len(objs))
		for _, o := range objs {
			b, err := MarshalDocumentJSON(o)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case FormatYAML:
		if len(objs) == 0 {
			return nil // an empty stream; yaml's encoder fails on Close with nothing encoded
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		for _, o := range objs {
			var n yaml.Node
			if err := n.Encode(o); err != nil {
				return fmt.Errorf("encode %s: %w", RefOf(o), err)
			}
			n.Content = append([]*yaml.Node{
				{Kind: yaml.ScalarNode, Value: "kind"},
				{Kind: yaml.ScalarNode, Value: string(o.Kind())},
			}, n.Content...)
			if err := enc.Encode(&n); err != nil {
				return fmt.Errorf("encode %s: %w", RefOf(o), err)
			}
		}
		return enc.Close()
	}
	return fmt.Errorf("unknown format %q (want yaml or json)", f)
}

// MarshalDocumentJSON returns o as a JSON object whose first field is kind.
func MarshalDocumentJSON(o Object) ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", RefOf(o), err)
	}
	head := fmt.Sprintf(`{"kind":%q`, o.Kind())
	if len(b) <= 2 {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}

// Clone returns a deep copy of o (through JSON).
func Clone(o Object) Object {
	b, err := json.Marshal(o)
	if err != nil {
		panic(fmt.Sprintf("confmodel: clone %s: %v", RefOf(o), err))
	}
	c := New(o.Kind())
	if err := json.Unmarshal(b, c); err != nil {
		panic(fmt.Sprintf("confmodel: clone %s: %v", RefOf(o), err))
	}
	return c
}

// SortedKeys returns the keys of m sorted, for deterministic output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
