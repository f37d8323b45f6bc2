package mqttapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// operation is a fleet-provisioning request topic.
type operation struct {
	name     string
	topic    string // the request topic, without namespace
	format   string // "json" or "cbor"
	template string // RegisterThing's template
}

// requestTopics are the certificate topics devices may publish requests on.
var requestTopics = func() map[string]operation {
	m := map[string]operation{}
	for _, format := range []string{"json", "cbor"} {
		for name, base := range map[string]string{
			"CreateKeysAndCertificate": "$aws/certificates/create/",
			"CreateCertificateFromCsr": "$aws/certificates/create-from-csr/",
		} {
			t := base + format
			m[t] = operation{name: name, topic: t, format: format}
		}
	}
	return m
}()

// templatesPrefix begins RegisterThing's topics:
// $aws/provisioning-templates/<templateName>/provision/<json|cbor>, with
// /accepted and /rejected for the replies.
const templatesPrefix = "$aws/provisioning-templates/"

// requestOperation returns the operation a device asks for by publishing
// on topic t, if t is a request topic.
func requestOperation(t string) (operation, bool) {
	if op, ok := requestTopics[t]; ok {
		return op, true
	}
	rest, ok := strings.CutPrefix(t, templatesPrefix)
	if !ok {
		return operation{}, false
	}
	name, format, ok := strings.Cut(rest, "/provision/")
	if !ok || format != "json" && format != "cbor" || !iot.ValidTemplateName(name) {
		return operation{}, false
	}
	return operation{name: "RegisterThing", topic: t, format: format, template: name}, true
}

// requestTimeout bounds one request, certificate provider included.
const requestTimeout = 15 * time.Second

// maxCSRLength matches the HTTP API's bound on a CSR.
const maxCSRLength = 4096

type createKeysAndCertificateAccepted struct {
	CertificateID             string `json:"certificateId"`
	CertificatePem            string `json:"certificatePem"`
	PrivateKey                string `json:"privateKey"`
	CertificateOwnershipToken string `json:"certificateOwnershipToken"`
}

type createCertificateFromCsrRequest struct {
	CertificateSigningRequest string `json:"certificateSigningRequest"`
}

type createCertificateFromCsrAccepted struct {
	CertificateOwnershipToken string `json:"certificateOwnershipToken"`
	CertificateID             string `json:"certificateId"`
	CertificatePem            string `json:"certificatePem"`
}

type registerThingRequest struct {
	CertificateOwnershipToken string            `json:"certificateOwnershipToken" cbor:"certificateOwnershipToken"`
	Parameters                map[string]string `json:"parameters" cbor:"parameters"`
}

type registerThingAccepted struct {
	DeviceConfiguration map[string]string `json:"deviceConfiguration" cbor:"deviceConfiguration"`
	ThingName           string            `json:"thingName,omitempty" cbor:"thingName,omitempty"`
}

