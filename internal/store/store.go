// Package store declares what fleetca keeps and how it asks for it: the
// storage interfaces shaped by fleetca's queries, the sentinel errors every
// backend returns, and keyset paging. Backends live in subpackages and are
// checked by storetest.Run.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
)

// Sentinel errors. Backends wrap or return these; callers test with errors.Is.
var (
	ErrNotFound  = errors.New("store: not found")
	ErrExists    = errors.New("store: already exists")
	ErrBadCursor = errors.New("store: malformed paging marker")
	// ErrUnavailable wraps a failure of the database itself rather than of
	// the write: the disk is full or read-only, the database did not answer
	// within the write timeout, or the connection to it failed. The request
	// may succeed later; front ends answer 503.
	ErrUnavailable = errors.New("store: the database is unavailable")
	ErrClosed      = errors.New("store: closed")
	// ErrConflict is a uniqueness rule that spans scopes: a DEFAULT-mode CA
	// registered in another account of the same region.
	ErrConflict = errors.New("store: conflicts with another account's resource")
	// ErrLimit is a limit the store enforces atomically: a bound the caller
	// passes (the maxSameSubject and max parameters), counted in the write
	// transaction, or one the schema holds (one provider per scope). It is
	// the one way limits are enforced, so every limit is safe across
	// replicas.
	ErrLimit = errors.New("store: limit exceeded")
	// ErrAttached is a certificate or policy that policies are attached to
	// (or that is attached to them): it is not deleted unless forced (a
	// certificate's policies detached with it).
	ErrAttached = errors.New("store: attached")
	// ErrThingAttached is a certificate attached to a thing, or a thing
	// with principals: it is not deleted, forced or not.
	ErrThingAttached = errors.New("store: attached to a thing")
	// ErrExclusive is a principal attached to a thing exclusively, or one
	// that cannot be attached exclusively because it is attached elsewhere.
	ErrExclusive = errors.New("store: exclusively attached")
	// ErrVersionMismatch is an expected version that is not the current one.
	ErrVersionMismatch = errors.New("store: version mismatch")
	// ErrNoToken is a certificateOwnershipToken that a provisioning plan
	// names but the store no longer holds: used by another request, or
	// expired.
	ErrNoToken = errors.New("store: no such ownership token")
	// ErrTokenMismatch is a client token used before with other parameters.
	ErrTokenMismatch = errors.New("store: client token reused with different parameters")
)

// Store is everything a backend provides.
type Store interface {
	Accounts
	Certificates
	CACertificates
	RegistrationCodes
	Tags
	CertificateProviders
	CAKeeper
	RootPin
	Revocations
	Policies
	Things
	ThingTypes
	Changes
	ProvisioningTemplates
	Provisioning
	// Close waits for pending writes and releases the backend.
	Close() error
}

// Account is an AWS account fleetca serves.
type Account struct {
	ID        string
	CreatedAt time.Time
}

// AccessKey is a SigV4 credential of an account. The secret is kept because
// SigV4 verification needs it.
type AccessKey struct {
	ID        string
	Secret    string
	AccountID string
	CreatedAt time.Time
}

// Accounts keeps accounts and their access keys.
type Accounts interface {
	// CreateAccount adds an account; ErrExists if its ID is taken.
	CreateAccount(ctx context.Context, a Account) error
	// Accounts lists every account, oldest first.
	Accounts(ctx context.Context) ([]Account, error)
	// EnsureFirstAccount returns the oldest account. When there is none it
	// first creates a with its key k, atomically, so that replicas starting
	// together make one first account; created tells whether this call did.
	EnsureFirstAccount(ctx context.Context, a Account, k AccessKey) (first Account, created bool, err error)
	// CreateAccessKey adds a key to an existing account; ErrExists if the key
	// ID is taken, ErrNotFound if the account does not exist.
	CreateAccessKey(ctx context.Context, k AccessKey) error
	// AccessKey returns the key with the ID, or ErrNotFound.
	AccessKey(ctx context.Context, id string) (AccessKey, error)
	// AccessKeys lists every access key.
	AccessKeys(ctx context.Context) ([]AccessKey, error)
	// ReplaceAccessKeySecret stores secret as the key's secret if its
	// stored secret is still old (compare and swap); ErrNotFound otherwise.
	ReplaceAccessKeySecret(ctx context.Context, id, old, secret string) error
}

