package iotapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/sigv4"
)

const (
	testAccount  = "123456789012"
	otherAccount = "210987654321"
	testRegion   = "eu-west-3"
	testKeyID    = "AKIAFLEETCATEST00001"
	testSecret   = "test-secret"
	// secondKeyID is another key of testAccount; otherKeyID is otherAccount's.
	secondKeyID = "AKIAFLEETCATEST00002"
	otherKeyID  = "AKIAFLEETCAOTHER0001"
)

// testNow is both the verifier's clock and the time of every signature, so
// that no test depends on the wall clock.
var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// testID is a certificate ID in canonical form.
var testID = strings.Repeat("0123456789abcdef", 4)

var testScope = iot.Scope{AccountID: testAccount, Region: testRegion}

// staticCredentials is a fixed set of access keys.
type staticCredentials map[string]struct{ secret, account string }

func (c staticCredentials) LookupAccessKey(_ context.Context, keyID string) (secret, account string, found bool, err error) {
	k, ok := c[keyID]
	return k.secret, k.account, ok, nil
}

var testCredentials = staticCredentials{
	testKeyID:   {testSecret, testAccount},
	secondKeyID: {"second-secret", testAccount},
	otherKeyID:  {"other-secret", otherAccount},
}

// logBuffer collects the handler's log; requests served on other goroutines
// write to it while the test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type observation struct {
	operation string
	status    int
}

// recordingObserver records what the handler reports for metrics.
type recordingObserver struct {
	mu   sync.Mutex
	seen []observation
}

func (o *recordingObserver) ObserveRequest(operation string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, observation{operation, status})
}

func (o *recordingObserver) observations() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.seen...)
}

// testHandler is a Handler over reg with its log and observations.
type testHandler struct {
	*Handler
	log *logBuffer
	obs *recordingObserver
}

// newTestHandler returns a Handler configured by opts, whose registry,
// verifier, logger and observer it sets.
func newTestHandler(reg Registry, opts Options) *testHandler {
	th := &testHandler{log: new(logBuffer), obs: new(recordingObserver)}
	opts.Registry = reg
	opts.Verifier = sigv4.NewVerifier(testCredentials, func() time.Time { return testNow }, "iot")
	opts.Logger = slog.New(slog.NewTextHandler(th.log, nil))
	opts.Observer = th.obs
	th.Handler = New(opts)
	return th
}

func (th *testHandler) do(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	th.ServeHTTP(rec, r)
	return rec
}

// signing is how a request is signed.
type signing struct {
	keyID, secret, region, service string
	at                             time.Time
}

var testSigning = signing{testKeyID, testSecret, testRegion, "iot", testNow}

// sign signs r, whose body is body, with the AWS SDK's own signer.
func (s signing) sign(t *testing.T, r *http.Request, body []byte) *http.Request {
	t.Helper()
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	return r
}

// unsignedRequest returns a server-side request for target.
func unsignedRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// newRequest returns a request for target signed with the test key.
func newRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	return testSigning.sign(t, unsignedRequest(method, target, body), []byte(body))
}

// checkError checks that rec is an error the way the SDKs read it: the
// status, the code in x-amzn-ErrorType with AWS's trailing colon, and a JSON
// body of exactly the members in want.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, kind apierr.Kind, want map[string]string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d", rec.Code, status)
	}
	if got := rec.Header().Get("x-amzn-ErrorType"); got != string(kind)+":" {
		t.Errorf("x-amzn-ErrorType %q, want %q", got, string(kind)+":")
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
		t.Errorf("Content-Length %q, body has %s bytes", got, want)
	}
	if rec.Header().Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId")
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("body %v, want %v", got, want)
	}
}

func checkMessage(t *testing.T, rec *httptest.ResponseRecorder, status int, kind apierr.Kind, message string) {
	t.Helper()
	checkError(t, rec, status, kind, map[string]string{"message": message})
}

// checkOK checks a 200 answer whose body is exactly want.
func checkOK(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d %s %s, want 200", rec.Code, rec.Header().Get("x-amzn-ErrorType"), rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	if rec.Header().Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId")
	}
	if got := rec.Body.String(); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
}

func checkNoCalls(t *testing.T, reg *fakeRegistry) {
	t.Helper()
	if calls := reg.Calls(); len(calls) != 0 {
		t.Errorf("the registry was called: %+v", calls)
	}
}

func checkCalls(t *testing.T, reg *fakeRegistry, want ...fakeCall) {
	t.Helper()
	if got := reg.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("registry calls\n%+v\nwant\n%+v", got, want)
	}
}

