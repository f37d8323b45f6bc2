package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho5log "github.com/eclipse/paho.golang/paho/log"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// These tests drive IoT policy enforcement on the MQTT endpoint end to end:
// policies made and attached through the AWS SDK, devices connecting over
// mutual TLS with MQTT 3.1.1 (paho.mqtt.golang, through the helpers of
// mqtt_helpers_test.go) and MQTT 5 (paho.golang, below).

// enfLiveLimit bounds the wait for a change to reach a live connection. The
// README promises a second; the margin is for the race detector and
// parallel tests, and no test waits for it unless the change is late.
const enfLiveLimit = 5 * time.Second

// MQTT 5 reason codes the tests expect.
const (
	enfGrantedQoS1   byte = 0x01 // SUBACK: granted QoS 1
	enfNotAuthorized byte = 0x87
)

// enfAccepted reports whether a PUBACK reason code accepts the publish: any
// code below 0x80 is a success (0x00, or 0x10 "no matching subscribers").
func enfAccepted(code byte) bool { return code < 0x80 }

// enfStatement is one statement of an IoT policy document.
type enfStatement struct {
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// enfAllow allows the actions (comma-separated, as "iot:Publish,iot:Receive")
// on the resources.
func enfAllow(actions string, resources ...string) enfStatement {
	return enfStatement{Effect: "Allow", Action: strings.Split(actions, ","), Resource: resources}
}

// enfDeny denies the actions on the resources.
func enfDeny(actions string, resources ...string) enfStatement {
	return enfStatement{Effect: "Deny", Action: strings.Split(actions, ","), Resource: resources}
}

// enfDoc is a policy document of the statements.
func enfDoc(statements ...enfStatement) string {
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// enfARN is the ARN of a resource (client/..., topic/..., topicfilter/...)
// of the test account and region.
func enfARN(resource string) string {
	return "arn:aws:iot:" + testRegion + ":" + testAccount + ":" + resource
}

// enfConnectAny allows connecting as any client ID.
var enfConnectAny = enfAllow("iot:Connect", "*")

func enfPolicy(t testing.TB, c *iot.Client, name, doc string) {
	t.Helper()
	if _, err := c.CreatePolicy(context.Background(), &iot.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatalf("CreatePolicy %s: %v", name, err)
	}
}

func enfAttach(t testing.TB, c *iot.Client, policy, target string) {
	t.Helper()
	if _, err := c.AttachPolicy(context.Background(), &iot.AttachPolicyInput{PolicyName: aws.String(policy), Target: aws.String(target)}); err != nil {
		t.Fatalf("AttachPolicy %s: %v", policy, err)
	}
}

func enfDetach(t testing.TB, c *iot.Client, policy, target string) {
	t.Helper()
	if _, err := c.DetachPolicy(context.Background(), &iot.DetachPolicyInput{PolicyName: aws.String(policy), Target: aws.String(target)}); err != nil {
		t.Fatalf("DetachPolicy %s: %v", policy, err)
	}
}

// enfCert makes an ACTIVE certificate through the API and attaches the named
// policies to it; with none, no policy allows the certificate anything. It
// returns the key pair and the certificate's ARN.
func enfCert(t testing.TB, c *iot.Client, policies ...string) (keyPair, string) {
	t.Helper()
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policies {
		enfAttach(t, c, p, *out.CertificateArn)
	}
	return newKeyPair(t, *out.CertificatePem, *out.KeyPair.PrivateKey), *out.CertificateArn
}

// enfThing makes a thing with the attributes.
func enfThing(t testing.TB, c *iot.Client, name string, attributes map[string]string) {
	t.Helper()
	in := &iot.CreateThingInput{ThingName: aws.String(name)}
	if attributes != nil {
		in.AttributePayload = &types.AttributePayload{Attributes: attributes}
	}
	if _, err := c.CreateThing(context.Background(), in); err != nil {
		t.Fatalf("CreateThing %s: %v", name, err)
	}
}

// enfAttachThing attaches the certificate to the thing, exclusively or not.
func enfAttachThing(t testing.TB, c *iot.Client, thing, certARN string, exclusive bool) {
	t.Helper()
	in := &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(certARN)}
	if exclusive {
		in.ThingPrincipalType = types.ThingPrincipalTypeExclusiveThing
	}
	if _, err := c.AttachThingPrincipal(context.Background(), in); err != nil {
		t.Fatalf("AttachThingPrincipal %s: %v", thing, err)
	}
}

// enfMessage is a message a device received.
type enfMessage struct{ topic, payload string }

// enfDevice5 is a device connected with MQTT 5 through paho.golang.
type enfDevice5 struct {
	*paho5.Client
	// conn is the TLS connection, to drop it without a DISCONNECT.
	conn net.Conn
	// msgs has the messages received, in order.
	msgs chan enfMessage
	// ending is closed when the test ends, so that a handler blocked on
	// msgs lets the client shut down.
	ending chan struct{}
	// id and logs say what the server logged about the device, when a
	// packet goes unanswered.
	id   string
	logs *syncBuffer
}

func (d *enfDevice5) received(p paho5.PublishReceived) (bool, error) {
	select {
	case d.msgs <- enfMessage{p.Packet.Topic, string(p.Packet.Payload)}:
	case <-d.ending:
	}
	return true, nil
}

// enfNoPinger sends no PINGREQ. paho.golang's own pinger sends its first
// one at once, from a goroutine of its own, while the test writes its
// first packet, and paho writes a packet in several writes, which on a TLS
// connection interleave: the broker then reads a malformed SUBSCRIBE and
// closes the connection. No test lives as long as its keep-alive.
type enfNoPinger struct{}

func (enfNoPinger) Run(ctx context.Context, _ net.Conn, _ uint16) error {
	<-ctx.Done()
	return nil
}
func (enfNoPinger) PacketSent()              {}
func (enfNoPinger) PacketReceived()          {}
func (enfNoPinger) PingResp()                {}
func (enfNoPinger) SetDebug(paho5log.Logger) {}

// enfDial5 connects with MQTT 5 over mutual TLS to ts, trusting its root as
// a device does, with an optional will. It returns the CONNACK reason code,
// and the device when the server accepted it; err is set when no CONNACK
// came.
func (ts *testServer) enfDial5(t testing.TB, kp keyPair, clientID string, will *paho5.WillMessage) (*enfDevice5, byte, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ts.rootCA(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp.tls}, ServerName: "localhost"}}
	conn, err := dialer.DialContext(ctx, "tcp", ts.MQTTAddr())
	if err != nil {
		t.Fatalf("dialing the MQTT endpoint: %v", err)
	}
	d := &enfDevice5{conn: conn, msgs: make(chan enfMessage, 64), ending: make(chan struct{}), id: clientID, logs: ts.logs}
	d.Client = paho5.NewClient(paho5.ClientConfig{
		Conn:              conn,
		PingHandler:       enfNoPinger{},
		PacketTimeout:     waitLimit,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){d.received},
	})
	ca, err := d.Connect(ctx, &paho5.Connect{ClientID: clientID, KeepAlive: 60, CleanStart: true, WillMessage: will})
	if ca == nil {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("no CONNACK")
		}
		return nil, 0, err
	}
	if ca.ReasonCode != 0 {
		return nil, ca.ReasonCode, nil // paho has closed the connection
	}
	t.Cleanup(func() {
		close(d.ending)
		_ = d.Disconnect(&paho5.Disconnect{})
	})
	return d, 0, nil
}

