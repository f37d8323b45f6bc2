package sigv4

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
)

type oneKey struct{}

func (oneKey) LookupAccessKey(_ context.Context, id string) (string, string, bool, error) {
	if id == "AKIDFUZZ" {
		return "fuzz-secret", "123456789012", true, nil
	}
	return "", "", false, nil
}

// FuzzVerify feeds arbitrary Authorization headers, dates, paths and bodies to
// the verifier: it must answer with an AWS authentication error, never panic,
// and never accept (no signature can be right by chance).
func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20261124/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261124T120000Z", "/certificates", []byte{})
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20261124/us-east-1/iot/aws4_request, SignedHeaders=content-length;host;x-amz-date;x-amz-content-sha256, Signature=ab", "20261124T120000Z", "/tags?resourceArn=x", []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e", "garbage", "/", []byte("x"))
	f.Add("", "", "/", []byte{})
	f.Add("AWS4-HMAC-SHA256 ,,,=,=", "20261124T120000Z", "/%zz", []byte{})
	v := NewVerifier(oneKey{}, func() time.Time { return now }, "iot")
	f.Fuzz(func(t *testing.T, auth, date, path string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:7400/", bytes.NewReader(body))
		if u, err := r.URL.Parse(path); err == nil {
			r.URL = u
		}
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		r.Header.Set("X-Amz-Content-Sha256", "x")
		id, err := v.Verify(r, body)
		if err == nil {
			t.Fatalf("a forged request was accepted as %+v", id)
		}
		if _, ok := apierr.As(err); !ok {
			t.Fatalf("a non-API error escaped: %v", err)
		}
	})
}