// TestValidation documents the model-validation messages: each request is
// refused with 400 InvalidRequestException before the registry is asked.
func TestValidation(t *testing.T) {
	t.Parallel()
	maxBody := `{"certificateSigningRequest":"` + strings.Repeat("A", MaxBodyBytes-32) + `"}`
	if len(maxBody) != MaxBodyBytes {
		t.Fatalf("maxBody has %d bytes", len(maxBody))
	}
	cases := []struct {
		name, method, target, body string
		message                    string
	}{
		{"certificate ID not hex", "GET", "/certificates/not-a-certificate-id", "",
			"1 validation error detected: Value 'not-a-certificate-id' at 'certificateId' failed to satisfy constraint: Member must be 64 hexadecimal characters, optionally prefixed with 0x"},
		{"certificate ID of 63 digits", "DELETE", "/certificates/" + testID[:63], "",
			"1 validation error detected: Value '" + testID[:63] + "' at 'certificateId' failed to satisfy constraint: Member must be 64 hexadecimal characters, optionally prefixed with 0x"},
		{"certificate ID of 66 digits", "DELETE", "/certificates/" + testID + "00", "",
			"1 validation error detected: Value '" + testID + "...' at 'certificateId' failed to satisfy constraint: Member must be 64 hexadecimal characters, optionally prefixed with 0x"},
		{"long value cut at 64 bytes", "PUT", "/certificates/" + strings.Repeat("g", 100) + "?newStatus=ACTIVE", "",
			"1 validation error detected: Value '" + strings.Repeat("g", 64) + "...' at 'certificateId' failed to satisfy constraint: Member must be 64 hexadecimal characters, optionally prefixed with 0x"},
		{"CA certificate ID", "GET", "/certificates-by-ca/xyz", "",
			"1 validation error detected: Value 'xyz' at 'caCertificateId' failed to satisfy constraint: Member must be 64 hexadecimal characters, optionally prefixed with 0x"},
		{"pageSize 0", "GET", "/certificates?pageSize=0", "",
			"1 validation error detected: Value '0' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"pageSize 251", "GET", "/certificates?pageSize=251", "",
			"1 validation error detected: Value '251' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"pageSize x", "GET", "/certificates?pageSize=x", "",
			"1 validation error detected: Value 'x' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"pageSize empty", "GET", "/certificates?pageSize=", "",
			"1 validation error detected: Value '' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"pageSize by CA", "GET", "/certificates-by-ca/" + testID + "?pageSize=-1", "",
			"1 validation error detected: Value '-1' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"marker empty", "GET", "/certificates?marker=", "",
			"1 validation error detected: Value '' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}"},
		{"marker not base64", "GET", "/certificates?marker=not%20base64", "",
			"1 validation error detected: Value 'not base64' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}"},
		{"marker with three pads", "GET", "/certificates?marker=abc%3D%3D%3D", "",
			"1 validation error detected: Value 'abc===' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}"},
		{"marker only pads", "GET", "/certificates?marker=%3D%3D", "",
			"1 validation error detected: Value '==' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}"},
		{"isAscendingOrder maybe", "GET", "/certificates?isAscendingOrder=maybe", "",
			"1 validation error detected: Value 'maybe' at 'isAscendingOrder' failed to satisfy constraint: Member must be true or false"},
		{"booleans are lower case", "GET", "/certificates?isAscendingOrder=True", "",
			"1 validation error detected: Value 'True' at 'isAscendingOrder' failed to satisfy constraint: Member must be true or false"},
		{"setAsActive yes", "POST", "/keys-and-certificate?setAsActive=yes", "",
			"1 validation error detected: Value 'yes' at 'setAsActive' failed to satisfy constraint: Member must be true or false"},
		{"setAsActive empty", "POST", "/certificates?setAsActive=", `{"certificateSigningRequest":"csr"}`,
			"1 validation error detected: Value '' at 'setAsActive' failed to satisfy constraint: Member must be true or false"},
		{"forceDelete 1", "DELETE", "/certificates/" + testID + "?forceDelete=1", "",
			"1 validation error detected: Value '1' at 'forceDelete' failed to satisfy constraint: Member must be true or false"},
		{"newStatus missing", "PUT", "/certificates/" + testID, "",
			"1 validation error detected: Value 'null' at 'newStatus' failed to satisfy constraint: Member must not be null"},
		{"newStatus lower case", "PUT", "/certificates/" + testID + "?newStatus=active", "",
			"1 validation error detected: Value 'active' at 'newStatus' failed to satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, PENDING_ACTIVATION]"},
		{"body not JSON", "POST", "/certificates", `{`,
			"The request body is not a valid JSON object."},
		{"body a JSON array", "POST", "/certificates", `[]`,
			"The request body is not a valid JSON object."},
		{"body with trailing data", "POST", "/certificates", `{"certificateSigningRequest":"csr"} {}`,
			"The request body is not a valid JSON object."},
		{"member of the wrong type", "POST", "/certificates", `{"certificateSigningRequest":42}`,
			"The member certificateSigningRequest must be a JSON string."},
		{"nested member of the wrong type", "POST", "/cacertificate", `{"caCertificate":"pem","registrationConfig":{"roleArn":true}}`,
			"The member registrationConfig.roleArn must be a JSON string."},
		{"CSR missing", "POST", "/certificates", `{}`,
			"1 validation error detected: Value 'null' at 'certificateSigningRequest' failed to satisfy constraint: Member must not be null"},
		{"CSR null", "POST", "/certificates", `{"certificateSigningRequest":null}`,
			"1 validation error detected: Value 'null' at 'certificateSigningRequest' failed to satisfy constraint: Member must not be null"},
		{"no body", "POST", "/certificates", "",
			"1 validation error detected: Value 'null' at 'certificateSigningRequest' failed to satisfy constraint: Member must not be null"},
		{"CSR empty", "POST", "/certificates", `{"certificateSigningRequest":""}`,
			"1 validation error detected: Value '' at 'certificateSigningRequest' failed to satisfy constraint: Member must have length between 1 and 4096"},
		// A body of exactly MaxBodyBytes is read and validated.
		{"CSR in a body of MaxBodyBytes", "POST", "/certificates", maxBody,
			"1 validation error detected: Value '" + strings.Repeat("A", 64) + "...' at 'certificateSigningRequest' failed to satisfy constraint: Member must have length between 1 and 4096"},
		{"certificateMode", "POST", "/cacertificate", `{"caCertificate":"pem","certificateMode":"BOTH"}`,
			"1 validation error detected: Value 'BOTH' at 'certificateMode' failed to satisfy constraint: Member must satisfy enum value set: [DEFAULT, SNI_ONLY]"},
		{"provider name pattern", "POST", "/certificate-providers/bad%20name", `{"lambdaFunctionArn":"arn:aws:lambda:eu-west-3:123456789012:function:signer","accountDefaultForOperations":["CreateCertificateFromCsr"]}`,
			"1 validation error detected: Value 'bad name' at 'certificateProviderName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w=,@-]+"},
		{"provider name length", "DELETE", "/certificate-providers/" + strings.Repeat("p", 129), "",
			"1 validation error detected: Value '" + strings.Repeat("p", 64) + "...' at 'certificateProviderName' failed to satisfy constraint: Member must have length between 1 and 128"},
		{"client token too short", "POST", "/certificate-providers/signer", `{"lambdaFunctionArn":"arn:aws:lambda:eu-west-3:123456789012:function:signer","accountDefaultForOperations":["CreateCertificateFromCsr"],"clientToken":"short"}`,
			"1 validation error detected: Value 'short' at 'clientToken' failed to satisfy constraint: Member must have length between 36 and 64"},
		{"client token with a space", "POST", "/certificate-providers/signer", `{"lambdaFunctionArn":"arn:aws:lambda:eu-west-3:123456789012:function:signer","accountDefaultForOperations":["CreateCertificateFromCsr"],"clientToken":"` + strings.Repeat("t", 20) + " " + strings.Repeat("t", 20) + `"}`,
			"1 validation error detected: Value '" + strings.Repeat("t", 20) + " " + strings.Repeat("t", 20) + "' at 'clientToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\x21-\\x7E]+$"},
		{"default operations enum", "PUT", "/certificate-providers/signer", `{"accountDefaultForOperations":["CreateKeysAndCertificate"]}`,
			"1 validation error detected: Value 'CreateKeysAndCertificate' at 'accountDefaultForOperations.member' failed to satisfy constraint: Member must satisfy enum value set: [CreateCertificateFromCsr]"},
		{"default operations length", "POST", "/certificate-providers/signer", `{"lambdaFunctionArn":"arn","accountDefaultForOperations":[]}`,
			"1 validation error detected: Value '[]' at 'accountDefaultForOperations' failed to satisfy constraint: Member must have length between 1 and 1"},
		{"tag key character", "POST", "/tags", `{"resourceArn":"arn","tags":[{"Key":"semi;colon","Value":"v"}]}`,
			"1 validation error detected: Value 'semi;colon' at 'tags.member.Key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"},
		{"tag key length", "POST", "/tags", `{"resourceArn":"arn","tags":[{"Key":"` + strings.Repeat("k", 129) + `"}]}`,
			"1 validation error detected: Value '" + strings.Repeat("k", 64) + "...' at 'tags.member.Key' failed to satisfy constraint: Member must have length between 1 and 128"},
		{"tag value length", "POST", "/tags", `{"resourceArn":"arn","tags":[{"Key":"k","Value":"` + strings.Repeat("v", 257) + `"}]}`,
			"1 validation error detected: Value '" + strings.Repeat("v", 64) + "...' at 'tags.member.Value' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"untag key character", "POST", "/untag", `{"resourceArn":"arn","tagKeys":["a|b"]}`,
			"1 validation error detected: Value 'a|b' at 'tagKeys.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"},
		{"tag without a key", "POST", "/tags", `{"resourceArn":"arn","tags":[{"Value":"v"}]}`,
			"1 validation error detected: Value 'null' at 'tags.member.Key' failed to satisfy constraint: Member must not be null"},
		{"nextToken of ListTagsForResource", "GET", "/tags?resourceArn=arn&nextToken=abc", "",
			"1 validation error detected: Value 'abc' at 'nextToken' failed to satisfy constraint: The token was not issued by this service"},
		{"thing name pattern", "POST", "/things/bad%20name", "",
			"1 validation error detected: Value 'bad name' at 'thingName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"},
		{"thing name length", "GET", "/things/" + strings.Repeat("t", 129), "",
			"1 validation error detected: Value '" + strings.Repeat("t", 64) + "...' at 'thingName' failed to satisfy constraint: Member must have length between 1 and 128"},
		{"thing type name pattern", "POST", "/things/t", `{"thingTypeName":"a/b"}`,
			"1 validation error detected: Value 'a/b' at 'thingTypeName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"},
		{"attribute value character", "POST", "/things/t", `{"attributePayload":{"attributes":{"k":"a b"}}}`,
			"1 validation error detected: Value 'a b' at 'attributePayload.attributes' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#=\\[\\]-]* and have length less than or equal to 800"},
		{"attribute name character", "PATCH", "/things/t", `{"attributePayload":{"attributes":{"a=b":"v"}}}`,
			"1 validation error detected: Value 'a=b' at 'attributePayload.attributes' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.,@/:#-]+ and have length between 1 and 128"},
		{"maxResults of ListThings", "GET", "/things?maxResults=0", "",
			"1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 250"},
		{"nextToken of ListThings", "GET", "/things?nextToken=%21", "",
			"1 validation error detected: Value '!' at 'nextToken' failed to satisfy constraint: The token was not issued by this service"},
		{"usePrefixAttributeValue", "GET", "/things?usePrefixAttributeValue=yes", "",
			"1 validation error detected: Value 'yes' at 'usePrefixAttributeValue' failed to satisfy constraint: Member must be true or false"},
		{"thingPrincipalType", "GET", "/things/t/principals-v2?thingPrincipalType=SHARED", "",
			"1 validation error detected: Value 'SHARED' at 'thingPrincipalType' failed to satisfy constraint: Member must satisfy enum value set: [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]"},
		{"principal header", "PUT", "/things/t/principals", "",
			"1 validation error detected: Value 'null' at 'principal' failed to satisfy constraint: Member must not be null"},
		{"expectedVersion of DeleteThing", "DELETE", "/things/t?expectedVersion=one", "",
			"1 validation error detected: Value 'one' at 'expectedVersion' failed to satisfy constraint: Member must be a number"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{}
			th := newTestHandler(reg, Options{})
			rec := th.do(newRequest(t, tc.method, tc.target, tc.body))
			checkMessage(t, rec, http.StatusBadRequest, apierr.InvalidRequest, tc.message)
			checkNoCalls(t, reg)
		})
	}
}

