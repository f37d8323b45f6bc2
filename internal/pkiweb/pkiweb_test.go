package pkiweb

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/revocation"
	"github.com/fleetca/fleetca/internal/testpki"
)

// issuerID is a certificate ID, as the issuing CA's is: 64 hex digits.
const issuerID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeRevocation serves the CRL and the OCSP answer a test sets, and
// records every request Respond is given (nil kept as nil).
type fakeRevocation struct {
	mu       sync.Mutex
	crl      revocation.CRL
	ready    bool
	answer   revocation.Answer
	requests [][]byte
}

func (f *fakeRevocation) CRL(id string) (revocation.CRL, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crl, f.ready && id == issuerID
}

func (f *fakeRevocation) CRLs() ([]revocation.CRL, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return nil, false
	}
	return []revocation.CRL{f.crl}, true
}

func (f *fakeRevocation) Respond(_ context.Context, req []byte) revocation.Answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, bytes.Clone(req))
	return f.answer
}

func (f *fakeRevocation) setCRL(c revocation.CRL) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crl, f.ready = c, true
}

func (f *fakeRevocation) setAnswer(a revocation.Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

// lastRequest is what Respond was last given; called is false if never.
func (f *fakeRevocation) lastRequest() (req []byte, called bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil, false
	}
	return f.requests[len(f.requests)-1], true
}

func (f *fakeRevocation) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// requestLimit is the largest OCSP request the handler takes: 8 KiB.
const requestLimit = 8 << 10

// clockAt is the handler's clock.
var clockAt = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func fixedNow() time.Time { return clockAt }

// newCRL signs a real CRL numbered number, valid from thisUpdate to
// nextUpdate, with a throwaway CA.
func newCRL(t *testing.T, number int64, thisUpdate, nextUpdate time.Time) revocation.CRL {
	t.Helper()
	ca := testpki.NewRoot(t, "p256", "pkiweb test CA")
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: thisUpdate.Add(-time.Hour)}},
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return revocation.CRL{Number: number, ThisUpdate: thisUpdate, NextUpdate: nextUpdate, DER: der,
		PEM: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})}
}

func serve(h http.Handler, method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	var r *http.Request
	if body == nil {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, bytes.NewReader(body))
	}
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// maxAgeOf returns the max-age of a Cache-Control that must be public.
func maxAgeOf(t *testing.T, cc string) int {
	t.Helper()
	if !strings.Contains(cc, "public") {
		t.Fatalf("Cache-Control %q is not public", cc)
	}
	for part := range strings.SplitSeq(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("Cache-Control %q: %v", cc, err)
			}
			return n
		}
	}
	t.Fatalf("Cache-Control %q has no max-age", cc)
	return 0
}

