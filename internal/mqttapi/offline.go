package mqttapi

import (
	"sort"
	"sync"
	"sync/atomic"

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
	mu    sync.Mutex
	m     map[string][]*mqtt.Client
	keyOf map[*mqtt.Client]string
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
		c.m, c.keyOf = map[string][]*mqtt.Client{}, map[*mqtt.Client]string{}
	}
	if _, ok := c.keyOf[cl]; ok {
		return nil
	}
	c.keyOf[cl] = key
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

// remove forgets cl, whichever certificate it was recorded under.
func (c *certificateSessions) remove(cl *mqtt.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.keyOf[cl]
	if !ok {
		return
	}
	delete(c.keyOf, cl)
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

// trimInflight drops the newest messages held for cl until their payload
// fits in limit: a device can run its in-flight queue up while connected
// (publishing to its own subscription and never acknowledging), and its
// offline session would keep all of it.
func trimInflight(broker *mqtt.Server, cl *mqtt.Client, limit int) {
	held := cl.State.Inflight.GetAll(false)
	sort.Slice(held, func(i, j int) bool {
		return held[i].Created < held[j].Created || (held[i].Created == held[j].Created && held[i].PacketID < held[j].PacketID)
	})
	n := 0
	for _, pk := range held {
		n += len(pk.Payload)
	}
	for i := len(held) - 1; i >= 0 && n > limit; i-- {
		if cl.State.Inflight.Delete(held[i].PacketID) {
			atomic.AddInt64(&broker.Info.Inflight, -1)
		}
		n -= len(held[i].Payload)
	}
}
