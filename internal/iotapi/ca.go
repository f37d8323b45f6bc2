package iotapi

import (
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/registry"
)

func (h *Handler) caOperations() []operation {
	return []operation{
		{"GetRegistrationCode", "GET /registrationcode", h.getRegistrationCode},
		{"DeleteRegistrationCode", "DELETE /registrationcode", h.deleteRegistrationCode},
		{"RegisterCACertificate", "POST /cacertificate", h.registerCACertificate},
		{"DescribeCACertificate", "GET /cacertificate/{caCertificateId}", h.describeCACertificate},
		{"ListCACertificates", "GET /cacertificates", h.listCACertificates},
		{"UpdateCACertificate", "PUT /cacertificate/{caCertificateId}", h.updateCACertificate},
		{"DeleteCACertificate", "DELETE /cacertificate/{caCertificateId}", h.deleteCACertificate},
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
	if !iot.ValidTemplateName(s) {
		return validation(s, member, "Member must satisfy regular expression pattern: ^[0-9A-Za-z_-]+$ and have length between 1 and 36")
	}
	return nil
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