func TestOwns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path string
		want bool
	}{
		{"/crl.pem", true},
		{"/crl/" + issuerID + ".crl", true},
		{"/crl/" + issuerID + ".pem", true},
		{"/crl/anything", true},
		{"/ocsp", true},
		{"/ocsp/MEIwQDA+MDwwOjAJBgUrDgMCGgUABBQ=", true},
		{"/crl", false},
		{"/crl.der", false},
		{"/crls/x.crl", false},
		{"/ocspx", false},
		{"/ca.pem", false},
		{"/", false},
		{"", false},
	}
	for _, c := range cases {
		if got := Owns(c.path); got != c.want {
			t.Errorf("Owns(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

func TestCRL(t *testing.T) {
	t.Parallel()
	rev := &fakeRevocation{}
	thisUpdate := clockAt.Add(-10 * time.Minute)
	crl := newCRL(t, 7, thisUpdate, thisUpdate.Add(24*time.Hour))
	rev.setCRL(crl)
	h := New(rev, fixedNow)
	cases := []struct {
		name, method, path string
		status             int
		contentType        string
		body               []byte
	}{
		{"DER", http.MethodGet, "/crl/" + issuerID + ".crl", http.StatusOK, "application/pkix-crl", crl.DER},
		{"DER, HEAD", http.MethodHead, "/crl/" + issuerID + ".crl", http.StatusOK, "application/pkix-crl", nil},
		{"PEM", http.MethodGet, "/crl/" + issuerID + ".pem", http.StatusOK, "application/x-pem-file", crl.PEM},
		{"PEM, HEAD", http.MethodHead, "/crl/" + issuerID + ".pem", http.StatusOK, "application/x-pem-file", nil},
		{"every CRL", http.MethodGet, "/crl.pem", http.StatusOK, "application/x-pem-file", crl.PEM},
		{"another issuer", http.MethodGet, "/crl/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.crl", http.StatusNotFound, "", nil},
		{"a prefix of the issuer", http.MethodGet, "/crl/" + issuerID[:16] + ".crl", http.StatusNotFound, "", nil},
		{"another extension", http.MethodGet, "/crl/" + issuerID + ".der", http.StatusNotFound, "", nil},
		{"no name", http.MethodGet, "/crl/", http.StatusNotFound, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := serve(h, c.method, c.path, nil, nil)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.status != http.StatusOK {
				return
			}
			if got := w.Header().Get("Content-Type"); got != c.contentType {
				t.Errorf("Content-Type %q, want %q", got, c.contentType)
			}
			if !bytes.Equal(w.Body.Bytes(), c.body) {
				t.Errorf("body of %d bytes, want %d", w.Body.Len(), len(c.body))
			}
			if c.body != nil && strings.HasSuffix(c.contentType, "pem-file") {
				if block, _ := pem.Decode(w.Body.Bytes()); block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, crl.DER) {
					t.Error("the PEM is not the CRL's")
				}
			}
			if age := maxAgeOf(t, w.Header().Get("Cache-Control")); age != 60 {
				t.Errorf("max-age %d, want 60", age)
			}
			if got, want := w.Header().Get("Expires"), clockAt.Add(time.Minute).Format(http.TimeFormat); got != want {
				t.Errorf("Expires %q, want %q", got, want)
			}
			if got, want := w.Header().Get("Last-Modified"), thisUpdate.Format(http.TimeFormat); got != want {
				t.Errorf("Last-Modified %q, want %q", got, want)
			}
			if etag := w.Header().Get("ETag"); len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || !strings.HasSuffix(etag, `-7"`) {
				t.Errorf("ETag %q, want a strong one naming CRL 7", etag)
			}
			if c.method == http.MethodHead {
				if got, want := w.Header().Get("Content-Length"), strconv.Itoa(len(crl.DER)); c.contentType == "application/pkix-crl" && got != want {
					t.Errorf("HEAD Content-Length %q, want %q", got, want)
				}
			}
		})
	}
}

func TestCRLMaxAgeFollowsNextUpdate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		left    time.Duration
		wantAge int
	}{
		{"days left", 7 * 24 * time.Hour, 60},
		{"a minute left", time.Minute, 60},
		{"seconds left", 25 * time.Second, 25},
		{"expired", -time.Hour, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rev := &fakeRevocation{}
			next := clockAt.Add(c.left)
			rev.setCRL(newCRL(t, 3, next.Add(-8*24*time.Hour), next))
			w := serve(New(rev, fixedNow), http.MethodGet, "/crl.pem", nil, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			if age := maxAgeOf(t, w.Header().Get("Cache-Control")); age != c.wantAge {
				t.Errorf("max-age %d, want %d", age, c.wantAge)
			}
			if got, want := w.Header().Get("Expires"), clockAt.Add(time.Duration(c.wantAge)*time.Second).Format(http.TimeFormat); got != want {
				t.Errorf("Expires %q, want %q", got, want)
			}
		})
	}
}

func TestCRLConditional(t *testing.T) {
	t.Parallel()
	rev := &fakeRevocation{}
	thisUpdate := clockAt.Add(-time.Hour)
	rev.setCRL(newCRL(t, 1, thisUpdate, thisUpdate.Add(24*time.Hour)))
	h := New(rev, fixedNow)
	path := "/crl/" + issuerID + ".crl"
	first := serve(h, http.MethodGet, path, nil, nil)
	etag, modified := first.Header().Get("ETag"), first.Header().Get("Last-Modified")

	if w := serve(h, http.MethodGet, path, nil, http.Header{"If-None-Match": {etag}}); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match the ETag: status %d with %d bytes, want 304", w.Code, w.Body.Len())
	}
	if w := serve(h, http.MethodGet, path, nil, http.Header{"If-Modified-Since": {modified}}); w.Code != http.StatusNotModified {
		t.Errorf("If-Modified-Since Last-Modified: status %d, want 304", w.Code)
	}

	// A new CRL is a new ETag: the old one no longer matches.
	next := clockAt.Add(-time.Minute)
	rev.setCRL(newCRL(t, 2, next, next.Add(24*time.Hour)))
	w := serve(h, http.MethodGet, path, nil, http.Header{"If-None-Match": {etag}})
	if w.Code != http.StatusOK || w.Header().Get("ETag") == etag {
		t.Errorf("after a new CRL: status %d, ETag %q (was %q)", w.Code, w.Header().Get("ETag"), etag)
	}
}

func TestCRLMethodNotAllowed(t *testing.T) {
	t.Parallel()
	rev := &fakeRevocation{}
	rev.setCRL(newCRL(t, 1, clockAt, clockAt.Add(time.Hour)))
	h := New(rev, fixedNow)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"/crl/" + issuerID + ".crl", "/crl/" + issuerID + ".pem", "/crl.pem"} {
			w := serve(h, method, path, []byte("x"), nil)
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d, Allow %q; want 405 allowing GET, HEAD", method, path, w.Code, w.Header().Get("Allow"))
			}
		}
	}
}