// Certificates keeps device certificates.
type Certificates interface {
	// CreateCertificate stores a new certificate durably; ErrExists if the
	// scope has one with the same ID.
	CreateCertificate(ctx context.Context, c *iot.Certificate) error
	// Certificate returns the certificate, DER included, or ErrNotFound.
	Certificate(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error)
	// AnyCertificates reports whether any scope holds a certificate.
	AnyCertificates(ctx context.Context) (bool, error)
	// ListCertificates returns one page of the scope's certificates, ordered by
	// creation time then ID. Listed certificates carry no DER.
	ListCertificates(ctx context.Context, q CertificateQuery) (CertificatePage, error)
	// UpdateCertificate applies change to the stored certificate atomically:
	// no other write to it happens between the read and the write. change may
	// alter Status, OwnedBy, PreviousOwnedBy, LastModifiedAt, CustomerVersion
	// and GenerationID; other fields are not written. If change returns an
	// error nothing is written and that error is returned.
	UpdateCertificate(ctx context.Context, scope iot.Scope, id string, change func(*iot.Certificate) error) (*iot.Certificate, error)
	// DeleteCertificate deletes the certificate if check, called on the stored
	// certificate in the same transaction, returns nil; ErrNotFound if absent.
	// With policies attached it returns ErrAttached, or, with detach,
	// detaches them in the same transaction; attached to a thing, it
	// returns ErrThingAttached.
	DeleteCertificate(ctx context.Context, scope iot.Scope, id string, detach bool, check func(*iot.Certificate) error) error
	// CertificatesByID returns the registrations of a certificate in every
	// scope, DER included.
	CertificatesByID(ctx context.Context, id string) ([]iot.Certificate, error)
	// CreateProvisionedCertificate stores a certificate made through fleet
	// provisioning together with its ownership token, in one transaction.
	CreateProvisionedCertificate(ctx context.Context, c *iot.Certificate, token ProvisioningToken) error
	// ExpireProvisioningTokens removes the tokens that expired before now and
	// deletes their certificates that are still PENDING_ACTIVATION; it
	// returns the certificates it deleted. It forgets the provisioning
	// claims that expired before now too.
	ExpireProvisioningTokens(ctx context.Context, now time.Time) ([]iot.Certificate, error)
}

// ProvisioningToken is a certificateOwnershipToken as stored: its SHA-256 and
// when it expires.
type ProvisioningToken struct {
	Hash      string
	ExpiresAt time.Time
}

// CertificateQuery selects a page of certificates.
type CertificateQuery struct {
	Scope     iot.Scope
	Limit     int
	Ascending bool
	// CACertificateID, when set, selects the certificates registered under
	// that CA.
	CACertificateID string
	// After is the cursor of the last certificate of the previous page.
	After *Cursor
}

// CertificatePage is one page of certificates; Next is set when more follow.
type CertificatePage struct {
	Certificates []iot.Certificate
	Next         *Cursor
}

// CACertificates keeps registered CA certificates.
type CACertificates interface {
	// CreateCACertificate stores a CA certificate and its tags. ErrExists if
	// the scope has this CA already; ErrConflict if the CA is DEFAULT-mode
	// and another account of the region has it in DEFAULT mode; ErrLimit if
	// the scope would then have more than maxSameSubject CA certificates
	// with its subject (counted in the write transaction).
	CreateCACertificate(ctx context.Context, ca *iot.CACertificate, tags []iot.Tag, maxSameSubject int) error
	// CACertificate returns the CA certificate, DER included, or ErrNotFound.
	CACertificate(ctx context.Context, scope iot.Scope, id string) (*iot.CACertificate, error)
	// CACertificatesBySubject returns the scope's CA certificates, DER
	// included, whose subject has the key. An empty scope means every scope.
	CACertificatesBySubject(ctx context.Context, scope iot.Scope, subjectKey string) ([]iot.CACertificate, error)
	// ListCACertificates returns one page of the scope's CA certificates, in
	// creation order; listed certificates carry no DER.
	ListCACertificates(ctx context.Context, q CACertificateQuery) (CACertificatePage, error)
	// UpdateCACertificate applies change atomically, as UpdateCertificate
	// does. change may alter Status, AutoRegistration, RegistrationConfig,
	// LastModifiedAt, CustomerVersion and GenerationID.
	UpdateCACertificate(ctx context.Context, scope iot.Scope, id string, change func(*iot.CACertificate) error) (*iot.CACertificate, error)
	// DeleteCACertificate deletes the CA certificate and its tags if check
	// returns nil; ErrNotFound if absent.
	DeleteCACertificate(ctx context.Context, scope iot.Scope, id string, check func(*iot.CACertificate) error) error
}

