package template

import (
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
)

// Plan is what a template asks for, resolved: the resources to create or
// update, in one transaction, and the configuration to return to the
// device.
type Plan struct {
	Thing       *ThingPlan       // nil when the template has no AWS::IoT::Thing
	Certificate *CertificatePlan // nil when it has no AWS::IoT::Certificate
	Policies    []PolicyPlan     // in logical-ID order
	// DeviceConfiguration is the resolved DeviceConfiguration section;
	// never nil (empty map when absent).
	DeviceConfiguration map[string]string
}

// ThingPlan is the thing a template provisions. Nothing here has been
// checked against the registry's naming rules; the registry does that.
type ThingPlan struct {
	LogicalID string
	// Name is "" when the template gives no ThingName (AWS's own
	// fleet-provisioning example omits it); the registry refuses it.
	Name         string
	Attributes   map[string]string // nil when AttributePayload is absent
	TypeName     string
	Groups       []string // nil when ThingGroups is absent
	BillingGroup string
	Override     ThingOverride
}

// ThingOverride says what to do with each property of a thing that
// already exists.
type ThingOverride struct{ Attributes, TypeName, Groups Override }

// Override is an OverrideSettings value.
type Override string

// The override settings. MERGE applies only to a thing's attributes and
// groups.
const (
	DoNothing Override = "DO_NOTHING"
	Replace   Override = "REPLACE"
	Fail      Override = "FAIL"
	Merge     Override = "MERGE"
)

// CertificatePlan is the certificate a template names.
type CertificatePlan struct {
	LogicalID string
	// Exactly one of CertificateID, CSR and CertificatePEM is set.
	CertificateID    string
	CSR              string
	CertificatePEM   string
	CACertificatePEM string
	// Status is "ACTIVE" or "INACTIVE"; "ACTIVE" when the template gives
	// none.
	Status         string
	StatusOverride Override // DoNothing when absent
}

// PolicyPlan is a policy a template attaches: an existing one by name, or
// one made from a document.
type PolicyPlan struct {
	LogicalID string
	// Name is the PolicyName, or for a PolicyDocument the generated name:
	// the upper-case hex SHA-1 of Document.
	Name string
	// Document is "" for PolicyName; the resolved, minified document
	// otherwise.
	Document string
}

// Evaluate resolves the template against the given parameters. params holds
// every supplied value (device parameters, hook overrides and the built-in
// AWS::IoT::Certificate::* values already merged by the caller); declared
// parameters missing from params take their Default. Any failure is an
// *Error naming the parameter or resource.
func (t *Template) Evaluate(params map[string]string) (*Plan, error) {
	ev := &evaluator{t: t, params: params}
	plan := &Plan{DeviceConfiguration: make(map[string]string, len(t.config))}
	if th := t.thing; th != nil {
		p := &ThingPlan{LogicalID: th.id, Override: th.override}
		var err error
		if p.Name, err = ev.optional(th.name); err != nil {
			return nil, err
		}
		if th.hasAttrs {
			p.Attributes = make(map[string]string, len(th.attrs))
			if err := ev.flat(th.attrs, p.Attributes); err != nil {
				return nil, err
			}
		}
		if p.TypeName, err = ev.optional(th.typeName); err != nil {
			return nil, err
		}
		if th.groups != nil {
			if p.Groups, err = ev.strings(th.groups); err != nil {
				return nil, err
			}
		}
		if p.BillingGroup, err = ev.optional(th.billing); err != nil {
			return nil, err
		}
		plan.Thing = p
	}
	if cr := t.cert; cr != nil {
		p := &CertificatePlan{LogicalID: cr.id, Status: "ACTIVE", StatusOverride: cr.statusOverride}
		s, err := ev.str(cr.value)
		if err != nil {
			return nil, err
		}
		if s == "" {
			// The plan promises one way of naming the certificate.
			return nil, errorf(cr.value.path, "%s resolves to an empty string", cr.selector)
		}
		switch cr.selector {
		case "CertificateId":
			p.CertificateID = s
		case "CertificateSigningRequest":
			p.CSR = s
		default:
			p.CertificatePEM = s
		}
		if p.CACertificatePEM, err = ev.optional(cr.caPEM); err != nil {
			return nil, err
		}
		if cr.status != nil {
			s, err := ev.str(cr.status)
			if err != nil {
				return nil, err
			}
			if p.Status, err = certificateStatus(s, cr.status.path); err != nil {
				return nil, err
			}
		}
		plan.Certificate = p
	}
	for _, pr := range t.policies {
		p, err := ev.policy(&pr)
		if err != nil {
			return nil, err
		}
		plan.Policies = append(plan.Policies, p)
	}
	if err := ev.flat(t.config, plan.DeviceConfiguration); err != nil {
		return nil, err
	}
	return plan, nil
}

