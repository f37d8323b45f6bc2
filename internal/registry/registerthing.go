package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/template"
)

// ErrInvalidOwnershipToken is the cause of every refusal of a
// certificateOwnershipToken, so that a front end can name it as AWS does.
var ErrInvalidOwnershipToken = errors.New("invalid certificate ownership token")

func tokenRefused(format string, args ...any) error {
	return apierr.Wrap(apierr.InvalidRequest, ErrInvalidOwnershipToken, format, args...)
}

// The bounds of RegisterThing's parameters, from the model's Parameter and
// Value shapes; they hold on MQTT too, and for a hook's overrides.
const (
	MaxParameterName  = 2048
	MaxParameterValue = 4096
)

// CheckParameters applies the bounds of RegisterThing's parameters.
func CheckParameters(params map[string]string) error {
	for k, v := range params {
		if len(k) == 0 || len(k) > MaxParameterName || len(v) > MaxParameterValue {
			return apierr.New(apierr.InvalidRequest, "A parameter's name must have 1 to %d characters and its value at most %d.", MaxParameterName, MaxParameterValue)
		}
	}
	return nil
}

// DeviceRegistration is a device's RegisterThing request over MQTT.
type DeviceRegistration struct {
	TemplateName   string
	OwnershipToken string
	Parameters     map[string]string
	// ClaimCertificateID and ClientID are the requesting connection's
	// certificate and client ID, for the pre-provisioning hook.
	ClaimCertificateID string
	ClientID           string
}

// Registration is RegisterThing's answer to a device.
type Registration struct {
	// ThingName is "" when the template has no thing.
	ThingName           string
	DeviceConfiguration map[string]string
}

// RegisterDevice is fleet provisioning's RegisterThing: the certificate
// made with the ownership token is provisioned with a FLEET_PROVISIONING
// template — thing, policies, attachments and status in one transaction
// that also uses up the token. A refused request writes nothing.
func (s *Service) RegisterDevice(ctx context.Context, scope iot.Scope, in DeviceRegistration) (*Registration, error) {
	if err := CheckParameters(in.Parameters); err != nil {
		return nil, err
	}
	t, err := s.fleetTemplate(ctx, scope, in.TemplateName)
	if err != nil {
		return nil, err
	}
	if in.OwnershipToken == "" {
		return nil, tokenRefused("Certificate ownership token cannot be empty.")
	}
	hash := tokenHash(in.OwnershipToken)
	id, expires, err := s.store.OwnershipToken(ctx, scope, hash)
	if errors.Is(err, store.ErrNotFound) || err == nil && s.timestamp().After(expires) {
		return nil, tokenRefused("The certificate ownership token is not valid: it was not issued in this account and region, was used already, or expired.")
	}
	if err != nil {
		return nil, internal("reading an ownership token", err)
	}
	c, err := s.store.Certificate(ctx, scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, tokenRefused("The certificate of the ownership token no longer exists.")
	}
	if err != nil {
		return nil, internal("reading a certificate", err)
	}
	if err := stillPending(c); err != nil {
		return nil, err
	}
	tpl, err := s.templates.get(t.Body)
	if err != nil {
		return nil, internal("parsing a stored provisioning template", err)
	}
	params := maps.Clone(in.Parameters)
	if t.Hook != nil {
		if params == nil {
			params = map[string]string{} // the event's parameters are an object
		}
		overrides, err := s.askHook(ctx, scope, t, c, in, params)
		if err != nil {
			return nil, err
		}
		maps.Copy(params, overrides)
	}
	plan, err := evaluate(tpl, params, c)
	if err != nil {
		return nil, err
	}
	w, err := s.provisionWrite(ctx, scope, plan)
	if err != nil {
		return nil, err
	}
	w.TokenHash, w.CertificateID = hash, c.ID
	setStatus := w.Certificate
	w.Certificate = func(c *iot.Certificate) error {
		// Again under the certificate's lock, for a change that raced.
		if err := stillPending(c); err != nil || setStatus == nil {
			return err
		}
		return setStatus(c)
	}
	if _, err := s.store.Provision(ctx, scope, w); err != nil {
		return nil, provisionError(err)
	}
	s.changed()
	r := &Registration{DeviceConfiguration: plan.DeviceConfiguration}
	if plan.Thing != nil {
		r.ThingName = plan.Thing.Name
	}
	return r, nil
}

