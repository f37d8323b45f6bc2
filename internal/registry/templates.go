package registry

import (
	"context"
	"errors"
	"strconv"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/template"
)

// The limits of provisioning templates, as AWS's quotas give them.
const (
	// MaxTemplates is how many provisioning templates an account may have
	// in a region.
	MaxTemplates = 256
	// MaxTemplateVersions is how many versions a template keeps.
	MaxTemplateVersions = 5
	// HookPayloadVersion is the one payload version of pre-provisioning
	// hooks AWS documents, and the default.
	HookPayloadVersion = "2020-04-01"
)

// TemplateInput is a new provisioning template.
type TemplateInput struct {
	Name, Description, Body string
	Type                    iot.TemplateType
	Enabled                 bool
	ProvisioningRoleARN     string
	Hook                    *iot.PreProvisioningHook
	Tags                    []iot.Tag
}

// TemplateUpdate is what UpdateProvisioningTemplate changes; nil members
// are left as they are.
type TemplateUpdate struct {
	Description         *string
	Enabled             *bool
	DefaultVersionID    *int64
	ProvisioningRoleARN *string
	Hook                *iot.PreProvisioningHook
	RemoveHook          bool
}

func templateNotFound(name string) error {
	return apierr.New(apierr.ResourceNotFound, "The provisioning template %s does not exist.", name)
}

func templateError(err error, name, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return templateNotFound(name)
	}
	return internal(what, err)
}

// checkTemplateBody parses a body as RegisterThing will run it, so nothing
// is stored that would fail for a reason known now: its policy documents
// without intrinsic functions are checked as CreatePolicy checks them, and
// a fleet-provisioning or JITP template must have a certificate resource
// naming its certificate by CertificateId, the certificate the device
// presents or was given — without one, the device's certificate would
// never be activated.
func checkTemplateBody(body string, typ iot.TemplateType) (*template.Template, error) {
	t, err := template.Parse(body)
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "Invalid template body: %v", err)
	}
	for id, doc := range t.StaticPolicyDocuments() {
		if err := checkPolicyDocument(doc); err != nil {
			return nil, reword(err, apierr.InvalidRequest, "Invalid template body: Resources."+id+".Properties.PolicyDocument: ")
		}
	}
	if !t.NamesProvisionedCertificate() {
		return nil, apierr.New(apierr.InvalidRequest, `Invalid template body: a %s template needs an AWS::IoT::Certificate resource whose CertificateId is {"Ref": "AWS::IoT::Certificate::Id"}, the certificate being provisioned.`, typ)
	}
	return t, nil
}

func (s *Service) checkHook(scope iot.Scope, h *iot.PreProvisioningHook, typ iot.TemplateType) error {
	if h == nil {
		return nil
	}
	if typ != iot.FleetProvisioning {
		return apierr.New(apierr.InvalidRequest, "Only a FLEET_PROVISIONING template can have a pre-provisioning hook.")
	}
	if h.PayloadVersion == "" {
		h.PayloadVersion = HookPayloadVersion
	}
	if h.PayloadVersion != HookPayloadVersion {
		return apierr.New(apierr.InvalidRequest, "The pre-provisioning hook's payloadVersion %s is not supported; use %s.", h.PayloadVersion, HookPayloadVersion)
	}
	if len(h.TargetARN) > 2048 || !lambdaFunctionARN.MatchString(h.TargetARN) {
		return apierr.New(apierr.InvalidRequest, "The pre-provisioning hook's targetArn must be a Lambda function ARN, such as arn:aws:lambda:us-east-1:123456789012:function:hook.")
	}
	return s.checkFunctionAccount(scope, h.TargetARN)
}

