package server_test

import (
	"context"
	"encoding/pem"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/testpki"
)

// TestAnotherAccountCannotLockOutADevice: account B registers a copy of
// account A's device certificate. The device, which names no account,
// still lands in A; naming B in its SNI is the device's own choice of B.
func TestAnotherAccountCannotLockOutADevice(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	ctx := context.Background()
	c := ts.iotClient()
	cB := ts.accountClient(t, testOtherAcct)
	kp := ts.claim(t, c)
	regB, err := cB.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{
		CertificatePem: aws.String(kp.certPEM), Status: types.CertificateStatusActive,
	})
	if err != nil {
		t.Fatal(err)
	}
	allowAll(t, cB, *regB.CertificateArn)
	listenerA := ts.mustConnect(t, ts.claim(t, c))
	inA := listenerA.subscribe(t, "capture/test")
	d := ts.mustConnect(t, kp)
	d.publish(t, "capture/test", []byte("in A"))
	if m := receive(t, inA); string(m.Payload()) != "in A" {
		t.Fatalf("A received %q", m.Payload())
	}
	d.Disconnect(0)

	// Naming an account reaches that account's registration only.
	listenerB, err := ts.connectAs(t, ts.claim(t, cB), testOtherAcct)
	if err != nil {
		t.Fatalf("B's own device naming B: %v", err)
	}
	inB := listenerB.subscribe(t, "capture/test")
	dB, err := ts.connectAs(t, kp, testOtherAcct)
	if err != nil {
		t.Fatalf("the device naming B, where it is registered ACTIVE: %v", err)
	}
	dB.publish(t, "capture/test", []byte("in B"))
	if m := receive(t, inB); string(m.Payload()) != "in B" {
		t.Fatalf("B received %q", m.Payload())
	}
	if _, err := ts.connectAs(t, ts.claim(t, c), "999999999999"); err == nil {
		t.Fatal("a device connected naming an account it is not registered in")
	}
}

// TestAnotherAccountCannotCaptureDevices: account B registers account A's CA
// (public) in SNI_ONLY mode with auto-registration. A's new devices must not
// be registered into B when they connect, whether A's own registration of
// the CA auto-registers or not.
func TestAnotherAccountCannotCaptureDevices(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	ctx := context.Background()
	c := ts.iotClient()
	cB := ts.accountClient(t, testOtherAcct)
	ca := testpki.NewRoot(t, "p256", "A's fleet CA")
	caID := registerCA(t, c, ca, true)
	if _, err := cB.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly,
		SetAsActive: true, AllowAutoRegistration: true,
	}); err != nil {
		t.Fatal(err)
	}
	before := certificateCount(t, cB)

	// A does not auto-register: the device is refused and lands nowhere.
	kp := caLeaf(t, ca, "a-device")
	if _, err := ts.connect(t, kp, ""); err == nil {
		t.Fatal("an unregistered device of A connected")
	}
	if n := certificateCount(t, cB); n != before {
		t.Fatalf("B captured %d of A's devices", n-before)
	}

	// A auto-registers: the device is registered into A, never into B.
	if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{
		CertificateId: aws.String(caID), NewStatus: types.CACertificateStatusActive, NewAutoRegistrationStatus: types.AutoRegistrationStatusEnable,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.connect(t, kp, ""); err == nil {
		t.Fatal("a just-registered device connected")
	}
	if status, d := describeStatus(t, c, kp.id); status != types.CertificateStatusPendingActivation || aws.ToString(d.CaCertificateId) != caID {
		t.Fatalf("in A: %s under %v", status, d.CaCertificateId)
	}
	if n := certificateCount(t, cB); n != before {
		t.Fatalf("B captured %d of A's devices", n-before)
	}
	activate(t, c, kp.id)
	ts.mustConnect(t, kp)
}

// TestFleetcasOwnCAsCannotBeRegistered: account B gets a verification
// certificate for fleetca's issuing CA by having it sign a CSR whose CN is
// B's registration code, then registers that CA in DEFAULT mode, to claim
// the certificates fleetca issued to other accounts' devices. fleetca's root,
// issuing and server CAs are refused in every mode.
func TestFleetcasOwnCAsCannotBeRegistered(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	ctx := context.Background()
	cB := ts.accountClient(t, testOtherAcct)
	code := registrationCode(t, cB)
	csr, _ := testpki.NewCSR(t, "p256", pkixName(code))
	verification, err := cB.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(der []byte) *string {
		return aws.String(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	}
	for name, in := range map[string]*iot.RegisterCACertificateInput{
		"issuing CA, DEFAULT":  {CaCertificate: pemOf(ts.issuingCA(t).Raw), VerificationCertificate: verification.CertificatePem, SetAsActive: true, AllowAutoRegistration: true},
		"issuing CA, SNI_ONLY": {CaCertificate: pemOf(ts.issuingCA(t).Raw), CertificateMode: types.CertificateModeSniOnly, SetAsActive: true},
		"root, SNI_ONLY":       {CaCertificate: pemOf(ts.rootCA(t).Raw), CertificateMode: types.CertificateModeSniOnly, SetAsActive: true},
	} {
		if _, err := cB.RegisterCACertificate(ctx, in); !isErr[*types.CertificateValidationException](err) {
			t.Errorf("%s: %v, want CertificateValidationException", name, err)
		}
	}
	if n := caCount(t, cB); n != 0 {
		t.Fatalf("%d CAs registered", n)
	}
}
