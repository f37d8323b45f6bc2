package mqttapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// admissionTimeout bounds the registry's verdict on a connecting device.
const admissionTimeout = 5 * time.Second

// session is what fleetca knows of a connected device.
type session struct {
	scope         iot.Scope
	certificateID string
	// clientID is the client ID the device sent; the broker knows it by
	// prefix+clientID.
	clientID string
	// prefix namespaces the device's topics and client ID by account and
	// region, so that accounts sharing the broker never see each other.
	prefix     string
	serverName string
	// caID is the registered CA the certificate was admitted under, if any.
	caID string
	// seen is the change feed follower's position before the session's
	// admission was decided (track).
	seen int64
	// arnPrefix begins the ARNs of the session's resources:
	// arn:aws:iot:<region>:<account>:.
	arnPrefix string
	// grant is what the session may do; nil until read.
	grant atomic.Pointer[grant]
	// subscribing holds, while a SUBSCRIBE is processed, the filters its
	// policies allowed, so that the broker's check of each filter (which
	// shares OnACLCheck with deliveries) is told apart from a delivery
	// (isFilterCheck).
	subscribing atomic.Pointer[[]string]
	// replies guards the fleet-provisioning replies put in flight to the
	// session's connection: once another connection takes the session
	// over (superseded), no reply is put in flight, so that none is handed
	// to the connection taking over.
	replies struct {
		sync.Mutex
		superseded bool
	}
	// lapse, for an admission that expires by itself (a provisioning
	// claim's), has the session checked again when it does.
	lapse atomic.Pointer[time.Timer]
}

func namespace(scope iot.Scope) string { return scope.AccountID + "/" + scope.Region + "/" }

// inNamespace is the broker's name for a device's topic or filter. Reserved
// topics ($aws/...) go under "$" + prefix, apart from the account's other
// topics, so that a filter starting with a wildcard, namespaced as
// prefix + "#", cannot match them: MQTT keeps wildcards in the first level
// from matching topics that start with $, and the namespace would otherwise
// hide the $.
func inNamespace(prefix, topic string) string {
	if strings.HasPrefix(topic, "$") {
		return "$" + prefix + topic
	}
	return prefix + topic
}

// outOfNamespace is the device's name for a broker topic of its namespace.
func outOfNamespace(prefix, topic string) string {
	if t, ok := strings.CutPrefix(topic, "$"+prefix); ok {
		return t
	}
	return strings.TrimPrefix(topic, prefix)
}

// hook is fleetca's part of the broker.
type hook struct {
	mqtt.HookBase
	// ctx is the server's lifetime context.
	ctx      context.Context
	reg      Registry
	log      *slog.Logger
	broker   *mqtt.Server
	observer Observer
	// sessions holds connected clients and those whose persistent session
	// outlives their connection, so that messages queued for them pass the
	// topic rules and reach them when they come back.
	sessions sync.Map // *mqtt.Client -> *session
	// clients finds a session's current client by its namespaced client ID,
	// so that a client whose session was taken over is forgotten.
	clients sync.Map // string -> *mqtt.Client
	// limiter bounds each account's fleet-provisioning requests.
	limiter *accountLimiter
	// byCertificate bounds the sessions of one certificate (offline.go).
	byCertificate certificateSessions
	// skipPolicies turns policy enforcement off (a development switch).
	skipPolicies bool
	// deps finds the sessions a change affects (authorize.go), and feed
	// follows the change feed (changes.go).
	deps dependents
	feed *follower
}

func (h *hook) ID() string { return "fleetca" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect,
		mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnClientExpired, mqtt.OnSubscribe, mqtt.OnSubscribed,
		mqtt.OnWill,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnPublish,
	}, []byte{b})
}

func (h *hook) session(cl *mqtt.Client) *session {
	if v, ok := h.sessions.Load(cl); ok {
		return v.(*session)
	}
	return nil
}

// lapseMargin is how long after an admission's expiry its session is
// checked again, so that the registry's clock has passed it too.
const lapseMargin = 100 * time.Millisecond

