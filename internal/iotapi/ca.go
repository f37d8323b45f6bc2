package iotapi

import (
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/registry"
)

// maxPEMLength is the model's bound on every certificate PEM member.
const maxPEMLength = 65536

func (h *Handler) caOperations() []operation {
	return []operation{
		{"GetRegistrationCode", "GET /registrationcode", h.getRegistrationCode},
		{"DeleteRegistrationCode", "DELETE /registrationcode", h.deleteRegistrationCode},
		{"RegisterCACertificate", "POST /cacertificate", h.registerCACertificate},
		{"DescribeCACertificate", "GET /cacertificate/{caCertificateId}", h.describeCACertificate},
		{"ListCACertificates", "GET /cacertificates", h.listCACertificates},
		{"UpdateCACertificate", "PUT /cacertificate/{caCertificateId}", h.updateCACertificate},
		{"DeleteCACertificate", "DELETE /cacertificate/{caCertificateId}", h.deleteCACertificate},
		{"RegisterCertificate", "POST /certificate/register", h.registerCertificate},
		{"RegisterCertificateWithoutCA", "POST /certificate/register-no-ca", h.registerCertificateWithoutCA},
		{"ListCertificatesByCA", "GET /certificates-by-ca/{caCertificateId}", h.listCertificatesByCA},
		{"TagResource", "POST /tags", h.tagResource},
		{"UntagResource", "POST /untag", h.untagResource},
		{"ListTagsForResource", "GET /tags", h.listTagsForResource},
	}
}

type getRegistrationCodeOutput struct {
	RegistrationCode string `json:"registrationCode"`
}

func (h *Handler) getRegistrationCode(c *call) (any, error) {
	code, err := h.reg.GetRegistrationCode(c.r.Context(), c.scope)
	if err != nil {
		return nil, err
	}
	return getRegistrationCodeOutput{RegistrationCode: code}, nil
}

func (h *Handler) deleteRegistrationCode(c *call) (any, error) {
	return nil, h.reg.DeleteRegistrationCode(c.r.Context(), c.scope)
}

// registrationConfig is the wire form of iot.RegistrationConfig.
type registrationConfig struct {
	TemplateBody *string `json:"templateBody,omitempty"`
	RoleArn      *string `json:"roleArn,omitempty"`
	TemplateName *string `json:"templateName,omitempty"`
}

func (r *registrationConfig) decode() (iot.RegistrationConfig, error) {
	var out iot.RegistrationConfig
	if r.TemplateBody != nil {
		if len(*r.TemplateBody) > 10240 {
			return out, validation(*r.TemplateBody, "registrationConfig.templateBody", "Member must have length less than or equal to 10240")
		}
		out.TemplateBody = *r.TemplateBody
	}
	if r.RoleArn != nil {
		if n := len(*r.RoleArn); n < 20 || n > 2048 {
			return out, validation(*r.RoleArn, "registrationConfig.roleArn", "Member must have length between 20 and 2048")
		}
		out.RoleARN = *r.RoleArn
	}
	if r.TemplateName != nil {
		if err := checkTemplateName(*r.TemplateName, "registrationConfig.templateName"); err != nil {
			return out, err
		}
		out.TemplateName = *r.TemplateName
	}
	return out, nil
}

func encodeRegistrationConfig(rc iot.RegistrationConfig) *registrationConfig {
	if rc.IsZero() {
		return nil
	}
	var out registrationConfig
	if rc.TemplateBody != "" {
		out.TemplateBody = &rc.TemplateBody
	}
	if rc.RoleARN != "" {
		out.RoleArn = &rc.RoleARN
	}
	if rc.TemplateName != "" {
		out.TemplateName = &rc.TemplateName
	}
	return &out
}

// checkTemplateName applies the model's 1-36 characters of [0-9A-Za-z_-].
func checkTemplateName(s, member string) error {
	ok := len(s) >= 1 && len(s) <= 36
	for i := 0; ok && i < len(s); i++ {
		ch := s[i]
		ok = '0' <= ch && ch <= '9' || 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || ch == '_' || ch == '-'
	}
	if !ok {
		return validation(s, member, "Member must satisfy regular expression pattern: ^[0-9A-Za-z_-]+$ and have length between 1 and 36")
	}
	return nil
}

