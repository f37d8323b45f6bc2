package gcpace

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	c := Config{MaxPercent: 400, MinPercent: 25, Headroom: 64 << 20}
	for _, tc := range []struct {
		name    string
		scanned uint64
		want    int
	}{
		{"nothing scanned yet", 0, 400},
		{"a signing server's heap", 12 << 20, 400},
		{"where the cap begins", 16 << 20, 400},
		{"a little past it", 20 << 20, 320},
		{"a fleet of 5,000 devices", 128 << 20, 50},
		{"where the floor begins", 256 << 20, 25},
		{"50,000 devices", 2 << 30, 25},
	} {
		if got := c.Percent(tc.scanned); got != tc.want {
			t.Errorf("%s: Percent(%d MiB) = %d, want %d", tc.name, tc.scanned>>20, got, tc.want)
		}
	}
}

// TestRun: Run sets the collector to the percentage of what is scanned now
// (a test binary's heap is small: the maximum), and stops when its context
// ends.
func TestRun(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, Config{MaxPercent: 300, MinPercent: 25, Headroom: 1 << 30}, time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	for metrics.Read(gogc); gogc[0].Value.Uint64() != 300; metrics.Read(gogc) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not set GOGC")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
