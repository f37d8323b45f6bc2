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
)

// FuzzAPIRequests sends correctly signed requests with arbitrary methods,
// paths, queries and bodies to the real server: every answer must be a 200
// or an AWS-shaped 4xx, never a 5xx and never a dropped connection.
func FuzzAPIRequests(f *testing.F) {
	id := strings.Repeat("ab", 32)
	for _, seed := range []struct {
		method, path, body string
	}{
		{"POST", "/certificates?setAsActive=true", `{"certificateSigningRequest":"x"}`},
		{"POST", "/keys-and-certificate?setAsActive=maybe", ``},
		{"GET", "/certificates?pageSize=0&marker=%2B%2F%3D", ``},
		{"PUT", "/certificates/" + id + "?newStatus=REVOKED", ``},
		{"DELETE", "/certificates/0x" + id + "?forceDelete=true", ``},
		{"POST", "/cacertificate?allowAutoRegistration=true", `{"caCertificate":"","tags":[{"Key":null}]}`},
		{"PUT", "/cacertificate/" + id + "?newStatus=ACTIVE", `{"registrationConfig":{"templateName":"a b"},"removeAutoRegistration":true}`},
		{"POST", "/certificate/register", `{"certificatePem":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----","status":"X"}`},
		{"POST", "/certificate-providers/p", `{"lambdaFunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f","accountDefaultForOperations":["CreateCertificateFromCsr"],"clientToken":"` + strings.Repeat("t", 40) + `"}`},
		{"GET", "/certificate-providers/?nextToken=AAAA", ``},
		{"POST", "/tags", `{"resourceArn":"arn:aws:iot:us-east-1:123456789012:cacert/` + id + `","tags":[{"Key":"k","Value":"v"}]}`},
		{"POST", "/untag", `{"resourceArn":"arn","tagKeys":[""]}`},
		{"GET", "/tags?resourceArn=arn%3Aaws%3Aiot%3A%3A%3A", ``},
		{"GET", "/registrationcode", ``},
		{"PATCH", "/%zz/../x", `[`},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	ts := startServer(f, "")
	signer := v4.NewSigner()
	client := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if len(method) == 0 || len(method) > 10 || strings.ContainsAny(method, " \t\r\n/()<>@,;:\\\"[]?={}") {
			return // not an HTTP token; the client refuses to send it
		}
		req, err := http.NewRequest(method, ts.URL()+"/", bytes.NewReader(body))
		if err != nil {
			return
		}
		u, err := req.URL.Parse(path)
		if err != nil || u.Host != req.URL.Host || !strings.HasPrefix(path, "/") {
			return
		}
		req.URL = u
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
		if err := signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "iot", testRegion, time.Now()); err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: the server dropped the connection: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, data)
		}
		if resp.StatusCode != 200 {
			var e map[string]any
			if resp.Header.Get("x-amzn-ErrorType") == "" || json.Unmarshal(data, &e) != nil || e["message"] == "" {
				t.Fatalf("%s %s: %d without an AWS error: %q", method, path, resp.StatusCode, data)
			}
		}
	})
}
