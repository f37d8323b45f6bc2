package registry

import (
	"context"
	"errors"
	"strconv"
	"unicode"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/store"
)

// The limits of policies, as at AWS.
const (
	// MaxPolicyVersions is how many versions a policy keeps.
	MaxPolicyVersions = 5
	// MaxPolicyDocument is how many characters, white space aside, a
	// document may have.
	MaxPolicyDocument = 2048
	policyPageSize    = 250
)

// checkPolicyDocument parses a document as the policy engine will run it,
// so nothing is stored that enforcement would read differently.
func checkPolicyDocument(doc string) error {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	if n > MaxPolicyDocument {
		return apierr.New(apierr.MalformedPolicy, "Policy document is Malformed: it has %d characters other than white space; at most %d are allowed.", n, MaxPolicyDocument)
	}
	if _, err := policy.Parse([]byte(doc)); err != nil {
		var m *policy.MalformedError
		if errors.As(err, &m) {
			return apierr.New(apierr.MalformedPolicy, "Policy document is Malformed: %s", m.Reason)
		}
		return internal("parsing a policy", err)
	}
	return nil
}

func policyError(err error, name string, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The policy %s does not exist.", name)
	}
	return internal(what, err)
}

// CreatePolicy stores a policy whose document is its version 1, the default.
func (s *Service) CreatePolicy(ctx context.Context, scope iot.Scope, name, document string, tags []iot.Tag) (*iot.Policy, error) {
	if err := checkPolicyDocument(document); err != nil {
		return nil, err
	}
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	now := s.timestamp()
	p := &iot.Policy{Scope: scope, Name: name, DefaultDocument: document, CreatedAt: now, LastModifiedAt: now, GenerationID: newGenerationID()}
	if err := s.store.CreatePolicy(ctx, p, tags); errors.Is(err, store.ErrExists) {
		e := apierr.New(apierr.ResourceAlreadyExists, "Policy cannot be created - name already exists (name=%s)", name)
		e.ResourceID, e.ResourceARN = name, p.ARN()
		return nil, e
	} else if err != nil {
		return nil, internal("storing a policy", err)
	}
	return p, nil
}

// GetPolicy returns a policy with its default version's document.
func (s *Service) GetPolicy(ctx context.Context, scope iot.Scope, name string) (*iot.Policy, error) {
	p, err := s.store.Policy(ctx, scope, name)
	if err != nil {
		return nil, policyError(err, name, "reading a policy")
	}
	return p, nil
}

// ListPolicies returns a page of the scope's policies in name order.
func (s *Service) ListPolicies(ctx context.Context, scope iot.Scope, opts ListOptions) ([]iot.Policy, string, error) {
	list, next, err := keysetPage(opts, policyName, func(after string, limit int) ([]iot.Policy, bool, error) {
		return s.store.ListPolicies(ctx, scope, after, opts.Ascending, limit)
	})
	if err != nil {
		return nil, "", internal("listing policies", err)
	}
	return list, next, nil
}

func policyName(p iot.Policy) string { return p.Name }

// DeletePolicy deletes a policy that has no version but its default.
func (s *Service) DeletePolicy(ctx context.Context, scope iot.Scope, name string) error {
	err := s.store.DeletePolicy(ctx, scope, name, func(p *iot.Policy, versions int) error {
		if versions > 1 {
			return apierr.New(apierr.DeleteConflict, "Cannot delete the policy because it has one or more policy versions other than the default version (name=%s)", name)
		}
		return nil
	})
	var e *apierr.Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, store.ErrAttached) {
		return apierr.New(apierr.DeleteConflict, "The policy cannot be deleted as the policy is attached to one or more principals (name=%s)", name)
	}
	if err != nil {
		return policyError(err, name, "deleting a policy")
	}
	return nil
}