// stillPending refuses a token whose certificate is no longer waiting for
// activation: one an operator deactivated (or activated) since is not the
// device's to change with a token it still holds.
func stillPending(c *iot.Certificate) error {
	if c.Status != iot.StatusPendingActivation {
		return tokenRefused("The certificate of the ownership token is %s, no longer waiting for activation.", c.Status)
	}
	return nil
}

// fleetTemplate is a template devices may provision themselves with: one of
// the scope's, FLEET_PROVISIONING, and enabled.
func (s *Service) fleetTemplate(ctx context.Context, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error) {
	t, err := s.store.ProvisioningTemplate(ctx, scope, name)
	if err != nil {
		return nil, templateError(err, name, "reading a provisioning template")
	}
	if t.Type != iot.FleetProvisioning {
		return nil, apierr.New(apierr.InvalidRequest, "The provisioning template %s is of type %s; devices provision themselves with FLEET_PROVISIONING templates.", t.Name, t.Type)
	}
	if !t.Enabled {
		return nil, apierr.New(apierr.InvalidRequest, "The provisioning template %s is disabled; enable it with UpdateProvisioningTemplate.", t.Name)
	}
	return t, nil
}

// builtinPrefix begins the parameters the service fills from the
// certificate; no device or hook gives them.
const builtinPrefix = "AWS::IoT::Certificate::"

// evaluate runs a template for a certificate: its built-in parameters
// (AWS::IoT::Certificate::Id and the subject's) replace any the device or
// the hook gave — even one the subject lacks, which stays without a value
// —, and the template's certificate resource must name that certificate.
func evaluate(tpl *template.Template, params map[string]string, c *iot.Certificate) (*template.Plan, error) {
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, internal("parsing a stored certificate", err)
	}
	params = maps.Clone(params)
	if params == nil {
		params = map[string]string{}
	}
	maps.DeleteFunc(params, func(k, _ string) bool { return strings.HasPrefix(k, builtinPrefix) })
	maps.Copy(params, template.CertificateParameters(c.ID, leaf.Subject))
	plan, err := tpl.Evaluate(params)
	if err != nil {
		return nil, apierr.New(apierr.ResourceRegistrationFailure, "The provisioning template could not be applied: %v", err)
	}
	if plan.Certificate != nil && plan.Certificate.CertificateID != c.ID {
		return nil, apierr.New(apierr.ResourceRegistrationFailure, "The template's certificate resource %s names certificate %s, not the certificate being provisioned (%s).",
			plan.Certificate.LogicalID, truncate(plan.Certificate.CertificateID, 64), c.ID)
	}
	return plan, nil
}

