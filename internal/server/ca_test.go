package server_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/smithy-go"

	"github.com/fleetca/fleetca/internal/testpki"
)

func registrationCode(t testing.TB, c *iot.Client) string {
	t.Helper()
	out, err := c.GetRegistrationCode(context.Background(), &iot.GetRegistrationCodeInput{})
	if err != nil {
		t.Fatal(err)
	}
	return *out.RegistrationCode
}

// registerCA registers ca in DEFAULT mode with a proper verification
// certificate and returns its ID.
func registerCA(t testing.TB, c *iot.Client, ca *testpki.CA, active bool) string {
	t.Helper()
	out, err := c.RegisterCACertificate(context.Background(), &iot.RegisterCACertificateInput{
		CaCertificate:           aws.String(ca.PEM),
		VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, c))),
		SetAsActive:             active,
	})
	if err != nil {
		t.Fatal(err)
	}
	return *out.CertificateId
}

func caCount(t testing.TB, c *iot.Client) int {
	t.Helper()
	n := 0
	p := iot.NewListCACertificatesPaginator(c, &iot.ListCACertificatesInput{PageSize: aws.Int32(250)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Certificates)
	}
	return n
}

func TestRegistrationCode(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	first := registrationCode(t, c)
	if _, ok := normalizedHex(first); !ok {
		t.Fatalf("registration code %q is not 64 lower-case hex digits", first)
	}
	if again := registrationCode(t, c); again != first {
		t.Fatalf("the code changed without a delete: %s, then %s", first, again)
	}
	if _, err := c.DeleteRegistrationCode(ctx, &iot.DeleteRegistrationCodeInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRegistrationCode(ctx, &iot.DeleteRegistrationCodeInput{}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("deleting a missing code: %v", err)
	}
	if next := registrationCode(t, c); next == first {
		t.Fatal("a new code after delete is the old one")
	}
}

func normalizedHex(s string) (string, bool) {
	if len(s) != 64 || strings.ToLower(s) != s {
		return "", false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return "", false
		}
	}
	return s, true
}