// TestErrorKinds checks the status and x-amzn-ErrorType of every error kind
// the registry can return, and that the message is sent as it is.
func TestErrorKinds(t *testing.T) {
	t.Parallel()
	for _, kind := range apierr.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{describeCertificate: func(context.Context, iot.Scope, string) (*iot.Certificate, error) {
				return nil, apierr.New(kind, "Something about %s.", testID)
			}}
			th := newTestHandler(reg, Options{})
			rec := th.do(newRequest(t, "GET", "/certificates/"+testID, ""))
			checkMessage(t, rec, statusOf[kind], kind, "Something about "+testID+".")
			if got, want := th.obs.observations(), []observation{{"DescribeCertificate", statusOf[kind]}}; !reflect.DeepEqual(got, want) {
				t.Errorf("observed %v, want %v", got, want)
			}
			if !strings.Contains(th.log.String(), " error="+string(kind)+"\n") {
				t.Errorf("the request line does not name %s:\n%s", kind, th.log)
			}
		})
	}

	cases := []struct {
		name   string
		err    error
		status int
		kind   apierr.Kind
		body   map[string]string
	}{
		{"already exists names the resource",
			apierr.AlreadyExists(testID, testScope.CertificateARN(testID), "The certificate is already registered."),
			http.StatusConflict, apierr.ResourceAlreadyExists,
			map[string]string{"message": "The certificate is already registered.", "resourceId": testID, "resourceArn": "arn:aws:iot:eu-west-3:123456789012:cert/" + testID}},
		{"wrapped by the registry",
			fmt.Errorf("describing: %w", apierr.New(apierr.ResourceNotFound, "No such certificate.")),
			http.StatusNotFound, apierr.ResourceNotFound,
			map[string]string{"message": "No such certificate."}},
		{"cause is not sent",
			apierr.Wrap(apierr.CertificateValidation, errors.New("x509: malformed tbs certificate"), "The certificate is not valid."),
			http.StatusBadRequest, apierr.CertificateValidation,
			map[string]string{"message": "The certificate is not valid."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{describeCertificate: func(context.Context, iot.Scope, string) (*iot.Certificate, error) {
				return nil, tc.err
			}}
			th := newTestHandler(reg, Options{})
			checkError(t, th.do(newRequest(t, "GET", "/certificates/"+testID, "")), tc.status, tc.kind, tc.body)
			if e, _ := apierr.As(tc.err); e.Cause != nil && !strings.Contains(th.log.String(), e.Cause.Error()) {
				t.Errorf("the cause is not in the log:\n%s", th.log)
			}
		})
	}
}

