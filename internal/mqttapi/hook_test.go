package mqttapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/registry"
)

var (
	scope1 = iot.Scope{AccountID: "123456789012", Region: "us-east-1"}
	scope2 = iot.Scope{AccountID: "210987654321", Region: "us-east-1"}
)

const prefix1 = "123456789012/us-east-1/"

// The fleet-provisioning topics, as a device names them.
const (
	keysJSON = "$aws/certificates/create/json"
	keysCBOR = "$aws/certificates/create/cbor"
	csrJSON  = "$aws/certificates/create-from-csr/json"
	csrCBOR  = "$aws/certificates/create-from-csr/cbor"
)

var requestTopicList = []string{keysJSON, keysCBOR, csrJSON, csrCBOR}

// replyFilters are the reply topics of every request topic.
func replyFilters() []string {
	var out []string
	for _, t := range requestTopicList {
		out = append(out, t+"/accepted", t+"/rejected")
	}
	return out
}

const csrPEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBnot-parsed-by-the-fake\n-----END CERTIFICATE REQUEST-----\n"

// connectOne connects a device over the pipe and fails the test unless the
// fake admits it.
func connectOne(t *testing.T, s *Server, clientID string, cert tls.Certificate) *pipeDevice {
	t.Helper()
	d, err := connectPipe(t, s, clientID, cert, "localhost")
	if err != nil {
		t.Fatalf("connecting %s: %v", clientID, err)
	}
	return d
}

// TestACLCheck: devices publish on $aws/ only to the fleet-provisioning
// request topics and subscribe on $aws/ only to the provisioning replies
// and events; the rest of $ is refused, and an account's own topics are
// free. The broker asks with namespaced names, as OnPacketRead made them.
func TestACLCheck(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"dev": scope1})}
	s, _ := newTestServer(t, Options{Registry: fake})
	d := connectOne(t, s, "thing-1", p.device(t, "dev"))

	for _, tc := range []struct {
		topic string
		write bool
		want  bool
	}{
		{"telemetry/thing-1", true, true},
		{"a", true, true},
		{keysJSON, true, true},
		{keysCBOR, true, true},
		{csrJSON, true, true},
		{csrCBOR, true, true},
		{"$aws/certificates/create/xml", true, false},
		{"$aws/certificates/create", true, false},
		{keysJSON + "/accepted", true, false},
		{csrCBOR + "/rejected", true, false},
		{"$aws/events/presence/connected/thing-1", true, false},
		{"$aws/things/thing-1/shadow/update", true, false},
		{"$aws/provisioning-templates/tmpl/provision/json", true, true},
		{"$aws/provisioning-templates/tmpl/provision/cbor", true, true},
		{"$aws/provisioning-templates/tmpl/provision/xml", true, false},
		{"$aws/provisioning-templates/bad.name/provision/json", true, false},
		{"$aws/provisioning-templates/tmpl/provision/json/accepted", true, false},
		{"$aws/provisioning-templates/tmpl/json", true, false},
		{"$aws/rules/rule", true, false},
		{"$SYS/broker/clients", true, false},
		{"$", true, false},

		{"telemetry/#", false, true},
		{"#", false, true},
		{"+/status", false, true},
		{keysJSON + "/accepted", false, true},
		{keysJSON + "/rejected", false, true},
		{keysCBOR + "/accepted", false, true},
		{keysCBOR + "/rejected", false, true},
		{csrJSON + "/accepted", false, true},
		{csrJSON + "/rejected", false, true},
		{csrCBOR + "/accepted", false, true},
		{csrCBOR + "/rejected", false, true},
		{csrJSON + "/+", false, true},
		// Any filter under the request bases passes, the request topics
		// themselves included, on which nothing is ever routed (OnPublish
		// ignores requests): see TestRequestsAreRoutedToNoOne.
		{keysJSON, false, true},
		{"$aws/certificates/create/#", false, true},
		{"$aws/events/certificates/registered/ca-1", false, true},
		{"$aws/events/#", false, true},
		{"$aws/things/thing-1/shadow/update/accepted", false, false},
		{"$aws/provisioning-templates/tmpl/provision/json/accepted", false, true},
		{"$aws/provisioning-templates/+/provision/+/rejected", false, true},
		{"$aws/certificates/#", false, false},
		{"$aws/certificates/+/json/accepted", false, false},
		{"$aws/#", false, false},
		{"$SYS/#", false, false},
		{"$share/group/telemetry/#", false, true},
		{"$share/group/$aws/events/#", false, true},
		{"$share/group/$aws/things/thing-1/shadow/get/accepted", false, false},
	} {
		name := namespaceFilter(prefix1, tc.topic)
		if tc.write {
			name = inNamespace(prefix1, tc.topic)
		}
		if got := s.hook.OnACLCheck(d.cl, name, tc.write); got != tc.want {
			t.Errorf("OnACLCheck(%q, write %v) = %v, want %v", name, tc.write, got, tc.want)
		}
	}

	// A client fleetca has no session for (one it never admitted) may do
	// nothing.
	stranger := s.broker.NewClient(nil, "pipe", "stranger", false)
	for _, write := range []bool{true, false} {
		if s.hook.OnACLCheck(stranger, "telemetry", write) {
			t.Errorf("OnACLCheck of a client without a session, write %v = true", write)
		}
	}

	// Through the broker the refusals are SUBACK failures (0x80 in 3.1.1),
	// whether OnACLCheck refused the filter or OnPacketRead replaced it.
	codes := d.subscribe(t,
		csrJSON+"/accepted",
		"$aws/things/thing-1/shadow/get/accepted",
		"$share//#",
		strings.Repeat("x", maxTopicBytes+1),
		"a/b/c/d/e/f/g/h/i",
		"a/b/c/d/e/f/g/h",
		strings.Repeat("x", maxTopicBytes),
		"#",
		"$SYS/#",
	)
	if want := []byte{1, 0x80, 0x80, 0x80, 0x80, 1, 1, 1, 0x80}; !bytes.Equal(codes, want) {
		t.Errorf("SUBACK codes %#v, want %#v", codes, want)
	}

	// A QoS 0 publish to a reserved topic is dropped; at QoS 1 the 3.1.1
	// device is disconnected, as it cannot be told in a PUBACK.
	if err := d.publish("$aws/things/thing-1/shadow/update", []byte("{}")); err != nil {
		t.Fatalf("QoS 0 publish to a refused topic: %v", err)
	}
	d.quiet(t)
	err := d.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 99,
		TopicName: "$aws/things/thing-1/shadow/update", Payload: []byte("{}")})
	if err != packets.ErrNotAuthorized {
		t.Errorf("QoS 1 publish to a refused topic: %v, want %v", err, packets.ErrNotAuthorized)
	}
	d.closed(t)
	if !d.cl.Closed() {
		t.Error("the device is still connected after a QoS 1 publish to a refused topic")
	}
}

// TestACLCheckOfflineQueue: nothing more is queued for an offline session
// that holds maxOfflineQueueBytes already.
func TestACLCheckOfflineQueue(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"dev": scope1})}
	s, _ := newTestServer(t, Options{Registry: fake})
	d := connectOne(t, s, "thing-1", p.device(t, "dev"))
	d.cl.State.Inflight.Set(packets.Packet{PacketID: 1, Payload: make([]byte, maxOfflineQueueBytes)})
	if !s.hook.OnACLCheck(d.cl, prefix1+"t", false) {
		t.Fatal("a connected device with a full queue is refused a delivery")
	}
	d.cl.Stop(nil)
	if s.hook.OnACLCheck(d.cl, prefix1+"t", false) {
		t.Error("a delivery to an offline session with a full queue is allowed")
	}
	if !s.hook.OnACLCheck(d.cl, prefix1+"t", true) {
		t.Error("a full offline queue refuses writes too")
	}
}

