package iotapi

import (
	"context"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

// Registry is what the API asks of fleetca's rules, one interface per
// resource family; *registry.Service is one. Every error meant for the
// client is an apierr error; anything else is answered as
// InternalFailureException and logged.
type Registry interface {
	Certificates
	CACertificates
	CertificateProviders
	Policies
	Things
	ProvisioningTemplates
	Tags
}

// ProvisioningTemplates serves provisioning templates and their versions.
type ProvisioningTemplates interface {
	CreateProvisioningTemplate(ctx context.Context, scope iot.Scope, in registry.TemplateInput) (*iot.ProvisioningTemplate, error)
	DescribeProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error)
	ListProvisioningTemplates(ctx context.Context, scope iot.Scope, opts registry.ListOptions) ([]iot.ProvisioningTemplate, string, error)
	UpdateProvisioningTemplate(ctx context.Context, scope iot.Scope, name string, u registry.TemplateUpdate) error
	DeleteProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) error
	CreateProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name, body string, setAsDefault bool) (*iot.ProvisioningTemplateVersion, error)
	DescribeProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.ProvisioningTemplateVersion, error)
	ListProvisioningTemplateVersions(ctx context.Context, scope iot.Scope, name string, opts registry.ListOptions) ([]iot.ProvisioningTemplateVersion, string, error)
	DeleteProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) error
	RegisterThing(ctx context.Context, scope iot.Scope, body string, params map[string]string) (*registry.RegisteredThing, error)
	CreateProvisioningClaim(ctx context.Context, scope iot.Scope, templateName string) (*registry.Claim, error)
}

// Things serves things and the principals attached to them.
type Things interface {
	CreateThing(ctx context.Context, scope iot.Scope, name, typeName, billingGroup string, attributes map[string]string) (*iot.Thing, error)
	DescribeThing(ctx context.Context, scope iot.Scope, name string) (*iot.Thing, error)
	ListThings(ctx context.Context, scope iot.Scope, filter registry.ThingFilter, opts registry.ListOptions) ([]iot.Thing, string, error)
	UpdateThing(ctx context.Context, scope iot.Scope, name string, u registry.ThingUpdate) error
	DeleteThing(ctx context.Context, scope iot.Scope, name string, expectedVersion *int64) error
	AttachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string, exclusive bool) error
	DetachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string) error
	ListThingPrincipals(ctx context.Context, scope iot.Scope, thing string, only registry.Attachments, opts registry.ListOptions) ([]iot.ThingPrincipal, string, error)
	ListPrincipalThings(ctx context.Context, scope iot.Scope, principal string, only registry.Attachments, opts registry.ListOptions) ([]iot.ThingPrincipal, string, error)
	CreateThingType(ctx context.Context, scope iot.Scope, in registry.ThingTypeInput) (*iot.ThingType, error)
	DescribeThingType(ctx context.Context, scope iot.Scope, name string) (*iot.ThingType, error)
	ListThingTypes(ctx context.Context, scope iot.Scope, name string, opts registry.ListOptions) ([]iot.ThingType, string, error)
	DeprecateThingType(ctx context.Context, scope iot.Scope, name string, undo bool) error
	DeleteThingType(ctx context.Context, scope iot.Scope, name string) error
}

// Policies serves IoT policies and their versions.
type Policies interface {
	CreatePolicy(ctx context.Context, scope iot.Scope, name, document string, tags []iot.Tag) (*iot.Policy, error)
	GetPolicy(ctx context.Context, scope iot.Scope, name string) (*iot.Policy, error)
	ListPolicies(ctx context.Context, scope iot.Scope, opts registry.ListOptions) ([]iot.Policy, string, error)
	DeletePolicy(ctx context.Context, scope iot.Scope, name string) error
	CreatePolicyVersion(ctx context.Context, scope iot.Scope, name, document string, setAsDefault bool) (*iot.PolicyVersion, error)
	GetPolicyVersion(ctx context.Context, scope iot.Scope, name, id string) (*iot.PolicyVersion, *iot.Policy, error)
	ListPolicyVersions(ctx context.Context, scope iot.Scope, name string) ([]iot.PolicyVersion, error)
	SetDefaultPolicyVersion(ctx context.Context, scope iot.Scope, name, id string) error
	DeletePolicyVersion(ctx context.Context, scope iot.Scope, name, id string) error
	AttachPolicy(ctx context.Context, scope iot.Scope, name, target string) error
	DetachPolicy(ctx context.Context, scope iot.Scope, name, target string) error
	ListAttachedPolicies(ctx context.Context, scope iot.Scope, target string, opts registry.ListOptions) ([]iot.Policy, string, error)
	ListTargetsForPolicy(ctx context.Context, scope iot.Scope, name string, opts registry.ListOptions) ([]string, string, error)
}