// TestInternalFailure checks that an error that is not an apierr error is
// answered 500 with only the request ID, and logged in full.
func TestInternalFailure(t *testing.T) {
	t.Parallel()
	const secret = "pq: password authentication failed for user fleetca at 10.0.0.7"
	reg := &fakeRegistry{describeCertificate: func(context.Context, iot.Scope, string) (*iot.Certificate, error) {
		return nil, fmt.Errorf("describing certificate: %w", errors.New(secret))
	}}
	th := newTestHandler(reg, Options{})
	var ids []string
	for range 2 {
		rec := th.do(newRequest(t, "GET", "/certificates/"+testID, ""))
		id := rec.Header().Get("x-amzn-RequestId")
		checkMessage(t, rec, http.StatusInternalServerError, apierr.InternalFailure, "An internal error occurred; request ID "+id+".")
		if strings.Contains(rec.Body.String(), "10.0.0.7") {
			t.Errorf("the body tells the internal error: %s", rec.Body)
		}
		log := th.log.String()
		for _, want := range []string{
			`level=ERROR msg="internal failure" operation=DescribeCertificate request_id=` + id + ` err="describing certificate: ` + secret + `"`,
			`level=INFO msg=request operation=DescribeCertificate status=500 `,
			` request_id=` + id + ` account=123456789012 error=InternalFailureException`,
		} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("two requests had the same ID %s", ids[0])
	}
}

