package template

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kString kind = iota
	kNumber
	kBool
	kNull
	kArray
	kObject
)

// value is a parsed JSON value. Objects keep their members in document
// order, so that a policy document minifies to what its author wrote and
// errors come in the order a reader meets them; encoding/json's maps would
// lose both and settle a duplicate name silently.
type value struct {
	kind    kind
	s       string   // a string; a number's, boolean's or null's text
	elems   []*value // an array's elements
	members []member // an object's members
}

type member struct {
	name string
	v    *value
}

// member returns the member called name, or nil.
func (v *value) member(name string) *value {
	for i := range v.members {
		if v.members[i].name == name {
			return v.members[i].v
		}
	}
	return nil
}

// describe names a value's type for messages.
func (v *value) describe() string {
	switch v.kind {
	case kString:
		return "a string"
	case kNumber:
		return "a number"
	case kBool:
		return "a boolean"
	case kNull:
		return "null"
	case kArray:
		return "a list"
	}
	return "an object"
}

func stringValue(s string) *value { return &value{kind: kString, s: s} }

// Bounds on what one decode builds, so that a hostile body (or a hostile
// policy document string) can neither blow the stack of the recursive
// compiler and evaluator nor make them walk an outsized tree. The body's own
// length bound already keeps the node count under about 5,000.
const (
	// maxDepth is JSON nesting; each intrinsic function takes two or three
	// levels, and a template's properties start four deep.
	maxDepth = 64
	maxNodes = 8192
)

type decoder struct {
	dec   *json.Decoder
	nodes int
	// path and what say where and what the whole document is, for syntax
	// errors, whose position inside it the offset gives.
	path, what string
}

// decodeObject parses src, which must hold exactly one JSON object. what
// names src in messages ("The template body"), path says where src is.
func decodeObject(src, path, what string) (*value, error) {
	d := &decoder{dec: json.NewDecoder(strings.NewReader(src)), path: path, what: what}
	d.dec.UseNumber()
	tok, err := d.dec.Token()
	if err != nil {
		return nil, syntaxError(err, path, what)
	}
	if tok != json.Delim('{') {
		return nil, errorf(path, "%s is not a JSON object", what)
	}
	v, err := d.value(tok, path, 1)
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, errorf(path, "%s is not a JSON object: there is more after its closing brace", what)
	}
	return v, nil
}

func (d *decoder) syntax(err error) error { return syntaxError(err, d.path, d.what) }

func syntaxError(err error, path, what string) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(path, "%s is not a JSON object: unexpected end of JSON input", what)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errorf(path, "%s is not valid JSON: %s (at offset %d)", what, se.Error(), se.Offset)
	}
	return errorf(path, "%s is not valid JSON: %s", what, err.Error())
}

// value builds the value that starts with tok, at nesting depth depth.
func (d *decoder) value(tok json.Token, path string, depth int) (*value, error) {
	if d.nodes++; d.nodes > maxNodes {
		return nil, errorf(path, "the document has more than %d values", maxNodes)
	}
	switch t := tok.(type) {
	case string:
		return &value{kind: kString, s: t}, nil
	case json.Number:
		return &value{kind: kNumber, s: string(t)}, nil
	case bool:
		return &value{kind: kBool, s: strconv.FormatBool(t)}, nil
	case nil:
		return &value{kind: kNull, s: "null"}, nil
	}
	if depth > maxDepth {
		return nil, errorf(path, "nested more than %d levels deep", maxDepth)
	}
	if tok == json.Delim('[') {
		v := &value{kind: kArray}
		for d.dec.More() {
			p := index(path, len(v.elems))
			tok, err := d.dec.Token()
			if err != nil {
				return nil, d.syntax(err)
			}
			elem, err := d.value(tok, p, depth+1)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, elem)
		}
		if _, err := d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
		return v, nil
	}
	v := &value{kind: kObject}
	var seen map[string]bool // past a few members, so that a duplicate check stays linear
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, d.syntax(err)
		}
		name := tok.(string) // the decoder allows nothing else here
		if seen != nil {
			if seen[name] {
				return nil, errorf(path, "%q is given twice", name)
			}
			seen[name] = true
		} else if v.member(name) != nil {
			return nil, errorf(path, "%q is given twice", name)
		} else if len(v.members) == 8 {
			seen = make(map[string]bool, 16)
			for _, m := range v.members {
				seen[m.name] = true
			}
			seen[name] = true
		}
		p := child(path, name)
		if tok, err = d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
		elem, err := d.value(tok, p, depth+1)
		if err != nil {
			return nil, err
		}
		v.members = append(v.members, member{name, elem})
	}
	if _, err := d.dec.Token(); err != nil {
		return nil, d.syntax(err)
	}
	return v, nil
}

// appendJSON appends v in minified form: no insignificant white space,
// members in document order, numbers as written, strings escaped only where
// JSON requires it (not HTML-escaped as encoding/json would, so that a
// policy reads as its author wrote it).
func (v *value) appendJSON(b []byte) []byte {
	switch v.kind {
	case kString:
		return appendString(b, v.s)
	case kArray:
		b = append(b, '[')
		for i, e := range v.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.appendJSON(b)
		}
		return append(b, ']')
	case kObject:
		b = append(b, '{')
		for i, m := range v.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.name)
			b = append(b, ':')
			b = m.v.appendJSON(b)
		}
		return append(b, '}')
	}
	return append(b, v.s...)
}

// appendString appends s as a JSON string. Invalid UTF-8 (which a
// parameter value may hold) becomes U+FFFD, as encoding/json makes it, so
// the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// child and index extend a path by a member name or a list index.
func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
