package iotapi

import (
	"strconv"

	"github.com/fleetca/fleetca/internal/iot"
)

func (h *Handler) policyOperations() []operation {
	return []operation{
		{"CreatePolicy", "POST /policies/{policyName}", h.createPolicy},
		{"GetPolicy", "GET /policies/{policyName}", h.getPolicy},
		{"ListPolicies", "GET /policies", h.listPolicies},
		{"ListPolicies", "GET /policies/{$}", h.listPolicies},
		{"DeletePolicy", "DELETE /policies/{policyName}", h.deletePolicy},
		{"CreatePolicyVersion", "POST /policies/{policyName}/version", h.createPolicyVersion},
		{"ListPolicyVersions", "GET /policies/{policyName}/version", h.listPolicyVersions},
		{"GetPolicyVersion", "GET /policies/{policyName}/version/{policyVersionId}", h.getPolicyVersion},
		{"SetDefaultPolicyVersion", "PATCH /policies/{policyName}/version/{policyVersionId}", h.setDefaultPolicyVersion},
		{"DeletePolicyVersion", "DELETE /policies/{policyName}/version/{policyVersionId}", h.deletePolicyVersion},
		{"AttachPolicy", "PUT /target-policies/{policyName}", h.attachPolicy},
		{"DetachPolicy", "POST /target-policies/{policyName}", h.detachPolicy},
		{"ListAttachedPolicies", "POST /attached-policies/{target}", h.listAttachedPolicies},
		{"ListTargetsForPolicy", "POST /policy-targets/{policyName}", h.listTargetsForPolicy},
		// The deprecated calls older SDKs and tools still make: the
		// principal (a certificate ARN) or policy travels in a header.
		{"AttachPrincipalPolicy", "PUT /principal-policies/{policyName}", h.attachPrincipalPolicy},
		{"DetachPrincipalPolicy", "DELETE /principal-policies/{policyName}", h.detachPrincipalPolicy},
		{"ListPrincipalPolicies", "GET /principal-policies", h.listPrincipalPolicies},
		{"ListPolicyPrincipals", "GET /policy-principals", h.listPolicyPrincipals},
	}
}