func TestRegisterCACertificate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	code := registrationCode(t, c)
	createJITPTemplate(t, c, "jitp-template")

	for _, kind := range []string{"rsa-2048", "p256"} {
		t.Run("accepted "+kind, func(t *testing.T) {
			ca := testpki.NewRoot(t, kind, "Acme Root "+kind)
			out, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
				CaCertificate:           aws.String(ca.PEM),
				VerificationCertificate: aws.String(ca.Verification(t, code)),
				RegistrationConfig:      &types.RegistrationConfig{TemplateName: aws.String("jitp-template")},
				Tags:                    []types.Tag{{Key: aws.String("team"), Value: aws.String("devices")}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := "arn:aws:iot:" + testRegion + ":" + testAccount + ":cacert/" + *out.CertificateId; *out.CertificateArn != want {
				t.Errorf("ARN %s, want %s", *out.CertificateArn, want)
			}
			d, err := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: out.CertificateId})
			if err != nil {
				t.Fatal(err)
			}
			cd := d.CertificateDescription
			if cd.Status != types.CACertificateStatusInactive || cd.AutoRegistrationStatus != types.AutoRegistrationStatusDisable ||
				cd.CertificateMode != types.CertificateModeDefault || *cd.OwnedBy != testAccount || *cd.CustomerVersion != 1 ||
				parseCertPEM(t, *cd.CertificatePem).Equal(ca.Cert) == false || !cd.Validity.NotAfter.Equal(ca.Cert.NotAfter) {
				t.Errorf("description %+v", cd)
			}
			if d.RegistrationConfig == nil || aws.ToString(d.RegistrationConfig.TemplateName) != "jitp-template" {
				t.Errorf("registrationConfig %+v", d.RegistrationConfig)
			}
			tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: out.CertificateArn})
			if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Key != "team" {
				t.Errorf("tags %+v %v", tags, err)
			}
			// The same CA again is refused, naming the existing one.
			_, err = c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
				CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, code)),
			})
			var exists *types.ResourceAlreadyExistsException
			if !errors.As(err, &exists) || aws.ToString(exists.ResourceId) != *out.CertificateId || aws.ToString(exists.ResourceArn) != *out.CertificateArn {
				t.Fatalf("registering the same CA again: %v", err)
			}
		})
	}
	t.Run("setAsActive and allowAutoRegistration", func(t *testing.T) {
		ca := testpki.NewRoot(t, "p256", "Active Root")
		out, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
			CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, code)),
			SetAsActive: true, AllowAutoRegistration: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: out.CertificateId})
		if d.CertificateDescription.Status != types.CACertificateStatusActive || d.CertificateDescription.AutoRegistrationStatus != types.AutoRegistrationStatusEnable {
			t.Fatalf("status %s auto %s", d.CertificateDescription.Status, d.CertificateDescription.AutoRegistrationStatus)
		}
	})

	before := caCount(t, c)
	other := testpki.NewRoot(t, "p256", "Other Root")
	expired := testpki.NewRootWithKey(t, testpki.Key(t, "p256"), func() *x509.Certificate {
		tmpl := testpki.CATemplate("Expired Root")
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		return tmpl
	}())
	notCA := testpki.NewRoot(t, "p256", "Not a CA")
	leafOnly := notCA.Leaf(t, "p256", "just a device")
	refusals := []struct {
		name         string
		ca, verify   string
		mode         types.CertificateMode
		isWantedType func(error) bool
		message      string
	}{
		{"wrong CN", other.PEM, other.Verification(t, strings.Repeat("0", 64)), "", isErr[*types.RegistrationCodeValidationException], "registration code"},
		{"verification signed by another key", other.PEM, testpki.NewRoot(t, "p256", "Other Root").Verification(t, code), "", isErr[*types.CertificateValidationException], "not signed"},
		{"expired CA", expired.PEM, expired.Verification(t, code), "", isErr[*types.CertificateValidationException], "not valid now"},
		{"not a CA", leafOnly, other.Verification(t, code), "", isErr[*types.CertificateValidationException], "CA:TRUE"},
		{"garbage CA", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", other.Verification(t, code), "", isErr[*types.CertificateValidationException], "not valid"},
		{"garbage verification", other.PEM, "junk", "", isErr[*types.CertificateValidationException], "verification certificate"},
		{"DEFAULT without verification", other.PEM, "", "", isErr[*types.InvalidRequestException], "verification certificate"},
		{"SNI_ONLY with verification", other.PEM, other.Verification(t, code), types.CertificateModeSniOnly, isErr[*types.InvalidRequestException], "SNI_ONLY"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			in := &iot.RegisterCACertificateInput{CaCertificate: aws.String(tc.ca), CertificateMode: tc.mode}
			if tc.verify != "" {
				in.VerificationCertificate = aws.String(tc.verify)
			}
			_, err := c.RegisterCACertificate(ctx, in)
			if !tc.isWantedType(err) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v; want the right type, mentioning %q", err, tc.message)
			}
		})
	}
	t.Run("no registration code", func(t *testing.T) {
		if _, err := c.DeleteRegistrationCode(ctx, &iot.DeleteRegistrationCodeInput{}); err != nil {
			t.Fatal(err)
		}
		_, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(other.PEM), VerificationCertificate: aws.String(other.Verification(t, code))})
		if !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("err = %v, want ResourceNotFoundException", err)
		}
	})
	if after := caCount(t, c); after != before {
		t.Fatalf("refused registrations changed the CA count from %d to %d", before, after)
	}
}

func TestCASubjectLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	register := func() error {
		ca := testpki.NewRoot(t, "p256", "Shared Subject CA")
		_, err := c.RegisterCACertificate(context.Background(), &iot.RegisterCACertificateInput{
			CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly,
		})
		return err
	}
	for i := 0; i < 10; i++ {
		if err := register(); err != nil {
			t.Fatalf("CA %d: %v", i+1, err)
		}
	}
	if err := register(); !isErr[*types.LimitExceededException](err) {
		t.Fatalf("the eleventh CA with one subject: %v, want LimitExceededException", err)
	}
	if n := caCount(t, c); n != 10 {
		t.Fatalf("%d CAs registered, want 10", n)
	}
}

