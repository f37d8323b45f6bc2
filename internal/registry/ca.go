package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/store"
)

// MaxCAsPerSubject is how many CA certificates with one subject an account may
// register in a region, as at AWS.
const MaxCAsPerSubject = 10

// GetRegistrationCode returns the scope's registration code, making one on
// first use. It stays the same until deleted.
func (s *Service) GetRegistrationCode(ctx context.Context, scope iot.Scope) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", internal("making a registration code", err)
	}
	code, err := s.store.RegistrationCode(ctx, scope, hex.EncodeToString(b))
	return code, internal("reading the registration code", err)
}

// DeleteRegistrationCode deletes the scope's registration code; the next
// GetRegistrationCode makes a new one.
func (s *Service) DeleteRegistrationCode(ctx context.Context, scope iot.Scope) error {
	err := s.store.DeleteRegistrationCode(ctx, scope)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "There is no registration code to delete.")
	}
	return internal("deleting the registration code", err)
}

// RegisterCAInput is what RegisterCACertificate needs.
type RegisterCAInput struct {
	CACertificatePEM           string
	VerificationCertificatePEM string
	Mode                       iot.Mode
	SetAsActive                bool
	AllowAutoRegistration      bool
	RegistrationConfig         iot.RegistrationConfig
	Tags                       []iot.Tag
}

// RegisterCACertificate registers a CA certificate. In DEFAULT mode the caller
// proves possession of the CA's key with a verification certificate whose
// common name is the scope's registration code and which the CA signed.
func (s *Service) RegisterCACertificate(ctx context.Context, scope iot.Scope, in RegisterCAInput) (*iot.CACertificate, error) {
	if in.Mode == "" {
		in.Mode = iot.ModeDefault
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	ca, err := pki.ParseCertificate([]byte(in.CACertificatePEM))
	if err != nil {
		return nil, apierr.New(apierr.CertificateValidation, "The CA certificate is not valid: %v", err)
	}
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return nil, apierr.New(apierr.CertificateValidation, "The certificate is not a CA certificate: it needs basicConstraints with CA:TRUE.")
	}
	if err := pki.CheckPublicKey(ca.PublicKey); err != nil {
		return nil, apierr.New(apierr.CertificateValidation, "The CA certificate's key is not supported: %v", err)
	}
	// fleetca's own CAs are public (/ca-chain.pem), and anyone can have the
	// issuing CA sign a CSR whose CN is their registration code: registered
	// by an account, they would let it claim the certificates fleetca
	// issued to every other account's devices.
	if s.authority.OwnCA(ca) {
		return nil, apierr.New(apierr.CertificateValidation, "The CA certificate is one of fleetca's own CAs, which cannot be registered.")
	}
	now := s.timestamp()
	if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
		return nil, apierr.New(apierr.CertificateValidation, "The CA certificate is not valid now: it is valid from %s to %s.",
			ca.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), ca.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	switch in.Mode {
	case iot.ModeSNIOnly:
		if in.VerificationCertificatePEM != "" {
			return nil, apierr.New(apierr.InvalidRequest, "A CA certificate registered in SNI_ONLY mode takes no verification certificate.")
		}
	case iot.ModeDefault:
		if err := s.checkVerification(ctx, scope, ca, in.VerificationCertificatePEM); err != nil {
			return nil, err
		}
	}
	if err := s.checkRegistrationConfig(ctx, scope, in.RegistrationConfig); err != nil {
		return nil, err
	}
	c := &iot.CACertificate{
		Scope:              scope,
		ID:                 iot.CertificateID(ca.Raw),
		Status:             iot.CAStatusInactive,
		AutoRegistration:   iot.AutoRegistrationDisable,
		Mode:               in.Mode,
		DER:                ca.Raw,
		SubjectKey:         nameKey(ca.RawSubject),
		RegistrationConfig: in.RegistrationConfig,
		OwnedBy:            scope.AccountID,
		CreatedAt:          now,
		LastModifiedAt:     now,
		CustomerVersion:    1,
		GenerationID:       newGenerationID(),
		NotBefore:          ca.NotBefore.UTC(),
		NotAfter:           ca.NotAfter.UTC(),
	}
	if in.SetAsActive {
		c.Status = iot.CAStatusActive
	}
	if in.AllowAutoRegistration {
		c.AutoRegistration = iot.AutoRegistrationEnable
	}
	err = s.store.CreateCACertificate(ctx, c, in.Tags, MaxCAsPerSubject)
	switch {
	case errors.Is(err, store.ErrLimit):
		return nil, apierr.New(apierr.LimitExceeded, "An account may register at most %d CA certificates with the same subject in a region.", MaxCAsPerSubject)
	case errors.Is(err, store.ErrExists):
		return nil, apierr.AlreadyExists(c.ID, c.ARN(), "The CA certificate %s is already registered.", c.ID)
	case errors.Is(err, store.ErrConflict):
		return nil, apierr.AlreadyExists(c.ID, "", "The CA certificate %s is registered in DEFAULT mode by another account in this region; register it in SNI_ONLY mode instead.", c.ID)
	}
	if err != nil {
		return nil, internal("registering a CA certificate", err)
	}
	return c, nil
}

// checkVerification is the proof of possession of a DEFAULT-mode CA's key.
func (s *Service) checkVerification(ctx context.Context, scope iot.Scope, ca *x509.Certificate, verificationPEM string) error {
	if verificationPEM == "" {
		return apierr.New(apierr.InvalidRequest, "A CA certificate registered in DEFAULT mode needs a verification certificate.")
	}
	code, err := s.store.RegistrationCode(ctx, scope, "")
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The account has no registration code; call GetRegistrationCode and make the verification certificate with it.")
	}
	if err != nil {
		return internal("reading the registration code", err)
	}
	var verr *pki.VerificationError
	if err := pki.CheckVerificationCertificate(ca, []byte(verificationPEM), code); errors.As(err, &verr) {
		if verr.CodeMismatch {
			return apierr.New(apierr.RegistrationCodeValidation, "%s", verr.Error())
		}
		return apierr.New(apierr.CertificateValidation, "%s", verr.Error())
	}
	return nil
}

