// Package sigv4 authenticates incoming requests signed with AWS Signature
// Version 4. It recomputes the signature with the AWS SDK's own signer over
// exactly the headers the client signed, and compares in constant time.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/fleetca/fleetca/internal/apierr"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	// MaxSkew is how far a request's signing time may lie from the server's
	// clock, as at AWS.
	MaxSkew = 15 * time.Minute
)

// Credentials finds the secret of an access key.
type Credentials interface {
	// LookupAccessKey returns the secret and account of the key; found is false
	// for a key that does not exist.
	LookupAccessKey(ctx context.Context, accessKeyID string) (secret, accountID string, found bool, err error)
}

// Identity is who signed a request.
type Identity struct {
	AccountID   string
	AccessKeyID string
	// Region is the region of the credential scope.
	Region string
}

// Verifier checks signatures.
type Verifier struct {
	creds    Credentials
	services []string
	now      func() time.Time
	signer   *v4.Signer
	// presigner re-signs presigned URLs. Header hoisting is off: the client's
	// hoisted headers are in the query already.
	presigner *v4.Signer
}

// NewVerifier returns a Verifier accepting signatures scoped to any of the
// services (for example "iot"). now is the clock; nil means time.Now.
func NewVerifier(creds Credentials, now func() time.Time, services ...string) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{creds: creds, services: services, now: now, signer: v4.NewSigner(),
		presigner: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })}
}

// authorization is a parsed Authorization header.
type authorization struct {
	accessKeyID   string
	date          string
	region        string
	service       string
	signedHeaders []string
	signature     string
}

func parseAuthorization(h string) (authorization, error) {
	var a authorization
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != algorithm {
		return a, apierr.New(apierr.IncompleteSignature, "Authorization header must use the %s algorithm.", algorithm)
	}
	var credential, signedHeaders string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, apierr.New(apierr.IncompleteSignature, "Authorization header is malformed.")
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	if credential == "" || signedHeaders == "" || a.signature == "" {
		return a, apierr.New(apierr.IncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] == "" || scope[2] == "" || scope[4] != "aws4_request" {
		return a, apierr.New(apierr.IncompleteSignature, "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.")
	}
	a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	if !validRegion(a.region) {
		return a, apierr.New(apierr.IncompleteSignature, "The region of the credential scope must be 1 to 32 lower-case letters, digits and hyphens.")
	}
	a.signedHeaders = strings.Split(signedHeaders, ";")
	return a, nil
}

// Verify authenticates r, whose body has been read into body: by its
// Authorization header, or as a presigned URL.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Has("X-Amz-Algorithm") {
			return v.verifyPresigned(r, body)
		}
		return Identity{}, apierr.New(apierr.MissingAuthenticationToken, "Missing Authentication Token")
	}
	// The SDK signer writes the one signing time into X-Amz-Date, so a second
	// value would vanish from the canonical request unchecked: refuse it.
	if len(r.Header.Values("Authorization")) != 1 || len(r.Header.Values("X-Amz-Date")) > 1 {
		return Identity{}, apierr.New(apierr.InvalidSignature, "Authorization and X-Amz-Date must appear once.")
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return Identity{}, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signed, err := v.checkScopeAndTime(a, amzDate, MaxSkew)
	if err != nil {
		return Identity{}, err
	}
	secret, account, err := v.secret(r.Context(), a.accessKeyID)
	if err != nil {
		return Identity{}, err
	}
	want, err := v.expectedSignature(r, body, a, secret, signed)
	if err != nil {
		return Identity{}, err
	}
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return Identity{}, signatureMismatch()
	}
	return Identity{AccountID: account, AccessKeyID: a.accessKeyID, Region: a.region}, nil
}