// TestPanic checks that a panic in the registry is answered 500 and logged
// with its stack, and that the server, its in-flight slot returned, serves
// the next request on the same connection.
func TestPanic(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	reg := &fakeRegistry{describeCertificate: func(_ context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
		if calls.Add(1) == 1 {
			panic("fake registry exploded")
		}
		return &iot.Certificate{Scope: scope, ID: id, Status: iot.StatusActive, Mode: iot.ModeDefault}, nil
	}}
	th := newTestHandler(reg, Options{MaxInFlight: 1})
	srv := httptest.NewServer(th)
	defer srv.Close()
	client := srv.Client()
	var conns atomic.Int32
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}

	get := func() (*http.Response, string) {
		req, err := http.NewRequest("GET", srv.URL+"/certificates/"+testID, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(testSigning.sign(t, req, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}

	resp, body := get()
	id := resp.Header.Get("x-amzn-RequestId")
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("x-amzn-ErrorType") != "InternalFailureException:" ||
		body != `{"message":"An internal error occurred; request ID `+id+`."}` {
		t.Errorf("got %d %s %s, want 500 InternalFailureException", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), body)
	}
	log := th.log.String()
	for _, want := range []string{
		`level=ERROR msg="panic serving request" operation=DescribeCertificate request_id=` + id + ` panic="fake registry exploded" stack="goroutine `,
		`msg=request operation=DescribeCertificate status=500 `,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	if resp, body := get(); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, `{"certificateDescription":{`) {
		t.Errorf("after the panic: %d %s", resp.StatusCode, body)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the client dialed %d connections, want 1", n)
	}
	if got, want := th.obs.observations(), []observation{{"DescribeCertificate", 500}, {"DescribeCertificate", 200}}; !reflect.DeepEqual(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
}

// TestClientGone checks that a request whose client goes away while the
// registry works is recorded as 499 and answered with nothing, and that it
// is no error in the log.
func TestClientGone(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	reg := &fakeRegistry{describeCertificate: func(ctx context.Context, _ iot.Scope, _ string) (*iot.Certificate, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	th := newTestHandler(reg, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := newRequest(t, "GET", "/certificates/"+testID, "").WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		th.ServeHTTP(rec, req)
	}()
	<-entered
	cancel()
	<-done

	if got, want := th.obs.observations(), []observation{{"DescribeCertificate", 499}}; !reflect.DeepEqual(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
	// writeJSON sets Content-Type just before it writes; without it nothing
	// was written.
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" || rec.Header().Get("x-amzn-ErrorType") != "" {
		t.Errorf("answered %q with %v", rec.Body, rec.Header())
	}
	log := th.log.String()
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("the log has an error line:\n%s", log)
	}
	if want := `msg=request operation=DescribeCertificate status=499 `; !strings.Contains(log, want) ||
		!strings.Contains(log, " account=123456789012 error=ClientClosedRequest\n") {
		t.Errorf("the request line does not say the client went away:\n%s", log)
	}
}

// unsizedReader hides the length of its reader, so that httptest.NewRequest
// gives the request ContentLength -1, as a chunked body has.
type unsizedReader struct{ r io.Reader }

func (u unsizedReader) Read(p []byte) (int, error) { return u.r.Read(p) }

// failingReader gives some of a body, then fails, as a connection that
// breaks does.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.sent {
		return 0, io.ErrUnexpectedEOF
	}
	f.sent = true
	return copy(p, `{"certificateSigningRequest":`), nil
}

// TestBodyLimits checks that a body over MaxBodyBytes is refused whether or
// not its length is announced, and that one that cannot be read is refused,
// before the registry is asked.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	tooLarge := bytes.Repeat([]byte("A"), MaxBodyBytes+1)
	cases := []struct {
		name      string
		req       func(t *testing.T) *http.Request
		status    int
		kind      apierr.Kind
		message   string
		closeConn bool
	}{
		{"Content-Length over the limit", func(t *testing.T) *http.Request {
			r := httptest.NewRequest("POST", "/certificates", bytes.NewReader(tooLarge))
			if r.ContentLength != MaxBodyBytes+1 {
				t.Fatalf("ContentLength %d", r.ContentLength)
			}
			return testSigning.sign(t, r, tooLarge)
		}, http.StatusRequestEntityTooLarge, apierr.RequestEntityTooLarge, "The request body exceeds 262144 bytes.", false},
		// The length is checked before the signature, which covers the body.
		{"Content-Length over the limit, unsigned", func(t *testing.T) *http.Request {
			return httptest.NewRequest("POST", "/certificates", bytes.NewReader(tooLarge))
		}, http.StatusRequestEntityTooLarge, apierr.RequestEntityTooLarge, "The request body exceeds 262144 bytes.", false},
		{"chunked body over the limit", func(t *testing.T) *http.Request {
			r := httptest.NewRequest("POST", "/certificates", unsizedReader{bytes.NewReader(tooLarge)})
			if r.ContentLength != -1 {
				t.Fatalf("ContentLength %d", r.ContentLength)
			}
			return testSigning.sign(t, r, tooLarge)
		}, http.StatusRequestEntityTooLarge, apierr.RequestEntityTooLarge, "The request body exceeds 262144 bytes.", true},
		{"body that cannot be read", func(t *testing.T) *http.Request {
			return httptest.NewRequest("POST", "/certificates", &failingReader{})
		}, http.StatusBadRequest, apierr.InvalidRequest, "The request body could not be read.", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{}
			th := newTestHandler(reg, Options{})
			rec := th.do(tc.req(t))
			checkMessage(t, rec, tc.status, tc.kind, tc.message)
			// The unread rest of the body is not drained: the connection
			// is closed instead.
			if got := rec.Header().Get("Connection") == "close"; got != tc.closeConn {
				t.Errorf("Connection: close is %v, want %v", got, tc.closeConn)
			}
			checkNoCalls(t, reg)
			if got, want := th.obs.observations(), []observation{{"CreateCertificateFromCsr", tc.status}}; !reflect.DeepEqual(got, want) {
				t.Errorf("observed %v, want %v", got, want)
			}
		})
	}
}

// TestMaxInFlight checks that with every in-flight slot taken, a request is
// refused at once with ThrottlingException rather than queued.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	reg := &fakeRegistry{describeCertificate: func(_ context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return &iot.Certificate{Scope: scope, ID: id}, nil
	}}
	th := newTestHandler(reg, Options{MaxInFlight: 1})
	first, firstReq := httptest.NewRecorder(), newRequest(t, "GET", "/certificates/"+testID, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		th.ServeHTTP(first, firstReq)
	}()
	<-entered
	if n := th.Serving(); n != 1 {
		t.Errorf("Serving() = %d with one request blocked, want 1", n)
	}

	rec := th.do(newRequest(t, "GET", "/certificates?pageSize=5", ""))
	checkMessage(t, rec, http.StatusBadRequest, apierr.Throttling, "Rate exceeded")

	close(release)
	<-done
	if first.Code != http.StatusOK {
		t.Errorf("the first request got %d %s", first.Code, first.Body)
	}
	checkCalls(t, reg, fakeCall{"DescribeCertificate", testScope, []any{testID}})
	if n := th.Serving(); n != 0 {
		t.Errorf("Serving() = %d when idle", n)
	}
	// Its slot is free again.
	if rec := th.do(newRequest(t, "GET", "/certificates/"+testID, "")); rec.Code != http.StatusOK {
		t.Errorf("after the first request: %d %s", rec.Code, rec.Body)
	}
}

