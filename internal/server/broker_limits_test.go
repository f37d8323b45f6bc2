package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// subackCodes subscribes to filters and returns the SUBACK code of each.
func subackCodes(t *testing.T, d *device, filters ...string) map[string]byte {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := d.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(waitLimit) {
		t.Fatal("no SUBACK")
	}
	return tok.(*paho.SubscribeToken).Result()
}

// TestBrokerLimits: the limits AWS documents per connection, which also
// bound what one device can make the broker hold.
func TestBrokerLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()

	t.Run("50 subscriptions", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		var filters []string
		for i := range 50 {
			filters = append(filters, fmt.Sprintf("fleet/%d/#", i))
		}
		for f, code := range subackCodes(t, d, filters...) {
			if code != 1 {
				t.Fatalf("subscription %d of 50 (%s) refused: %#x", len(filters), f, code)
			}
		}
		if code := subackCodes(t, d, "one/too/many")["one/too/many"]; code != 0x80 {
			t.Fatalf("the 51st subscription: SUBACK %#x, want 0x80", code)
		}
		// Subscribing again to a filter it has is no new subscription.
		if code := subackCodes(t, d, "fleet/0/#")["fleet/0/#"]; code != 1 {
			t.Fatalf("resubscribing: SUBACK %#x", code)
		}
	})
	t.Run("topic length and depth", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		long := strings.Repeat("t", 257)
		deep := "a/b/c/d/e/f/g/h/i"
		ok7 := "a/b/c/d/e/f/g/h"
		codes := subackCodes(t, d, long, deep, ok7, "$share//#", "$share/g+/x")
		for f, want := range map[string]byte{long: 0x80, deep: 0x80, ok7: 1, "$share//#": 0x80, "$share/g+/x": 0x80} {
			if codes[f] != want {
				t.Errorf("SUBACK for %.40q: %#x, want %#x", f, codes[f], want)
			}
		}
		d.Publish(long, 1, false, []byte("x"))
		select {
		case <-d.lost:
		case <-time.After(waitLimit):
			t.Fatal("a publish to a 257-byte topic was accepted")
		}
	})
	t.Run("a QoS 2 publish ends the connection", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		d.Publish("qos/two", 2, false, []byte("x"))
		select {
		case <-d.lost:
		case <-time.After(waitLimit):
			t.Fatal("a QoS 2 publish was accepted")
		}
	})
	t.Run("QoS 2 is granted as QoS 1", func(t *testing.T) {
		d := ts.mustConnect(t, ts.claim(t, c))
		tok := d.Subscribe("qos/two", 2, nil)
		if !tok.WaitTimeout(waitLimit) {
			t.Fatal("no SUBACK")
		}
		if code := tok.(*paho.SubscribeToken).Result()["qos/two"]; code != 1 {
			t.Fatalf("SUBACK %#x, want QoS 1", code)
		}
	})
	t.Run("wildcards do not reach reserved topics", func(t *testing.T) {
		ca := testpki.NewRoot(t, "p256", "Events CA")
		caID := registerCAWithAutoRegistration(t, c, ca)
		// Separate clients: paho routes a message to every handler whose
		// filter matches locally, whichever subscription brought it.
		wild := make(chan paho.Message, 4)
		for _, f := range []string{"#", "+/#"} {
			d := ts.mustConnect(t, ts.claim(t, c))
			tok := d.Subscribe(f, 1, func(_ paho.Client, m paho.Message) { wild <- m })
			if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
		}
		events := ts.mustConnect(t, ts.claim(t, c)).subscribe(t, "$aws/events/certificates/registered/"+caID)
		ts.connect(t, caLeaf(t, ca, "jitr"), "")
		receive(t, events)
		select {
		case m := <-wild:
			t.Fatalf("a wildcard filter received %s", m.Topic())
		case <-time.After(300 * time.Millisecond):
		}
	})
	t.Run("MQTT 5 CONNACK", func(t *testing.T) {
		props := connackProperties(t, ts, 0, 0xFFFFFFFF)
		for id, want := range map[byte]uint32{
			0x13: 1200, // server keep alive: 0 is not "forever"
			0x11: 3600, // session expiry interval: at most an hour
			0x21: 100,  // receive maximum
			0x24: 1,    // maximum QoS
		} {
			if got, ok := props[id]; !ok || got != want {
				t.Errorf("CONNACK property %#x = %d (present %v), want %d", id, got, ok, want)
			}
		}
		if props := connackProperties(t, ts, 5, 0); props[0x13] != 30 {
			t.Errorf("keep alive 5 became %d, want 30", props[0x13])
		}
	})
}

