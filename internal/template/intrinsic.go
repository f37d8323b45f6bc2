package template

import (
	"strconv"
	"strings"
)

// op is what an expression does.
type op uint8

const (
	opLit       op = iota // a literal: lit
	opList                // a list of args
	opObject              // a policy document object: names and args
	opRef                 // the parameter s
	opJoin                // args[0]'s elements joined by s
	opSelect              // element args[0] of args[1]
	opSplit               // args[0] split at s
	opSub                 // parts, with variables names/args
	opFindInMap           // mapping s, keys args[0] and args[1]
)

// expr is a compiled value: a literal, a list or policy document object of
// expressions, or an intrinsic function. path says where it was written.
type expr struct {
	op    op
	path  string
	lit   *value
	s     string
	args  []*expr
	names []string
	parts []subPart
}

// subPart is a piece of an Fn::Sub string: literal text, or the name of a
// variable (isVar).
type subPart struct {
	text  string
	isVar bool
}

// static reports whether e holds no intrinsic function.
func (e *expr) static() bool {
	switch e.op {
	case opLit:
		return true
	case opList, opObject:
		for _, a := range e.args {
			if !a.static() {
				return false
			}
		}
		return true
	}
	return false
}

// yield is the set of kinds an expression may resolve to, as far as Parse
// can tell: Fn::FindInMap with a computed key may give either a string or a
// list, and only Evaluate knows which.
type yield uint8

const (
	yString yield = 1 << iota
	yList
	yOther // an object, number, boolean or null: only in a policy document
)

// mapping is one entry of Mappings: top key → second key → a string or a
// list of strings.
type mapping map[string]map[string]*value

func (m mapping) yields() yield {
	var y yield
	for _, second := range m {
		y |= yields(second)
	}
	return y
}

func yields(second map[string]*value) yield {
	var y yield
	for _, v := range second {
		y |= leafYield(v)
	}
	return y
}

func leafYield(v *value) yield {
	if v.kind == kArray {
		return yList
	}
	return yString
}

// compiler turns values into expressions, checking the shapes of the
// intrinsic functions and that every name they use exists.
type compiler struct {
	declared map[string]bool
	mappings map[string]mapping
}

// known reports whether name may be referenced: a declared parameter or a
// built-in the service fills from the certificate.
func (c *compiler) known(name string) bool { return c.declared[name] || isBuiltin(name) }

// intrinsic returns the function name and argument when v is a one-member
// object whose name is that of a function (or of something CloudFormation
// has and AWS IoT does not, to refuse it by name). In a policy document
// "Condition" is a statement element, not a function.
func intrinsic(v *value, inDocument bool) (string, *value, bool) {
	if v.kind != kObject || len(v.members) != 1 {
		return "", nil, false
	}
	m := v.members[0]
	if m.name == "Ref" || strings.HasPrefix(m.name, "Fn::") || (!inDocument && m.name == "Condition") {
		return m.name, m.v, true
	}
	return "", nil, false
}

// str compiles a value that must resolve to a string.
func (c *compiler) str(v *value, path string) (*expr, yield, error) {
	if v.kind == kString {
		return &expr{op: opLit, path: path, lit: v}, yString, nil
	}
	name, arg, ok := intrinsic(v, false)
	if !ok {
		return nil, 0, errorf(path, "must be a string or an intrinsic function, not %s", v.describe())
	}
	e, y, err := c.function(name, arg, path)
	if err != nil {
		return nil, 0, err
	}
	if y&yString == 0 {
		return nil, 0, errorf(path, "%s gives a list where a string is needed", name)
	}
	return e, y, nil
}

// list compiles a value that must resolve to a list of strings: a literal
// list of strings (each may be an intrinsic) or a function giving a list.
// The yield is that of the list's elements.
func (c *compiler) list(v *value, path string) (*expr, yield, error) {
	if v.kind == kArray {
		e := &expr{op: opList, path: path, args: make([]*expr, len(v.elems))}
		var elems yield
		for i, elem := range v.elems {
			a, y, err := c.str(elem, index(path, i))
			if err != nil {
				return nil, 0, err
			}
			e.args[i] = a
			elems |= y
		}
		return e, elems, nil
	}
	name, arg, ok := intrinsic(v, false)
	if !ok {
		return nil, 0, errorf(path, "must be a list of strings or an intrinsic function giving one, not %s", v.describe())
	}
	e, y, err := c.function(name, arg, path)
	if err != nil {
		return nil, 0, err
	}
	if y&yList == 0 {
		return nil, 0, errorf(path, "%s gives a string where a list is needed", name)
	}
	// Lists that functions give (Fn::Split's, a mapping's) hold strings.
	return e, yString, nil
}