// validRegion keeps the region, which goes into every ARN, to the shape of AWS
// region names.
func validRegion(r string) bool {
	if len(r) == 0 || len(r) > 32 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkScopeAndTime checks the credential scope's service and date against
// the signing time, and that the signing time lies within maxAge of now
// (and no more than MaxSkew ahead).
func (v *Verifier) checkScopeAndTime(a authorization, amzDate string, maxAge time.Duration) (time.Time, error) {
	if !v.serviceAllowed(a.service) {
		return time.Time{}, apierr.New(apierr.InvalidSignature, "Credential should be scoped to correct service: '%s'.", v.services[0])
	}
	signed, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return time.Time{}, apierr.New(apierr.IncompleteSignature, "The request must carry a valid X-Amz-Date.")
	}
	if a.date != signed.Format(dateFormat) {
		return time.Time{}, apierr.New(apierr.InvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'.", a.date, signed.Format(dateFormat))
	}
	now := v.now().UTC()
	if signed.Before(now.Add(-maxAge)) {
		return time.Time{}, apierr.New(apierr.InvalidSignature, "Signature expired: %s is now earlier than %s.", amzDate, now.Add(-maxAge).Format(timeFormat))
	}
	if signed.After(now.Add(MaxSkew)) {
		return time.Time{}, apierr.New(apierr.InvalidSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)", amzDate, now.Add(MaxSkew).Format(timeFormat), now.Format(timeFormat))
	}
	return signed, nil
}

// secret looks up an access key's secret and account.
func (v *Verifier) secret(ctx context.Context, accessKeyID string) (string, string, error) {
	secret, account, found, err := v.creds.LookupAccessKey(ctx, accessKeyID)
	if err != nil {
		return "", "", err
	}
	if !found {
		return "", "", apierr.New(apierr.UnrecognizedClient, "The security token included in the request is invalid.")
	}
	return secret, account, nil
}

// maxPresignedExpiry is the longest validity of a presigned URL, as at AWS.
const maxPresignedExpiry = 7 * 24 * time.Hour

// verifyPresigned authenticates a presigned URL: the signature and its
// parameters are in the query, and the URL is valid for X-Amz-Expires seconds
// from X-Amz-Date.
func (v *Verifier) verifyPresigned(r *http.Request, body []byte) (Identity, error) {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != algorithm {
		return Identity{}, apierr.New(apierr.IncompleteSignature, "X-Amz-Algorithm must be %s.", algorithm)
	}
	credential, signedHeaders, signature := q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
	if credential == "" || signedHeaders == "" || signature == "" {
		return Identity{}, apierr.New(apierr.IncompleteSignature, "A presigned URL needs X-Amz-Credential, X-Amz-SignedHeaders and X-Amz-Signature.")
	}
	a, err := parseAuthorization(algorithm + " Credential=" + credential + ", SignedHeaders=" + signedHeaders + ", Signature=" + signature)
	if err != nil {
		return Identity{}, err
	}
	expires, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || expires < 1 || time.Duration(expires)*time.Second > maxPresignedExpiry {
		return Identity{}, apierr.New(apierr.IncompleteSignature, "X-Amz-Expires must be 1 to %d seconds.", int(maxPresignedExpiry.Seconds()))
	}
	signed, err := v.checkScopeAndTime(a, q.Get("X-Amz-Date"), time.Duration(expires)*time.Second)
	if err != nil {
		return Identity{}, err
	}
	secret, account, err := v.secret(r.Context(), a.accessKeyID)
	if err != nil {
		return Identity{}, err
	}
	// Re-presign the request without its signature.
	q.Del("X-Amz-Signature")
	u := *r.URL
	u.RawQuery = q.Encode()
	c, err := copyWithSignedHeaders(r, &u, body, a.signedHeaders)
	if err != nil {
		return Identity{}, err
	}
	sum := sha256.Sum256(body)
	uri, _, err := v.presigner.PresignHTTP(r.Context(), aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret},
		c, hex.EncodeToString(sum[:]), a.service, a.region, signed)
	if err != nil {
		return Identity{}, err
	}
	pu, err := url.Parse(uri)
	if err != nil {
		return Identity{}, err
	}
	if !hmac.Equal([]byte(pu.Query().Get("X-Amz-Signature")), []byte(signature)) {
		return Identity{}, signatureMismatch()
	}
	return Identity{AccountID: account, AccessKeyID: a.accessKeyID, Region: a.region}, nil
}

func signatureMismatch() error {
	return apierr.New(apierr.InvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
}

func (v *Verifier) serviceAllowed(s string) bool {
	for _, x := range v.services {
		if s == x {
			return true
		}
	}
	return false
}

// copyWithSignedHeaders copies r with the URL u and only the headers the
// client signed, so the SDK signer builds the canonical request the client did.
func copyWithSignedHeaders(r *http.Request, u *url.URL, body []byte, signedHeaders []string) (*http.Request, error) {
	c := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "http", Host: r.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Host:   r.Host,
		Header: make(http.Header, len(signedHeaders)),
	}
	hasHost := false
	for _, name := range signedHeaders {
		switch name {
		case "host":
			hasHost = true
		case "content-length":
			c.ContentLength = int64(len(body))
		default:
			values := r.Header.Values(name)
			if len(values) == 0 {
				return nil, apierr.New(apierr.InvalidSignature, "The header %s is signed but not present.", name)
			}
			c.Header[http.CanonicalHeaderKey(name)] = values
		}
	}
	if !hasHost {
		return nil, apierr.New(apierr.InvalidSignature, "The host header must be signed.")
	}
	return c, nil
}

// expectedSignature signs a copy of r that carries only the headers the client
// signed, so the SDK signer builds the same canonical request the client did.
func (v *Verifier) expectedSignature(r *http.Request, body []byte, a authorization, secret string, signed time.Time) (string, error) {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if claimed := r.Header.Get("X-Amz-Content-Sha256"); claimed != "" && claimed != payloadHash {
		return "", apierr.New(apierr.InvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	c, err := copyWithSignedHeaders(r, r.URL, body, a.signedHeaders)
	if err != nil {
		return "", err
	}
	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret}
	if err := v.signer.SignHTTP(r.Context(), creds, c, payloadHash, a.service, a.region, signed); err != nil {
		return "", err
	}
	got, err := parseAuthorization(c.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	// The SDK signer leaves out a few headers (User-Agent, for one); a client
	// that signed one of them cannot be verified this way.
	if strings.Join(got.signedHeaders, ";") != strings.Join(a.signedHeaders, ";") {
		return "", apierr.New(apierr.InvalidSignature, "Signed headers %q cannot be verified; sign at most host, x-amz-*, content-type, content-length and amz-sdk-* headers.", strings.Join(a.signedHeaders, ";"))
	}
	return got.signature, nil
}