// enfConnack5 is the CONNACK reason code of an MQTT 5 connection as clientID.
func (ts *testServer) enfConnack5(t testing.TB, kp keyPair, clientID string) byte {
	t.Helper()
	_, code, err := ts.enfDial5(t, kp, clientID, nil)
	if err != nil {
		t.Fatalf("connecting as %s: %v (want a CONNACK)", clientID, err)
	}
	return code
}

// enfMustDial5 connects with MQTT 5 and fails the test unless accepted.
func (ts *testServer) enfMustDial5(t testing.TB, kp keyPair, clientID string) *enfDevice5 {
	t.Helper()
	d, code, err := ts.enfDial5(t, kp, clientID, nil)
	if err != nil || code != 0 {
		t.Fatalf("connecting as %s: CONNACK %#x, %v", clientID, code, err)
	}
	return d
}

// publish publishes and returns the PUBACK reason code (0 for QoS 0).
func (d *enfDevice5) publish(t testing.TB, topic string, qos byte, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	pr, err := d.Publish(ctx, &paho5.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
	if pr == nil {
		t.Fatalf("publish %s: no PUBACK: %v", topic, err)
	}
	return pr.ReasonCode
}

// mustPublish publishes at QoS 1 and fails the test unless accepted.
func (d *enfDevice5) mustPublish(t testing.TB, topic, payload string) {
	t.Helper()
	if code := d.publish(t, topic, 1, payload); !enfAccepted(code) {
		t.Fatalf("publish %s: PUBACK %#x", topic, code)
	}
}

// subscribe subscribes to the filters at QoS 1 in one SUBSCRIBE and returns
// the SUBACK's reason codes.
func (d *enfDevice5) subscribe(t testing.TB, filters ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	subs := make([]paho5.SubscribeOptions, len(filters))
	for i, f := range filters {
		subs[i] = paho5.SubscribeOptions{Topic: f, QoS: 1}
	}
	sa, err := d.Subscribe(ctx, &paho5.Subscribe{Subscriptions: subs})
	if sa == nil {
		var lines []string
		for _, line := range strings.Split(d.logs.String(), "\n") {
			if strings.Contains(line, d.id) {
				lines = append(lines, line)
			}
		}
		t.Fatalf("subscribe %v: no SUBACK: %v\nserver log of %s:\n%s", filters, err, d.id, strings.Join(lines, "\n"))
	}
	return sa.Reasons
}

// mustSubscribe subscribes and fails the test unless every filter is granted.
func (d *enfDevice5) mustSubscribe(t testing.TB, filters ...string) {
	t.Helper()
	for i, code := range d.subscribe(t, filters...) {
		if code >= 0x80 {
			t.Fatalf("subscription to %s refused: %#x", filters[i], code)
		}
	}
}

// alive fails the test if the connection has ended.
func (d *enfDevice5) alive(t testing.TB) {
	t.Helper()
	select {
	case <-d.Done():
		t.Fatal("the MQTT 5 connection ended")
	default:
	}
}

// enfPub publishes a message at QoS 1 and fails the test unless accepted.
type enfPub func(t testing.TB, topic, payload string)

func (d *enfDevice5) pub() enfPub { return d.mustPublish }

// enfSubscribe3 subscribes an MQTT 3.1.1 device at QoS 1 and returns its
// messages; it fails the test unless every filter is granted.
func enfSubscribe3(t testing.TB, d *device, filters ...string) <-chan enfMessage {
	t.Helper()
	ch := make(chan enfMessage, 256)
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := d.SubscribeMultiple(m, func(_ mqtt3.Client, msg mqtt3.Message) {
		select {
		case ch <- enfMessage{msg.Topic(), string(msg.Payload())}:
		default: // the tests read far fewer; never block paho's router
		}
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", filters, tok.Error())
	}
	for f, code := range tok.(*mqtt3.SubscribeToken).Result() {
		if code >= 0x80 {
			t.Fatalf("subscription to %s refused: %#x", f, code)
		}
	}
	return ch
}

// enfNext is the next message, within waitLimit.
func enfNext(t testing.TB, ch <-chan enfMessage) enfMessage {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no message")
		return enfMessage{}
	}
}

// enfExpect fails the test unless the next message is on topic.
func enfExpect(t testing.TB, ch <-chan enfMessage, topic string) enfMessage {
	t.Helper()
	m := enfNext(t, ch)
	if m.topic != topic {
		t.Fatalf("received %s (%q), want %s", m.topic, m.payload, topic)
	}
	return m
}

// enfLost waits for an MQTT 3.1.1 device's connection to be closed.
func enfLost(t testing.TB, d *device, what string) {
	t.Helper()
	select {
	case <-d.lost:
	case <-time.After(waitLimit):
		t.Fatalf("%s: the MQTT 3.1.1 connection was not closed", what)
	}
}

var enfProbes atomic.Int64

// enfDelivered publishes a probe on topic and then a control message on
// ctl, both through pub, and reports whether msgs got the probe before the
// control message. The control topic must be one the receiver subscribes to
// and may receive: its message comes after the probe's, so once it is read
// the probe has been delivered or withheld, and no wait is guessed.
func enfDelivered(t testing.TB, pub enfPub, msgs <-chan enfMessage, topic, ctl string) bool {
	t.Helper()
	n := enfProbes.Add(1)
	probe, control := fmt.Sprint("probe-", n), fmt.Sprint("control-", n)
	pub(t, topic, probe)
	pub(t, ctl, control)
	got := false
	for {
		m := enfNext(t, msgs)
		switch m.payload {
		case probe:
			if m.topic != topic {
				t.Fatalf("the probe came on %s, not %s", m.topic, topic)
			}
			got = true
		case control:
			return got
		}
	}
}

// enfEventually polls cond until it holds, or fails the test after
// enfLiveLimit.
func enfEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(enfLiveLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, enfLiveLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// enfPublishes waits until the device's QoS 1 publishes on topic are
// accepted (want true) or refused with 0x87 (want false).
func enfPublishes(t testing.TB, d *enfDevice5, topic string, want bool) {
	t.Helper()
	deadline := time.Now().Add(enfLiveLimit)
	for {
		code := d.publish(t, topic, 1, "poll")
		if !enfAccepted(code) && code != enfNotAuthorized {
			t.Fatalf("publish on %s: PUBACK %#x, want success or 0x87", topic, code)
		}
		if enfAccepted(code) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish on %s: PUBACK %#x after %v, want accepted=%v", topic, code, enfLiveLimit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.alive(t)
}

// enfConnected is the number of devices connected now, from /metrics.
func enfConnected(t testing.TB, ts *testServer) int {
	t.Helper()
	resp, err := http.Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "fleetca_mqtt_connected_devices "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("fleetca_mqtt_connected_devices %q", v)
			}
			return int(n)
		}
	}
	t.Fatal("/metrics has no fleetca_mqtt_connected_devices")
	return 0
}