// CreatePolicyVersion adds a version, the default if setAsDefault.
func (s *Service) CreatePolicyVersion(ctx context.Context, scope iot.Scope, name, document string, setAsDefault bool) (*iot.PolicyVersion, error) {
	defer s.changed()
	if err := checkPolicyDocument(document); err != nil {
		return nil, err
	}
	v, err := s.store.CreatePolicyVersion(ctx, scope, name, document,
		store.PolicyChange{At: s.timestamp(), GenerationID: newGenerationID(), SetAsDefault: setAsDefault}, MaxPolicyVersions)
	if errors.Is(err, store.ErrLimit) {
		return nil, apierr.New(apierr.VersionsLimitExceeded, "The policy %s already has the maximum number of versions (%d)", name, MaxPolicyVersions)
	}
	if err != nil {
		return nil, policyError(err, name, "storing a policy version")
	}
	return v, nil
}

// parseVersionID reads a policyVersionId, a string of digits.
func parseVersionID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0
}

func versionError(err error, name, id, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The policy %s has no version %s.", name, id)
	}
	return internal(what, err)
}

// GetPolicyVersion returns one version of a policy, with the policy's
// generation and last change.
func (s *Service) GetPolicyVersion(ctx context.Context, scope iot.Scope, name, id string) (*iot.PolicyVersion, *iot.Policy, error) {
	n, ok := parseVersionID(id)
	if !ok {
		return nil, nil, apierr.New(apierr.ResourceNotFound, "The policy %s has no version %s.", name, id)
	}
	p, err := s.store.Policy(ctx, scope, name)
	if err != nil {
		return nil, nil, policyError(err, name, "reading a policy")
	}
	v, err := s.store.PolicyVersion(ctx, scope, name, n)
	if err != nil {
		return nil, nil, versionError(err, name, id, "reading a policy version")
	}
	return v, p, nil
}

// ListPolicyVersions returns every version of a policy, newest first.
func (s *Service) ListPolicyVersions(ctx context.Context, scope iot.Scope, name string) ([]iot.PolicyVersion, error) {
	list, err := s.store.ListPolicyVersions(ctx, scope, name)
	if err != nil {
		return nil, policyError(err, name, "listing policy versions")
	}
	return list, nil
}

// SetDefaultPolicyVersion makes a version the default.
func (s *Service) SetDefaultPolicyVersion(ctx context.Context, scope iot.Scope, name, id string) error {
	defer s.changed()
	n, ok := parseVersionID(id)
	if !ok {
		return apierr.New(apierr.ResourceNotFound, "The policy %s has no version %s.", name, id)
	}
	if _, err := s.store.Policy(ctx, scope, name); err != nil {
		return policyError(err, name, "reading a policy")
	}
	err := s.store.SetDefaultPolicyVersion(ctx, scope, name, n, store.PolicyChange{At: s.timestamp(), GenerationID: newGenerationID()})
	if err != nil {
		return versionError(err, name, id, "setting the default policy version")
	}
	return nil
}

// DeletePolicyVersion deletes a version other than the default.
func (s *Service) DeletePolicyVersion(ctx context.Context, scope iot.Scope, name, id string) error {
	n, ok := parseVersionID(id)
	if !ok {
		return apierr.New(apierr.ResourceNotFound, "The policy %s has no version %s.", name, id)
	}
	if _, err := s.store.Policy(ctx, scope, name); err != nil {
		return policyError(err, name, "reading a policy")
	}
	err := s.store.DeletePolicyVersion(ctx, scope, name, n, func(v *iot.PolicyVersion) error {
		if v.IsDefault {
			return apierr.New(apierr.DeleteConflict, "Cannot delete the default version of a policy; use DeletePolicy (name=%s, version=%s)", name, id)
		}
		return nil
	})
	var e *apierr.Error
	if errors.As(err, &e) {
		return err
	}
	if err != nil {
		return versionError(err, name, id, "deleting a policy version")
	}
	return nil
}

// MaxPoliciesPerCertificate is how many policies one certificate may have
// attached, as at AWS.
const MaxPoliciesPerCertificate = 10

// certificateTarget reads a policy target: a certificate ARN of the scope
// (fleetca has no thing groups or Cognito identities to attach to). It
// returns the certificate's ID and its ARN as fleetca writes it.
func certificateTarget(scope iot.Scope, target string) (string, string, error) {
	p, ok := iot.ParseARN(target)
	if !ok || p.ResourceType != iot.TypeCertificate {
		return "", "", apierr.New(apierr.InvalidRequest, "The target %q is not a certificate ARN; fleetca attaches policies to certificates.", truncate(target, 256))
	}
	if p.Partition != iot.Partition || p.Region != scope.Region || p.AccountID != scope.AccountID {
		return "", "", apierr.New(apierr.InvalidRequest, "The target names a certificate of another account, region or partition.")
	}
	id, ok := iot.NormalizeCertificateID(p.ResourceID)
	if !ok {
		return "", "", apierr.New(apierr.InvalidRequest, "The target's certificate ID is not 64 hexadecimal characters.")
	}
	return id, scope.CertificateARN(id), nil
}

