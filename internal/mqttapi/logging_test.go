package mqttapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestBrokerLog: mochi's lines come out in fleetca's format with packets
// summarised, never dumped, and its levels lowered one step.
func TestBrokerLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(newBrokerLog(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).With("component", "mqtt")
	payload := strings.Repeat("secret device data ", 1000)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "a/b", Payload: []byte(payload)}
	log.Warn("error processing packet", "error", "not authorized", "pk", pk)
	log.Info("attached listener", "id", "mqtts")
	log.Error("publish packet error", "pk", pk)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"INFO", "DEBUG", "ERROR"} {
		if lines[i]["level"] != want || lines[i]["component"] != "mqtt" {
			t.Errorf("line %d: level %v component %v, want %s mqtt", i, lines[i]["level"], lines[i]["component"], want)
		}
	}
	if strings.Contains(buf.String(), "secret device data") {
		t.Error("a packet's payload was logged")
	}
	if got, want := lines[0]["pk"], `Publish topic="a/b" qos=1 payload=19000 bytes`; got != want {
		t.Errorf("packet logged as %q, want %q", got, want)
	}
	// At info, mochi's routine lines are not written at all.
	buf.Reset()
	quiet := slog.New(newBrokerLog(slog.NewJSONHandler(&buf, nil)))
	quiet.Info("mochi mqtt starting")
	if buf.Len() != 0 {
		t.Errorf("a routine line at info: %s", buf.String())
	}
}
