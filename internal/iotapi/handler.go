// Package iotapi is the REST-JSON front end of the AWS IoT certificate API: it
// routes requests the way the AWS SDKs send them, authenticates them with
// SigV4, decodes and validates their input within bounds, calls the registry,
// and encodes the answer. It is the one place where errors become HTTP.
package iotapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/sigv4"
)

// MaxBodyBytes bounds a request body. The largest valid request
// (RegisterCACertificate: two 64 KiB certificates and a 10 KiB template) fits.
const MaxBodyBytes = 256 << 10

// Observer is told about every request once it is answered.
type Observer interface {
	ObserveRequest(operation string, status int, elapsed time.Duration)
}

// Options configure a Handler.
type Options struct {
	Registry Registry
	Verifier *sigv4.Verifier
	Logger   *slog.Logger
	// Observer, if set, sees every request (for metrics).
	Observer Observer
	// MaxInFlight bounds the requests served at once; beyond it requests
	// are refused with ThrottlingException instead of queueing. Zero means
	// no bound.
	MaxInFlight int
	// AccountRate bounds each account's requests per second, with bursts of
	// AccountBurst; zero means no bound.
	AccountRate  float64
	AccountBurst int
	// MQTTEndpoint is the MQTT endpoint's host, which DescribeEndpoint
	// answers; empty when there is none.
	MQTTEndpoint string
	// Serving, if set, counts the requests being served (Handler.Serving),
	// so that others can read the load before the Handler exists.
	Serving *atomic.Int64
	// RequestTimeout bounds a request's work, database included; a request
	// that runs out of it is answered 503 ServiceUnavailableException, which
	// the SDKs retry. Zero means 15 s.
	RequestTimeout time.Duration
}

// Handler serves the API.
type Handler struct {
	reg      Registry
	verifier *sigv4.Verifier
	log      *slog.Logger
	observer Observer
	mux      *http.ServeMux
	endpoint string
	// unknown answers whatever matches no operation.
	unknown http.Handler
	// inFlight is a semaphore of MaxInFlight slots; nil when unbounded.
	inFlight chan struct{}
	// serving counts the requests being served, admitted or not.
	serving        *atomic.Int64
	requestTimeout time.Duration
	bodyTimeout    time.Duration
	rate           rate.Limit
	burst          int
	// limiters holds one token bucket per account that has signed a
	// request, so their number is bounded by the accounts that exist.
	limiters sync.Map // account ID -> *rate.Limiter
}

// New returns a Handler with every operation routed.
func New(opts Options) *Handler {
	h := &Handler{reg: opts.Registry, verifier: opts.Verifier, log: opts.Logger, observer: opts.Observer, mux: http.NewServeMux(),
		requestTimeout: opts.RequestTimeout, serving: opts.Serving, endpoint: opts.MQTTEndpoint}
	if h.serving == nil {
		h.serving = new(atomic.Int64)
	}
	if h.requestTimeout <= 0 {
		h.requestTimeout = 15 * time.Second
	}
	h.bodyTimeout = min(maxBodyTimeout, h.requestTimeout/2)
	if opts.MaxInFlight > 0 {
		h.inFlight = make(chan struct{}, opts.MaxInFlight)
	}
	if opts.AccountRate > 0 {
		h.rate, h.burst = rate.Limit(opts.AccountRate), max(opts.AccountBurst, 1)
	}
	for _, op := range h.operations() {
		h.mux.Handle(op.pattern, h.serve(op))
	}
	// Whatever matches no operation is answered like AWS answers an unknown
	// route, after authentication, so the API's shape is not shown to strangers.
	h.unknown = h.serve(operation{name: "Unknown", handle: func(c *call) (any, error) {
		return nil, apierr.New(apierr.UnknownOperation, "No operation matches %s %s.", c.r.Method, shorten(c.r.URL.Path, 256))
	}})
	h.mux.Handle("/", h.unknown)
	return h
}

