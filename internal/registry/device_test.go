package registry_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/lambdatest"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/provider/lambda"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
	"github.com/fleetca/fleetca/internal/testpki"
)

var scope = iot.Scope{AccountID: "123456789012", Region: "us-east-1"}

// providerCA is the CA of the example provider function.
func providerCA(t *testing.T) (*x509.Certificate, string, []byte) {
	t.Helper()
	ca := testpki.NewRoot(t, "p256", "Provider CA")
	return ca.Cert, ca.PEM, []byte(ca.KeyPEM(t))
}

func deviceCSR(t *testing.T) string {
	t.Helper()
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "device"})
	return csr
}

// TestCreateDeviceCertificateFromCSR runs the device path of
// CreateCertificateFromCsr with every real part: SQLite, fleetca's CA, and the
// example provider behind the Lambda Invoke API.
// providerFixture is a store, fleetca's CA, and the example provider
// function ("signer", with its own CA) and a failing one ("broken") behind
// the Lambda Invoke API.
type providerFixture struct {
	st        *sqlstore.Store
	authority *issuance.Authority
	fn        *lambdatest.Server
	invoker   *lambda.Invoker
	pca       *x509.Certificate
	pcaPEM    string
}

func newProviderFixture(t *testing.T) *providerFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authority, err := issuance.Open(issuance.Options{Dir: filepath.Join(dir, "ca"), Algorithm: keys.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	pca, pcaPEM, pcaKey := providerCA(t)
	example, err := signer.New([]byte(pcaPEM), pcaKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdatest.NewServer(t, map[string]any{
		"signer": example.Handle,
		"broken": func(context.Context, signer.Event) (signer.Response, error) {
			return signer.Response{}, errors.New("down")
		},
	})
	invoker, err := lambda.New(ctx, lambda.Options{Endpoint: fn.URL, Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	if err != nil {
		t.Fatal(err)
	}
	return &providerFixture{st: st, authority: authority, fn: fn, invoker: invoker, pca: pca, pcaPEM: pcaPEM}
}

func TestCreateDeviceCertificateFromCSR(t *testing.T) {
	ctx := context.Background()
	f := newProviderFixture(t)
	st, authority, fn, pca, pcaPEM := f.st, f.authority, f.fn, f.pca, f.pcaPEM
	reg := registry.New(registry.Options{Store: st, Authority: authority, Signer: f.invoker})
	count := func() int {
		list, err := reg.ListCertificates(ctx, scope, registry.ListOptions{PageSize: 250})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Certificates)
	}
	req := registry.DeviceCSR{CSRPEM: deviceCSR(t), PrincipalID: "claim-id", ClientID: "device-1"}

	// No provider: fleetca's CA signs.
	pc, err := reg.CreateDeviceCertificateFromCSR(ctx, scope, req)
	if err != nil {
		t.Fatal(err)
	}
	c := pc.Certificate
	leaf, _ := x509.ParseCertificate(c.DER)
	if len(pc.OwnershipToken) < 40 {
		t.Fatalf("ownership token %q is too short to be unguessable", pc.OwnershipToken)
	}
	if c.Status != iot.StatusPendingActivation || c.Mode != iot.ModeDefault || leaf.CheckSignatureFrom(authority.Issuing()) != nil {
		t.Fatalf("without a provider: %+v", c)
	}
	if calls := fn.Calls.Load(); calls != 0 {
		t.Fatalf("the provider was called %d times without being configured", calls)
	}

	// With a provider: its function signs, with the caller's identity.
	if _, err := reg.CreateCertificateProvider(ctx, scope, registry.CreateProviderInput{
		Name: "signer", LambdaFunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:signer",
		AccountDefaultForOperations: []string{iot.OperationCreateCertificateFromCsr},
	}); err != nil {
		t.Fatal(err)
	}
	pc, err = reg.CreateDeviceCertificateFromCSR(ctx, scope, req)
	if err != nil {
		t.Fatal(err)
	}
	c = pc.Certificate
	leaf, _ = x509.ParseCertificate(c.DER)
	if leaf.CheckSignatureFrom(pca) != nil || c.Status != iot.StatusPendingActivation || c.Mode != iot.ModeSNIOnly || c.CACertificateID != "" {
		t.Fatalf("with a provider: %+v", c)
	}
	var event signer.Event
	json.Unmarshal(fn.LastEvent(), &event)
	if event.PrincipalID != "claim-id" || event.ClientID != "device-1" {
		t.Fatalf("the function received %s", fn.LastEvent())
	}

	// The provider's CA, once registered in the account, owns its certificates.
	reg.GetRegistrationCode(ctx, scope)
	ca, err := reg.RegisterCACertificate(ctx, scope, registry.RegisterCAInput{CACertificatePEM: pcaPEM, Mode: iot.ModeSNIOnly, SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, err = reg.CreateDeviceCertificateFromCSR(ctx, scope, req)
	if err != nil || pc.Certificate.CACertificateID != ca.ID || pc.Certificate.Mode != iot.ModeSNIOnly {
		t.Fatalf("under a registered provider CA: %v %+v", err, pc)
	}

	// A failing provider registers nothing.
	before := count()
	if _, err := reg.UpdateCertificateProvider(ctx, scope, "signer", registry.UpdateProviderInput{LambdaFunctionARN: ptr("arn:aws:lambda:us-east-1:123456789012:function:broken")}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateDeviceCertificateFromCSR(ctx, scope, req); provider.FailureOf(err) != provider.FunctionFailed || !apierr.Is(err, apierr.InternalFailure) {
		t.Fatalf("failing provider: %v, want InternalFailure caused by FunctionError", err)
	}
	if _, err := reg.CreateDeviceCertificateFromCSR(ctx, scope, registry.DeviceCSR{CSRPEM: "junk"}); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("bad CSR: %v", err)
	}
	if after := count(); after != before {
		t.Fatalf("failed requests registered %d certificates", after-before)
	}

	// Deleting the provider brings fleetca's CA back.
	if err := reg.DeleteCertificateProvider(ctx, scope, "signer"); err != nil {
		t.Fatal(err)
	}
	pc, err = reg.CreateDeviceCertificateFromCSR(ctx, scope, req)
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _ := x509.ParseCertificate(pc.Certificate.DER); leaf.CheckSignatureFrom(authority.Issuing()) != nil {
		t.Fatal("after the provider's deletion fleetca's CA does not sign")
	}
}

func ptr(s string) *string { return &s }

// TestProviderOfAnotherAccount is the confused-deputy attack: account B names
// account A's signing function as its provider, to get certificates from A's
// CA. Refused unless the operator granted B the use of A's functions; a
// provider stored before the rule (or before a grant was withdrawn) does not
// sign either; the function learns which account asks.
func TestProviderOfAnotherAccount(t *testing.T) {
	ctx := context.Background()
	f := newProviderFixture(t)
	st, authority, fn, invoker := f.st, f.authority, f.fn, f.invoker
	const aFunction = "arn:aws:lambda:us-east-1:123456789012:function:signer"
	attacker := iot.Scope{AccountID: "210987654321", Region: "us-east-1"}
	partner := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
	granted := registry.New(registry.Options{Store: st, Authority: authority, Signer: invoker,
		CrossAccountProviders: map[string][]string{partner.AccountID: {scope.AccountID}}})
	create := func(reg *registry.Service, sc iot.Scope, arn string) error {
		_, err := reg.CreateCertificateProvider(ctx, sc, registry.CreateProviderInput{
			Name: "signer", LambdaFunctionARN: arn, AccountDefaultForOperations: []string{iot.OperationCreateCertificateFromCsr},
		})
		return err
	}
	if err := create(granted, attacker, aFunction); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("another account's function as provider: %v, want InvalidRequest", err)
	}
	if err := create(granted, attacker, "arn:aws:lambda:us-east-1:210987654321:function:own"); err != nil {
		t.Fatalf("the account's own function: %v", err)
	}
	if _, err := granted.UpdateCertificateProvider(ctx, attacker, "signer", registry.UpdateProviderInput{LambdaFunctionARN: ptr(aFunction)}); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("updating to another account's function: %v, want InvalidRequest", err)
	}

	// A granted pair works, and the function is told who asks.
	if err := create(granted, partner, aFunction); err != nil {
		t.Fatalf("a granted cross-account provider: %v", err)
	}
	req := registry.DeviceCSR{CSRPEM: deviceCSR(t), PrincipalID: "claim-id", ClientID: "device-1"}
	if _, err := granted.CreateDeviceCertificateFromCSR(ctx, partner, req); err != nil {
		t.Fatal(err)
	}
	var event struct {
		AWSAccountID string `json:"awsAccountId"`
	}
	json.Unmarshal(fn.LastEvent(), &event)
	if event.AWSAccountID != partner.AccountID {
		t.Fatalf("the function received %s, without the asking account", fn.LastEvent())
	}

	// The grant withdrawn: the stored provider no longer signs.
	calls := fn.Calls.Load()
	withdrawn := registry.New(registry.Options{Store: st, Authority: authority, Signer: invoker})
	if _, err := withdrawn.CreateDeviceCertificateFromCSR(ctx, partner, req); provider.FailureOf(err) != provider.InvokeRefused || !apierr.Is(err, apierr.InternalFailure) {
		t.Fatalf("a stored provider of another account's function: %v, want InvokeRefused", err)
	}
	if fn.Calls.Load() != calls {
		t.Fatal("the other account's function was invoked")
	}
}