// askHook invokes the template's pre-provisioning hook and returns its
// parameter overrides. Anything but a clear allow is AccessDenied, as at
// AWS; what went wrong is in the message, without the function's own
// words, which go to the log.
func (s *Service) askHook(ctx context.Context, scope iot.Scope, t *iot.ProvisioningTemplate, c *iot.Certificate, in DeviceRegistration, params map[string]string) (map[string]string, error) {
	if s.hooks == nil {
		return nil, internal("asking a pre-provisioning hook", errors.New("no hook invoker is configured"))
	}
	if err := s.checkFunctionAccount(scope, t.Hook.TargetARN); err != nil {
		return nil, apierr.Wrap(apierr.AccessDenied, err, "The pre-provisioning hook's function belongs to another account; provisioning is denied.")
	}
	answer, err := s.hooks.PreProvision(ctx, t.Hook.TargetARN, provider.HookEvent{
		ClaimCertificateID: in.ClaimCertificateID,
		CertificateID:      c.ID,
		CertificatePEM:     pki.EncodeCertificate(c.DER),
		TemplateARN:        t.ARN(),
		ClientID:           in.ClientID,
		Parameters:         params,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why := "could not be invoked"
		switch provider.FailureOf(err) {
		case provider.TimedOut:
			why = "did not answer within 5 seconds"
		case provider.FunctionFailed, provider.CSRRejected:
			why = "raised an error"
		case provider.MalformedAnswer:
			why = `did not answer {"allowProvisioning": ..., "parameterOverrides": {...}}`
		}
		return nil, apierr.Wrap(apierr.AccessDenied, err, "The pre-provisioning hook %s; provisioning is denied.", why)
	}
	if !answer.Allow {
		return nil, apierr.New(apierr.AccessDenied, "The pre-provisioning hook did not allow provisioning.")
	}
	if CheckParameters(answer.ParameterOverrides) != nil {
		return nil, apierr.New(apierr.AccessDenied, "The pre-provisioning hook answered a parameter override outside the model's bounds; provisioning is denied.")
	}
	return answer.ParameterOverrides, nil
}

// provisionWrite turns a plan into the store's write: the registry's rules
// for names and values, and what OverrideSettings make of an existing
// thing and certificate. The caller names the certificate
// (CertificateID) when the plan has one.
func (s *Service) provisionWrite(ctx context.Context, scope iot.Scope, plan *template.Plan) (*store.ProvisionWrite, error) {
	now := s.timestamp()
	w := &store.ProvisionWrite{At: now, MaxPolicies: MaxPoliciesPerCertificate}
	if th := plan.Thing; th != nil {
		if err := checkPlannedThing(th); err != nil {
			return nil, err
		}
		var planType *iot.ThingType
		if th.TypeName != "" {
			var err error
			if planType, err = s.thingType(ctx, scope, th.TypeName); err != nil {
				return nil, reword(err, apierr.ResourceRegistrationFailure, "")
			}
		}
		// A deprecated type is refused to a thing it would newly describe;
		// a thing that has it keeps it, as at AWS.
		deprecated := planType != nil && planType.Deprecated
		w.ThingName = th.Name
		w.Thing = func(existing *iot.Thing) (*iot.Thing, error) {
			if existing == nil {
				if deprecated {
					return nil, reword(deprecatedType(th.TypeName), apierr.ResourceRegistrationFailure, "")
				}
				return &iot.Thing{Scope: scope, Name: th.Name, ID: newGenerationID(), TypeName: th.TypeName, Attributes: withoutEmpty(th.Attributes),
					Version: 1, CreatedAt: now, ModifiedAt: now}, nil
			}
			changed, err := overrideThing(existing, th)
			if err == nil && changed != nil && deprecated && changed.TypeName != existing.TypeName {
				return nil, reword(deprecatedType(th.TypeName), apierr.ResourceRegistrationFailure, "")
			}
			return changed, err
		}
	}
	if cp := plan.Certificate; cp != nil {
		w.Certificate = func(current *iot.Certificate) error { return overrideStatus(current, cp, now) }
	}
	for _, p := range plan.Policies {
		if p.Document == "" {
			if !iot.ValidPolicyName(p.Name) {
				return nil, apierr.New(apierr.ResourceRegistrationFailure, "The template's policy %s names %q, which is not a policy name.", p.LogicalID, truncate(p.Name, 128))
			}
			if _, err := s.store.Policy(ctx, scope, p.Name); errors.Is(err, store.ErrNotFound) {
				return nil, apierr.New(apierr.ResourceRegistrationFailure, "The template's policy %s names the policy %s, which does not exist.", p.LogicalID, p.Name)
			} else if err != nil {
				return nil, internal("reading a policy", err)
			}
		} else if err := checkPolicyDocument(p.Document); err != nil {
			return nil, reword(err, apierr.ResourceRegistrationFailure, "The template's policy "+p.LogicalID+" has a document that is not valid: ")
		}
		w.Policies = append(w.Policies, store.ProvisionedPolicy{Name: p.Name, Document: p.Document, GenerationID: newGenerationID()})
	}
	if len(w.Policies) > 0 && plan.Certificate == nil {
		return nil, apierr.New(apierr.ResourceRegistrationFailure, "The template has policies but no certificate to attach them to.")
	}
	return w, nil
}

// checkPlannedThing applies CreateThing's rules to a template's thing.
// fleetca has no thing groups or billing groups yet, so a template that
// names one names one that does not exist, and is refused as AWS refuses
// it. (Its thing type is checked against the registry.)
func checkPlannedThing(th *template.ThingPlan) error {
	if !iot.ValidThingName(th.Name) {
		return apierr.New(apierr.ResourceRegistrationFailure, "The template's thing %s would be named %q, which is not a thing name (1 to 128 of a-z, A-Z, 0-9, :, _ and -).", th.LogicalID, truncate(th.Name, 128))
	}
	for k, v := range th.Attributes {
		if !iot.ValidAttributeName(k) || !iot.ValidAttributeValue(v) {
			return apierr.New(apierr.ResourceRegistrationFailure, "The template's thing %s has the attribute %q = %q, which the registry does not allow.", th.LogicalID, truncate(k, 128), truncate(v, 128))
		}
	}
	switch {
	case len(th.Groups) > 0:
		return apierr.New(apierr.ResourceRegistrationFailure, "Thing group %s cannot be found.", th.Groups[0])
	case th.BillingGroup != "":
		return apierr.New(apierr.ResourceRegistrationFailure, "Billing group %s cannot be found.", th.BillingGroup)
	}
	return reword(checkAttributeCount(withoutEmpty(th.Attributes), th.TypeName), apierr.ResourceRegistrationFailure, "")
}

// overrideThing applies a template's OverrideSettings to a thing that
// exists, property by property: DO_NOTHING keeps it, REPLACE sets the
// template's, MERGE (attributes) adds the template's (an empty value
// removes one), and FAIL refuses the request if it would change — so a
// second device registering a serial whose thing already has the
// template's values is not refused. It returns nil when nothing changes.
func overrideThing(existing *iot.Thing, th *template.ThingPlan) (*iot.Thing, error) {
	next := *existing
	if th.Attributes != nil {
		switch th.Override.Attributes {
		case template.Replace, template.Fail:
			next.Attributes = withoutEmpty(th.Attributes)
		case template.Merge:
			merged := maps.Clone(existing.Attributes)
			if merged == nil {
				merged = map[string]string{}
			}
			maps.Copy(merged, th.Attributes)
			next.Attributes = withoutEmpty(merged)
		}
	}
	if th.TypeName != "" && (th.Override.TypeName == template.Replace || th.Override.TypeName == template.Fail) {
		next.TypeName = th.TypeName
	}
	attributesChange, typeChanges := !maps.Equal(next.Attributes, existing.Attributes), next.TypeName != existing.TypeName
	switch {
	case attributesChange && th.Override.Attributes == template.Fail:
		return nil, apierr.New(apierr.ConflictingResourceUpdate, "The thing %s exists with other attributes, and the template's OverrideSettings for AttributePayload say FAIL.", existing.Name)
	case typeChanges && th.Override.TypeName == template.Fail:
		return nil, apierr.New(apierr.ConflictingResourceUpdate, "The thing %s exists with another thing type, and the template's OverrideSettings for ThingTypeName say FAIL.", existing.Name)
	case !attributesChange && !typeChanges:
		return nil, nil
	}
	if err := checkAttributeCount(next.Attributes, next.TypeName); err != nil {
		return nil, reword(err, apierr.ResourceRegistrationFailure, "")
	}
	return &next, nil
}

// withoutEmpty is attributes without those of empty value, which a thing
// does not keep (in a merge, an empty value removes the attribute).
func withoutEmpty(attributes map[string]string) map[string]string {
	out := maps.Clone(attributes)
	maps.DeleteFunc(out, func(_, v string) bool { return v == "" })
	return out
}

// overrideStatus sets the certificate's status as the template says. A
// certificate PENDING_ACTIVATION, as fleet provisioning and JITP make
// them, always takes the template's status (AWS's JITP guide pairs a
// DO_NOTHING override with a certificate that ends ACTIVE); for one that
// is ACTIVE or INACTIVE already, the Status override decides: DO_NOTHING
// keeps it, REPLACE sets it, FAIL refuses a change. A revoked certificate
// is never provisioned.
func overrideStatus(c *iot.Certificate, cp *template.CertificatePlan, now time.Time) error {
	status := iot.Status(cp.Status)
	switch {
	case c.Status == iot.StatusRevoked:
		return apierr.New(apierr.CertificateState, "The certificate %s is REVOKED; it cannot be provisioned.", c.ID)
	case c.Status == status:
		return nil
	case c.Status == iot.StatusPendingActivation, cp.StatusOverride == template.Replace:
	case cp.StatusOverride == template.Fail:
		return apierr.New(apierr.ConflictingResourceUpdate, "The certificate %s is %s, and the template's OverrideSettings for Status say FAIL.", c.ID, c.Status)
	default:
		return nil
	}
	c.Status = status
	c.LastModifiedAt = now
	c.CustomerVersion++
	c.GenerationID = newGenerationID()
	return nil
}

// provisionError is what a failed plan tells the client.
func provisionError(err error) error {
	if _, ok := apierr.As(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNoToken):
		return tokenRefused("The certificate ownership token is not valid: it was used already, or expired.")
	case errors.Is(err, store.ErrNotFound):
		return apierr.Wrap(apierr.ResourceRegistrationFailure, err, "A resource the template names was deleted while it was applied; retry.")
	case errors.Is(err, store.ErrExists):
		return apierr.Wrap(apierr.ConflictingResourceUpdate, err, "A policy of the name the template's policy document takes exists with another document.")
	case errors.Is(err, store.ErrLimit):
		return apierr.New(apierr.ResourceRegistrationFailure, "The certificate would have more than %d policies attached.", MaxPoliciesPerCertificate)
	case errors.Is(err, store.ErrExclusive):
		return apierr.Wrap(apierr.ConflictingResourceUpdate, err, "The certificate is attached exclusively to another thing.")
	}
	return internal("applying a provisioning plan", err)
}