// registerCAWithAutoRegistration registers ca in DEFAULT mode, ACTIVE, with
// auto-registration.
func registerCAWithAutoRegistration(t *testing.T, c *iot.Client, ca *testpki.CA) string {
	t.Helper()
	out, err := c.RegisterCACertificate(context.Background(), &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, c))),
		SetAsActive: true, AllowAutoRegistration: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateId)
}

// connackProperties connects with a hand-written MQTT 5 CONNECT (keepalive,
// session expiry) and returns the CONNACK's integer properties.
func connackProperties(t *testing.T, ts *testServer, keepalive uint16, expiry uint32) map[byte]uint32 {
	t.Helper()
	kp := ts.claim(t, ts.iotClient())
	roots := x509.NewCertPool()
	roots.AddCert(ts.rootCA(t))
	conn, err := tls.Dial("tcp", ts.MQTTAddr(), &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{kp.tls}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	clientID := "raw-v5"
	var body []byte
	body = append(body, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02)
	body = binary.BigEndian.AppendUint16(body, keepalive)
	body = append(body, 5, 0x11)
	body = binary.BigEndian.AppendUint32(body, expiry)
	body = binary.BigEndian.AppendUint16(body, uint16(len(clientID)))
	body = append(body, clientID...)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	header, err := r.ReadByte()
	if err != nil || header != 0x20 {
		t.Fatalf("no CONNACK: %#x %v", header, err)
	}
	packet := make([]byte, readVarint(t, r))
	if _, err := io.ReadFull(r, packet); err != nil {
		t.Fatal(err)
	}
	if packet[1] != 0 {
		t.Fatalf("CONNACK reason %#x", packet[1])
	}
	pr := bufio.NewReader(strings.NewReader(string(packet[2:])))
	n := readVarint(t, pr)
	raw := make([]byte, n)
	io.ReadFull(pr, raw)
	props := map[byte]uint32{}
	for i := 0; i < len(raw); {
		id := raw[i]
		i++
		switch id {
		case 0x11: // four-byte integers
			props[id] = binary.BigEndian.Uint32(raw[i:])
			i += 4
		case 0x13, 0x21, 0x22: // two-byte integers
			props[id] = uint32(binary.BigEndian.Uint16(raw[i:]))
			i += 2
		case 0x24, 0x25, 0x28, 0x29, 0x2A: // bytes
			props[id] = uint32(raw[i])
			i++
		case 0x27: // maximum packet size
			props[id] = binary.BigEndian.Uint32(raw[i:])
			i += 4
		case 0x12, 0x1A, 0x1C, 0x1F: // strings
			i += 2 + int(binary.BigEndian.Uint16(raw[i:]))
		default:
			t.Fatalf("CONNACK property %#x not understood", id)
		}
	}
	return props
}

func readVarint(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n
		}
		shift += 7
	}
}

// TestPersistentSessionKeepsQoS1Messages: messages published while a device
// with a persistent session is offline reach it when it comes back, as MQTT
// and AWS IoT promise.
func TestPersistentSessionKeepsQoS1Messages(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	kp := ts.claim(t, c)
	got := make(chan paho.Message, 100)
	persistent := func(o *paho.ClientOptions) {
		o.SetCleanSession(false)
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m })
	}
	d, err := ts.connectWith(t, kp, "persistent-1", persistent)
	if err != nil {
		t.Fatal(err)
	}
	if tok := d.Subscribe("orders/#", 1, nil); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	d.Disconnect(100)
	publisher := ts.mustConnect(t, ts.claim(t, c))
	const n = 50
	for i := range n {
		publisher.publish(t, "orders/new", []byte(fmt.Sprint(i)))
	}
	if _, err := ts.connectWith(t, kp, "persistent-1", persistent); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case m := <-got:
			seen[string(m.Payload())] = true
		case <-time.After(waitLimit):
			t.Fatalf("%d of %d messages sent while offline were delivered", len(seen), n)
		}
	}
}

