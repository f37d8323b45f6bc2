package server_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/lambdatest"
	"github.com/fleetca/fleetca/internal/testpki"
)

func describeStatus(t testing.TB, c *iot.Client, id string) (types.CertificateStatus, *types.CertificateDescription) {
	t.Helper()
	d, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return d.CertificateDescription.Status, d.CertificateDescription
}

// TestFleetProvisioning follows the AWS fleet-provisioning flow: a device with
// only a claim certificate gets its own certificate over MQTT, which is
// PENDING_ACTIVATION until activated, and then connects with it.
func TestFleetProvisioning(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	claim := ts.claim(t, c)
	for _, format := range []string{"json", "cbor"} {
		t.Run("CreateKeysAndCertificate/"+format, func(t *testing.T) {
			d := ts.mustConnect(t, claim)
			topic, reply := d.request(t, "$aws/certificates/create", format, map[string]any{})
			if topic != "$aws/certificates/create/"+format+"/accepted" {
				t.Fatalf("reply on %s: %v", topic, reply)
			}
			certPEM, _ := reply["certificatePem"].(string)
			keyPEM, _ := reply["privateKey"].(string)
			token, _ := reply["certificateOwnershipToken"].(string)
			kp := newKeyPair(t, certPEM, keyPEM) // the key matches the certificate
			if reply["certificateId"] != kp.id || len(token) < 40 {
				t.Fatalf("reply %v", reply)
			}
			ts.verifyChain(t, certPEM)
			activateAndConnect(t, ts, c, kp)
		})
		t.Run("CreateCertificateFromCsr/"+format, func(t *testing.T) {
			d := ts.mustConnect(t, claim)
			csr, key := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "provisioned-device"})
			topic, reply := d.request(t, "$aws/certificates/create-from-csr", format, map[string]string{"certificateSigningRequest": csr})
			if topic != "$aws/certificates/create-from-csr/"+format+"/accepted" {
				t.Fatalf("reply on %s: %v", topic, reply)
			}
			certPEM, _ := reply["certificatePem"].(string)
			kp := newKeyPair(t, certPEM, testpki.KeyPEM(t, key))
			if reply["certificateId"] != kp.id || reply["certificateOwnershipToken"] == "" {
				t.Fatalf("reply %v", reply)
			}
			activateAndConnect(t, ts, c, kp)
		})
	}
	t.Run("rejected", func(t *testing.T) {
		d := ts.mustConnect(t, claim)
		before := certificateCount(t, c)
		for _, tc := range []struct {
			format string
			body   any
		}{
			{"json", map[string]string{"certificateSigningRequest": "junk"}},
			{"json", map[string]string{}},
			{"cbor", map[string]string{"certificateSigningRequest": "junk"}},
		} {
			topic, reply := d.request(t, "$aws/certificates/create-from-csr", tc.format, tc.body)
			if topic != "$aws/certificates/create-from-csr/"+tc.format+"/rejected" || reply["errorCode"] != "InvalidRequest" ||
				toInt(reply["statusCode"]) != 400 || reply["errorMessage"] == "" {
				t.Fatalf("%s %v: reply on %s: %v", tc.format, tc.body, topic, reply)
			}
		}
		// A payload that is not JSON at all.
		replies := d.subscribe(t, "$aws/certificates/create/json/rejected")
		d.publish(t, "$aws/certificates/create/json", []byte("{not json"))
		if m := decodeAs(t, "json", receive(t, replies).Payload()); toInt(m["statusCode"]) != 400 {
			t.Fatalf("reply %v", m)
		}
		if after := certificateCount(t, c); after != before {
			t.Fatalf("rejected requests registered %d certificates", after-before)
		}
	})
}

func toInt(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case uint64:
		return int(n)
	case int64:
		return int(n)
	}
	return -1
}

// activateAndConnect checks that a provisioned certificate cannot connect
// until it is activated, and can after.
func activateAndConnect(t *testing.T, ts *testServer, c *iot.Client, kp keyPair) {
	t.Helper()
	if status, _ := describeStatus(t, c, kp.id); status != types.CertificateStatusPendingActivation {
		t.Fatalf("a provisioned certificate is %s, want PENDING_ACTIVATION", status)
	}
	if _, err := ts.connect(t, kp, ""); err == nil {
		t.Fatal("a PENDING_ACTIVATION certificate connected")
	}
	activate(t, c, kp.id)
	ts.mustConnect(t, kp)
}

