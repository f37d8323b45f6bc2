// Package netlimit bounds what one source address may hold of a listener:
// the MQTT endpoint's connections awaiting admission, the API's connections.
package netlimit

import (
	"net"
	"sync"
)

// Source is the address a connection comes from, without its port.
func Source(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// PerSource counts what each source address holds against one bound.
type PerSource struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewPerSource bounds each source address to max.
func NewPerSource(max int) *PerSource { return &PerSource{max: max, n: map[string]int{}} }

// Take counts one more for source, unless it holds max already.
func (p *PerSource) Take(source string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[source] >= p.max {
		return false
	}
	p.n[source]++
	return true
}

// Release gives back one that Take counted.
func (p *PerSource) Release(source string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[source]--; p.n[source] <= 0 {
		delete(p.n, source)
	}
}
