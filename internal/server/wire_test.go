package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/testpki"
)

// rawRequest is an HTTP request built and signed by hand, for what the SDK
// will not send.
type rawRequest struct {
	method, path string
	body         []byte
	keyID        string
	secret       string
	signedAt     time.Time
	service      string
	unsigned     bool
	// tamper changes the request after it is signed.
	tamper func(*http.Request)
}

type rawResponse struct {
	status    int
	errorType string
	requestID string
	body      map[string]any
}

func (ts *testServer) send(t *testing.T, rr rawRequest) rawResponse {
	t.Helper()
	if rr.keyID == "" {
		rr.keyID, rr.secret = testKeyID, testSecret
	}
	if rr.signedAt.IsZero() {
		rr.signedAt = time.Now()
	}
	if rr.service == "" {
		rr.service = "iot"
	}
	req, err := http.NewRequest(rr.method, ts.URL()+rr.path, bytes.NewReader(rr.body))
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if !rr.unsigned {
		sum := sha256.Sum256(rr.body)
		creds := aws.Credentials{AccessKeyID: rr.keyID, SecretAccessKey: rr.secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), rr.service, testRegion, rr.signedAt); err != nil {
			t.Fatal(err)
		}
	}
	if rr.tamper != nil {
		rr.tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := rawResponse{status: resp.StatusCode, errorType: resp.Header.Get("x-amzn-ErrorType"), requestID: resp.Header.Get("x-amzn-RequestId")}
	if err := json.Unmarshal(data, &out.body); err != nil {
		t.Fatalf("%s %s answered non-JSON %q", rr.method, rr.path, data)
	}
	return out
}

func (r rawResponse) check(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.errorType != code+":" {
		t.Fatalf("got %d %q %v, want %d %s", r.status, r.errorType, r.body, status, code)
	}
	if msg, _ := r.body["message"].(string); msg == "" {
		t.Fatalf("error without a message: %v", r.body)
	}
	if r.requestID == "" {
		t.Fatal("no x-amzn-RequestId")
	}
}

// TestSigV4Refusals sends requests that must not get in, and checks that each
// is refused with AWS's code and changes nothing.
func TestSigV4Refusals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	csr, _ := testpki.NewCSR(t, "p256", pkixName("sigv4"))
	body, _ := json.Marshal(map[string]string{"certificateSigningRequest": csr})
	other, _ := testpki.NewCSR(t, "p256", pkixName("other"))
	otherBody, _ := json.Marshal(map[string]string{"certificateSigningRequest": other})
	cases := []struct {
		name string
		req  rawRequest
		code string
	}{
		{"no authentication", rawRequest{unsigned: true}, "MissingAuthenticationTokenException"},
		{"unknown access key", rawRequest{keyID: "AKIAUNKNOWNKEY000000", secret: testSecret}, "UnrecognizedClientException"},
		{"wrong secret", rawRequest{keyID: testKeyID, secret: "not-the-secret"}, "InvalidSignatureException"},
		{"tampered body", rawRequest{tamper: func(r *http.Request) {
			// Replace GetBody too: the transport retries with it, and would
			// otherwise send the original, correctly signed body.
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(otherBody)), nil }
			r.Body, _ = r.GetBody()
			r.ContentLength = int64(len(otherBody))
		}}, "InvalidSignatureException"},
		{"tampered body of the signed length", rawRequest{tamper: func(r *http.Request) {
			same := bytes.Clone(body)
			same[len(same)/2] ^= 0x01 // a byte in the middle of the CSR
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(same)), nil }
			r.Body, _ = r.GetBody()
		}}, "InvalidSignatureException"},
		{"tampered query", rawRequest{tamper: func(r *http.Request) { r.URL.RawQuery = "setAsActive=true" }}, "InvalidSignatureException"},
		{"tampered path", rawRequest{tamper: func(r *http.Request) { r.URL.Path = "/certificates/" }}, "InvalidSignatureException"},
		{"tampered signed header", rawRequest{tamper: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }}, "InvalidSignatureException"},
		{"stale date", rawRequest{signedAt: time.Now().Add(-20 * time.Minute)}, "InvalidSignatureException"},
		{"future date", rawRequest{signedAt: time.Now().Add(20 * time.Minute)}, "InvalidSignatureException"},
		{"other service", rawRequest{service: "s3"}, "InvalidSignatureException"},
		{"malformed header", rawRequest{tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage") }}, "IncompleteSignatureException"},
		{"other algorithm", rawRequest{tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
		}}, "IncompleteSignatureException"},
		{"altered method", rawRequest{tamper: func(r *http.Request) { r.Method = http.MethodPut }}, "InvalidSignatureException"},
		{"duplicated date", rawRequest{tamper: func(r *http.Request) { r.Header.Add("X-Amz-Date", "20300101T000000Z") }}, "InvalidSignatureException"},
		{"duplicated signed header", rawRequest{tamper: func(r *http.Request) { r.Header.Add("Content-Type", "application/json") }}, "InvalidSignatureException"},
		{"two Authorization headers", rawRequest{tamper: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }}, "InvalidSignatureException"},
		{"signed header removed", rawRequest{tamper: func(r *http.Request) { r.Header.Del("Content-Type") }}, "InvalidSignatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rr := tc.req
			rr.method, rr.path, rr.body = "POST", "/certificates", body
			ts.send(t, rr).check(t, 403, tc.code)
		})
	}
	if n := certificateCount(t, c); n != 0 {
		t.Fatalf("%d certificates made by refused requests", n)
	}
	// The same request, signed properly, gets in; execute-api is accepted too.
	for _, service := range []string{"iot", "execute-api"} {
		if r := ts.send(t, rawRequest{method: "POST", path: "/certificates", body: body, service: service}); r.status != 200 {
			t.Fatalf("a good request signed for %s was refused: %d %v", service, r.status, r.body)
		}
	}
}

