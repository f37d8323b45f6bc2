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
// admitted. When the template cannot be applied (it names a parameter the
// subject lacks, a template that no longer exists, ...), the certificate
// is registered PENDING_ACTIVATION as just-in-time registration does, the
// event published, and why logged: AWS's JITP registers the certificate
// first and leaves it waiting for activation when the template fails, and
// an operator's activation that listens for the event still hears of it.
// Nothing is ever half provisioned.
func (s *Service) provisionJustInTime(ctx context.Context, ca *iot.CACertificate, leaf *x509.Certificate) (Admission, error) {
	a, failed, err := s.applyJITP(ctx, ca, leaf, nil)
	if err != nil || failed == "" {
		return a, err
	}
	a, err = s.registerPending(ctx, ca, leaf)
	if a.Registered != nil {
		a.Refusal = "just-in-time provisioning failed (" + failed + "); registered just in time instead, waiting for activation; its next connection tries again"
	}
	return a, err
}

// provisionPending tries the CA's provisioning template again on a
// certificate registered PENDING_ACTIVATION under it (its template failed
// before, or the CA had none then); tried reports whether the CA has a
// template. A template that still fails leaves the certificate as it is.
func (s *Service) provisionPending(ctx context.Context, c *iot.Certificate, leaf *x509.Certificate) (a Admission, tried bool, err error) {
	ca, err := s.store.CACertificate(ctx, c.Scope, c.CACertificateID)
	if errors.Is(err, store.ErrNotFound) {
		return Admission{}, false, nil
	}
	if err != nil {
		return Admission{}, false, internal("finding the CA certificate", err)
	}
	rc := ca.RegistrationConfig
	if ca.Status != iot.CAStatusActive || ca.AutoRegistration != iot.AutoRegistrationEnable || rc.TemplateBody == "" && rc.TemplateName == "" {
		return Admission{}, false, nil
	}
	a, failed, err := s.applyJITP(ctx, ca, leaf, c)
	if err != nil || failed == "" {
		return a, true, err
	}
	return Admission{Registered: jitRegistration(c),
		Refusal: "the certificate is PENDING_ACTIVATION: just-in-time provisioning failed again (" + failed + ")"}, true, nil
}

// applyJITP applies a CA's template to a device's certificate: a new one,
// or the registration pending (not nil); failed says why a template could
// not be applied.
func (s *Service) applyJITP(ctx context.Context, ca *iot.CACertificate, leaf *x509.Certificate, pending *iot.Certificate) (a Admission, failed string, err error) {
	body, failed, err := s.jitpTemplate(ctx, ca)
	if err != nil || failed != "" {
		return Admission{}, failed, err
	}
	tpl, err := s.templates.get(body)
	if err != nil {
		return Admission{}, "the CA's provisioning template does not parse: " + err.Error(), nil
	}
	c := pending
	if c == nil {
		c = s.registeredCertificate(ca.Scope, leaf, iot.StatusPendingActivation, ca.Mode, ca.ID)
	}
	plan, err := evaluate(tpl, nil, c)
	if err != nil {
		return jitpFailure(err)
	}
	w, err := s.provisionWrite(ctx, ca.Scope, plan)
	if err != nil {
		return jitpFailure(err)
	}
	// A new certificate is registered by the plan even when the template
	// does not name it, as JITR would register it.
	w.CertificateID = c.ID
	if pending == nil {
		w.NewCertificate = c
	}
	registered := jitRegistration(c)
	out, err := s.store.Provision(ctx, ca.Scope, w)
	if errors.Is(err, store.ErrExists) && pending == nil {
		if _, cerr := s.store.Certificate(ctx, ca.Scope, c.ID); cerr == nil {
			// Another connection of the device provisioned it a moment ago.
			return Admission{Registered: registered, Refusal: "provisioned just in time by another connection"}, "", nil
		}
	}
	if err != nil {
		return jitpFailure(provisionError(err))
	}
	s.changed()
	refusal := "provisioned just in time; the device is admitted when it connects again"
	if out.Thing != nil {
		refusal = "provisioned just in time as thing " + out.Thing.Name + "; the device is admitted when it connects again"
	}
	return Admission{Registered: registered, Refusal: refusal}, "", nil
}

// jitpTemplate returns the body of a CA's provisioning template: the
// inline one, or the default version of the JITP template it names, which
// must exist and be enabled; failed says why there is none to run.
func (s *Service) jitpTemplate(ctx context.Context, ca *iot.CACertificate) (body, failed string, err error) {
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

// jitpFailure sorts a failed template: the client's kind of error is the
// template's or the certificate's fault, and says why; anything else is
// the service's, and is returned.
func jitpFailure(err error) (Admission, string, error) {
	if e, ok := apierr.As(err); ok && e.Kind != apierr.InternalFailure && e.Kind != apierr.ServiceUnavailable {
		return Admission{}, e.Message, nil
	}
	return Admission{}, "", err
}