func TestAdmission(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	for _, status := range []string{"INACTIVE", "REVOKED"} {
		t.Run(status, func(t *testing.T) {
			kp := ts.claim(t, c)
			setStatus(t, c, kp.id, status)
			if _, err := ts.connect(t, kp, ""); err == nil {
				t.Fatalf("an %s certificate connected", status)
			}
		})
	}
	t.Run("deleted", func(t *testing.T) {
		kp := ts.claim(t, c)
		setStatus(t, c, kp.id, "INACTIVE")
		if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(kp.id), ForceDelete: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatal("a deleted certificate connected")
		}
	})
	t.Run("unknown self-signed", func(t *testing.T) {
		ca := testpki.NewRoot(t, "p256", "nobody")
		if _, err := ts.connect(t, newKeyPair(t, ca.PEM, testpki.KeyPEM(t, ca.Key)), ""); err == nil {
			t.Fatal("an unknown certificate connected")
		}
	})
	t.Run("registered CA", func(t *testing.T) {
		ca := testpki.NewRoot(t, "p256", "Device Fleet CA")
		caID := registerCA(t, c, ca, true)
		kp := caLeaf(t, ca, "fleet-device")
		if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(kp.certPEM), Status: types.CertificateStatusActive}); err != nil {
			t.Fatal(err)
		}
		activate(t, c, kp.id)
		ts.mustConnect(t, kp)
		// Once its CA is deactivated, the chain is no longer trusted.
		if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(caID), NewStatus: types.CACertificateStatusInactive}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatal("a certificate of an INACTIVE CA connected")
		}
	})
	t.Run("SNI_ONLY without CA", func(t *testing.T) {
		self := testpki.NewRoot(t, "p256", "self-signed device")
		kp := newKeyPair(t, self.PEM, testpki.KeyPEM(t, self.Key))
		if _, err := c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{CertificatePem: aws.String(self.PEM), Status: types.CertificateStatusActive}); err != nil {
			t.Fatal(err)
		}
		activate(t, c, kp.id)
		// As at AWS, an SNI_ONLY certificate names its account's endpoint.
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatal("an SNI_ONLY certificate connected without naming its account")
		}
		if _, err := ts.connectAs(t, kp, testAccount); err != nil {
			t.Fatalf("naming its account: %v", err)
		}
	})
}

// caLeaf issues a client certificate from ca with a key the test keeps.
func caLeaf(t testing.TB, ca *testpki.CA, cn string) keyPair {
	t.Helper()
	key := testpki.Key(t, "p256")
	_, p := testpki.Sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.Cert, key.Public(), ca.Key)
	return newKeyPair(t, p, testpki.KeyPEM(t, key))
}

func TestJustInTimeRegistration(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	ca := testpki.NewRoot(t, "p256", "JITR Root")
	out, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, c))),
		SetAsActive: true, AllowAutoRegistration: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	caID := *out.CertificateId
	// A backend of the same account listens for registrations; another
	// account's listener must hear nothing.
	listener := ts.mustConnect(t, ts.claim(t, c))
	events := listener.subscribe(t, "$aws/events/certificates/registered/"+caID)
	credB, err := ts.CreateAccount(ctx, testOtherAcct)
	if err != nil {
		t.Fatal(err)
	}
	cB := ts.client(credB.AccessKeyID, credB.SecretAccessKey)
	otherListener := ts.mustConnect(t, ts.claim(t, cB))
	otherEvents := otherListener.subscribe(t, "$aws/events/certificates/registered/#")

	kp := caLeaf(t, ca, "jitr-device")
	for attempt := 1; attempt <= 2; attempt++ {
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatalf("attempt %d: a just-registered certificate connected", attempt)
		}
		var ev map[string]any
		if err := json.Unmarshal(receive(t, events).Payload(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["certificateId"] != kp.id || ev["caCertificateId"] != caID || ev["certificateStatus"] != "PENDING_ACTIVATION" ||
			ev["awsAccountId"] != testAccount || ev["timestamp"] == nil || ev["certificateRegistrationTimestamp"] == nil {
			t.Fatalf("attempt %d: event %v", attempt, ev)
		}
	}
	status, d := describeStatus(t, c, kp.id)
	if status != types.CertificateStatusPendingActivation || aws.ToString(d.CaCertificateId) != caID || d.CertificateMode != types.CertificateModeDefault {
		t.Fatalf("registered as %s under %v", status, d.CaCertificateId)
	}
	activate(t, c, kp.id)
	ts.mustConnect(t, kp)
	select {
	case m := <-otherEvents:
		t.Fatalf("another account received %s", m.Payload())
	default:
	}

	for _, tc := range []struct {
		name string
		in   iot.UpdateCACertificateInput
	}{
		{"CA inactive", iot.UpdateCACertificateInput{NewStatus: types.CACertificateStatusInactive}},
		{"auto-registration disabled", iot.UpdateCACertificateInput{NewStatus: types.CACertificateStatusActive, NewAutoRegistrationStatus: types.AutoRegistrationStatusDisable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.CertificateId = aws.String(caID)
			if _, err := c.UpdateCACertificate(ctx, &in); err != nil {
				t.Fatal(err)
			}
			before := certificateCount(t, c)
			if _, err := ts.connect(t, caLeaf(t, ca, "refused"), ""); err == nil {
				t.Fatal("connected")
			}
			if after := certificateCount(t, c); after != before {
				t.Fatal("a certificate was registered")
			}
		})
	}
}

