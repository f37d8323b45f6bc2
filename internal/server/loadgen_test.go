package server_test

import (
	"context"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
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
	t.Run("provision", func(t *testing.T) {
		ts := startServerWith(t, "", func(c *config.Config) { c.MQTTProvisioningRate, c.MQTTProvisioningBurst = 1000, 1000 })
		roots := x509.NewCertPool()
		roots.AddCert(ts.rootCA(t))
		r, err := loadgen.Run(context.Background(), loadgen.Options{
			Client: ts.iotClient(), Operation: "provision", Concurrency: 3, Count: 9, Duration: time.Minute, CSRKey: "p256",
			MQTTAddr: ts.MQTTAddr(), MQTTServerName: "localhost", RootCAs: roots, ServerCPU: loadgen.MetricsCPU(ts.URL() + "/metrics"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 9 || r.Errors != 0 || r.RawCostMs <= 0 || r.CPURatio <= 0 || len(r.Steps) != 4 {
			t.Fatalf("%+v", r)
		}
		for _, st := range r.Steps {
			if st.P50ms <= 0 || st.P99ms < st.P50ms {
				t.Errorf("step %+v", st)
			}
		}
		// Nine devices, nine things, each with its own ACTIVE certificate.
		out, err := ts.iotClient().ListThings(context.Background(), &iot.ListThingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Things) != 9 {
			t.Errorf("%d things after provisioning 9 devices", len(out.Things))
		}
	})
	t.Run("connect", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(ts.rootCA(t))
		r, err := loadgen.Run(context.Background(), loadgen.Options{
			Client: ts.iotClient(), Operation: "connect", Concurrency: 3, Count: 12, Duration: time.Minute, CSRKey: "p256", Devices: 5,
			MQTTAddr: ts.MQTTAddr(), MQTTServerName: "localhost", RootCAs: roots, ServerCPU: loadgen.MetricsCPU(ts.URL() + "/metrics"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 12 || r.Errors != 0 || r.RawCostMs <= 0 || r.CPURatio <= 0 || r.P99ms < r.P50ms {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("idle", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(ts.rootCA(t))
		// The server runs in this process, so its memory is the process's.
		r, err := loadgen.Idle(context.Background(), loadgen.Options{
			Client: ts.iotClient(), Concurrency: 2, Duration: 300 * time.Millisecond, CSRKey: "p256", Devices: 4,
			MQTTAddr: ts.MQTTAddr(), MQTTServerName: "localhost", RootCAs: roots, ServerCPU: loadgen.MetricsCPU(ts.URL() + "/metrics"),
		}, loadgen.ProcRSS(os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		if r.Devices != 4 || r.Seconds < 0.3 || r.ConnectSeconds <= 0 || r.IdleCPUPercent < 0 {
			t.Fatalf("%+v", r)
		}
	})
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