func TestCRLNotReady(t *testing.T) {
	t.Parallel()
	h := New(&fakeRevocation{}, fixedNow)
	for _, path := range []string{"/crl/" + issuerID + ".crl", "/crl/" + issuerID + ".pem", "/crl.pem"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			w := serve(h, method, path, nil, nil)
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("%s %s before a CRL: status %d, want 503", method, path, w.Code)
			}
			if n, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || n <= 0 {
				t.Errorf("%s %s: Retry-After %q", method, path, w.Header().Get("Retry-After"))
			}
			if cc := w.Header().Get("Cache-Control"); strings.Contains(cc, "public") {
				t.Errorf("%s %s: the 503 may be cached: %q", method, path, cc)
			}
		}
	}
}

// goodAnswer is a successful answer valid for a day.
var goodAnswer = revocation.Answer{DER: []byte{0x30, 0x03, 0x0a, 0x01, 0x00}, ThisUpdate: clockAt.Add(-time.Minute), NextUpdate: clockAt.Add(24 * time.Hour)}

func TestOCSPPost(t *testing.T) {
	t.Parallel()
	request := make([]byte, requestLimit+1)
	for i := range request {
		request[i] = byte(i*7 + 3)
	}
	cases := []struct {
		name    string
		size    int
		wantNil bool
	}{
		{"empty", 0, false},
		{"a request", 100, false},
		{"the largest", requestLimit, false},
		{"one byte too large", requestLimit + 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rev := &fakeRevocation{}
			rev.setAnswer(goodAnswer)
			w := serve(New(rev, fixedNow), http.MethodPost, "/ocsp", request[:c.size], http.Header{"Content-Type": {"application/ocsp-request"}})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			got, called := rev.lastRequest()
			if !called {
				t.Fatal("Respond was not called")
			}
			if c.wantNil && got != nil {
				t.Errorf("Respond got %d bytes, want nil", len(got))
			}
			if !c.wantNil && (got == nil && c.size > 0 || !bytes.Equal(got, request[:c.size])) {
				t.Errorf("Respond got %d bytes, want the %d sent", len(got), c.size)
			}
			if !bytes.Equal(w.Body.Bytes(), goodAnswer.DER) {
				t.Errorf("body %x, want the answer %x", w.Body.Bytes(), goodAnswer.DER)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/ocsp-response" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(goodAnswer.DER)) {
				t.Errorf("Content-Length %q", cl)
			}
			// RFC 5019 caching is for GET; a POST answer is not kept.
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestOCSPPostOverHTTP(t *testing.T) {
	t.Parallel()
	rev := &fakeRevocation{}
	rev.setAnswer(revocation.Answer{DER: ocsp.MalformedRequestErrorResponse})
	srv := httptest.NewServer(New(rev, fixedNow))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(make([]byte, 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body.Bytes(), ocsp.MalformedRequestErrorResponse) {
		t.Fatalf("a 64 KiB request: status %d, body %x; want 200 and malformedRequest", resp.StatusCode, body.Bytes())
	}
	if got, called := rev.lastRequest(); !called || got != nil {
		t.Fatalf("Respond got %d bytes (called %v), want nil", len(got), called)
	}
}

func TestOCSPGet(t *testing.T) {
	t.Parallel()
	// Its base64 has '+', '/' and padding.
	request := []byte{0x30, 0xfb, 0xff, 0xbf, 0xfe, 0x3e, 0x01}
	std := base64.StdEncoding.EncodeToString(request)
	raw := base64.RawStdEncoding.EncodeToString(request)
	if !strings.ContainsAny(std, "+") || !strings.Contains(std, "/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("the test request's base64 %q lacks a character it is meant to have", std)
	}
	cases := []struct {
		name, path string
		want       []byte
	}{
		{"base64", "/ocsp/" + std, request},
		{"base64, URL-encoded", "/ocsp/" + url.PathEscape(std), request},
		{"base64 with every character escaped", "/ocsp/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std), request},
		{"unpadded", "/ocsp/" + raw, request},
		{"unpadded, URL-encoded", "/ocsp/" + url.PathEscape(raw), request},
		{"not base64", "/ocsp/!!!!", nil},
		// What decodes before a bad character is not the request.
		{"unpadded then junk", "/ocsp/" + raw + "!!!!", nil},
		{"unpadded then a stray =", "/ocsp/" + raw + "=", nil},
		{"empty", "/ocsp/", nil},
		{"too long", "/ocsp/" + strings.Repeat("A", base64.StdEncoding.EncodedLen(requestLimit)+4), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rev := &fakeRevocation{}
			rev.setAnswer(goodAnswer)
			w := serve(New(rev, fixedNow), http.MethodGet, c.path, nil, nil)
			if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), goodAnswer.DER) {
				t.Fatalf("status %d, body %x", w.Code, w.Body.Bytes())
			}
			got, called := rev.lastRequest()
			if !called || !bytes.Equal(got, c.want) {
				t.Fatalf("Respond got %x (called %v), want %x", got, called, c.want)
			}
		})
	}
	t.Run("largest", func(t *testing.T) {
		t.Parallel()
		rev := &fakeRevocation{}
		rev.setAnswer(goodAnswer)
		largest := bytes.Repeat([]byte{0xab}, requestLimit)
		serve(New(rev, fixedNow), http.MethodGet, "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(largest)), nil, nil)
		if got, _ := rev.lastRequest(); !bytes.Equal(got, largest) {
			t.Fatalf("Respond got %d bytes, want %d", len(got), len(largest))
		}
	})
}

func TestOCSPGetCaching(t *testing.T) {
	t.Parallel()
	path := "/ocsp/" + base64.StdEncoding.EncodeToString([]byte{0x30, 0x00})
	cases := []struct {
		name    string
		answer  revocation.Answer
		wantAge int // -1: not cacheable
	}{
		{"good for a day", goodAnswer, 60},
		{"good for 20 s more", revocation.Answer{DER: goodAnswer.DER, ThisUpdate: clockAt.Add(-time.Hour), NextUpdate: clockAt.Add(20 * time.Second)}, 20},
		{"out of date", revocation.Answer{DER: goodAnswer.DER, ThisUpdate: clockAt.Add(-2 * time.Hour), NextUpdate: clockAt.Add(-time.Hour)}, 0},
		{"malformed", revocation.Answer{DER: ocsp.MalformedRequestErrorResponse}, -1},
		{"unauthorized", revocation.Answer{DER: ocsp.UnauthorizedErrorResponse}, -1},
		{"try later", revocation.Answer{DER: ocsp.TryLaterErrorResponse}, -1},
	}
	for _, c := range cases {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(c.name+"/"+method, func(t *testing.T) {
				t.Parallel()
				rev := &fakeRevocation{}
				rev.setAnswer(c.answer)
				w := serve(New(rev, fixedNow), method, path, nil, nil)
				if w.Code != http.StatusOK {
					t.Fatalf("status %d", w.Code)
				}
				wantBody := c.answer.DER
				if method == http.MethodHead {
					wantBody = nil
				}
				if !bytes.Equal(w.Body.Bytes(), wantBody) {
					t.Errorf("body %x, want %x", w.Body.Bytes(), wantBody)
				}
				if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(c.answer.DER)) {
					t.Errorf("Content-Length %q, want %d", cl, len(c.answer.DER))
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/ocsp-response" {
					t.Errorf("Content-Type %q", ct)
				}
				cc := w.Header().Get("Cache-Control")
				if c.wantAge < 0 {
					if cc != "no-store" || w.Header().Get("Last-Modified") != "" || w.Header().Get("Expires") != "" {
						t.Errorf("an error answer: Cache-Control %q, Last-Modified %q, Expires %q; want no-store only",
							cc, w.Header().Get("Last-Modified"), w.Header().Get("Expires"))
					}
					return
				}
				if age := maxAgeOf(t, cc); age != c.wantAge {
					t.Errorf("max-age %d, want %d", age, c.wantAge)
				}
				if got, want := w.Header().Get("Last-Modified"), c.answer.ThisUpdate.Format(http.TimeFormat); got != want {
					t.Errorf("Last-Modified %q, want %q", got, want)
				}
			})
		}
	}
}

func TestOCSPMethodNotAllowed(t *testing.T) {
	t.Parallel()
	rev := &fakeRevocation{}
	rev.setAnswer(goodAnswer)
	h := New(rev, fixedNow)
	// Allow names what the path does take: POST for /ocsp, GET and
	// HEAD for /ocsp/<request> (RFC 9110 10.2.1).
	cases := []struct{ method, path, allow string }{
		{http.MethodPut, "/ocsp", "POST"},
		{http.MethodDelete, "/ocsp", "POST"},
		{http.MethodGet, "/ocsp", "POST"},
		{http.MethodHead, "/ocsp", "POST"},
		{http.MethodPut, "/ocsp/MAA=", "GET, HEAD"},
		{http.MethodPost, "/ocsp/MAA=", "GET, HEAD"},
	}
	for _, c := range cases {
		w := serve(h, c.method, c.path, []byte{0x30, 0x00}, nil)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", c.method, c.path, w.Code)
		}
		if allow := w.Header().Get("Allow"); allow != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, allow, c.allow)
		}
	}
	if n := rev.calls(); n != 0 {
		t.Errorf("Respond was called %d times for refused methods", n)
	}
}