// OnConnect admits or refuses the device by its TLS certificate. A refused
// device is disconnected without a CONNACK, as AWS IoT closes the connection.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return packets.ErrNotAuthorized
	}
	// Whatever the verdict, the connection's unauthenticated work is done.
	defer admitted(tc)
	if len(cl.ID) > maxClientIDBytes {
		h.log.Info("mqtt connection refused", "remote", cl.Net.Remote, "reason", "client ID longer than 128 bytes")
		h.observeAdmission("invalid_client_id", "")
		return packets.ErrClientIdentifierNotValid
	}
	state := tc.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return packets.ErrNotAuthorized
	}
	ctx, cancel := context.WithTimeout(h.ctx, admissionTimeout)
	defer cancel()
	// Read first: a change applied from here on may have been missed by
	// the reads below, and is applied again once the session is indexed.
	seen := h.feed.position()
	adm, err := h.reg.AdmitDevice(ctx, state.PeerCertificates[0], state.ServerName)
	if err != nil {
		h.log.Error("mqtt admission failed", "client_id", cl.ID, "remote", cl.Net.Remote, "err", err)
		h.observeAdmission("error", "")
		return packets.ErrServerUnavailable
	}
	if adm.Registered != nil {
		h.publishRegistered(adm.Registered)
	}
	if adm.Certificate == nil {
		h.log.Info("mqtt connection refused", "client_id", cl.ID, "remote", cl.Net.Remote, "reason", adm.Refusal,
			"certificate_id", iot.CertificateID(state.PeerCertificates[0].Raw))
		h.observeAdmission("refused", adm.Refusal)
		return packets.ErrNotAuthorized
	}
	scope := adm.Certificate.Scope
	sess := &session{
		scope:         scope,
		certificateID: adm.Certificate.ID,
		clientID:      cl.ID,
		prefix:        namespace(scope),
		serverName:    state.ServerName,
		caID:          adm.Certificate.CACertificateID,
		seen:          seen,
		arnPrefix:     "arn:" + iot.Partition + ":iot:" + scope.Region + ":" + scope.AccountID + ":",
	}
	conn := newConnInfo(cl.ID, state.ServerName, cl.Net.Remote, state.PeerCertificates[0])
	if cl.Properties.Will.Flag == 1 {
		conn.willTopic = cl.Properties.Will.TopicName
	}
	if !h.skipPolicies {
		grants, err := h.reg.ConnectionGrants(ctx, scope, sess.certificateID, sess.clientID)
		if err != nil {
			h.log.Error("mqtt admission failed: reading the certificate's policies", "client_id", cl.ID, "remote", cl.Net.Remote, "err", err)
			h.observeAdmission("error", "")
			return packets.ErrServerUnavailable
		}
		h.logUnparsable(sess, grants)
		sess.grant.Store(newGrant(conn, grants, seen))
		if !h.allowed(sess, policy.Connect, resourceClient, sess.clientID) {
			h.log.Info("mqtt connection refused", "account", scope.AccountID, "client_id", cl.ID, "remote", cl.Net.Remote,
				"reason", "no policy of the certificate allows iot:Connect on client/"+sess.clientID, "certificate_id", sess.certificateID)
			h.observeAdmission("refused", "policy")
			// As AWS answers: CONNACK not authorized (0x87; 0x05 in
			// MQTT 3.1.1), then the connection closes.
			code := packets.ErrNotAuthorized
			if cl.Properties.ProtocolVersion < 5 {
				code = packets.Err3NotAuthorized // mochi maps no 0x87 to 3.1.1
			}
			_ = h.broker.SendConnack(cl, code, false, nil)
			return packets.ErrNotAuthorized
		}
	}
	// Sessions are taken over by client ID: namespacing it keeps a device of
	// one account from taking over another account's session.
	cl.ID = sess.prefix + cl.ID
	if k := clampKeepalive(cl.State.Keepalive); k != cl.State.Keepalive {
		// MQTT 5 devices are told in the CONNACK; 3.1.1 devices are held
		// to it all the same, as AWS holds them.
		cl.State.Keepalive, cl.State.ServerKeepalive = k, true
	}
	// The will is published by the broker itself, past OnPacketRead: put its
	// topic in the namespace too, or a device could publish into another
	// account's topics by dropping its connection. A will on a reserved topic
	// is dropped, as a publish there would be refused.
	if will := &cl.Properties.Will; will.Flag == 1 {
		if strings.HasPrefix(will.TopicName, "$") || topicProblem(will.TopicName) != "" {
			will.Flag = 0
		}
		will.TopicName = inNamespace(sess.prefix, will.TopicName)
	}
	h.sessions.Store(cl, sess)
	h.track(cl, sess)
	if !adm.ExpiresAt.IsZero() {
		// Armed once the session can be found: a claim that expired
		// while it was admitted has the timer fire at once.
		sess.lapse.Store(time.AfterFunc(time.Until(adm.ExpiresAt)+lapseMargin, func() { h.feed.recheckLater(cl) }))
	}
	h.observeAdmission("admitted", "")
	h.log.Info("mqtt connected", "account", sess.scope.AccountID, "region", sess.scope.Region,
		"client_id", sess.clientID, "certificate_id", sess.certificateID, "sni", sess.serverName)
	return nil
}