// TestProvisioningRateLimit: fleet-provisioning requests are bounded per
// account, and a device over the bound is told so with 429 Throttled.
func TestProvisioningRateLimit(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, "", func(cfg *config.Config) { cfg.MQTTProvisioningRate, cfg.MQTTProvisioningBurst = 0.5, 2 })
	c := ts.iotClient()
	d := ts.mustConnect(t, ts.claim(t, c))
	statuses := map[float64]int{}
	csr, _ := testpki.NewCSR(t, "p256", pkixName("rate"))
	for range 4 {
		topic, reply := d.request(t, "$aws/certificates/create-from-csr", "json", map[string]string{"certificateSigningRequest": csr})
		if strings.HasSuffix(topic, "/accepted") {
			statuses[200]++
			continue
		}
		code, _ := reply["statusCode"].(float64)
		if code != 429 || reply["errorCode"] != "Throttled" {
			t.Fatalf("rejected with %v", reply)
		}
		statuses[code]++
	}
	if statuses[200] != 2 || statuses[429] != 2 {
		t.Fatalf("answers %v, want 2 accepted then 2 throttled", statuses)
	}
}

// TestDeviceMemoryIsBounded: a subscriber that stops reading while 60 MB of
// QoS 1 messages are published to it holds at most what AWS's limits allow
// (100 in flight, 64 queued for writing), not all of it, and does not stall
// the publisher: once a write to it has waited --mqtt-write-timeout, it is
// disconnected. Not parallel: it measures the heap.
func TestDeviceMemoryIsBounded(t *testing.T) {
	ts := startServerWith(t, "", func(c *config.Config) { c.MQTTWriteTimeout = time.Second })
	c := ts.iotClient()
	block := make(chan struct{})
	defer close(block)
	stuck, err := ts.connectWith(t, ts.claim(t, c), "stuck", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok := stuck.Subscribe("flood/#", 1, func(paho.Client, paho.Message) { <-block }); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	publisher := ts.mustConnect(t, ts.claim(t, c))
	before := heapInUse()
	payload := []byte(strings.Repeat("m", 120<<10))
	const n = 500
	for i := range n {
		tok := publisher.Publish("flood/big", 1, false, payload)
		if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	growth := int64(heapInUse()) - int64(before)
	t.Logf("%d MB published to a subscriber that stopped reading; heap grew %d MiB", n*len(payload)>>20, growth>>20)
	if growth > 32<<20 {
		t.Fatalf("the heap grew by %d MiB for one stuck device", growth>>20)
	}
}

// TestPersistentSessionsAreBounded: one certificate leaving persistent
// sessions behind under new client IDs keeps at most ten, and each offline
// session queues at most 1 MiB, so offline sessions cannot exhaust the
// broker's memory either.
func TestPersistentSessionsAreBounded(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	kp := ts.claim(t, c)
	got := map[string]chan paho.Message{}
	persistent := func(id string) func(o *paho.ClientOptions) {
		if got[id] == nil {
			got[id] = make(chan paho.Message, 100)
		}
		ch := got[id]
		return func(o *paho.ClientOptions) {
			o.SetCleanSession(false)
			o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- m })
		}
	}
	const sessions = 12
	for i := range sessions {
		id := fmt.Sprint("bounded-", i)
		d, err := ts.connectWith(t, kp, id, persistent(id))
		if err != nil {
			t.Fatal(err)
		}
		if tok := d.Subscribe("queue/#", 1, nil); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		d.Disconnect(50)
	}
	publisher := ts.mustConnect(t, ts.claim(t, c))
	payload := []byte(strings.Repeat("q", 120<<10))
	for range 12 {
		publisher.publish(t, "queue/x", payload)
	}
	// The broker acknowledges a publish before it delivers it; one more
	// publish that a live subscriber receives marks the end of the queue.
	sync := ts.mustConnect(t, ts.claim(t, c)).subscribe(t, "sync")
	publisher.publish(t, "sync", []byte("done"))
	receive(t, sync)
	count := func(id string) int {
		if _, err := ts.connectWith(t, kp, id, persistent(id)); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			select {
			case <-got[id]:
				n++
			case <-time.After(time.Second):
				return n
			}
		}
	}
	if n := count(fmt.Sprint("bounded-", sessions-1)); n != 9 {
		t.Errorf("the newest offline session received %d of 12 messages of 120 KiB, want the 9 that fit in 1 MiB", n)
	}
	if n := count("bounded-0"); n != 0 {
		t.Errorf("the oldest of %d sessions of one certificate received %d messages; it should have been expired", sessions, n)
	}
}