// tag is the wire form of iot.Tag; its members are PascalCase in the model.
type tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

func decodeTags(in []tag, member string) ([]iot.Tag, error) {
	out := make([]iot.Tag, 0, len(in))
	for _, t := range in {
		if t.Key == nil {
			return nil, validation("null", member+".member.Key", "Member must not be null")
		}
		v := ""
		if t.Value != nil {
			v = *t.Value
		}
		out = append(out, iot.Tag{Key: *t.Key, Value: v})
	}
	return out, nil
}

// pemMember checks a required or optional PEM member's length.
func pemMember(p *string, member string, required bool) (string, error) {
	if p == nil {
		if required {
			return "", validation("null", member, "Member must not be null")
		}
		return "", nil
	}
	if n := len(*p); n < 1 || n > maxPEMLength {
		return "", validation(*p, member, "Member must have length between 1 and 65536")
	}
	return *p, nil
}

type registerCACertificateInput struct {
	CACertificate           *string             `json:"caCertificate"`
	VerificationCertificate *string             `json:"verificationCertificate"`
	RegistrationConfig      *registrationConfig `json:"registrationConfig"`
	Tags                    []tag               `json:"tags"`
	CertificateMode         *string             `json:"certificateMode"`
}

type certificateRef struct {
	CertificateArn string `json:"certificateArn"`
	CertificateID  string `json:"certificateId"`
}

func (h *Handler) registerCACertificate(c *call) (any, error) {
	var in registerCACertificateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	var req registry.RegisterCAInput
	var err error
	if req.SetAsActive, err = c.boolQuery("setAsActive"); err != nil {
		return nil, err
	}
	if req.AllowAutoRegistration, err = c.boolQuery("allowAutoRegistration"); err != nil {
		return nil, err
	}
	if req.CACertificatePEM, err = pemMember(in.CACertificate, "caCertificate", true); err != nil {
		return nil, err
	}
	if req.VerificationCertificatePEM, err = pemMember(in.VerificationCertificate, "verificationCertificate", false); err != nil {
		return nil, err
	}
	if in.CertificateMode != nil {
		switch m := iot.Mode(*in.CertificateMode); m {
		case iot.ModeDefault, iot.ModeSNIOnly:
			req.Mode = m
		default:
			return nil, validation(*in.CertificateMode, "certificateMode", "Member must satisfy enum value set: [DEFAULT, SNI_ONLY]")
		}
	}
	if in.RegistrationConfig != nil {
		if req.RegistrationConfig, err = in.RegistrationConfig.decode(); err != nil {
			return nil, err
		}
	}
	if req.Tags, err = decodeTags(in.Tags, "tags"); err != nil {
		return nil, err
	}
	ca, err := h.reg.RegisterCACertificate(c.r.Context(), c.scope, req)
	if err != nil {
		return nil, err
	}
	return certificateRef{CertificateArn: ca.ARN(), CertificateID: ca.ID}, nil
}

type caCertificateDescription struct {
	CertificateArn         string               `json:"certificateArn"`
	CertificateID          string               `json:"certificateId"`
	Status                 iot.CAStatus         `json:"status"`
	CertificatePem         string               `json:"certificatePem"`
	OwnedBy                string               `json:"ownedBy"`
	CreationDate           epoch                `json:"creationDate"`
	AutoRegistrationStatus iot.AutoRegistration `json:"autoRegistrationStatus"`
	LastModifiedDate       epoch                `json:"lastModifiedDate"`
	CustomerVersion        int64                `json:"customerVersion"`
	GenerationID           string               `json:"generationId"`
	Validity               validity             `json:"validity"`
	CertificateMode        iot.Mode             `json:"certificateMode"`
}

type describeCACertificateOutput struct {
	CertificateDescription caCertificateDescription `json:"certificateDescription"`
	RegistrationConfig     *registrationConfig      `json:"registrationConfig,omitempty"`
}

