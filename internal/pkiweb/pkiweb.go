// Package pkiweb is the front end that serves revocation to the world,
// without authentication, as RFC 5280 and RFC 6960 expect: each issuing
// CA's CRL (the current one's and those rotated away) at
// /crl/<issuer>.crl (DER) and /crl/<issuer>.pem, every current CRL at
// /crl.pem (the file Mosquitto's crlfile and NGINX's ssl_crl read), and
// an OCSP responder at /ocsp (POST) and /ocsp/<base64 request> (GET, which
// HTTP caches can keep; RFC 5019).
package pkiweb

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/revocation"
)

// Revocation is what the front end serves (a revocation.Set).
type Revocation interface {
	// CRL is the CRL of one issuer, by its certificate ID.
	CRL(issuerID string) (revocation.CRL, bool)
	// CRLs are every issuer's; ok is false while one is not ready.
	CRLs() ([]revocation.CRL, bool)
	Respond(ctx context.Context, request []byte) revocation.Answer
}

// maxRequest bounds an OCSP request: one for a single certificate is about
// 100 bytes, and a client with a nonce and a few certificates stays far
// below this.
const maxRequest = 8 << 10

// maxAge bounds how long an HTTP cache may keep a CRL or OCSP answer, so
// that a cache in front of fleetca does not hide a revocation for long.
const maxAge = 60 * time.Second

// Owns reports whether the path is one the handler serves.
func Owns(path string) bool {
	return path == "/crl.pem" || strings.HasPrefix(path, "/crl/") || path == "/ocsp" || strings.HasPrefix(path, "/ocsp/")
}

// Handler serves the paths Owns accepts.
type Handler struct {
	rev Revocation
	now func() time.Time
}

// New returns a Handler for rev; now is the clock (nil means time.Now).
func New(rev Revocation, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{rev: rev, now: now}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/ocsp" && r.Method == http.MethodPost:
		h.ocspPost(w, r)
	case strings.HasPrefix(path, "/ocsp/") && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		h.ocspGet(w, r, strings.TrimPrefix(path, "/ocsp/"))
	case path == "/ocsp":
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case strings.HasPrefix(path, "/ocsp/"):
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		h.crl(w, r, path)
	}
}

func (h *Handler) crl(w http.ResponseWriter, r *http.Request, path string) {
	if path == "/crl.pem" {
		h.allCRLs(w, r)
		return
	}
	id, pemForm := strings.TrimPrefix(path, "/crl/"), false
	switch {
	case strings.HasSuffix(id, ".crl"):
		id = strings.TrimSuffix(id, ".crl")
	case strings.HasSuffix(id, ".pem"):
		id, pemForm = strings.TrimSuffix(id, ".pem"), true
	default:
		http.NotFound(w, r)
		return
	}
	c, ok := h.rev.CRL(id)
	if !ok {
		if _, any := h.rev.CRLs(); any {
			http.NotFound(w, r) // no such issuer
			return
		}
		notReady(w)
		return
	}
	body, contentType := c.DER, "application/pkix-crl"
	if pemForm {
		body, contentType = c.PEM, "application/x-pem-file"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("ETag", `"`+id[:min(16, len(id))]+"-"+strconv.FormatInt(c.Number, 10)+`"`)
	h.cacheHeaders(w, c.NextUpdate)
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(body))
}

// allCRLs serves every issuer's CRL in one PEM file, the form Mosquitto's
// crlfile and NGINX's ssl_crl read: valid as long as the first of them to
// expire.
func (h *Handler) allCRLs(w http.ResponseWriter, r *http.Request) {
	crls, ok := h.rev.CRLs()
	if !ok || len(crls) == 0 {
		notReady(w)
		return
	}
	var body []byte
	etag := ""
	next, modified := crls[0].NextUpdate, crls[0].ThisUpdate
	for _, c := range crls {
		body = append(body, c.PEM...)
		etag += strconv.FormatInt(c.Number, 36) + "."
		if c.NextUpdate.Before(next) {
			next = c.NextUpdate
		}
		if c.ThisUpdate.After(modified) {
			modified = c.ThisUpdate
		}
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("ETag", `"all-`+strings.TrimSuffix(etag, ".")+`"`)
	h.cacheHeaders(w, next)
	http.ServeContent(w, r, "", modified, bytes.NewReader(body))
}

func notReady(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "the CRL is not ready yet", http.StatusServiceUnavailable)
}

func (h *Handler) ocspPost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// The RFC's answer for what cannot be a request, not a 413: an
		// OCSP client reads the OCSP status, not the HTTP one.
		body = nil
	} else if err != nil {
		return
	}
	h.ocspAnswer(w, r, h.rev.Respond(ocspRequester(r), body), false)
}

func (h *Handler) ocspGet(w http.ResponseWriter, r *http.Request, encoded string) {
	var req []byte
	if len(encoded) <= base64.StdEncoding.EncodedLen(maxRequest) {
		// RFC 6960 A.1: the request is base64 and then URL-encoded; the
		// path arrives decoded. Some clients leave the padding off.
		var err error
		if req, err = base64.StdEncoding.DecodeString(encoded); err != nil {
			// What decoded before a bad character is not the request.
			if req, err = base64.RawStdEncoding.DecodeString(encoded); err != nil {
				req = nil
			}
		}
	}
	h.ocspAnswer(w, r, h.rev.Respond(ocspRequester(r), req), true)
}

func (h *Handler) ocspAnswer(w http.ResponseWriter, r *http.Request, a revocation.Answer, cacheable bool) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	if cacheable && a.Cacheable() {
		h.cacheHeaders(w, a.NextUpdate)
		w.Header().Set("Last-Modified", a.ThisUpdate.UTC().Format(http.TimeFormat))
	} else {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.DER)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(a.DER)
}

// cacheHeaders lets HTTP caches keep an answer valid until nextUpdate for
// at most maxAge (RFC 5019 6.2).
func (h *Handler) cacheHeaders(w http.ResponseWriter, nextUpdate time.Time) {
	age := min(nextUpdate.Sub(h.now()), maxAge)
	if age < 0 {
		age = 0
	}
	w.Header().Set("Cache-Control", "public, no-transform, must-revalidate, max-age="+strconv.Itoa(int(age/time.Second)))
	w.Header().Set("Expires", h.now().Add(age).UTC().Format(http.TimeFormat))
}

// ocspRequester is r's context naming its client, anonymous as OCSP
// clients are, for the audit record of an answer signed for it.
func ocspRequester(r *http.Request) context.Context {
	return audit.WithRequester(r.Context(), audit.Requester{Operation: "OCSP", Remote: r.RemoteAddr})
}
