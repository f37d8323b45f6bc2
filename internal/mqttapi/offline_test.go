package mqttapi

import (
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestTrimInflight: what a session holds when it goes offline is cut to the
// limit, newest messages first.
func TestTrimInflight(t *testing.T) {
	broker := mqtt.New(nil)
	cl := broker.NewClient(nil, "test", "device", false)
	for i := 1; i <= 20; i++ {
		cl.State.Inflight.Set(packets.Packet{PacketID: uint16(i), Created: int64(i), Payload: []byte(strings.Repeat("m", 100<<10))})
	}
	trimInflight(broker, cl, 1<<20)
	if got := queuedBytes(cl); got > 1<<20 {
		t.Fatalf("%d bytes held after trimming to 1 MiB", got)
	}
	if cl.State.Inflight.Len() != 10 {
		t.Fatalf("%d messages held, want the 10 oldest of 100 KiB", cl.State.Inflight.Len())
	}
	for i := 1; i <= 10; i++ {
		if _, ok := cl.State.Inflight.Get(uint16(i)); !ok {
			t.Fatalf("message %d, one of the oldest, was dropped", i)
		}
	}
}

func TestCertificateSessions(t *testing.T) {
	broker := mqtt.New(nil)
	var c certificateSessions
	var clients []*mqtt.Client
	for i := range maxSessionsPerCertificate + 2 {
		cl := broker.NewClient(nil, "test", "device", false)
		clients = append(clients, cl)
		if stale := c.add("cert", cl); i < maxSessionsPerCertificate && len(stale) != 0 {
			t.Fatalf("session %d expired others: %d", i, len(stale))
		}
	}
	// None is offline (their connections never closed), so none expires;
	// removing forgets each once, whatever its key.
	for _, cl := range clients {
		c.remove(cl)
		c.remove(cl)
	}
	if len(c.m) != 0 || len(c.keyOf) != 0 {
		t.Fatalf("left behind: %d keys, %d clients", len(c.m), len(c.keyOf))
	}
}
