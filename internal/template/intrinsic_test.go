package template

import (
	"strings"
	"testing"
)

// exprSections declare what the expression tests use: A without and B with
// a default, a mapping M with a string and a list, and an empty mapping E.
const exprSections = `"Parameters": {"A": {"Type": "String"}, "B": {"Type": "String", "Default": "dflt"}},
	"Mappings": {"M": {"k1": {"s": "v", "l": ["x", "y"]}, "k2": {"s": "w"}}, "E": {}}`

// exprBody puts value in a thing's ThingName, or in its ThingGroups when
// list.
func exprBody(value string, list bool) string {
	prop := "ThingName"
	if list {
		prop = "ThingGroups"
	}
	return `{` + exprSections + `, "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"` + prop + `": ` + value + `}}}}`
}

type exprCase struct {
	name   string
	list   bool   // value is ThingGroups (want is the groups joined by |), not ThingName
	value  string // the JSON of the value
	params map[string]string
	want   string
	// An error: msg is part of its message, path is where, after the
	// property's own path; atEval says it comes from Evaluate, not Parse.
	msg    string
	path   string
	atEval bool
}

func p(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var exprCases = []exprCase{
	// Literals.
	{name: "literal", value: `"plain"`, want: "plain"},
	{name: "number", value: `42`, msg: "must be a string or an intrinsic function, not a number"},
	{name: "boolean", value: `true`, msg: "not a boolean"},
	{name: "null", value: `null`, msg: "not null"},
	{name: "object", value: `{"a": "b", "c": "d"}`, msg: "not an object"},
	{name: "list for string", value: `["a"]`, msg: "not a list"},
	{name: "groups literal", list: true, value: `["g1", {"Ref": "A"}]`, params: p("A", "g2"), want: "g1|g2"},
	{name: "groups empty", list: true, value: `[]`, want: ""},
	{name: "groups string", list: true, value: `"g1"`, msg: "must be a list of strings or an intrinsic function giving one, not a string"},
	{name: "groups nested list", list: true, value: `[["g1"]]`, path: "[0]", msg: "not a list"},

	// Ref.
	{name: "Ref", value: `{"Ref": "A"}`, params: p("A", "x"), want: "x"},
	{name: "Ref default", value: `{"Ref": "B"}`, want: "dflt"},
	{name: "Ref default overridden", value: `{"Ref": "B"}`, params: p("B", "given"), want: "given"},
	{name: "Ref empty value", value: `{"Ref": "A"}`, params: p("A", ""), want: ""},
	{name: "Ref builtin", value: `{"Ref": "AWS::IoT::Certificate::CommonName"}`, params: p(ParamCommonName, "cn"), want: "cn"},
	{name: "Ref missing", value: `{"Ref": "A"}`, params: p("Other", "x"), atEval: true, msg: "parameter A has no value"},
	{name: "Ref builtin missing", value: `{"Ref": "AWS::IoT::Certificate::Country"}`, atEval: true, msg: "parameter AWS::IoT::Certificate::Country has no value"},
	{name: "Ref undeclared", value: `{"Ref": "SerialNumber"}`, msg: "Ref to undeclared parameter SerialNumber; declare it in Parameters"},
	{name: "Ref pseudo-parameter", value: `{"Ref": "AWS::Region"}`, msg: "undeclared parameter AWS::Region"},
	{name: "Ref not a string", value: `{"Ref": ["A"]}`, path: ".Ref", msg: "Ref takes a parameter name, not a list"},
	{name: "Ref in groups", list: true, value: `{"Ref": "A"}`, msg: "Ref gives a string where a list is needed"},

	// Fn::Join.
	{name: "Join", value: `{"Fn::Join": ["-", ["a", {"Ref": "A"}, "c"]]}`, params: p("A", "x"), want: "a-x-c"},
	{name: "Join concatenates", value: `{"Fn::Join": ["", ["ThingPrefix_", {"Ref": "A"}]]}`, params: p("A", "1"), want: "ThingPrefix_1"},
	{name: "Join empty list", value: `{"Fn::Join": [",", []]}`, want: ""},
	{name: "Join Split", value: `{"Fn::Join": ["+", {"Fn::Split": [",", {"Ref": "A"}]}]}`, params: p("A", "1,2,3"), want: "1+2+3"},
	{name: "Join mapped list", value: `{"Fn::Join": ["", {"Fn::FindInMap": ["M", "k1", "l"]}]}`, want: "xy"},
	{name: "Join not a list", value: `{"Fn::Join": "a"}`, path: ".Fn::Join", msg: "takes [delimiter, [values]], not a string"},
	{name: "Join one argument", value: `{"Fn::Join": ["-"]}`, path: ".Fn::Join", msg: "takes [delimiter, [values]], not a list of 1"},
	{name: "Join delimiter", value: `{"Fn::Join": [1, ["a"]]}`, path: ".Fn::Join[0]", msg: "the delimiter must be a string, not a number"},
	{name: "Join computed delimiter", value: `{"Fn::Join": [{"Ref": "A"}, ["a"]]}`, path: ".Fn::Join[0]", msg: "the delimiter must be a string, not an object"},
	{name: "Join of a string", value: `{"Fn::Join": ["-", "a"]}`, path: ".Fn::Join[1]", msg: "must be a list of strings"},
	{name: "Join of a Ref", value: `{"Fn::Join": ["-", {"Ref": "A"}]}`, path: ".Fn::Join[1]", msg: "Ref gives a string where a list is needed"},
	{name: "Join element number", value: `{"Fn::Join": ["-", ["a", 1]]}`, path: ".Fn::Join[1][1]", msg: "not a number"},
	{name: "Join element list", value: `{"Fn::Join": ["-", [["a"]]]}`, path: ".Fn::Join[1][0]", msg: "not a list"},
	{name: "Join element Split", value: `{"Fn::Join": ["-", [{"Fn::Split": [",", "a,b"]}]]}`, path: ".Fn::Join[1][0]", msg: "Fn::Split gives a list where a string is needed"},
	{name: "Join undeclared", value: `{"Fn::Join": ["", ["p", {"Ref": "Nope"}]]}`, path: ".Fn::Join[1][1]", msg: "Ref to undeclared parameter Nope"},
	{name: "Join missing parameter", value: `{"Fn::Join": ["", ["p", {"Ref": "A"}]]}`, atEval: true, path: ".Fn::Join[1][1]", msg: "parameter A has no value"},
	{name: "Join mapped string", value: `{"Fn::Join": ["", {"Fn::FindInMap": ["M", {"Ref": "A"}, "s"]}]}`, params: p("A", "k1"),
		atEval: true, path: ".Fn::Join[1]", msg: "resolves to a string where a list is needed"},
	{name: "Join element mapped list", value: `{"Fn::Join": ["", ["a", {"Fn::FindInMap": ["M", {"Ref": "A"}, "l"]}]]}`, params: p("A", "k1"),
		atEval: true, path: ".Fn::Join[1][1]", msg: "resolves to a list where a string is needed"},

	// Fn::Select.
	{name: "Select", value: `{"Fn::Select": [1, ["a", "b", "c"]]}`, want: "b"},
	{name: "Select string index", value: `{"Fn::Select": ["2", ["a", "b", "c"]]}`, want: "c"},
	{name: "Select computed index", value: `{"Fn::Select": [{"Ref": "A"}, ["a", "b"]]}`, params: p("A", "1"), want: "b"},
	{name: "Select Split", value: `{"Fn::Select": [2, {"Fn::Split": ["-", {"Ref": "A"}]}]}`, params: p("A", "a-b-c"), want: "c"},
	{name: "Select mapped list", value: `{"Fn::Select": [0, {"Fn::FindInMap": ["M", "k1", "l"]}]}`, want: "x"},
	{name: "Select element Ref", value: `{"Fn::Select": [0, [{"Ref": "A"}]]}`, params: p("A", "x"), want: "x"},
	{name: "Select negative", value: `{"Fn::Select": [-1, ["a"]]}`, path: ".Fn::Select[0]", msg: `non-negative integer, not "-1"`},
	{name: "Select fraction", value: `{"Fn::Select": [1.5, ["a", "b"]]}`, path: ".Fn::Select[0]", msg: "non-negative integer"},
	{name: "Select word", value: `{"Fn::Select": ["one", ["a", "b"]]}`, path: ".Fn::Select[0]", msg: "non-negative integer"},
	{name: "Select boolean index", value: `{"Fn::Select": [true, ["a"]]}`, path: ".Fn::Select[0]", msg: "not a boolean"},
	{name: "Select out of range", value: `{"Fn::Select": [3, ["a", "b"]]}`, path: ".Fn::Select[0]", msg: "index 3 is out of range for a list of 2"},
	{name: "Select of a string", value: `{"Fn::Select": [0, "a"]}`, path: ".Fn::Select[1]", msg: "must be a list of strings"},
	{name: "Select shape", value: `{"Fn::Select": [0]}`, path: ".Fn::Select", msg: "takes [index, [values]]"},
	{name: "Select in groups", list: true, value: `{"Fn::Select": [0, ["a"]]}`, msg: "Fn::Select gives a string where a list is needed"},
	{name: "Select computed bad index", value: `{"Fn::Select": [{"Ref": "A"}, ["a"]]}`, params: p("A", "x"),
		atEval: true, path: ".Fn::Select[0]", msg: `non-negative integer, not "x"`},
	{name: "Select computed out of range", value: `{"Fn::Select": [5, {"Fn::Split": [",", {"Ref": "A"}]}]}`, params: p("A", "a,b,c"),
		atEval: true, path: ".Fn::Select[0]", msg: "index 5 is out of range for a list of 3"},
	{name: "Select a list", value: `{"Fn::Select": [0, [{"Fn::FindInMap": ["M", {"Ref": "A"}, "l"]}]]}`, params: p("A", "k1"),
		atEval: true, msg: "resolves to a list where a string is needed"},

	// Fn::Split.
	{name: "Split", list: true, value: `{"Fn::Split": [",", {"Ref": "A"}]}`, params: p("A", "g1,g2"), want: "g1|g2"},
	{name: "Split literal", list: true, value: `{"Fn::Split": ["::", "a::b::"]}`, want: "a|b|"},
	{name: "Split empty delimiter", list: true, value: `{"Fn::Split": ["", "ab"]}`, path: ".Fn::Split[0]", msg: "the delimiter is empty"},
	{name: "Split delimiter", list: true, value: `{"Fn::Split": [null, "ab"]}`, path: ".Fn::Split[0]", msg: "the delimiter must be a string, not null"},
	{name: "Split of a list", list: true, value: `{"Fn::Split": [",", ["a"]]}`, path: ".Fn::Split[1]", msg: "not a list"},
	{name: "Split shape", list: true, value: `{"Fn::Split": [","]}`, path: ".Fn::Split", msg: "takes [delimiter, string]"},
	{name: "Split for string", value: `{"Fn::Split": [",", "a,b"]}`, msg: "Fn::Split gives a list where a string is needed"},
	{name: "Split missing parameter", list: true, value: `{"Fn::Split": [",", {"Ref": "A"}]}`, atEval: true, path: ".Fn::Split[1]", msg: "parameter A has no value"},

	// Fn::Sub.
	{name: "Sub", value: `{"Fn::Sub": "dev-${A}-${B}"}`, params: p("A", "x"), want: "dev-x-dflt"},
	{name: "Sub plain", value: `{"Fn::Sub": "plain"}`, want: "plain"},
	{name: "Sub variables", value: `{"Fn::Sub": ["${X}/${A}/${Y}", {"X": "lit", "Y": {"Ref": "B"}}]}`, params: p("A", "a"), want: "lit/a/dflt"},
	{name: "Sub variable shadows", value: `{"Fn::Sub": ["${A}", {"A": "mine"}]}`, params: p("A", "theirs"), want: "mine"},
	{name: "Sub escape", value: `{"Fn::Sub": "${!Literal}-${A}-${!iot:ClientId}"}`, params: p("A", "x"), want: "${Literal}-x-${iot:ClientId}"},
	{name: "Sub builtin", value: `{"Fn::Sub": "cert-${AWS::IoT::Certificate::Id}"}`, params: p(ParamCertificateID, "abc"), want: "cert-abc"},
	{name: "Sub adjacent", value: `{"Fn::Sub": "${A}${A}$A{}"}`, params: p("A", "x"), want: "xx$A{}"},
	{name: "Sub undeclared", value: `{"Fn::Sub": "${Nope}"}`, path: ".Fn::Sub", msg: "${Nope} refers to undeclared parameter Nope"},
	{name: "Sub undeclared in list", value: `{"Fn::Sub": ["${X}${Nope}", {"X": "x"}]}`, path: ".Fn::Sub[0]", msg: "undeclared parameter Nope"},
	{name: "Sub unterminated", value: `{"Fn::Sub": "a${A"}`, path: ".Fn::Sub", msg: "${ without a closing }"},
	{name: "Sub empty name", value: `{"Fn::Sub": "a${}"}`, path: ".Fn::Sub", msg: "${} names no variable"},
	{name: "Sub number", value: `{"Fn::Sub": 1}`, path: ".Fn::Sub", msg: `takes "string" or ["string", {variables}], not a number`},
	{name: "Sub one-element list", value: `{"Fn::Sub": ["a"]}`, path: ".Fn::Sub", msg: "not a list of 1"},
	{name: "Sub variables not an object", value: `{"Fn::Sub": ["a", "b"]}`, path: ".Fn::Sub[1]", msg: "the variables of Fn::Sub must be an object, not a string"},
	{name: "Sub variables an intrinsic", value: `{"Fn::Sub": ["a", {"Ref": "A"}]}`, path: ".Fn::Sub[1]", msg: "must be an object, not Ref"},
	{name: "Sub text not a string", value: `{"Fn::Sub": [{"Ref": "A"}, {}]}`, path: ".Fn::Sub[0]", msg: "not an object"},
	{name: "Sub variable undeclared", value: `{"Fn::Sub": ["${V}", {"V": {"Ref": "Nope"}}]}`, path: ".Fn::Sub[1].V", msg: "Ref to undeclared parameter Nope"},
	{name: "Sub variable list", value: `{"Fn::Sub": ["${V}", {"V": ["a"]}]}`, path: ".Fn::Sub[1].V", msg: "not a list"},
	{name: "Sub missing parameter", value: `{"Fn::Sub": "${A}"}`, atEval: true, msg: "parameter A has no value"},
	{name: "Sub variable missing parameter", value: `{"Fn::Sub": ["x", {"V": {"Ref": "A"}}]}`, atEval: true, path: ".Fn::Sub[1].V", msg: "parameter A has no value"},

	// Fn::FindInMap.
	{name: "FindInMap", value: `{"Fn::FindInMap": ["M", "k1", "s"]}`, want: "v"},
	{name: "FindInMap computed", value: `{"Fn::FindInMap": ["M", {"Ref": "A"}, "s"]}`, params: p("A", "k2"), want: "w"},
	{name: "FindInMap Sub key", value: `{"Fn::FindInMap": ["M", {"Fn::Sub": "k${A}"}, {"Ref": "B"}]}`, params: p("A", "1", "B", "s"), want: "v"},
	{name: "FindInMap list", list: true, value: `{"Fn::FindInMap": ["M", "k1", "l"]}`, want: "x|y"},
	{name: "FindInMap no map", value: `{"Fn::FindInMap": ["Nope", "k1", "s"]}`, path: ".Fn::FindInMap[0]", msg: "Mappings has no map named Nope"},
	{name: "FindInMap computed map", value: `{"Fn::FindInMap": [{"Ref": "A"}, "k1", "s"]}`, path: ".Fn::FindInMap[0]", msg: "the map name must be a literal string, not an object"},
	{name: "FindInMap no top key", value: `{"Fn::FindInMap": ["M", "k9", "s"]}`, path: ".Fn::FindInMap[1]", msg: "map M has no key k9"},
	{name: "FindInMap no second key", value: `{"Fn::FindInMap": ["M", "k2", "l"]}`, path: ".Fn::FindInMap[2]", msg: "map M has no key l under k2"},
	{name: "FindInMap shape", value: `{"Fn::FindInMap": ["M", "k1"]}`, path: ".Fn::FindInMap", msg: "takes [map name, top-level key, second-level key], not a list of 2"},
	{name: "FindInMap default value", value: `{"Fn::FindInMap": ["M", "k1", "s", {"DefaultValue": "d"}]}`, path: ".Fn::FindInMap", msg: "not a list of 4"},
	{name: "FindInMap key a list", value: `{"Fn::FindInMap": ["M", ["k1"], "s"]}`, path: ".Fn::FindInMap[1]", msg: "not a list"},
	{name: "FindInMap list for string", value: `{"Fn::FindInMap": ["M", "k1", "l"]}`, msg: "Fn::FindInMap gives a list where a string is needed"},
	{name: "FindInMap string for list", list: true, value: `{"Fn::FindInMap": ["M", "k1", "s"]}`, msg: "Fn::FindInMap gives a string where a list is needed"},
	{name: "FindInMap missing top key", value: `{"Fn::FindInMap": ["M", {"Ref": "A"}, "s"]}`, params: p("A", "k9"),
		atEval: true, msg: `Fn::FindInMap: map M has no key "k9"`},
	{name: "FindInMap missing second key", value: `{"Fn::FindInMap": ["M", "k2", {"Ref": "A"}]}`, params: p("A", "zz"),
		atEval: true, msg: `Fn::FindInMap: map M has no key "zz" under "k2"`},
	{name: "FindInMap empty map", value: `{"Fn::FindInMap": ["E", {"Ref": "A"}, "s"]}`, params: p("A", "k"),
		atEval: true, msg: `Fn::FindInMap: map E has no key "k"`},
	{name: "FindInMap computed list for string", value: `{"Fn::FindInMap": ["M", {"Ref": "A"}, "l"]}`, params: p("A", "k1"),
		atEval: true, msg: "resolves to a list where a string is needed"},

	// Functions AWS IoT does not have.
	{name: "Fn::If", value: `{"Fn::If": ["C", "a", "b"]}`, msg: "Fn::If is not supported in AWS IoT provisioning templates"},
	{name: "Fn::GetAtt", value: `{"Fn::GetAtt": ["thing", "Arn"]}`, msg: "Fn::GetAtt is not supported"},
	{name: "Fn::Base64", value: `{"Fn::Base64": "a"}`, msg: "Fn::Base64 is not supported"},
	{name: "Condition", value: `{"Condition": "IsProd"}`, msg: "Condition is not supported"},
	{name: "Fn::If nested", value: `{"Fn::Join": ["", [{"Fn::If": ["C", "a", "b"]}]]}`, path: ".Fn::Join[1][0]", msg: "Fn::If is not supported"},

	// Nesting.
	{name: "nested", value: `{"Fn::Join": ["-", [
		{"Fn::Select": [0, {"Fn::Split": [",", {"Fn::Sub": "${A},z"}]}]},
		{"Fn::FindInMap": ["M", {"Fn::Select": [1, ["k0", "k1"]]}, "s"]},
		{"Fn::Select": [{"Fn::FindInMap": ["M", "k2", "s"]}, ["a"]]}
	]]}`, params: p("A", "x"), atEval: true, path: ".Fn::Join[1][2].Fn::Select[0]", msg: `not "w"`},
	{name: "nested ok", value: `{"Fn::Join": ["-", [
		{"Fn::Select": [0, {"Fn::Split": [",", {"Fn::Sub": "${A},z"}]}]},
		{"Fn::FindInMap": ["M", {"Fn::Select": [1, ["k0", "k1"]]}, "s"]},
		{"Fn::Join": ["", {"Fn::Split": ["/", {"Fn::Sub": ["${P}/${B}", {"P": {"Fn::Select": ["1", ["", "q"]]}}]}]}]}
	]]}`, params: p("A", "x"), want: "x-v-qdflt"},
}

func TestIntrinsics(t *testing.T) {
	t.Parallel()
	for _, c := range exprCases {
		t.Run(c.name, func(t *testing.T) {
			prop := "Resources.thing.Properties.ThingName"
			if c.list {
				prop = "Resources.thing.Properties.ThingGroups"
			}
			tp, err := Parse(exprBody(c.value, c.list))
			if c.msg != "" && !c.atEval {
				wantError(t, err, prop+c.path, c.msg)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			plan, err := tp.Evaluate(c.params)
			if c.msg != "" {
				wantError(t, err, prop+c.path, c.msg)
				return
			}
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			got := plan.Thing.Name
			if c.list {
				if plan.Thing.Groups == nil {
					t.Fatal("Groups is nil")
				}
				got = strings.Join(plan.Thing.Groups, "|")
			}
			if got != c.want {
				t.Errorf("resolves to %q, want %q", got, c.want)
			}
		})
	}
}

// TestDepth: a hostile body cannot nest without bound.
func TestDepth(t *testing.T) {
	t.Parallel()
	deep := `"x"`
	for range 25 {
		deep = `{"Fn::Join": ["", [` + deep + `]]}`
	}
	_, err := Parse(exprBody(deep, false))
	wantError(t, err, "Resources.thing.Properties.ThingName"+strings.Repeat(".Fn::Join[1][0]", 20), "nested more than 64 levels deep")

	// Within the bound, nesting works.
	ok := `"x"`
	for range 19 {
		ok = `{"Fn::Join": ["", [` + ok + `]]}`
	}
	if plan := mustEvaluate(t, mustParse(t, exprBody(ok, false)), nil); plan.Thing.Name != "x" {
		t.Errorf("name %q", plan.Thing.Name)
	}
}

// TestResolvedBound: large parameters cannot be multiplied into a large
// allocation.
func TestResolvedBound(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, exprBody(`{"Fn::Join": ["", [{"Ref": "A"}, {"Ref": "A"}, {"Ref": "A"}]]}`, false))
	_, err := tp.Evaluate(p("A", strings.Repeat("a", 400<<10)))
	wantError(t, err, "Resources.thing.Properties.ThingName.Fn::Join[1][2]", "resolves to more than 1048576 bytes")
	if _, err := tp.Evaluate(p("A", strings.Repeat("a", 100<<10))); err != nil {
		t.Errorf("Evaluate: %v", err)
	}
}
