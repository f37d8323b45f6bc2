package store

import (
	"context"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
)

// ProvisioningTemplates keeps provisioning templates and their versions.
// Every call returns ErrNotFound when the template (or the version) does
// not exist.
type ProvisioningTemplates interface {
	// CreateProvisioningTemplate stores a template with its first version,
	// the default, and its tags; ErrExists if the scope has a template of
	// that name, ErrLimit if it already has max templates.
	CreateProvisioningTemplate(ctx context.Context, t *iot.ProvisioningTemplate, tags []iot.Tag, max int) error
	// ProvisioningTemplate returns a template with its default version's body.
	ProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error)
	// ListProvisioningTemplates returns up to limit templates named after
	// after, in name order, without bodies, and whether more follow.
	ListProvisioningTemplates(ctx context.Context, scope iot.Scope, after string, limit int) (templates []iot.ProvisioningTemplate, more bool, err error)
	// UpdateProvisioningTemplate changes a template under a lock; change may
	// set DefaultVersionID to another of its versions (ErrNotFound if there
	// is no such version). The returned template has no body.
	UpdateProvisioningTemplate(ctx context.Context, scope iot.Scope, name string, at time.Time, change func(t *iot.ProvisioningTemplate) error) (*iot.ProvisioningTemplate, error)
	// DeleteProvisioningTemplate deletes a template, its versions and its
	// tags; ErrAttached while a CA's registration config names it.
	DeleteProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) error
	// CreateProvisioningTemplateVersion adds a version; ErrLimit when the
	// template already has max versions.
	CreateProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name, body string, setAsDefault bool, at time.Time, max int) (*iot.ProvisioningTemplateVersion, error)
	// ProvisioningTemplateVersion returns one version.
	ProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.ProvisioningTemplateVersion, error)
	// ListProvisioningTemplateVersions returns up to limit versions numbered
	// above after, oldest first, and whether more follow.
	ListProvisioningTemplateVersions(ctx context.Context, scope iot.Scope, name string, after int64, limit int) (versions []iot.ProvisioningTemplateVersion, more bool, err error)
	// DeleteProvisioningTemplateVersion deletes a version if check, given
	// it under the template's lock, allows.
	DeleteProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64, check func(v *iot.ProvisioningTemplateVersion) error) error
}

// Provisioning applies provisioning plans.
type Provisioning interface {
	// OwnershipToken returns the certificate a certificateOwnershipToken
	// (by its hash) was given with in scope, and when it expires;
	// ErrNotFound when the scope has no such token (never given, used, or
	// expired and swept).
	OwnershipToken(ctx context.Context, scope iot.Scope, hash string) (certificateID string, expiresAt time.Time, err error)
	// Provision applies a provisioning plan in one transaction: all of it
	// or nothing.
	Provision(ctx context.Context, scope iot.Scope, p *ProvisionWrite) (*Provisioned, error)
	// CreateProvisioningClaim records a claim certificate; ErrExists if
	// its ID is recorded already.
	CreateProvisioningClaim(ctx context.Context, c *ProvisioningClaim) error
	// ProvisioningClaim returns the claim of a certificate ID; ErrNotFound
	// when there is none (never made, or expired and swept by
	// ExpireProvisioningTokens).
	ProvisioningClaim(ctx context.Context, certificateID string) (*ProvisioningClaim, error)
}

// ProvisioningClaim is a claim certificate made by CreateProvisioningClaim:
// a device presenting it may provision itself with the template until the
// claim expires.
type ProvisioningClaim struct {
	Scope         iot.Scope
	CertificateID string
	TemplateName  string
	CreatedAt     time.Time
	ExpiresAt     time.Time
}

// ProvisionWrite is a provisioning plan as the store applies it. The rules
// (what an existing thing or certificate becomes) are the caller's
// functions, run under the rows' locks.
type ProvisionWrite struct {
	At time.Time
	// TokenHash, when set, is the ownership token the plan consumes: it
	// must still exist, unexpired at At, for CertificateID, else
	// ErrNoToken and nothing is written.
	TokenHash string
	// NewCertificate, when set, is a certificate the plan registers
	// (issued from a CSR, or registered from a PEM); CertificateID is its
	// ID. ErrExists if it is registered already.
	NewCertificate *iot.Certificate
	// CertificateID is the certificate the plan provisions, "" for none.
	CertificateID string
	// Certificate decides the certificate's status, given it locked; it
	// returns an error to refuse the plan. Nil leaves it as it is.
	Certificate func(c *iot.Certificate) error
	// ThingName is the thing the plan creates or updates, "" for none.
	ThingName string
	// Thing is given nil and returns the thing to create; if the thing
	// exists (also when another writer created it a moment before) it is
	// given the existing thing, locked, and returns what it becomes, or
	// nil to leave it. An error refuses the plan.
	Thing func(existing *iot.Thing) (*iot.Thing, error)
	// Policies are attached to the certificate: those with a Document are
	// created first unless they exist with the same document (ErrExists
	// if one of that name has another); the others must exist.
	Policies []ProvisionedPolicy
	// MaxPolicies bounds the policies on one certificate (ErrLimit).
	MaxPolicies int
}

// Provisioned is what a plan wrote: the thing (as written or as found),
// the certificate as it now is, and the policies the plan created.
type Provisioned struct {
	Thing           *iot.Thing
	Certificate     *iot.Certificate
	CreatedPolicies []string
}

// ProvisionedPolicy is a policy of a provisioning plan.
type ProvisionedPolicy struct {
	Name string
	// Document is set for a policy the plan creates if absent.
	Document     string
	GenerationID string
}
