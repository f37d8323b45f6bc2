package lambda_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
	"github.com/fleetca/fleetca/internal/lambdatest"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/provider/lambda"
	"github.com/fleetca/fleetca/internal/testpki"
)

const functionARN = "arn:aws:lambda:us-east-1:123456789012:function:"

// exampleCA makes the CA the example provider signs with.
func exampleCA(t *testing.T) (*x509.Certificate, []byte, []byte) {
	t.Helper()
	ca := testpki.NewRoot(t, "p256", "Provider CA")
	return ca.Cert, []byte(ca.PEM), []byte(ca.KeyPEM(t))
}

func csr(t *testing.T, kind string) (string, crypto.PublicKey) {
	t.Helper()
	csr, key := testpki.NewCSR(t, kind, pkix.Name{CommonName: "device-7"})
	return csr, key.Public()
}

func invoker(t *testing.T, endpoint string, timeout time.Duration) *lambda.Invoker {
	t.Helper()
	inv, err := lambda.New(context.Background(), lambda.Options{
		Endpoint: endpoint, Timeout: timeout,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestSign(t *testing.T) {
	ca, caPEM, caKey := exampleCA(t)
	example, err := signer.New(caPEM, caKey, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyCSR, _ := csr(t, "p256")
	srv := lambdatest.NewServer(t, map[string]any{
		"signer": example.Handle,
		"broken": func(context.Context, signer.Event) (signer.Response, error) {
			return signer.Response{}, errors.New("the HSM is unplugged")
		},
		"slow": lambdatest.Sleep,
		"garbage": func(context.Context, signer.Event) (signer.Response, error) {
			return signer.Response{CertificatePem: "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"}, nil
		},
		"empty":    func(context.Context, signer.Event) (map[string]string, error) { return map[string]string{}, nil },
		"not-json": func(context.Context, signer.Event) (string, error) { return "plain text", nil },
		"other-key": func(ctx context.Context, e signer.Event) (signer.Response, error) {
			e.CertificateSigningRequest = otherKeyCSR // sign somebody else's key
			return example.Handle(ctx, e)
		},
	})
	inv := invoker(t, srv.URL, 500*time.Millisecond)
	ctx := context.Background()

	goodCSR, goodKey := csr(t, "p256")
	der, err := inv.Sign(ctx, provider.Request{FunctionARN: functionARN + "signer", CSRPEM: goodCSR, PrincipalID: "claim-cert-id", ClientID: "device-7"}, goodKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("not signed by the provider's CA: %v", err)
	}
	if !goodKey.(*ecdsa.PublicKey).Equal(cert.PublicKey) || cert.Subject.CommonName != "device-7" {
		t.Fatal("the certificate does not certify the CSR's key and subject")
	}
	var sent signer.Event
	if err := json.Unmarshal(srv.LastEvent(), &sent); err != nil || sent.PrincipalID != "claim-cert-id" || sent.ClientID != "device-7" || sent.CertificateSigningRequest != goodCSR {
		t.Fatalf("the function received %s", srv.LastEvent())
	}

	p521CSR, p521Key := csr(t, "p521") // the example accepts P-256 and P-384 only
	failures := []struct {
		name     string
		function string
		csr      string
		key      crypto.PublicKey
		endpoint string
		want     provider.Failure
	}{
		{"function error", "broken", goodCSR, goodKey, "", provider.FunctionFailed},
		{"CSR rejected by the function", "signer", p521CSR, p521Key, "", provider.CSRRejected},
		{"slow function", "slow", goodCSR, goodKey, "", provider.TimedOut},
		{"invalid PEM", "garbage", goodCSR, goodKey, "", provider.MalformedAnswer},
		{"no certificate", "empty", goodCSR, goodKey, "", provider.MalformedAnswer},
		{"not JSON", "not-json", goodCSR, goodKey, "", provider.MalformedAnswer},
		{"certificate for another key", "other-key", goodCSR, goodKey, "", provider.WrongKey},
		{"unknown function", "nobody", goodCSR, goodKey, "", provider.InvokeRefused},
		{"unreachable endpoint", "signer", goodCSR, goodKey, "http://127.0.0.1:1", provider.Unreachable},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			i := inv
			if tc.endpoint != "" {
				i = invoker(t, tc.endpoint, 500*time.Millisecond)
			}
			der, err := i.Sign(ctx, provider.Request{FunctionARN: functionARN + tc.function, CSRPEM: tc.csr, PrincipalID: "p", ClientID: "c"}, tc.key)
			if der != nil || provider.FailureOf(err) != tc.want {
				t.Fatalf("err = %v, want failure %s", err, tc.want)
			}
		})
	}
	t.Run("not a Lambda ARN", func(t *testing.T) {
		_, err := inv.Sign(ctx, provider.Request{FunctionARN: "arn:aws:iot:us-east-1:123456789012:cert/x"}, goodKey)
		if provider.FailureOf(err) != provider.InvokeRefused {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := inv.Sign(cctx, provider.Request{FunctionARN: functionARN + "signer", CSRPEM: goodCSR}, goodKey)
		if !errors.Is(err, context.Canceled) || provider.FailureOf(err) != "" {
			t.Fatalf("err = %v, want the caller's cancellation, not a provider failure", err)
		}
	})
}

// TestSDKLogsThroughSlog: the SDK's own lines come out through fleetca's
// logger, warnings at warn.
func TestSDKLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inv, err := lambda.New(t.Context(), lambda.Options{Logger: log, Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")})
	if err != nil {
		t.Fatal(err)
	}
	inv.SDKLogger().Logf(logging.Warn, "checksum of %s skipped", "response")
	if !strings.Contains(buf.String(), `"level":"WARN","msg":"checksum of response skipped","component":"aws-sdk"`) {
		t.Fatalf("SDK line not logged through slog: %s", buf.String())
	}
}