func (h *hook) observeAdmission(outcome, reason string) {
	if h.observer != nil {
		h.observer.ObserveAdmission(outcome, reason)
	}
}

// OnConnectAuthenticate lets through what OnConnect admitted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.session(cl) != nil
}

// evict disconnects a device that would no longer be admitted (its
// certificate or its CA no longer ACTIVE) and drops its session: a
// persistent session of a device that may not come back is of no use,
// nor what is queued for it, unless another connection has taken its
// client ID over meanwhile.
func (h *hook) evict(cl *mqtt.Client, sess *session) {
	h.log.Info("mqtt disconnect: certificate or its CA no longer ACTIVE", "account", sess.scope.AccountID, "certificate_id", sess.certificateID, "client_id", sess.clientID)
	h.broker.DisconnectClient(cl, packets.ErrNotAuthorized)
	cl.Stop(errNoLongerAdmitted)
	h.expire(cl)
}

var errNoLongerAdmitted = errors.New("certificate or its CA no longer ACTIVE")

// OnSessionEstablish, called before the broker hands a persistent
// session's queued messages to the device taking it over, drops those the
// new session's grant does not let it receive: they were checked against
// the grant in force when they were queued, which may have changed since,
// or belong to another certificate's session of the same client ID.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	sess := h.session(cl)
	if sess == nil {
		return
	}
	existing, ok := h.broker.Clients.Get(cl.ID)
	if !ok || existing == cl {
		return
	}
	// Replies to the connection being taken over are its own: a
	// CreateKeysAndCertificate reply holds a private key, and a device
	// sharing the claim certificate may take over the session.
	if old := h.session(existing); old != nil {
		old.replies.Lock()
		old.replies.superseded = true
		dropReplies(h.broker, existing)
		old.replies.Unlock()
	} else {
		dropReplies(h.broker, existing)
	}
	if h.skipPolicies {
		return
	}
	dropped := 0
	for _, queued := range existing.State.Inflight.GetAll(false) {
		if queued.FixedHeader.Type != packets.Publish {
			continue
		}
		if !h.allowed(sess, policy.Receive, resourceTopic, outOfNamespace(sess.prefix, queued.TopicName)) &&
			existing.State.Inflight.Delete(queued.PacketID) {
			atomic.AddInt64(&h.broker.Info.Inflight, -1)
			dropped++
		}
	}
	if dropped > 0 {
		h.log.Info("mqtt queued messages dropped: the resuming session may not receive them", "account", sess.scope.AccountID,
			"client_id", sess.clientID, "certificate_id", sess.certificateID, "dropped", dropped)
	}
}

// OnWill sends a will its device's policies do not let it publish (now,
// when the device is gone, not when it connected) to a topic no one can
// subscribe to: mochi has no way to drop it.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	sess := h.session(cl)
	if sess == nil || !h.allowed(sess, policy.Publish, resourceTopic, outOfNamespace(sess.prefix, will.TopicName)) {
		if sess != nil {
			h.log.Info("mqtt will dropped: no policy allows iot:Publish on its topic", "account", sess.scope.AccountID, "client_id", sess.clientID)
		}
		will.TopicName = deniedFilter
	}
	return will, nil
}

// OnSessionEstablished records the client as its session's current one and
// forgets a client whose session it took over.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		// A third connection with the same client ID took this one's
		// session over before it was established.
		h.forget(cl)
		return
	}
	old, loaded := h.clients.Swap(cl.ID, cl)
	if loaded && old != cl && old.(*mqtt.Client).IsTakenOver() {
		h.forgetSession(old.(*mqtt.Client))
	}
	sess := h.session(cl)
	if sess == nil {
		return
	}
	for _, stale := range h.byCertificate.add(certificateKey(sess), cl) {
		h.log.Info("mqtt session expired: the certificate has too many sessions", "account", sess.scope.AccountID,
			"certificate_id", sess.certificateID, "client_id", stale.ID)
		h.expire(stale)
	}
	if h.session(cl) == nil || cl.IsTakenOver() {
		// Forgotten (by the sweep) or taken over meanwhile: undo.
		h.forget(cl)
	}
}