func (h *Handler) describeCACertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("caCertificateId")
	if err != nil {
		return nil, err
	}
	ca, err := h.reg.DescribeCACertificate(c.r.Context(), c.scope, id)
	if err != nil {
		return nil, err
	}
	return describeCACertificateOutput{
		CertificateDescription: caCertificateDescription{
			CertificateArn:         ca.ARN(),
			CertificateID:          ca.ID,
			Status:                 ca.Status,
			CertificatePem:         pki.EncodeCertificate(ca.DER),
			OwnedBy:                ca.OwnedBy,
			CreationDate:           epoch(ca.CreatedAt),
			AutoRegistrationStatus: ca.AutoRegistration,
			LastModifiedDate:       epoch(ca.LastModifiedAt),
			CustomerVersion:        ca.CustomerVersion,
			GenerationID:           ca.GenerationID,
			Validity:               validity{NotBefore: epoch(ca.NotBefore), NotAfter: epoch(ca.NotAfter)},
			CertificateMode:        ca.Mode,
		},
		RegistrationConfig: encodeRegistrationConfig(ca.RegistrationConfig),
	}, nil
}

type caCertificateSummary struct {
	CertificateArn string       `json:"certificateArn"`
	CertificateID  string       `json:"certificateId"`
	Status         iot.CAStatus `json:"status"`
	CreationDate   epoch        `json:"creationDate"`
}

type listCACertificatesOutput struct {
	Certificates []caCertificateSummary `json:"certificates"`
	NextMarker   string                 `json:"nextMarker,omitempty"`
}

func (h *Handler) listCACertificates(c *call) (any, error) {
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	template := ""
	if c.query.Has("templateName") {
		template = c.query.Get("templateName")
		if err := checkTemplateName(template, "templateName"); err != nil {
			return nil, err
		}
	}
	list, err := h.reg.ListCACertificates(c.r.Context(), c.scope, opts, template)
	if err != nil {
		return nil, err
	}
	out := listCACertificatesOutput{Certificates: make([]caCertificateSummary, len(list.CACertificates)), NextMarker: list.NextMarker}
	for i := range list.CACertificates {
		ca := &list.CACertificates[i]
		out.Certificates[i] = caCertificateSummary{CertificateArn: ca.ARN(), CertificateID: ca.ID, Status: ca.Status, CreationDate: epoch(ca.CreatedAt)}
	}
	return out, nil
}

type updateCACertificateInput struct {
	RegistrationConfig     *registrationConfig `json:"registrationConfig"`
	RemoveAutoRegistration *bool               `json:"removeAutoRegistration"`
}

func (h *Handler) updateCACertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("caCertificateId")
	if err != nil {
		return nil, err
	}
	var req registry.UpdateCAInput
	if c.query.Has("newStatus") {
		st := iot.CAStatus(c.query.Get("newStatus"))
		if st != iot.CAStatusActive && st != iot.CAStatusInactive {
			return nil, validation(string(st), "newStatus", "Member must satisfy enum value set: [ACTIVE, INACTIVE]")
		}
		req.NewStatus = &st
	}
	if c.query.Has("newAutoRegistrationStatus") {
		ar := iot.AutoRegistration(c.query.Get("newAutoRegistrationStatus"))
		if ar != iot.AutoRegistrationEnable && ar != iot.AutoRegistrationDisable {
			return nil, validation(string(ar), "newAutoRegistrationStatus", "Member must satisfy enum value set: [ENABLE, DISABLE]")
		}
		req.NewAutoRegistration = &ar
	}
	var in updateCACertificateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.RegistrationConfig != nil {
		rc, err := in.RegistrationConfig.decode()
		if err != nil {
			return nil, err
		}
		req.RegistrationConfig = &rc
	}
	req.RemoveAutoRegistration = in.RemoveAutoRegistration != nil && *in.RemoveAutoRegistration
	return nil, h.reg.UpdateCACertificate(c.r.Context(), c.scope, id, req)
}

func (h *Handler) deleteCACertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("caCertificateId")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteCACertificate(c.r.Context(), c.scope, id)
}

type registerCertificateInput struct {
	CertificatePem   *string `json:"certificatePem"`
	CACertificatePem *string `json:"caCertificatePem"`
	Status           *string `json:"status"`
}