// document compiles a policy document given as an object: its structure is
// kept, and any value in it may be an intrinsic function.
func (c *compiler) document(v *value, path string) (*expr, error) {
	if name, arg, ok := intrinsic(v, true); ok {
		e, _, err := c.function(name, arg, path)
		return e, err
	}
	switch v.kind {
	case kArray:
		e := &expr{op: opList, path: path, args: make([]*expr, len(v.elems))}
		for i, elem := range v.elems {
			a, err := c.document(elem, index(path, i))
			if err != nil {
				return nil, err
			}
			e.args[i] = a
		}
		return e, nil
	case kObject:
		e := &expr{op: opObject, path: path, args: make([]*expr, len(v.members)), names: make([]string, len(v.members))}
		for i, m := range v.members {
			a, err := c.document(m.v, child(path, m.name))
			if err != nil {
				return nil, err
			}
			e.names[i], e.args[i] = m.name, a
		}
		return e, nil
	}
	return &expr{op: opLit, path: path, lit: v}, nil
}

// function compiles the intrinsic function name applied to arg, written at
// path.
func (c *compiler) function(name string, arg *value, path string) (*expr, yield, error) {
	fn := child(path, name)
	switch name {
	case "Ref":
		if arg.kind != kString {
			return nil, 0, errorf(fn, "Ref takes a parameter name, not %s", arg.describe())
		}
		if !c.known(arg.s) {
			return nil, 0, errorf(path, "Ref to undeclared parameter %s; declare it in Parameters", arg.s)
		}
		return &expr{op: opRef, path: path, s: arg.s}, yString, nil

	case "Fn::Join":
		args, err := arguments(arg, fn, 2, "[delimiter, [values]]")
		if err != nil {
			return nil, 0, err
		}
		if args[0].kind != kString {
			return nil, 0, errorf(index(fn, 0), "the delimiter must be a string, not %s", args[0].describe())
		}
		list, _, err := c.list(args[1], index(fn, 1))
		if err != nil {
			return nil, 0, err
		}
		return &expr{op: opJoin, path: path, s: args[0].s, args: []*expr{list}}, yString, nil

	case "Fn::Select":
		args, err := arguments(arg, fn, 2, "[index, [values]]")
		if err != nil {
			return nil, 0, err
		}
		var i *expr
		switch p := index(fn, 0); args[0].kind {
		case kNumber, kString:
			if _, err := selectIndex(args[0].s, p); err != nil {
				return nil, 0, err
			}
			i = &expr{op: opLit, path: p, lit: stringValue(args[0].s)}
		default:
			if i, _, err = c.str(args[0], p); err != nil {
				return nil, 0, err
			}
		}
		list, y, err := c.list(args[1], index(fn, 1))
		if err != nil {
			return nil, 0, err
		}
		if list.op == opList && i.op == opLit {
			if n, _ := selectIndex(i.lit.s, i.path); n >= len(list.args) {
				return nil, 0, errorf(index(fn, 0), "index %d is out of range for a list of %d", n, len(list.args))
			}
		}
		return &expr{op: opSelect, path: path, args: []*expr{i, list}}, y, nil

	case "Fn::Split":
		args, err := arguments(arg, fn, 2, "[delimiter, string]")
		if err != nil {
			return nil, 0, err
		}
		if args[0].kind != kString {
			return nil, 0, errorf(index(fn, 0), "the delimiter must be a string, not %s", args[0].describe())
		}
		if args[0].s == "" {
			return nil, 0, errorf(index(fn, 0), "the delimiter is empty")
		}
		s, _, err := c.str(args[1], index(fn, 1))
		if err != nil {
			return nil, 0, err
		}
		return &expr{op: opSplit, path: path, s: args[0].s, args: []*expr{s}}, yList, nil

	case "Fn::Sub":
		return c.sub(arg, path, fn)

	case "Fn::FindInMap":
		args, err := arguments(arg, fn, 3, "[map name, top-level key, second-level key]")
		if err != nil {
			return nil, 0, err
		}
		if args[0].kind != kString {
			return nil, 0, errorf(index(fn, 0), "the map name must be a literal string, not %s", args[0].describe())
		}
		m, ok := c.mappings[args[0].s]
		if !ok {
			return nil, 0, errorf(index(fn, 0), "Mappings has no map named %s", args[0].s)
		}
		top, _, err := c.str(args[1], index(fn, 1))
		if err != nil {
			return nil, 0, err
		}
		second, _, err := c.str(args[2], index(fn, 2))
		if err != nil {
			return nil, 0, err
		}
		// Literal keys are looked up now, so that a typo fails at create
		// time; the yield narrows with what is known.
		y := m.yields()
		if top.op == opLit {
			entry, ok := m[top.lit.s]
			if !ok {
				return nil, 0, errorf(index(fn, 1), "map %s has no key %s", args[0].s, top.lit.s)
			}
			y = yields(entry)
			if second.op == opLit {
				leaf, ok := entry[second.lit.s]
				if !ok {
					return nil, 0, errorf(index(fn, 2), "map %s has no key %s under %s", args[0].s, second.lit.s, top.lit.s)
				}
				y = leafYield(leaf)
			}
		}
		if y == 0 {
			// An empty map or entry: the lookup fails at Evaluate, which
			// says so better than a complaint about kinds would.
			y = yString | yList
		}
		return &expr{op: opFindInMap, path: path, s: args[0].s, args: []*expr{top, second}}, y, nil
	}
	return nil, 0, errorf(path, "%s is not supported in AWS IoT provisioning templates", name)
}