// expire ends an offline session before its time: its subscriptions, its
// queued messages and fleetca's record of it.
func (h *hook) expire(cl *mqtt.Client) {
	h.broker.UnsubscribeClient(cl)
	cl.ClearInflights()
	if cur, ok := h.broker.Clients.Get(cl.ID); ok && cur == cl {
		h.broker.Clients.Delete(cl.ID)
	}
	h.forget(cl)
}

// OnDisconnect forgets a client whose session ends with its connection; a
// persistent session is kept until it expires, with at most
// maxOfflineQueueBytes of what was in flight.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if expire {
		h.forget(cl)
		return
	}
	dropReplies(h.broker, cl)
	trimInflight(h.broker, cl, maxOfflineQueueBytes)
}

// dropReplies removes the fleet-provisioning replies still in flight to a
// connection that ended or is taken over: a reply is for the connection
// that asked (it may hold a private key), never for whoever resumes its
// session with the same client ID.
func dropReplies(b *mqtt.Server, cl *mqtt.Client) {
	for _, pk := range cl.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type == packets.Publish && pk.Origin == replyOrigin && cl.State.Inflight.Delete(pk.PacketID) {
			cl.State.Inflight.IncreaseSendQuota()
			atomic.AddInt64(&b.Info.Inflight, -1)
		}
	}
}

// OnClientExpired forgets a persistent session that expired, and its
// subscriptions, which the broker would otherwise keep.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	h.broker.UnsubscribeClient(cl)
	h.forget(cl)
}

func (h *hook) forget(cl *mqtt.Client) {
	h.forgetSession(cl)
	h.clients.CompareAndDelete(cl.ID, cl)
}

// forgetSession drops fleetca's record of cl's session.
func (h *hook) forgetSession(cl *mqtt.Client) {
	if v, ok := h.sessions.LoadAndDelete(cl); ok {
		if t := v.(*session).lapse.Load(); t != nil {
			t.Stop()
		}
	}
	h.byCertificate.remove(cl)
	h.deps.remove(cl)
}

// dead reports whether fleetca's record of cl outlived its session: taken
// over, or closed and no longer the broker's client of its ID (a take-over
// whose CONNACK failed leaves both). The sweep forgets such records.
func (h *hook) dead(cl *mqtt.Client) bool {
	if cl.IsTakenOver() {
		return true
	}
	cur, ok := h.broker.Clients.Get(cl.ID)
	return cl.Closed() && (!ok || cur != cl)
}

// registeredEvent is the payload AWS IoT publishes on a just-in-time
// registration.
type registeredEvent struct {
	CertificateID                    string `json:"certificateId"`
	CACertificateID                  string `json:"caCertificateId"`
	Timestamp                        int64  `json:"timestamp"`
	CertificateStatus                string `json:"certificateStatus"`
	AWSAccountID                     string `json:"awsAccountId"`
	CertificateRegistrationTimestamp string `json:"certificateRegistrationTimestamp"`
}

