package registry_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// provisioningTemplate is AWS's fleet-provisioning sample template, short.
const provisioningTemplate = `{
  "Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}}
  }
}`

// newClockedRegistry is a registry on SQLite and fleetca's CA whose clock
// the test moves, with an enabled fleet-provisioning template "fleet".
func newClockedRegistry(t *testing.T) (*registry.Service, *clock) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Now()}
	authority, err := issuance.Open(issuance.Options{Dir: filepath.Join(dir, "ca"), Algorithm: keys.ECDSAP256, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{Store: st, Authority: authority, Now: clk.now})
	if _, err := reg.CreateProvisioningTemplate(ctx, scope, registry.TemplateInput{Name: "fleet", Body: provisioningTemplate, Enabled: true,
		ProvisioningRoleARN: "arn:aws:iam::123456789012:role/Provision"}); err != nil {
		t.Fatal(err)
	}
	return reg, clk
}

// TestProvisioningClaim: a claim admits its device for five minutes with
// the authority to provision itself with its template and nothing else,
// is no registered certificate, and is refused once expired.
func TestProvisioningClaim(t *testing.T) {
	ctx := context.Background()
	reg, clk := newClockedRegistry(t)
	claim, err := reg.CreateProvisioningClaim(ctx, scope, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertificate([]byte(claim.CertificatePEM))
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.NotAfter.Sub(clk.now()); got > 5*time.Minute || got < 5*time.Minute-2*time.Second {
		t.Errorf("the claim is valid %v more, want five minutes", got)
	}
	if !claim.Expiration.Equal(leaf.NotAfter) || leaf.Subject.CommonName == claim.CertificateID || len(leaf.Subject.CommonName) != 64 {
		t.Errorf("expiration %v, notAfter %v, subject %q", claim.Expiration, leaf.NotAfter, leaf.Subject.CommonName)
	}
	if !strings.Contains(claim.PrivateKeyPEM, "BEGIN RSA PRIVATE KEY") || !strings.Contains(claim.PublicKeyPEM, "BEGIN PUBLIC KEY") {
		t.Errorf("key pair is not PKCS#1 and SPKI PEM")
	}
	if _, err := reg.DescribeCertificate(ctx, scope, claim.CertificateID); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Errorf("DescribeCertificate of a claim: %v, want ResourceNotFound", err)
	}
	a, err := reg.AdmitDevice(ctx, leaf, "localhost")
	if err != nil || a.Certificate == nil || a.Certificate.ID != claim.CertificateID || a.Certificate.Scope != scope {
		t.Fatalf("admission of a fresh claim: %+v, %v", a, err)
	}
	g, err := reg.ConnectionGrants(ctx, scope, claim.CertificateID, "device-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action   policy.Action
		resource string
		want     policy.Decision
	}{
		{policy.Connect, "client/anything", policy.Allowed},
		{policy.Publish, "topic/$aws/provisioning-templates/fleet/provision/json", policy.Allowed},
		{policy.Publish, "topic/$aws/certificates/create-from-csr/cbor", policy.Allowed},
		{policy.Subscribe, "topicfilter/$aws/provisioning-templates/fleet/provision/json/accepted", policy.Allowed},
		{policy.Receive, "topic/$aws/certificates/create/json/accepted", policy.Allowed},
		{policy.Publish, "topic/$aws/provisioning-templates/other/provision/json", policy.ImplicitDeny},
		{policy.Subscribe, "topicfilter/#", policy.ImplicitDeny},
		{policy.Publish, "topic/telemetry", policy.ImplicitDeny},
	} {
		r := &policy.Request{Action: tc.action, Resource: "arn:aws:iot:" + scope.Region + ":" + scope.AccountID + ":" + tc.resource}
		if got := policy.Evaluate(g.Policies, r); got != tc.want {
			t.Errorf("%v on %s: %v, want %v", tc.action, r.Resource, got, tc.want)
		}
	}
	if ok, err := reg.StillAdmitted(ctx, &registry.SweepPass{}, scope, claim.CertificateID); !ok || err != nil {
		t.Errorf("a fresh claim is no longer admitted: %v", err)
	}

	clk.advance(5*time.Minute + time.Second)
	if ok, err := reg.StillAdmitted(ctx, &registry.SweepPass{}, scope, claim.CertificateID); ok || err != nil {
		t.Errorf("an expired claim is still admitted (err %v)", err)
	}
	if a, err := reg.AdmitDevice(ctx, leaf, "localhost"); err != nil || a.Certificate != nil {
		t.Errorf("admission of an expired claim: %+v, %v", a, err)
	}

	// Claims only for enabled fleet-provisioning templates.
	if _, err := reg.CreateProvisioningClaim(ctx, scope, "missing"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Errorf("claim for a missing template: %v", err)
	}
	off := false
	if err := reg.UpdateProvisioningTemplate(ctx, scope, "fleet", registry.TemplateUpdate{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateProvisioningClaim(ctx, scope, "fleet"); !apierr.Is(err, apierr.InvalidRequest) {
		t.Errorf("claim for a disabled template: %v", err)
	}
}

// TestOwnershipTokenExpires: RegisterThing refuses a token older than an
// hour as it refuses an unknown one, and creates nothing.
func TestOwnershipTokenExpires(t *testing.T) {
	ctx := context.Background()
	reg, clk := newClockedRegistry(t)
	p, err := reg.CreateDeviceKeysAndCertificate(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(registry.OwnershipTokenLifetime + time.Second)
	_, err = reg.RegisterDevice(ctx, scope, registry.DeviceRegistration{TemplateName: "fleet", OwnershipToken: p.OwnershipToken,
		Parameters: map[string]string{"SerialNumber": "1"}})
	if !apierr.Is(err, apierr.InvalidRequest) || !errors.Is(err, registry.ErrInvalidOwnershipToken) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := reg.DescribeThing(ctx, scope, "ThingPrefix_1"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Errorf("an expired token made a thing: %v", err)
	}
	c, err := reg.DescribeCertificate(ctx, scope, p.Certificate.ID)
	if err != nil || c.Status != iot.StatusPendingActivation {
		t.Errorf("certificate after a refused RegisterThing: %+v, %v", c, err)
	}
}

// TestRegisterDeviceGuards: a token whose certificate an operator has
// deactivated since provisions nothing (the device's token does not undo
// the operator), and the AWS::IoT::Certificate::* parameters come from the
// certificate alone, never from the device, even those its subject lacks.
func TestRegisterDeviceGuards(t *testing.T) {
	ctx := context.Background()
	reg, _ := newClockedRegistry(t)

	p, err := reg.CreateDeviceKeysAndCertificate(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.UpdateCertificateStatus(ctx, scope, p.Certificate.ID, iot.StatusInactive); err != nil {
		t.Fatal(err)
	}
	_, err = reg.RegisterDevice(ctx, scope, registry.DeviceRegistration{TemplateName: "fleet", OwnershipToken: p.OwnershipToken,
		Parameters: map[string]string{"SerialNumber": "1"}})
	if !errors.Is(err, registry.ErrInvalidOwnershipToken) {
		t.Fatalf("RegisterThing of a deactivated certificate: %v", err)
	}
	if c, _ := reg.DescribeCertificate(ctx, scope, p.Certificate.ID); c.Status != iot.StatusInactive {
		t.Fatalf("the deactivated certificate is %s", c.Status)
	}

	// A template naming the thing after the certificate's country, which
	// CreateKeysAndCertificate's subject (CN only) does not have.
	body := `{"Parameters": {"AWS::IoT::Certificate::Country": {"Type": "String"}},
	  "Resources": {
	    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::Country"}}},
	    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}}}`
	if _, err := reg.CreateProvisioningTemplate(ctx, scope, registry.TemplateInput{Name: "by-country", Body: body, Enabled: true,
		ProvisioningRoleARN: "arn:aws:iam::123456789012:role/Provision"}); err != nil {
		t.Fatal(err)
	}
	p, err = reg.CreateDeviceKeysAndCertificate(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.RegisterDevice(ctx, scope, registry.DeviceRegistration{TemplateName: "by-country", OwnershipToken: p.OwnershipToken,
		Parameters: map[string]string{"AWS::IoT::Certificate::Country": "victim", "AWS::IoT::Certificate::Id": "another"}})
	if !apierr.Is(err, apierr.ResourceRegistrationFailure) || !strings.Contains(err.Error(), "AWS::IoT::Certificate::Country") {
		t.Fatalf("a device giving a certificate parameter: %v", err)
	}
	if _, err := reg.DescribeThing(ctx, scope, "victim"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Fatalf("the device named its thing through a certificate parameter: %v", err)
	}
}
