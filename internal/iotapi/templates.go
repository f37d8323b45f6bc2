package iotapi

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/template"
)

func (h *Handler) templateOperations() []operation {
	return []operation{
		{"CreateProvisioningTemplate", "POST /provisioning-templates", h.createTemplate},
		{"CreateProvisioningTemplate", "POST /provisioning-templates/{$}", h.createTemplate},
		{"ListProvisioningTemplates", "GET /provisioning-templates", h.listTemplates},
		{"ListProvisioningTemplates", "GET /provisioning-templates/{$}", h.listTemplates},
		{"DescribeProvisioningTemplate", "GET /provisioning-templates/{templateName}", h.describeTemplate},
		{"UpdateProvisioningTemplate", "PATCH /provisioning-templates/{templateName}", h.updateTemplate},
		{"DeleteProvisioningTemplate", "DELETE /provisioning-templates/{templateName}", h.deleteTemplate},
		{"CreateProvisioningTemplateVersion", "POST /provisioning-templates/{templateName}/versions", h.createTemplateVersion},
		{"ListProvisioningTemplateVersions", "GET /provisioning-templates/{templateName}/versions", h.listTemplateVersions},
		{"DescribeProvisioningTemplateVersion", "GET /provisioning-templates/{templateName}/versions/{versionId}", h.describeTemplateVersion},
		{"DeleteProvisioningTemplateVersion", "DELETE /provisioning-templates/{templateName}/versions/{versionId}", h.deleteTemplateVersion},
		{"CreateProvisioningClaim", "POST /provisioning-templates/{templateName}/provisioning-claim", h.createProvisioningClaim},
		// RegisterThing shares its path's prefix with CreateThing's
		// POST /things/{thingName}.
		{"RegisterThing", "POST /things", h.registerThing},
		{"RegisterThing", "POST /things/{$}", h.registerThing},
	}
}

// templateNameLabel reads the templateName path label.
func (c *call) templateNameLabel() (string, error) {
	name := c.r.PathValue("templateName")
	return name, checkTemplateName(name, "templateName")
}

// versionIDLabel reads the versionId path label, an integer.
func (c *call) versionIDLabel() (int64, error) {
	v := c.r.PathValue("versionId")
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, validation(v, "versionId", "Member must be an integer")
	}
	return n, nil
}

// checkTemplateBody applies the model's TemplateBody: 0 to 10240
// characters (the registry says what is wrong with one that is there).
func checkTemplateBody(body *string) (string, error) {
	if body == nil {
		return "", validation("null", "templateBody", "Member must not be null")
	}
	if utf8.RuneCountInString(*body) > template.MaxBodyLength {
		return "", validation("...", "templateBody", "Member must have length less than or equal to 10240")
	}
	return *body, nil
}

// checkDescription applies the model's TemplateDescription: at most 500
// characters, none of them a control character.
func checkDescription(d string) error {
	if utf8.RuneCountInString(d) > 500 {
		return validation(d, "description", "Member must have length less than or equal to 500")
	}
	for _, r := range d {
		if unicode.Is(unicode.C, r) {
			return validation(d, "description", `Member must satisfy regular expression pattern: [^\p{C}]*`)
		}
	}
	return nil
}

// checkRoleARN applies the model's RoleArn: 20 to 2048 characters.
func checkRoleARN(arn string) error {
	if n := len(arn); n < 20 || n > 2048 {
		return validation(arn, "provisioningRoleArn", "Member must have length between 20 and 2048")
	}
	return nil
}

type hookWire struct {
	TargetArn      *string `json:"targetArn"`
	PayloadVersion string  `json:"payloadVersion,omitempty"`
}