// CACertificateQuery selects a page of CA certificates.
type CACertificateQuery struct {
	Scope     iot.Scope
	Limit     int
	Ascending bool
	After     *Cursor
	// TemplateName, when set, selects the CAs whose registration config
	// names that provisioning template.
	TemplateName string
}

// CACertificatePage is one page of CA certificates; Next is set when more follow.
type CACertificatePage struct {
	CACertificates []iot.CACertificate
	Next           *Cursor
}

// RegistrationCodes keeps each scope's CA registration code.
type RegistrationCodes interface {
	// RegistrationCode returns the scope's code, storing newCode as the code
	// first if the scope has none, so concurrent callers all get one code.
	// With newCode empty it only reads: ErrNotFound if the scope has no code.
	RegistrationCode(ctx context.Context, scope iot.Scope, newCode string) (string, error)
	// DeleteRegistrationCode deletes the scope's code; ErrNotFound if none.
	DeleteRegistrationCode(ctx context.Context, scope iot.Scope) error
}

// Tags keeps the tags of resources. Every call returns ErrNotFound when the
// resource does not exist.
type Tags interface {
	// Tags returns the resource's tags sorted by key.
	Tags(ctx context.Context, r iot.Resource) ([]iot.Tag, error)
	// TagResource adds tags, overwriting the values of existing keys; ErrLimit
	// if the resource would then have more than max tags.
	TagResource(ctx context.Context, r iot.Resource, tags []iot.Tag, max int) error
	// UntagResource removes the tags with the keys; absent keys are ignored.
	UntagResource(ctx context.Context, r iot.Resource, keys []string) error
}

// ClientToken makes a create call idempotent: Hash identifies the request's
// parameters, so a retry can be told from a different request under the same
// token.
type ClientToken struct {
	Value string
	Hash  string
}

// CertificateProviders keeps each scope's certificate provider (at most one).
type CertificateProviders interface {
	// CreateCertificateProvider stores the provider and its tags. With a client
	// token seen before in the scope it writes nothing and returns
	// replayed=true if the hash is the same, ErrTokenMismatch if not.
	// Otherwise ErrExists if the scope has a provider of that name, ErrLimit if
	// it has one of another name.
	CreateCertificateProvider(ctx context.Context, p *iot.CertificateProvider, tags []iot.Tag, token ClientToken) (replayed bool, err error)
	// CertificateProvider returns the scope's provider of that name, or ErrNotFound.
	CertificateProvider(ctx context.Context, scope iot.Scope, name string) (*iot.CertificateProvider, error)
	// ScopeCertificateProvider returns the scope's provider, or ErrNotFound.
	ScopeCertificateProvider(ctx context.Context, scope iot.Scope) (*iot.CertificateProvider, error)
	// ListCertificateProviders returns up to limit of the scope's providers in
	// name order, after the name after (empty for the first page); more tells
	// whether others follow.
	ListCertificateProviders(ctx context.Context, scope iot.Scope, after string, ascending bool, limit int) (providers []iot.CertificateProvider, more bool, err error)
	// UpdateCertificateProvider applies change atomically; change may alter
	// LambdaFunctionARN, AccountDefaultForOperations and LastModifiedAt.
	UpdateCertificateProvider(ctx context.Context, scope iot.Scope, name string, change func(*iot.CertificateProvider) error) (*iot.CertificateProvider, error)
	// DeleteCertificateProvider deletes the provider and its tags; ErrNotFound if absent.
	DeleteCertificateProvider(ctx context.Context, scope iot.Scope, name string) error
}