// TestEnforceConnect: iot:Connect on client/<client ID> decides who
// connects; refused, MQTT 3.1.1 gets CONNACK 0x05 and MQTT 5 0x87.
func TestEnforceConnect(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "connect-allowed", enfDoc(enfAllow("iot:Connect", enfARN("client/allowed-*"))))
	kp, _ := enfCert(t, c, "connect-allowed")

	t.Run("MQTT 3.1.1", func(t *testing.T) {
		t.Parallel()
		if _, err := ts.connect(t, kp, "allowed-311"); err != nil {
			t.Fatalf("an allowed client ID: %v", err)
		}
		if _, err := ts.connect(t, kp, "denied-311"); err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Fatalf("a client ID no policy allows: %v, want CONNACK 5 (not Authorized)", err)
		}
	})
	t.Run("MQTT 5", func(t *testing.T) {
		t.Parallel()
		if code := ts.enfConnack5(t, kp, "allowed-5"); code != 0 {
			t.Fatalf("an allowed client ID: CONNACK %#x", code)
		}
		if code := ts.enfConnack5(t, kp, "denied-5"); code != enfNotAuthorized {
			t.Fatalf("a client ID no policy allows: CONNACK %#x, want 0x87", code)
		}
	})
	t.Run("no policy", func(t *testing.T) {
		t.Parallel()
		bare, _ := enfCert(t, c)
		if _, err := ts.connect(t, bare, "allowed-bare"); err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Fatalf("MQTT 3.1.1 with no policy: %v, want CONNACK 5", err)
		}
		if code := ts.enfConnack5(t, bare, "allowed-bare"); code != enfNotAuthorized {
			t.Fatalf("MQTT 5 with no policy: CONNACK %#x, want 0x87", code)
		}
	})
	t.Run("policy without iot:Connect", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "publish-only", enfDoc(enfAllow("iot:Publish,iot:Subscribe,iot:Receive", "*")))
		kp, _ := enfCert(t, c, "publish-only")
		if code := ts.enfConnack5(t, kp, "allowed-pub"); code != enfNotAuthorized {
			t.Fatalf("CONNACK %#x, want 0x87", code)
		}
	})
	t.Run("another region or account", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "connect-elsewhere", enfDoc(enfAllow("iot:Connect",
			"arn:aws:iot:eu-west-1:"+testAccount+":client/*", "arn:aws:iot:"+testRegion+":"+testOtherAcct+":client/*")))
		kp, _ := enfCert(t, c, "connect-elsewhere")
		if code := ts.enfConnack5(t, kp, "allowed-elsewhere"); code != enfNotAuthorized {
			t.Fatalf("a policy for another region and account: CONNACK %#x, want 0x87", code)
		}
	})
	t.Run("account wildcard and client ID variable", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "connect-self", enfDoc(enfAllow("iot:Connect", "arn:aws:iot:"+testRegion+":*:client/self-${iot:Certificate.Subject.CommonName}")))
		csr, key := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "unit-9"})
		out, err := c.CreateCertificateFromCsr(context.Background(), &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
		if err != nil {
			t.Fatal(err)
		}
		enfAttach(t, c, "connect-self", *out.CertificateArn)
		kp := newKeyPair(t, *out.CertificatePem, testpki.KeyPEM(t, key))
		if code := ts.enfConnack5(t, kp, "self-unit-9"); code != 0 {
			t.Fatalf("the client ID the certificate's CN names: CONNACK %#x", code)
		}
		if code := ts.enfConnack5(t, kp, "self-unit-8"); code != enfNotAuthorized {
			t.Fatalf("another client ID: CONNACK %#x, want 0x87", code)
		}
	})
	t.Run("not logged as unenforced", func(t *testing.T) {
		if strings.Contains(strings.ToLower(ts.logs.String()), "not enforced") {
			t.Fatal("a server enforcing policies logs that they are not enforced")
		}
	})
}