type rejectedReply struct {
	StatusCode   int    `json:"statusCode"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// serve answers one request on its /accepted or /rejected topic, to the
// requesting connection only.
func (h *hook) serve(cl *mqtt.Client, sess *session, op operation, payload []byte) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(h.ctx, requestTimeout)
	defer cancel()
	var reply any
	var err error
	if h.limiter.allow(sess.scope) {
		reply, err = h.handle(ctx, sess, op, payload)
	} else {
		err = apierr.New(apierr.Throttling, "Rate exceeded for the account's fleet-provisioning requests.")
	}
	suffix, status := "/accepted", http.StatusOK
	if err != nil {
		r := rejection(err)
		reply, suffix, status = r, "/rejected", r.StatusCode
		switch {
		case r.StatusCode >= 500:
			h.log.Error("mqtt request failed", "operation", op.name, "account", sess.scope.AccountID, "client_id", sess.clientID, "err", err)
		case r.StatusCode == http.StatusForbidden:
			// A pre-provisioning hook's refusal: why (the function's own
			// error included) is for the operator, not the device.
			h.log.Warn("mqtt request denied", "operation", op.name, "account", sess.scope.AccountID, "client_id", sess.clientID, "err", err)
		}
	}
	body, encErr := encode(op.format, reply)
	if encErr != nil {
		h.log.Error("encoding an mqtt reply", "err", encErr)
		return
	}
	delivered := h.reply(cl, sess, op.topic+suffix, body)
	if h.observer != nil {
		h.observer.ObserveMQTTRequest(op.name, status, time.Since(start))
	}
	h.log.Info("mqtt request", "operation", op.name, "format", op.format, "status", status,
		"latency_ms", float64(time.Since(start).Microseconds())/1000, "account", sess.scope.AccountID,
		"client_id", sess.clientID, "delivered", delivered)
}

func (h *hook) handle(ctx context.Context, sess *session, op operation, payload []byte) (any, error) {
	// Whatever this request has signed is recorded as asked by this device.
	ctx = audit.WithRequester(ctx, audit.Requester{Account: sess.scope.AccountID, Region: sess.scope.Region,
		Operation: op.name, CertificateID: sess.certificateID, ClientID: sess.clientID})
	switch op.name {
	case "CreateKeysAndCertificate":
		// The request has no members; anything decodable, or nothing, will do.
		if len(payload) > 0 {
			var ignored map[string]any
			if err := decode(op.format, payload, &ignored); err != nil {
				return nil, err
			}
		}
		p, err := h.reg.CreateDeviceKeysAndCertificate(ctx, sess.scope)
		if err != nil {
			return nil, err
		}
		return createKeysAndCertificateAccepted{
			CertificateID:             p.Certificate.ID,
			CertificatePem:            pki.EncodeCertificate(p.Certificate.DER),
			PrivateKey:                p.PrivateKeyPEM,
			CertificateOwnershipToken: p.OwnershipToken,
		}, nil
	case "RegisterThing":
		var req registerThingRequest
		if err := decode(op.format, payload, &req); err != nil {
			return nil, err
		}
		r, err := h.reg.RegisterDevice(ctx, sess.scope, registry.DeviceRegistration{
			TemplateName: op.template, OwnershipToken: req.CertificateOwnershipToken, Parameters: req.Parameters,
			ClaimCertificateID: sess.certificateID, ClientID: sess.clientID,
		})
		if err != nil {
			return nil, err
		}
		return registerThingAccepted{DeviceConfiguration: r.DeviceConfiguration, ThingName: r.ThingName}, nil
	default: // CreateCertificateFromCsr
		var req createCertificateFromCsrRequest
		if err := decode(op.format, payload, &req); err != nil {
			return nil, err
		}
		if n := utf8.RuneCountInString(req.CertificateSigningRequest); n == 0 || n > maxCSRLength {
			return nil, apierr.New(apierr.InvalidRequest, "certificateSigningRequest must have 1 to %d characters.", maxCSRLength)
		}
		p, err := h.reg.CreateDeviceCertificateFromCSR(ctx, sess.scope, registry.DeviceCSR{
			CSRPEM: req.CertificateSigningRequest, PrincipalID: sess.certificateID, ClientID: sess.clientID,
		})
		if err != nil {
			return nil, err
		}
		return createCertificateFromCsrAccepted{
			CertificateOwnershipToken: p.OwnershipToken,
			CertificateID:             p.Certificate.ID,
			CertificatePem:            pki.EncodeCertificate(p.Certificate.DER),
		}, nil
	}
}

func decode(format string, payload []byte, v any) error {
	var err error
	if format == "cbor" {
		err = cbor.Unmarshal(payload, v)
	} else {
		err = json.Unmarshal(payload, v)
	}
	if err != nil {
		return apierr.New(apierr.InvalidRequest, "The payload is not a valid %s object.", format)
	}
	return nil
}

func encode(format string, v any) ([]byte, error) {
	if format == "cbor" {
		return cbor.Marshal(v)
	}
	return json.Marshal(v)
}

// rejection is the one place where errors become rejected replies: a bad
// ownership token is 400 InvalidCertificateOwnershipToken, as AWS answers;
// the device's other mistakes are 4xx by kind (rejectionOf; a certificate
// provider that refuses the CSR included); anything else 500 InternalError
// with a generic message, the details going to the log. An
// InternalFailure's message was written for the client (the registry's
// "the certificate provider did not sign"), so it is shown.
func rejection(err error) rejectedReply {
	if e, ok := apierr.As(err); ok && errors.Is(err, registry.ErrInvalidOwnershipToken) {
		return rejectedReply{StatusCode: http.StatusBadRequest, ErrorCode: "InvalidCertificateOwnershipToken", ErrorMessage: e.Message}
	}
	if e, ok := apierr.As(err); ok {
		if r, ok := rejectionOf[e.Kind]; ok && (r.StatusCode != http.StatusInternalServerError || e.Kind == apierr.InternalFailure) {
			r.ErrorMessage = e.Message
			return r
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return rejectedReply{StatusCode: http.StatusServiceUnavailable, ErrorCode: "ServiceUnavailable", ErrorMessage: "The service could not complete the request in time; retry later."}
	}
	if errors.Is(err, context.Canceled) {
		// The server is shutting down; another replica, or this one
		// restarted, will answer a retry.
		return rejectedReply{StatusCode: http.StatusServiceUnavailable, ErrorCode: "ServiceUnavailable", ErrorMessage: "The service is shutting down; retry later."}
	}
	return internalRejection
}

// rejectionOf is the MQTT rejection of each error kind: the device's
// mistakes are 400, a template that does not exist 404, a pre-provisioning
// hook's refusal 403, a full quota 429, an unavailable database 503. Kinds
// that no fleet-provisioning request can meet (authentication is the TLS
// handshake's) are the service's fault, 500, with a generic message, as
// anything that is not an apierr.Error. The test checks every kind is here.
var rejectionOf = map[apierr.Kind]rejectedReply{
	apierr.InvalidRequest:             {StatusCode: http.StatusBadRequest, ErrorCode: "InvalidRequest"},
	apierr.ResourceAlreadyExists:      {StatusCode: http.StatusBadRequest, ErrorCode: "InvalidRequest"},
	apierr.Throttling:                 {StatusCode: http.StatusTooManyRequests, ErrorCode: "Throttled"},
	apierr.ServiceUnavailable:         {StatusCode: http.StatusServiceUnavailable, ErrorCode: "ServiceUnavailable"},
	apierr.CertificateValidation:      internalRejection,
	apierr.RegistrationCodeValidation: internalRejection,
	apierr.Unauthorized:               internalRejection,
	apierr.ResourceNotFound:           {StatusCode: http.StatusNotFound, ErrorCode: "ResourceNotFound"},
	apierr.CertificateState:           {StatusCode: http.StatusBadRequest, ErrorCode: "InvalidRequest"},
	apierr.DeleteConflict:             internalRejection,
	apierr.CertificateConflict:        internalRejection,
	apierr.LimitExceeded:              internalRejection,
	apierr.InternalFailure:            internalRejection,
	apierr.UnknownOperation:           internalRejection,
	apierr.RequestEntityTooLarge:      internalRejection,
	apierr.MissingAuthenticationToken: internalRejection,
	apierr.UnrecognizedClient:         internalRejection,
	apierr.InvalidSignature:           internalRejection,
	apierr.IncompleteSignature:        internalRejection,
	apierr.AccessDenied:               {StatusCode: http.StatusForbidden, ErrorCode: "AccessDenied"},
	apierr.MalformedPolicy:            internalRejection,
	apierr.VersionsLimitExceeded:      internalRejection,
	apierr.VersionConflict:            internalRejection,
	// RegisterThing's: a template that cannot be applied, and one that
	// conflicts with what exists (AWS's codes for these are not published).
	apierr.ResourceRegistrationFailure: {StatusCode: http.StatusBadRequest, ErrorCode: "InvalidParameters"},
	apierr.ConflictingResourceUpdate:   {StatusCode: http.StatusBadRequest, ErrorCode: "ResourceConflict"},
}

var internalRejection = rejectedReply{StatusCode: http.StatusInternalServerError, ErrorCode: "InternalError", ErrorMessage: "An internal error occurred."}

// reply writes a message to the requesting connection only, if it subscribed
// to the topic, as AWS IoT delivers fleet-provisioning replies, at the QoS
// the subscription was granted (AWS's largest is 1). It reports whether the
// message was written.
func (h *hook) reply(cl *mqtt.Client, sess *session, topic string, payload []byte) bool {
	if !h.allowed(sess, policy.Receive, resourceTopic, topic) {
		return false // as any delivery the policies do not allow
	}
	full := inNamespace(sess.prefix, topic)
	sub, ok := h.broker.Topics.Subscribers(full).Subscriptions[cl.ID]
	if !ok {
		return false
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   full,
		Payload:     payload,
	}
	if cl.Closed() {
		return false
	}
	if sub.Qos > 0 {
		h.putInFlight(cl, sess, &pk)
	}
	return cl.WritePacket(pk) == nil
}

// replyOrigin marks the packets of fleet-provisioning replies (mochi keeps
// a packet's origin when it copies a session); no client ID is spelled so.
const replyOrigin = "$fleetca/reply"

// putInFlight makes pk a QoS 1 message, as the broker sends one: a packet
// ID, and a place among the connection's in-flight messages until the
// PUBACK. A reply never outlives its connection (OnDisconnect and
// OnSessionEstablish drop it); while the connection has as many messages
// in flight as it or the broker allows, or another connection is taking
// its session over, the reply goes at QoS 0 instead.
func (h *hook) putInFlight(cl *mqtt.Client, sess *session, pk *packets.Packet) {
	limit := maxInflight
	if m := int(cl.Properties.Props.ReceiveMaximum); cl.Properties.ProtocolVersion == 5 && m > 0 && m < limit {
		limit = m
	}
	sess.replies.Lock()
	defer sess.replies.Unlock()
	if sess.replies.superseded || cl.State.Inflight.Len() >= limit {
		return
	}
	id, err := cl.NextPacketID()
	if err != nil {
		return
	}
	pk.FixedHeader.Qos, pk.PacketID, pk.Origin = 1, uint16(id), replyOrigin
	pk.Created = time.Now().Unix()
	if cl.State.Inflight.Set(*pk) {
		cl.State.Inflight.DecreaseSendQuota()
		atomic.AddInt64(&h.broker.Info.Inflight, 1)
	}
}

// accountLimiter bounds each account's fleet-provisioning requests in each
// region, as AWS bounds them per account and region: one device cannot
// spend the CA for all.
type accountLimiter struct {
	rate     rate.Limit
	burst    int
	limiters sync.Map // iot.Scope -> *rate.Limiter
}

func newAccountLimiter(perSecond float64, burst int) *accountLimiter {
	return &accountLimiter{rate: rate.Limit(perSecond), burst: max(burst, 1)}
}

func (a *accountLimiter) allow(scope iot.Scope) bool {
	l, ok := a.limiters.Load(scope)
	if !ok {
		l, _ = a.limiters.LoadOrStore(scope, rate.NewLimiter(a.rate, a.burst))
	}
	return l.(*rate.Limiter).Allow()
}
