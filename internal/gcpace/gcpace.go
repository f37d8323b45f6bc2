// Package gcpace keeps the Go collector's heap headroom proportional for a
// small heap and bounded for a large one.
//
// GOGC sets the headroom as a percentage of what the collector scans (live
// heap, goroutine stacks, globals). A server that signs certificates has a
// small live heap and allocates fast, so a high percentage saves collections
// and CPU; a server holding tens of thousands of idle device connections has
// a live heap of hundreds of MiB, and the same percentage lets its resident
// memory grow to several times that while the devices do nothing. Run
// lowers the percentage as the scanned memory grows, so that the headroom
// never exceeds a fixed size, and raises it again as the memory shrinks.
package gcpace

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config bounds the collector's headroom.
type Config struct {
	// MaxPercent is the GOGC for a small heap, MinPercent the least GOGC
	// however large the heap grows.
	MaxPercent, MinPercent int
	// Headroom is the most memory, in bytes, the heap may grow by
	// between collections while MaxPercent of the scanned memory would be
	// more.
	Headroom uint64
}

// Percent is the GOGC that keeps the headroom over scanned bytes (live heap,
// stacks and globals) within c.Headroom, between c.MinPercent and
// c.MaxPercent.
func (c Config) Percent(scanned uint64) int {
	if scanned == 0 {
		return c.MaxPercent
	}
	p := c.Headroom * 100 / scanned
	switch {
	case p >= uint64(c.MaxPercent):
		return c.MaxPercent
	case p <= uint64(c.MinPercent):
		return c.MinPercent
	}
	return int(p)
}

// Run sets GOGC to c.Percent of the memory the last collection scanned,
// checking every interval, until ctx ends. It changes GOGC only when the
// value moves by more than a tenth, so a steady server is left alone.
func Run(ctx context.Context, c Config, interval time.Duration) {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	debug.SetGCPercent(c.MaxPercent)
	current := c.MaxPercent
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		var scanned uint64
		for _, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				scanned += s.Value.Uint64()
			}
		}
		if p := c.Percent(scanned); p*10 < current*9 || p*10 > current*11 {
			debug.SetGCPercent(p)
			current = p
		}
	}
}
