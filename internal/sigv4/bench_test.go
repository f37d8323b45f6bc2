package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// BenchmarkVerify measures authenticating one request signed by the SDK's
// signer, as every API call is: a GET with no body, and a POST carrying a
// CreateCertificateFromCsr-sized body.
func BenchmarkVerify(b *testing.B) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	v := NewVerifier(benchKey{}, func() time.Time { return now }, "iot")
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
	}{
		{"GET certificate", http.MethodGet, "/certificates/" + strings.Repeat("ab", 32), nil},
		{"POST 1.3 KiB CSR body", http.MethodPost, "/certificates?setAsActive=true", bytes.Repeat([]byte("x"), 1300)},
	} {
		r := httptest.NewRequest(tc.method, "http://127.0.0.1:7400"+tc.target, bytes.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256(tc.body)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDBENCH", SecretAccessKey: "bench-secret"},
			r, hex.EncodeToString(sum[:]), "iot", "us-east-1", now)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r, tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchKey struct{}

func (benchKey) LookupAccessKey(_ context.Context, id string) (string, string, bool, error) {
	return "bench-secret", "123456789012", id == "AKIDBENCH", nil
}
