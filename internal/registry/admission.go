package registry

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

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
	// ExpiresAt is when the admission lapses by itself, as a provisioning
	// claim's does; zero when only a change in the registry ends it.
	ExpiresAt time.Time
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
		if a, claim, err := s.admitClaim(ctx, leaf, account); claim || err != nil {
			return a, err
		}
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
			// waits for activation connects. When its CA has a provisioning
			// template (set since, or one that failed before and may run
			// now), the template is tried again first.
			p := &pending[0]
			if a, tried, err := s.provisionPending(ctx, p, leaf); tried || err != nil {
				return a, err
			}
			return Admission{Registered: jitRegistration(p), Refusal: "the certificate is PENDING_ACTIVATION"}, nil
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
		if err != nil || !s.signatures.verified(leaf, parsed) {
			return Admission{Refusal: "the certificate does not chain to its registered CA"}, nil
		}
		if s.authority.OwnCA(parsed) {
			// Registered before such registrations were refused.
			return Admission{Refusal: "the certificate's registered CA is one of fleetca's own"}, nil
		}
	case c.Mode == iot.ModeDefault:
		if !s.fromOwnIssuer(leaf) {
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
		if err != nil || !s.signatures.verified(leaf, parsed) || s.authority.OwnCA(parsed) {
			continue
		}
		eligible = append(eligible, ca)
	}
	if len(eligible) != 1 {
		return Admission{Refusal: "the certificate is not registered, and no single ACTIVE CA with auto-registration that the device reaches signed it"}, nil
	}
	ca := eligible[0]
	if rc := ca.RegistrationConfig; rc.TemplateBody != "" || rc.TemplateName != "" {
		return s.provisionJustInTime(ctx, &ca, leaf)
	}
	return s.registerPending(ctx, &ca, leaf)
}

// registerPending registers a device's certificate PENDING_ACTIVATION under
// its CA: just-in-time registration.
func (s *Service) registerPending(ctx context.Context, ca *iot.CACertificate, leaf *x509.Certificate) (Admission, error) {
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
	return Admission{Registered: jitRegistration(c), Refusal: "registered just in time; waiting for activation"}, nil
}

// jitRegistration is the registration event of a certificate registered
// under a CA.
func jitRegistration(c *iot.Certificate) *JITRegistration {
	return &JITRegistration{Scope: c.Scope, CertificateID: c.ID, CACertificateID: c.CACertificateID, RegisteredAt: c.CreatedAt}
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
		return s.claimStillValid(ctx, scope, id)
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

// maxSignatures bounds the signatures signatureCache remembers.
const maxSignatures = 1 << 17

// signatureCache remembers the device certificates whose signature a CA's
// key verified, by the certificate's and the CA's IDs (SHA-256s of their
// DER: the same IDs are the same bytes, so the same verdict). Devices
// connect again far more often than their certificates change, and each
// check is an ECDSA or RSA verification: a tenth of a millisecond of every
// connection. Its zero value is ready.
type signatureCache struct {
	mu sync.Mutex
	m  map[[2]string]struct{}
}

// verified reports whether issuer's key signed leaf.
func (c *signatureCache) verified(leaf, issuer *x509.Certificate) bool {
	key := [2]string{iot.CertificateID(leaf.Raw), iot.CertificateID(issuer.Raw)}
	c.mu.Lock()
	_, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return true
	}
	if leaf.CheckSignatureFrom(issuer) != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSignatures {
		// Dropping all is simplest; a refill costs a verification each.
		c.m = make(map[[2]string]struct{})
	}
	c.m[key] = struct{}{}
	return true
}

// fromOwnIssuer reports whether one of fleetca's issuing CAs, the current
// or one rotated away, signed leaf: the one whose subject is leaf's issuer
// (each has its own), so a device costs one signature check.
func (s *Service) fromOwnIssuer(leaf *x509.Certificate) bool {
	for _, ca := range s.authority.Issuers() {
		if bytes.Equal(ca.RawSubject, leaf.RawIssuer) && s.signatures.verified(leaf, ca) {
			return true
		}
	}
	return false
}