// TestPacketRead: OnPacketRead puts publishes and filters in the device's
// namespace, reserved topics under "$<account>/<region>/", and ends the
// connection on a publish beyond AWS's topic limits or at QoS 2.
func TestPacketRead(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"dev": scope1})}
	s, _ := newTestServer(t, Options{Registry: fake})
	d := connectOne(t, s, "thing-1", p.device(t, "dev"))

	long := strings.Repeat("x", maxTopicBytes)
	for _, tc := range []struct {
		topic string
		qos   byte
		want  string
		err   error
	}{
		{"a/b", 0, prefix1 + "a/b", nil},
		{"a/b", 1, prefix1 + "a/b", nil},
		{keysJSON, 1, "$" + prefix1 + keysJSON, nil},
		{"$aws/things/x/shadow/update", 0, "$" + prefix1 + "$aws/things/x/shadow/update", nil},
		// An empty name is a topic alias, resolved by the broker later.
		{"", 0, "", nil},
		{long, 0, prefix1 + long, nil},
		{long + "x", 0, "", packets.ErrRejectPacket},
		{"a/b/c/d/e/f/g/h", 0, prefix1 + "a/b/c/d/e/f/g/h", nil},
		{"a/b/c/d/e/f/g/h/i", 0, "", packets.ErrRejectPacket},
		{"////////", 0, "", packets.ErrRejectPacket},
		{"a", 2, "", packets.ErrRejectPacket},
	} {
		pk, err := s.hook.OnPacketRead(d.cl, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: tc.qos}, TopicName: tc.topic,
		})
		if err != tc.err || (err == nil && pk.TopicName != tc.want) {
			t.Errorf("publish %.40q QoS %d: topic %.60q, err %v; want %.60q, %v", tc.topic, tc.qos, pk.TopicName, err, tc.want, tc.err)
		}
	}

	sub := func(typ byte, filters ...string) []string {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}}
		for _, f := range filters {
			pk.Filters = append(pk.Filters, packets.Subscription{Filter: f})
		}
		pk, err := s.hook.OnPacketRead(d.cl, pk)
		if err != nil {
			t.Fatalf("OnPacketRead of %v: %v", filters, err)
		}
		var out []string
		for _, f := range pk.Filters {
			out = append(out, f.Filter)
		}
		return out
	}
	got := sub(packets.Subscribe, "#", "+/x", "$aws/events/#", "$share/g/a/#", "$share/g/$aws/events/#",
		"$share//#", "$share/g+/a", "$share/g", long, long+"x", "a/b/c/d/e/f/g/h/i")
	want := []string{prefix1 + "#", prefix1 + "+/x", "$" + prefix1 + "$aws/events/#", "$share/g/" + prefix1 + "a/#",
		"$share/g/$" + prefix1 + "$aws/events/#", invalidFilter, invalidFilter, invalidFilter, prefix1 + long, invalidFilter, invalidFilter}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("subscribe filters\n got %.300q\nwant %.300q", got, want)
	}
	got = sub(packets.Unsubscribe, "#", "$aws/events/#", "$share/g/a")
	want = []string{prefix1 + "#", "$" + prefix1 + "$aws/events/#", "$share/g/" + prefix1 + "a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unsubscribe filters %q, want %q", got, want)
	}

	// Packets of a client fleetca has no session for pass untouched (the
	// broker refuses it at CONNECT anyway).
	stranger := s.broker.NewClient(nil, "pipe", "stranger", false)
	in := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: "a/b/c/d/e/f/g/h/i"}
	if pk, err := s.hook.OnPacketRead(stranger, in); err != nil || pk.TopicName != in.TopicName {
		t.Errorf("OnPacketRead of a client without a session: %q, %v", pk.TopicName, err)
	}
}

// TestPacketEncode: OnPacketEncode takes the namespace off what is
// published to a device and leaves other packets alone.
func TestPacketEncode(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"dev": scope1})}
	s, _ := newTestServer(t, Options{Registry: fake})
	d := connectOne(t, s, "thing-1", p.device(t, "dev"))
	for _, tc := range []struct{ in, want string }{
		{prefix1 + "a/b", "a/b"},
		{"$" + prefix1 + keysJSON + "/accepted", keysJSON + "/accepted"},
		{"$" + prefix1 + "$aws/events/certificates/registered/ca-1", "$aws/events/certificates/registered/ca-1"},
		// A device topic that looks like a namespace is a device topic.
		{prefix1 + prefix1 + "x", prefix1 + "x"},
		{"$" + prefix1 + "$" + prefix1 + "x", "$" + prefix1 + "x"},
	} {
		pk := s.hook.OnPacketEncode(d.cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: tc.in})
		if pk.TopicName != tc.want {
			t.Errorf("OnPacketEncode(%q) = %q, want %q", tc.in, pk.TopicName, tc.want)
		}
	}
	if pk := s.hook.OnPacketEncode(d.cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, TopicName: prefix1 + "x"}); pk.TopicName != prefix1+"x" {
		t.Errorf("OnPacketEncode changed a SUBACK's topic to %q", pk.TopicName)
	}
	stranger := s.broker.NewClient(nil, "pipe", "stranger", false)
	if pk := s.hook.OnPacketEncode(stranger, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: prefix1 + "x"}); pk.TopicName != prefix1+"x" {
		t.Errorf("OnPacketEncode for a client without a session: %q", pk.TopicName)
	}
}

// TestNamespaceRoundTrip: whatever a device names a topic, the broker's name
// for it comes back to the device's; "$" topics go under "$<account>/<region>/"
// and the others under "<account>/<region>/".
func TestNamespaceRoundTrip(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{
		"a", "a/b", "/a", "a/", "#", "+/#", "", "$", "$aws/events/x", keysJSON + "/accepted",
		prefix1 + "x", "$" + prefix1 + "x", "$" + prefix1, "210987654321/us-east-1/x", "$share/g/x",
	} {
		ns := inNamespace(prefix1, topic)
		want := prefix1 + topic
		if strings.HasPrefix(topic, "$") {
			want = "$" + prefix1 + topic
		}
		if ns != want {
			t.Errorf("inNamespace(%q) = %q, want %q", topic, ns, want)
		}
		if back := outOfNamespace(prefix1, ns); back != topic {
			t.Errorf("outOfNamespace(inNamespace(%q)) = %q", topic, back)
		}
	}
}