func TestOwnershipTokenExpiry(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	d := ts.mustConnect(t, ts.claim(t, c))
	provision := func() string {
		_, reply := d.request(t, "$aws/certificates/create", "json", map[string]any{})
		return reply["certificateId"].(string)
	}
	abandoned, activated := provision(), provision()
	setStatus(t, c, activated, "ACTIVE")
	ctx := context.Background()
	if n, err := ts.ExpireProvisionedCertificates(ctx, time.Now().Add(59*time.Minute)); err != nil || n != 0 {
		t.Fatalf("before an hour: deleted %d, %v", n, err)
	}
	if n, err := ts.ExpireProvisionedCertificates(ctx, time.Now().Add(61*time.Minute)); err != nil || n != 1 {
		t.Fatalf("after an hour: deleted %d, %v; want 1", n, err)
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(abandoned)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("the abandoned certificate: %v", err)
	}
	if status, _ := describeStatus(t, c, activated); status != types.CertificateStatusActive {
		t.Fatalf("the activated certificate is %s", status)
	}
}

// TestRepliesOnlyToRequester has two devices subscribe to the same reply
// topic; each receives its own reply and nothing of the other's.
func TestRepliesOnlyToRequester(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	a, b := ts.mustConnect(t, ts.claim(t, c)), ts.mustConnect(t, ts.claim(t, c))
	aReplies := a.subscribe(t, "$aws/certificates/create/json/accepted")
	bReplies := b.subscribe(t, "$aws/certificates/create/json/accepted")
	a.publish(t, "$aws/certificates/create/json", []byte("{}"))
	aID := decodeAs(t, "json", receive(t, aReplies).Payload())["certificateId"]
	// Had A's reply gone to B, it would be queued before B's own.
	b.publish(t, "$aws/certificates/create/json", []byte("{}"))
	bID := decodeAs(t, "json", receive(t, bReplies).Payload())["certificateId"]
	if aID == nil || bID == nil || aID == bID {
		t.Fatalf("B's first reply is %v, A's %v", bID, aID)
	}
}

func TestDeactivationDisconnects(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	for _, change := range []string{"INACTIVE", "REVOKED", "deleted"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			kp := ts.claim(t, c)
			d := ts.mustConnect(t, kp)
			switch change {
			case "deleted":
				setStatus(t, c, kp.id, "INACTIVE")
				if _, err := c.DeleteCertificate(context.Background(), &iot.DeleteCertificateInput{CertificateId: aws.String(kp.id), ForceDelete: true}); err != nil {
					t.Fatal(err)
				}
			default:
				setStatus(t, c, kp.id, change)
			}
			select {
			case <-d.lost:
			case <-time.After(waitLimit):
				t.Fatal("the device stayed connected")
			}
		})
	}
	// A compromised CA's devices must go when the CA is deactivated or
	// deleted, though their own certificates stay ACTIVE.
	for _, change := range []string{"CA INACTIVE", "CA deleted"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			ca := testpki.NewRoot(t, "p256", "Fleet CA "+change)
			caID := registerCA(t, c, ca, true)
			kp := caLeaf(t, ca, "device")
			if _, err := c.RegisterCertificate(context.Background(), &iot.RegisterCertificateInput{CertificatePem: aws.String(kp.certPEM), Status: types.CertificateStatusActive}); err != nil {
				t.Fatal(err)
			}
			activate(t, c, kp.id)
			d := ts.mustConnect(t, kp)
			if _, err := c.UpdateCACertificate(context.Background(), &iot.UpdateCACertificateInput{CertificateId: aws.String(caID), NewStatus: types.CACertificateStatusInactive}); err != nil {
				t.Fatal(err)
			}
			if change == "CA deleted" {
				if _, err := c.DeleteCACertificate(context.Background(), &iot.DeleteCACertificateInput{CertificateId: aws.String(caID)}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-d.lost:
			case <-time.After(waitLimit):
				t.Fatal("the device stayed connected")
			}
			if status, _ := describeStatus(t, c, kp.id); status != types.CertificateStatusActive {
				t.Fatalf("the device certificate is %s; the test means a CA change alone", status)
			}
		})
	}
}