// RegisteredThing is the control plane's RegisterThing answer.
type RegisteredThing struct {
	// CertificatePEM is the template's certificate, "" when it has none.
	CertificatePEM string
	// ResourceARNs are the ARNs of the template's resources by logical ID:
	// the thing, the certificate, and the policies this call created.
	ResourceARNs map[string]string
}

// RegisterThing is the control plane's RegisterThing (single-thing
// provisioning): an inline template, applied with the given parameters in
// one transaction. Its certificate resource names an existing certificate
// (CertificateId), or one made for the call: issued by fleetca's CA for a
// CertificateSigningRequest, or registered from a CertificatePem under the
// registered CA that signed it. There are no built-in certificate
// parameters here: the template names its certificate through the
// caller's parameters.
func (s *Service) RegisterThing(ctx context.Context, scope iot.Scope, body string, params map[string]string) (*RegisteredThing, error) {
	if err := CheckParameters(params); err != nil {
		return nil, err
	}
	tpl, err := template.Parse(body)
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "Invalid template body: %v", err)
	}
	plan, err := tpl.Evaluate(params)
	if err != nil {
		return nil, apierr.New(apierr.ResourceRegistrationFailure, "The provisioning template could not be applied: %v", err)
	}
	// The plan is checked before a certificate is issued for it.
	w, err := s.provisionWrite(ctx, scope, plan)
	if err != nil {
		return nil, err
	}
	var c *iot.Certificate
	var created bool
	if cp := plan.Certificate; cp != nil {
		if c, created, err = s.templateCertificate(ctx, scope, cp); err != nil {
			return nil, err
		}
		w.CertificateID = c.ID
	}
	if created {
		w.NewCertificate = c
	}
	out, err := s.store.Provision(ctx, scope, w)
	if errors.Is(err, store.ErrExists) && created {
		return nil, apierr.New(apierr.ResourceRegistrationFailure, "The certificate %s is already registered; name it with CertificateId.", c.ID)
	}
	if err != nil {
		return nil, provisionError(err)
	}
	s.changed()
	r := &RegisteredThing{ResourceARNs: map[string]string{}}
	if plan.Thing != nil {
		r.ResourceARNs[plan.Thing.LogicalID] = out.Thing.ARN()
	}
	if c != nil {
		r.CertificatePEM = pki.EncodeCertificate(c.DER)
		r.ResourceARNs[plan.Certificate.LogicalID] = c.ARN()
	}
	for _, p := range plan.Policies {
		if slices.Contains(out.CreatedPolicies, p.Name) {
			r.ResourceARNs[p.LogicalID] = scope.ARN(iot.TypePolicy, p.Name)
		}
	}
	return r, nil
}

