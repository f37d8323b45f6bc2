package template

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxBodyLength is the model's bound on a template body (characters).
const MaxBodyLength = 10240

// Bounds of the language that the model does not state.
const (
	// MaxParameterNameLength bounds a parameter's name (characters).
	MaxParameterNameLength = 128
	// MaxPolicies is how many AWS::IoT::Policy resources a template may
	// declare.
	MaxPolicies = 10
)

// Resource types.
const (
	TypeThing       = "AWS::IoT::Thing"
	TypeCertificate = "AWS::IoT::Certificate"
	TypePolicy      = "AWS::IoT::Policy"
)

// Error is a template that does not parse or does not evaluate. Path says
// where, in JSON-pointer-ish dotted form, e.g.
// "Resources.thing.Properties.ThingName.Fn::Join[1][0]"; Message says what.
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Parameter is a declared parameter.
type Parameter struct {
	Name       string
	Default    string
	HasDefault bool
}

// Template is a parsed, checked template. It is immutable and safe for
// concurrent use.
type Template struct {
	params   []Parameter          // sorted by name
	defaults map[string]Parameter // the same, by name
	mappings map[string]mapping
	thing    *thingResource
	cert     *certificateResource
	policies []policyResource // sorted by logical ID
	config   []configEntry    // DeviceConfiguration, in document order
}

type thingResource struct {
	id                      string
	name, typeName, billing *expr // nil when absent
	attrs                   []configEntry
	hasAttrs                bool
	groups                  *expr // a list; nil when absent
	override                ThingOverride
}

type certificateResource struct {
	id             string
	selector       string // CertificateId, CertificateSigningRequest or CertificatePem
	value          *expr
	caPEM          *expr // nil when absent
	status         *expr // nil when absent
	statusOverride Override
}

type policyResource struct {
	id   string
	name *expr // PolicyName; nil with a document
	// doc is the PolicyDocument: an object's compiled structure, or (when
	// docString) an expression giving the document as a string.
	doc       *expr
	docString bool
	// static is the minified document when it holds no intrinsic function.
	static string
}

// configEntry is a name and the expression of its value.
type configEntry struct {
	name string
	e    *expr
}

// Parameters are the declared parameters, sorted by name, with their
// defaults.
func (t *Template) Parameters() []Parameter {
	return append([]Parameter(nil), t.params...)
}

// StaticPolicyDocuments returns, keyed by logical ID, the policy documents
// that contain no intrinsic function (so they are fixed at create time),
// minified, so the caller can validate them with the policy language at
// create time.
func (t *Template) StaticPolicyDocuments() map[string]string {
	docs := map[string]string{}
	for _, p := range t.policies {
		if p.static != "" {
			docs[p.id] = p.static
		}
	}
	return docs
}

// HasCertificate reports whether the template has an AWS::IoT::Certificate
// resource.
func (t *Template) HasCertificate() bool { return t.cert != nil }

// UsesCertificateID reports whether the certificate resource names its
// certificate with CertificateId. false when there is no certificate
// resource.
func (t *Template) UsesCertificateID() bool {
	return t.cert != nil && t.cert.selector == "CertificateId"
}

// NamesProvisionedCertificate reports whether the certificate resource's
// CertificateId is {"Ref": "AWS::IoT::Certificate::Id"}: the certificate
// being provisioned, as fleet-provisioning and JITP templates must name it.
func (t *Template) NamesProvisionedCertificate() bool {
	return t.UsesCertificateID() && t.cert.value.op == opRef && t.cert.value.s == ParamCertificateID
}

