package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/store"
)

// Claim is a provisioning claim: a certificate, its key pair, and when it
// expires. The private key exists nowhere else and must not be logged.
type Claim struct {
	CertificateID  string
	CertificatePEM string
	PublicKeyPEM   string
	PrivateKeyPEM  string
	Expiration     time.Time
}

// CreateProvisioningClaim makes a claim certificate for a template
// (provisioning by a trusted user): valid five minutes, not a registered
// certificate — no listing shows it and DescribeCertificate does not know
// it —, and with no policy but the implicit one that lets a device
// connect and provision itself with this template (see claimPolicy).
func (s *Service) CreateProvisioningClaim(ctx context.Context, scope iot.Scope, templateName string) (*Claim, error) {
	t, err := s.fleetTemplate(ctx, scope, templateName)
	if err != nil {
		return nil, err
	}
	key, err := s.newDeviceKey()
	if err != nil {
		return nil, internal("generating a key", err)
	}
	issued, err := s.authority.IssueClaim(ctx, &key.PublicKey)
	if err != nil {
		return nil, internal("issuing a claim", err)
	}
	id := iot.CertificateID(issued.DER)
	err = s.store.CreateProvisioningClaim(ctx, &store.ProvisioningClaim{Scope: scope, CertificateID: id, TemplateName: t.Name,
		CreatedAt: s.timestamp(), ExpiresAt: issued.NotAfter})
	if err != nil {
		return nil, internal("storing a provisioning claim", err)
	}
	public, err := pki.EncodePublicKey(&key.PublicKey)
	if err != nil {
		return nil, internal("encoding a public key", err)
	}
	return &Claim{CertificateID: id, CertificatePEM: pki.EncodeCertificate(issued.DER), PublicKeyPEM: public,
		PrivateKeyPEM: pki.EncodeRSAPrivateKey(key), Expiration: issued.NotAfter}, nil
}

// admitClaim admits a device presenting a provisioning claim of a scope it
// reaches, while the claim is valid and chains to fleetca's CA; claim
// reports whether the certificate is such a claim. The admitted
// certificate is the claim's, ACTIVE until it expires; it is not in the
// registry.
func (s *Service) admitClaim(ctx context.Context, leaf *x509.Certificate, account string) (a Admission, claim bool, err error) {
	c, err := s.store.ProvisioningClaim(ctx, iot.CertificateID(leaf.Raw))
	if errors.Is(err, store.ErrNotFound) {
		return Admission{}, false, nil
	}
	if err != nil {
		return Admission{}, false, internal("finding a provisioning claim", err)
	}
	if !reachable(c.Scope, iot.ModeDefault, account) {
		return Admission{}, false, nil
	}
	if !s.now().Before(c.ExpiresAt) {
		return Admission{Refusal: "the provisioning claim expired"}, true, nil
	}
	if !s.fromOwnIssuer(leaf) {
		return Admission{Refusal: "the provisioning claim does not chain to fleetca's CA"}, true, nil
	}
	return Admission{Certificate: &iot.Certificate{Scope: c.Scope, ID: c.CertificateID, Status: iot.StatusActive, Mode: iot.ModeDefault,
		DER: leaf.Raw, OwnedBy: c.Scope.AccountID, CreatedAt: c.CreatedAt, LastModifiedAt: c.CreatedAt,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC()}, ExpiresAt: c.ExpiresAt}, true, nil
}

// claimStillValid reports whether a connected device's certificate is a
// provisioning claim of the scope that has not expired.
func (s *Service) claimStillValid(ctx context.Context, scope iot.Scope, id string) (bool, error) {
	c, err := s.store.ProvisioningClaim(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, internal("finding a provisioning claim", err)
	}
	return c.Scope == scope && s.now().Before(c.ExpiresAt), nil
}

// claimPolicy is the authority of a provisioning claim, which AWS does not
// publish; fleetca grants what provisioning with the claim's template
// needs and nothing else: connect, the certificate topics, and the
// template's RegisterThing topics.
func claimPolicy(scope iot.Scope, template string) string {
	var topics, filters []string
	for _, t := range []string{"$aws/certificates/create/*", "$aws/certificates/create-from-csr/*", "$aws/provisioning-templates/" + template + "/provision/*"} {
		topics = append(topics, strconv.Quote(scope.ARN("topic", t)))
		filters = append(filters, strconv.Quote(scope.ARN("topicfilter", t)))
	}
	return `{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
		{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [` + strings.Join(topics, ", ") + `]},
		{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [` + strings.Join(filters, ", ") + `]}]}`
}

// claimGrants is what a device connected with a provisioning claim may do,
// or nil when the certificate is no claim of the scope.
func (s *Service) claimGrants(ctx context.Context, scope iot.Scope, certificateID string) (*Grants, error) {
	c, err := s.store.ProvisioningClaim(ctx, certificateID)
	if errors.Is(err, store.ErrNotFound) || err == nil && c.Scope != scope {
		return nil, nil
	}
	if err != nil {
		return nil, internal("finding a provisioning claim", err)
	}
	compiled, err := s.compiled.get(claimPolicy(scope, c.TemplateName))
	if err != nil {
		return nil, internal("compiling a claim's policy", err)
	}
	return &Grants{Policies: []*policy.Policy{compiled}, PolicyNames: []string{"provisioning-claim/" + c.TemplateName}}, nil
}