// TestAccountsAreIsolated: a device's "#" matches its own account's topics
// only, never another account's nor a $ topic, and a just-in-time
// registration event reaches the CA's account only, on its $aws/events topic.
func TestAccountsAreIsolated(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	jit := p.device(t, "jit")
	fake := &fakeRegistry{}
	byName := admitByName(map[string]iot.Scope{"a": scope1, "b": scope2})
	fake.admit = func(ctx context.Context, leaf *x509.Certificate, sni string) (registry.Admission, error) {
		if leaf.Subject.CommonName == "jit" {
			return registry.Admission{
				Registered: &registry.JITRegistration{Scope: scope1, CertificateID: certificateID(jit), CACertificateID: "ca-1"},
				Refusal:    "registered just in time, PENDING_ACTIVATION",
			}, nil
		}
		return byName(ctx, leaf, sni)
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	a1 := connectOne(t, s, "a1", p.device(t, "a"))
	a2 := connectOne(t, s, "a2", p.device(t, "a"))
	a3 := connectOne(t, s, "a3", p.device(t, "a"))
	b1 := connectOne(t, s, "b1", p.device(t, "b"))
	b3 := connectOne(t, s, "b3", p.device(t, "b"))
	for _, sub := range []struct {
		d      *pipeDevice
		filter string
	}{{a1, "#"}, {b1, "#"}, {a3, "$aws/events/certificates/registered/+"}, {b3, "$aws/events/#"}} {
		if codes := sub.d.subscribe(t, sub.filter); !bytes.Equal(codes, []byte{1}) {
			t.Fatalf("subscribing %s to %q: %#v", sub.d.cl.ID, sub.filter, codes)
		}
	}

	if err := a2.publish("t/1", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if pk := a1.next(t); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "t/1" || string(pk.Payload) != "from a" {
		t.Fatalf("a1 got %s %q %q, want the publish on t/1", packetName(pk), pk.TopicName, pk.Payload)
	}
	b1.quiet(t)

	// The registration refuses the device and publishes the event.
	if _, err := connectPipe(t, s, "jit-device", jit, "localhost"); err != packets.ErrNotAuthorized {
		t.Fatalf("a just-in-time registered device: OnConnect %v, want %v", err, packets.ErrNotAuthorized)
	}
	pk := a3.next(t)
	if pk.FixedHeader.Type != packets.Publish || pk.TopicName != "$aws/events/certificates/registered/ca-1" {
		t.Fatalf("a3 got %s %q, want the registration event", packetName(pk), pk.TopicName)
	}
	var ev map[string]any
	if err := json.Unmarshal(pk.Payload, &ev); err != nil {
		t.Fatalf("event %q: %v", pk.Payload, err)
	}
	for k, v := range map[string]string{
		"certificateId": certificateID(jit), "caCertificateId": "ca-1",
		"certificateStatus": "PENDING_ACTIVATION", "awsAccountId": scope1.AccountID,
	} {
		if ev[k] != v {
			t.Errorf("event %s = %v, want %q", k, ev[k], v)
		}
	}
	// a1's "#" and the other account's $aws/events/# saw nothing of it,
	// and b1's "#" nothing of account 1's publish.
	a1.quiet(t)
	b3.quiet(t)
	b1.quiet(t)

	subs := s.broker.Topics.Subscribers(inNamespace(prefix1, "$aws/events/certificates/registered/ca-1"))
	if _, ok := subs.Subscriptions[a1.cl.ID]; ok {
		t.Errorf("a1's # matches a $ topic of its account")
	}
	subs = s.broker.Topics.Subscribers(inNamespace(namespace(scope2), "t/1"))
	if _, ok := subs.Subscriptions[a1.cl.ID]; ok {
		t.Errorf("a1's # matches another account's topic")
	}
}

// TestRequestsAreRoutedToNoOne: a request is answered to its requester and
// routed to no one, even a device of the account subscribed to the request
// topic; its reply reaches the requester only, if it subscribed to it, as
// AWS IoT delivers fleet-provisioning replies.
func TestRequestsAreRoutedToNoOne(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"a": scope1})}
	fake.createKeys = func(context.Context, iot.Scope) (*registry.ProvisionedCertificate, error) {
		return nil, apierr.New(apierr.Throttling, "slow down")
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	requester := connectOne(t, s, "requester", p.device(t, "a"))
	listener := connectOne(t, s, "listener", p.device(t, "a"))
	listener.subscribe(t, keysJSON, keysJSON+"/rejected", "$aws/certificates/create/#")
	requester.subscribe(t, keysJSON+"/rejected")
	reply := requester.request(t, keysJSON, []byte("{}"))
	if reply.TopicName != keysJSON+"/rejected" {
		t.Fatalf("reply on %q", reply.TopicName)
	}
	listener.quiet(t)

	// A requester that did not subscribe to the reply topic gets no reply,
	// and no one else gets it in its place.
	unsubscribed := connectOne(t, s, "unsubscribed", p.device(t, "a"))
	if replies := unsubscribed.requestAll(t, keysJSON, nil); len(replies) != 0 {
		t.Errorf("a requester not subscribed to the reply topic got %q", replies[0].TopicName)
	}
	listener.quiet(t)
	requester.quiet(t)
	var delivered []string
	for _, r := range logs.find("mqtt request") {
		delivered = append(delivered, r.attrs["client_id"]+"="+r.attrs["delivered"])
	}
	if want := []string{"requester=true", "unsubscribed=false"}; !reflect.DeepEqual(delivered, want) {
		t.Errorf("requests logged as delivered %v, want %v", delivered, want)
	}
}

// TestSubscriptionLimit: OnSubscribe refuses the filters that would take a
// client past maxSubscriptions; filters it holds already do not count again.
func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"a": scope1})}
	s, _ := newTestServer(t, Options{Registry: fake})

	cl := s.broker.NewClient(nil, "pipe", "direct", false)
	for i := range maxSubscriptions - 1 {
		f := fmt.Sprintf("held/%d", i)
		cl.State.Subscriptions.Add(f, packets.Subscription{Filter: f})
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}}
	for _, f := range []string{"held/0", "new/1", invalidFilter, "new/2", "held/1"} {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f})
	}
	var got []string
	for _, f := range s.hook.OnSubscribe(cl, pk).Filters {
		got = append(got, f.Filter)
	}
	if want := []string{"held/0", "new/1", invalidFilter, invalidFilter, "held/1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("OnSubscribe filters %q, want %q", got, want)
	}

	// Through the broker: 51 filters in one SUBSCRIBE get 50 grants, and at
	// the limit a held filter is still granted, a new one not.
	d := connectOne(t, s, "thing-1", p.device(t, "a"))
	var filters []string
	for i := range maxSubscriptions + 1 {
		filters = append(filters, fmt.Sprintf("f/%d", i))
	}
	codes := d.subscribe(t, filters...)
	want := append(bytes.Repeat([]byte{1}, maxSubscriptions), 0x80)
	if !bytes.Equal(codes, want) {
		t.Errorf("SUBACK of %d filters: %v", len(filters), codes)
	}
	if codes := d.subscribe(t, "f/0", "f/50"); !bytes.Equal(codes, []byte{1, 0x80}) {
		t.Errorf("SUBACK at the limit: %#v, want [1 0x80]", codes)
	}
}

// request publishes a request at QoS 1 and returns the one reply written to
// the device before the PUBACK.
func (d *pipeDevice) request(t testing.TB, topic string, payload []byte) packets.Packet {
	t.Helper()
	replies := d.requestAll(t, topic, payload)
	if len(replies) != 1 {
		t.Fatalf("request on %s: %d replies, want 1", topic, len(replies))
	}
	return replies[0]
}

// requestAll publishes a request at QoS 1 and returns what was published to
// the device before the PUBACK: the broker answers a request before it
// acknowledges it.
func (d *pipeDevice) requestAll(t testing.TB, topic string, payload []byte) []packets.Packet {
	t.Helper()
	d.nextID++
	id := d.nextID
	if err := d.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		PacketID: id, TopicName: topic, Payload: payload}); err != nil {
		t.Fatalf("request on %s: %v", topic, err)
	}
	var replies []packets.Packet
	for {
		pk := d.next(t)
		switch {
		case pk.FixedHeader.Type == packets.Puback && pk.PacketID == id:
			return replies
		case pk.FixedHeader.Type == packets.Publish:
			replies = append(replies, pk)
		default:
			t.Fatalf("request on %s: unexpected %s", topic, packetName(pk))
		}
	}
}

