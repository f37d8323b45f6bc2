package mqttapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/iot"
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
}

func namespace(scope iot.Scope) string { return scope.AccountID + "/" + scope.Region + "/" }

// hook is fleetca's part of the broker.
type hook struct {
	mqtt.HookBase
	reg      *registry.Service
	log      *slog.Logger
	broker   *mqtt.Server
	observer Observer
	sessions sync.Map // *mqtt.Client -> *session
}

func (h *hook) ID() string { return "fleetca" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnDisconnect,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnPublish,
	}, []byte{b})
}

func (h *hook) session(cl *mqtt.Client) *session {
	if v, ok := h.sessions.Load(cl); ok {
		return v.(*session)
	}
	return nil
}

// OnConnect admits or refuses the device by its TLS certificate. A refused
// device is disconnected without a CONNACK, as AWS IoT closes the connection.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return packets.ErrNotAuthorized
	}
	state := tc.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return packets.ErrNotAuthorized
	}
	ctx, cancel := context.WithTimeout(context.Background(), admissionTimeout)
	defer cancel()
	adm, err := h.reg.AdmitDevice(ctx, state.PeerCertificates[0], state.ServerName)
	if err != nil {
		h.log.Error("mqtt admission failed", "client_id", cl.ID, "remote", cl.Net.Remote, "err", err)
		return packets.ErrServerUnavailable
	}
	if adm.Registered != nil {
		h.publishRegistered(adm.Registered)
	}
	if adm.Certificate == nil {
		h.log.Info("mqtt connection refused", "client_id", cl.ID, "remote", cl.Net.Remote, "reason", adm.Refusal,
			"certificate_id", iot.CertificateID(state.PeerCertificates[0].Raw))
		return packets.ErrNotAuthorized
	}
	sess := &session{
		scope:         adm.Certificate.Scope,
		certificateID: adm.Certificate.ID,
		clientID:      cl.ID,
		prefix:        namespace(adm.Certificate.Scope),
		serverName:    state.ServerName,
	}
	// Sessions are taken over by client ID: namespacing it keeps a device of
	// one account from taking over another account's session.
	cl.ID = sess.prefix + cl.ID
	// The will is published by the broker itself, past OnPacketRead: put its
	// topic in the namespace too, or a device could publish into another
	// account's topics by dropping its connection. A will on a reserved topic
	// is dropped, as a publish there would be refused.
	if will := &cl.Properties.Will; will.Flag == 1 {
		if strings.HasPrefix(will.TopicName, "$") {
			will.Flag = 0
		}
		will.TopicName = sess.prefix + will.TopicName
	}
	h.sessions.Store(cl, sess)
	h.log.Info("mqtt connected", "account", sess.scope.AccountID, "region", sess.scope.Region,
		"client_id", sess.clientID, "certificate_id", sess.certificateID, "sni", sess.serverName)
	return nil
}

// OnConnectAuthenticate lets through what OnConnect admitted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.session(cl) != nil
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.sessions.Delete(cl)
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
		CertificateRegistrationTimestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	topic := namespace(r.Scope) + "$aws/events/certificates/registered/" + r.CACertificateID
	if err := h.broker.Publish(topic, payload, false, 1); err != nil {
		h.log.Warn("publishing a registration event", "err", err)
	}
	h.log.Info("mqtt just-in-time registration", "account", r.Scope.AccountID, "certificate_id", r.CertificateID, "ca_certificate_id", r.CACertificateID)
}

// OnPacketRead puts the device's topics in its account's namespace.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	sess := h.session(cl)
	if sess == nil {
		return pk, nil
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		// An empty topic name is a topic alias, which the broker resolves
		// to the namespaced name it recorded.
		if pk.TopicName != "" {
			pk.TopicName = sess.prefix + pk.TopicName
		}
	case packets.Subscribe, packets.Unsubscribe:
		for i := range pk.Filters {
			pk.Filters[i].Filter = namespaceFilter(sess.prefix, pk.Filters[i].Filter)
		}
	}
	return pk, nil
}

// namespaceFilter prefixes a filter, keeping a shared subscription's group.
func namespaceFilter(prefix, filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if group, f, ok := strings.Cut(rest, "/"); ok {
			return "$share/" + group + "/" + prefix + f
		}
	}
	return prefix + filter
}

// OnPacketEncode takes the namespace off topics sent to the device.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish {
		return pk
	}
	if sess := h.session(cl); sess != nil {
		pk.TopicName = strings.TrimPrefix(pk.TopicName, sess.prefix)
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
	if sess == nil {
		return false
	}
	t := strings.TrimPrefix(topic, sess.prefix)
	if rest, ok := strings.CutPrefix(t, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			t = strings.TrimPrefix(f, sess.prefix)
		}
	}
	if !strings.HasPrefix(t, "$") {
		return true
	}
	if write {
		_, ok := requestTopics[t]
		return ok
	}
	return strings.HasPrefix(t, "$aws/certificates/create/") || strings.HasPrefix(t, "$aws/certificates/create-from-csr/") ||
		strings.HasPrefix(t, "$aws/events/")
}

// OnPublish serves the fleet-provisioning request topics; everything else is
// routed by the broker within the publisher's namespace.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	sess := h.session(cl)
	if sess == nil {
		return pk, nil
	}
	pk.FixedHeader.Retain = false
	req, ok := requestTopics[strings.TrimPrefix(pk.TopicName, sess.prefix)]
	if !ok {
		return pk, nil
	}
	h.serve(cl, sess, req, pk.Payload)
	// Acknowledged, but routed to no one.
	return pk, packets.CodeSuccessIgnore
}