// TestAccountRate checks that each account has its own bucket of
// AccountBurst requests, shared by its keys.
func TestAccountRate(t *testing.T) {
	t.Parallel()
	reg := &fakeRegistry{describeCertificate: func(_ context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
		return &iot.Certificate{Scope: scope, ID: id}, nil
	}}
	// A rate this low adds no token while the test runs.
	th := newTestHandler(reg, Options{AccountRate: 1e-9, AccountBurst: 2})
	as := func(keyID, secret string) int {
		s := testSigning
		s.keyID, s.secret = keyID, secret
		return th.do(s.sign(t, unsignedRequest("GET", "/certificates/"+testID, ""), nil)).Code
	}
	if got := []int{as(testKeyID, testSecret), as(testKeyID, testSecret)}; !reflect.DeepEqual(got, []int{200, 200}) {
		t.Fatalf("the burst was answered %v", got)
	}
	rec := th.do(newRequest(t, "GET", "/certificates/"+testID, ""))
	checkMessage(t, rec, http.StatusBadRequest, apierr.Throttling, "Rate exceeded")
	if code := as(secondKeyID, "second-secret"); code != http.StatusBadRequest {
		t.Errorf("another key of the throttled account got %d, want 400", code)
	}
	if code := as(otherKeyID, "other-secret"); code != http.StatusOK {
		t.Errorf("another account got %d, want 200", code)
	}
	if n := len(reg.Calls()); n != 3 {
		t.Errorf("the registry was called %d times, want 3", n)
	}
}

// TestRequestTimeout checks that a request whose work outlasts
// RequestTimeout is answered 503, which the SDKs retry, without an error
// line per request.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	reg := &fakeRegistry{describeCertificate: func(ctx context.Context, _ iot.Scope, _ string) (*iot.Certificate, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	th := newTestHandler(reg, Options{RequestTimeout: 20 * time.Millisecond})
	rec := th.do(newRequest(t, "GET", "/certificates/"+testID, ""))
	checkMessage(t, rec, http.StatusServiceUnavailable, apierr.ServiceUnavailable, "The service could not complete the request in time; retry later.")
	if got, want := th.obs.observations(), []observation{{"DescribeCertificate", 503}}; !reflect.DeepEqual(got, want) {
		t.Errorf("observed %v, want %v", got, want)
	}
	if log := th.log.String(); strings.Contains(log, "level=ERROR") || !strings.Contains(log, " error=ServiceUnavailableException\n") {
		t.Errorf("log:\n%s", log)
	}
}

// TestAuthentication checks that requests that are not signed, or not
// signed right, are refused with AWS's codes before the registry is asked,
// whatever they ask for.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	const mismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	with := func(change func(*signing)) func(t *testing.T, r *http.Request) *http.Request {
		return func(t *testing.T, r *http.Request) *http.Request {
			s := testSigning
			change(&s)
			return s.sign(t, r, nil)
		}
	}
	cases := []struct {
		name    string
		target  string
		sign    func(t *testing.T, r *http.Request) *http.Request
		kind    apierr.Kind
		message string
	}{
		{"unsigned", "/certificates",
			func(_ *testing.T, r *http.Request) *http.Request { return r },
			apierr.MissingAuthenticationToken, "Missing Authentication Token"},
		{"unsigned unknown route", "/no/such/route",
			func(_ *testing.T, r *http.Request) *http.Request { return r },
			apierr.MissingAuthenticationToken, "Missing Authentication Token"},
		{"unknown access key", "/certificates",
			with(func(s *signing) { s.keyID = "AKIAFLEETCAUNKNOWN00" }),
			apierr.UnrecognizedClient, "The security token included in the request is invalid."},
		{"wrong secret", "/certificates",
			with(func(s *signing) { s.secret = "not-the-secret" }),
			apierr.InvalidSignature, mismatch},
		{"query changed after signing", "/certificates?pageSize=10",
			func(t *testing.T, r *http.Request) *http.Request {
				testSigning.sign(t, r, nil)
				r.URL.RawQuery = "pageSize=250"
				return r
			},
			apierr.InvalidSignature, mismatch},
		{"signature expired", "/certificates",
			with(func(s *signing) { s.at = testNow.Add(-16 * time.Minute) }),
			apierr.InvalidSignature, "Signature expired: 20250304T045007Z is now earlier than 20250304T045107Z."},
		{"scoped to another service", "/certificates",
			with(func(s *signing) { s.service = "s3" }),
			apierr.InvalidSignature, "Credential should be scoped to correct service: 'iot'."},
		{"another scheme", "/certificates",
			func(_ *testing.T, r *http.Request) *http.Request {
				r.Header.Set("Authorization", "Bearer token")
				return r
			},
			apierr.IncompleteSignature, "Authorization header must use the AWS4-HMAC-SHA256 algorithm."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{}
			th := newTestHandler(reg, Options{})
			rec := th.do(tc.sign(t, unsignedRequest("GET", tc.target, "")))
			checkMessage(t, rec, http.StatusForbidden, tc.kind, tc.message)
			checkNoCalls(t, reg)
			// No account is known, so the request line names none.
			if log := th.log.String(); strings.Contains(log, "account=") {
				t.Errorf("the request line names an account:\n%s", log)
			}
		})
	}
}

