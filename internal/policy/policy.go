// Package policy is the AWS IoT policy language, pure: it parses and checks
// a policy document, compiles it once, and evaluates a request (an action,
// a resource ARN and what the connection knows: client ID, thing,
// certificate) to allow, explicit deny or implicit deny, as IAM does:
// default deny, any matching Deny wins, else any matching Allow allows.
//
// No I/O and no clock. Evaluation allocates nothing: actions are a bitmask
// computed when compiling, resources and condition values are token lists
// matched in place, and policy variables are looked up through Context.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Action is one of the AWS IoT actions fleetca evaluates.
type Action uint8

// The actions. Their names are the policy language's.
const (
	Connect Action = iota
	Publish
	Subscribe
	Receive
	RetainPublish
	GetRetainedMessage
	ListRetainedMessages
	numActions
)

var actionNames = [numActions]string{
	Connect: "iot:Connect", Publish: "iot:Publish", Subscribe: "iot:Subscribe", Receive: "iot:Receive",
	RetainPublish: "iot:RetainPublish", GetRetainedMessage: "iot:GetRetainedMessage", ListRetainedMessages: "iot:ListRetainedMessages",
}

func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Decision is the outcome of an evaluation.
type Decision uint8

// The decisions, named as AWS's TestAuthorization names them.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "ALLOWED"
	case ExplicitDeny:
		return "EXPLICIT_DENY"
	}
	return "IMPLICIT_DENY"
}

// MalformedError says why a document is not a policy: what the API answers
// as MalformedPolicyException.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed policy: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// MaxDocument bounds a document's bytes before parsing; AWS's own limit
// (2,048 characters less white space) is the API's to apply.
const MaxDocument = 64 << 10

// Policy is a compiled policy document. It is immutable and safe for
// concurrent use.
type Policy struct {
	statements []statement
}

type statement struct {
	deny bool
	// actions has bit a set when the statement covers action a (after
	// NotAction's complement).
	actions     uint32
	resources   []pattern
	notResource bool
	conditions  []condition
}

// Request is what is asked: may this connection do Action on Resource?
type Request struct {
	Action Action
	// Resource is the full ARN, e.g. arn:aws:iot:us-east-1:123456789012:topic/a/b.
	Resource string
	// Context resolves policy variables and condition keys; nil knows none.
	Context Context
}

// Context tells what the connection knows. Keys are canonical names as
// Key documents. Implementations should not allocate.
type Context interface {
	// Value returns a single value of the key, or false if it has none.
	Value(k Key) (string, bool)
	// Values returns every value of a multi-valued key (iot:ConnectAttributes,
	// certificate .List variables), or false if it has none.
	Values(k Key) ([]string, bool)
}

// Key names a policy variable or condition key: Name in its canonical
// spelling (iot:ClientId, iot:Connection.Thing.ThingName,
// iot:Connection.Thing.Attributes, iot:Certificate.Subject.CommonName, ...)
// and Arg its argument: the attribute of Thing.Attributes[...], or the index
// of a certificate variable ("" for the first value, "1" for the second, as
// AWS's example reads, "List" for all).
type Key struct {
	Name string
	Arg  string
}

// Evaluate decides r against every policy: an explicit deny in any wins,
// else an allow in any allows, else the implicit deny.
func Evaluate(policies []*Policy, r *Request) Decision {
	allowed := false
	for _, p := range policies {
		switch p.decide(r) {
		case ExplicitDeny:
			return ExplicitDeny
		case Allowed:
			allowed = true
		}
	}
	if allowed {
		return Allowed
	}
	return ImplicitDeny
}

// Evaluate decides r against this policy alone.
func (p *Policy) Evaluate(r *Request) Decision { return p.decide(r) }

func (p *Policy) decide(r *Request) Decision {
	if r.Action >= numActions {
		return ImplicitDeny
	}
	bit := uint32(1) << r.Action
	d := ImplicitDeny
	for i := range p.statements {
		s := &p.statements[i]
		if s.actions&bit == 0 || !s.coversResource(r) || !s.conditionsHold(r.Context) {
			continue
		}
		if s.deny {
			return ExplicitDeny
		}
		d = Allowed
	}
	return d
}

func (s *statement) coversResource(r *Request) bool {
	for i := range s.resources {
		if s.resources[i].match(r.Resource, r.Context) {
			return !s.notResource
		}
	}
	return s.notResource
}

func (s *statement) conditionsHold(ctx Context) bool {
	for i := range s.conditions {
		if !s.conditions[i].holds(ctx) {
			return false
		}
	}
	return true
}