// TestEnforcePublish: iot:Publish (and iot:RetainPublish) on topic/<topic>;
// refused, MQTT 3.1.1 is disconnected and MQTT 5 gets PUBACK 0x87 (QoS 1) or
// has the message dropped (QoS 0), and keeps its connection. A refused
// message reaches no one.
func TestEnforcePublish(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "publisher", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/pub/ok/*"))))
	enfPolicy(t, c, "retainer", enfDoc(enfConnectAny, enfAllow("iot:Publish,iot:RetainPublish", enfARN("topic/pub/ok/*"))))
	kp, _ := enfCert(t, c, "publisher")
	watcher := ts.enfMustDial5(t, ts.claim(t, c), "watcher")
	watcher.mustSubscribe(t, "pub/#")
	// control has a watcher's message come after whatever was refused
	// before it.
	control := ts.enfMustDial5(t, ts.claim(t, c), "control")

	t.Run("MQTT 5", func(t *testing.T) {
		d := ts.enfMustDial5(t, kp, "pub-5")
		if code := d.publish(t, "pub/no/x", 1, "refused"); code != enfNotAuthorized {
			t.Fatalf("QoS 1 where no policy allows: PUBACK %#x, want 0x87", code)
		}
		if code := d.publish(t, "pub/no/y", 0, "dropped"); code != 0 {
			t.Fatalf("QoS 0: %#x", code)
		}
		// The connection stays usable.
		if code := d.publish(t, "pub/ok/x", 1, "allowed"); !enfAccepted(code) {
			t.Fatalf("an allowed publish after refused ones: PUBACK %#x", code)
		}
		if code := d.publish(t, "pub/ok/y", 0, "allowed qos 0"); code != 0 {
			t.Fatalf("QoS 0: %#x", code)
		}
		enfExpect(t, watcher.msgs, "pub/ok/x")
		enfExpect(t, watcher.msgs, "pub/ok/y")
		d.alive(t)
	})
	for _, qos := range []byte{1, 0} {
		t.Run(fmt.Sprint("MQTT 3.1.1 QoS ", qos), func(t *testing.T) {
			d, err := ts.connect(t, kp, fmt.Sprint("pub-311-", qos))
			if err != nil {
				t.Fatal(err)
			}
			d.publish(t, "pub/ok/311", []byte("allowed"))
			enfExpect(t, watcher.msgs, "pub/ok/311")
			d.Publish("pub/no/311", qos, false, []byte("refused"))
			enfLost(t, d, "a publish where no policy allows")
			control.mustPublish(t, "pub/ok/control", "after")
			enfExpect(t, watcher.msgs, "pub/ok/control")
		})
	}
	t.Run("retained", func(t *testing.T) {
		d, err := ts.connect(t, kp, "pub-retain")
		if err != nil {
			t.Fatal(err)
		}
		d.Publish("pub/ok/retained", 1, true, []byte("no RetainPublish"))
		enfLost(t, d, "a retained publish without iot:RetainPublish")
		control.mustPublish(t, "pub/ok/control", "after")
		enfExpect(t, watcher.msgs, "pub/ok/control")

		retainer, _ := enfCert(t, c, "retainer")
		r, err := ts.connect(t, retainer, "pub-retainer")
		if err != nil {
			t.Fatal(err)
		}
		tok := r.Publish("pub/ok/retained", 1, true, []byte("with RetainPublish"))
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("a retained publish with iot:RetainPublish: %v", tok.Error())
		}
		if m := enfExpect(t, watcher.msgs, "pub/ok/retained"); m.payload != "with RetainPublish" {
			t.Fatalf("received %q", m.payload)
		}
	})
	t.Run("reserved topics stay closed", func(t *testing.T) {
		// An allow-all policy does not lift the topic rules.
		if code := control.publish(t, "$aws/things/x/shadow/update", 1, "{}"); code != enfNotAuthorized {
			t.Fatalf("a publish on a reserved topic: PUBACK %#x, want 0x87", code)
		}
		control.alive(t)
	})
}

// TestEnforceSubscribe: iot:Subscribe on topicfilter/<filter>, per filter of
// a SUBSCRIBE in MQTT 5; MQTT 3.1.1 is disconnected.
func TestEnforceSubscribe(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "subscriber", enfDoc(enfConnectAny,
		enfAllow("iot:Subscribe", enfARN("topicfilter/sub/ok/*"), enfARN("topicfilter/$share/g1/sub/ok/*")),
		enfAllow("iot:Receive", enfARN("topic/sub/*"))))
	kp, _ := enfCert(t, c, "subscriber")
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")

	t.Run("MQTT 5", func(t *testing.T) {
		d := ts.enfMustDial5(t, kp, "sub-5")
		got := d.subscribe(t, "sub/ok/a", "sub/no/a")
		if len(got) != 2 || got[0] != enfGrantedQoS1 || got[1] != enfNotAuthorized {
			t.Fatalf("SUBACK %#v, want [granted QoS 1, 0x87]", got)
		}
		// A wildcard wider than the policy allows, and a shared
		// subscription in a group it does not name.
		if got := d.subscribe(t, "sub/#", "$share/g2/sub/ok/b", "$share/g1/sub/ok/b"); len(got) != 3 ||
			got[0] != enfNotAuthorized || got[1] != enfNotAuthorized || got[2] != enfGrantedQoS1 {
			t.Fatalf("SUBACK %#v, want [0x87, 0x87, granted QoS 1]", got)
		}
		// Only the granted subscriptions deliver; Receive allows all of
		// sub/*, so a refused filter that was subscribed all the same
		// would deliver sub/no/a.
		publisher.mustPublish(t, "sub/no/a", "not subscribed")
		publisher.mustPublish(t, "sub/ok/a", "subscribed")
		publisher.mustPublish(t, "sub/ok/b", "shared")
		enfExpect(t, d.msgs, "sub/ok/a")
		enfExpect(t, d.msgs, "sub/ok/b")
		d.alive(t)
	})
	t.Run("MQTT 3.1.1", func(t *testing.T) {
		d, err := ts.connect(t, kp, "sub-311")
		if err != nil {
			t.Fatal(err)
		}
		msgs := enfSubscribe3(t, d, "sub/ok/c")
		publisher.mustPublish(t, "sub/ok/c", "allowed")
		enfExpect(t, msgs, "sub/ok/c")
		d.Subscribe("sub/no/c", 1, nil)
		enfLost(t, d, "a subscription no policy allows")
	})
	t.Run("reserved filters stay closed", func(t *testing.T) {
		if got := publisher.subscribe(t, "$aws/things/x/shadow/update/accepted", "$aws/rules/r"); len(got) != 2 || got[0] < 0x80 || got[1] < 0x80 {
			t.Fatalf("an allow-all policy subscribed to reserved topics: SUBACK %#v", got)
		}
	})
}

// TestEnforceReceive: a subscriber allowed to subscribe to a/# but to
// receive only a/ok/* gets a/ok/x and never a/no/x.
func TestEnforceReceive(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "receiver", enfDoc(enfConnectAny,
		enfAllow("iot:Subscribe", enfARN("topicfilter/a/#")), enfAllow("iot:Receive", enfARN("topic/a/ok/*"))))
	kp, _ := enfCert(t, c, "receiver")
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")

	d5 := ts.enfMustDial5(t, kp, "recv-5")
	d5.mustSubscribe(t, "a/#")
	d3, err := ts.connect(t, kp, "recv-311")
	if err != nil {
		t.Fatal(err)
	}
	msgs3 := enfSubscribe3(t, d3, "a/#")

	for i := range 3 {
		publisher.mustPublish(t, "a/no/x", fmt.Sprint("withheld ", i))
		publisher.mustPublish(t, "a/ok/x", fmt.Sprint("delivered ", i))
	}
	for i := range 3 {
		want := fmt.Sprint("delivered ", i)
		if m := enfExpect(t, d5.msgs, "a/ok/x"); m.payload != want {
			t.Fatalf("MQTT 5 got %q, want %q", m.payload, want)
		}
		if m := enfExpect(t, msgs3, "a/ok/x"); m.payload != want {
			t.Fatalf("MQTT 3.1.1 got %q, want %q", m.payload, want)
		}
	}
	d5.alive(t)
	if !d3.IsConnectionOpen() {
		t.Fatal("withholding a message closed the MQTT 3.1.1 connection")
	}
}

// TestEnforceExplicitDeny: a Deny in one attached policy overrides the
// Allow of another.
func TestEnforceExplicitDeny(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "deny-some", enfDoc(
		enfDeny("iot:Connect", enfARN("client/banned-*")),
		enfDeny("iot:Publish", enfARN("topic/secret/*")),
		enfDeny("iot:Subscribe", enfARN("topicfilter/hidden/*")),
		enfDeny("iot:Receive", enfARN("topic/private/*"))))
	kp, arn := enfCert(t, c, "deny-some")
	allowAll(t, c, arn) // attached second; the Deny still wins
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")

	if code := ts.enfConnack5(t, kp, "banned-1"); code != enfNotAuthorized {
		t.Fatalf("a denied client ID: CONNACK %#x, want 0x87", code)
	}
	d := ts.enfMustDial5(t, kp, "member-1")
	if code := d.publish(t, "secret/x", 1, "denied"); code != enfNotAuthorized {
		t.Fatalf("a denied publish: PUBACK %#x, want 0x87", code)
	}
	if code := d.publish(t, "open/x", 1, "allowed"); !enfAccepted(code) {
		t.Fatalf("an allowed publish: PUBACK %#x", code)
	}
	if got := d.subscribe(t, "hidden/a", "open/#", "private/#"); len(got) != 3 || got[0] != enfNotAuthorized || got[1] != enfGrantedQoS1 || got[2] != enfGrantedQoS1 {
		t.Fatalf("SUBACK %#v, want [0x87, granted, granted]", got)
	}
	if enfDelivered(t, publisher.pub(), d.msgs, "private/x", "open/y") {
		t.Fatal("a message on a topic denied iot:Receive was delivered")
	}
	d.alive(t)
}

// TestEnforceLiveChanges: a change to a policy, its attachment, a thing's
// attributes or the certificate's things applies to live connections,
// without reconnecting.
func TestEnforceLiveChanges(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")

	t.Run("new default version", func(t *testing.T) {
		t.Parallel()
		v1 := enfDoc(enfConnectAny, enfAllow("iot:Subscribe", enfARN("topicfilter/live/#")), enfAllow("iot:Receive", enfARN("topic/live/*")))
		v2 := enfDoc(enfConnectAny, enfAllow("iot:Subscribe", enfARN("topicfilter/live/#")), enfAllow("iot:Receive", enfARN("topic/live/ctl")))
		enfPolicy(t, c, "live-receive", v1)
		kp, _ := enfCert(t, c, "live-receive")
		d := ts.enfMustDial5(t, kp, "live-sub")
		d.mustSubscribe(t, "live/#")
		delivered := func() bool { return enfDelivered(t, publisher.pub(), d.msgs, "live/data", "live/ctl") }
		if !delivered() {
			t.Fatal("version 1 allows iot:Receive on live/data, but it was not delivered")
		}
		if _, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("live-receive"), PolicyDocument: aws.String(v2), SetAsDefault: true}); err != nil {
			t.Fatal(err)
		}
		enfEventually(t, "a new default version without iot:Receive stops delivery", func() bool { return !delivered() })
		if _, err := c.SetDefaultPolicyVersion(ctx, &iot.SetDefaultPolicyVersionInput{PolicyName: aws.String("live-receive"), PolicyVersionId: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
		enfEventually(t, "the first version made default again delivers", delivered)
		d.alive(t)
	})
	t.Run("detach policy", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "live-publish", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/detach/*"))))
		kp, arn := enfCert(t, c, "live-publish")
		d := ts.enfMustDial5(t, kp, "live-pub")
		d.mustPublish(t, "detach/x", "attached")
		enfDetach(t, c, "live-publish", arn)
		enfPublishes(t, d, "detach/x", false)
		enfAttach(t, c, "live-publish", arn)
		enfPublishes(t, d, "detach/x", true)
	})
	t.Run("thing attribute", func(t *testing.T) {
		t.Parallel()
		enfThing(t, c, "sensor-live", map[string]string{"site": "north"})
		enfPolicy(t, c, "live-site", enfDoc(
			enfAllow("iot:Connect", enfARN("client/${iot:Connection.Thing.ThingName}")),
			enfAllow("iot:Publish", enfARN("topic/sites/${iot:Connection.Thing.Attributes[site]}/${iot:Connection.Thing.ThingName}/*"))))
		kp, arn := enfCert(t, c, "live-site")
		enfAttachThing(t, c, "sensor-live", arn, false)
		d := ts.enfMustDial5(t, kp, "sensor-live")
		d.mustPublish(t, "sites/north/sensor-live/t", "21.5")
		if code := d.publish(t, "sites/south/sensor-live/t", 1, "21.5"); code != enfNotAuthorized {
			t.Fatalf("another site: PUBACK %#x, want 0x87", code)
		}
		update := func(site string) {
			t.Helper()
			if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("sensor-live"),
				AttributePayload: &types.AttributePayload{Attributes: map[string]string{"site": site}, Merge: true}}); err != nil {
				t.Fatal(err)
			}
		}
		update("south")
		enfPublishes(t, d, "sites/south/sensor-live/t", true)
		enfPublishes(t, d, "sites/north/sensor-live/t", false)
		// An empty value in a merge removes the attribute: the variable no
		// longer resolves, and the statement allows nothing.
		update("")
		enfPublishes(t, d, "sites/south/sensor-live/t", false)
	})
	t.Run("thing principal", func(t *testing.T) {
		t.Parallel()
		enfThing(t, c, "dev-live", nil)
		enfThing(t, c, "gw-live", nil)
		enfPolicy(t, c, "live-thing", enfDoc(enfConnectAny, enfAllow("iot:Publish",
			enfARN("topic/things/${iot:Connection.Thing.ThingName}/*"), enfARN("topic/attached/${iot:Connection.Thing.IsAttached}"))))
		kp, arn := enfCert(t, c, "live-thing")
		d := ts.enfMustDial5(t, kp, "dev-live")
		if code := d.publish(t, "things/dev-live/x", 1, "no thing yet"); code != enfNotAuthorized {
			t.Fatalf("before the attachment: PUBACK %#x, want 0x87", code)
		}
		d.mustPublish(t, "attached/false", "not attached")
		enfAttachThing(t, c, "dev-live", arn, false)
		enfPublishes(t, d, "things/dev-live/x", true)
		enfPublishes(t, d, "attached/true", true)
		enfPublishes(t, d, "attached/false", false)
		if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("dev-live"), Principal: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		enfPublishes(t, d, "things/dev-live/x", false)
		enfPublishes(t, d, "attached/false", true)

		// A connection whose client ID names no thing takes the thing its
		// certificate is attached to exclusively, once attached.
		kp2, arn2 := enfCert(t, c, "live-thing")
		g := ts.enfMustDial5(t, kp2, "not-a-thing")
		if code := g.publish(t, "things/gw-live/x", 1, "no thing yet"); code != enfNotAuthorized {
			t.Fatalf("before the attachment: PUBACK %#x, want 0x87", code)
		}
		enfAttachThing(t, c, "gw-live", arn2, true)
		enfPublishes(t, g, "things/gw-live/x", true)
		if code := g.publish(t, "things/not-a-thing/x", 1, "client ID"); code != enfNotAuthorized {
			t.Fatalf("the client ID's topic: PUBACK %#x, want 0x87", code)
		}
	})
}

// TestEnforceVariables: the thing and certificate policy variables, as the
// README's sensor example uses them.
func TestEnforceVariables(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")

	t.Run("README sensor policy", func(t *testing.T) {
		t.Parallel()
		enfThing(t, c, "sensor-7", map[string]string{"site": "north"})
		enfPolicy(t, c, "sensor", enfDoc(
			enfAllow("iot:Connect", "arn:aws:iot:us-east-1:*:client/${iot:Connection.Thing.ThingName}"),
			enfAllow("iot:Publish", "arn:aws:iot:us-east-1:*:topic/sites/${iot:Connection.Thing.Attributes[site]}/${iot:Connection.Thing.ThingName}/*"),
			enfAllow("iot:Subscribe", "arn:aws:iot:us-east-1:*:topicfilter/commands/${iot:Connection.Thing.ThingName}/#"),
			enfAllow("iot:Receive", "arn:aws:iot:us-east-1:*:topic/commands/${iot:Connection.Thing.ThingName}/*")))
		kp, arn := enfCert(t, c, "sensor")
		enfAttachThing(t, c, "sensor-7", arn, false)

		if code := ts.enfConnack5(t, kp, "someone-else"); code != enfNotAuthorized {
			t.Fatalf("MQTT 5 as another client ID: CONNACK %#x, want 0x87", code)
		}
		if _, err := ts.connect(t, kp, "someone-else"); err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Fatalf("MQTT 3.1.1 as another client ID: %v, want CONNACK 5", err)
		}
		d := ts.enfMustDial5(t, kp, "sensor-7")
		d.mustPublish(t, "sites/north/sensor-7/temperature", "21.5")
		if code := d.publish(t, "sites/south/sensor-7/temperature", 1, "21.5"); code != enfNotAuthorized {
			t.Fatalf("another site: PUBACK %#x, want 0x87", code)
		}
		if code := d.publish(t, "sites/north/sensor-8/temperature", 1, "21.5"); code != enfNotAuthorized {
			t.Fatalf("another thing: PUBACK %#x, want 0x87", code)
		}
		if got := d.subscribe(t, "commands/sensor-7/#", "commands/sensor-8/#"); len(got) != 2 || got[0] != enfGrantedQoS1 || got[1] != enfNotAuthorized {
			t.Fatalf("SUBACK %#v, want [granted, 0x87]", got)
		}
		publisher.mustPublish(t, "commands/sensor-7/reboot", "now")
		if m := enfExpect(t, d.msgs, "commands/sensor-7/reboot"); m.payload != "now" {
			t.Fatalf("received %q", m.payload)
		}
		// MQTT 3.1.1 resolves the same way.
		d3, err := ts.connect(t, kp, "sensor-7") // takes the session over
		if err != nil {
			t.Fatal(err)
		}
		d3.publish(t, "sites/north/sensor-7/humidity", []byte("40"))
	})
	t.Run("exclusive thing", func(t *testing.T) {
		t.Parallel()
		enfThing(t, c, "gateway-1", nil)
		enfPolicy(t, c, "gateway", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/gw/${iot:Connection.Thing.ThingName}/*"))))
		kp, arn := enfCert(t, c, "gateway")
		enfAttachThing(t, c, "gateway-1", arn, true)
		d := ts.enfMustDial5(t, kp, "random-client-id")
		d.mustPublish(t, "gw/gateway-1/x", "exclusive thing")
		if code := d.publish(t, "gw/random-client-id/x", 1, "client ID"); code != enfNotAuthorized {
			t.Fatalf("PUBACK %#x, want 0x87", code)
		}
	})
	t.Run("non-exclusive thing of another name", func(t *testing.T) {
		t.Parallel()
		enfThing(t, c, "lamp-1", nil)
		enfPolicy(t, c, "lamp", enfDoc(enfConnectAny, enfAllow("iot:Publish",
			enfARN("topic/lamp/${iot:Connection.Thing.ThingName}/*"), enfARN("topic/attached/${iot:Connection.Thing.IsAttached}"))))
		kp, arn := enfCert(t, c, "lamp")
		enfAttachThing(t, c, "lamp-1", arn, false)
		d := ts.enfMustDial5(t, kp, "lamp-1")
		d.mustPublish(t, "lamp/lamp-1/x", "as the thing")
		d.mustPublish(t, "attached/true", "as the thing")
		// Another client ID: the certificate's thing is not exclusive, so
		// no thing resolves.
		o := ts.enfMustDial5(t, kp, "not-lamp")
		if code := o.publish(t, "lamp/lamp-1/x", 1, "not the thing"); code != enfNotAuthorized {
			t.Fatalf("PUBACK %#x, want 0x87", code)
		}
		if code := o.publish(t, "attached/true", 1, "not the thing"); code != enfNotAuthorized {
			t.Fatalf("PUBACK %#x, want 0x87", code)
		}
		o.mustPublish(t, "attached/false", "not the thing")
	})
	t.Run("client ID", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "by-client", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/devices/${iot:ClientId}/*"))))
		kp, _ := enfCert(t, c, "by-client")
		d := ts.enfMustDial5(t, kp, "c-1")
		d.mustPublish(t, "devices/c-1/hello", "mine")
		if code := d.publish(t, "devices/c-2/hello", 1, "another's"); code != enfNotAuthorized {
			t.Fatalf("PUBACK %#x, want 0x87", code)
		}
	})
	t.Run("certificate common name", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "by-cn", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/cn/${iot:Certificate.Subject.CommonName}/*"))))
		csr, key := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "xyz"})
		out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
		if err != nil {
			t.Fatal(err)
		}
		enfAttach(t, c, "by-cn", *out.CertificateArn)
		kp := newKeyPair(t, *out.CertificatePem, testpki.KeyPEM(t, key))
		d := ts.enfMustDial5(t, kp, "cn-device")
		d.mustPublish(t, "cn/xyz/a", "its CN")
		if code := d.publish(t, "cn/abc/a", 1, "another CN"); code != enfNotAuthorized {
			t.Fatalf("PUBACK %#x, want 0x87", code)
		}
	})
}

// enfReadmeClaimPolicy is the claim policy of the README's fleet-provisioning
// walkthrough, as written there.
const enfReadmeClaimPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
      "arn:aws:iot:us-east-1:*:topic/$aws/certificates/create/*",
      "arn:aws:iot:us-east-1:*:topic/$aws/certificates/create-from-csr/*"]},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
      "arn:aws:iot:us-east-1:*:topicfilter/$aws/certificates/create/*",
      "arn:aws:iot:us-east-1:*:topicfilter/$aws/certificates/create-from-csr/*"]}
  ]
}`

// TestEnforceFleetProvisioningClaim: the claim policy of AWS's
// fleet-provisioning guide lets a claim certificate provision over MQTT;
// without iot:Receive on the reply topic no reply arrives, and without
// iot:Subscribe the subscription is refused.
func TestEnforceFleetProvisioningClaim(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "claim", enfReadmeClaimPolicy)

	t.Run("README claim policy", func(t *testing.T) {
		t.Parallel()
		kp, _ := enfCert(t, c, "claim")
		d, err := ts.connect(t, kp, "claim-device")
		if err != nil {
			t.Fatal(err)
		}
		topic, reply := d.request(t, "$aws/certificates/create", "json", map[string]any{})
		if topic != "$aws/certificates/create/json/accepted" || reply["certificatePem"] == nil || reply["privateKey"] == nil {
			t.Fatalf("CreateKeysAndCertificate: reply on %s: %v", topic, reply)
		}
		csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "device-1"})
		topic, reply = d.request(t, "$aws/certificates/create-from-csr", "json", map[string]string{"certificateSigningRequest": csr})
		if topic != "$aws/certificates/create-from-csr/json/accepted" || reply["certificatePem"] == nil {
			t.Fatalf("CreateCertificateFromCsr: reply on %s: %v", topic, reply)
		}
		// Nothing else: the claim certificate publishes nowhere else.
		d5 := ts.enfMustDial5(t, kp, "claim-device-5")
		if code := d5.publish(t, "telemetry/x", 1, "x"); code != enfNotAuthorized {
			t.Fatalf("a claim certificate published elsewhere: PUBACK %#x", code)
		}
	})
	t.Run("without iot:Receive", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "claim-no-receive", enfDoc(enfConnectAny,
			enfAllow("iot:Publish", enfARN("topic/$aws/certificates/create/*")),
			enfAllow("iot:Subscribe", enfARN("topicfilter/$aws/certificates/create/*")),
			// A topic of its own, for the control message.
			enfAllow("iot:Publish,iot:Receive", enfARN("topic/claim/ctl")),
			enfAllow("iot:Subscribe", enfARN("topicfilter/claim/ctl"))))
		kp, _ := enfCert(t, c, "claim-no-receive")
		d := ts.enfMustDial5(t, kp, "claim-no-receive")
		d.mustSubscribe(t, "$aws/certificates/create/json/accepted", "$aws/certificates/create/json/rejected", "claim/ctl")
		// The reply, if any, is written while the request is served, before
		// its PUBACK; the control message comes after it.
		d.mustPublish(t, "$aws/certificates/create/json", "{}")
		d.mustPublish(t, "claim/ctl", "control")
		if m := enfNext(t, d.msgs); m.topic != "claim/ctl" {
			t.Fatalf("a claim certificate without iot:Receive on %s got its reply (%.80q)", m.topic, m.payload)
		}
		// The request was served all the same: only its reply was withheld.
		served := false
		for _, line := range strings.Split(ts.logs.String(), "\n") {
			var entry struct {
				Msg       string `json:"msg"`
				ClientID  string `json:"client_id"`
				Status    int    `json:"status"`
				Delivered *bool  `json:"delivered"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "mqtt request" && entry.ClientID == "claim-no-receive" {
				served = entry.Status == 200 && entry.Delivered != nil && !*entry.Delivered
				if !served {
					t.Fatalf("the request's log line: %s", line)
				}
			}
		}
		if !served {
			t.Fatal("no log line of the request: it was not served")
		}
	})
	t.Run("without iot:Subscribe", func(t *testing.T) {
		t.Parallel()
		enfPolicy(t, c, "claim-no-subscribe", enfDoc(enfConnectAny,
			enfAllow("iot:Publish,iot:Receive", enfARN("topic/$aws/certificates/create/*"))))
		kp, _ := enfCert(t, c, "claim-no-subscribe")
		d5 := ts.enfMustDial5(t, kp, "claim-no-subscribe-5")
		if got := d5.subscribe(t, "$aws/certificates/create/json/accepted"); len(got) != 1 || got[0] != enfNotAuthorized {
			t.Fatalf("MQTT 5 SUBACK %#v, want [0x87]", got)
		}
		d3, err := ts.connect(t, kp, "claim-no-subscribe-311")
		if err != nil {
			t.Fatal(err)
		}
		d3.Subscribe("$aws/certificates/create/json/accepted", 1, nil)
		enfLost(t, d3, "a subscription to the reply topic without iot:Subscribe")
	})
}

// TestEnforceWill: a will on a topic the policies do not allow is dropped;
// one they allow is published when the connection drops.
func TestEnforceWill(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "will-device", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/will/ok/*"))))
	kp, _ := enfCert(t, c, "will-device")
	watcher := ts.enfMustDial5(t, ts.claim(t, c), "watcher")
	watcher.mustSubscribe(t, "will/#")

	// Each dial returns the device's raw connection, to drop it without a
	// DISCONNECT, which has the broker publish the will.
	dials := map[string]func(t *testing.T, clientID, topic, payload string) net.Conn{
		"MQTT 5": func(t *testing.T, clientID, topic, payload string) net.Conn {
			d, code, err := ts.enfDial5(t, kp, clientID, &paho5.WillMessage{Topic: topic, Payload: []byte(payload), QoS: 1})
			if err != nil || code != 0 {
				t.Fatalf("connecting with a will on %s: CONNACK %#x, %v", topic, code, err)
			}
			return d.conn
		},
		"MQTT 3.1.1": func(t *testing.T, clientID, topic, payload string) net.Conn {
			conns := make(chan net.Conn, 1)
			_, err := ts.connectWith(t, kp, clientID, func(o *mqtt3.ClientOptions) {
				o.SetWill(topic, payload, 1, false)
				o.SetCustomOpenConnectionFn(func(uri *url.URL, opts mqtt3.ClientOptions) (net.Conn, error) {
					conn, err := tls.Dial("tcp", uri.Host, opts.TLSConfig)
					if err == nil {
						conns <- conn
					}
					return conn, err
				})
			})
			if err != nil {
				t.Fatalf("connecting with a will on %s: %v", topic, err)
			}
			return <-conns
		},
	}
	for _, proto := range []string{"MQTT 5", "MQTT 3.1.1"} {
		t.Run(proto, func(t *testing.T) {
			id := strings.ReplaceAll(strings.ToLower(proto), " ", "-")
			// The watcher is the only other connection.
			conn := dials[proto](t, "denied-"+id, "will/no/"+id, "denied will")
			if n := enfConnected(t, ts); n != 2 {
				t.Fatalf("%d devices connected, want 2", n)
			}
			conn.Close()
			// The broker publishes a will before it counts the connection
			// gone: once it is, the will was published or dropped.
			enfEventually(t, "the dropped connection is gone", func() bool { return enfConnected(t, ts) == 1 })
			watcher.mustPublish(t, "will/ok/control", id)
			if m := enfNext(t, watcher.msgs); m.topic != "will/ok/control" {
				t.Fatalf("received %s (%q) first: a will on a topic no policy allows was published", m.topic, m.payload)
			}

			conn = dials[proto](t, "allowed-"+id, "will/ok/"+id, "allowed will")
			conn.Close()
			if m := enfExpect(t, watcher.msgs, "will/ok/"+id); m.payload != "allowed will" {
				t.Fatalf("the will's payload %q", m.payload)
			}
			enfEventually(t, "the dropped connection is gone", func() bool { return enfConnected(t, ts) == 1 })
		})
	}
}

// TestEnforceReplicas: a change made through one replica's API reaches a
// live connection on the other within its change poll.
func TestEnforceReplicas(t *testing.T) {
	t.Parallel()
	replicas := startReplicas(t, 2, func(c *config.Config) { c.ChangePoll = 100 * time.Millisecond })
	a, b := replicas[0].iotClient(), replicas[1]
	ctx := context.Background()

	enfPolicy(t, a, "replica-pub", enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/rep/*"))))
	kp, arn := enfCert(t, a, "replica-pub")
	d := b.enfMustDial5(t, kp, "rep-device")
	d.mustPublish(t, "rep/no/x", "allowed at first")

	// A new default version, through replica A.
	narrow := enfDoc(enfConnectAny, enfAllow("iot:Publish", enfARN("topic/rep/ok/*")))
	if _, err := a.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("replica-pub"), PolicyDocument: aws.String(narrow), SetAsDefault: true}); err != nil {
		t.Fatal(err)
	}
	enfPublishes(t, d, "rep/no/x", false)
	d.mustPublish(t, "rep/ok/x", "still allowed")

	// Detached and attached again, through replica A.
	enfDetach(t, a, "replica-pub", arn)
	enfPublishes(t, d, "rep/ok/x", false)
	enfAttach(t, a, "replica-pub", arn)
	enfPublishes(t, d, "rep/ok/x", true)

	// A thing's attribute, through replica A.
	enfThing(t, a, "rep-thing", map[string]string{"site": "one"})
	enfPolicy(t, a, "replica-site", enfDoc(enfAllow("iot:Publish", enfARN("topic/site/${iot:Connection.Thing.Attributes[site]}/*"))))
	enfAttach(t, a, "replica-site", arn)
	enfAttachThing(t, a, "rep-thing", arn, true)
	enfPublishes(t, d, "site/one/x", true)
	if _, err := a.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("rep-thing"),
		AttributePayload: &types.AttributePayload{Attributes: map[string]string{"site": "two"}, Merge: true}}); err != nil {
		t.Fatal(err)
	}
	enfPublishes(t, d, "site/two/x", true)
	enfPublishes(t, d, "site/one/x", false)

	// Receive, on a subscriber of replica B.
	v1 := enfDoc(enfConnectAny, enfAllow("iot:Subscribe", enfARN("topicfilter/rr/#")), enfAllow("iot:Receive", enfARN("topic/rr/*")))
	v2 := enfDoc(enfConnectAny, enfAllow("iot:Subscribe", enfARN("topicfilter/rr/#")), enfAllow("iot:Receive", enfARN("topic/rr/ctl")))
	enfPolicy(t, a, "replica-recv", v1)
	skp, _ := enfCert(t, a, "replica-recv")
	sub := b.enfMustDial5(t, skp, "rep-sub")
	sub.mustSubscribe(t, "rr/#")
	publisher := b.enfMustDial5(t, b.claim(t, a), "rep-publisher")
	delivered := func() bool { return enfDelivered(t, publisher.pub(), sub.msgs, "rr/data", "rr/ctl") }
	if !delivered() {
		t.Fatal("rr/data was not delivered before the change")
	}
	if _, err := a.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("replica-recv"), PolicyDocument: aws.String(v2), SetAsDefault: true}); err != nil {
		t.Fatal(err)
	}
	enfEventually(t, "a version without iot:Receive, made on replica A, stops delivery on B", func() bool { return !delivered() })
	sub.alive(t)
	d.alive(t)

	// A certificate made INACTIVE through replica A: its device on B is
	// disconnected through the change feed (the sweep runs once an hour).
	if _, err := a.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(kp.id), NewStatus: types.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Done():
	case <-time.After(waitLimit):
		t.Fatal("the device of a certificate deactivated on replica A stayed connected to B")
	}
}

// TestEnforceSkipPolicies: --insecure-skip-policies lets a certificate
// without policies connect, publish, subscribe and receive, says so in the
// log, and keeps the topic rules.
func TestEnforceSkipPolicies(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, "", func(c *config.Config) { c.InsecureSkipPolicies = true })
	c := ts.iotClient()
	kp, _ := enfCert(t, c)

	d3, err := ts.connect(t, kp, "bare-311")
	if err != nil {
		t.Fatalf("MQTT 3.1.1 without policies: %v", err)
	}
	d5 := ts.enfMustDial5(t, kp, "bare-5")
	// At QoS 0, so that paho.golang writes no PUBACK from its own
	// goroutine while this one publishes: its packets' writes interleave
	// on a TLS connection (see enfNoPinger), and the broker then reads a
	// malformed packet and closes the connection.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if sa, err := d5.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "skip/#", QoS: 0}}}); err != nil || sa.Reasons[0] >= 0x80 {
		t.Fatalf("subscribe skip/#: %+v, %v", sa, err)
	}
	d3.publish(t, "skip/311", []byte("from 3.1.1"))
	d5.mustPublish(t, "skip/5", "from 5")
	// The broker acknowledges a publish before it routes it, so the two
	// may arrive in either order.
	got := []string{enfNext(t, d5.msgs).topic, enfNext(t, d5.msgs).topic}
	slices.Sort(got)
	if want := []string{"skip/311", "skip/5"}; !slices.Equal(got, want) {
		t.Fatalf("received %q, want %q", got, want)
	}

	// The topic rules are not policies: they stay.
	if code := d5.publish(t, "$aws/things/x/shadow/update", 1, "{}"); code != enfNotAuthorized {
		t.Fatalf("a publish on a reserved topic: PUBACK %#x, want 0x87", code)
	}
	if got := d5.subscribe(t, "$aws/things/#"); len(got) != 1 || got[0] < 0x80 {
		t.Fatalf("a subscription to reserved topics: SUBACK %#v", got)
	}

	warned := false
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(strings.ToLower(line), "not enforced") {
			warned = true
		}
	}
	if !warned {
		t.Fatal("no warning in the log that policies are not enforced")
	}
}

// TestEnforceReceiveDuringSubscribe: a message on a topic no policy allows
// the subscriber to receive is withheld also while a SUBSCRIBE to a filter
// of the same name is processed. A publisher floods the topic while the
// subscriber subscribes to it again and again (iot:Subscribe allows it,
// iot:Receive does not); a message delivered in that window leaks.
func TestEnforceReceiveDuringSubscribe(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "subscribe-only", enfDoc(enfConnectAny,
		enfAllow("iot:Subscribe", enfARN("topicfilter/window/*")), enfAllow("iot:Receive", enfARN("topic/window/ctl"))))
	kp, _ := enfCert(t, c, "subscribe-only")
	publisher := ts.enfMustDial5(t, ts.claim(t, c), "publisher")
	d := ts.enfMustDial5(t, kp, "subscriber")
	d.mustSubscribe(t, "window/ctl", "window/x")

	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := publisher.Publish(context.Background(), &paho5.Publish{Topic: "window/x", QoS: 0, Payload: []byte("withheld")}); err != nil {
				return
			}
		}
	}()
	// Subscribing again, with and without unsubscribing first, is granted
	// as AWS grants it (Subscribe allows it), and nothing on window/x may
	// get through meanwhile: mochi asks one question for the filter check
	// and a delivery.
	deadline := time.Now().Add(300 * time.Millisecond)
	for i := 0; time.Now().Before(deadline) && len(d.msgs) == 0; i++ {
		if i%2 == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			_, err := d.Unsubscribe(ctx, &paho5.Unsubscribe{Topics: []string{"window/x"}})
			cancel()
			if err != nil {
				t.Fatalf("unsubscribe: %v", err)
			}
		}
		if codes := d.subscribe(t, "window/x"); codes[0] != 1 {
			t.Fatalf("subscribing to window/x again: code %#x, want 1", codes[0])
		}
	}
	close(stop)
	<-done
	publisher.mustPublish(t, "window/ctl", "control")
	if m := enfNext(t, d.msgs); m.topic != "window/ctl" {
		t.Fatalf("a message on %s, which no policy allows the subscriber to receive, was delivered while it subscribed", m.topic)
	}
}

// TestEnforceQueuedMessagesOnResume: messages queued for an offline
// persistent session were checked against the grant in force when they were
// queued; the session's resumption checks them against the device's grant
// now, so a device whose policies no longer let it receive them, or another
// certificate taking the session over by its client ID, does not get them.
func TestEnforceQueuedMessagesOnResume(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	enfPolicy(t, c, "orders", enfDoc(enfConnectAny, enfAllow("iot:Subscribe", enfARN("topicfilter/orders/*")),
		enfAllow("iot:Receive", enfARN("topic/orders/*"))))
	enfPolicy(t, c, "open-only", enfDoc(enfConnectAny, enfAllow("iot:Publish,iot:Receive", enfARN("topic/orders/open"))))
	owner, _ := enfCert(t, c, "orders")
	other, _ := enfCert(t, c, "open-only")
	got := make(chan mqtt3.Message, 100)
	persistent := func(o *mqtt3.ClientOptions) {
		o.SetCleanSession(false)
		o.SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) { got <- m })
	}
	d, err := ts.connectWith(t, owner, "queue-1", persistent)
	if err != nil {
		t.Fatal(err)
	}
	if tok := d.Subscribe("orders/+", 1, nil); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	d.Disconnect(100)
	// Published only once the broker has the session offline: a message
	// delivered to the closing connection would not be queued.
	enfEventually(t, "the owner is offline", func() bool { return enfConnected(t, ts) == 0 })
	publisher := ts.mustConnect(t, ts.claim(t, c))
	publisher.publish(t, "orders/secret", []byte("for the owner"))
	publisher.publish(t, "orders/open", []byte("for anyone"))
	// Another certificate, allowed to receive orders/open only, resumes the
	// session by its client ID.
	resumed, err := ts.connectWith(t, other, "queue-1", persistent)
	if err != nil {
		t.Fatal(err)
	}
	// The broker resends the queued messages before it reads anything the
	// device sends, so by the time the device's own message comes back,
	// whatever was resent has arrived.
	resumed.publish(t, "orders/open", []byte("self"))
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "orders/open=self" {
		m := receive(t, got)
		seen = append(seen, m.Topic()+"="+string(m.Payload()))
	}
	if want := []string{"orders/open=for anyone", "orders/open=self"}; !slices.Equal(seen, want) {
		t.Fatalf("the resuming certificate received %q, want %q", seen, want)
	}
}