// ServeHTTP routes the request. A path that is not clean (//, /./, /../)
// matches no operation: ServeMux would redirect it, unauthenticated, which
// shows strangers the API's routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// HEAD too: ServeMux would run the GET operation for it, registry
	// call included, and AWS's API has no HEAD operations.
	if p := r.URL.Path; p != cleanPath(p) || r.Method == http.MethodHead {
		h.unknown.ServeHTTP(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// cleanPath is path.Clean keeping a trailing slash, as ServeMux compares.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// operation is one API operation: its route and its handler.
type operation struct {
	name    string
	pattern string
	handle  func(*call) (any, error)
}

// call is one authenticated request being served.
type call struct {
	r     *http.Request
	body  []byte
	query url.Values
	scope iot.Scope
}

func (h *Handler) serve(op operation) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.serving.Add(1)
		defer h.serving.Add(-1)
		requestID := uuid.NewString()
		w.Header().Set("x-amzn-RequestId", requestID)
		var account string
		status, errCode := http.StatusOK, ""
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("panic serving request", "operation", op.name, "request_id", requestID, "panic", p, "stack", string(debug.Stack()))
				status, errCode = writeError(w, apierr.New(apierr.InternalFailure, "An internal error occurred; request ID %s.", requestID))
			}
			elapsed := time.Since(start)
			if h.observer != nil {
				h.observer.ObserveRequest(op.name, status, elapsed)
			}
			if !h.log.Enabled(r.Context(), slog.LevelInfo) {
				return // spare building the line's attributes on every request
			}
			attrs := []any{"operation", op.name, "status", status, "latency_ms", float64(elapsed.Microseconds()) / 1000, "request_id", requestID}
			if account != "" {
				attrs = append(attrs, "account", account)
			}
			if errCode != "" {
				attrs = append(attrs, "error", errCode)
			}
			h.log.Info("request", attrs...)
		}()
		ctx, cancel := context.WithTimeout(r.Context(), h.requestTimeout)
		defer cancel()
		out, err := h.run(op, w, r.WithContext(ctx), requestID, &account)
		if err != nil {
			if ctxErr := r.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				// The client went away: no one reads an answer, and it is
				// no failure of the server's, so neither a 5xx nor an error
				// line.
				status, errCode = statusClientClosedRequest, "ClientClosedRequest"
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				// The client is still there but the work ran out of time:
				// the database, most likely, is not answering. The request
				// line says so; the condition is logged once, by the
				// server's readiness watch, not once per request.
				err = apierr.New(apierr.ServiceUnavailable, "The service could not complete the request in time; retry later.")
			}
			if e, ok := apierr.As(err); !ok {
				// Only the log sees what went wrong inside.
				h.log.Error("internal failure", "operation", op.name, "request_id", requestID, "err", err)
				err = apierr.New(apierr.InternalFailure, "An internal error occurred; request ID %s.", requestID)
			} else if e.Cause != nil {
				// The client sees the message; the cause is for the log.
				h.log.Error("request failed", "operation", op.name, "request_id", requestID, "err", err)
			}
			status, errCode = writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// Serving reports how many requests are being served now.
func (h *Handler) Serving() int { return int(h.serving.Load()) }

// statusClientClosedRequest is what the request log and metrics record for a
// request whose client went away before its answer (nginx's 499): nothing is
// written to the connection.
const statusClientClosedRequest = 499

// throttled is what an overloaded server answers; the SDKs retry it with
// back-off.
func throttled() error { return apierr.New(apierr.Throttling, "Rate exceeded") }

// allow takes a token from the account's bucket.
func (h *Handler) allow(account string) bool {
	if h.rate == 0 {
		return true
	}
	l, ok := h.limiters.Load(account)
	if !ok {
		l, _ = h.limiters.LoadOrStore(account, rate.NewLimiter(h.rate, h.burst))
	}
	return l.(*rate.Limiter).Allow()
}

