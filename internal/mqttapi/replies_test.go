package mqttapi

import (
	"bytes"
	"context"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

// TestRepliesStayWithTheirConnection: a fleet-provisioning reply in flight
// (a CreateKeysAndCertificate reply holds a private key) is never handed
// to another connection: not to one that takes the session over with the
// same client ID (and the same claim certificate, as a fleet's devices
// share one), nor kept for the session when its connection ends. The
// session's other messages in flight stay.
func TestRepliesStayWithTheirConnection(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	claim := p.device(t, "claim")
	fake := &fakeRegistry{
		admit: admitByName(map[string]iot.Scope{"claim": scope1}),
		createKeys: func(_ context.Context, scope iot.Scope) (*registry.ProvisionedCertificate, error) {
			return &registry.ProvisionedCertificate{Certificate: &iot.Certificate{Scope: scope, ID: "new", DER: claim.Certificate[0]},
				OwnershipToken: "token", PrivateKeyPEM: "PRIVATE KEY OF A"}, nil
		},
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	a := connectOne(t, s, "shared", claim)
	a.subscribe(t, keysJSON+"/accepted")
	if err := a.publish(keysJSON, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	reply := a.next(t)
	if reply.FixedHeader.Qos != 1 || !bytes.Contains(reply.Payload, []byte("PRIVATE KEY OF A")) {
		t.Fatalf("reply at QoS %d: %q", reply.FixedHeader.Qos, reply.Payload)
	}
	// Unacknowledged, beside a message of the device's own.
	a.cl.State.Inflight.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 999, TopicName: prefix1 + "telemetry"})
	if n := a.cl.State.Inflight.Len(); n != 2 {
		t.Fatalf("%d messages in flight, want the reply and the telemetry", n)
	}

	connectOne(t, s, "shared", claim) // takes the session over
	kept := a.cl.State.Inflight.GetAll(false)
	if len(kept) != 1 || kept[0].PacketID != 999 {
		t.Fatalf("in flight to the connection taken over: %+v, want only the telemetry message", kept)
	}
	// What the old connection still asks for goes at QoS 0: nothing of it
	// is put in flight for the session any more.
	if err := a.publish(keysJSON, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if again := a.next(t); again.FixedHeader.Qos != 0 {
		t.Errorf("a reply to a superseded connection at QoS %d, want 0", again.FixedHeader.Qos)
	}

	// A connection that ends keeps no reply for its session either.
	c := connectOne(t, s, "other", claim)
	c.subscribe(t, keysJSON+"/accepted")
	if err := c.publish(keysJSON, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	c.next(t)
	if n := c.cl.State.Inflight.Len(); n != 1 {
		t.Fatalf("%d replies in flight, want 1", n)
	}
	s.hook.OnDisconnect(c.cl, nil, false)
	if n := c.cl.State.Inflight.Len(); n != 0 {
		t.Errorf("%d replies kept for the session of a connection that ended", n)
	}
}