// publishRegistered publishes a just-in-time registration to the CA's
// account only.
func (h *hook) publishRegistered(r *registry.JITRegistration) {
	payload, _ := json.Marshal(registeredEvent{
		CertificateID:                    r.CertificateID,
		CACertificateID:                  r.CACertificateID,
		Timestamp:                        time.Now().UnixMilli(),
		CertificateStatus:                string(iot.StatusPendingActivation),
		AWSAccountID:                     r.Scope.AccountID,
		CertificateRegistrationTimestamp: r.RegisteredAt.UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	topic := inNamespace(namespace(r.Scope), "$aws/events/certificates/registered/"+r.CACertificateID)
	if err := h.broker.Publish(topic, payload, false, 1); err != nil {
		h.log.Warn("publishing a registration event", "err", err)
	}
	h.log.Info("mqtt just-in-time registration", "account", r.Scope.AccountID, "certificate_id", r.CertificateID, "ca_certificate_id", r.CACertificateID)
}

// OnPacketRead applies AWS's topic limits and puts the device's topics in
// its account's namespace. A publish to a topic beyond the limits ends the
// connection; a filter beyond them is refused in the SUBACK.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	sess := h.session(cl)
	if sess == nil {
		return pk, nil
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if pk.FixedHeader.Qos > 1 {
			// AWS IoT has no QoS 2, and the broker would answer a QoS 2
			// publish with the PUBACK of QoS 1, which the device does not
			// expect: end the connection, as MQTT 5 has a server without
			// QoS 2 do.
			h.log.Info("mqtt disconnect: QoS 2 publish", "account", sess.scope.AccountID, "client_id", sess.clientID)
			if cl.Properties.ProtocolVersion >= 5 {
				h.broker.DisconnectClient(cl, packets.ErrQosNotSupported)
			}
			return pk, packets.ErrRejectPacket
		}
		// An empty topic name is a topic alias, which the broker resolves
		// to the namespaced name it recorded.
		if pk.TopicName != "" {
			if p := topicProblem(pk.TopicName); p != "" {
				h.log.Info("mqtt disconnect: publish to a topic "+p, "account", sess.scope.AccountID, "client_id", sess.clientID)
				// The broker closes a connection whose packet a hook rejects.
				return pk, packets.ErrRejectPacket
			}
			pk.TopicName = inNamespace(sess.prefix, pk.TopicName)
		}
	case packets.Subscribe:
		for i := range pk.Filters {
			if filterProblem(pk.Filters[i].Filter) != "" {
				pk.Filters[i].Filter = invalidFilter
				continue
			}
			pk.Filters[i].Filter = namespaceFilter(sess.prefix, pk.Filters[i].Filter)
		}
	case packets.Unsubscribe:
		for i := range pk.Filters {
			pk.Filters[i].Filter = namespaceFilter(sess.prefix, pk.Filters[i].Filter)
		}
	}
	return pk, nil
}

// OnSubscribe refuses the filters the device's policies do not allow
// (iot:Subscribe on topicfilter/<filter>; MQTT 3.1.1 connections are
// closed, as AWS closes them) and those that would take the client past
// maxSubscriptions, and marks the rest for OnACLCheck (isFilterCheck).
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	sess := h.session(cl)
	n := cl.State.Subscriptions.Len()
	allowed := make([]string, 0, len(pk.Filters))
	denied := false
	for i, f := range pk.Filters {
		if f.Filter == invalidFilter {
			continue
		}
		if sess != nil && !h.allowed(sess, policy.Subscribe, resourceTopicFilter, deviceFilter(sess.prefix, f.Filter)) {
			pk.Filters[i].Filter = deniedFilter
			denied = true
			continue
		}
		// A copy of its own, so that isFilterCheck knows the broker's
		// check of this filter by the string it is given.
		pk.Filters[i].Filter = strings.Clone(f.Filter)
		allowed = append(allowed, pk.Filters[i].Filter)
		if _, ok := cl.State.Subscriptions.Get(f.Filter); ok {
			continue
		}
		if n >= maxSubscriptions {
			pk.Filters[i].Filter = invalidFilter
			continue
		}
		n++
	}
	if sess == nil {
		return pk
	}
	if denied {
		h.log.Info("mqtt subscribe denied: no policy allows iot:Subscribe on a filter", "account", sess.scope.AccountID, "client_id", sess.clientID)
		if cl.Properties.ProtocolVersion < 5 {
			// AWS closes an MQTT 3.1.1 connection that subscribes
			// where its policies do not allow it.
			cl.Stop(errNotAllowed)
		}
	}
	sess.subscribing.Store(&allowed)
	return pk
}

// OnSubscribed ends the SUBSCRIBE that OnSubscribe began.
func (h *hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if sess := h.session(cl); sess != nil {
		sess.subscribing.Store(nil)
	}
}

// deviceFilter is the device's name of a namespaced filter, with a shared
// subscription's group, as its policies name it
// (topicfilter/$share/<group>/<filter>).
func deviceFilter(prefix, filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if group, f, ok := strings.Cut(rest, "/"); ok {
			return "$share/" + group + "/" + outOfNamespace(prefix, f)
		}
	}
	return outOfNamespace(prefix, filter)
}

// namespaceFilter prefixes a filter, keeping a shared subscription's group.
func namespaceFilter(prefix, filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if group, f, ok := strings.Cut(rest, "/"); ok {
			return "$share/" + group + "/" + inNamespace(prefix, f)
		}
	}
	return inNamespace(prefix, filter)
}

// OnPacketEncode takes the namespace off topics sent to the device.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish {
		return pk
	}
	if sess := h.session(cl); sess != nil {
		pk.TopicName = outOfNamespace(sess.prefix, pk.TopicName)
	}
	return pk
}

