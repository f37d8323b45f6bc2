package mqttapi

import (
	"sort"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Persistent sessions outlive their connections, so the per-connection
// limits do not bound them: one certificate could leave any number of
// offline sessions behind, each holding queued messages. These bound them.
const (
	// maxSessionsPerCertificate bounds the sessions, connected or not, of
	// one certificate; beyond it the offline ones that disconnected first
	// are expired.
	maxSessionsPerCertificate = 10
	// maxOfflineQueueBytes bounds the payload queued for one offline
	// session; messages beyond it are not queued.
	maxOfflineQueueBytes = 1 << 20
)

// certificateSessions indexes sessions by the certificate they connected
// with.
type certificateSessions struct {
	mu sync.Mutex
	m  map[string][]*mqtt.Client
}

func certificateKey(sess *session) string {
	return sess.scope.AccountID + "/" + sess.scope.Region + "/" + sess.certificateID
}

// add records cl's session and returns the offline sessions of the same
// certificate to expire, oldest first, to keep maxSessionsPerCertificate.
func (c *certificateSessions) add(key string, cl *mqtt.Client) []*mqtt.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]*mqtt.Client{}
	}
	list := append(c.m[key], cl)
	c.m[key] = list
	excess := len(list) - maxSessionsPerCertificate
	if excess <= 0 {
		return nil
	}
	var offline []*mqtt.Client
	for _, other := range list {
		if other != cl && other.Closed() {
			offline = append(offline, other)
		}
	}
	sort.Slice(offline, func(i, j int) bool { return offline[i].StopTime() < offline[j].StopTime() })
	return offline[:min(excess, len(offline))]
}

func (c *certificateSessions) remove(key string, cl *mqtt.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.m[key]
	for i, other := range list {
		if other == cl {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.m, key)
	} else {
		c.m[key] = list
	}
}

// queuedBytes is the payload held for cl, delivered or not.
func queuedBytes(cl *mqtt.Client) int {
	n := 0
	for _, pk := range cl.State.Inflight.GetAll(false) {
		n += len(pk.Payload)
	}
	return n
}