func TestTopicRules(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	t.Run("reserved subscriptions", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		tok := d.Subscribe("$aws/things/thing-1/shadow/#", 1, nil)
		if !tok.WaitTimeout(waitLimit) {
			t.Fatal("no SUBACK")
		}
		if code := tok.(interface{ Result() map[string]byte }).Result()["$aws/things/thing-1/shadow/#"]; code != 0x80 {
			t.Fatalf("SUBACK code %#x, want 0x80", code)
		}
	})
	t.Run("reserved publish", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		d.Publish("$aws/things/thing-1/shadow/update", 1, false, []byte("{}"))
		select {
		case <-d.lost: // MQTT 3.1.1 has no negative PUBACK: the broker disconnects
		case <-time.After(waitLimit):
			t.Fatal("a publish on a reserved topic was accepted")
		}
	})
	t.Run("accounts are isolated", func(t *testing.T) {
		credB, err := ts.CreateAccount(context.Background(), "333333333333")
		if err != nil {
			t.Fatal(err)
		}
		cB := ts.client(credB.AccessKeyID, credB.SecretAccessKey)
		a1, a2 := ts.mustConnect(t, ts.claim(t, c)), ts.mustConnect(t, ts.claim(t, c))
		b := ts.mustConnect(t, ts.claim(t, cB))
		aMessages := a2.subscribe(t, "#")
		bMessages := b.subscribe(t, "#")
		a1.publish(t, "telemetry/temperature", []byte("from A"))
		if m := receive(t, aMessages); m.Topic() != "telemetry/temperature" || string(m.Payload()) != "from A" {
			t.Fatalf("A's subscriber got %s %q", m.Topic(), m.Payload())
		}
		b.publish(t, "telemetry/temperature", []byte("from B"))
		if m := receive(t, bMessages); string(m.Payload()) != "from B" {
			t.Fatalf("B's subscriber got %q first: A's message crossed accounts", m.Payload())
		}
	})
	t.Run("a will cannot reach another account", func(t *testing.T) {
		credB, err := ts.CreateAccount(context.Background(), "555555555555")
		if err != nil {
			t.Fatal(err)
		}
		cB := ts.client(credB.AccessKeyID, credB.SecretAccessKey)
		b := ts.mustConnect(t, ts.claim(t, cB))
		bMessages := b.subscribe(t, "#")
		aWatcher := ts.mustConnect(t, ts.claim(t, c))
		// The will names account B's namespace as if it were a topic of A's.
		crossTopic := "555555555555/" + testRegion + "/commands"
		aWills := aWatcher.subscribe(t, crossTopic)
		kp := ts.claim(t, c)
		dropper, err := ts.connectWithWill(t, kp, crossTopic, "injected")
		if err != nil {
			t.Fatal(err)
		}
		// The server drops the device (its certificate is deactivated), so
		// the broker publishes its will.
		setStatus(t, c, kp.id, "INACTIVE")
		select {
		case <-dropper.lost:
		case <-time.After(waitLimit):
			t.Fatal("the device was not disconnected")
		}
		if m := receive(t, aWills); string(m.Payload()) != "injected" {
			t.Fatalf("A's watcher got %q", m.Payload())
		}
		b.publish(t, "own/topic", []byte("from B"))
		if m := receive(t, bMessages); string(m.Payload()) != "from B" {
			t.Fatalf("B received %q on %s first: a will crossed accounts", m.Payload(), m.Topic())
		}
	})
	t.Run("same client ID in two accounts", func(t *testing.T) {
		credB, err := ts.CreateAccount(context.Background(), "444444444444")
		if err != nil {
			t.Fatal(err)
		}
		cB := ts.client(credB.AccessKeyID, credB.SecretAccessKey)
		a, err := ts.connect(t, ts.claim(t, c), "shared-id")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.connect(t, ts.claim(t, cB), "shared-id"); err != nil {
			t.Fatal(err)
		}
		// A's session is not taken over by B's device.
		messages := a.subscribe(t, "still/here")
		a.publish(t, "still/here", []byte("yes"))
		receive(t, messages)
	})
}