// policyName applies the model's PolicyName: 1 to 128 of [\w+=,.@-].
func (c *call) policyName() (string, error) {
	name := c.r.PathValue("policyName")
	if n := len(name); n < 1 || n > 128 {
		return "", validation(name, "policyName", "Member must have length between 1 and 128")
	}
	if !iot.ValidPolicyName(name) {
		return "", validation(name, "policyName", `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	return name, nil
}

// policyVersionID applies the model's PolicyVersionId: [0-9]+.
func (c *call) policyVersionID() (string, error) {
	id := c.r.PathValue("policyVersionId")
	if id == "" || len(id) > 19 {
		return "", validation(id, "policyVersionId", "Member must satisfy regular expression pattern: [0-9]+")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return "", validation(id, "policyVersionId", "Member must satisfy regular expression pattern: [0-9]+")
		}
	}
	return id, nil
}

// policyDocument requires the document member; the registry checks what
// it says.
func policyDocument(doc *string) (string, error) {
	if doc == nil {
		return "", validation("null", "policyDocument", "Member must not be null")
	}
	if len(*doc) > 404600 {
		return "", validation("...", "policyDocument", "Member must have length less than or equal to 404600")
	}
	return *doc, nil
}

type createPolicyInput struct {
	PolicyDocument *string `json:"policyDocument"`
	Tags           []tag   `json:"tags"`
}

type createPolicyOutput struct {
	PolicyName      string `json:"policyName"`
	PolicyArn       string `json:"policyArn"`
	PolicyDocument  string `json:"policyDocument"`
	PolicyVersionID string `json:"policyVersionId"`
}

func (h *Handler) createPolicy(c *call) (any, error) {
	var in createPolicyInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	doc, err := policyDocument(in.PolicyDocument)
	if err != nil {
		return nil, err
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	p, err := h.reg.CreatePolicy(c.r.Context(), c.scope, name, doc, tags)
	if err != nil {
		return nil, err
	}
	return createPolicyOutput{PolicyName: p.Name, PolicyArn: p.ARN(), PolicyDocument: p.DefaultDocument,
		PolicyVersionID: strconv.FormatInt(p.DefaultVersionID, 10)}, nil
}

type getPolicyOutput struct {
	PolicyName       string `json:"policyName"`
	PolicyArn        string `json:"policyArn"`
	PolicyDocument   string `json:"policyDocument"`
	DefaultVersionID string `json:"defaultVersionId"`
	CreationDate     epoch  `json:"creationDate"`
	LastModifiedDate epoch  `json:"lastModifiedDate"`
	GenerationID     string `json:"generationId"`
}

func (h *Handler) getPolicy(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	p, err := h.reg.GetPolicy(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return getPolicyOutput{PolicyName: p.Name, PolicyArn: p.ARN(), PolicyDocument: p.DefaultDocument,
		DefaultVersionID: strconv.FormatInt(p.DefaultVersionID, 10), CreationDate: epoch(p.CreatedAt),
		LastModifiedDate: epoch(p.LastModifiedAt), GenerationID: p.GenerationID}, nil
}

type policyRef struct {
	PolicyName string `json:"policyName"`
	PolicyArn  string `json:"policyArn"`
}

type listPoliciesOutput struct {
	Policies   []policyRef `json:"policies"`
	NextMarker string      `json:"nextMarker,omitempty"`
}

func encodePolicyList(list []iot.Policy, next string) listPoliciesOutput {
	out := listPoliciesOutput{Policies: make([]policyRef, len(list)), NextMarker: next}
	for i := range list {
		out.Policies[i] = policyRef{PolicyName: list[i].Name, PolicyArn: list[i].ARN()}
	}
	return out
}

func (h *Handler) listPolicies(c *call) (any, error) {
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListPolicies(c.r.Context(), c.scope, opts)
	if err != nil {
		return nil, err
	}
	return encodePolicyList(list, next), nil
}

func (h *Handler) deletePolicy(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeletePolicy(c.r.Context(), c.scope, name)
}

type createPolicyVersionInput struct {
	PolicyDocument *string `json:"policyDocument"`
}

type createPolicyVersionOutput struct {
	PolicyArn        string `json:"policyArn"`
	PolicyDocument   string `json:"policyDocument"`
	PolicyVersionID  string `json:"policyVersionId"`
	IsDefaultVersion bool   `json:"isDefaultVersion"`
}

func (h *Handler) createPolicyVersion(c *call) (any, error) {
	var in createPolicyVersionInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	doc, err := policyDocument(in.PolicyDocument)
	if err != nil {
		return nil, err
	}
	setAsDefault, err := c.boolQuery("setAsDefault")
	if err != nil {
		return nil, err
	}
	v, err := h.reg.CreatePolicyVersion(c.r.Context(), c.scope, name, doc, setAsDefault)
	if err != nil {
		return nil, err
	}
	return createPolicyVersionOutput{PolicyArn: c.scope.ARN(iot.TypePolicy, name), PolicyDocument: v.Document,
		PolicyVersionID: strconv.FormatInt(v.ID, 10), IsDefaultVersion: v.IsDefault}, nil
}

type getPolicyVersionOutput struct {
	PolicyArn        string `json:"policyArn"`
	PolicyName       string `json:"policyName"`
	PolicyDocument   string `json:"policyDocument"`
	PolicyVersionID  string `json:"policyVersionId"`
	IsDefaultVersion bool   `json:"isDefaultVersion"`
	CreationDate     epoch  `json:"creationDate"`
	LastModifiedDate epoch  `json:"lastModifiedDate"`
	GenerationID     string `json:"generationId"`
}

func (h *Handler) getPolicyVersion(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	id, err := c.policyVersionID()
	if err != nil {
		return nil, err
	}
	v, p, err := h.reg.GetPolicyVersion(c.r.Context(), c.scope, name, id)
	if err != nil {
		return nil, err
	}
	return getPolicyVersionOutput{PolicyArn: p.ARN(), PolicyName: name, PolicyDocument: v.Document,
		PolicyVersionID: strconv.FormatInt(v.ID, 10), IsDefaultVersion: v.IsDefault,
		CreationDate: epoch(v.CreatedAt), LastModifiedDate: epoch(v.CreatedAt), GenerationID: p.GenerationID}, nil
}

type policyVersionSummary struct {
	VersionID        string `json:"versionId"`
	IsDefaultVersion bool   `json:"isDefaultVersion"`
	CreateDate       epoch  `json:"createDate"`
}

type listPolicyVersionsOutput struct {
	PolicyVersions []policyVersionSummary `json:"policyVersions"`
}

func (h *Handler) listPolicyVersions(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	list, err := h.reg.ListPolicyVersions(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	out := listPolicyVersionsOutput{PolicyVersions: make([]policyVersionSummary, len(list))}
	for i, v := range list {
		out.PolicyVersions[i] = policyVersionSummary{VersionID: strconv.FormatInt(v.ID, 10), IsDefaultVersion: v.IsDefault, CreateDate: epoch(v.CreatedAt)}
	}
	return out, nil
}

func (h *Handler) setDefaultPolicyVersion(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	id, err := c.policyVersionID()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.SetDefaultPolicyVersion(c.r.Context(), c.scope, name, id)
}

func (h *Handler) deletePolicyVersion(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	id, err := c.policyVersionID()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeletePolicyVersion(c.r.Context(), c.scope, name, id)
}

type policyTargetInput struct {
	Target *string `json:"target"`
}

// target requires the body's target; the registry reads the ARN.
func target(t *string) (string, error) {
	if t == nil {
		return "", validation("null", "target", "Member must not be null")
	}
	if len(*t) > 2048 {
		return "", validation("...", "target", "Member must have length less than or equal to 2048")
	}
	return *t, nil
}

// policyAndTarget reads AttachPolicy's and DetachPolicy's members: the
// policy in the path, the target in the body.
func (c *call) policyAndTarget() (name, t string, err error) {
	var in policyTargetInput
	if err := c.decodeBody(&in); err != nil {
		return "", "", err
	}
	if name, err = c.policyName(); err != nil {
		return "", "", err
	}
	t, err = target(in.Target)
	return name, t, err
}

func (h *Handler) attachPolicy(c *call) (any, error) {
	name, t, err := c.policyAndTarget()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.AttachPolicy(c.r.Context(), c.scope, name, t)
}

func (h *Handler) detachPolicy(c *call) (any, error) {
	name, t, err := c.policyAndTarget()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DetachPolicy(c.r.Context(), c.scope, name, t)
}

func (h *Handler) listAttachedPolicies(c *call) (any, error) {
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	if _, err := c.boolQuery("recursive"); err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListAttachedPolicies(c.r.Context(), c.scope, c.r.PathValue("target"), opts)
	if err != nil {
		return nil, err
	}
	return encodePolicyList(list, next), nil
}

type listTargetsOutput struct {
	Targets    []string `json:"targets"`
	NextMarker string   `json:"nextMarker,omitempty"`
}

func (h *Handler) listTargetsForPolicy(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListTargetsForPolicy(c.r.Context(), c.scope, name, opts)
	if err != nil {
		return nil, err
	}
	return listTargetsOutput{Targets: append([]string{}, list...), NextMarker: next}, nil
}

// principalHeader reads the header the deprecated calls name their
// principal or policy in.
func (c *call) principalHeader(name, member string) (string, error) {
	v := c.r.Header.Get(name)
	if v == "" {
		return "", validation("null", member, "Member must not be null")
	}
	return v, nil
}

func (h *Handler) attachPrincipalPolicy(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	principal, err := c.principalHeader("x-amzn-iot-principal", "principal")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.AttachPolicy(c.r.Context(), c.scope, name, principal)
}

func (h *Handler) detachPrincipalPolicy(c *call) (any, error) {
	name, err := c.policyName()
	if err != nil {
		return nil, err
	}
	principal, err := c.principalHeader("x-amzn-iot-principal", "principal")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DetachPolicy(c.r.Context(), c.scope, name, principal)
}

func (h *Handler) listPrincipalPolicies(c *call) (any, error) {
	principal, err := c.principalHeader("x-amzn-iot-principal", "principal")
	if err != nil {
		return nil, err
	}
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListAttachedPolicies(c.r.Context(), c.scope, principal, opts)
	if err != nil {
		return nil, err
	}
	return encodePolicyList(list, next), nil
}

type listPolicyPrincipalsOutput struct {
	Principals []string `json:"principals"`
	NextMarker string   `json:"nextMarker,omitempty"`
}

func (h *Handler) listPolicyPrincipals(c *call) (any, error) {
	name, err := c.principalHeader("x-amzn-iot-policy", "policyName")
	if err != nil {
		return nil, err
	}
	if !iot.ValidPolicyName(name) {
		return nil, validation(name, "policyName", `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListTargetsForPolicy(c.r.Context(), c.scope, name, opts)
	if err != nil {
		return nil, err
	}
	return listPolicyPrincipalsOutput{Principals: append([]string{}, list...), NextMarker: next}, nil
}