// decodeHook applies the model's ProvisioningHook: a targetArn of at most
// 2048 characters and a payloadVersion of 10 to 32 of [0-9-].
func decodeHook(w *hookWire) (*iot.PreProvisioningHook, error) {
	if w == nil {
		return nil, nil
	}
	if w.TargetArn == nil {
		return nil, validation("null", "preProvisioningHook.targetArn", "Member must not be null")
	}
	if len(*w.TargetArn) > 2048 {
		return nil, validation(*w.TargetArn, "preProvisioningHook.targetArn", "Member must have length less than or equal to 2048")
	}
	if v := w.PayloadVersion; v != "" {
		ok := len(v) >= 10 && len(v) <= 32
		for i := 0; ok && i < len(v); i++ {
			ok = v[i] == '-' || '0' <= v[i] && v[i] <= '9'
		}
		if !ok {
			return nil, validation(v, "preProvisioningHook.payloadVersion", "Member must satisfy regular expression pattern: ^[0-9-]+$ and have length between 10 and 32")
		}
	}
	return &iot.PreProvisioningHook{TargetARN: *w.TargetArn, PayloadVersion: w.PayloadVersion}, nil
}

func encodeHook(h *iot.PreProvisioningHook) *hookWire {
	if h == nil {
		return nil
	}
	return &hookWire{TargetArn: &h.TargetARN, PayloadVersion: h.PayloadVersion}
}

type createTemplateInput struct {
	TemplateName        *string   `json:"templateName"`
	Description         string    `json:"description"`
	TemplateBody        *string   `json:"templateBody"`
	Enabled             bool      `json:"enabled"`
	ProvisioningRoleArn *string   `json:"provisioningRoleArn"`
	PreProvisioningHook *hookWire `json:"preProvisioningHook"`
	Tags                []tag     `json:"tags"`
	Type                string    `json:"type"`
}

type createTemplateOutput struct {
	TemplateArn      string `json:"templateArn"`
	TemplateName     string `json:"templateName"`
	DefaultVersionID int64  `json:"defaultVersionId"`
}