// maxBodyTimeout bounds reading a request's body: 256 KiB at 25 KB/s, or
// half the request's time if that is less. A client slower than that holds
// a connection, never an in-flight slot.
const maxBodyTimeout = 10 * time.Second

// run reads and authenticates the request and calls the operation. The body
// is read and the signature checked before the request takes an in-flight
// slot, so that clients that cannot sign, however slow, never crowd out
// those that can.
func (h *Handler) run(op operation, w http.ResponseWriter, r *http.Request, requestID string, account *string) (any, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	// Not every ResponseWriter supports deadlines (tests' recorders do
	// not); the server's ReadTimeout still bounds the read there.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(h.bodyTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil || len(body) > MaxBodyBytes {
		// The rest of the body is not wanted: close the connection after
		// the answer rather than let net/http drain it, and keep the
		// deadline until then.
		w.Header().Set("Connection", "close")
	} else {
		// The deadline was for the body. Left in place, it would end
		// net/http's background read of the connection while the request
		// is still being served, which cancels the request's context as if
		// the client had gone.
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return nil, apierr.New(apierr.InvalidRequest, "The request body could not be read.")
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge()
	}
	id, err := h.verifier.Verify(r, body)
	if err != nil {
		return nil, err
	}
	*account = id.AccountID
	if h.inFlight != nil {
		// Refuse at once rather than queue: queued requests hold memory and
		// connections, and their clients would time out anyway.
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			return nil, throttled()
		}
	}
	if !h.allow(id.AccountID) {
		return nil, throttled()
	}
	// Whatever this request has signed is recorded as asked by this key.
	r = r.WithContext(audit.WithRequester(r.Context(), audit.Requester{Account: id.AccountID, Region: id.Region,
		Operation: op.name, AccessKeyID: id.AccessKeyID, RequestID: requestID}))
	c := &call{r: r, body: body, query: r.URL.Query(), scope: iot.Scope{AccountID: id.AccountID, Region: id.Region}}
	return op.handle(c)
}

func tooLarge() error {
	return apierr.New(apierr.RequestEntityTooLarge, "The request body exceeds %d bytes.", MaxBodyBytes)
}

// statusOf is the HTTP status of each error kind, from the AWS model (and the
// AWS front door for authentication).
var statusOf = map[apierr.Kind]int{
	apierr.InvalidRequest:              http.StatusBadRequest,
	apierr.Throttling:                  http.StatusBadRequest,
	apierr.CertificateValidation:       http.StatusBadRequest,
	apierr.RegistrationCodeValidation:  http.StatusBadRequest,
	apierr.Unauthorized:                http.StatusUnauthorized,
	apierr.ResourceNotFound:            http.StatusNotFound,
	apierr.CertificateState:            http.StatusNotAcceptable,
	apierr.ResourceAlreadyExists:       http.StatusConflict,
	apierr.DeleteConflict:              http.StatusConflict,
	apierr.CertificateConflict:         http.StatusConflict,
	apierr.LimitExceeded:               http.StatusGone,
	apierr.InternalFailure:             http.StatusInternalServerError,
	apierr.ServiceUnavailable:          http.StatusServiceUnavailable,
	apierr.UnknownOperation:            http.StatusNotFound,
	apierr.RequestEntityTooLarge:       http.StatusRequestEntityTooLarge,
	apierr.MissingAuthenticationToken:  http.StatusForbidden,
	apierr.UnrecognizedClient:          http.StatusForbidden,
	apierr.InvalidSignature:            http.StatusForbidden,
	apierr.IncompleteSignature:         http.StatusForbidden,
	apierr.AccessDenied:                http.StatusForbidden,
	apierr.MalformedPolicy:             http.StatusBadRequest,
	apierr.VersionsLimitExceeded:       http.StatusConflict,
	apierr.VersionConflict:             http.StatusConflict,
	apierr.ResourceRegistrationFailure: http.StatusBadRequest,
	apierr.ConflictingResourceUpdate:   http.StatusConflict,
}