// formatOf is the payload format of a fleet-provisioning topic.
func formatOf(topic string) string {
	if strings.Contains(topic, "/cbor") {
		return "cbor"
	}
	return "json"
}

func encodeAs(t testing.TB, format string, v any) []byte {
	t.Helper()
	var b []byte
	var err error
	if format == "cbor" {
		b, err = cbor.Marshal(v)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeReply decodes a reply into its members, each printed with %v, so
// that json's float64 and cbor's uint64 status codes compare alike.
func decodeReply(t testing.TB, format string, b []byte) map[string]string {
	t.Helper()
	var m map[string]any
	var err error
	if format == "cbor" {
		err = cbor.Unmarshal(b, &m)
	} else {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("reply %q is not %s: %v", b, format, err)
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// TestProvisioningAccepted: requests in json and cbor reach the registry
// with the session's scope and, for a CSR, the connection's certificate ID
// and the client ID the device sent; the accepted reply carries the
// registry's answer, in the request's format, to the requester.
func TestProvisioningAccepted(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dev := p.device(t, "a")
	issuedDER := p.device(t, "issued").Certificate[0]
	issued := &iot.Certificate{Scope: scope1, ID: iot.CertificateID(issuedDER), DER: issuedDER, Status: iot.StatusPendingActivation}
	const privateKey = "-----BEGIN RSA PRIVATE KEY-----\nsecret-key-material\n-----END RSA PRIVATE KEY-----\n"
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"a": scope1})}
	fake.createFromCSR = func(context.Context, iot.Scope, registry.DeviceCSR) (*registry.ProvisionedCertificate, error) {
		return &registry.ProvisionedCertificate{Certificate: issued, OwnershipToken: "token-csr"}, nil
	}
	fake.createKeys = func(context.Context, iot.Scope) (*registry.ProvisionedCertificate, error) {
		return &registry.ProvisionedCertificate{Certificate: issued, OwnershipToken: "token-keys", PrivateKeyPEM: privateKey}, nil
	}
	obs := &observer{}
	s, logs := newTestServer(t, Options{Registry: fake, Observer: obs})
	d := connectOne(t, s, "thing-1", dev)
	d.subscribe(t, replyFilters()...)

	csrAccepted := map[string]string{
		"certificateId":             issued.ID,
		"certificatePem":            pki.EncodeCertificate(issuedDER),
		"certificateOwnershipToken": "token-csr",
	}
	keysAccepted := map[string]string{
		"certificateId":             issued.ID,
		"certificatePem":            pki.EncodeCertificate(issuedDER),
		"certificateOwnershipToken": "token-keys",
		"privateKey":                privateKey,
	}
	// 4096 characters of two bytes each are within the bound, which counts
	// characters.
	longCSR := strings.Repeat("é", maxCSRLength)
	var wantCSRs []csrCall
	var wantObserved []observation
	for _, tc := range []struct {
		topic   string
		payload []byte
		csr     string // the CSR the registry is to see, "" for none
		want    map[string]string
	}{
		{csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": csrPEM}), csrPEM, csrAccepted},
		{csrCBOR, encodeAs(t, "cbor", map[string]string{"certificateSigningRequest": csrPEM}), csrPEM, csrAccepted},
		{csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": longCSR}), longCSR, csrAccepted},
		// Unknown members are ignored, as AWS ignores them.
		{csrJSON, []byte(`{"certificateSigningRequest":"x","extra":1}`), "x", csrAccepted},
		{keysJSON, []byte("{}"), "", keysAccepted},
		{keysJSON, nil, "", keysAccepted},
		{keysCBOR, []byte{0xa0}, "", keysAccepted},
		{keysCBOR, nil, "", keysAccepted},
	} {
		reply := d.request(t, tc.topic, tc.payload)
		if reply.TopicName != tc.topic+"/accepted" {
			t.Errorf("%s %.40q: reply on %q, want %q", tc.topic, tc.payload, reply.TopicName, tc.topic+"/accepted")
			continue
		}
		if got := decodeReply(t, formatOf(tc.topic), reply.Payload); !maps.Equal(got, tc.want) {
			t.Errorf("%s %.40q: reply %v, want %v", tc.topic, tc.payload, got, tc.want)
		}
		op := "CreateKeysAndCertificate"
		if tc.csr != "" {
			op = "CreateCertificateFromCsr"
			wantCSRs = append(wantCSRs, csrCall{scope1, registry.DeviceCSR{CSRPEM: tc.csr, PrincipalID: certificateID(dev), ClientID: "thing-1"}})
		}
		wantObserved = append(wantObserved, observation{op, http.StatusOK})
	}
	if got := calls(fake, &fake.csrCalls); !reflect.DeepEqual(got, wantCSRs) {
		t.Errorf("CreateDeviceCertificateFromCSR calls\n got %+v\nwant %+v", got, wantCSRs)
	}
	if got := calls(fake, &fake.keysCalls); !reflect.DeepEqual(got, []iot.Scope{scope1, scope1, scope1, scope1}) {
		t.Errorf("CreateDeviceKeysAndCertificate calls %+v, want 4 of %+v", got, scope1)
	}
	if got := obs.observed(); !reflect.DeepEqual(got, wantObserved) {
		t.Errorf("observed %v, want %v", got, wantObserved)
	}
	if strings.Contains(logs.all(), "secret-key-material") {
		t.Error("the private key reached the log")
	}
}

// TestProvisioningRejected: every way a request fails becomes a rejected
// reply, in the request's format, with AWS's status and code; what is not
// the device's to know stays in the log.
func TestProvisioningRejected(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	const secret = "pq: password authentication failed for user fleetca at 10.1.2.3"
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"a": scope1})}
	var registryErr error // the fake's answer in the current case
	fake.createFromCSR = func(context.Context, iot.Scope, registry.DeviceCSR) (*registry.ProvisionedCertificate, error) {
		return nil, registryErr
	}
	fake.createKeys = func(context.Context, iot.Scope) (*registry.ProvisionedCertificate, error) {
		return nil, registryErr
	}
	obs := &observer{}
	s, logs := newTestServer(t, Options{Registry: fake, Observer: obs})
	d := connectOne(t, s, "thing-1", p.device(t, "a"))
	d.subscribe(t, replyFilters()...)

	invalid := func(msg string) map[string]string {
		return map[string]string{"statusCode": "400", "errorCode": "InvalidRequest", "errorMessage": msg}
	}
	badLength := invalid("certificateSigningRequest must have 1 to 4096 characters.")
	internal := map[string]string{"statusCode": "500", "errorCode": "InternalError", "errorMessage": "An internal error occurred."}
	for _, tc := range []struct {
		name    string
		topic   string
		payload []byte
		err     error // the registry's answer; nil if it is not to be asked
		want    map[string]string
	}{
		{"truncated json", csrJSON, []byte(`{"certificateSigningRequest":`), nil, invalid("The payload is not a valid json object.")},
		{"invalid cbor", csrCBOR, []byte{0xff}, nil, invalid("The payload is not a valid cbor object.")},
		{"csr not a string", csrJSON, []byte(`{"certificateSigningRequest":42}`), nil, invalid("The payload is not a valid json object.")},
		{"json array", csrJSON, []byte(`[]`), nil, invalid("The payload is not a valid json object.")},
		{"cbor text for json", csrJSON, encodeAs(t, "cbor", map[string]string{"certificateSigningRequest": csrPEM}), nil, invalid("The payload is not a valid json object.")},
		{"keys, not json", keysJSON, []byte("not json"), nil, invalid("The payload is not a valid json object.")},
		{"keys, invalid cbor", keysCBOR, []byte{0xff}, nil, invalid("The payload is not a valid cbor object.")},
		{"no csr", csrJSON, []byte(`{}`), nil, badLength},
		{"empty csr", csrCBOR, encodeAs(t, "cbor", map[string]string{"certificateSigningRequest": ""}), nil, badLength},
		{"empty payload", csrJSON, nil, nil, invalid("The payload is not a valid json object.")},
		{"csr too long", csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": strings.Repeat("a", maxCSRLength+1)}), nil, badLength},
		{"registry refuses the csr", csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": csrPEM}),
			apierr.New(apierr.InvalidRequest, "Invalid certificate signing request: no PEM block"),
			invalid("Invalid certificate signing request: no PEM block")},
		{"registry throttles", csrCBOR, encodeAs(t, "cbor", map[string]string{"certificateSigningRequest": csrPEM}),
			apierr.New(apierr.Throttling, "Rate exceeded."),
			map[string]string{"statusCode": "429", "errorCode": "Throttled", "errorMessage": "Rate exceeded."}},
		{"keys throttled", keysJSON, nil, fmt.Errorf("issuing: %w", apierr.New(apierr.Throttling, "Rate exceeded.")),
			map[string]string{"statusCode": "429", "errorCode": "Throttled", "errorMessage": "Rate exceeded."}},
		{"plain error", csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": csrPEM}), errors.New(secret), internal},
		{"keys plain error", keysCBOR, nil, errors.New(secret), internal},
		{"apierr kind not for devices", csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": csrPEM}),
			apierr.New(apierr.CertificateConflict, "certificate %s conflicts", "abc"), internal},
		{"deadline", csrJSON, encodeAs(t, "json", map[string]string{"certificateSigningRequest": csrPEM}),
			fmt.Errorf("signing: %w", context.DeadlineExceeded),
			map[string]string{"statusCode": "503", "errorCode": "ServiceUnavailable", "errorMessage": "The service could not complete the request in time; retry later."}},
	} {
		registryErr = tc.err
		before := len(calls(fake, &fake.csrCalls)) + len(calls(fake, &fake.keysCalls))
		reply := d.request(t, tc.topic, tc.payload)
		after := len(calls(fake, &fake.csrCalls)) + len(calls(fake, &fake.keysCalls))
		wantCalls := 0
		if tc.err != nil {
			wantCalls = 1
		}
		if after-before != wantCalls {
			t.Errorf("%s: the registry was asked %d times, want %d", tc.name, after-before, wantCalls)
		}
		if reply.TopicName != tc.topic+"/rejected" {
			t.Errorf("%s: reply on %q, want %q", tc.name, reply.TopicName, tc.topic+"/rejected")
			continue
		}
		if got := decodeReply(t, formatOf(tc.topic), reply.Payload); !maps.Equal(got, tc.want) {
			t.Errorf("%s: reply %v, want %v", tc.name, got, tc.want)
		}
		if bytes.Contains(reply.Payload, []byte("10.1.2.3")) {
			t.Errorf("%s: the reply shows the internal error: %q", tc.name, reply.Payload)
		}
		obsd := obs.observed()
		if last := obsd[len(obsd)-1]; strconv.Itoa(last.status) != tc.want["statusCode"] {
			t.Errorf("%s: observed status %d, want %s", tc.name, last.status, tc.want["statusCode"])
		}
	}
	// The 5xx are logged with their cause, the rest are not errors.
	failed := logs.find("mqtt request failed")
	if len(failed) != 4 {
		t.Fatalf("%d requests logged as failed, want the 4 answered 5xx:\n%s", len(failed), logs.all())
	}
	for _, r := range failed {
		if r.level != slog.LevelError || r.attrs["account"] != scope1.AccountID || r.attrs["client_id"] != "thing-1" {
			t.Errorf("failure logged as %v %v", r.level, r.attrs)
		}
	}
	if !strings.Contains(failed[0].attrs["err"], secret) {
		t.Errorf("the internal error is not in the log: %v", failed[0].attrs)
	}
}

// TestProvisioningRateLimit: each account has ProvisioningBurst requests,
// refilled at ProvisioningRate; beyond them requests are rejected 429
// without asking the registry, for every device of the account and for
// that account only.
func TestProvisioningRateLimit(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	issuedDER := p.device(t, "issued").Certificate[0]
	// scope1 in another region: AWS limits each account per region.
	otherRegion := iot.Scope{AccountID: scope1.AccountID, Region: "ap-southeast-2"}
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"a": scope1, "b": scope2, "r": otherRegion})}
	fake.createKeys = func(_ context.Context, scope iot.Scope) (*registry.ProvisionedCertificate, error) {
		return &registry.ProvisionedCertificate{
			Certificate:    &iot.Certificate{Scope: scope, ID: iot.CertificateID(issuedDER), DER: issuedDER},
			OwnershipToken: "token", PrivateKeyPEM: "key",
		}, nil
	}
	obs := &observer{}
	// A rate this low refills nothing during the test.
	s, _ := newTestServer(t, Options{Registry: fake, Observer: obs, ProvisioningRate: 1e-6, ProvisioningBurst: 2})
	a1 := connectOne(t, s, "a1", p.device(t, "a"))
	a2 := connectOne(t, s, "a2", p.device(t, "a"))
	b1 := connectOne(t, s, "b1", p.device(t, "b"))
	r1 := connectOne(t, s, "r1", p.device(t, "r"))
	for _, d := range []*pipeDevice{a1, a2, b1, r1} {
		d.subscribe(t, keysJSON+"/accepted", keysJSON+"/rejected")
	}
	throttled := map[string]string{"statusCode": "429", "errorCode": "Throttled",
		"errorMessage": "Rate exceeded for the account's fleet-provisioning requests."}
	for i, step := range []struct {
		d        *pipeDevice
		accepted bool
	}{{a1, true}, {a1, true}, {a1, false}, {a2, false}, {b1, true}, {r1, true}, {a1, false}} {
		reply := step.d.request(t, keysJSON, nil)
		switch {
		case step.accepted && reply.TopicName != keysJSON+"/accepted":
			t.Errorf("request %d by %s: reply on %q, want accepted", i, step.d.cl.ID, reply.TopicName)
		case !step.accepted && reply.TopicName != keysJSON+"/rejected":
			t.Errorf("request %d by %s: reply on %q, want rejected", i, step.d.cl.ID, reply.TopicName)
		case !step.accepted:
			if got := decodeReply(t, "json", reply.Payload); !maps.Equal(got, throttled) {
				t.Errorf("request %d by %s: %v, want %v", i, step.d.cl.ID, got, throttled)
			}
		}
	}
	if got := calls(fake, &fake.keysCalls); !reflect.DeepEqual(got, []iot.Scope{scope1, scope1, scope2, otherRegion}) {
		t.Errorf("the registry was asked for %v, want the 4 requests within the bursts", got)
	}
	var statuses []int
	for _, o := range obs.observed() {
		statuses = append(statuses, o.status)
	}
	if want := []int{200, 200, 429, 429, 200, 200, 429}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("observed statuses %v, want %v", statuses, want)
	}
}

