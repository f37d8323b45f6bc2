package registry

import (
	"context"
	"crypto/rsa"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/store"
)

// CreatedCertificate is the answer to a create call. PrivateKeyPEM and
// PublicKeyPEM are set only by CreateKeysAndCertificate: the private key
// exists nowhere else and must not be logged.
type CreatedCertificate struct {
	Certificate   *iot.Certificate
	PrivateKeyPEM string
	PublicKeyPEM  string
}

// CreateKeysAndCertificate makes an RSA-2048 key pair and a certificate for it.
// The key is returned and then forgotten.
func (s *Service) CreateKeysAndCertificate(ctx context.Context, scope iot.Scope, setAsActive bool) (*CreatedCertificate, error) {
	key, issued, err := s.keyAndCertificate(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.register(ctx, scope, issued, initialStatus(setAsActive))
	if err != nil {
		return nil, err
	}
	pub, err := pki.EncodePublicKey(&key.PublicKey)
	if err != nil {
		return nil, internal("encoding the public key", err)
	}
	return &CreatedCertificate{Certificate: c, PrivateKeyPEM: pki.EncodeRSAPrivateKey(key), PublicKeyPEM: pub}, nil
}

// keyAndCertificate makes an RSA-2048 key and a certificate for it with the
// profile AWS IoT gives the keys it makes.
func (s *Service) keyAndCertificate(ctx context.Context) (*rsa.PrivateKey, *issuance.Issued, error) {
	key, err := s.newDeviceKey()
	if err != nil {
		return nil, nil, internal("generating a key", err)
	}
	issued, err := s.authority.IssueForKey(ctx, &key.PublicKey)
	if err != nil {
		return nil, nil, internal("issuing", err)
	}
	return key, issued, nil
}

// CreateCertificateFromCSR checks the CSR and signs a certificate for its key
// with fleetca's CA. The same CSR twice gives two certificates.
func (s *Service) CreateCertificateFromCSR(ctx context.Context, scope iot.Scope, csrPEM string, setAsActive bool) (*CreatedCertificate, error) {
	csr, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "Invalid certificate signing request: %v", err)
	}
	issued, err := s.authority.IssueForCSR(ctx, csr)
	if err != nil {
		return nil, internal("issuing", err)
	}
	c, err := s.register(ctx, scope, issued, initialStatus(setAsActive))
	if err != nil {
		return nil, err
	}
	return &CreatedCertificate{Certificate: c}, nil
}

func initialStatus(setAsActive bool) iot.Status {
	if setAsActive {
		return iot.StatusActive
	}
	return iot.StatusInactive
}

// register stores a certificate fleetca issued. It returns only once the
// certificate is durably stored, so nothing is answered that a crash could lose.
func (s *Service) register(ctx context.Context, scope iot.Scope, issued *issuance.Issued, status iot.Status) (*iot.Certificate, error) {
	c := s.signedCertificate(scope, issued, status)
	if err := s.store.CreateCertificate(ctx, c); err != nil {
		// A fresh random serial makes a collision a broken invariant, not a
		// client error.
		return nil, internal("storing a new certificate", err)
	}
	return c, nil
}

// issuedCertificate is a new DEFAULT-mode registration of a certificate
// fleetca (or a provider) issued.
func (s *Service) issuedCertificate(scope iot.Scope, der []byte, notBefore, notAfter time.Time, status iot.Status) *iot.Certificate {
	now := s.timestamp()
	return &iot.Certificate{
		Scope:           scope,
		ID:              iot.CertificateID(der),
		Status:          status,
		Mode:            iot.ModeDefault,
		DER:             der,
		OwnedBy:         scope.AccountID,
		CreatedAt:       now,
		LastModifiedAt:  now,
		CustomerVersion: 1,
		GenerationID:    newGenerationID(),
		NotBefore:       notBefore,
		NotAfter:        notAfter,
	}
}

// signedCertificate is a new registration of a certificate fleetca's CA
// signed, which names its issuer and serial so that revocation can list it.
func (s *Service) signedCertificate(scope iot.Scope, issued *issuance.Issued, status iot.Status) *iot.Certificate {
	c := s.issuedCertificate(scope, issued.DER, issued.NotBefore, issued.NotAfter, status)
	c.IssuerID, c.Serial = issued.IssuerID, issued.Serial
	return c
}

// DescribeCertificate returns a certificate of the scope.
func (s *Service) DescribeCertificate(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
	c, err := s.store.Certificate(ctx, scope, id)
	if err != nil {
		return nil, certificateError(err, id)
	}
	return c, nil
}

// ListOptions select a page of a listing.
type ListOptions struct {
	PageSize  int
	Marker    string
	Ascending bool
}

// CertificateList is one page of certificates; NextMarker is empty on the last.
type CertificateList struct {
	Certificates []iot.Certificate
	NextMarker   string
}

// ListCertificates returns one page of the scope's certificates, newest first
// unless opts.Ascending.
func (s *Service) ListCertificates(ctx context.Context, scope iot.Scope, opts ListOptions) (*CertificateList, error) {
	return s.listCertificates(ctx, scope, opts, "")
}