// errorBody is what AWS sends with an error; the SDKs read the code from the
// x-amzn-ErrorType header and the message from here.
type errorBody struct {
	Message     string `json:"message"`
	ResourceID  string `json:"resourceId,omitempty"`
	ResourceARN string `json:"resourceArn,omitempty"`
}

// writeError renders err, which must be an *apierr.Error, and returns the
// status and error code it sent.
func writeError(w http.ResponseWriter, err error) (int, string) {
	e, ok := apierr.As(err)
	if !ok {
		e = apierr.New(apierr.InternalFailure, "An internal error occurred.")
	}
	status, ok := statusOf[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	w.Header().Set("x-amzn-ErrorType", string(e.Kind)+":")
	writeJSON(w, status, errorBody{Message: e.Message, ResourceID: e.ResourceID, ResourceARN: e.ResourceARN})
	return status, string(e.Kind)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		v = struct{}{}
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Every response type is plain data; this cannot happen.
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// validation returns the InvalidRequestException AWS sends for a value that
// breaks a model constraint.
func validation(value, member, constraint string) error {
	return apierr.New(apierr.InvalidRequest, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", shorten(value, 64), member, constraint)
}

// shorten cuts s to at most n bytes, on a character boundary, marking the
// cut with "...": echoing a client's long value whole would let it size
// our answers.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// boolQuery reads an optional boolean query parameter; absent means false.
func (c *call) boolQuery(name string) (bool, error) {
	v, ok := c.query[name]
	if !ok {
		return false, nil
	}
	switch v[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, validation(v[0], name, "Member must be true or false")
}

// decodeBody decodes a JSON object body into v. An empty body is an empty
// object, as SDKs send no body when no member is set.
func (c *call) decodeBody(v any) error {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return apierr.New(apierr.InvalidRequest, "The member %s must be a JSON %s.", typeErr.Field, typeErr.Type.Kind())
		}
		return apierr.New(apierr.InvalidRequest, "The request body is not a valid JSON object.")
	}
	return nil
}

// certificateIDLabel reads a certificate ID from the path, accepting any case
// and a 0x prefix, and returns it in lower case.
func (c *call) certificateIDLabel(name string) (string, error) {
	raw := c.r.PathValue(name)
	id, ok := iot.NormalizeCertificateID(raw)
	if !ok {
		return "", validation(raw, name, "Member must be 64 hexadecimal characters, optionally prefixed with 0x")
	}
	return id, nil
}

// listOptions reads pageSize, marker and isAscendingOrder.
func (c *call) listOptions() (registry.ListOptions, error) {
	opts, err := c.paging(25, "pageSize", "marker", "Member must satisfy regular expression pattern: [A-Za-z0-9+/]+={0,2}")
	if err != nil {
		return opts, err
	}
	opts.Ascending, err = c.boolQuery("isAscendingOrder")
	return opts, err
}

// paging reads a page size (1 to 250, size when absent) and a marker
// fleetca handed out, under the members' names of the operation's model;
// a marker that cannot be one is refused with markerMessage.
func (c *call) paging(size int, sizeMember, markerMember, markerMessage string) (registry.ListOptions, error) {
	opts := registry.ListOptions{PageSize: size}
	if c.query.Has(sizeMember) {
		v := c.query.Get(sizeMember)
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			return opts, validation(v, sizeMember, "Member must have value between 1 and 250")
		}
		opts.PageSize = n
	}
	if c.query.Has(markerMember) {
		m := c.query.Get(markerMember)
		if len(m) == 0 || len(m) > 1024 || !isBase64(m) {
			return opts, validation(m, markerMember, markerMessage)
		}
		opts.Marker = m
	}
	return opts, nil
}

// isBase64 matches [A-Za-z0-9+/]+={0,2}.
func isBase64(s string) bool {
	end := len(s)
	for i := 0; i < 2 && end > 0 && s[end-1] == '='; i++ {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