// TestProvisioningWithProvider has the account's certificate provider (the
// example function behind the Lambda Invoke API) sign device CSRs.
func TestProvisioningWithProvider(t *testing.T) {
	pca := testpki.NewRoot(t, "p256", "Provider CA")
	pcaPEM, pcaKey := pca.PEM, []byte(pca.KeyPEM(t))
	example, err := signer.New([]byte(pcaPEM), pcaKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdatest.NewServer(t, map[string]any{
		"signer": example.Handle,
		"broken": func(context.Context, signer.Event) (signer.Response, error) {
			return signer.Response{}, errors.New("the HSM is unplugged")
		},
	})
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALLAMBDA")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-lambda-secret")
	ts := startServerWith(t, "", func(cfg *config.Config) { cfg.LambdaEndpoint = fn.URL })
	c := ts.iotClient()
	claim := ts.claim(t, c)
	if _, err := c.CreateCertificateProvider(context.Background(), createProvider("signer", "arn:aws:lambda:us-east-1:123456789012:function:signer", "")); err != nil {
		t.Fatal(err)
	}
	d, err := ts.connect(t, claim, "provisioning-client")
	if err != nil {
		t.Fatal(err)
	}
	csr, key := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "provisioned-device"})
	topic, reply := d.request(t, "$aws/certificates/create-from-csr", "json", map[string]string{"certificateSigningRequest": csr})
	if topic != "$aws/certificates/create-from-csr/json/accepted" {
		t.Fatalf("reply on %s: %v", topic, reply)
	}
	kp := newKeyPair(t, reply["certificatePem"].(string), testpki.KeyPEM(t, key))
	issuer := kp.tls.Leaf
	if issuer == nil {
		issuer, _ = x509.ParseCertificate(kp.tls.Certificate[0])
	}
	if issuer.Issuer.CommonName != "Provider CA" {
		t.Fatalf("issued by %s, want the provider's CA", issuer.Issuer)
	}
	var event signer.Event
	json.Unmarshal(fn.LastEvent(), &event)
	if event.PrincipalID != claim.id || event.ClientID != "provisioning-client" {
		t.Fatalf("the provider received principal %q client %q", event.PrincipalID, event.ClientID)
	}
	if status, desc := describeStatus(t, c, kp.id); status != types.CertificateStatusPendingActivation || desc.CertificateMode != types.CertificateModeSniOnly {
		t.Fatalf("provider certificate: %s %s", status, desc.CertificateMode)
	}
	// SNI_ONLY, so the device names its account, as at AWS.
	activate(t, c, kp.id)
	if _, err := ts.connect(t, kp, ""); err == nil {
		t.Fatal("an SNI_ONLY certificate connected without naming its account")
	}
	if _, err := ts.connectAs(t, kp, testAccount); err != nil {
		t.Fatalf("the provider's certificate, naming its account: %v", err)
	}

	before := certificateCount(t, c)
	// The example refuses P-521 keys: the device's fault, 400.
	p521, _ := testpki.NewCSR(t, "p521", pkix.Name{CommonName: "provisioned-device"})
	_, reply = d.request(t, "$aws/certificates/create-from-csr", "json", map[string]string{"certificateSigningRequest": p521})
	if toInt(reply["statusCode"]) != 400 || reply["errorCode"] != "InvalidRequest" {
		t.Fatalf("refused CSR: %v", reply)
	}
	// A failing function: the service's fault, 500.
	if _, err := c.UpdateCertificateProvider(context.Background(), &iot.UpdateCertificateProviderInput{
		CertificateProviderName: aws.String("signer"), LambdaFunctionArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:broken"),
	}); err != nil {
		t.Fatal(err)
	}
	_, reply = d.request(t, "$aws/certificates/create-from-csr", "json", map[string]string{"certificateSigningRequest": csr})
	if toInt(reply["statusCode"]) != 500 || reply["errorCode"] != "InternalError" {
		t.Fatalf("failing provider: %v", reply)
	}
	if after := certificateCount(t, c); after != before {
		t.Fatalf("failed provider calls registered %d certificates", after-before)
	}
}