// Revocations keeps what CRLs and OCSP answers are made of: which of the
// certificates a fleetca CA signed are unusable, and each issuer's current
// CRL.
type Revocations interface {
	// UnusableCertificates returns the certificates the issuer signed that
	// are not ACTIVE or were deleted, unexpired at now, sorted by serial (as
	// text), a registration before a deletion of the same serial.
	UnusableCertificates(ctx context.Context, issuerID string, now time.Time) ([]UnusableCertificate, error)
	// UnusableFingerprint is a cheap summary of UnusableCertificates: it
	// changes whenever a certificate of the issuer enters or leaves that
	// set or changes status within it, so a caller can tell when the set
	// must be read again without reading it.
	UnusableFingerprint(ctx context.Context, issuerID string) (string, error)
	// IssuedSerial reports whether the issuer signed a certificate with the
	// serial (lower-case hex) that is registered or was deleted.
	IssuedSerial(ctx context.Context, issuerID, serial string) (bool, error)
	// CRL returns the issuer's current CRL, or ErrNotFound.
	CRL(ctx context.Context, issuerID string) (*CRL, error)
	// SaveCRL makes c the issuer's current CRL if the stored one is
	// numbered prev (0: if none is stored), and returns ErrConflict
	// otherwise: another replica stored a CRL first.
	SaveCRL(ctx context.Context, c *CRL, prev int64) error
	// UnattributedCertificates returns up to limit certificates, DER
	// included, that fleetca may have signed before it recorded issuers and
	// serials: those stored before the revocation migration in DEFAULT mode
	// under no registered CA, not yet given to AttributeCertificates.
	UnattributedCertificates(ctx context.Context, limit int) ([]iot.Certificate, error)
	// AttributeCertificates records, in one transaction, the issuer and
	// serial of unattributed certificates; an empty issuer records that
	// fleetca did not sign one. A certificate already attributed is left
	// as it is.
	AttributeCertificates(ctx context.Context, attributions []Attribution) error
}

// Attribution is the issuer and serial of one certificate, by scope and ID.
type Attribution struct {
	Scope    iot.Scope
	ID       string
	IssuerID string
	Serial   string
}

// UnusableCertificate is a certificate a verifier must refuse: its serial,
// its status (when it was deleted, its status then), whether it was
// deleted, and since when it has been unusable.
type UnusableCertificate struct {
	Serial  string
	Status  iot.Status
	Deleted bool
	Since   time.Time
}

// CRL is a signed certificate revocation list as stored. Digest identifies
// the entries it was made from.
type CRL struct {
	IssuerID   string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Digest     string
	DER        []byte
}