// nameKey identifies a distinguished name by the SHA-256 of its DER, which is
// how a certificate's issuer finds its CA's subject.
func nameKey(rawName []byte) string {
	sum := sha256.Sum256(rawName)
	return hex.EncodeToString(sum[:])
}

// DescribeCACertificate returns a CA certificate of the scope.
func (s *Service) DescribeCACertificate(ctx context.Context, scope iot.Scope, id string) (*iot.CACertificate, error) {
	c, err := s.store.CACertificate(ctx, scope, id)
	if err != nil {
		return nil, caError(err, id)
	}
	return c, nil
}

// CACertificateList is one page of CA certificates.
type CACertificateList struct {
	CACertificates []iot.CACertificate
	NextMarker     string
}

// ListCACertificates returns one page of the scope's CA certificates, those
// using templateName only when it is set.
func (s *Service) ListCACertificates(ctx context.Context, scope iot.Scope, opts ListOptions, templateName string) (*CACertificateList, error) {
	after, err := parseMarker(opts.Marker)
	if err != nil {
		return nil, err
	}
	page, err := s.store.ListCACertificates(ctx, store.CACertificateQuery{
		Scope: scope, Limit: opts.PageSize, Ascending: opts.Ascending, After: after, TemplateName: templateName,
	})
	if err != nil {
		return nil, internal("listing CA certificates", err)
	}
	return &CACertificateList{CACertificates: page.CACertificates, NextMarker: marker(page.Next)}, nil
}

// UpdateCAInput holds the changes of UpdateCACertificate; nil means unchanged.
type UpdateCAInput struct {
	NewStatus              *iot.CAStatus
	NewAutoRegistration    *iot.AutoRegistration
	RegistrationConfig     *iot.RegistrationConfig
	RemoveAutoRegistration bool
}

// UpdateCACertificate changes a CA certificate's status, auto-registration or
// registration config. removeAutoRegistration clears the registration config.
// A change gives the CA a new generation and the next customer version.
func (s *Service) UpdateCACertificate(ctx context.Context, scope iot.Scope, id string, in UpdateCAInput) error {
	defer s.changed()
	if in.RemoveAutoRegistration && in.RegistrationConfig != nil {
		return apierr.New(apierr.InvalidRequest, "Give either registrationConfig or removeAutoRegistration, not both.")
	}
	if in.RegistrationConfig != nil {
		if err := s.checkRegistrationConfig(ctx, scope, *in.RegistrationConfig); err != nil {
			return err
		}
	}
	_, err := s.store.UpdateCACertificate(ctx, scope, id, func(c *iot.CACertificate) error {
		before := *c
		if in.NewStatus != nil {
			c.Status = *in.NewStatus
		}
		if in.NewAutoRegistration != nil {
			c.AutoRegistration = *in.NewAutoRegistration
		}
		if in.RegistrationConfig != nil {
			c.RegistrationConfig = *in.RegistrationConfig
		}
		if in.RemoveAutoRegistration {
			c.RegistrationConfig = iot.RegistrationConfig{}
		}
		if c.Status == before.Status && c.AutoRegistration == before.AutoRegistration && c.RegistrationConfig == before.RegistrationConfig {
			return errUnchanged
		}
		c.LastModifiedAt = s.timestamp()
		c.CustomerVersion++
		c.GenerationID = newGenerationID()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return caError(err, id)
}

// DeleteCACertificate deletes an INACTIVE CA certificate. Device certificates
// registered under it stay registered.
func (s *Service) DeleteCACertificate(ctx context.Context, scope iot.Scope, id string) error {
	defer s.changed()
	err := s.store.DeleteCACertificate(ctx, scope, id, func(c *iot.CACertificate) error {
		if c.Status == iot.CAStatusActive {
			return apierr.New(apierr.CertificateState, "The CA certificate %s is ACTIVE; deactivate it before deleting it.", id)
		}
		return nil
	})
	return caError(err, id)
}

func caError(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.ResourceNotFound, "The CA certificate %s does not exist.", id)
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	return internal("CA certificate "+id, err)
}

// checkRegistrationConfig refuses a CA's registration config whose
// template just-in-time provisioning could not run: an inline body that
// is not a valid JITP template, or a template name that is not one of the
// scope's JITP templates.
func (s *Service) checkRegistrationConfig(ctx context.Context, scope iot.Scope, rc iot.RegistrationConfig) error {
	if rc.TemplateBody != "" && rc.TemplateName != "" {
		return apierr.New(apierr.InvalidRequest, "Give the registration config either a templateBody or a templateName, not both.")
	}
	if rc.TemplateBody != "" {
		if _, err := checkTemplateBody(rc.TemplateBody, iot.JITP); err != nil {
			return reword(err, apierr.InvalidRequest, "Invalid registration template. ")
		}
	}
	if rc.TemplateName != "" {
		t, err := s.store.ProvisioningTemplate(ctx, scope, rc.TemplateName)
		if err != nil {
			return templateError(err, rc.TemplateName, "reading a provisioning template")
		}
		if t.Type != iot.JITP {
			return apierr.New(apierr.InvalidRequest, "The provisioning template %s is of type %s; a CA's registration config names a JITP template.", t.Name, t.Type)
		}
	}
	return nil
}
