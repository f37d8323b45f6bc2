package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/loadgen"
)

// TestLoadgen drives the real server with every operation of the load
// command and checks what it measured.
func TestLoadgen(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	for _, tc := range []struct {
		op      string
		caKey   string // of the raw cost's CA
		count   int
		rawCost bool
	}{{"csr", "", 60, true}, {"csr", "rsa-2048", 10, true}, {"keys", "", 4, true}, {"describe", "", 60, false}, {"list", "", 60, false}} {
		t.Run(tc.op+" "+tc.caKey, func(t *testing.T) {
			r, err := loadgen.Run(context.Background(), loadgen.Options{
				Client: ts.iotClient(), Operation: tc.op, Concurrency: 4, Count: tc.count, Duration: time.Minute,
				CSRKey: "p256", CAKey: tc.caKey, RawRuns: 3, ServerCPU: loadgen.MetricsCPU(ts.URL() + "/metrics"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests != tc.count || r.Errors != 0 || r.PerSecond <= 0 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.MaxMs < r.P99ms {
				t.Fatalf("%+v", r)
			}
			if tc.rawCost && (r.RawCostMs <= 0 || r.ServerCPUMs <= 0 || r.CPURatio <= 0) {
				t.Fatalf("no raw cost or CPU ratio: %+v", r)
			}
		})
	}
	if _, err := loadgen.Run(context.Background(), loadgen.Options{Client: ts.iotClient(), Operation: "delete-everything", Concurrency: 1, Count: 1}); err == nil {
		t.Fatal("an unknown operation ran")
	}
	if _, err := loadgen.Run(context.Background(), loadgen.Options{Client: ts.iotClient(), Operation: "csr", CAKey: "dsa", Concurrency: 1, Count: 1}); err == nil {
		t.Fatal("a raw cost was measured with an unknown CA key")
	}
	if _, err := loadgen.Run(context.Background(), loadgen.Options{Client: ts.iotClient(), Operation: "list", Concurrency: 1}); err == nil {
		t.Fatal("an unbounded run started")
	}
}