// Policies keeps IoT policies and their versions. Every call returns
// ErrNotFound when the policy (or the version) does not exist.
type Policies interface {
	// CreatePolicy stores a policy with its first version, the default, and
	// its tags; ErrExists if the scope has a policy of that name.
	CreatePolicy(ctx context.Context, p *iot.Policy, tags []iot.Tag) error
	// Policy returns the policy with its default version's document.
	Policy(ctx context.Context, scope iot.Scope, name string) (*iot.Policy, error)
	// ListPolicies returns up to limit of the scope's policies in name
	// order, after the name after (empty for the first page); more tells
	// whether others follow. Listed policies carry no document.
	ListPolicies(ctx context.Context, scope iot.Scope, after string, ascending bool, limit int) (policies []iot.Policy, more bool, err error)
	// DeletePolicy deletes the policy, its versions and its tags if check,
	// called in the same transaction with the policy and its number of
	// versions, returns nil; ErrAttached if it is attached to a target.
	DeletePolicy(ctx context.Context, scope iot.Scope, name string, check func(p *iot.Policy, versions int) error) error
	// AttachPolicyToCertificate attaches the policy to the certificate
	// (its ARN is the target); attaching twice is no change. ErrNotFound
	// if either is absent, ErrLimit if the certificate would have more than
	// max policies (counted in the transaction).
	AttachPolicyToCertificate(ctx context.Context, scope iot.Scope, policy, certificateID string, max int, now time.Time) error
	// DetachPolicy detaches the policy from the target; a target it is not
	// attached to is no change. ErrNotFound if the policy is absent.
	DetachPolicy(ctx context.Context, scope iot.Scope, policy, target string, at time.Time) error
	// ListAttachedPolicies returns up to limit of the policies attached to
	// the target, in name order after after; more tells whether others
	// follow.
	ListAttachedPolicies(ctx context.Context, scope iot.Scope, target, after string, limit int) (policies []iot.Policy, more bool, err error)
	// ListPolicyTargets returns up to limit of the policy's targets, in
	// order after after; ErrNotFound if the policy is absent.
	ListPolicyTargets(ctx context.Context, scope iot.Scope, policy, after string, limit int) (targets []string, more bool, err error)
	// CreatePolicyVersion adds a version with the next ID; with
	// change.SetAsDefault it becomes the default, and the policy takes
	// change's time and generation. ErrLimit if the policy has max versions
	// already (counted in the write transaction, so replicas never exceed it).
	CreatePolicyVersion(ctx context.Context, scope iot.Scope, name, document string, change PolicyChange, max int) (*iot.PolicyVersion, error)
	// PolicyVersion returns one version.
	PolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.PolicyVersion, error)
	// ListPolicyVersions returns every version, newest first.
	ListPolicyVersions(ctx context.Context, scope iot.Scope, name string) ([]iot.PolicyVersion, error)
	// SetDefaultPolicyVersion makes the version the default; the policy
	// takes change's time and generation.
	SetDefaultPolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64, change PolicyChange) error
	// DeletePolicyVersion deletes the version if check, called in the same
	// transaction, returns nil.
	DeletePolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64, check func(v *iot.PolicyVersion) error) error
}

// PolicyChange is when a policy changes and the generation ID it takes.
type PolicyChange struct {
	At           time.Time
	GenerationID string
	SetAsDefault bool
}

// Things keeps things and the principals attached to them. Every call
// returns ErrNotFound when the thing does not exist.
type Things interface {
	// CreateThing stores a thing and its tags; ErrExists if the scope has a
	// thing of that name.
	CreateThing(ctx context.Context, t *iot.Thing, tags []iot.Tag) error
	// Thing returns one thing.
	Thing(ctx context.Context, scope iot.Scope, name string) (*iot.Thing, error)
	// ListThings returns up to limit of the scope's things that pass the
	// filter, in name order after after; more tells whether others follow.
	ListThings(ctx context.Context, scope iot.Scope, filter ThingFilter, after string, limit int) (things []iot.Thing, more bool, err error)
	// UpdateThing changes a thing with update, called in the write
	// transaction with the thing as stored; the thing then takes the next
	// version and at as its modification time. The result is the thing as
	// updated.
	UpdateThing(ctx context.Context, scope iot.Scope, name string, at time.Time, update func(t *iot.Thing) error) (*iot.Thing, error)
	// DeleteThing deletes the thing and its tags if check, called in the
	// same transaction, returns nil; ErrThingAttached if principals are
	// attached to it.
	DeleteThing(ctx context.Context, scope iot.Scope, name string, check func(t *iot.Thing) error) error
	// AttachThingPrincipal attaches the certificate (its ARN is the
	// principal) to the thing; attaching twice is no change, though it may
	// make the attachment exclusive. ErrNotFound if either is absent;
	// ErrExclusive if the certificate is attached to another thing
	// exclusively, or exclusive is asked and it is attached to another
	// thing.
	AttachThingPrincipal(ctx context.Context, scope iot.Scope, thing, certificateID string, exclusive bool, at time.Time) error
	// DetachThingPrincipal detaches the principal; a principal that is not
	// attached is no change.
	DetachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string, at time.Time) error
	// ListThingPrincipals returns up to limit of the thing's principals in
	// order after after.
	ListThingPrincipals(ctx context.Context, scope iot.Scope, thing string, only Attachments, after string, limit int) (principals []iot.ThingPrincipal, more bool, err error)
	// ListPrincipalThings returns up to limit of the things the principal
	// is attached to, in name order after after; a principal attached to
	// nothing has none (no ErrNotFound).
	ListPrincipalThings(ctx context.Context, scope iot.Scope, principal string, only Attachments, after string, limit int) (things []iot.ThingPrincipal, more bool, err error)
	// ConnectionGrants returns what a device connecting with the
	// certificate (its ARN is the principal) and clientID is granted: the
	// policies attached to the certificate, each with its default
	// document, and the thing for the connection, or nil: the thing named
	// clientID if the certificate is attached to it, else the one thing the
	// certificate is attached to exclusively.
	ConnectionGrants(ctx context.Context, scope iot.Scope, principal, clientID string) (policies []iot.Policy, thing *iot.Thing, err error)
}

