// Package registry holds fleetca's rules: how certificates are created,
// described, listed, changed and deleted, which status changes are allowed,
// and who the accounts are. It asks issuance for certificates and store for
// durability, and speaks to its callers in apierr errors.
package registry

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/template"
)

// Store is the storage the registry needs.
type Store interface {
	store.Accounts
	store.Certificates
	store.CACertificates
	store.RegistrationCodes
	store.Tags
	store.CertificateProviders
	store.Policies
	store.Things
	store.ThingTypes
	store.Changes
	store.ProvisioningTemplates
	store.Provisioning
}

// Auditor records signatures; audit.Log is one.
type Auditor interface {
	Write(ctx context.Context, r audit.Record) error
}

// Authority signs certificates; *issuance.Authority is one.
type Authority interface {
	// IssueForCSR and IssueForKey take a context: a signing key may live
	// behind a network (a PKCS#11 token, a KMS).
	IssueForCSR(ctx context.Context, csr *x509.CertificateRequest) (*issuance.Issued, error)
	IssueForKey(ctx context.Context, pub crypto.PublicKey) (*issuance.Issued, error)
	// IssueClaim signs a provisioning claim: a certificate valid for
	// minutes.
	IssueClaim(ctx context.Context, pub crypto.PublicKey) (*issuance.Issued, error)
	// Issuing is the CA certificate that signs what the Authority issues.
	Issuing() *x509.Certificate
	// Issuers are every issuing CA the Authority has had, newest first:
	// certificates of one rotated away still admit their devices.
	Issuers() []*x509.Certificate
	// OwnCA reports whether c is one of the Authority's CAs (same key).
	OwnCA(c *x509.Certificate) bool
}

// SecretSealer seals secrets at rest; *keys.SecretBox is one. name is what
// the secret is stored under (the access key ID).
type SecretSealer interface {
	Seal(name, secret string) (string, error)
	Open(name, sealed string) (string, error)
}

// Options configure a Service.
type Options struct {
	Store     Store
	Authority Authority
	// NewDeviceKey makes the keys of CreateKeysAndCertificate; nil means
	// issuance.GenerateDeviceKey.
	NewDeviceKey func() (*rsa.PrivateKey, error)
	// Auditor records the certificates certificate providers sign (fleetca's
	// own signatures are recorded by the Authority); nil records none.
	Auditor Auditor
	// Signer asks certificate providers to sign device CSRs; nil refuses
	// device CSRs of accounts that have a provider.
	Signer provider.Signer
	// Hooks asks pre-provisioning hooks; nil refuses RegisterThing with a
	// template that has one.
	Hooks provider.Hooks
	// Secrets seals access keys' secrets before they are stored and opens
	// them when they are read; nil stores them as they are.
	Secrets SecretSealer
	// CrossAccountProviders lists, for a caller account, the other accounts
	// whose Lambda functions its certificate provider may invoke. A provider
	// may always invoke its own account's functions, and no other's unless
	// listed here: fleetca invokes every function with one set of
	// credentials, so without this rule any account could have another's
	// function sign with that account's CA.
	CrossAccountProviders map[string][]string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service applies the rules.
type Service struct {
	store        Store
	authority    Authority
	signer       provider.Signer
	auditor      Auditor
	hooks        provider.Hooks
	crossAccount map[string][]string
	secrets      SecretSealer
	newDeviceKey func() (*rsa.PrivateKey, error)
	now          func() time.Time
	compiled     parsedCache[*policy.Policy]
	templates    parsedCache[*template.Template]
	signatures   signatureCache
	accessKeys   accessKeyCache
	notices      chan struct{}
}

// New returns a Service.
func New(opts Options) *Service {
	s := &Service{store: opts.Store, authority: opts.Authority, signer: opts.Signer, auditor: opts.Auditor, hooks: opts.Hooks, crossAccount: opts.CrossAccountProviders, secrets: opts.Secrets, newDeviceKey: opts.NewDeviceKey, now: opts.Now,
		notices: make(chan struct{}, 1)}
	s.compiled.parse = func(doc string) (*policy.Policy, error) { return policy.Parse([]byte(doc)) }
	s.templates.parse = template.Parse
	if s.newDeviceKey == nil {
		s.newDeviceKey = issuance.GenerateDeviceKey
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// timestamp is the current time at the precision the store keeps.
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func newGenerationID() string { return uuid.NewString() }

// internal wraps an unexpected failure; the front ends log it and answer
// InternalFailureException without showing it.
func internal(what string, err error) error {
	if _, ok := apierr.As(err); ok {
		return err // already meant for the client (a malformed marker)
	}
	if errors.Is(err, store.ErrUnavailable) {
		return apierr.New(apierr.ServiceUnavailable, "The service cannot reach its database now; retry later.")
	}
	if errors.Is(err, keys.ErrUnavailable) {
		// The cause (which token, what it said) is the operator's: logged,
		// never sent.
		return apierr.Wrap(apierr.ServiceUnavailable, err, "The service cannot reach its CA key now; retry later.")
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("registry: %s: %w", what, err)
}

// reword gives a client error another kind and a prefix, as when a policy
// document that CreatePolicy would refuse is refused inside a template; an
// error not meant for the client, or the service's own (unavailable,
// throttled, failed), is returned as it is.
func reword(err error, kind apierr.Kind, prefix string) error {
	e, ok := apierr.As(err)
	if !ok || e.Kind == apierr.ServiceUnavailable || e.Kind == apierr.Throttling || e.Kind == apierr.InternalFailure {
		return err // the service's, not the request's
	}
	return apierr.Wrap(kind, err, "%s%s", prefix, e.Message)
}
