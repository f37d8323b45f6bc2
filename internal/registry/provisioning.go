package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/store"
)

// OwnershipTokenLifetime is how long a certificateOwnershipToken is valid; a
// certificate still PENDING_ACTIVATION when it expires is deleted.
const OwnershipTokenLifetime = time.Hour

// DeviceCSR is a device's fleet-provisioning CreateCertificateFromCsr request.
type DeviceCSR struct {
	CSRPEM string
	// PrincipalID is the certificate ID the device connected with.
	PrincipalID string
	// ClientID is the device's MQTT client ID.
	ClientID string
}

// ProvisionedCertificate is the answer to a fleet-provisioning create call.
type ProvisionedCertificate struct {
	Certificate    *iot.Certificate
	OwnershipToken string
	// PrivateKeyPEM is set by CreateDeviceKeysAndCertificate only; it exists
	// nowhere else and must not be logged.
	PrivateKeyPEM string
}

// CreateDeviceKeysAndCertificate is the fleet-provisioning
// CreateKeysAndCertificate: a new key and a certificate from fleetca's CA,
// registered PENDING_ACTIVATION with an ownership token.
func (s *Service) CreateDeviceKeysAndCertificate(ctx context.Context, scope iot.Scope) (*ProvisionedCertificate, error) {
	key, issued, err := s.keyAndCertificate(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.provision(ctx, s.signedCertificate(scope, issued, iot.StatusPendingActivation))
	if err != nil {
		return nil, err
	}
	p.PrivateKeyPEM = pki.EncodeRSAPrivateKey(key)
	return p, nil
}

// CreateDeviceCertificateFromCSR is the fleet-provisioning
// CreateCertificateFromCsr. When the scope has a certificate provider, its
// function signs; otherwise fleetca's CA does. The certificate is registered
// PENDING_ACTIVATION with an ownership token. When the provider fails,
// nothing is registered (see providerFailure).
func (s *Service) CreateDeviceCertificateFromCSR(ctx context.Context, scope iot.Scope, in DeviceCSR) (*ProvisionedCertificate, error) {
	csr, err := pki.ParseCSR([]byte(in.CSRPEM))
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "Invalid certificate signing request: %v", err)
	}
	p, err := s.store.ScopeCertificateProvider(ctx, scope)
	if errors.Is(err, store.ErrNotFound) {
		issued, err := s.authority.IssueForCSR(ctx, csr)
		if err != nil {
			return nil, internal("issuing", err)
		}
		return s.provision(ctx, s.signedCertificate(scope, issued, iot.StatusPendingActivation))
	}
	if err != nil {
		return nil, internal("finding the certificate provider", err)
	}
	if s.signer == nil {
		return nil, internal("signing with a certificate provider", errors.New("no provider signer is configured"))
	}
	// Checked again at every call: a provider stored before the rule, or
	// before the operator withdrew a cross-account grant, must not sign.
	if err := s.checkFunctionAccount(scope, p.LambdaFunctionARN); err != nil {
		return nil, providerFailure(provider.Errorf(provider.InvokeRefused, err, "the provider's function belongs to another account"))
	}
	der, err := s.signer.Sign(ctx, provider.Request{
		FunctionARN: p.LambdaFunctionARN, AccountID: scope.AccountID, CSRPEM: in.CSRPEM, PrincipalID: in.PrincipalID, ClientID: in.ClientID,
	}, csr.PublicKey)
	var leaf *x509.Certificate
	if err == nil {
		if leaf, err = x509.ParseCertificate(der); err != nil {
			err = provider.Errorf(provider.MalformedAnswer, err, "the certificate does not parse")
		}
	}
	if auditErr := s.recordProviderSignature(ctx, p.LambdaFunctionARN, leaf, err); auditErr != nil {
		return nil, internal("recording the provider's signature", auditErr)
	}
	if err != nil {
		return nil, providerFailure(err)
	}
	c := s.issuedCertificate(scope, leaf.Raw, leaf.NotBefore.UTC(), leaf.NotAfter.UTC(), iot.StatusPendingActivation)
	// A certificate from one of the scope's registered CAs belongs to it, as
	// if registered with RegisterCertificate; any other is SNI_ONLY, as if
	// registered without a CA.
	c.Mode = iot.ModeSNIOnly
	if ca, err := s.issuingCA(ctx, scope, leaf, ""); err == nil {
		c.Mode, c.CACertificateID = ca.Mode, ca.ID
	}
	return s.provision(ctx, c)
}

// providerFailure is what the device is told when its certificate provider
// did not sign: a refused CSR is the device's mistake, InvalidRequest; any
// other failure is the service's, InternalFailure. The provider's own
// message may quote its function's error, so it stays in the cause, for the
// log.
func providerFailure(err error) error {
	var pe *provider.Error
	switch {
	case errors.As(err, &pe) && pe.Failure == provider.CSRRejected:
		return apierr.Wrap(apierr.InvalidRequest, err, "The certificate provider refused the certificate signing request.")
	case errors.As(err, &pe):
		return apierr.Wrap(apierr.InternalFailure, err, "The certificate provider did not sign the certificate signing request.")
	}
	return internal("asking the certificate provider", err)
}

// provision stores a new certificate with a new ownership token.
func (s *Service) provision(ctx context.Context, c *iot.Certificate) (*ProvisionedCertificate, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, internal("making an ownership token", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	err := s.store.CreateProvisionedCertificate(ctx, c, store.ProvisioningToken{Hash: tokenHash(token), ExpiresAt: c.CreatedAt.Add(OwnershipTokenLifetime)})
	if errors.Is(err, store.ErrExists) {
		return nil, apierr.AlreadyExists(c.ID, c.ARN(), "The certificate %s is already registered.", c.ID)
	}
	if err != nil {
		return nil, internal("storing a provisioned certificate", err)
	}
	return &ProvisionedCertificate{Certificate: c, OwnershipToken: token}, nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ExpireProvisioningTokens deletes the certificates whose ownership token
// expired before now while they were still PENDING_ACTIVATION.
func (s *Service) ExpireProvisioningTokens(ctx context.Context, now time.Time) ([]iot.Certificate, error) {
	deleted, err := s.store.ExpireProvisioningTokens(ctx, now)
	return deleted, internal("expiring ownership tokens", err)
}

// recordProviderSignature writes the audit record of a certificate a
// provider's function signed (leaf), or refused or failed to sign (err).
func (s *Service) recordProviderSignature(ctx context.Context, functionARN string, leaf *x509.Certificate, err error) error {
	if s.auditor == nil {
		return nil
	}
	rec := audit.Record{Time: s.now().UTC(), Object: audit.Certificate, Profile: "provider", Issuer: functionARN,
		Requester: audit.RequesterOf(ctx), Outcome: audit.Signed}
	var pe *provider.Error
	switch {
	case errors.As(err, &pe) && pe.Failure == provider.CSRRejected:
		rec.Outcome, rec.Reason = audit.Refused, err.Error()
	case err != nil:
		rec.Outcome, rec.Reason = audit.Failed, err.Error()
	default:
		rec.CertificateID, rec.Serial, rec.Subject = iot.CertificateID(leaf.Raw), leaf.SerialNumber.Text(16), leaf.Subject.String()
		rec.NotBefore, rec.NotAfter = leaf.NotBefore.UTC(), leaf.NotAfter.UTC()
		for _, ip := range leaf.IPAddresses {
			rec.SANs = append(rec.SANs, "IP:"+ip.String())
		}
		for _, name := range leaf.DNSNames {
			rec.SANs = append(rec.SANs, "DNS:"+name)
		}
	}
	return s.auditor.Write(ctx, rec)
}