// ThingTypes keeps thing types. Every call returns ErrNotFound when the
// type does not exist.
type ThingTypes interface {
	// CreateThingType stores a type and its tags; ErrExists if the scope has
	// one of that name.
	CreateThingType(ctx context.Context, t *iot.ThingType, tags []iot.Tag) error
	// ThingType returns a type.
	ThingType(ctx context.Context, scope iot.Scope, name string) (*iot.ThingType, error)
	// ListThingTypes returns up to limit types named after after, in name
	// order, and whether more follow.
	ListThingTypes(ctx context.Context, scope iot.Scope, after string, limit int) (types []iot.ThingType, more bool, err error)
	// DeprecateThingType deprecates a type at at (one deprecated already
	// keeps its time), or undoes that.
	DeprecateThingType(ctx context.Context, scope iot.Scope, name string, deprecate bool, at time.Time) error
	// DeleteThingType deletes a type if check, given it under its lock,
	// allows; ErrAttached while a thing has the type.
	DeleteThingType(ctx context.Context, scope iot.Scope, name string, check func(t *iot.ThingType) error) error
}

// Attachments selects thing principals by how they are attached.
type Attachments uint8

// The selections of Attachments.
const (
	AnyAttachment Attachments = iota
	ExclusiveOnly
	NonExclusiveOnly
)

// ThingFilter selects things: those with attribute AttributeName (if set)
// whose value is AttributeValue (or starts with it, with ValuePrefix; any
// value if empty), and of thing type TypeName (if set).
type ThingFilter struct {
	AttributeName  string
	AttributeValue string
	ValuePrefix    bool
	TypeName       string
}

// Changes is the change feed: every change that connected devices may
// depend on, written in the transaction that makes it, numbered in commit
// order on SQLite and in order of insertion on PostgreSQL, where a
// transaction that commits late leaves a gap that fills later.
type Changes interface {
	// Changes returns up to limit changes numbered above after, in order.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the highest number given so far, 0 for none: not
	// the feed's highest, when changes were pruned or, on PostgreSQL,
	// transactions holding numbers have not committed yet.
	LastChange(ctx context.Context) (int64, error)
	// PruneChanges deletes the changes made before t.
	PruneChanges(ctx context.Context, before time.Time) error
}

// Change is one entry of the change feed.
type Change struct {
	Seq   int64
	Scope iot.Scope
	Kind  ChangeKind
	// Name is what changed: a policy name, a principal's ARN, a thing name,
	// or a certificate's or CA's ID.
	Name string
	At   time.Time
}

// ChangeKind says what a change is about.
type ChangeKind string

// The kinds of change.
const (
	// ChangePolicy: the policy's default version changed.
	ChangePolicy ChangeKind = "policy"
	// ChangePrincipal: policies or things were attached to or detached
	// from the principal.
	ChangePrincipal ChangeKind = "principal"
	// ChangeThing: the thing's attributes or type changed.
	ChangeThing ChangeKind = "thing"
	// ChangeCertificate: the certificate's status changed, or it was
	// deleted (Name is its ID).
	ChangeCertificate ChangeKind = "certificate"
	// ChangeCA: the CA certificate's status changed, or it was deleted
	// (Name is its ID).
	ChangeCA ChangeKind = "ca"
)
