package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"
)

// waitLimit bounds every wait for the broker; it is a deadlock guard, not a
// performance expectation.
const waitLimit = 10 * time.Second

// keyPair is a device's certificate and key, as PEM and for TLS.
type keyPair struct {
	id              string
	certPEM, keyPEM string
	tls             tls.Certificate
}

func newKeyPair(t testing.TB, certPEM, keyPEM string) keyPair {
	t.Helper()
	c, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{id: sha256Hex(leaf.Raw), certPEM: certPEM, keyPEM: keyPEM, tls: c}
}

// claim makes an ACTIVE certificate through the control plane, as a fleet
// owner makes claim certificates, and attaches allowAllPolicy to it, so
// that the device may do whatever the topic rules allow.
func (ts *testServer) claim(t testing.TB, c *iot.Client) keyPair {
	t.Helper()
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	allowAll(t, c, *out.CertificateArn)
	return newKeyPair(t, *out.CertificatePem, *out.KeyPair.PrivateKey)
}

// activate makes a certificate ACTIVE and attaches allowAllPolicy to it,
// as an owner does before the device connects.
func activate(t testing.TB, c *iot.Client, id string) {
	t.Helper()
	setStatus(t, c, id, "ACTIVE")
	out, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	allowAll(t, c, *out.CertificateDescription.CertificateArn)
}

// allowAllPolicy allows every IoT action on every resource.
const allowAllPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}`

// allowAll attaches allowAllPolicy (made in the client's account when it
// has none) to the certificate.
func allowAll(t testing.TB, c *iot.Client, certificateARN string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("allow-all"), PolicyDocument: aws.String(allowAllPolicy)})
	if err != nil && !isErr[*types.ResourceAlreadyExistsException](err) {
		t.Fatal(err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("allow-all"), Target: aws.String(certificateARN)}); err != nil {
		t.Fatal(err)
	}
}

var clientCounter atomic.Int64

// device is a connected MQTT client.
type device struct {
	paho.Client
	lost chan error
}

// connect opens an MQTT 3.1.1 connection over mutual TLS, trusting fleetca's
// root as a device would.
func (ts *testServer) connect(t testing.TB, kp keyPair, clientID string) (*device, error) {
	t.Helper()
	return ts.connectWith(t, kp, clientID, nil)
}

// connectWithWill connects with a last will on topic.
func (ts *testServer) connectWithWill(t testing.TB, kp keyPair, topic, payload string) (*device, error) {
	t.Helper()
	return ts.connectWith(t, kp, "", func(o *paho.ClientOptions) { o.SetWill(topic, payload, 1, false) })
}

// connectAs connects naming an account in the TLS server name, as a device
// of an account-specific endpoint does.
func (ts *testServer) connectAs(t testing.TB, kp keyPair, account string) (*device, error) {
	t.Helper()
	return ts.connectWith(t, kp, "", func(o *paho.ClientOptions) { o.TLSConfig.ServerName = account + ".localhost" })
}

func (ts *testServer) connectWith(t testing.TB, kp keyPair, clientID string, configure func(*paho.ClientOptions)) (*device, error) {
	t.Helper()
	if clientID == "" {
		clientID = fmt.Sprintf("device-%d", clientCounter.Add(1))
	}
	roots := x509.NewCertPool()
	roots.AddCert(ts.rootCA(t))
	d := &device{lost: make(chan error, 1)}
	opts := paho.NewClientOptions().
		AddBroker("ssl://" + ts.MQTTAddr()).
		SetClientID(clientID).
		SetTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp.tls}, ServerName: "localhost"}).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitLimit).
		SetOrderMatters(true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { d.lost <- err })
	if configure != nil {
		configure(opts)
	}
	d.Client = paho.NewClient(opts)
	tok := d.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { d.Disconnect(0) })
	return d, nil
}

func (ts *testServer) mustConnect(t testing.TB, kp keyPair) *device {
	t.Helper()
	d, err := ts.connect(t, kp, "")
	if err != nil {
		t.Fatalf("connecting with %s: %v", kp.id, err)
	}
	return d
}

// subscribe subscribes to the topics and returns their messages.
func (d *device) subscribe(t testing.TB, topics ...string) <-chan paho.Message {
	t.Helper()
	ch := make(chan paho.Message, 16)
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	tok := d.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) { ch <- m })
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", topics, tok.Error())
	}
	for tp, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x80 {
			t.Fatalf("subscription to %s refused", tp)
		}
	}
	return ch
}

func (d *device) publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	tok := d.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func receive(t testing.TB, ch <-chan paho.Message) paho.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no message")
		return nil
	}
}

// request publishes a fleet-provisioning request and returns the topic and
// decoded payload of its reply.
func (d *device) request(t testing.TB, base, format string, body any) (string, map[string]any) {
	t.Helper()
	replies := d.subscribe(t, base+"/"+format+"/accepted", base+"/"+format+"/rejected")
	d.publish(t, base+"/"+format, encodeAs(t, format, body))
	m := receive(t, replies)
	return m.Topic(), decodeAs(t, format, m.Payload())
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

// cborAsJSON decodes CBOR maps as map[string]any, as JSON does, so that a
// reply's nested maps compare the same in both formats.
var cborAsJSON = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil))}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func decodeAs(t testing.TB, format string, b []byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	var err error
	if format == "cbor" {
		err = cborAsJSON.Unmarshal(b, &out)
	} else {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		t.Fatalf("reply %q is not %s: %v", b, format, err)
	}
	return out
}

func setStatus(t testing.TB, c *iot.Client, id string, status string) {
	t.Helper()
	if _, err := c.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: typesStatus(status)}); err != nil {
		t.Fatal(err)
	}
}
