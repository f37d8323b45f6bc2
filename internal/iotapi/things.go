package iotapi

import (
	"context"
	"strconv"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

func (h *Handler) thingOperations() []operation {
	return []operation{
		{"CreateThing", "POST /things/{thingName}", h.createThing},
		{"DescribeThing", "GET /things/{thingName}", h.describeThing},
		{"ListThings", "GET /things", h.listThings},
		{"ListThings", "GET /things/{$}", h.listThings},
		{"UpdateThing", "PATCH /things/{thingName}", h.updateThing},
		{"DeleteThing", "DELETE /things/{thingName}", h.deleteThing},
		{"AttachThingPrincipal", "PUT /things/{thingName}/principals", h.attachThingPrincipal},
		{"DetachThingPrincipal", "DELETE /things/{thingName}/principals", h.detachThingPrincipal},
		{"ListThingPrincipals", "GET /things/{thingName}/principals", h.listThingPrincipals},
		{"ListThingPrincipalsV2", "GET /things/{thingName}/principals-v2", h.listThingPrincipalsV2},
		{"ListPrincipalThings", "GET /principals/things", h.listPrincipalThings},
		{"ListPrincipalThingsV2", "GET /principals/things-v2", h.listPrincipalThingsV2},
	}
}

// thingName applies the model's ThingName to a path label: 1 to 128 of
// [a-zA-Z0-9:_-].
func (c *call) thingName() (string, error) {
	return checkThingName(c.r.PathValue("thingName"), "thingName")
}

func checkThingName(name, member string) (string, error) {
	if n := len(name); n < 1 || n > iot.MaxThingNameLength {
		return "", validation(name, member, "Member must have length between 1 and 128")
	}
	if !iot.ValidThingName(name) {
		return "", validation(name, member, "Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+")
	}
	return name, nil
}

// thingTypeName applies the model's ThingTypeName, which is a thing name's
// pattern too; empty is no type.
func thingTypeName(name string, member string) (string, error) {
	if name == "" {
		return "", nil
	}
	return checkThingName(name, member)
}

// attributes applies the model's attribute names and values.
func attributes(m map[string]string, member string) error {
	for k, v := range m {
		if len(k) < 1 || len(k) > iot.MaxAttributeNameLength || !iot.ValidAttributeName(k) {
			return validation(k, member+".attributes", `Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#-]+ and have length between 1 and 128`)
		}
		if !iot.ValidAttributeValue(v) {
			return validation(v, member+".attributes", `Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#=\[\]-]* and have length less than or equal to 800`)
		}
	}
	return nil
}

type attributePayload struct {
	Attributes map[string]string `json:"attributes"`
	Merge      bool              `json:"merge"`
}

type createThingInput struct {
	ThingTypeName    string            `json:"thingTypeName"`
	AttributePayload *attributePayload `json:"attributePayload"`
	BillingGroupName string            `json:"billingGroupName"`
}

type createThingOutput struct {
	ThingName string `json:"thingName"`
	ThingArn  string `json:"thingArn"`
	ThingID   string `json:"thingId"`
}

func (h *Handler) createThing(c *call) (any, error) {
	var in createThingInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	typeName, err := thingTypeName(in.ThingTypeName, "thingTypeName")
	if err != nil {
		return nil, err
	}
	var attrs map[string]string
	if in.AttributePayload != nil {
		attrs = in.AttributePayload.Attributes
		if err := attributes(attrs, "attributePayload"); err != nil {
			return nil, err
		}
	}
	if in.BillingGroupName != "" {
		if _, err := checkThingName(in.BillingGroupName, "billingGroupName"); err != nil {
			return nil, err
		}
	}
	t, err := h.reg.CreateThing(c.r.Context(), c.scope, name, typeName, in.BillingGroupName, attrs)
	if err != nil {
		return nil, err
	}
	return createThingOutput{ThingName: t.Name, ThingArn: t.ARN(), ThingID: t.ID}, nil
}

type describeThingOutput struct {
	DefaultClientID string            `json:"defaultClientId"`
	ThingName       string            `json:"thingName"`
	ThingID         string            `json:"thingId"`
	ThingArn        string            `json:"thingArn"`
	ThingTypeName   string            `json:"thingTypeName,omitempty"`
	Attributes      map[string]string `json:"attributes"`
	Version         int64             `json:"version"`
}

func attributesOut(t *iot.Thing) map[string]string {
	if t.Attributes == nil {
		return map[string]string{}
	}
	return t.Attributes
}

func (h *Handler) describeThing(c *call) (any, error) {
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	t, err := h.reg.DescribeThing(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return describeThingOutput{DefaultClientID: t.Name, ThingName: t.Name, ThingID: t.ID, ThingArn: t.ARN(),
		ThingTypeName: t.TypeName, Attributes: attributesOut(t), Version: t.Version}, nil
}

// tokenOptions reads maxResults and nextToken, the paging members of the
// thing calls; nextToken is the marker fleetca handed out.
func (c *call) tokenOptions() (registry.ListOptions, error) {
	return c.paging(50, "maxResults", "nextToken", "The token was not issued by this service")
}

type thingAttribute struct {
	ThingName     string            `json:"thingName"`
	ThingTypeName string            `json:"thingTypeName,omitempty"`
	ThingArn      string            `json:"thingArn"`
	Attributes    map[string]string `json:"attributes"`
	Version       int64             `json:"version"`
}

type listThingsOutput struct {
	Things    []thingAttribute `json:"things"`
	NextToken string           `json:"nextToken,omitempty"`
}

func (h *Handler) listThings(c *call) (any, error) {
	opts, err := c.tokenOptions()
	if err != nil {
		return nil, err
	}
	f := registry.ThingFilter{AttributeName: c.query.Get("attributeName"), AttributeValue: c.query.Get("attributeValue")}
	if f.AttributeName != "" && (len(f.AttributeName) > iot.MaxAttributeNameLength || !iot.ValidAttributeName(f.AttributeName)) {
		return nil, validation(f.AttributeName, "attributeName", `Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#-]+`)
	}
	if !iot.ValidAttributeValue(f.AttributeValue) {
		return nil, validation(f.AttributeValue, "attributeValue", `Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#=\[\]-]*`)
	}
	if f.TypeName, err = thingTypeName(c.query.Get("thingTypeName"), "thingTypeName"); err != nil {
		return nil, err
	}
	if f.ValuePrefix, err = c.boolQuery("usePrefixAttributeValue"); err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListThings(c.r.Context(), c.scope, f, opts)
	if err != nil {
		return nil, err
	}
	out := listThingsOutput{Things: make([]thingAttribute, len(list)), NextToken: next}
	for i := range list {
		t := &list[i]
		out.Things[i] = thingAttribute{ThingName: t.Name, ThingTypeName: t.TypeName, ThingArn: t.ARN(), Attributes: attributesOut(t), Version: t.Version}
	}
	return out, nil
}

type updateThingInput struct {
	ThingTypeName    string            `json:"thingTypeName"`
	AttributePayload *attributePayload `json:"attributePayload"`
	ExpectedVersion  *int64            `json:"expectedVersion"`
	RemoveThingType  bool              `json:"removeThingType"`
}

func (h *Handler) updateThing(c *call) (any, error) {
	var in updateThingInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	u := registry.ThingUpdate{RemoveType: in.RemoveThingType, ExpectedVersion: in.ExpectedVersion}
	if u.TypeName, err = thingTypeName(in.ThingTypeName, "thingTypeName"); err != nil {
		return nil, err
	}
	if in.AttributePayload != nil {
		if err := attributes(in.AttributePayload.Attributes, "attributePayload"); err != nil {
			return nil, err
		}
		u.Attributes, u.Merge = in.AttributePayload.Attributes, in.AttributePayload.Merge
		if u.Attributes == nil && !u.Merge {
			// An attribute payload without attributes clears them.
			u.Attributes = map[string]string{}
		}
	}
	return nil, h.reg.UpdateThing(c.r.Context(), c.scope, name, u)
}

func (h *Handler) deleteThing(c *call) (any, error) {
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	var expected *int64
	if c.query.Has("expectedVersion") {
		v := c.query.Get("expectedVersion")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, validation(v, "expectedVersion", "Member must be a number")
		}
		expected = &n
	}
	return nil, h.reg.DeleteThing(c.r.Context(), c.scope, name, expected)
}

// thingPrincipalType reads the query's thingPrincipalType: the attachments
// it selects, all when it is absent.
func (c *call) thingPrincipalType() (registry.Attachments, error) {
	if !c.query.Has("thingPrincipalType") {
		return registry.AnyAttachment, nil
	}
	switch v := c.query.Get("thingPrincipalType"); v {
	case "EXCLUSIVE_THING":
		return registry.ExclusiveOnly, nil
	case "NON_EXCLUSIVE_THING":
		return registry.NonExclusiveOnly, nil
	default:
		return 0, validation(v, "thingPrincipalType", "Member must satisfy enum value set: [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]")
	}
}

func principalType(exclusive bool) string {
	if exclusive {
		return "EXCLUSIVE_THING"
	}
	return "NON_EXCLUSIVE_THING"
}

func (h *Handler) attachThingPrincipal(c *call) (any, error) {
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	principal, err := c.principalHeader("x-amzn-principal", "principal")
	if err != nil {
		return nil, err
	}
	only, err := c.thingPrincipalType()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.AttachThingPrincipal(c.r.Context(), c.scope, name, principal, only == registry.ExclusiveOnly)
}

func (h *Handler) detachThingPrincipal(c *call) (any, error) {
	name, err := c.thingName()
	if err != nil {
		return nil, err
	}
	principal, err := c.principalHeader("x-amzn-principal", "principal")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DetachThingPrincipal(c.r.Context(), c.scope, name, principal)
}

type listThingPrincipalsOutput struct {
	Principals []string `json:"principals"`
	NextToken  string   `json:"nextToken,omitempty"`
}

type thingPrincipalObject struct {
	Principal          string `json:"principal"`
	ThingPrincipalType string `json:"thingPrincipalType"`
}

type listThingPrincipalsV2Output struct {
	ThingPrincipalObjects []thingPrincipalObject `json:"thingPrincipalObjects"`
	NextToken             string                 `json:"nextToken,omitempty"`
}

// attachmentListing reads what the principal listings share, their
// subject (key: the thing's name or the principal), paging and
// thingPrincipalType, and lists with list.
func (h *Handler) attachmentListing(c *call, key func() (string, error),
	list func(context.Context, iot.Scope, string, registry.Attachments, registry.ListOptions) ([]iot.ThingPrincipal, string, error),
) ([]iot.ThingPrincipal, string, error) {
	subject, err := key()
	if err != nil {
		return nil, "", err
	}
	opts, err := c.tokenOptions()
	if err != nil {
		return nil, "", err
	}
	only, err := c.thingPrincipalType()
	if err != nil {
		return nil, "", err
	}
	return list(c.r.Context(), c.scope, subject, only, opts)
}

// thingPrincipals lists a thing's principals, of one type if the query
// names one.
func (h *Handler) thingPrincipals(c *call) ([]iot.ThingPrincipal, string, error) {
	return h.attachmentListing(c, c.thingName, h.reg.ListThingPrincipals)
}

func (h *Handler) listThingPrincipals(c *call) (any, error) {
	list, next, err := h.thingPrincipals(c)
	if err != nil {
		return nil, err
	}
	out := listThingPrincipalsOutput{Principals: make([]string, len(list)), NextToken: next}
	for i, p := range list {
		out.Principals[i] = p.Principal
	}
	return out, nil
}

func (h *Handler) listThingPrincipalsV2(c *call) (any, error) {
	list, next, err := h.thingPrincipals(c)
	if err != nil {
		return nil, err
	}
	out := listThingPrincipalsV2Output{ThingPrincipalObjects: make([]thingPrincipalObject, len(list)), NextToken: next}
	for i, p := range list {
		out.ThingPrincipalObjects[i] = thingPrincipalObject{Principal: p.Principal, ThingPrincipalType: principalType(p.Exclusive)}
	}
	return out, nil
}

type listPrincipalThingsOutput struct {
	Things    []string `json:"things"`
	NextToken string   `json:"nextToken,omitempty"`
}

type principalThingObject struct {
	ThingName          string `json:"thingName"`
	ThingPrincipalType string `json:"thingPrincipalType"`
}

type listPrincipalThingsV2Output struct {
	PrincipalThingObjects []principalThingObject `json:"principalThingObjects"`
	NextToken             string                 `json:"nextToken,omitempty"`
}

// principalThings lists a principal's things, of one type if the query
// names one.
func (h *Handler) principalThings(c *call) ([]iot.ThingPrincipal, string, error) {
	principal := func() (string, error) { return c.principalHeader("x-amzn-principal", "principal") }
	return h.attachmentListing(c, principal, h.reg.ListPrincipalThings)
}

func (h *Handler) listPrincipalThings(c *call) (any, error) {
	list, next, err := h.principalThings(c)
	if err != nil {
		return nil, err
	}
	out := listPrincipalThingsOutput{Things: make([]string, len(list)), NextToken: next}
	for i, p := range list {
		out.Things[i] = p.ThingName
	}
	return out, nil
}

func (h *Handler) listPrincipalThingsV2(c *call) (any, error) {
	list, next, err := h.principalThings(c)
	if err != nil {
		return nil, err
	}
	out := listPrincipalThingsV2Output{PrincipalThingObjects: make([]principalThingObject, len(list)), NextToken: next}
	for i, p := range list {
		out.PrincipalThingObjects[i] = principalThingObject{ThingName: p.ThingName, ThingPrincipalType: principalType(p.Exclusive)}
	}
	return out, nil
}
