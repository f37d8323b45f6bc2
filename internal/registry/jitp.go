package registry

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// provisionJustInTime is just-in-time provisioning: an unknown certificate
// signed by a CA whose registration config has a template is registered
// and provisioned with that template (its parameters are the certificate's
// built-in ones) in one transaction, and the device is refused this once,
// as AWS refuses the connection that provisions it; its next connection is
// admitted. A template that cannot be applied registers nothing — the
// device is refused, the reason logged, and its next connection tries
// again — so no certificate is left half provisioned.
func (s *Service) provisionJustInTime(ctx context.Context, ca *iot.CACertificate, leaf *x509.Certificate) (Admission, error) {
	body, refusal, err := s.jitpTemplate(ctx, ca)
	if err != nil || refusal != "" {
		return Admission{Refusal: refusal}, err
	}
	tpl, err := s.templates.get(body)
	if err != nil {
		return Admission{Refusal: "the CA's provisioning template does not parse: " + err.Error()}, nil
	}
	c := s.registeredCertificate(ca.Scope, leaf, iot.StatusPendingActivation, ca.Mode, ca.ID)
	plan, err := evaluate(tpl, map[string]string{}, c)
	if err != nil {
		return jitpRefusal(err)
	}
	w, err := s.provisionWrite(ctx, ca.Scope, plan, c)
	if err != nil {
		return jitpRefusal(err)
	}
	// The certificate is registered by the plan even when the template
	// does not name it, as JITR would register it.
	w.NewCertificate, w.CertificateID = c, c.ID
	out, err := s.store.Provision(ctx, ca.Scope, w)
	if errors.Is(err, store.ErrExists) {
		if _, cerr := s.store.Certificate(ctx, ca.Scope, c.ID); cerr == nil {
			// Another connection of the device provisioned it a moment ago.
			return Admission{Registered: &JITRegistration{Scope: c.Scope, CertificateID: c.ID, CACertificateID: ca.ID, RegisteredAt: c.CreatedAt},
				Refusal: "provisioned just in time by another connection"}, nil
		}
	}
	if err != nil {
		return jitpRefusal(provisionError(err, w))
	}
	s.changed()
	refusal = "provisioned just in time; the device is admitted when it connects again"
	if out.Thing != nil {
		refusal = "provisioned just in time as thing " + out.Thing.Name + "; the device is admitted when it connects again"
	}
	return Admission{Registered: &JITRegistration{Scope: c.Scope, CertificateID: c.ID, CACertificateID: ca.ID, RegisteredAt: c.CreatedAt}, Refusal: refusal}, nil
}

// jitpTemplate returns the body of a CA's provisioning template: the
// inline one, or the default version of the JITP template it names, which
// must exist and be enabled. A refusal says why there is none to run.
func (s *Service) jitpTemplate(ctx context.Context, ca *iot.CACertificate) (body, refusal string, err error) {
	rc := ca.RegistrationConfig
	if rc.TemplateBody != "" {
		return rc.TemplateBody, "", nil
	}
	t, err := s.store.ProvisioningTemplate(ctx, ca.Scope, rc.TemplateName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", "the CA's provisioning template " + rc.TemplateName + " does not exist", nil
	case err != nil:
		return "", "", internal("reading a provisioning template", err)
	case t.Type != iot.JITP:
		return "", "the CA's provisioning template " + t.Name + " is not a JITP template", nil
	case !t.Enabled:
		return "", "the CA's provisioning template " + t.Name + " is disabled", nil
	}
	return t.Body, "", nil
}

// jitpRefusal refuses a device whose template could not be applied: the
// client's kind of error is the template's or the certificate's fault, and
// says so in the log; anything else is the service's.
func jitpRefusal(err error) (Admission, error) {
	if e, ok := apierr.As(err); ok && e.Kind != apierr.InternalFailure && e.Kind != apierr.ServiceUnavailable {
		return Admission{Refusal: "just-in-time provisioning failed: " + e.Message}, nil
	}
	return Admission{}, err
}
