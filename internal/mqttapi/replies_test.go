package mqttapi

import (
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestIsReplyTopic(t *testing.T) {
	for topic, want := range map[string]bool{
		"$aws/certificates/create/json/accepted":                                        true,
		"$aws/certificates/create-from-csr/cbor/rejected":                               true,
		"$aws/provisioning-templates/fleet/provision/json/accepted":                     true,
		"$123456789012/us-east-1/$aws/provisioning-templates/f/provision/cbor/rejected": true,
		"$aws/certificates/create/json":                                                 false,
		"$aws/provisioning-templates/fleet/provision/json":                              false,
		"$aws/events/certificates/registered/ca/accepted":                               false,
		"devices/accepted": false,
	} {
		if got := isReplyTopic(topic); got != want {
			t.Errorf("isReplyTopic(%q) = %v, want %v", topic, got, want)
		}
	}
}

// TestRepliesDoNotOutliveTheirConnection: when a connection ends, its
// fleet-provisioning replies still in flight (a CreateKeysAndCertificate
// reply holds a private key) are dropped, so that whoever resumes the
// session with the same client ID never gets them; its other messages are
// kept for the session.
func TestRepliesDoNotOutliveTheirConnection(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{Registry: &fakeRegistry{}})
	cl := s.broker.NewClient(nil, "pipe", "direct", false)
	cl.State.Inflight.ResetSendQuota(maxInflight)
	for id, topic := range map[uint16]string{
		1: "$123456789012/us-east-1/$aws/certificates/create/json/accepted",
		2: "$123456789012/us-east-1/telemetry/a",
		3: "$123456789012/us-east-1/$aws/provisioning-templates/fleet/provision/json/accepted",
	} {
		cl.State.Inflight.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id, TopicName: topic})
		cl.State.Inflight.DecreaseSendQuota()
	}
	dropReplies(s.broker, cl)
	var kept []uint16
	for _, pk := range cl.State.Inflight.GetAll(false) {
		kept = append(kept, pk.PacketID)
	}
	if !slices.Equal(kept, []uint16{2}) {
		t.Errorf("in flight after the connection ended: %v, want only the telemetry message (2)", kept)
	}
}