// TestPresignedURLs authenticates with query-string signatures, which AWS
// accepts too, and refuses them once expired or altered.
func TestPresignedURLs(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	presign := func(secret string, signedAt time.Time, expires string) *http.Request {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, ts.URL()+"/certificates?pageSize=5&X-Amz-Expires="+expires, nil)
		if err != nil {
			t.Fatal(err)
		}
		empty := sha256.Sum256(nil)
		uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret},
			req, hex.EncodeToString(empty[:]), "iot", testRegion, signedAt)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := http.NewRequest(http.MethodGet, uri, nil)
		return out
	}
	do := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
	}
	if status, code := do(presign(testSecret, time.Now(), "300")); status != 200 {
		t.Fatalf("a valid presigned URL: %d %s", status, code)
	}
	tampered := presign(testSecret, time.Now(), "300")
	tampered.URL.RawQuery = strings.Replace(tampered.URL.RawQuery, "pageSize=5", "pageSize=250", 1)
	for _, tc := range []struct {
		name string
		req  *http.Request
		code string
	}{
		{"expired", presign(testSecret, time.Now().Add(-2*time.Hour), "3600"), "InvalidSignatureException:"},
		{"longer than seven days", presign(testSecret, time.Now(), "604801"), "IncompleteSignatureException:"},
		{"wrong secret", presign("not-the-secret", time.Now(), "300"), "InvalidSignatureException:"},
		{"altered query", tampered, "InvalidSignatureException:"},
	} {
		if status, code := do(tc.req); status != 403 || code != tc.code {
			t.Errorf("%s: %d %s, want 403 %s", tc.name, status, code, tc.code)
		}
	}
}

// TestWireErrors sends a few bad requests through the whole server, over a
// real connection (a 10 MB body included); every validation message and
// status is iotapi's unit tests' (handler_test.go).
func TestWireErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	cases := []struct {
		name   string
		req    rawRequest
		status int
		code   string
	}{
		{"missing CSR", rawRequest{method: "POST", path: "/certificates", body: []byte(`{}`)}, 400, "InvalidRequestException"},
		{"10 MB body", rawRequest{method: "POST", path: "/certificates", body: bytes.Repeat([]byte("a"), 10<<20)}, 413, "RequestEntityTooLargeException"},
		{"unknown route", rawRequest{method: "GET", path: "/no-such-thing"}, 404, "UnknownOperationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts.send(t, tc.req).check(t, tc.status, tc.code)
		})
	}
	if n := certificateCount(t, ts.iotClient()); n != 0 {
		t.Fatalf("%d certificates made by bad requests", n)
	}
	// Timestamps are JSON numbers, and absent members are left out.
	out, err := ts.iotClient().CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	r := ts.send(t, rawRequest{method: "GET", path: "/certificates/" + *out.CertificateId})
	desc, _ := r.body["certificateDescription"].(map[string]any)
	if _, ok := desc["creationDate"].(float64); !ok {
		t.Fatalf("creationDate is not a JSON number: %v", desc["creationDate"])
	}
	if _, ok := desc["caCertificateId"]; ok {
		t.Fatal("absent caCertificateId is sent")
	}
}

func TestHealthAndCAUnauthenticated(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	resp, err := http.Get(ts.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	root := ts.rootCA(t)
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		t.Fatal("/ca.pem is not a self-signed CA")
	}
	// Only these paths are public, and only to GET and HEAD. A path that is
	// not clean is neither redirected nor public: the API refuses it
	// unauthenticated, as any route it does not know.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"HEAD", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"POST", "/healthz", 403},
		{"GET", "//certificates", 403},
		{"GET", "/./ca.pem", 403},
		{"GET", "/certificates/../ca.pem", 403},
	} {
		req, err := http.NewRequest(tc.method, ts.URL()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if tc.status == 403 && resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException:" {
			t.Errorf("%s %s: error type %q", tc.method, tc.path, resp.Header.Get("x-amzn-ErrorType"))
		}
	}
}