// status reads the optional status member.
func (in *registerCertificateInput) status() (iot.Status, error) {
	if in.Status == nil {
		return "", nil
	}
	st, ok := iot.ParseStatus(*in.Status)
	if !ok {
		return "", validation(*in.Status, "status", "Member must satisfy enum value set: [ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, PENDING_ACTIVATION]")
	}
	return st, nil
}

func (h *Handler) registerCertificate(c *call) (any, error) {
	var in registerCertificateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	var req registry.RegisterCertificateInput
	var err error
	if req.SetAsActive, err = c.boolQuery("setAsActive"); err != nil {
		return nil, err
	}
	if req.CertificatePEM, err = pemMember(in.CertificatePem, "certificatePem", true); err != nil {
		return nil, err
	}
	if req.CACertificatePEM, err = pemMember(in.CACertificatePem, "caCertificatePem", false); err != nil {
		return nil, err
	}
	if req.Status, err = in.status(); err != nil {
		return nil, err
	}
	cert, err := h.reg.RegisterCertificate(c.r.Context(), c.scope, req)
	if err != nil {
		return nil, err
	}
	return certificateRef{CertificateArn: cert.ARN(), CertificateID: cert.ID}, nil
}

func (h *Handler) registerCertificateWithoutCA(c *call) (any, error) {
	var in registerCertificateInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	certPEM, err := pemMember(in.CertificatePem, "certificatePem", true)
	if err != nil {
		return nil, err
	}
	st, err := in.status()
	if err != nil {
		return nil, err
	}
	cert, err := h.reg.RegisterCertificateWithoutCA(c.r.Context(), c.scope, certPEM, st)
	if err != nil {
		return nil, err
	}
	return certificateRef{CertificateArn: cert.ARN(), CertificateID: cert.ID}, nil
}

func (h *Handler) listCertificatesByCA(c *call) (any, error) {
	caID, err := c.certificateIDLabel("caCertificateId")
	if err != nil {
		return nil, err
	}
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, err := h.reg.ListCertificatesByCA(c.r.Context(), c.scope, caID, opts)
	if err != nil {
		return nil, err
	}
	return encodeCertificateList(list), nil
}

type tagResourceInput struct {
	ResourceArn *string `json:"resourceArn"`
	Tags        []tag   `json:"tags"`
}

func (h *Handler) tagResource(c *call) (any, error) {
	var in tagResourceInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.ResourceArn == nil {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	if in.Tags == nil {
		return nil, validation("null", "tags", "Member must not be null")
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.TagResource(c.r.Context(), c.scope, *in.ResourceArn, tags)
}

type untagResourceInput struct {
	ResourceArn *string  `json:"resourceArn"`
	TagKeys     []string `json:"tagKeys"`
}

func (h *Handler) untagResource(c *call) (any, error) {
	var in untagResourceInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.ResourceArn == nil {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	if in.TagKeys == nil {
		return nil, validation("null", "tagKeys", "Member must not be null")
	}
	for _, k := range in.TagKeys {
		if n := len([]rune(k)); n < 1 || n > 128 {
			return nil, validation(k, "tagKeys.member", "Member must have length between 1 and 128")
		}
	}
	return nil, h.reg.UntagResource(c.r.Context(), c.scope, *in.ResourceArn, in.TagKeys)
}

type listTagsForResourceOutput struct {
	Tags []tag `json:"tags"`
}

func (h *Handler) listTagsForResource(c *call) (any, error) {
	if !c.query.Has("resourceArn") {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	// Every tag fits in one answer (at most 50), so no nextToken is ever
	// handed out; one that is sent is not ours.
	if c.query.Get("nextToken") != "" {
		return nil, validation(c.query.Get("nextToken"), "nextToken", "The token was not issued by this service")
	}
	tags, err := h.reg.ListTagsForResource(c.r.Context(), c.scope, c.query.Get("resourceArn"))
	if err != nil {
		return nil, err
	}
	out := listTagsForResourceOutput{Tags: make([]tag, len(tags))}
	for i := range tags {
		out.Tags[i] = tag{Key: &tags[i].Key, Value: &tags[i].Value}
	}
	return out, nil
}