func (h *Handler) createTemplate(c *call) (any, error) {
	var in createTemplateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.TemplateName == nil {
		return nil, validation("null", "templateName", "Member must not be null")
	}
	if err := checkTemplateName(*in.TemplateName, "templateName"); err != nil {
		return nil, err
	}
	body, err := checkTemplateBody(in.TemplateBody)
	if err != nil {
		return nil, err
	}
	if in.ProvisioningRoleArn == nil {
		return nil, validation("null", "provisioningRoleArn", "Member must not be null")
	}
	if err := checkRoleARN(*in.ProvisioningRoleArn); err != nil {
		return nil, err
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, err
	}
	typ := iot.TemplateType(in.Type)
	switch typ {
	case "", iot.FleetProvisioning, iot.JITP:
	default:
		return nil, validation(in.Type, "type", "Member must satisfy enum value set: [FLEET_PROVISIONING, JITP]")
	}
	hook, err := decodeHook(in.PreProvisioningHook)
	if err != nil {
		return nil, err
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	t, err := h.reg.CreateProvisioningTemplate(c.r.Context(), c.scope, registry.TemplateInput{
		Name: *in.TemplateName, Description: in.Description, Body: body, Type: typ, Enabled: in.Enabled,
		ProvisioningRoleARN: *in.ProvisioningRoleArn, Hook: hook, Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	return createTemplateOutput{TemplateArn: t.ARN(), TemplateName: t.Name, DefaultVersionID: t.DefaultVersionID}, nil
}

type describeTemplateOutput struct {
	TemplateArn         string    `json:"templateArn"`
	TemplateName        string    `json:"templateName"`
	Description         string    `json:"description,omitempty"`
	CreationDate        epoch     `json:"creationDate"`
	LastModifiedDate    epoch     `json:"lastModifiedDate"`
	DefaultVersionID    int64     `json:"defaultVersionId"`
	TemplateBody        string    `json:"templateBody"`
	Enabled             bool      `json:"enabled"`
	ProvisioningRoleArn string    `json:"provisioningRoleArn"`
	PreProvisioningHook *hookWire `json:"preProvisioningHook,omitempty"`
	Type                string    `json:"type"`
}

func (h *Handler) describeTemplate(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	t, err := h.reg.DescribeProvisioningTemplate(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return describeTemplateOutput{TemplateArn: t.ARN(), TemplateName: t.Name, Description: t.Description,
		CreationDate: epoch(t.CreatedAt), LastModifiedDate: epoch(t.ModifiedAt), DefaultVersionID: t.DefaultVersionID,
		TemplateBody: t.Body, Enabled: t.Enabled, ProvisioningRoleArn: t.ProvisioningRoleARN,
		PreProvisioningHook: encodeHook(t.Hook), Type: string(t.Type)}, nil
}

type templateSummary struct {
	TemplateArn      string `json:"templateArn"`
	TemplateName     string `json:"templateName"`
	Description      string `json:"description,omitempty"`
	CreationDate     epoch  `json:"creationDate"`
	LastModifiedDate epoch  `json:"lastModifiedDate"`
	Enabled          bool   `json:"enabled"`
	Type             string `json:"type"`
}

type listTemplatesOutput struct {
	Templates []templateSummary `json:"templates"`
	NextToken string            `json:"nextToken,omitempty"`
}

func (h *Handler) listTemplates(c *call) (any, error) {
	opts, err := c.tokenOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListProvisioningTemplates(c.r.Context(), c.scope, opts)
	if err != nil {
		return nil, err
	}
	out := listTemplatesOutput{Templates: make([]templateSummary, len(list)), NextToken: next}
	for i, t := range list {
		out.Templates[i] = templateSummary{TemplateArn: t.ARN(), TemplateName: t.Name, Description: t.Description,
			CreationDate: epoch(t.CreatedAt), LastModifiedDate: epoch(t.ModifiedAt), Enabled: t.Enabled, Type: string(t.Type)}
	}
	return out, nil
}

type updateTemplateInput struct {
	Description               *string   `json:"description"`
	Enabled                   *bool     `json:"enabled"`
	DefaultVersionID          *int64    `json:"defaultVersionId"`
	ProvisioningRoleArn       *string   `json:"provisioningRoleArn"`
	PreProvisioningHook       *hookWire `json:"preProvisioningHook"`
	RemovePreProvisioningHook bool      `json:"removePreProvisioningHook"`
}

func (h *Handler) updateTemplate(c *call) (any, error) {
	var in updateTemplateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		if err := checkDescription(*in.Description); err != nil {
			return nil, err
		}
	}
	if in.ProvisioningRoleArn != nil {
		if err := checkRoleARN(*in.ProvisioningRoleArn); err != nil {
			return nil, err
		}
	}
	hook, err := decodeHook(in.PreProvisioningHook)
	if err != nil {
		return nil, err
	}
	return nil, h.reg.UpdateProvisioningTemplate(c.r.Context(), c.scope, name, registry.TemplateUpdate{
		Description: in.Description, Enabled: in.Enabled, DefaultVersionID: in.DefaultVersionID,
		ProvisioningRoleARN: in.ProvisioningRoleArn, Hook: hook, RemoveHook: in.RemovePreProvisioningHook,
	})
}

func (h *Handler) deleteTemplate(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteProvisioningTemplate(c.r.Context(), c.scope, name)
}

type createTemplateVersionInput struct {
	TemplateBody *string `json:"templateBody"`
}

type createTemplateVersionOutput struct {
	TemplateArn      string `json:"templateArn"`
	TemplateName     string `json:"templateName"`
	VersionID        int64  `json:"versionId"`
	IsDefaultVersion bool   `json:"isDefaultVersion"`
}

func (h *Handler) createTemplateVersion(c *call) (any, error) {
	var in createTemplateVersionInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	body, err := checkTemplateBody(in.TemplateBody)
	if err != nil {
		return nil, err
	}
	setAsDefault, err := c.boolQuery("setAsDefault")
	if err != nil {
		return nil, err
	}
	v, err := h.reg.CreateProvisioningTemplateVersion(c.r.Context(), c.scope, name, body, setAsDefault)
	if err != nil {
		return nil, err
	}
	return createTemplateVersionOutput{TemplateArn: c.scope.ARN(iot.TypeProvisioningTemplate, name), TemplateName: name,
		VersionID: v.ID, IsDefaultVersion: v.IsDefault}, nil
}

type templateVersionSummary struct {
	VersionID        int64 `json:"versionId"`
	CreationDate     epoch `json:"creationDate"`
	IsDefaultVersion bool  `json:"isDefaultVersion"`
}

type describeTemplateVersionOutput struct {
	VersionID        int64  `json:"versionId"`
	CreationDate     epoch  `json:"creationDate"`
	TemplateBody     string `json:"templateBody"`
	IsDefaultVersion bool   `json:"isDefaultVersion"`
}

func (h *Handler) describeTemplateVersion(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	id, err := c.versionIDLabel()
	if err != nil {
		return nil, err
	}
	v, err := h.reg.DescribeProvisioningTemplateVersion(c.r.Context(), c.scope, name, id)
	if err != nil {
		return nil, err
	}
	return describeTemplateVersionOutput{VersionID: v.ID, CreationDate: epoch(v.CreatedAt), TemplateBody: v.Body, IsDefaultVersion: v.IsDefault}, nil
}

type listTemplateVersionsOutput struct {
	Versions  []templateVersionSummary `json:"versions"`
	NextToken string                   `json:"nextToken,omitempty"`
}

func (h *Handler) listTemplateVersions(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	opts, err := c.tokenOptions()
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListProvisioningTemplateVersions(c.r.Context(), c.scope, name, opts)
	if err != nil {
		return nil, err
	}
	out := listTemplateVersionsOutput{Versions: make([]templateVersionSummary, len(list)), NextToken: next}
	for i, v := range list {
		out.Versions[i] = templateVersionSummary{VersionID: v.ID, CreationDate: epoch(v.CreatedAt), IsDefaultVersion: v.IsDefault}
	}
	return out, nil
}

func (h *Handler) deleteTemplateVersion(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	id, err := c.versionIDLabel()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteProvisioningTemplateVersion(c.r.Context(), c.scope, name, id)
}

type registerThingInput struct {
	TemplateBody *string           `json:"templateBody"`
	Parameters   map[string]string `json:"parameters"`
}

type registerThingOutput struct {
	CertificatePem string            `json:"certificatePem,omitempty"`
	ResourceArns   map[string]string `json:"resourceArns"`
}

func (h *Handler) registerThing(c *call) (any, error) {
	var in registerThingInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	body, err := checkTemplateBody(in.TemplateBody)
	if err != nil {
		return nil, err
	}
	r, err := h.reg.RegisterThing(c.r.Context(), c.scope, body, in.Parameters)
	if err != nil {
		return nil, err
	}
	return registerThingOutput{CertificatePem: r.CertificatePEM, ResourceArns: r.ResourceARNs}, nil
}

type createProvisioningClaimOutput struct {
	CertificateID  string  `json:"certificateId"`
	CertificatePem string  `json:"certificatePem"`
	KeyPair        keyPair `json:"keyPair"`
	Expiration     epoch   `json:"expiration"`
}

func (h *Handler) createProvisioningClaim(c *call) (any, error) {
	name, err := c.templateNameLabel()
	if err != nil {
		return nil, err
	}
	claim, err := h.reg.CreateProvisioningClaim(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return createProvisioningClaimOutput{CertificateID: claim.CertificateID, CertificatePem: claim.CertificatePEM,
		KeyPair: keyPair{PublicKey: claim.PublicKeyPEM, PrivateKey: claim.PrivateKeyPEM}, Expiration: epoch(claim.Expiration)}, nil
}