// optional resolves e, or gives "" when it is absent.
func (ev *evaluator) optional(e *expr) (string, error) {
	if e == nil {
		return "", nil
	}
	return ev.str(e)
}

func (ev *evaluator) flat(entries []configEntry, into map[string]string) error {
	for _, c := range entries {
		s, err := ev.str(c.e)
		if err != nil {
			return err
		}
		into[c.name] = s
	}
	return nil
}

func (ev *evaluator) policy(pr *policyResource) (PolicyPlan, error) {
	p := PolicyPlan{LogicalID: pr.id}
	if pr.name != nil {
		var err error
		p.Name, err = ev.str(pr.name)
		return p, err
	}
	switch {
	case pr.static != "":
		p.Document = pr.static
	case pr.docString:
		s, err := ev.str(pr.doc)
		if err != nil {
			return p, err
		}
		if p.Document, err = minify(s, pr.doc.path); err != nil {
			return p, err
		}
	default:
		v, err := ev.eval(pr.doc)
		if err != nil {
			return p, err
		}
		p.Document = string(v.appendJSON(nil))
	}
	p.Name = PolicyName(p.Document)
	return p, nil
}

// PolicyName is the name a template gives the policy it makes from a
// minified document: the upper-case hex SHA-1 of the document. AWS says
// only "a hash of the policy document"; its example name has 40 hex
// digits.
func PolicyName(document string) string {
	sum := sha1.Sum([]byte(document))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// The built-in parameters, which the service fills from the certificate
// and which a template may use without declaring them.
const (
	ParamCertificateID              = "AWS::IoT::Certificate::Id"
	ParamCommonName                 = "AWS::IoT::Certificate::CommonName"
	ParamCountry                    = "AWS::IoT::Certificate::Country"
	ParamOrganization               = "AWS::IoT::Certificate::Organization"
	ParamOrganizationalUnit         = "AWS::IoT::Certificate::OrganizationalUnit"
	ParamDistinguishedNameQualifier = "AWS::IoT::Certificate::DistinguishedNameQualifier"
	ParamStateName                  = "AWS::IoT::Certificate::StateName"
	ParamSerialNumber               = "AWS::IoT::Certificate::SerialNumber"
)

func isBuiltin(name string) bool {
	switch name {
	case ParamCertificateID, ParamCommonName, ParamCountry, ParamOrganization, ParamOrganizationalUnit,
		ParamDistinguishedNameQualifier, ParamStateName, ParamSerialNumber:
		return true
	}
	return false
}

// oidDNQualifier is the X.520 dnQualifier attribute, which pkix.Name has
// no field for.
var oidDNQualifier = asn1.ObjectIdentifier{2, 5, 4, 46}

// CertificateParameters are the built-in parameters AWS fills from a
// certificate: AWS::IoT::Certificate::Id (the id argument) and, from the
// subject, ::CommonName, ::Country, ::Organization, ::OrganizationalUnit,
// ::DistinguishedNameQualifier, ::StateName, ::SerialNumber — only those
// the subject has (first value of multi-valued fields). An empty value
// counts as absent: pkix.Name cannot tell an empty CommonName from none.
func CertificateParameters(id string, subject pkix.Name) map[string]string {
	params := map[string]string{ParamCertificateID: id}
	set := func(name, v string) {
		if v != "" {
			params[name] = v
		}
	}
	first := func(name string, vs []string) {
		if len(vs) > 0 {
			set(name, vs[0])
		}
	}
	set(ParamCommonName, subject.CommonName)
	set(ParamSerialNumber, subject.SerialNumber)
	first(ParamCountry, subject.Country)
	first(ParamOrganization, subject.Organization)
	first(ParamOrganizationalUnit, subject.OrganizationalUnit)
	first(ParamStateName, subject.Province)
	// Names holds what was parsed from a certificate, ExtraNames what a
	// caller built by hand; either may carry the qualifier.
	for _, names := range [][]pkix.AttributeTypeAndValue{subject.Names, subject.ExtraNames} {
		for _, atv := range names {
			if s, ok := atv.Value.(string); ok && atv.Type.Equal(oidDNQualifier) {
				if _, done := params[ParamDistinguishedNameQualifier]; !done {
					set(ParamDistinguishedNameQualifier, s)
				}
			}
		}
	}
	return params
}
