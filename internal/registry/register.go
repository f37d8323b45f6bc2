package registry

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/store"
)

// RegisterCertificateInput is what RegisterCertificate needs.
type RegisterCertificateInput struct {
	CertificatePEM string
	// CACertificatePEM names the issuing CA; needed only when several of the
	// scope's CAs share the issuer's subject and key.
	CACertificatePEM string
	// Status is ACTIVE, INACTIVE or REVOKED; empty means SetAsActive decides.
	Status      iot.Status
	SetAsActive bool
}

// RegisterCertificate registers a device certificate signed by one of the
// scope's registered CA certificates, which must be ACTIVE. The certificate
// takes the CA's mode and remembers the CA.
func (s *Service) RegisterCertificate(ctx context.Context, scope iot.Scope, in RegisterCertificateInput) (*iot.Certificate, error) {
	status, err := registrationStatus(in.Status, in.SetAsActive)
	if err != nil {
		return nil, err
	}
	leaf, err := parseDeviceCertificate(in.CertificatePEM)
	if err != nil {
		return nil, err
	}
	ca, err := s.issuingCA(ctx, scope, leaf, in.CACertificatePEM)
	if err != nil {
		return nil, err
	}
	if ca.Status != iot.CAStatusActive {
		return nil, apierr.New(apierr.CertificateState, "The CA certificate %s that signed this certificate is not ACTIVE.", ca.ID)
	}
	return s.storeRegistered(ctx, scope, leaf, status, ca.Mode, ca.ID)
}

// RegisterCertificateWithoutCA registers any certificate, in SNI_ONLY mode and
// under no CA. The same certificate may be registered by several accounts.
func (s *Service) RegisterCertificateWithoutCA(ctx context.Context, scope iot.Scope, certPEM string, st iot.Status) (*iot.Certificate, error) {
	status, err := registrationStatus(st, false)
	if err != nil {
		return nil, err
	}
	leaf, err := parseDeviceCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	return s.storeRegistered(ctx, scope, leaf, status, iot.ModeSNIOnly, "")
}

func registrationStatus(st iot.Status, setAsActive bool) (iot.Status, error) {
	switch st {
	case "":
		return initialStatus(setAsActive), nil
	case iot.StatusActive, iot.StatusInactive, iot.StatusRevoked:
		return st, nil
	}
	return "", apierr.New(apierr.InvalidRequest, "A certificate can be registered as ACTIVE, INACTIVE or REVOKED, not %s.", st)
}

func parseDeviceCertificate(certPEM string) (*x509.Certificate, error) {
	leaf, err := pki.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, apierr.New(apierr.CertificateValidation, "The certificate is not valid: %v", err)
	}
	if err := pki.CheckPublicKey(leaf.PublicKey); err != nil {
		return nil, apierr.New(apierr.CertificateValidation, "The certificate's key is not supported: %v", err)
	}
	return leaf, nil
}

// issuingCA finds the registered CA certificate that signed leaf: the one given
// as caPEM, or the only one of the scope whose subject is leaf's issuer and
// whose key verifies leaf's signature.
func (s *Service) issuingCA(ctx context.Context, scope iot.Scope, leaf *x509.Certificate, caPEM string) (*iot.CACertificate, error) {
	if caPEM != "" {
		given, err := pki.ParseCertificate([]byte(caPEM))
		if err != nil {
			return nil, apierr.New(apierr.CertificateValidation, "The CA certificate is not valid: %v", err)
		}
		ca, err := s.store.CACertificate(ctx, scope, iot.CertificateID(given.Raw))
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.New(apierr.CertificateValidation, "The CA certificate is not registered in this account and region.")
		}
		if err != nil {
			return nil, internal("finding the CA certificate", err)
		}
		if err := leaf.CheckSignatureFrom(given); err != nil {
			return nil, apierr.New(apierr.CertificateValidation, "The certificate is not signed by the given CA certificate: %v", err)
		}
		return ca, nil
	}
	candidates, err := s.store.CACertificatesBySubject(ctx, scope, nameKey(leaf.RawIssuer))
	if err != nil {
		return nil, internal("finding the CA certificate", err)
	}
	var signers []iot.CACertificate
	for _, c := range candidates {
		parsed, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return nil, internal("parsing a registered CA certificate", err)
		}
		if leaf.CheckSignatureFrom(parsed) == nil {
			signers = append(signers, c)
		}
	}
	switch len(signers) {
	case 0:
		return nil, apierr.New(apierr.CertificateValidation, "The certificate is not signed by a CA certificate registered in this account and region.")
	case 1:
		return &signers[0], nil
	}
	return nil, apierr.New(apierr.CertificateConflict, "Unable to verify the CA certificate used to sign the device certificate: %d registered CA certificates have the same subject and public key. Give caCertificatePem.", len(signers))
}

func (s *Service) storeRegistered(ctx context.Context, scope iot.Scope, leaf *x509.Certificate, status iot.Status, mode iot.Mode, caID string) (*iot.Certificate, error) {
	c := s.registeredCertificate(scope, leaf, status, mode, caID)
	err := s.store.CreateCertificate(ctx, c)
	if errors.Is(err, store.ErrExists) {
		return nil, apierr.AlreadyExists(c.ID, c.ARN(), "The certificate %s is already registered.", c.ID)
	}
	if err != nil {
		return nil, internal("registering a certificate", err)
	}
	return c, nil
}

// registeredCertificate is the registration of a certificate fleetca did
// not issue.
func (s *Service) registeredCertificate(scope iot.Scope, leaf *x509.Certificate, status iot.Status, mode iot.Mode, caID string) *iot.Certificate {
	now := s.timestamp()
	return &iot.Certificate{
		Scope:           scope,
		ID:              iot.CertificateID(leaf.Raw),
		Status:          status,
		Mode:            mode,
		CACertificateID: caID,
		DER:             leaf.Raw,
		OwnedBy:         scope.AccountID,
		CreatedAt:       now,
		LastModifiedAt:  now,
		CustomerVersion: 1,
		GenerationID:    newGenerationID(),
		NotBefore:       leaf.NotBefore.UTC(),
		NotAfter:        leaf.NotAfter.UTC(),
	}
}