// TestAdmission: OnConnect asks the registry about the TLS certificate and
// server name; it refuses what the registry refuses (not authorized), what
// it cannot answer (server unavailable, logged as an error) and client IDs
// beyond AWS's bound, and builds the session of an admitted device from the
// registry's admission.
func TestAdmission(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	admittedScope := iot.Scope{AccountID: "111122223333", Region: "eu-west-1"}
	fake := &fakeRegistry{}
	fake.admit = func(_ context.Context, leaf *x509.Certificate, _ string) (registry.Admission, error) {
		switch leaf.Subject.CommonName {
		case "ok":
			return registry.Admission{Certificate: &iot.Certificate{Scope: admittedScope, ID: "admitted-id", Status: iot.StatusActive}}, nil
		case "broken":
			return registry.Admission{}, errors.New("database is down")
		}
		return registry.Admission{Refusal: "the certificate is not registered"}, nil
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	ok, refused, broken := p.device(t, "ok"), p.device(t, "refused"), p.device(t, "broken")
	const sni = "111122223333.localhost"

	if _, err := connectPipe(t, s, "thing-r", refused, sni); err != packets.ErrNotAuthorized {
		t.Errorf("refused: OnConnect %v, want %v", err, packets.ErrNotAuthorized)
	}
	if r := logs.find("mqtt connection refused"); len(r) != 1 || r[0].attrs["reason"] != "the certificate is not registered" ||
		r[0].attrs["certificate_id"] != certificateID(refused) || r[0].attrs["client_id"] != "thing-r" {
		t.Errorf("refusal logged as %+v", r)
	}

	if _, err := connectPipe(t, s, "thing-b", broken, sni); err != packets.ErrServerUnavailable {
		t.Errorf("registry error: OnConnect %v, want %v", err, packets.ErrServerUnavailable)
	}
	if r := logs.find("mqtt admission failed"); len(r) != 1 || r[0].level != slog.LevelError ||
		!strings.Contains(r[0].attrs["err"], "database is down") || r[0].attrs["client_id"] != "thing-b" {
		t.Errorf("admission failure logged as %+v", r)
	}

	asked := len(calls(fake, &fake.admitCalls))
	if _, err := connectPipe(t, s, strings.Repeat("c", maxClientIDBytes+1), ok, sni); err != packets.ErrClientIdentifierNotValid {
		t.Errorf("long client ID: OnConnect %v, want %v", err, packets.ErrClientIdentifierNotValid)
	}
	if n := len(calls(fake, &fake.admitCalls)); n != asked {
		t.Errorf("the registry was asked about a client ID beyond the bound")
	}
	var sessions int
	s.hook.sessions.Range(func(any, any) bool { sessions++; return true })
	if sessions != 0 {
		t.Fatalf("%d sessions after refusals", sessions)
	}

	d, err := connectPipeWith(t, s, "thing-1", ok, sni, func(pk *packets.Packet) {
		pk.Connect.Keepalive = 5
		pk.Connect.WillFlag, pk.Connect.WillTopic, pk.Connect.WillPayload = true, "lwt/thing-1", []byte("gone")
	})
	if err != nil {
		t.Fatalf("admitted: OnConnect %v", err)
	}
	type fields struct {
		scope                                                  iot.Scope
		certificateID, clientID, prefix, serverName, arnPrefix string
	}
	want := fields{admittedScope, "admitted-id", "thing-1", "111122223333/eu-west-1/", sni, "arn:aws:iot:eu-west-1:111122223333:"}
	got := s.hook.session(d.cl)
	if f := (fields{got.scope, got.certificateID, got.clientID, got.prefix, got.serverName, got.arnPrefix}); f != want {
		t.Errorf("session %+v, want %+v", f, want)
	}
	if got.grant.Load() == nil {
		t.Errorf("an admitted session has no grant")
	}
	if d.cl.ID != "111122223333/eu-west-1/thing-1" {
		t.Errorf("broker client ID %q", d.cl.ID)
	}
	if d.cl.State.Keepalive != minKeepalive || !d.cl.State.ServerKeepalive {
		t.Errorf("keep-alive %d (server keep-alive %v), want %d", d.cl.State.Keepalive, d.cl.State.ServerKeepalive, minKeepalive)
	}
	if w := d.cl.Properties.Will; w.Flag != 1 || w.TopicName != "111122223333/eu-west-1/lwt/thing-1" {
		t.Errorf("will %d %q, want it kept in the namespace", w.Flag, w.TopicName)
	}
	last := calls(fake, &fake.admitCalls)
	if c := last[len(last)-1]; !bytes.Equal(c.leaf.Raw, ok.Certificate[0]) || c.serverName != sni || !c.hasDeadline {
		t.Errorf("AdmitDevice got certificate %q, server name %q, deadline %v", c.leaf.Subject.CommonName, c.serverName, c.hasDeadline)
	}

	// A will on a reserved or over-long topic is dropped, not published.
	for _, topic := range []string{"$aws/things/thing-2/shadow/update", "a/b/c/d/e/f/g/h/i"} {
		d, err := connectPipeWith(t, s, "thing-2", ok, sni, func(pk *packets.Packet) {
			pk.Connect.WillFlag, pk.Connect.WillTopic = true, topic
		})
		if err != nil {
			t.Fatal(err)
		}
		if w := d.cl.Properties.Will; w.Flag != 0 || w.TopicName != inNamespace(namespace(admittedScope), topic) {
			t.Errorf("will on %q: flag %d, topic %q", topic, w.Flag, w.TopicName)
		}
	}
}

// TestSweep: a pass asks the registry about every connected device with one
// SweepPass, disconnects and forgets those no longer admitted and keeps the
// others; the next pass has a new SweepPass. Failed checks disconnect no one
// and are logged when they start and when they stop.
func TestSweep(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	keepCert, dropCert := p.device(t, "keep"), p.device(t, "drop")
	keepID, dropID := certificateID(keepCert), certificateID(dropCert)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"keep": scope1, "drop": scope2})}
	var failWith error
	fake.stillAdmitted = func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
		if failWith != nil {
			return false, failWith
		}
		return id != dropID, nil
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	keep := connectOne(t, s, "keeper", keepCert)
	drop := connectOne(t, s, "dropped", dropCert)

	s.sweep(context.Background())
	first := calls(fake, &fake.stillCalls)
	if len(first) != 2 {
		t.Fatalf("first pass asked %d times, want 2: %+v", len(first), first)
	}
	if first[0].pass == nil || first[0].pass != first[1].pass {
		t.Errorf("one pass used SweepPasses %p and %p", first[0].pass, first[1].pass)
	}
	asked := map[string]iot.Scope{}
	for _, c := range first {
		asked[c.certificateID] = c.scope
	}
	if !maps.Equal(asked, map[string]iot.Scope{keepID: scope1, dropID: scope2}) {
		t.Errorf("first pass asked about %v", asked)
	}
	drop.closed(t)
	if !drop.cl.Closed() || s.hook.session(drop.cl) != nil {
		t.Errorf("the dropped device: closed %v, session %v", drop.cl.Closed(), s.hook.session(drop.cl))
	}
	if _, ok := s.broker.Clients.Get(drop.cl.ID); ok {
		t.Error("the dropped device's session is still the broker's")
	}
	if r := logs.find("mqtt disconnect: certificate or its CA no longer ACTIVE"); len(r) != 1 || r[0].attrs["certificate_id"] != dropID {
		t.Errorf("disconnect logged as %+v", r)
	}
	if keep.cl.Closed() || s.hook.session(keep.cl) == nil {
		t.Fatal("the admitted device was disconnected")
	}
	keep.quiet(t)

	s.sweep(context.Background())
	second := calls(fake, &fake.stillCalls)[2:]
	if len(second) != 1 || second[0].certificateID != keepID || second[0].scope != scope1 {
		t.Fatalf("second pass asked %+v, want the kept device only", second)
	}
	if second[0].pass == first[0].pass {
		t.Error("the second pass reused the first pass's SweepPass")
	}

	failWith = errors.New("database is down")
	s.sweep(context.Background())
	s.sweep(context.Background())
	if keep.cl.Closed() {
		t.Fatal("a failed check disconnected the device")
	}
	if r := logs.find("checking connected devices fails; devices whose certificate changes stay connected until it works"); len(r) != 1 ||
		r[0].level != slog.LevelWarn || r[0].attrs["devices"] != "1" {
		t.Errorf("failing checks logged as %+v, want one warning", r)
	}
	failWith = nil
	s.sweep(context.Background())
	if r := logs.find("checking connected devices works again"); len(r) != 1 {
		t.Errorf("recovery logged %d times, want once", len(r))
	}
}