// arguments checks that arg is a list of n arguments.
func arguments(arg *value, path string, n int, form string) ([]*value, error) {
	if arg.kind != kArray || len(arg.elems) != n {
		return nil, errorf(path, "takes %s, not %s", form, describeArgs(arg))
	}
	return arg.elems, nil
}

func describeArgs(v *value) string {
	if v.kind == kArray {
		return "a list of " + strconv.Itoa(len(v.elems))
	}
	return v.describe()
}

// selectIndex parses the index of Fn::Select: a non-negative integer, as a
// number or a string.
func selectIndex(s, path string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errorf(path, "the index of Fn::Select must be a non-negative integer, not %q", s)
	}
	return n, nil
}

// sub compiles Fn::Sub: "text ${Name}" or ["text ${Name}", {"Name": value}].
// A ${Name} not bound by the variable map is a parameter; ${!Text} is the
// escape for a literal ${Text}.
func (c *compiler) sub(arg *value, path, fn string) (*expr, yield, error) {
	e := &expr{op: opSub, path: path}
	text, textPath := arg, fn
	if arg.kind == kArray {
		args, err := arguments(arg, fn, 2, `"string" or ["string", {variables}]`)
		if err != nil {
			return nil, 0, err
		}
		text, textPath = args[0], index(fn, 0)
		vars := args[1]
		varsPath := index(fn, 1)
		if name, _, ok := intrinsic(vars, false); vars.kind != kObject || ok {
			if ok {
				return nil, 0, errorf(varsPath, "the variables of Fn::Sub must be an object, not %s", name)
			}
			return nil, 0, errorf(varsPath, "the variables of Fn::Sub must be an object, not %s", vars.describe())
		}
		for _, m := range vars.members {
			v, _, err := c.str(m.v, child(varsPath, m.name))
			if err != nil {
				return nil, 0, err
			}
			e.names = append(e.names, m.name)
			e.args = append(e.args, v)
		}
	}
	if text.kind != kString {
		return nil, 0, errorf(textPath, `Fn::Sub takes "string" or ["string", {variables}], not %s`, text.describe())
	}
	s := text.s
	var lit strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, 0, errorf(textPath, "${ without a closing }")
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if strings.HasPrefix(name, "!") {
			lit.WriteString("${" + name[1:] + "}")
			continue
		}
		if name == "" {
			return nil, 0, errorf(textPath, "${} names no variable")
		}
		bound := false
		for _, n := range e.names {
			bound = bound || n == name
		}
		if !bound && !c.known(name) {
			return nil, 0, errorf(textPath, "${%s} refers to undeclared parameter %s; declare it in Parameters or in the variables of Fn::Sub", name, name)
		}
		if lit.Len() > 0 {
			e.parts = append(e.parts, subPart{text: lit.String()})
			lit.Reset()
		}
		e.parts = append(e.parts, subPart{text: name, isVar: true})
	}
	if lit.Len() > 0 {
		e.parts = append(e.parts, subPart{text: lit.String()})
	}
	return e, yString, nil
}

// maxResolved bounds the bytes an evaluation produces. Parameters come from
// devices; without a bound a template that joins one parameter a thousand
// times would turn a large parameter into a very large allocation.
const maxResolved = 1 << 20

// evaluator resolves expressions against parameters. One evaluation uses
// one evaluator; the template itself is never written.
type evaluator struct {
	t      *Template
	params map[string]string
	size   int
}

func (ev *evaluator) grow(path string, n int) error {
	if ev.size += n; ev.size > maxResolved {
		return errorf(path, "the template resolves to more than %d bytes", maxResolved)
	}
	return nil
}