// TestUnknownOperation checks that an authenticated request that matches no
// operation is answered like AWS answers an unknown route.
func TestUnknownOperation(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("x", 300)
	cases := []struct{ method, target, message string }{
		{"GET", "/no/such/route", "No operation matches GET /no/such/route."},
		{"PATCH", "/certificates", "No operation matches PATCH /certificates."},
		{"POST", "/certificates/" + testID, "No operation matches POST /certificates/" + testID + "."},
		{"GET", long, "No operation matches GET " + long[:256] + "...."},
		// Paths that are not clean are not redirected (unauthenticated)
		// to their clean form: they match nothing.
		{"GET", "//certificates", "No operation matches GET //certificates."},
		// AWS's API has no HEAD operations; ServeMux would run the GET one.
		{"HEAD", "/certificates", "No operation matches HEAD /certificates."},
		{"GET", "/./certificates", "No operation matches GET /./certificates."},
		{"POST", "/certificates/../keys-and-certificate", "No operation matches POST /certificates/../keys-and-certificate."},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target[:min(len(tc.target), 30)], func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{}
			th := newTestHandler(reg, Options{})
			checkMessage(t, th.do(newRequest(t, tc.method, tc.target, "")), http.StatusNotFound, apierr.UnknownOperation, tc.message)
			checkNoCalls(t, reg)
			if got, want := th.obs.observations(), []observation{{"Unknown", 404}}; !reflect.DeepEqual(got, want) {
				t.Errorf("observed %v, want %v", got, want)
			}
		})
	}
}

// testPEM is pki.EncodeCertificate of the three bytes 1, 2, 3, as it
// appears in a JSON string.
const testPEM = `-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n`

// TestDescribeCertificate checks the JSON of a certificate description:
// member names, optional members left out, and timestamps as numbers of
// seconds with milliseconds, truncated.
func TestDescribeCertificate(t *testing.T) {
	t.Parallel()
	caID := strings.Repeat("fedcba9876543210", 4)
	full := iot.Certificate{
		Scope: testScope, ID: testID, Status: iot.StatusActive, Mode: iot.ModeDefault, CACertificateID: caID,
		DER: []byte{1, 2, 3}, OwnedBy: testAccount, PreviousOwnedBy: otherAccount,
		CreatedAt:       time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
		LastModifiedAt:  time.Date(2024, 5, 7, 0, 0, 0, 7_000_000, time.UTC),
		CustomerVersion: 3, GenerationID: "2b3c1c7e-0d1f-4d5e-9a7b-7c8d9e0f1a2b",
		NotBefore: time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC),
		NotAfter:  time.Date(2025, 5, 6, 7, 8, 9, 999999999, time.UTC),
	}
	sniOnly := full
	sniOnly.Status, sniOnly.Mode, sniOnly.CACertificateID, sniOnly.PreviousOwnedBy = iot.StatusPendingActivation, iot.ModeSNIOnly, "", ""
	cases := []struct {
		name   string
		target string
		cert   iot.Certificate
		want   string
	}{
		{"every member", "/certificates/" + testID, full,
			`{"certificateDescription":{"certificateArn":"arn:aws:iot:eu-west-3:123456789012:cert/` + testID + `",` +
				`"certificateId":"` + testID + `","caCertificateId":"` + caID + `","status":"ACTIVE",` +
				`"certificatePem":"` + testPEM + `","ownedBy":"123456789012","previousOwnedBy":"210987654321",` +
				`"creationDate":1714979289.123,"lastModifiedDate":1715040000.007,"customerVersion":3,"transferData":{},` +
				`"generationId":"2b3c1c7e-0d1f-4d5e-9a7b-7c8d9e0f1a2b",` +
				`"validity":{"notBefore":1714979290.000,"notAfter":1746515289.999},"certificateMode":"DEFAULT"}}`},
		// The ID is accepted in upper case with a 0X prefix, and the
		// registry sees it canonical.
		{"optional members absent", "/certificates/0X" + strings.ToUpper(testID), sniOnly,
			`{"certificateDescription":{"certificateArn":"arn:aws:iot:eu-west-3:123456789012:cert/` + testID + `",` +
				`"certificateId":"` + testID + `","status":"PENDING_ACTIVATION",` +
				`"certificatePem":"` + testPEM + `","ownedBy":"123456789012",` +
				`"creationDate":1714979289.123,"lastModifiedDate":1715040000.007,"customerVersion":3,"transferData":{},` +
				`"generationId":"2b3c1c7e-0d1f-4d5e-9a7b-7c8d9e0f1a2b",` +
				`"validity":{"notBefore":1714979290.000,"notAfter":1746515289.999},"certificateMode":"SNI_ONLY"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{describeCertificate: func(context.Context, iot.Scope, string) (*iot.Certificate, error) {
				return &tc.cert, nil
			}}
			th := newTestHandler(reg, Options{})
			checkOK(t, th.do(newRequest(t, "GET", tc.target, "")), tc.want)
			checkCalls(t, reg, fakeCall{"DescribeCertificate", testScope, []any{testID}})
		})
	}
}

// TestCreateKeysAndCertificate checks that setAsActive and the scope (the
// account of the signing key, the region of the signature) reach the
// registry, and the JSON of the answer.
func TestCreateKeysAndCertificate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		target  string
		signing signing
		scope   iot.Scope
		active  bool
	}{
		{"setAsActive absent", "/keys-and-certificate", testSigning, testScope, false},
		{"setAsActive true", "/keys-and-certificate?setAsActive=true", testSigning, testScope, true},
		{"setAsActive false", "/keys-and-certificate?setAsActive=false", testSigning, testScope, false},
		{"another account and region", "/keys-and-certificate?setAsActive=true",
			signing{otherKeyID, "other-secret", "ap-southeast-2", "iot", testNow},
			iot.Scope{AccountID: otherAccount, Region: "ap-southeast-2"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{createKeysAndCertificate: func(_ context.Context, scope iot.Scope, _ bool) (*registry.CreatedCertificate, error) {
				return &registry.CreatedCertificate{
					Certificate:   &iot.Certificate{Scope: scope, ID: testID, DER: []byte{1, 2, 3}},
					PublicKeyPEM:  "-----BEGIN PUBLIC KEY-----\nPUB\n-----END PUBLIC KEY-----\n",
					PrivateKeyPEM: "-----BEGIN RSA PRIVATE KEY-----\nPRIV\n-----END RSA PRIVATE KEY-----\n",
				}, nil
			}}
			th := newTestHandler(reg, Options{})
			rec := th.do(tc.signing.sign(t, unsignedRequest("POST", tc.target, ""), nil))
			checkOK(t, rec, `{"certificateArn":"arn:aws:iot:`+tc.scope.Region+`:`+tc.scope.AccountID+`:cert/`+testID+`",`+
				`"certificateId":"`+testID+`","certificatePem":"`+testPEM+`",`+
				`"keyPair":{"PublicKey":"-----BEGIN PUBLIC KEY-----\nPUB\n-----END PUBLIC KEY-----\n",`+
				`"PrivateKey":"-----BEGIN RSA PRIVATE KEY-----\nPRIV\n-----END RSA PRIVATE KEY-----\n"}}`)
			checkCalls(t, reg, fakeCall{"CreateKeysAndCertificate", tc.scope, []any{tc.active}})
			if log := th.log.String(); !strings.Contains(log, " account="+tc.scope.AccountID+"\n") {
				t.Errorf("the request line does not name the account:\n%s", log)
			}
		})
	}
}

// TestListCertificates checks the list options the registry is given, with
// their defaults, and that nextMarker is sent only when there is one.
func TestListCertificates(t *testing.T) {
	t.Parallel()
	certs := []iot.Certificate{
		{Scope: testScope, ID: testID, Status: iot.StatusInactive, Mode: iot.ModeSNIOnly, CreatedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		{Scope: testScope, ID: strings.Repeat("ab", 32), Status: iot.StatusRevoked, Mode: iot.ModeDefault, CreatedAt: time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)},
	}
	summary0 := `{"certificateArn":"arn:aws:iot:eu-west-3:123456789012:cert/` + testID + `","certificateId":"` + testID + `",` +
		`"status":"INACTIVE","certificateMode":"SNI_ONLY","creationDate":1714979289.123}`
	summary1 := `{"certificateArn":"arn:aws:iot:eu-west-3:123456789012:cert/` + strings.Repeat("ab", 32) + `","certificateId":"` + strings.Repeat("ab", 32) + `",` +
		`"status":"REVOKED","certificateMode":"DEFAULT","creationDate":1714979290.000}`
	cases := []struct {
		name   string
		target string
		opts   registry.ListOptions
		list   registry.CertificateList
		want   string
	}{
		{"defaults, empty", "/certificates", registry.ListOptions{PageSize: 25},
			registry.CertificateList{}, `{"certificates":[]}`},
		{"every option, more to come", "/certificates?pageSize=1&marker=a%2Bb%2Fc%3D&isAscendingOrder=true",
			registry.ListOptions{PageSize: 1, Marker: "a+b/c=", Ascending: true},
			registry.CertificateList{Certificates: certs[:1], NextMarker: "bmV4dA=="},
			`{"certificates":[` + summary0 + `],"nextMarker":"bmV4dA=="}`},
		{"last page", "/certificates?pageSize=250&isAscendingOrder=false",
			registry.ListOptions{PageSize: 250},
			registry.CertificateList{Certificates: certs},
			`{"certificates":[` + summary0 + `,` + summary1 + `]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{listCertificates: func(context.Context, iot.Scope, registry.ListOptions) (*registry.CertificateList, error) {
				return &tc.list, nil
			}}
			th := newTestHandler(reg, Options{})
			checkOK(t, th.do(newRequest(t, "GET", tc.target, "")), tc.want)
			checkCalls(t, reg, fakeCall{"ListCertificates", testScope, []any{tc.opts}})
		})
	}
}