// OnACLCheck applies the topic rules: devices may publish on the
// fleet-provisioning request topics but on no other reserved $aws/ topic, and
// may subscribe to the fleet-provisioning reply topics and to events but to
// no other reserved topic. Replies are written to the requesting connection
// only, so subscribing to a reply topic never shows another device's reply.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	sess := h.session(cl)
	if sess == nil || topic == deniedFilter {
		return false
	}
	t := outOfNamespace(sess.prefix, topic)
	if rest, ok := strings.CutPrefix(t, "$share/"); ok && !write {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			t = outOfNamespace(sess.prefix, f)
		}
	}
	if !write && cl.Closed() && queuedBytes(cl) >= maxOfflineQueueBytes {
		// Delivery to an offline session whose queue is full.
		return false
	}
	if strings.HasPrefix(t, "$") {
		if write {
			_, ok := requestOperation(t)
			return ok
		}
		if !strings.HasPrefix(t, "$aws/certificates/create/") && !strings.HasPrefix(t, "$aws/certificates/create-from-csr/") &&
			!strings.HasPrefix(t, templatesPrefix) && !strings.HasPrefix(t, "$aws/events/") {
			return false
		}
	}
	if write {
		// Publishes are checked against the policies in OnPublish, after
		// the broker has resolved topic aliases.
		return true
	}
	if sess.isFilterCheck(topic) {
		return true // a filter of the SUBSCRIBE, allowed in OnSubscribe
	}
	// A delivery.
	return h.allowed(sess, policy.Receive, resourceTopic, t)
}

// isFilterCheck reports whether the broker, asking OnACLCheck about topic
// for reading, is checking a filter of the SUBSCRIBE being processed,
// rather than a delivery: mochi asks the same question for both, and a
// filter without wildcards is spelled like the topic it names. OnSubscribe
// gave each filter it allowed a string of its own, which mochi passes on
// as it is; a delivery's topic is always another string (it comes from the
// publisher's packet), so comparing the strings' storage, not their bytes,
// tells the two apart, even for a device that unsubscribes and subscribes
// again while a publisher delivers to it. Were mochi to copy the filter,
// the check would be taken for a delivery and need iot:Receive: denied,
// never leaked.
func (sess *session) isFilterCheck(topic string) bool {
	filters := sess.subscribing.Load()
	if filters == nil {
		return false
	}
	for _, f := range *filters {
		if len(f) == len(topic) && unsafe.StringData(f) == unsafe.StringData(topic) {
			return true
		}
	}
	return false
}

// OnPublish serves the fleet-provisioning request topics; everything else is
// routed by the broker within the publisher's namespace.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	sess := h.session(cl)
	if sess == nil {
		return pk, nil
	}
	t := outOfNamespace(sess.prefix, pk.TopicName)
	if !h.allowed(sess, policy.Publish, resourceTopic, t) ||
		pk.FixedHeader.Retain && !h.allowed(sess, policy.RetainPublish, resourceTopic, t) {
		return pk, h.publishDenied(cl, sess, pk)
	}
	pk.FixedHeader.Retain = false
	req, ok := requestOperation(t)
	if !ok {
		return pk, nil
	}
	h.serve(cl, sess, req, pk.Payload)
	// Acknowledged, but routed to no one.
	return pk, packets.CodeSuccessIgnore
}

// deniedFilter replaces a filter the policies do not allow, so that the
// broker's check refuses it with "not authorized" (0x87; 0x80 in MQTT
// 3.1.1). No namespaced filter can be it.
const deniedFilter = "$fleetca/denied"

var errNotAllowed = errors.New("not allowed by the certificate's policies")

// publishDenied answers a publish the policies do not allow as AWS does: an
// MQTT 3.1.1 connection is closed; an MQTT 5 QoS 1 publish gets PUBACK 0x87
// and a QoS 0 one is dropped.
func (h *hook) publishDenied(cl *mqtt.Client, sess *session, pk packets.Packet) error {
	if cl.Properties.ProtocolVersion < 5 {
		h.log.Info("mqtt disconnect: no policy allows the publish", "account", sess.scope.AccountID, "client_id", sess.clientID)
		cl.Stop(errNotAllowed)
		return packets.ErrRejectPacket
	}
	if pk.FixedHeader.Qos > 0 {
		return packets.ErrNotAuthorized
	}
	return packets.ErrRejectPacket
}

func (h *hook) logUnparsable(sess *session, g *registry.Grants) {
	for _, name := range g.Unparsable {
		h.log.Error("a stored policy document no longer parses; it grants nothing", "account", sess.scope.AccountID, "policy", name)
	}
}