// Parse parses and validates a body at create time. Any problem is an
// *Error.
func Parse(body string) (*Template, error) {
	if body == "" {
		return nil, errorf("", "The template body is empty")
	}
	if !utf8.ValidString(body) {
		return nil, errorf("", "The template body is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(body); n > MaxBodyLength {
		return nil, errorf("", "The template body has %d characters, more than %d", n, MaxBodyLength)
	}
	top, err := decodeObject(body, "", "The template body")
	if err != nil {
		return nil, err
	}
	for _, m := range top.members {
		switch m.name {
		case "Parameters", "Mappings", "Resources", "DeviceConfiguration":
		default:
			return nil, errorf(m.name, "%s is not a section of an AWS IoT provisioning template; the sections are Parameters, Mappings, Resources and DeviceConfiguration", m.name)
		}
	}
	t := &Template{defaults: map[string]Parameter{}, mappings: map[string]mapping{}}
	c := &compiler{declared: map[string]bool{}, mappings: t.mappings}
	if v := top.member("Parameters"); v != nil {
		if err := t.parseParameters(v, c); err != nil {
			return nil, err
		}
	}
	if v := top.member("Mappings"); v != nil {
		if err := t.parseMappings(v); err != nil {
			return nil, err
		}
	}
	resources := top.member("Resources")
	switch {
	case resources == nil:
		return nil, errorf("", "The template has no Resources section")
	case resources.kind != kObject:
		return nil, errorf("Resources", "must be an object, not %s", resources.describe())
	case len(resources.members) == 0:
		return nil, errorf("Resources", "declares no resource")
	}
	for _, m := range resources.members {
		if err := t.parseResource(m.name, m.v, c); err != nil {
			return nil, err
		}
	}
	sort.Slice(t.policies, func(i, j int) bool { return t.policies[i].id < t.policies[j].id })
	if v := top.member("DeviceConfiguration"); v != nil {
		if t.config, err = flat(v, "DeviceConfiguration", c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Template) parseParameters(v *value, c *compiler) error {
	if v.kind != kObject {
		return errorf("Parameters", "must be an object, not %s", v.describe())
	}
	for _, m := range v.members {
		path := child("Parameters", m.name)
		if m.name == "" {
			return errorf("Parameters", "a parameter has an empty name")
		}
		if n := utf8.RuneCountInString(m.name); n > MaxParameterNameLength {
			return errorf(path, "the name has %d characters, more than %d", n, MaxParameterNameLength)
		}
		if m.v.kind != kObject {
			return errorf(path, "must be an object, not %s", m.v.describe())
		}
		p := Parameter{Name: m.name}
		for _, f := range m.v.members {
			fp := child(path, f.name)
			switch f.name {
			case "Type":
				if f.v.kind != kString || f.v.s != "String" {
					return errorf(fp, "the only parameter type is String")
				}
			case "Default":
				if f.v.kind != kString {
					return errorf(fp, "must be a string, not %s", f.v.describe())
				}
				p.Default, p.HasDefault = f.v.s, true
			case "Description":
				if f.v.kind != kString {
					return errorf(fp, "must be a string, not %s", f.v.describe())
				}
			default:
				return errorf(fp, "%s is not a key of a parameter; use Type, Default or Description", f.name)
			}
		}
		if m.v.member("Type") == nil {
			return errorf(path, "has no Type")
		}
		t.params = append(t.params, p)
		t.defaults[p.Name] = p
		c.declared[p.Name] = true
	}
	sort.Slice(t.params, func(i, j int) bool { return t.params[i].Name < t.params[j].Name })
	return nil
}

// parseMappings reads Mappings: map → top key → second key → a string or
// a list of strings, all literal.
func (t *Template) parseMappings(v *value) error {
	notObject := func(v *value, path string) error {
		if name, _, ok := intrinsic(v, false); ok {
			return errorf(path, "%s is not allowed in Mappings, which hold only literal values", name)
		}
		if v.kind != kObject {
			return errorf(path, "must be an object, not %s", v.describe())
		}
		return nil
	}
	if err := notObject(v, "Mappings"); err != nil {
		return err
	}
	for _, m := range v.members {
		path := child("Mappings", m.name)
		if err := notObject(m.v, path); err != nil {
			return err
		}
		mp := mapping{}
		for _, top := range m.v.members {
			tp := child(path, top.name)
			if err := notObject(top.v, tp); err != nil {
				return err
			}
			entry := map[string]*value{}
			for _, leaf := range top.v.members {
				lp := child(tp, leaf.name)
				if name, _, ok := intrinsic(leaf.v, false); ok {
					return errorf(lp, "%s is not allowed in Mappings, which hold only literal values", name)
				}
				switch leaf.v.kind {
				case kString:
				case kArray:
					for i, e := range leaf.v.elems {
						if e.kind != kString {
							return errorf(index(lp, i), "must be a string, not %s", e.describe())
						}
					}
				default:
					return errorf(lp, "must be a string or a list of strings, not %s", leaf.v.describe())
				}
				entry[leaf.name] = leaf.v
			}
			mp[top.name] = entry
		}
		t.mappings[m.name] = mp
	}
	return nil
}

func (t *Template) parseResource(id string, v *value, c *compiler) error {
	path := child("Resources", id)
	if id == "" {
		return errorf("Resources", "a resource has an empty logical ID")
	}
	if v.kind != kObject {
		return errorf(path, "must be an object, not %s", v.describe())
	}
	for _, m := range v.members {
		switch m.name {
		case "Type", "Properties", "OverrideSettings":
		default:
			return errorf(child(path, m.name), "%s is not a key of a resource; use Type, Properties and OverrideSettings", m.name)
		}
	}
	typ := v.member("Type")
	switch {
	case typ == nil:
		return errorf(path, "has no Type")
	case typ.kind != kString:
		return errorf(child(path, "Type"), "must be a string, not %s", typ.describe())
	}
	props := v.member("Properties")
	switch {
	case props == nil:
		return errorf(path, "has no Properties")
	case props.kind != kObject:
		return errorf(child(path, "Properties"), "must be an object, not %s", props.describe())
	}
	override := v.member("OverrideSettings")
	if override != nil && override.kind != kObject {
		return errorf(child(path, "OverrideSettings"), "must be an object, not %s", override.describe())
	}
	switch typ.s {
	case TypeThing:
		if t.thing != nil {
			return errorf(child(path, "Type"), "a template declares at most one %s, and %s is one", TypeThing, t.thing.id)
		}
		return t.parseThing(id, path, props, override, c)
	case TypeCertificate:
		if t.cert != nil {
			return errorf(child(path, "Type"), "a template declares at most one %s, and %s is one", TypeCertificate, t.cert.id)
		}
		return t.parseCertificate(id, path, props, override, c)
	case TypePolicy:
		if len(t.policies) == MaxPolicies {
			return errorf(child(path, "Type"), "a template declares at most %d resources of type %s", MaxPolicies, TypePolicy)
		}
		if override != nil {
			return errorf(child(path, "OverrideSettings"), "a policy has no OverrideSettings")
		}
		return t.parsePolicy(id, path, props, c)
	}
	return errorf(child(path, "Type"), "%s is not a resource type of AWS IoT provisioning templates; use %s, %s or %s", typ.s, TypeThing, TypeCertificate, TypePolicy)
}

func (t *Template) parseThing(id, path string, props, override *value, c *compiler) error {
	th := &thingResource{id: id}
	pp := child(path, "Properties")
	for _, m := range props.members {
		p := child(pp, m.name)
		var err error
		switch m.name {
		case "ThingName":
			th.name, _, err = c.str(m.v, p)
		case "ThingTypeName":
			th.typeName, _, err = c.str(m.v, p)
		case "BillingGroup":
			th.billing, _, err = c.str(m.v, p)
		case "ThingGroups":
			th.groups, _, err = c.list(m.v, p)
		case "AttributePayload":
			th.attrs, err = flat(m.v, p, c)
			th.hasAttrs = true
		default:
			err = errorf(p, "%s is not a property of %s; use ThingName, AttributePayload, ThingTypeName, ThingGroups or BillingGroup", m.name, TypeThing)
		}
		if err != nil {
			return err
		}
	}
	th.override = ThingOverride{Attributes: DoNothing, TypeName: DoNothing, Groups: DoNothing}
	if override != nil {
		op := child(path, "OverrideSettings")
		seen := map[*Override]string{}
		for _, m := range override.members {
			var o *Override
			merge := true
			switch m.name {
			case "AttributePayload", "ATTRIBUTE_PAYLOAD":
				o = &th.override.Attributes
			case "ThingTypeName", "THING_TYPE_NAME":
				o, merge = &th.override.TypeName, false
			case "ThingGroups", "THING_GROUPS":
				o = &th.override.Groups
			default:
				return errorf(child(op, m.name), "%s is not an override setting of %s; use AttributePayload, ThingTypeName or ThingGroups", m.name, TypeThing)
			}
			if other, ok := seen[o]; ok {
				return errorf(child(op, m.name), "%s and %s name the same setting", other, m.name)
			}
			seen[o] = m.name
			var err error
			if *o, err = overrideValue(m.v, child(op, m.name), merge); err != nil {
				return err
			}
		}
	}
	t.thing = th
	return nil
}

// overrideValue reads an override setting: a literal DO_NOTHING, REPLACE,
// FAIL or (where merge) MERGE.
func overrideValue(v *value, path string, merge bool) (Override, error) {
	if v.kind == kString {
		switch o := Override(v.s); o {
		case DoNothing, Replace, Fail:
			return o, nil
		case Merge:
			if merge {
				return o, nil
			}
			return "", errorf(path, "MERGE is only for AttributePayload and ThingGroups")
		}
	}
	allowed := "DO_NOTHING, REPLACE or FAIL"
	if merge {
		allowed = "DO_NOTHING, REPLACE, FAIL or MERGE"
	}
	if v.kind == kString {
		return "", errorf(path, "must be %s, not %q", allowed, v.s)
	}
	return "", errorf(path, "must be %s, not %s", allowed, v.describe())
}

func (t *Template) parseCertificate(id, path string, props, override *value, c *compiler) error {
	cr := &certificateResource{id: id, statusOverride: DoNothing}
	pp := child(path, "Properties")
	for _, m := range props.members {
		p := child(pp, m.name)
		var err error
		switch m.name {
		case "CertificateId", "CertificateSigningRequest", "CertificatePem":
			if cr.selector != "" {
				return errorf(p, "a certificate is named one way only, and %s already names it", cr.selector)
			}
			cr.selector = m.name
			cr.value, _, err = c.str(m.v, p)
		case "CACertificatePem":
			cr.caPEM, _, err = c.str(m.v, p)
		case "Status":
			cr.status, _, err = c.str(m.v, p)
			if err == nil && cr.status.op == opLit {
				_, err = certificateStatus(cr.status.lit.s, p)
			}
		default:
			err = errorf(p, "%s is not a property of %s; use CertificateId, CertificateSigningRequest, CertificatePem, CACertificatePem or Status", m.name, TypeCertificate)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case cr.selector == "":
		return errorf(pp, "names no certificate: give one of CertificateId, CertificateSigningRequest or CertificatePem")
	case cr.caPEM != nil && cr.selector != "CertificatePem":
		return errorf(child(pp, "CACertificatePem"), "CACertificatePem goes only with CertificatePem")
	}
	if override != nil {
		op := child(path, "OverrideSettings")
		for _, m := range override.members {
			if m.name != "Status" {
				return errorf(child(op, m.name), "%s is not an override setting of %s; use Status", m.name, TypeCertificate)
			}
			var err error
			if cr.statusOverride, err = overrideValue(m.v, child(op, m.name), false); err != nil {
				return err
			}
		}
	}
	t.cert = cr
	return nil
}

// certificateStatus checks and upper-cases a certificate Status. AWS's own
// examples write "Active", so case does not matter.
func certificateStatus(s, path string) (string, error) {
	switch u := strings.ToUpper(s); u {
	case "ACTIVE", "INACTIVE":
		return u, nil
	}
	return "", errorf(path, "Status must be ACTIVE or INACTIVE, not %q", s)
}

func (t *Template) parsePolicy(id, path string, props *value, c *compiler) error {
	pr := policyResource{id: id}
	pp := child(path, "Properties")
	for _, m := range props.members {
		p := child(pp, m.name)
		switch m.name {
		case "PolicyName":
			var err error
			if pr.name, _, err = c.str(m.v, p); err != nil {
				return err
			}
		case "PolicyDocument":
			if err := pr.parseDocument(m.v, p, c); err != nil {
				return err
			}
		default:
			return errorf(p, "%s is not a property of %s; use PolicyName or PolicyDocument", m.name, TypePolicy)
		}
	}
	switch {
	case pr.name == nil && pr.doc == nil:
		return errorf(pp, "Neither PolicyName nor PolicyDocument is present")
	case pr.name != nil && pr.doc != nil:
		return errorf(pp, "PolicyName and PolicyDocument are both present; give one")
	}
	t.policies = append(t.policies, pr)
	return nil
}

// parseDocument compiles a PolicyDocument: a string holding the document
// (the JITP and bulk examples), an intrinsic function giving one, or the
// document as an object (the fleet-provisioning examples), whose strings
// may be intrinsic functions.
func (pr *policyResource) parseDocument(v *value, path string, c *compiler) error {
	if _, _, ok := intrinsic(v, true); ok || v.kind == kString {
		e, _, err := c.str(v, path)
		if err != nil {
			return err
		}
		pr.doc, pr.docString = e, true
		if e.op == opLit {
			doc, err := minify(e.lit.s, path)
			if err != nil {
				return err
			}
			pr.static = doc
		}
		return nil
	}
	if v.kind != kObject {
		return errorf(path, "must be a policy document (an object) or a string holding one, not %s", v.describe())
	}
	e, err := c.document(v, path)
	if err != nil {
		return err
	}
	pr.doc = e
	if e.static() {
		pr.static = string(v.appendJSON(nil))
	}
	return nil
}

// minify parses a policy document given as a string and returns it
// minified.
func minify(doc, path string) (string, error) {
	v, err := decodeObject(doc, path, "the policy document")
	if err != nil {
		return "", err
	}
	return string(v.appendJSON(nil)), nil
}

// flat compiles a flat object of names and string values:
// DeviceConfiguration, or a thing's AttributePayload.
func flat(v *value, path string, c *compiler) ([]configEntry, error) {
	if name, _, ok := intrinsic(v, false); ok {
		return nil, errorf(path, "must be an object of names and values, not %s", name)
	}
	if v.kind != kObject {
		return nil, errorf(path, "must be an object of names and values, not %s", v.describe())
	}
	entries := make([]configEntry, 0, len(v.members))
	for _, m := range v.members {
		p := child(path, m.name)
		if _, _, ok := intrinsic(m.v, false); !ok && m.v.kind == kObject {
			return nil, errorf(p, "must be a string: nested objects are not allowed")
		}
		e, _, err := c.str(m.v, p)
		if err != nil {
			return nil, err
		}
		entries = append(entries, configEntry{m.name, e})
	}
	return entries, nil
}
