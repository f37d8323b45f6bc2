package mqttapi

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// Registry is what the device plane asks of fleetca's rules;
// *registry.Service is one. Every error it returns that is meant for the
// device is an apierr error.
type Registry interface {
	// AdmitDevice gives the verdict on a connecting device's certificate
	// and the TLS server name it asked for.
	AdmitDevice(ctx context.Context, leaf *x509.Certificate, serverName string) (registry.Admission, error)
	// StillAdmitted checks a connected device again; pass remembers what
	// one sweep over the connected devices has read.
	StillAdmitted(ctx context.Context, pass *registry.SweepPass, scope iot.Scope, certificateID string) (bool, error)
	// CreateDeviceKeysAndCertificate and CreateDeviceCertificateFromCSR
	// serve the fleet-provisioning certificate topics.
	CreateDeviceKeysAndCertificate(ctx context.Context, scope iot.Scope) (*registry.ProvisionedCertificate, error)
	CreateDeviceCertificateFromCSR(ctx context.Context, scope iot.Scope, in registry.DeviceCSR) (*registry.ProvisionedCertificate, error)
	// RegisterDevice serves RegisterThing: it provisions the certificate
	// of an ownership token with a fleet-provisioning template.
	RegisterDevice(ctx context.Context, scope iot.Scope, in registry.DeviceRegistration) (*registry.Registration, error)
	// ExpireProvisioningTokens deletes the certificates still
	// PENDING_ACTIVATION whose ownership token expired before now.
	ExpireProvisioningTokens(ctx context.Context, now time.Time) ([]iot.Certificate, error)
	// ConnectionGrants reads what a device connected with the
	// certificate and client ID may do.
	ConnectionGrants(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*registry.Grants, error)
	// Changes, LastChange and PruneChanges read and trim the change feed;
	// ChangeNotices tells of this process's own changes at once.
	// CompiledPolicy reads a policy's default version, compiled; nil when
	// the policy is gone or its document grants nothing.
	CompiledPolicy(ctx context.Context, scope iot.Scope, name string) (*policy.Policy, error)
	Changes(ctx context.Context, after int64, limit int) ([]registry.Change, error)
	LastChange(ctx context.Context) (int64, error)
	PruneChanges(ctx context.Context) error
	ChangeNotices() <-chan struct{}
}

var _ Registry = (*registry.Service)(nil)