func TestCAAcrossAccounts(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	a := ts.iotClient()
	credB, err := ts.CreateAccount(context.Background(), testOtherAcct)
	if err != nil {
		t.Fatal(err)
	}
	b := ts.client(credB.AccessKeyID, credB.SecretAccessKey)
	ctx := context.Background()

	ca := testpki.NewRoot(t, "p256", "Contested Root")
	idA := registerCA(t, a, ca, true)
	_, err = b.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, b))),
	})
	if !isErr[*types.ResourceAlreadyExistsException](err) {
		t.Fatalf("a second account registering a DEFAULT-mode CA: %v", err)
	}
	// The other account can neither see nor touch account A's CA.
	if _, err := b.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(idA)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("account B describes account A's CA: %v", err)
	}
	if _, err := b.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(idA), NewStatus: types.CACertificateStatusInactive}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("account B updates account A's CA: %v", err)
	}
	// SNI_ONLY: both accounts may register the same CA.
	sni := testpki.NewRoot(t, "p256", "Shared SNI Root")
	for _, c := range []*iot.Client{a, b} {
		if _, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(sni.PEM), CertificateMode: types.CertificateModeSniOnly, SetAsActive: true}); err != nil {
			t.Fatal(err)
		}
	}
	if na, nb := caCount(t, a), caCount(t, b); na != 2 || nb != 1 {
		t.Fatalf("account A lists %d CAs, B %d; want 2 and 1", na, nb)
	}
	// A device certificate of the SNI_ONLY CA registers in both accounts, each
	// under its own registration.
	leaf := sni.Leaf(t, "p256", "shared-device")
	for _, c := range []*iot.Client{a, b} {
		out, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(leaf)})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
		if d.CertificateDescription.CertificateMode != types.CertificateModeSniOnly {
			t.Fatalf("mode %s, want SNI_ONLY from the CA", d.CertificateDescription.CertificateMode)
		}
	}
	// A region is a scope of its own too.
	west := iot.New(iot.Options{BaseEndpoint: aws.String(ts.URL()), Region: "eu-west-1", Credentials: a.Options().Credentials, RetryMaxAttempts: 1})
	if n := caCount(t, west); n != 0 {
		t.Fatalf("eu-west-1 lists %d CAs of us-east-1", n)
	}
}