// AttachPolicy attaches a policy to a certificate.
func (s *Service) AttachPolicy(ctx context.Context, scope iot.Scope, name, target string) error {
	defer s.changed()
	id, _, err := certificateTarget(scope, target)
	if err != nil {
		return err
	}
	if _, err := s.store.Policy(ctx, scope, name); err != nil {
		return policyError(err, name, "reading a policy")
	}
	err = s.store.AttachPolicyToCertificate(ctx, scope, name, id, MaxPoliciesPerCertificate, s.timestamp())
	switch {
	case errors.Is(err, store.ErrLimit):
		return apierr.New(apierr.LimitExceeded, "The certificate %s has the maximum number of policies attached (%d).", id, MaxPoliciesPerCertificate)
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.ResourceNotFound, "The policy %s or the certificate %s does not exist.", name, id)
	case err != nil:
		return internal("attaching a policy", err)
	}
	return nil
}

// DetachPolicy detaches a policy from a certificate.
func (s *Service) DetachPolicy(ctx context.Context, scope iot.Scope, name, target string) error {
	defer s.changed()
	_, arn, err := certificateTarget(scope, target)
	if err != nil {
		return err
	}
	if err := s.store.DetachPolicy(ctx, scope, name, arn, s.now()); err != nil {
		return policyError(err, name, "detaching a policy")
	}
	return nil
}

// ListAttachedPolicies lists the policies attached to a certificate, in
// name order.
func (s *Service) ListAttachedPolicies(ctx context.Context, scope iot.Scope, target string, opts ListOptions) ([]iot.Policy, string, error) {
	id, arn, err := certificateTarget(scope, target)
	if err != nil {
		return nil, "", err
	}
	if _, err := s.store.Certificate(ctx, scope, id); err != nil {
		return nil, "", certificateError(err, id)
	}
	list, next, err := keysetPage(opts, policyName, func(after string, limit int) ([]iot.Policy, bool, error) {
		return s.store.ListAttachedPolicies(ctx, scope, arn, after, limit)
	})
	if err != nil {
		return nil, "", internal("listing attached policies", err)
	}
	return list, next, nil
}

// ListTargetsForPolicy lists the targets a policy is attached to.
func (s *Service) ListTargetsForPolicy(ctx context.Context, scope iot.Scope, name string, opts ListOptions) ([]string, string, error) {
	list, next, err := keysetPage(opts, func(target string) string { return target }, func(after string, limit int) ([]string, bool, error) {
		return s.store.ListPolicyTargets(ctx, scope, name, after, limit)
	})
	if err != nil {
		return nil, "", policyError(err, name, "listing policy targets")
	}
	return list, next, nil
}

// keysetPage reads one page of a listing ordered by a name: list reads up
// to limit items after the name the marker holds (the first page without
// one), and key gives an item's name, which the next page's marker holds.
// A malformed marker is the client's error (an apierr); list's errors are
// returned as they are, for the caller to map.
func keysetPage[T any](opts ListOptions, key func(T) string, list func(after string, limit int) ([]T, bool, error)) ([]T, string, error) {
	after, err := markerID(opts.Marker)
	if err != nil {
		return nil, "", err
	}
	items, more, err := list(after, pageSize(opts.PageSize))
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = store.Cursor{ID: key(items[len(items)-1])}.Marker()
	}
	return items, next, nil
}

// markerID is the name a paging marker resumes after; empty for the
// first page.
func markerID(m string) (string, error) {
	cur, err := parseMarker(m)
	if err != nil || cur == nil {
		return "", err
	}
	return cur.ID, nil
}

func pageSize(n int) int {
	if n <= 0 || n > policyPageSize {
		return policyPageSize
	}
	return n
}
