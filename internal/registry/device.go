package registry

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/store"
)

// DeviceCSR is a device's fleet-provisioning CreateCertificateFromCsr request.
type DeviceCSR struct {
	CSRPEM string
	// PrincipalID is the certificate ID the device connected with.
	PrincipalID string
	// ClientID is the device's MQTT client ID.
	ClientID string
}

// CreateDeviceCertificateFromCSR signs a device's CSR for the fleet-provisioning
// API and registers the certificate as PENDING_ACTIVATION. When the scope has a
// certificate provider, its function signs; otherwise fleetca's CA does. A
// provider's failure is returned as a *provider.Error, and then nothing is
// registered.
func (s *Service) CreateDeviceCertificateFromCSR(ctx context.Context, scope iot.Scope, in DeviceCSR) (*iot.Certificate, error) {
	csr, err := pki.ParseCSR([]byte(in.CSRPEM))
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "Invalid certificate signing request: %v", err)
	}
	p, err := s.store.ScopeCertificateProvider(ctx, scope)
	if errors.Is(err, store.ErrNotFound) {
		issued, err := s.authority.IssueForCSR(csr)
		if err != nil {
			return nil, internal("issuing", err)
		}
		return s.register(ctx, scope, issued, iot.StatusPendingActivation)
	}
	if err != nil {
		return nil, internal("finding the certificate provider", err)
	}
	if s.signer == nil {
		return nil, internal("signing with a certificate provider", errors.New("no provider signer is configured"))
	}
	der, err := s.signer.Sign(ctx, provider.Request{
		FunctionARN: p.LambdaFunctionARN, CSRPEM: in.CSRPEM, PrincipalID: in.PrincipalID, ClientID: in.ClientID,
	}, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, provider.Errorf(provider.MalformedAnswer, err, "the certificate does not parse")
	}
	// A certificate from one of the scope's registered CAs belongs to it, as
	// if registered with RegisterCertificate; any other is SNI_ONLY, as if
	// registered without a CA.
	mode, caID := iot.ModeSNIOnly, ""
	if ca, err := s.issuingCA(ctx, scope, leaf, ""); err == nil {
		mode, caID = ca.Mode, ca.ID
	}
	return s.storeRegistered(ctx, scope, leaf, iot.StatusPendingActivation, mode, caID)
}
