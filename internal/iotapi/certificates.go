package iotapi

import (
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/registry"
)

func (h *Handler) operations() []operation {
	ops := []operation{
		{"CreateKeysAndCertificate", "POST /keys-and-certificate", h.createKeysAndCertificate},
		{"CreateCertificateFromCsr", "POST /certificates", h.createCertificateFromCsr},
		{"ListCertificates", "GET /certificates", h.listCertificates},
		{"DescribeCertificate", "GET /certificates/{certificateId}", h.describeCertificate},
		{"UpdateCertificate", "PUT /certificates/{certificateId}", h.updateCertificate},
		{"DeleteCertificate", "DELETE /certificates/{certificateId}", h.deleteCertificate},
	}
	ops = append(ops, h.caOperations()...)
	ops = append(ops, h.registerOperations()...)
	ops = append(ops, h.tagOperations()...)
	ops = append(ops, h.endpointOperations()...)
	ops = append(ops, h.policyOperations()...)
	ops = append(ops, h.thingOperations()...)
	ops = append(ops, h.thingTypeOperations()...)
	ops = append(ops, h.templateOperations()...)
	return append(ops, h.providerOperations()...)
}

type createKeysAndCertificateOutput struct {
	CertificateArn string  `json:"certificateArn"`
	CertificateID  string  `json:"certificateId"`
	CertificatePem string  `json:"certificatePem"`
	KeyPair        keyPair `json:"keyPair"`
}

func (h *Handler) createKeysAndCertificate(c *call) (any, error) {
	active, err := c.boolQuery("setAsActive")
	if err != nil {
		return nil, err
	}
	created, err := h.reg.CreateKeysAndCertificate(c.r.Context(), c.scope, active)
	if err != nil {
		return nil, err
	}
	cert := created.Certificate
	return createKeysAndCertificateOutput{
		CertificateArn: cert.ARN(),
		CertificateID:  cert.ID,
		CertificatePem: pki.EncodeCertificate(cert.DER),
		KeyPair:        keyPair{PublicKey: created.PublicKeyPEM, PrivateKey: created.PrivateKeyPEM},
	}, nil
}

// maxCSRLength is the model's bound on certificateSigningRequest.
const maxCSRLength = 4096

type createCertificateFromCsrInput struct {
	CertificateSigningRequest *string `json:"certificateSigningRequest"`
}

type createCertificateFromCsrOutput struct {
	CertificateArn string `json:"certificateArn"`
	CertificateID  string `json:"certificateId"`
	CertificatePem string `json:"certificatePem"`
}

func (h *Handler) createCertificateFromCsr(c *call) (any, error) {
	active, err := c.boolQuery("setAsActive")
	if err != nil {
		return nil, err
	}
	var in createCertificateFromCsrInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.CertificateSigningRequest == nil {
		return nil, validation("null", "certificateSigningRequest", "Member must not be null")
	}
	csr := *in.CertificateSigningRequest
	if n := len([]rune(csr)); n < 1 || n > maxCSRLength {
		return nil, validation(csr, "certificateSigningRequest", "Member must have length between 1 and 4096")
	}
	created, err := h.reg.CreateCertificateFromCSR(c.r.Context(), c.scope, csr, active)
	if err != nil {
		return nil, err
	}
	cert := created.Certificate
	return createCertificateFromCsrOutput{
		CertificateArn: cert.ARN(),
		CertificateID:  cert.ID,
		CertificatePem: pki.EncodeCertificate(cert.DER),
	}, nil
}

type describeCertificateOutput struct {
	CertificateDescription certificateDescription `json:"certificateDescription"`
}

func (h *Handler) describeCertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("certificateId")
	if err != nil {
		return nil, err
	}
	cert, err := h.reg.DescribeCertificate(c.r.Context(), c.scope, id)
	if err != nil {
		return nil, err
	}
	return describeCertificateOutput{CertificateDescription: describeCertificate(cert)}, nil
}

type listCertificatesOutput struct {
	Certificates []certificateSummary `json:"certificates"`
	NextMarker   string               `json:"nextMarker,omitempty"`
}

func (h *Handler) listCertificates(c *call) (any, error) {
	opts, err := c.listOptions()
	if err != nil {
		return nil, err
	}
	list, err := h.reg.ListCertificates(c.r.Context(), c.scope, opts)
	if err != nil {
		return nil, err
	}
	return encodeCertificateList(list), nil
}

func encodeCertificateList(list *registry.CertificateList) listCertificatesOutput {
	out := listCertificatesOutput{Certificates: make([]certificateSummary, len(list.Certificates)), NextMarker: list.NextMarker}
	for i := range list.Certificates {
		cert := &list.Certificates[i]
		out.Certificates[i] = certificateSummary{
			CertificateArn:  cert.ARN(),
			CertificateID:   cert.ID,
			Status:          cert.Status,
			CertificateMode: cert.Mode,
			CreationDate:    epoch(cert.CreatedAt),
		}
	}
	return out
}

func (h *Handler) updateCertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("certificateId")
	if err != nil {
		return nil, err
	}
	raw := c.query.Get("newStatus")
	if !c.query.Has("newStatus") {
		return nil, validation("null", "newStatus", "Member must not be null")
	}
	status, ok := iot.ParseStatus(raw)
	if !ok {
		return nil, validation(raw, "newStatus", "Member must satisfy enum value set: [ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, PENDING_ACTIVATION]")
	}
	return nil, h.reg.UpdateCertificateStatus(c.r.Context(), c.scope, id, status)
}

func (h *Handler) deleteCertificate(c *call) (any, error) {
	id, err := c.certificateIDLabel("certificateId")
	if err != nil {
		return nil, err
	}
	force, err := c.boolQuery("forceDelete")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteCertificate(c.r.Context(), c.scope, id, force)
}