// TestEmptyAnswers checks that operations without output answer {} and
// pass their input on.
func TestEmptyAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, target string
		call                 fakeCall
	}{
		{"update", "PUT", "/certificates/" + testID + "?newStatus=REVOKED", fakeCall{"UpdateCertificateStatus", testScope, []any{testID, iot.StatusRevoked}}},
		{"update upper case", "PUT", "/certificates/" + strings.ToUpper(testID) + "?newStatus=PENDING_TRANSFER", fakeCall{"UpdateCertificateStatus", testScope, []any{testID, iot.StatusPendingTransfer}}},
		{"delete", "DELETE", "/certificates/" + testID, fakeCall{"DeleteCertificate", testScope, []any{testID, false}}},
		{"force delete", "DELETE", "/certificates/0x" + testID + "?forceDelete=true", fakeCall{"DeleteCertificate", testScope, []any{testID, true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{
				updateCertificateStatus: func(context.Context, iot.Scope, string, iot.Status) error { return nil },
				deleteCertificate:       func(context.Context, iot.Scope, string, bool) error { return nil },
			}
			th := newTestHandler(reg, Options{})
			checkOK(t, th.do(newRequest(t, tc.method, tc.target, "")), `{}`)
			checkCalls(t, reg, tc.call)
		})
	}
}

// TestEpochBeforeTheEpoch: seconds and milliseconds share the sign.
func TestEpochBeforeTheEpoch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, -500e6), "-0.500"},
		{time.Unix(-2, 500e6), "-1.500"},
		{time.Unix(-1, 0), "-1.000"},
		{time.Unix(1, 5e6), "1.005"},
	} {
		if got, _ := epoch(tc.t).MarshalJSON(); string(got) != tc.want {
			t.Errorf("epoch(%v) = %s, want %s", tc.t.UTC(), got, tc.want)
		}
	}
}

// TestShorten: long values are cut on a character boundary.
func TestShorten(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 64, "short"},
		{strings.Repeat("a", 65), 64, strings.Repeat("a", 64) + "..."},
		{strings.Repeat("a", 63) + "é", 64, strings.Repeat("a", 63) + "..."},
		{"ééé", 3, "é..."},
	} {
		if got := shorten(tc.in, tc.n); got != tc.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