// TestExpireNow: ExpireNow passes its time to the registry and reports how
// many certificates were deleted, each logged; an error is returned.
func TestExpireNow(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	fake := &fakeRegistry{}
	var failWith error
	fake.expire = func(context.Context, time.Time) ([]iot.Certificate, error) {
		if failWith != nil {
			return nil, failWith
		}
		return []iot.Certificate{{Scope: scope1, ID: "gone-1"}, {Scope: scope2, ID: "gone-2"}}, nil
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	if n, err := s.ExpireNow(context.Background(), at); n != 2 || err != nil {
		t.Fatalf("ExpireNow = %d, %v; want 2, nil", n, err)
	}
	if got := calls(fake, &fake.expireCalls); len(got) != 1 || !got[0].Equal(at) {
		t.Errorf("the registry was asked for %v, want %v", got, at)
	}
	r := logs.find("deleted a provisioned certificate that was not activated within its ownership token's lifetime")
	if len(r) != 2 || r[0].attrs["certificate_id"] != "gone-1" || r[1].attrs["account"] != scope2.AccountID {
		t.Errorf("deletions logged as %+v", r)
	}
	failWith = errors.New("database is down")
	if n, err := s.ExpireNow(context.Background(), at); n != 0 || !errors.Is(err, failWith) {
		t.Errorf("failing ExpireNow = %d, %v", n, err)
	}
}

// TestExpiryJanitor: the started server's janitor expires ownership tokens
// every ExpiryInterval at the time of Options.Now, bounded by the interval.
func TestExpiryJanitor(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	type call struct {
		now      time.Time
		deadline bool
	}
	seen := make(chan call, 1)
	fake := &fakeRegistry{}
	fake.expire = func(ctx context.Context, now time.Time) ([]iot.Certificate, error) {
		_, ok := ctx.Deadline()
		select {
		case seen <- call{now, ok}:
		case <-ctx.Done():
		}
		return nil, nil
	}
	s, _ := newTestServer(t, Options{Registry: fake, ExpiryInterval: 10 * time.Millisecond, Now: func() time.Time { return at }})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case c := <-seen:
			if !c.now.Equal(at) || !c.deadline {
				t.Fatalf("the janitor expired at %v (deadline %v), want %v with a deadline", c.now, c.deadline, at)
			}
		case <-time.After(waitLimit):
			t.Fatal("the janitor did not run")
		}
	}
}