// Parse checks and compiles a policy document.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxDocument {
		return nil, malformed("the document is larger than %d bytes", MaxDocument)
	}
	if !utf8.Valid(doc) {
		return nil, malformed("the document is not UTF-8")
	}
	top, err := object(doc, "the document")
	if err != nil {
		return nil, err
	}
	variables := false
	for name := range top {
		switch name {
		case "Version", "Statement", "Id":
		default:
			return nil, malformed("unknown element %q", name)
		}
	}
	if raw, ok := top["Version"]; ok {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, malformed("Version must be a string")
		}
		switch v {
		case "2012-10-17":
			variables = true
		case "2008-10-17":
		default:
			return nil, malformed("unknown Version %q", v)
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformed("no Statement")
	}
	var list []json.RawMessage
	if raw = bytes.TrimSpace(raw); len(raw) > 0 && raw[0] == '{' {
		list = []json.RawMessage{raw}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, malformed("Statement must be an object or a list of them")
	}
	if len(list) == 0 {
		return nil, malformed("Statement is empty")
	}
	p := &Policy{statements: make([]statement, 0, len(list))}
	for i, raw := range list {
		s, err := parseStatement(raw, variables)
		if m, ok := err.(*MalformedError); ok {
			return nil, malformed("statement %d: %s", i+1, m.Reason)
		} else if err != nil {
			return nil, err
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

// object decodes a JSON object into its members, keeping names as written
// (policy element names are case-sensitive, which encoding/json's struct
// matching is not) and refusing a name given twice, which encoding/json
// would settle silently by keeping the last.
func object(raw []byte, what string) (map[string]json.RawMessage, error) {
	bad := malformed("%s must be a JSON object", what)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, bad
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad
		}
		if _, dup := m[name]; dup {
			return nil, malformed("%s has %q twice", what, name)
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad
	}
	return m, nil
}

// stringList decodes a string or a list of strings.
func stringList(raw json.RawMessage, what string) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, malformed("%s must be a string or a non-empty list of strings", what)
	}
	return list, nil
}

func parseStatement(raw json.RawMessage, variables bool) (statement, error) {
	var s statement
	m, err := object(raw, "a statement")
	if err != nil {
		return s, err
	}
	for name := range m {
		switch name {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition":
		default:
			return s, malformed("unknown element %q", name)
		}
	}
	var effect string
	if err := json.Unmarshal(m["Effect"], &effect); err != nil {
		return s, malformed("Effect must be Allow or Deny")
	}
	switch effect {
	case "Allow":
	case "Deny":
		s.deny = true
	default:
		return s, malformed("Effect must be Allow or Deny, not %q", effect)
	}

	actionKey, notAction, err := oneOf(m, "Action", "NotAction")
	if err != nil {
		return s, err
	}
	actions, err := stringList(m[actionKey], actionKey)
	if err != nil {
		return s, err
	}
	for _, a := range actions {
		mask, err := actionMask(a)
		if err != nil {
			return s, err
		}
		s.actions |= mask
	}
	if notAction {
		s.actions = ^s.actions & (1<<numActions - 1)
	}

	resourceKey, notResource, err := oneOf(m, "Resource", "NotResource")
	if err != nil {
		return s, err
	}
	resources, err := stringList(m[resourceKey], resourceKey)
	if err != nil {
		return s, err
	}
	s.notResource = notResource
	for _, r := range resources {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return s, malformed("%s %q is neither * nor an ARN", resourceKey, r)
		}
		s.resources = append(s.resources, compile(r, variables, true))
	}

	if raw, ok := m["Condition"]; ok {
		if s.conditions, err = parseConditions(raw, variables); err != nil {
			return s, err
		}
	}
	return s, nil
}

// oneOf returns which of two exclusive elements the statement has.
func oneOf(m map[string]json.RawMessage, name, not string) (string, bool, error) {
	_, has := m[name]
	_, hasNot := m[not]
	switch {
	case has && hasNot:
		return "", false, malformed("both %s and %s", name, not)
	case has:
		return name, false, nil
	case hasNot:
		return not, true, nil
	}
	return "", false, malformed("no %s", name)
}

// actionMask is the set of fleetca's actions an Action pattern covers.
// Actions are matched without regard to case, as IAM matches them; a
// well-formed action of another service covers none of them.
func actionMask(a string) (uint32, error) {
	if a != "*" {
		service, name, ok := strings.Cut(a, ":")
		if !ok || service == "" || name == "" || strings.ContainsAny(service, "*?") {
			return 0, malformed("action %q is not service:action", a)
		}
	}
	p := compile(strings.ToLower(a), false, true)
	var mask uint32
	for i, name := range actionNames {
		if p.match(strings.ToLower(name), nil) {
			mask |= 1 << i
		}
	}
	return mask, nil
}