func TestRegisterCertificate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()

	root := testpki.NewRoot(t, "rsa-2048", "Acme Root")
	inter := root.Intermediate(t, "p256", "Acme Devices Intermediate")
	interID := registerCA(t, c, inter, true) // the root itself is not registered

	t.Run("leaf of a registered intermediate", func(t *testing.T) {
		for _, kind := range []string{"rsa-2048", "p256"} {
			out, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(inter.Leaf(t, kind, "device-"+kind)), Status: types.CertificateStatusActive})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
			cd := d.CertificateDescription
			if aws.ToString(cd.CaCertificateId) != interID || cd.Status != types.CertificateStatusActive || cd.CertificateMode != types.CertificateModeDefault {
				t.Fatalf("%s: %+v", kind, cd)
			}
		}
	})
	t.Run("status and the deprecated setAsActive", func(t *testing.T) {
		for _, tc := range []struct {
			in   iot.RegisterCertificateInput
			want types.CertificateStatus
		}{
			{iot.RegisterCertificateInput{}, types.CertificateStatusInactive},
			//lint:ignore SA1019 the deprecated member is still sent by older callers, and honoured
			{iot.RegisterCertificateInput{SetAsActive: aws.Bool(true)}, types.CertificateStatusActive},
			{iot.RegisterCertificateInput{Status: types.CertificateStatusRevoked}, types.CertificateStatusRevoked},
			//lint:ignore SA1019 status wins over the deprecated member
			{iot.RegisterCertificateInput{Status: types.CertificateStatusInactive, SetAsActive: aws.Bool(true)}, types.CertificateStatusInactive},
		} {
			in := tc.in
			in.CertificatePem = aws.String(inter.Leaf(t, "p256", "status"))
			in.CaCertificatePem = aws.String(inter.PEM)
			out, err := c.RegisterCertificate(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
			if d.CertificateDescription.Status != tc.want {
				t.Fatalf("status %s, want %s", d.CertificateDescription.Status, tc.want)
			}
		}
	})

	before := certificateCount(t, c)
	inactive := testpki.NewRoot(t, "p256", "Inactive Root")
	registerCA(t, c, inactive, false)
	unregistered := testpki.NewRoot(t, "p256", "Unregistered Root")
	// A CA with the intermediate's subject but another key is not its twin.
	impostor := testpki.NewRootWithKey(t, testpki.Key(t, "p256"), testpki.CATemplate("Acme Devices Intermediate"))
	dup := inter.Leaf(t, "p256", "dup")
	if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(dup)}); err != nil {
		t.Fatal(err)
	}
	before++
	refusals := []struct {
		name string
		in   iot.RegisterCertificateInput
		want func(error) bool
	}{
		{"CA inactive", iot.RegisterCertificateInput{CertificatePem: aws.String(inactive.Leaf(t, "p256", "x"))}, isErr[*types.CertificateStateException]},
		{"CA unregistered", iot.RegisterCertificateInput{CertificatePem: aws.String(unregistered.Leaf(t, "p256", "x"))}, isErr[*types.CertificateValidationException]},
		{"CA unregistered but given", iot.RegisterCertificateInput{CertificatePem: aws.String(unregistered.Leaf(t, "p256", "x")), CaCertificatePem: aws.String(unregistered.PEM)}, isErr[*types.CertificateValidationException]},
		{"signed by a CA with the same subject", iot.RegisterCertificateInput{CertificatePem: aws.String(impostor.Leaf(t, "p256", "x"))}, isErr[*types.CertificateValidationException]},
		{"given CA did not sign it", iot.RegisterCertificateInput{CertificatePem: aws.String(unregistered.Leaf(t, "p256", "x")), CaCertificatePem: aws.String(inter.PEM)}, isErr[*types.CertificateValidationException]},
		{"garbage", iot.RegisterCertificateInput{CertificatePem: aws.String("junk")}, isErr[*types.CertificateValidationException]},
		{"status PENDING_TRANSFER", iot.RegisterCertificateInput{CertificatePem: aws.String(inter.Leaf(t, "p256", "x")), Status: types.CertificateStatusPendingTransfer}, isErr[*types.InvalidRequestException]},
		{"duplicate", iot.RegisterCertificateInput{CertificatePem: aws.String(dup)}, isErr[*types.ResourceAlreadyExistsException]},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.RegisterCertificate(ctx, &tc.in); !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if after := certificateCount(t, c); after != before {
		t.Fatalf("refused registrations changed the certificate count from %d to %d", before, after)
	}

	t.Run("two registered CAs with one subject and key", func(t *testing.T) {
		// Re-issuing a self-signed CA with the same key gives a second
		// certificate that verifies the same leaves.
		key := testpki.Key(t, "p256")
		first := testpki.NewRootWithKey(t, key, testpki.CATemplate("Twin Root"))
		second := testpki.NewRootWithKey(t, key, testpki.CATemplate("Twin Root"))
		registerCA(t, c, first, true)
		// The second is registered in SNI_ONLY mode; the ambiguity is the same.
		if _, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(second.PEM), CertificateMode: types.CertificateModeSniOnly, SetAsActive: true}); err != nil {
			t.Fatal(err)
		}
		leaf := first.Leaf(t, "p256", "twin-device")
		if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(leaf)}); !isErr[*types.CertificateConflictException](err) {
			t.Fatalf("ambiguous CA: %v, want CertificateConflictException", err)
		}
		out, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(leaf), CaCertificatePem: aws.String(second.PEM)})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
		if d.CertificateDescription.CertificateMode != types.CertificateModeSniOnly {
			t.Fatalf("mode %s, want the named CA's SNI_ONLY", d.CertificateDescription.CertificateMode)
		}
	})

	t.Run("without CA", func(t *testing.T) {
		selfSigned := testpki.NewRoot(t, "p256", "standalone device").PEM
		out, err := c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{CertificatePem: aws.String(selfSigned), Status: types.CertificateStatusActive})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId})
		cd := d.CertificateDescription
		if cd.CertificateMode != types.CertificateModeSniOnly || cd.CaCertificateId != nil || cd.Status != types.CertificateStatusActive {
			t.Fatalf("%+v", cd)
		}
		if _, err := c.RegisterCertificateWithoutCA(ctx, &iot.RegisterCertificateWithoutCAInput{CertificatePem: aws.String(selfSigned)}); !isErr[*types.ResourceAlreadyExistsException](err) {
			t.Fatalf("registering it twice: %v", err)
		}
	})
}