// dialPaho connects a 3.1.1 client over TLS to a started server, as a
// device does.
func dialPaho(t *testing.T, s *Server, cert tls.Certificate, clientID string) (paho.Client, <-chan error, error) {
	t.Helper()
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().
		AddBroker("ssl://" + s.Addr()).
		SetClientID(clientID).
		SetTLSConfig(&tls.Config{RootCAs: newPKI(t).roots, Certificates: []tls.Certificate{cert}, ServerName: "localhost"}).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitLimit).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, lost, nil
}

// rawConnect sends a CONNECT over TLS and returns what the server answers
// before it closes the connection.
func rawConnect(t *testing.T, s *Server, cert tls.Certificate) ([]byte, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: newPKI(t).roots, Certificates: []tls.Certificate{cert}, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var buf bytes.Buffer
	connect := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: "raw"}}
	if err := connect.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(waitLimit))
	return io.ReadAll(conn)
}

// TestOverTLS: the whole path, listener to reply, with a real client: the
// fake admits by certificate, a CSR request in json and cbor is answered on
// the accepted topic with the fake's certificate and the request carries
// the connection's certificate ID and client ID; refused devices and those
// the registry cannot judge get no CONNACK, the connection just closes.
func TestOverTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dev := p.device(t, "a")
	issuedDER := p.device(t, "issued").Certificate[0]
	fake := &fakeRegistry{}
	byName := admitByName(map[string]iot.Scope{"a": scope1})
	fake.admit = func(ctx context.Context, leaf *x509.Certificate, sni string) (registry.Admission, error) {
		if leaf.Subject.CommonName == "broken" {
			return registry.Admission{}, errors.New("database is down")
		}
		return byName(ctx, leaf, sni)
	}
	fake.createFromCSR = func(_ context.Context, scope iot.Scope, _ registry.DeviceCSR) (*registry.ProvisionedCertificate, error) {
		return &registry.ProvisionedCertificate{
			Certificate:    &iot.Certificate{Scope: scope, ID: iot.CertificateID(issuedDER), DER: issuedDER},
			OwnershipToken: "token-tls",
		}, nil
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}

	c, _, err := dialPaho(t, s, dev, "thing-tls")
	if err != nil {
		t.Fatalf("connecting an admitted device: %v", err)
	}
	replies := make(chan paho.Message, 4)
	filters := map[string]byte{}
	for _, f := range replyFilters() {
		filters[f] = 1
	}
	tok := c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) { replies <- m })
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, topic := range []string{csrJSON, csrCBOR} {
		format := formatOf(topic)
		tok := c.Publish(topic, 1, false, encodeAs(t, format, map[string]string{"certificateSigningRequest": csrPEM}))
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case m := <-replies:
			want := map[string]string{"certificateId": iot.CertificateID(issuedDER), "certificatePem": pki.EncodeCertificate(issuedDER), "certificateOwnershipToken": "token-tls"}
			if got := decodeReply(t, format, m.Payload()); m.Topic() != topic+"/accepted" || !maps.Equal(got, want) {
				t.Errorf("%s: reply on %q: %v, want %v", topic, m.Topic(), got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%s: no reply", topic)
		}
	}
	want := csrCall{scope1, registry.DeviceCSR{CSRPEM: csrPEM, PrincipalID: certificateID(dev), ClientID: "thing-tls"}}
	if got := calls(fake, &fake.csrCalls); !reflect.DeepEqual(got, []csrCall{want, want}) {
		t.Errorf("CreateDeviceCertificateFromCSR calls\n got %+v\nwant 2 of %+v", got, want)
	}
	if got := calls(fake, &fake.admitCalls); len(got) != 1 || got[0].serverName != "localhost" || !bytes.Equal(got[0].leaf.Raw, dev.Certificate[0]) {
		t.Errorf("AdmitDevice calls %+v", got)
	}

	for _, cn := range []string{"refused", "broken"} {
		got, err := rawConnect(t, s, p.device(t, cn))
		if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("%s device: read %x, %v; want the connection closed without a CONNACK", cn, got, err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s device: the connection stayed open", cn)
		}
	}
	if r := logs.find("mqtt admission failed"); len(r) != 1 || r[0].level != slog.LevelError || !strings.Contains(r[0].attrs["err"], "database is down") {
		t.Errorf("admission failure logged as %+v", r)
	}
	if _, _, err := dialPaho(t, s, p.device(t, "refused"), "refused"); err == nil {
		t.Error("a refused device connected")
	}
}