// eval resolves e to a string, a list of strings, or (in a policy
// document) any JSON value.
func (ev *evaluator) eval(e *expr) (*value, error) {
	switch e.op {
	case opLit:
		return e.lit, nil

	case opList:
		v := &value{kind: kArray, elems: make([]*value, len(e.args))}
		for i, a := range e.args {
			elem, err := ev.eval(a)
			if err != nil {
				return nil, err
			}
			v.elems[i] = elem
		}
		return v, nil

	case opObject:
		v := &value{kind: kObject, members: make([]member, len(e.args))}
		for i, a := range e.args {
			elem, err := ev.eval(a)
			if err != nil {
				return nil, err
			}
			v.members[i] = member{e.names[i], elem}
		}
		return v, nil

	case opRef:
		s, err := ev.param(e.s, e.path)
		if err != nil {
			return nil, err
		}
		return stringValue(s), nil

	case opJoin:
		list, err := ev.strings(e.args[0])
		if err != nil {
			return nil, err
		}
		s := strings.Join(list, e.s)
		if err := ev.grow(e.path, len(s)); err != nil {
			return nil, err
		}
		return stringValue(s), nil

	case opSelect:
		is, err := ev.str(e.args[0])
		if err != nil {
			return nil, err
		}
		i, err := selectIndex(is, e.args[0].path)
		if err != nil {
			return nil, err
		}
		list, err := ev.eval(e.args[1])
		if err != nil {
			return nil, err
		}
		if list.kind != kArray {
			return nil, errorf(e.args[1].path, "resolves to %s, not a list", list.describe())
		}
		if i >= len(list.elems) {
			return nil, errorf(e.args[0].path, "index %d is out of range for a list of %d", i, len(list.elems))
		}
		return list.elems[i], nil

	case opSplit:
		s, err := ev.str(e.args[0])
		if err != nil {
			return nil, err
		}
		parts := strings.Split(s, e.s)
		if err := ev.grow(e.path, len(s)+16*len(parts)); err != nil {
			return nil, err
		}
		v := &value{kind: kArray, elems: make([]*value, len(parts))}
		for i, p := range parts {
			v.elems[i] = stringValue(p)
		}
		return v, nil

	case opSub:
		vars := make([]string, len(e.args))
		for i, a := range e.args {
			s, err := ev.str(a)
			if err != nil {
				return nil, err
			}
			vars[i] = s
		}
		var b strings.Builder
	parts:
		for _, p := range e.parts {
			if !p.isVar {
				b.WriteString(p.text)
				continue
			}
			// The variable map binds before the parameters do.
			for i := range e.names {
				if e.names[i] == p.text {
					b.WriteString(vars[i])
					continue parts
				}
			}
			s, err := ev.param(p.text, e.path)
			if err != nil {
				return nil, err
			}
			b.WriteString(s)
		}
		if err := ev.grow(e.path, b.Len()); err != nil {
			return nil, err
		}
		return stringValue(b.String()), nil

	case opFindInMap:
		top, err := ev.str(e.args[0])
		if err != nil {
			return nil, err
		}
		second, err := ev.str(e.args[1])
		if err != nil {
			return nil, err
		}
		entry, ok := ev.t.mappings[e.s][top]
		if !ok {
			return nil, errorf(e.path, "Fn::FindInMap: map %s has no key %q", e.s, top)
		}
		leaf, ok := entry[second]
		if !ok {
			return nil, errorf(e.path, "Fn::FindInMap: map %s has no key %q under %q", e.s, second, top)
		}
		if err := ev.grow(e.path, len(leaf.s)); err != nil {
			return nil, err
		}
		return leaf, nil
	}
	panic("template: unknown op") // unreachable: the compiler makes only the ops above
}

// param is the value of parameter name: the caller's, else the declared
// default.
func (ev *evaluator) param(name, path string) (string, error) {
	if s, ok := ev.params[name]; ok {
		if err := ev.grow(path, len(s)); err != nil {
			return "", err
		}
		return s, nil
	}
	if p, ok := ev.t.defaults[name]; ok && p.HasDefault {
		return p.Default, nil
	}
	return "", errorf(path, "parameter %s has no value", name)
}

// str resolves e, which must give a string.
func (ev *evaluator) str(e *expr) (string, error) {
	v, err := ev.eval(e)
	if err != nil {
		return "", err
	}
	if v.kind != kString {
		return "", errorf(e.path, "resolves to %s where a string is needed", v.describe())
	}
	return v.s, nil
}

// strings resolves e, which must give a list of strings.
func (ev *evaluator) strings(e *expr) ([]string, error) {
	v, err := ev.eval(e)
	if err != nil {
		return nil, err
	}
	if v.kind != kArray {
		return nil, errorf(e.path, "resolves to %s where a list is needed", v.describe())
	}
	list := make([]string, len(v.elems))
	for i, elem := range v.elems {
		if elem.kind != kString {
			return nil, errorf(index(e.path, i), "resolves to %s where a string is needed", elem.describe())
		}
		list[i] = elem.s
	}
	return list, nil
}