func TestListCertificatesByCA(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	ca := testpki.NewRoot(t, "p256", "Big Fleet Root")
	caID := registerCA(t, c, ca, true)
	other := testpki.NewRoot(t, "p256", "Small Fleet Root")
	registerCA(t, c, other, true)
	const n = 300
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		out, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(ca.Leaf(t, "p256", fmt.Sprint("device-", i)))})
		if err != nil {
			t.Fatal(err)
		}
		want[*out.CertificateId] = true
		if i%50 == 0 {
			if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(other.Leaf(t, "p256", "other"))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ascending := range []bool{false, true} {
		seen := 0
		p := iot.NewListCertificatesByCAPaginator(c, &iot.ListCertificatesByCAInput{CaCertificateId: aws.String(caID), PageSize: aws.Int32(47), AscendingOrder: ascending})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, cert := range page.Certificates {
				if !want[*cert.CertificateId] {
					t.Fatalf("%s listed twice or not under the CA", *cert.CertificateId)
				}
				want[*cert.CertificateId] = false
				seen++
			}
		}
		for id := range want {
			want[id] = true
		}
		if seen != n {
			t.Fatalf("listed %d certificates under the CA, want %d", seen, n)
		}
	}
	// A CA the account has not registered, unknown or another account's, is
	// not found, as for every other operation on a CA ID. The model lists no
	// ResourceNotFoundException for this operation, so the SDK reports it
	// as a generic API error with that code.
	cB := ts.accountClient(t, testOtherAcct)
	for name, call := range map[string]func() error{
		"unknown CA": func() error {
			_, err := c.ListCertificatesByCA(ctx, &iot.ListCertificatesByCAInput{CaCertificateId: aws.String(strings.Repeat("0", 64))})
			return err
		},
		"another account's CA": func() error {
			_, err := cB.ListCertificatesByCA(ctx, &iot.ListCertificatesByCAInput{CaCertificateId: aws.String(caID)})
			return err
		},
	} {
		var apiErr smithy.APIError
		if err := call(); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ResourceNotFoundException" {
			t.Fatalf("%s: %v, want ResourceNotFoundException", name, err)
		}
	}
}