// ListCertificatesByCA returns one page of the certificates registered under
// the scope's CA certificate caID; an unknown CA has none.
func (s *Service) ListCertificatesByCA(ctx context.Context, scope iot.Scope, caID string, opts ListOptions) (*CertificateList, error) {
	// A CA the scope has not registered (another account's, or none) is
	// not found, as for every other operation on a CA ID.
	if _, err := s.store.CACertificate(ctx, scope, caID); errors.Is(err, store.ErrNotFound) {
		return nil, apierr.New(apierr.ResourceNotFound, "The CA certificate %s does not exist.", caID)
	} else if err != nil {
		return nil, internal("finding the CA certificate", err)
	}
	return s.listCertificates(ctx, scope, opts, caID)
}

func (s *Service) listCertificates(ctx context.Context, scope iot.Scope, opts ListOptions, caID string) (*CertificateList, error) {
	after, err := parseMarker(opts.Marker)
	if err != nil {
		return nil, err
	}
	page, err := s.store.ListCertificates(ctx, store.CertificateQuery{
		Scope: scope, Limit: opts.PageSize, Ascending: opts.Ascending, After: after, CACertificateID: caID,
	})
	if err != nil {
		return nil, internal("listing certificates", err)
	}
	return &CertificateList{Certificates: page.Certificates, NextMarker: marker(page.Next)}, nil
}

// parseMarker decodes a paging marker; empty means the first page.
func parseMarker(m string) (*store.Cursor, error) {
	if m == "" {
		return nil, nil
	}
	cur, err := store.ParseMarker(m)
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "The marker is not one this service issued.")
	}
	return &cur, nil
}

// marker encodes the cursor of the next page; empty on the last page.
func marker(next *store.Cursor) string {
	if next == nil {
		return ""
	}
	return next.Marker()
}

// errUnchanged tells the store that an update has nothing to write.
var errUnchanged = errors.New("unchanged")

// UpdateCertificateStatus moves a certificate to a new status. ACTIVE and
// INACTIVE may be swapped freely, REVOKED is final, and the statuses that only
// the service itself sets (PENDING_TRANSFER, PENDING_ACTIVATION,
// REGISTER_INACTIVE) cannot be asked for. Setting the current status again
// succeeds and changes nothing.
func (s *Service) UpdateCertificateStatus(ctx context.Context, scope iot.Scope, id string, newStatus iot.Status) error {
	defer s.changed()
	switch newStatus {
	case iot.StatusActive, iot.StatusInactive, iot.StatusRevoked:
	default:
		return apierr.New(apierr.InvalidRequest, "The status %s cannot be set with UpdateCertificate; use ACTIVE, INACTIVE or REVOKED.", newStatus)
	}
	_, err := s.store.UpdateCertificate(ctx, scope, id, func(c *iot.Certificate) error {
		if c.Status == newStatus {
			return errUnchanged
		}
		switch c.Status {
		case iot.StatusRevoked:
			return apierr.New(apierr.CertificateState, "The certificate %s is revoked; a revoked certificate cannot change status.", id)
		case iot.StatusPendingTransfer:
			return apierr.New(apierr.CertificateState, "The certificate %s is pending transfer; accept, reject or cancel the transfer first.", id)
		}
		c.Status = newStatus
		s.touch(c)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return certificateError(err, id)
}

// touch records a change of status or owner: a new generation and the next
// customer version.
func (s *Service) touch(c *iot.Certificate) {
	c.LastModifiedAt = s.timestamp()
	c.CustomerVersion++
	c.GenerationID = newGenerationID()
}

// DeleteCertificate deletes a certificate that is not ACTIVE. forceDelete
// matters only for attached policies, which fleetca does not have yet.
// With policies attached it refuses, as AWS does, unless forceDelete, which
// detaches them in the same transaction.
func (s *Service) DeleteCertificate(ctx context.Context, scope iot.Scope, id string, forceDelete bool) error {
	defer s.changed()
	err := s.store.DeleteCertificate(ctx, scope, id, forceDelete, func(c *iot.Certificate) error {
		switch c.Status {
		case iot.StatusActive:
			return apierr.New(apierr.CertificateState, "Certificate must be deactivated (not ACTIVE) before deletion.")
		case iot.StatusPendingTransfer:
			return apierr.New(apierr.CertificateState, "The certificate %s is pending transfer and cannot be deleted.", id)
		}
		return nil
	})
	return certificateError(err, id)
}

// certificateError turns store errors about certificate id into API errors.
func certificateError(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.ResourceNotFound, "The certificate %s does not exist.", id)
	case errors.Is(err, store.ErrAttached):
		return apierr.New(apierr.DeleteConflict, "Certificate policies must be detached before deletion, or deleted with forceDelete (certificate %s).", id)
	case errors.Is(err, store.ErrThingAttached):
		return apierr.New(apierr.DeleteConflict, "Things are attached to the certificate %s; detach them before deleting it.", id)
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	return internal("certificate "+id, err)
}
