package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
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
	p, err := s.provision(ctx, s.issuedCertificate(scope, issued.DER, issued.NotBefore, issued.NotAfter, iot.StatusPendingActivation))
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
		return s.provision(ctx, s.issuedCertificate(scope, issued.DER, issued.NotBefore, issued.NotAfter, iot.StatusPendingActivation))
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
	if err != nil {
		return nil, providerFailure(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, providerFailure(provider.Errorf(provider.MalformedAnswer, err, "the certificate does not parse"))
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

// Admission is the verdict on a device's TLS certificate.
type Admission struct {
	// Certificate is the registration the device connects as; nil when refused.
	Certificate *iot.Certificate
	// Registered is set when the certificate was registered just in time (or
	// still waits for activation): the event is to be published and the
	// device disconnected.
	Registered *JITRegistration
	// Refusal says why the device is refused, for the log.
	Refusal string
}

// JITRegistration is a just-in-time registration of a device certificate.
type JITRegistration struct {
	Scope           iot.Scope
	CertificateID   string
	CACertificateID string
	RegisteredAt    time.Time
}

// AdmitDevice decides whether a device presenting leaf over mutual TLS may
// connect. It may if the certificate is registered and ACTIVE in a scope and
// is fleetca's, or is signed by a registered ACTIVE CA of that scope, or is
// SNI_ONLY (admitted by its ID: the TLS handshake proved the key). An unknown
// certificate signed by a registered ACTIVE CA with auto-registration enabled
// is registered PENDING_ACTIVATION (just-in-time registration) and refused.
//
// The account is chosen only by what the device proves, as AWS chooses it by
// the account-specific endpoint the device connects to: serverName, the TLS
// SNI, names it when its first label is an account ID
// (<account-id>.<host>); otherwise only DEFAULT-mode registrations and CAs
// count, of which each certificate and CA has at most one per region. So
// nothing another account registers (a copy of a device's certificate, or
// of its CA in SNI_ONLY mode) changes where a device lands or whether it is
// admitted.
func (s *Service) AdmitDevice(ctx context.Context, leaf *x509.Certificate, serverName string) (Admission, error) {
	now := s.now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return Admission{Refusal: "the certificate is outside its validity period"}, nil
	}
	account := sniAccount(serverName)
	regs, err := s.store.CertificatesByID(ctx, iot.CertificateID(leaf.Raw))
	if err != nil {
		return Admission{}, internal("finding the device certificate", err)
	}
	regs = slices.DeleteFunc(regs, func(c iot.Certificate) bool { return !reachable(c.Scope, c.Mode, account) })
	if len(regs) == 0 {
		return s.registerJustInTime(ctx, leaf, account)
	}
	var active, pending []iot.Certificate
	for _, r := range regs {
		switch r.Status {
		case iot.StatusActive:
			active = append(active, r)
		case iot.StatusPendingActivation:
			if r.CACertificateID != "" {
				pending = append(pending, r)
			}
		}
	}
	if len(active) == 0 {
		if len(pending) == 1 {
			// AWS publishes the event again whenever a certificate that still
			// waits for activation connects.
			p := pending[0]
			return Admission{Registered: &JITRegistration{Scope: p.Scope, CertificateID: p.ID, CACertificateID: p.CACertificateID, RegisteredAt: p.CreatedAt}, Refusal: "the certificate is PENDING_ACTIVATION"}, nil
		}
		return Admission{Refusal: fmt.Sprintf("the certificate is %s", regs[0].Status)}, nil
	}
	if len(active) > 1 {
		return Admission{Refusal: "the certificate is ACTIVE in several regions of the account"}, nil
	}
	c := &active[0]
	switch {
	case c.CACertificateID != "":
		ca, err := s.store.CACertificate(ctx, c.Scope, c.CACertificateID)
		if errors.Is(err, store.ErrNotFound) {
			return Admission{Refusal: "the certificate's CA is no longer registered"}, nil
		}
		if err != nil {
			return Admission{}, internal("finding the CA certificate", err)
		}
		if ca.Status != iot.CAStatusActive {
			return Admission{Refusal: "the certificate's CA is not ACTIVE"}, nil
		}
		parsed, err := x509.ParseCertificate(ca.DER)
		if err != nil || leaf.CheckSignatureFrom(parsed) != nil {
			return Admission{Refusal: "the certificate does not chain to its registered CA"}, nil
		}
		if s.authority.OwnCA(parsed) {
			// Registered before such registrations were refused.
			return Admission{Refusal: "the certificate's registered CA is one of fleetca's own"}, nil
		}
	case c.Mode == iot.ModeDefault:
		if leaf.CheckSignatureFrom(s.authority.Issuing()) != nil {
			return Admission{Refusal: "the certificate does not chain to fleetca's CA"}, nil
		}
	}
	return Admission{Certificate: c}, nil
}

// sniAccount is the account a TLS server name (<account-id>.<host>) names,
// or "" when its first label is no account ID.
func sniAccount(serverName string) string {
	label, _, _ := strings.Cut(serverName, ".")
	if iot.ValidAccountID(label) {
		return label
	}
	return ""
}

// reachable reports whether a registration (of a certificate or a CA) in
// scope, in mode, can receive a device that named account in its SNI ("" for
// none): the named account's registrations can, and without a name only
// DEFAULT-mode ones, which are unique per region.
func reachable(scope iot.Scope, mode iot.Mode, account string) bool {
	if account != "" {
		return scope.AccountID == account
	}
	return mode == iot.ModeDefault
}

// registerJustInTime registers an unknown certificate under the registered
// ACTIVE CA with auto-registration that signed it, if there is exactly one
// the device can reach (see AdmitDevice).
func (s *Service) registerJustInTime(ctx context.Context, leaf *x509.Certificate, account string) (Admission, error) {
	cas, err := s.store.CACertificatesBySubject(ctx, iot.Scope{}, nameKey(leaf.RawIssuer))
	if err != nil {
		return Admission{}, internal("finding CA certificates", err)
	}
	var eligible []iot.CACertificate
	for _, ca := range cas {
		if !reachable(ca.Scope, ca.Mode, account) || ca.Status != iot.CAStatusActive || ca.AutoRegistration != iot.AutoRegistrationEnable {
			continue
		}
		parsed, err := x509.ParseCertificate(ca.DER)
		if err != nil || leaf.CheckSignatureFrom(parsed) != nil || s.authority.OwnCA(parsed) {
			continue
		}
		eligible = append(eligible, ca)
	}
	if len(eligible) != 1 {
		return Admission{Refusal: "the certificate is not registered, and no single ACTIVE CA with auto-registration that the device reaches signed it"}, nil
	}
	ca := eligible[0]
	c, err := s.storeRegistered(ctx, ca.Scope, leaf, iot.StatusPendingActivation, ca.Mode, ca.ID)
	if apierr.Is(err, apierr.ResourceAlreadyExists) {
		// Another connection registered it a moment ago.
		c, err = s.store.Certificate(ctx, ca.Scope, iot.CertificateID(leaf.Raw))
		if err != nil {
			return Admission{}, internal("finding the device certificate", err)
		}
	} else if err != nil {
		return Admission{}, err
	}
	return Admission{
		Registered: &JITRegistration{Scope: c.Scope, CertificateID: c.ID, CACertificateID: ca.ID, RegisteredAt: c.CreatedAt},
		Refusal:    "registered just in time; waiting for activation",
	}, nil
}

// SweepPass is one pass over the connected devices, checking each against
// the admission rules again (StillAdmitted), so that a device is
// disconnected when its certificate stops being ACTIVE or its CA is
// deactivated or deleted. It remembers each CA's verdict, so that a pass
// reads each CA once. Its zero value is ready; it is not safe for
// concurrent use.
type SweepPass struct {
	cas map[caKey]bool
}

type caKey struct {
	scope iot.Scope
	id    string
}

// StillAdmitted reports whether the scope's certificate id is still
// registered and ACTIVE and, if it was registered under a CA, that CA is
// still registered and ACTIVE. It reads the database, so changes made on
// another replica count too.
func (s *Service) StillAdmitted(ctx context.Context, pass *SweepPass, scope iot.Scope, id string) (bool, error) {
	c, err := s.store.Certificate(ctx, scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internal("checking a device certificate", err)
	}
	if c.Status != iot.StatusActive {
		return false, nil
	}
	if c.CACertificateID == "" {
		return true, nil
	}
	k := caKey{scope, c.CACertificateID}
	active, seen := pass.cas[k]
	if !seen {
		ca, err := s.store.CACertificate(ctx, scope, c.CACertificateID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return false, internal("checking a device's CA", err)
		default:
			active = ca.Status == iot.CAStatusActive
		}
		if pass.cas == nil {
			pass.cas = map[caKey]bool{}
		}
		pass.cas[k] = active
	}
	return active, nil
}
