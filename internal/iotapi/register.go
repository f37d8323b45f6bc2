package iotapi

import (
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

// registerOperations register device certificates made by another CA and
// list them by CA.
func (h *Handler) registerOperations() []operation {
	return []operation{
		{"RegisterCertificate", "POST /certificate/register", h.registerCertificate},
		{"RegisterCertificateWithoutCA", "POST /certificate/register-no-ca", h.registerCertificateWithoutCA},
		{"ListCertificatesByCA", "GET /certificates-by-ca/{caCertificateId}", h.listCertificatesByCA},
	}
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