func TestUpdateAndDeleteCACertificate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	ca := testpki.NewRoot(t, "p256", "Lifecycle Root")
	id := registerCA(t, c, ca, false)
	createJITPTemplate(t, c, "fleet-jitp")
	describe := func() *iot.DescribeCACertificateOutput {
		t.Helper()
		d, err := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	steps := []struct {
		name        string
		in          iot.UpdateCACertificateInput
		wantErr     func(error) bool
		wantStatus  types.CACertificateStatus
		wantAuto    types.AutoRegistrationStatus
		wantVersion int32
		wantConfig  string
	}{
		{"activate", iot.UpdateCACertificateInput{NewStatus: types.CACertificateStatusActive}, nil, "ACTIVE", "DISABLE", 2, ""},
		{"same again", iot.UpdateCACertificateInput{NewStatus: types.CACertificateStatusActive}, nil, "ACTIVE", "DISABLE", 2, ""},
		{"auto-registration", iot.UpdateCACertificateInput{NewAutoRegistrationStatus: types.AutoRegistrationStatusEnable}, nil, "ACTIVE", "ENABLE", 3, ""},
		{"registration config", iot.UpdateCACertificateInput{RegistrationConfig: &types.RegistrationConfig{TemplateName: aws.String("fleet-jitp")}}, nil, "ACTIVE", "ENABLE", 4, "fleet-jitp"},
		{"registration config naming no template", iot.UpdateCACertificateInput{RegistrationConfig: &types.RegistrationConfig{TemplateName: aws.String("no-such-template")}},
			isErr[*types.ResourceNotFoundException], "ACTIVE", "ENABLE", 4, "fleet-jitp"},
		{"registration config with a template that is no JITP template", iot.UpdateCACertificateInput{RegistrationConfig: &types.RegistrationConfig{TemplateBody: aws.String(`{"Resources":{}}`)}},
			isErr[*types.InvalidRequestException], "ACTIVE", "ENABLE", 4, "fleet-jitp"},
		{"remove auto-registration", iot.UpdateCACertificateInput{RemoveAutoRegistration: true}, nil, "ACTIVE", "ENABLE", 5, ""},
		{"bad status", iot.UpdateCACertificateInput{NewStatus: "REVOKED"}, isErr[*types.InvalidRequestException], "ACTIVE", "ENABLE", 5, ""},
		{"bad auto-registration", iot.UpdateCACertificateInput{NewAutoRegistrationStatus: "MAYBE"}, isErr[*types.InvalidRequestException], "ACTIVE", "ENABLE", 5, ""},
		{"bad template name", iot.UpdateCACertificateInput{RegistrationConfig: &types.RegistrationConfig{TemplateName: aws.String("no spaces allowed")}}, isErr[*types.InvalidRequestException], "ACTIVE", "ENABLE", 5, ""},
	}
	for _, step := range steps {
		in := step.in
		in.CertificateId = aws.String(id)
		_, err := c.UpdateCACertificate(ctx, &in)
		if step.wantErr == nil && err != nil || step.wantErr != nil && !step.wantErr(err) {
			t.Fatalf("%s: err = %v", step.name, err)
		}
		d := describe()
		cd := d.CertificateDescription
		config := ""
		if d.RegistrationConfig != nil {
			config = aws.ToString(d.RegistrationConfig.TemplateName)
		}
		if cd.Status != step.wantStatus || cd.AutoRegistrationStatus != step.wantAuto || *cd.CustomerVersion != step.wantVersion || config != step.wantConfig {
			t.Fatalf("%s: status %s auto %s version %d config %q", step.name, cd.Status, cd.AutoRegistrationStatus, *cd.CustomerVersion, config)
		}
	}
	// The templateName filter of ListCACertificates.
	if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(id), RegistrationConfig: &types.RegistrationConfig{TemplateName: aws.String("fleet-jitp")}}); err != nil {
		t.Fatal(err)
	}
	registerCA(t, c, testpki.NewRoot(t, "p256", "Unfiltered Root"), false)
	list, err := c.ListCACertificates(ctx, &iot.ListCACertificatesInput{TemplateName: aws.String("fleet-jitp")})
	if err != nil || len(list.Certificates) != 1 || *list.Certificates[0].CertificateId != id {
		t.Fatalf("templateName filter: %v %+v", err, list)
	}

	leaf, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(ca.Leaf(t, "p256", "stays"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: aws.String(id)}); !isErr[*types.CertificateStateException](err) {
		t.Fatalf("deleting an ACTIVE CA: %v", err)
	}
	if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: aws.String(id), NewStatus: types.CACertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(id)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: leaf.CertificateId}); err != nil {
		t.Fatalf("the device certificate went with its CA: %v", err)
	}
	if _, err := c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: aws.String(id)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestTags(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	ca := testpki.NewRoot(t, "p256", "Tagged Root")
	out, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.CertificateArn
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	list := func() map[string]string { t.Helper(); return resourceTags(t, c, arn) }
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{tag("env", "prod"), tag("owner", "ops")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{tag("env", "staging")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &iot.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"owner", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 1 || got["env"] != "staging" {
		t.Fatalf("tags %v, want env=staging", got)
	}
	var many []types.Tag
	for i := 0; i < 50; i++ {
		many = append(many, tag(fmt.Sprint("k", i), "v"))
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: many}); !isErr[*types.LimitExceededException](err) {
		t.Fatalf("51 tags: %v, want LimitExceededException", err)
	}
	device, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	otherAccountARN := strings.Replace(*arn, testAccount, testOtherAcct, 1)
	otherRegionARN := strings.Replace(*arn, testRegion, "eu-west-1", 1)
	unknownARN := "arn:aws:iot:" + testRegion + ":" + testAccount + ":cacert/" + strings.Repeat("ab", 32)
	refusals := []struct {
		name string
		arn  string
		tags []types.Tag
		want func(error) bool
	}{
		{"reserved prefix", *arn, []types.Tag{tag("aws:owner", "x")}, isErr[*types.InvalidRequestException]},
		{"key too long", *arn, []types.Tag{tag(strings.Repeat("k", 129), "x")}, isErr[*types.InvalidRequestException]},
		{"value too long", *arn, []types.Tag{tag("k", strings.Repeat("v", 257))}, isErr[*types.InvalidRequestException]},
		{"bad key character", *arn, []types.Tag{tag("semi;colon", "x")}, isErr[*types.InvalidRequestException]},
		{"device certificate", *device.CertificateArn, []types.Tag{tag("k", "v")}, isErr[*types.InvalidRequestException]},
		{"another account", otherAccountARN, []types.Tag{tag("k", "v")}, isErr[*types.InvalidRequestException]},
		{"another region", otherRegionARN, []types.Tag{tag("k", "v")}, isErr[*types.InvalidRequestException]},
		{"not an ARN", "cacert/abc", []types.Tag{tag("k", "v")}, isErr[*types.InvalidRequestException]},
		{"unknown CA", unknownARN, []types.Tag{tag("k", "v")}, isErr[*types.ResourceNotFoundException]},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: tc.tags}); !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if got := list(); len(got) != 1 {
		t.Fatalf("refused tagging changed the tags: %v", got)
	}
	if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(unknownARN)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("tags of an unknown CA: %v", err)
	}
	// Tags go with their resource.
	if _, err := c.DeleteCACertificate(ctx, &iot.DeleteCACertificateInput{CertificateId: out.CertificateId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{CaCertificate: aws.String(ca.PEM), CertificateMode: types.CertificateModeSniOnly}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("tags outlived their CA: %v", got)
	}
}

func TestCARegistrationSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	c := ts.iotClient()
	ctx := context.Background()
	ca := testpki.NewRoot(t, "rsa-2048", "Durable Root")
	id := registerCA(t, c, ca, true)
	code := registrationCode(t, c)
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String("arn:aws:iot:" + testRegion + ":" + testAccount + ":cacert/" + id), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	leaf, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(ca.Leaf(t, "p256", "durable")), Status: types.CertificateStatusActive})
	if err != nil {
		t.Fatal(err)
	}
	ts.stop(t)

	ts = startServer(t, dir)
	c = ts.iotClient()
	if got := registrationCode(t, c); got != code {
		t.Errorf("registration code changed across a restart")
	}
	d, err := c.DescribeCACertificate(ctx, &iot.DescribeCACertificateInput{CertificateId: aws.String(id)})
	if err != nil || d.CertificateDescription.Status != types.CACertificateStatusActive {
		t.Fatalf("CA after restart: %v", err)
	}
	tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: d.CertificateDescription.CertificateArn})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags after restart: %v %v", tags, err)
	}
	dl, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: leaf.CertificateId})
	if err != nil || aws.ToString(dl.CertificateDescription.CaCertificateId) != id {
		t.Fatalf("device certificate after restart: %v", err)
	}
	// And the CA keeps vouching for new device certificates.
	if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(ca.Leaf(t, "p256", "after-restart"))}); err != nil {
		t.Fatal(err)
	}
}

// jitpTemplateBody is the just-in-time provisioning template of AWS's JITP
// guide, with the thing type left out (fleetca has none).
const jitpTemplateBody = `{
  "Parameters": {
    "AWS::IoT::Certificate::CommonName": {"Type": "String"},
    "AWS::IoT::Certificate::Country": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {
      "Type": "AWS::IoT::Thing",
      "Properties": {
        "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
        "AttributePayload": {"version": "v1", "country": {"Ref": "AWS::IoT::Certificate::Country"}}
      }
    },
    "certificate": {
      "Type": "AWS::IoT::Certificate",
      "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
      "OverrideSettings": {"Status": "DO_NOTHING"}
    },
    "policy": {
      "Type": "AWS::IoT::Policy",
      "Properties": {
        "PolicyDocument": "{ \"Version\": \"2012-10-17\", \"Statement\": [{ \"Effect\": \"Allow\", \"Action\":[\"iot:Connect\",\"iot:Publish\"], \"Resource\" : [\"*\"] }] }"
      }
    }
  }
}`

// createJITPTemplate creates an enabled JITP template of jitpTemplateBody.
func createJITPTemplate(t testing.TB, c *iot.Client, name string) {
	t.Helper()
	_, err := c.CreateProvisioningTemplate(context.Background(), &iot.CreateProvisioningTemplateInput{
		TemplateName: aws.String(name), TemplateBody: aws.String(jitpTemplateBody), Type: types.TemplateTypeJitp, Enabled: aws.Bool(true),
		ProvisioningRoleArn: aws.String("arn:aws:iam::123456789012:role/JITPRole"),
	})
	if err != nil {
		t.Fatal(err)
	}
}