// CreateProvisioningTemplate stores a template whose body is its version
// 1, the default.
func (s *Service) CreateProvisioningTemplate(ctx context.Context, scope iot.Scope, in TemplateInput) (*iot.ProvisioningTemplate, error) {
	if in.Type == "" {
		in.Type = iot.FleetProvisioning
	}
	if _, err := checkTemplateBody(in.Body, in.Type); err != nil {
		return nil, err
	}
	if err := s.checkHook(scope, in.Hook, in.Type); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	now := s.timestamp()
	t := &iot.ProvisioningTemplate{Scope: scope, Name: in.Name, Description: in.Description, Type: in.Type, Enabled: in.Enabled,
		ProvisioningRoleARN: in.ProvisioningRoleARN, Hook: in.Hook, Body: in.Body, CreatedAt: now, ModifiedAt: now}
	err := s.store.CreateProvisioningTemplate(ctx, t, in.Tags, MaxTemplates)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, apierr.AlreadyExists(in.Name, t.ARN(), "Template with name %s already exists", in.Name)
	case errors.Is(err, store.ErrLimit):
		return nil, apierr.New(apierr.LimitExceeded, "The account has the maximum number of provisioning templates (%d) in this region.", MaxTemplates)
	case err != nil:
		return nil, internal("storing a provisioning template", err)
	}
	return t, nil
}

// DescribeProvisioningTemplate returns a template with its default body.
func (s *Service) DescribeProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error) {
	t, err := s.store.ProvisioningTemplate(ctx, scope, name)
	if err != nil {
		return nil, templateError(err, name, "reading a provisioning template")
	}
	return t, nil
}

// ListProvisioningTemplates returns a page of the scope's templates in
// name order.
func (s *Service) ListProvisioningTemplates(ctx context.Context, scope iot.Scope, opts ListOptions) ([]iot.ProvisioningTemplate, string, error) {
	list, next, err := keysetPage(opts, func(t iot.ProvisioningTemplate) string { return t.Name }, func(after string, limit int) ([]iot.ProvisioningTemplate, bool, error) {
		return s.store.ListProvisioningTemplates(ctx, scope, after, limit)
	})
	if err != nil {
		return nil, "", internal("listing provisioning templates", err)
	}
	return list, next, nil
}

// UpdateProvisioningTemplate changes a template's settings or its default
// version.
func (s *Service) UpdateProvisioningTemplate(ctx context.Context, scope iot.Scope, name string, u TemplateUpdate) error {
	if u.RemoveHook && u.Hook != nil {
		return apierr.New(apierr.InvalidRequest, "preProvisioningHook and removePreProvisioningHook cannot be given together.")
	}
	_, err := s.store.UpdateProvisioningTemplate(ctx, scope, name, s.timestamp(), func(t *iot.ProvisioningTemplate) error {
		if u.Hook != nil {
			if err := s.checkHook(scope, u.Hook, t.Type); err != nil {
				return err
			}
			t.Hook = u.Hook
		}
		if u.RemoveHook {
			t.Hook = nil
		}
		if u.Description != nil {
			t.Description = *u.Description
		}
		if u.Enabled != nil {
			t.Enabled = *u.Enabled
		}
		if u.ProvisioningRoleARN != nil {
			t.ProvisioningRoleARN = *u.ProvisioningRoleARN
		}
		if u.DefaultVersionID != nil {
			t.DefaultVersionID = *u.DefaultVersionID
		}
		return nil
	})
	if _, ok := apierr.As(err); ok {
		return err
	}
	if errors.Is(err, store.ErrNotFound) && u.DefaultVersionID != nil {
		// The template or the version; say which.
		if _, terr := s.store.ProvisioningTemplate(ctx, scope, name); terr == nil {
			return apierr.New(apierr.ResourceNotFound, "The provisioning template %s has no version %d.", name, *u.DefaultVersionID)
		}
	}
	if err != nil {
		return templateError(err, name, "updating a provisioning template")
	}
	return nil
}

