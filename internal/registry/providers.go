package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// lambdaFunctionARN is a Lambda function ARN, optionally with a version or
// alias: the model takes any string, the provider needs a function.
var lambdaFunctionARN = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z]{2}(-[a-z]+)+-\d:\d{12}:function:[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$`)

func checkLambdaARN(arn string) error {
	if len(arn) > 2048 || !lambdaFunctionARN.MatchString(arn) {
		return apierr.New(apierr.InvalidRequest, "lambdaFunctionArn must be a Lambda function ARN, such as arn:aws:lambda:us-east-1:123456789012:function:signer.")
	}
	return nil
}

// checkFunctionAccount refuses a function of another account than the
// caller's unless the operator allowed that pair. AWS enforces the same
// through the function's resource policy, which must grant IoT the call with
// the caller as source account.
func (s *Service) checkFunctionAccount(scope iot.Scope, arn string) error {
	owner := functionAccount(arn)
	if owner == scope.AccountID {
		return nil
	}
	for _, allowed := range s.crossAccount[scope.AccountID] {
		if owner == allowed {
			return nil
		}
	}
	return apierr.New(apierr.InvalidRequest, "The Lambda function %s belongs to account %s; fleetca invokes, for an account, only that account's functions (and those the operator allowed with --provider-cross-account).", arn, owner)
}

// functionAccount is the account field of a Lambda function ARN.
func functionAccount(arn string) string {
	fields := strings.SplitN(arn, ":", 6)
	if len(fields) < 6 {
		return ""
	}
	return fields[4]
}

// CreateProviderInput is what CreateCertificateProvider needs.
type CreateProviderInput struct {
	Name                        string
	LambdaFunctionARN           string
	AccountDefaultForOperations []string
	ClientToken                 string
	Tags                        []iot.Tag
}

// hash identifies the request's parameters, so that a retry under the same
// client token can be told from a different request.
func (in CreateProviderInput) hash() string {
	tags := append([]iot.Tag(nil), in.Tags...)
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	b, _ := json.Marshal(struct {
		Name, ARN string
		Ops       []string
		Tags      []iot.Tag
	}{in.Name, in.LambdaFunctionARN, in.AccountDefaultForOperations, tags})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CreateCertificateProvider creates the scope's certificate provider. A scope
// has at most one. The same client token with the same parameters returns the
// first answer again, even after the call that created it.
func (s *Service) CreateCertificateProvider(ctx context.Context, scope iot.Scope, in CreateProviderInput) (*iot.CertificateProvider, error) {
	if err := checkLambdaARN(in.LambdaFunctionARN); err != nil {
		return nil, err
	}
	if err := s.checkFunctionAccount(scope, in.LambdaFunctionARN); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	now := s.timestamp()
	p := &iot.CertificateProvider{
		Scope: scope, Name: in.Name, LambdaFunctionARN: in.LambdaFunctionARN,
		AccountDefaultForOperations: in.AccountDefaultForOperations, CreatedAt: now, LastModifiedAt: now,
	}
	_, err := s.store.CreateCertificateProvider(ctx, p, in.Tags, store.ClientToken{Value: in.ClientToken, Hash: in.hash()})
	switch {
	case err == nil:
		// Created now, or replayed: the answer (name and ARN) is the same.
		return p, nil
	case errors.Is(err, store.ErrTokenMismatch):
		return nil, apierr.New(apierr.InvalidRequest, "The clientToken was used before with different parameters.")
	case errors.Is(err, store.ErrExists):
		return nil, apierr.AlreadyExists(p.Name, p.ARN(), "The certificate provider %s already exists.", p.Name)
	case errors.Is(err, store.ErrLimit):
		return nil, apierr.New(apierr.LimitExceeded, "An account can have only one certificate provider per region.")
	}
	return nil, internal("creating a certificate provider", err)
}

// DescribeCertificateProvider returns the scope's provider of that name.
func (s *Service) DescribeCertificateProvider(ctx context.Context, scope iot.Scope, name string) (*iot.CertificateProvider, error) {
	p, err := s.store.CertificateProvider(ctx, scope, name)
	return p, providerError(err, name)
}

// providerPageSize is how many providers one ListCertificateProviders page
// holds; the model sets no page size.
const providerPageSize = 100

// ListCertificateProviders returns a page of the scope's providers in name
// order; nextToken continues a listing.
func (s *Service) ListCertificateProviders(ctx context.Context, scope iot.Scope, nextToken string, ascending bool) ([]iot.CertificateProvider, string, error) {
	after := ""
	if nextToken != "" {
		cur, err := store.ParseMarker(nextToken)
		if err != nil {
			return nil, "", apierr.New(apierr.InvalidRequest, "The nextToken is not one this service issued.")
		}
		after = cur.ID
	}
	list, more, err := s.store.ListCertificateProviders(ctx, scope, after, ascending, providerPageSize)
	if err != nil {
		return nil, "", internal("listing certificate providers", err)
	}
	next := ""
	if more {
		next = store.Cursor{ID: list[len(list)-1].Name}.Marker()
	}
	return list, next, nil
}

// UpdateProviderInput holds the changes of UpdateCertificateProvider; unset
// members keep their values.
type UpdateProviderInput struct {
	LambdaFunctionARN           *string
	AccountDefaultForOperations []string
}

// UpdateCertificateProvider changes a provider's function or operations.
func (s *Service) UpdateCertificateProvider(ctx context.Context, scope iot.Scope, name string, in UpdateProviderInput) (*iot.CertificateProvider, error) {
	if in.LambdaFunctionARN != nil {
		if err := checkLambdaARN(*in.LambdaFunctionARN); err != nil {
			return nil, err
		}
		if err := s.checkFunctionAccount(scope, *in.LambdaFunctionARN); err != nil {
			return nil, err
		}
	}
	p, err := s.store.UpdateCertificateProvider(ctx, scope, name, func(p *iot.CertificateProvider) error {
		if in.LambdaFunctionARN != nil {
			p.LambdaFunctionARN = *in.LambdaFunctionARN
		}
		if in.AccountDefaultForOperations != nil {
			p.AccountDefaultForOperations = in.AccountDefaultForOperations
		}
		p.LastModifiedAt = s.timestamp()
		return nil
	})
	return p, providerError(err, name)
}

// DeleteCertificateProvider deletes a provider; device CSRs are then signed by
// fleetca's CA again.
func (s *Service) DeleteCertificateProvider(ctx context.Context, scope iot.Scope, name string) error {
	return providerError(s.store.DeleteCertificateProvider(ctx, scope, name), name)
}

func providerError(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The certificate provider %s does not exist.", name)
	}
	return internal("certificate provider "+name, err)
}