// TestSweepOverTLS: the started server sweeps every SweepInterval; the
// device the registry no longer admits loses its connection and is not
// checked again, the other stays connected; each pass has a SweepPass of
// its own that checks each device once.
func TestSweepOverTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	keepCert, dropCert := p.device(t, "keep"), p.device(t, "drop")
	keepID, dropID := certificateID(keepCert), certificateID(dropCert)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"keep": scope1, "drop": scope1})}
	var mu sync.Mutex
	dropped := false
	keptAfter := make(chan struct{}, 64)
	fake.stillAdmitted = func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if id == dropID {
			dropped = true
			return false, nil
		}
		if dropped {
			select {
			case keptAfter <- struct{}{}:
			default:
			}
		}
		return true, nil
	}
	s, _ := newTestServer(t, Options{Registry: fake, SweepInterval: 10 * time.Millisecond})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	keep, keepLost, err := dialPaho(t, s, keepCert, "keeper")
	if err != nil {
		t.Fatal(err)
	}
	_, dropLost, err := dialPaho(t, s, dropCert, "dropped")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dropLost:
	case <-time.After(waitLimit):
		t.Fatal("the device no longer admitted is still connected")
	}
	for range 2 {
		select {
		case <-keptAfter:
		case <-time.After(waitLimit):
			t.Fatal("the sweep stopped")
		}
	}
	select {
	case err := <-keepLost:
		t.Fatalf("the admitted device lost its connection: %v", err)
	default:
	}
	if !keep.IsConnectionOpen() {
		t.Fatal("the admitted device is disconnected")
	}
	all := calls(fake, &fake.stillCalls)
	drops, passes := 0, map[*registry.SweepPass]map[string]bool{}
	var order []*registry.SweepPass
	for _, c := range all {
		if c.certificateID == dropID {
			drops++
		}
		if passes[c.pass] == nil {
			passes[c.pass] = map[string]bool{}
			order = append(order, c.pass)
		} else if order[len(order)-1] != c.pass {
			t.Fatalf("a SweepPass was used again in a later pass")
		}
		if passes[c.pass][c.certificateID] {
			t.Fatalf("one pass checked %s twice", c.certificateID)
		}
		passes[c.pass][c.certificateID] = true
	}
	if drops != 1 {
		t.Errorf("the dropped device was checked %d times, want once", drops)
	}
	if last := passes[order[len(order)-1]]; len(last) != 1 || !last[keepID] {
		t.Errorf("the last pass checked %v, want the kept device only", last)
	}
}

// TestSweepOfflineSessions: the sweep checks persistent sessions whose
// device is offline too, expiring those whose certificate is no longer
// admitted, so that nothing more is queued for them; a record that
// outlived its session is forgotten without asking the registry.
func TestSweepOfflineSessions(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	keepCert, dropCert, goneCert := p.device(t, "keep"), p.device(t, "drop"), p.device(t, "gone")
	dropID := certificateID(dropCert)
	fake := &fakeRegistry{admit: admitByName(map[string]iot.Scope{"keep": scope1, "drop": scope1, "gone": scope1})}
	fake.stillAdmitted = func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
		return id != dropID, nil
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	persistent := func(pk *packets.Packet) { pk.Connect.Clean = false }
	var devices []*pipeDevice
	for _, c := range []struct {
		id   string
		cert tls.Certificate
	}{{"keeper", keepCert}, {"dropped", dropCert}, {"gone", goneCert}} {
		d, err := connectPipeWith(t, s, c.id, c.cert, "localhost", persistent)
		if err != nil {
			t.Fatal(err)
		}
		if codes := d.subscribe(t, "cmd/"+c.id); codes[0] != 1 {
			t.Fatalf("subscribe: %#x", codes[0])
		}
		// The device goes away, its session stays, as mochi's read loop
		// ends a connection whose session is not clean.
		d.cl.Stop(io.EOF)
		s.hook.OnDisconnect(d.cl, io.EOF, false)
		devices = append(devices, d)
	}
	keep, drop, gone := devices[0], devices[1], devices[2]
	// The broker let go of this one (a take-over whose CONNACK failed
	// leaves such records behind).
	s.broker.Clients.Delete(gone.cl.ID)

	s.sweep(context.Background())
	var asked []string
	for _, c := range calls(fake, &fake.stillCalls) {
		asked = append(asked, c.certificateID)
	}
	slices.Sort(asked)
	want := []string{certificateID(keepCert), dropID}
	slices.Sort(want)
	if !reflect.DeepEqual(asked, want) {
		t.Errorf("the sweep asked about %v, want the two offline sessions %v", asked, want)
	}
	if s.hook.session(keep.cl) == nil {
		t.Error("the admitted offline session was forgotten")
	}
	if cur, ok := s.broker.Clients.Get(keep.cl.ID); !ok || cur != keep.cl {
		t.Error("the admitted offline session was expired")
	}
	if s.hook.session(drop.cl) != nil || s.hook.session(gone.cl) != nil {
		t.Error("the session no longer admitted, or the dead record, is still known")
	}
	if _, ok := s.broker.Clients.Get(drop.cl.ID); ok {
		t.Error("the session no longer admitted was not expired")
	}
	if subs := s.broker.Topics.Subscribers(prefix1 + "cmd/dropped"); len(subs.Subscriptions) != 0 {
		t.Errorf("the expired session's subscriptions remain: %v", subs.Subscriptions)
	}
	if subs := s.broker.Topics.Subscribers(prefix1 + "cmd/keeper"); len(subs.Subscriptions) != 1 {
		t.Errorf("the kept session's subscriptions: %v", subs.Subscriptions)
	}
}

// TestRegistrationEventTimestamp: the just-in-time registration event's
// certificateRegistrationTimestamp is when the certificate was registered
// (the registry's RegisteredAt), not when the event is published: the
// registry publishes it again each time a certificate still waiting for
// activation connects.
func TestRegistrationEventTimestamp(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	jit := p.device(t, "jit")
	registeredAt := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	fake := &fakeRegistry{}
	byName := admitByName(map[string]iot.Scope{"a": scope1})
	fake.admit = func(ctx context.Context, leaf *x509.Certificate, sni string) (registry.Admission, error) {
		if leaf.Subject.CommonName == "jit" {
			return registry.Admission{
				Registered: &registry.JITRegistration{Scope: scope1, CertificateID: certificateID(jit), CACertificateID: "ca-1", RegisteredAt: registeredAt},
				Refusal:    "the certificate is PENDING_ACTIVATION",
			}, nil
		}
		return byName(ctx, leaf, sni)
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	d := connectOne(t, s, "listener", p.device(t, "a"))
	d.subscribe(t, "$aws/events/certificates/registered/ca-1")
	if _, err := connectPipe(t, s, "jit-device", jit, "localhost"); err != packets.ErrNotAuthorized {
		t.Fatalf("OnConnect %v", err)
	}
	pk := d.next(t)
	var ev map[string]any
	if err := json.Unmarshal(pk.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if want := "2024-05-06T07:08:09.123Z"; ev["certificateRegistrationTimestamp"] != want {
		t.Errorf("certificateRegistrationTimestamp %v, want %s, the registration's", ev["certificateRegistrationTimestamp"], want)
	}
}