// DeleteProvisioningTemplate deletes a template and its versions, unless
// a CA's registration config names it.
func (s *Service) DeleteProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) error {
	err := s.store.DeleteProvisioningTemplate(ctx, scope, name)
	if errors.Is(err, store.ErrAttached) {
		return apierr.New(apierr.DeleteConflict, "The provisioning template %s is the registration template of a CA certificate; remove it from the CA first.", name)
	}
	if err != nil {
		return templateError(err, name, "deleting a provisioning template")
	}
	return nil
}

// CreateProvisioningTemplateVersion adds a version, the default if
// setAsDefault.
func (s *Service) CreateProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name, body string, setAsDefault bool) (*iot.ProvisioningTemplateVersion, error) {
	t, err := s.store.ProvisioningTemplate(ctx, scope, name)
	if err != nil {
		return nil, templateError(err, name, "reading a provisioning template")
	}
	if _, err := checkTemplateBody(body, t.Type); err != nil {
		return nil, err
	}
	v, err := s.store.CreateProvisioningTemplateVersion(ctx, scope, name, body, setAsDefault, s.timestamp(), MaxTemplateVersions)
	if errors.Is(err, store.ErrLimit) {
		return nil, apierr.New(apierr.VersionsLimitExceeded, "The provisioning template %s already has the maximum number of versions (%d)", name, MaxTemplateVersions)
	}
	if err != nil {
		return nil, templateError(err, name, "storing a provisioning template version")
	}
	return v, nil
}

func templateVersionError(err error, name string, id int64, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The provisioning template %s has no version %d.", name, id)
	}
	return internal(what, err)
}

// DescribeProvisioningTemplateVersion returns one version of a template.
func (s *Service) DescribeProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.ProvisioningTemplateVersion, error) {
	v, err := s.store.ProvisioningTemplateVersion(ctx, scope, name, id)
	if errors.Is(err, store.ErrNotFound) {
		if _, terr := s.store.ProvisioningTemplate(ctx, scope, name); errors.Is(terr, store.ErrNotFound) {
			return nil, templateNotFound(name)
		}
	}
	if err != nil {
		return nil, templateVersionError(err, name, id, "reading a provisioning template version")
	}
	return v, nil
}

// ListProvisioningTemplateVersions returns a page of a template's
// versions, oldest first.
func (s *Service) ListProvisioningTemplateVersions(ctx context.Context, scope iot.Scope, name string, opts ListOptions) ([]iot.ProvisioningTemplateVersion, string, error) {
	list, next, err := keysetPage(opts, func(v iot.ProvisioningTemplateVersion) string { return strconv.FormatInt(v.ID, 10) },
		func(after string, limit int) ([]iot.ProvisioningTemplateVersion, bool, error) {
			var n int64
			if after != "" {
				var err error
				if n, err = strconv.ParseInt(after, 10, 64); err != nil {
					return nil, false, apierr.New(apierr.InvalidRequest, "The nextToken is not valid.")
				}
			}
			return s.store.ListProvisioningTemplateVersions(ctx, scope, name, n, limit)
		})
	if err != nil {
		return nil, "", templateError(err, name, "listing provisioning template versions")
	}
	return list, next, nil
}

// DeleteProvisioningTemplateVersion deletes a version other than the
// default.
func (s *Service) DeleteProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) error {
	err := s.store.DeleteProvisioningTemplateVersion(ctx, scope, name, id, func(v *iot.ProvisioningTemplateVersion) error {
		if v.IsDefault {
			return apierr.New(apierr.DeleteConflict, "Cannot delete the default version of a provisioning template; make another version the default or delete the template (name=%s, version=%d)", name, id)
		}
		return nil
	})
	if _, ok := apierr.As(err); ok {
		return err
	}
	if errors.Is(err, store.ErrNotFound) {
		if _, terr := s.store.ProvisioningTemplate(ctx, scope, name); errors.Is(terr, store.ErrNotFound) {
			return templateNotFound(name)
		}
	}
	if err != nil {
		return templateVersionError(err, name, id, "deleting a provisioning template version")
	}
	return nil
}