// templateCertificate is the certificate a RegisterThing template names:
// an existing one, or a new one (not stored yet; created reports which),
// PENDING_ACTIVATION until the plan gives it the template's status.
func (s *Service) templateCertificate(ctx context.Context, scope iot.Scope, cp *template.CertificatePlan) (c *iot.Certificate, created bool, err error) {
	switch {
	case cp.CertificateID != "":
		id, ok := iot.NormalizeCertificateID(cp.CertificateID)
		if !ok {
			return nil, false, apierr.New(apierr.ResourceRegistrationFailure, "The template's certificate %s names %q, which is not a certificate ID.", cp.LogicalID, truncate(cp.CertificateID, 64))
		}
		c, err := s.store.Certificate(ctx, scope, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, apierr.New(apierr.ResourceRegistrationFailure, "The template's certificate %s names the certificate %s, which does not exist.", cp.LogicalID, id)
		}
		if err != nil {
			return nil, false, internal("reading a certificate", err)
		}
		return c, false, nil
	case cp.CSR != "":
		csr, err := pki.ParseCSR([]byte(cp.CSR))
		if err != nil {
			return nil, false, apierr.New(apierr.ResourceRegistrationFailure, "The template's certificate signing request is not valid: %v", err)
		}
		issued, err := s.authority.IssueForCSR(ctx, csr)
		if err != nil {
			return nil, false, internal("issuing", err)
		}
		return s.signedCertificate(scope, issued, iot.StatusPendingActivation), true, nil
	default:
		leaf, err := parseDeviceCertificate(cp.CertificatePEM)
		if err != nil {
			return nil, false, reword(err, apierr.ResourceRegistrationFailure, "The template's certificate: ")
		}
		ca, err := s.issuingCA(ctx, scope, leaf, cp.CACertificatePEM)
		if err != nil {
			return nil, false, reword(err, apierr.ResourceRegistrationFailure, "The template's certificate: ")
		}
		if ca.Status != iot.CAStatusActive {
			return nil, false, apierr.New(apierr.ResourceRegistrationFailure, "The CA certificate %s that signed the template's certificate is not ACTIVE.", ca.ID)
		}
		return s.registeredCertificate(scope, leaf, iot.StatusPendingActivation, ca.Mode, ca.ID), true, nil
	}
}