// Certificates serves the certificates fleetca's CA issues and their
// lifecycle.
type Certificates interface {
	CreateKeysAndCertificate(ctx context.Context, scope iot.Scope, setAsActive bool) (*registry.CreatedCertificate, error)
	CreateCertificateFromCSR(ctx context.Context, scope iot.Scope, csrPEM string, setAsActive bool) (*registry.CreatedCertificate, error)
	DescribeCertificate(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error)
	ListCertificates(ctx context.Context, scope iot.Scope, opts registry.ListOptions) (*registry.CertificateList, error)
	UpdateCertificateStatus(ctx context.Context, scope iot.Scope, id string, status iot.Status) error
	DeleteCertificate(ctx context.Context, scope iot.Scope, id string, forceDelete bool) error
}

// CACertificates serves bring-your-own CAs: registration codes, CA
// registration and lifecycle, and the device certificates registered under
// them or without one.
type CACertificates interface {
	GetRegistrationCode(ctx context.Context, scope iot.Scope) (string, error)
	DeleteRegistrationCode(ctx context.Context, scope iot.Scope) error
	RegisterCACertificate(ctx context.Context, scope iot.Scope, in registry.RegisterCAInput) (*iot.CACertificate, error)
	DescribeCACertificate(ctx context.Context, scope iot.Scope, id string) (*iot.CACertificate, error)
	ListCACertificates(ctx context.Context, scope iot.Scope, opts registry.ListOptions, templateName string) (*registry.CACertificateList, error)
	UpdateCACertificate(ctx context.Context, scope iot.Scope, id string, in registry.UpdateCAInput) error
	DeleteCACertificate(ctx context.Context, scope iot.Scope, id string) error
	RegisterCertificate(ctx context.Context, scope iot.Scope, in registry.RegisterCertificateInput) (*iot.Certificate, error)
	RegisterCertificateWithoutCA(ctx context.Context, scope iot.Scope, certPEM string, status iot.Status) (*iot.Certificate, error)
	ListCertificatesByCA(ctx context.Context, scope iot.Scope, caID string, opts registry.ListOptions) (*registry.CertificateList, error)
}

// CertificateProviders serves the certificate-provider control plane.
type CertificateProviders interface {
	CreateCertificateProvider(ctx context.Context, scope iot.Scope, in registry.CreateProviderInput) (*iot.CertificateProvider, error)
	DescribeCertificateProvider(ctx context.Context, scope iot.Scope, name string) (*iot.CertificateProvider, error)
	ListCertificateProviders(ctx context.Context, scope iot.Scope, nextToken string, ascending bool) ([]iot.CertificateProvider, string, error)
	UpdateCertificateProvider(ctx context.Context, scope iot.Scope, name string, in registry.UpdateProviderInput) (*iot.CertificateProvider, error)
	DeleteCertificateProvider(ctx context.Context, scope iot.Scope, name string) error
}

// Tags serves the tags of taggable resources, named by ARN.
type Tags interface {
	TagResource(ctx context.Context, scope iot.Scope, arn string, tags []iot.Tag) error
	UntagResource(ctx context.Context, scope iot.Scope, arn string, keys []string) error
	ListTagsForResource(ctx context.Context, scope iot.Scope, arn string) ([]iot.Tag, error)
}

var _ Registry = (*registry.Service)(nil)
