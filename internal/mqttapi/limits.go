package mqttapi

import (
	"strings"
	"time"
)

// AWS IoT Core's documented per-connection limits, which fleetca applies the
// same way, so that a device that works against one works against the
// other, and so that no device can hold more of the broker's memory than
// they allow.
const (
	// maxSubscriptions is the number of subscriptions per connection.
	maxSubscriptions = 50
	// maxTopicBytes bounds a topic name or filter, in bytes of UTF-8.
	maxTopicBytes = 256
	// maxTopicSlashes bounds a topic's depth: at most 7 forward slashes.
	maxTopicSlashes = 7
	// maxClientIDBytes bounds a client ID.
	maxClientIDBytes = 128
	// minKeepalive and maxKeepalive are the keep-alive range; a device
	// asking for less gets the minimum, for more (or 0, "forever") the
	// maximum.
	minKeepalive, maxKeepalive = 30, 1200
	// sessionExpiry is how long a persistent session outlives its
	// connection: AWS's default of one hour.
	sessionExpiry = time.Hour
	// maxInflight bounds the QoS 1 messages held for one client, delivered
	// or queued while it is offline, and receiveMaximum those it may send
	// without acknowledgement: AWS allows 100 unacknowledged messages.
	maxInflight    = 100
	receiveMaximum = 100
	// maxWritesPending bounds the packets queued for writing to one client.
	maxWritesPending = 64
	// topicAliasMaximum is AWS's topic alias limit per connection.
	topicAliasMaximum = 8
)

// maxDeviceMemory is what one device can pin in the broker at most, by the
// limits above: queued and in-flight messages of the largest packet size,
// subscriptions and topic aliases of the longest topic.
const maxDeviceMemory = (maxInflight+maxWritesPending)*maxPacketBytes + (maxSubscriptions+2*topicAliasMaximum)*maxTopicBytes

// invalidFilter replaces a filter fleetca refuses, so that the broker's own
// filter check refuses it in the SUBACK (0x8F in MQTT 5, 0x80 in 3.1.1).
const invalidFilter = "#/refused"

// topicProblem says what is wrong with a topic name or filter as a device
// sent it (before it is namespaced), or "" if nothing is.
func topicProblem(topic string) string {
	if len(topic) > maxTopicBytes {
		return "longer than 256 bytes"
	}
	if strings.Count(topic, "/") > maxTopicSlashes {
		return "more than 7 forward slashes"
	}
	return ""
}

// filterProblem is topicProblem for a subscription filter, which may be
// shared: $share/<group>/<filter>, with a non-empty group of no wildcards.
func filterProblem(filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return "a shared subscription needs a group name without wildcards"
		}
		return topicProblem(f)
	}
	return topicProblem(filter)
}

// clampKeepalive is the keep-alive fleetca uses for the one a device asks for.
func clampKeepalive(asked uint16) uint16 {
	switch {
	case asked == 0 || asked > maxKeepalive:
		return maxKeepalive
	case asked < minKeepalive:
		return minKeepalive
	}
	return asked
}
