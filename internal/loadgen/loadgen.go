// Package loadgen drives an AWS-IoT-compatible endpoint through the real AWS
// SDK client and measures it: requests per second, latency percentiles and
// errors, the raw crypto cost of the operation measured in the same run, and,
// when the server's CPU time can be read, the CPU ratio (server CPU per
// successful request divided by the raw cost).
package loadgen

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/smithy-go"
)

// Operations are the operations Run can drive.
var Operations = []string{"csr", "keys", "describe", "list", "provision", "connect", "cfssl-sign"}

// MaxDuration bounds a run.
const MaxDuration = time.Hour

// Options configure a run.
type Options struct {
	Client      *iot.Client
	Operation   string // one of Operations
	Concurrency int
	// Duration bounds the run; Count, when positive, stops it after that
	// many requests. At least one must be set.
	Duration time.Duration
	Count    int
	// CSRKey is the key of the CSRs: rsa-2048 or p256.
	CSRKey string
	// CAKey is the key of the server's issuing CA, which the raw cost signs
	// with: p256 (fleetca's default; also when empty) or rsa-2048.
	CAKey string
	// CASigner, when set, is the key the raw cost signs with instead of a
	// CAKey made in memory: a key in the server's PKCS#11 token, whose
	// signature is then the raw cost.
	CASigner crypto.Signer
	// RawRuns, when positive, is the least number of runs the raw cost
	// averages over; zero means 100 for keys, whose RSA key generation time
	// varies widely, and 3 (with half a second of runs) otherwise.
	RawRuns int
	// ServerCPU, when set, reads the server's CPU time.
	ServerCPU func() (time.Duration, error)
	// Progress, when set, gets a line a second.
	Progress io.Writer
	// Devices is how many device certificates connect spreads its
	// connections over; zero means DefaultDevices.
	Devices int
	// MQTTAddr is the device endpoint (host:port) provision and connect drive, with
	// RootCAs the CAs that sign its certificate and MQTTServerName the
	// name it is checked for.
	MQTTAddr       string
	MQTTServerName string
	RootCAs        *x509.CertPool
	// DeviceCerts, when set, are the devices connect and idle use instead
	// of making Devices of their own: the same devices can then connect to
	// fleetca and to its peers.
	DeviceCerts []tls.Certificate
	// Keepalive is the idle devices' keep-alive interval; zero means 30 s.
	Keepalive time.Duration
	// SignURL is the cfssl sign endpoint cfssl-sign drives.
	SignURL string
}

// StepResult is the latency of one step of an operation made of several.
type StepResult struct {
	Name  string  `json:"name"`
	P50ms float64 `json:"p50ms"`
	P99ms float64 `json:"p99ms"`
}

// Result is what a run measured.
type Result struct {
	Operation   string         `json:"operation"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	ErrorCodes  map[string]int `json:"errorCodes,omitempty"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"perSecond"`
	P50ms       float64        `json:"p50ms"`
	P90ms       float64        `json:"p90ms"`
	P99ms       float64        `json:"p99ms"`
	MaxMs       float64        `json:"maxMs"`
	// RawCostMs is the CPU time, on one core, of the operation's crypto.
	RawCostMs float64 `json:"rawCostMs,omitempty"`
	// ServerCPUMs is the server's CPU time per successful request.
	ServerCPUMs float64 `json:"serverCpuMsPerRequest,omitempty"`
	// CPURatio is ServerCPUMs / RawCostMs.
	CPURatio float64 `json:"cpuRatio,omitempty"`
	// LoadCPUMs is this load generator's own CPU time per successful
	// request: on one machine, the server and it share the cores.
	LoadCPUMs float64 `json:"loadCpuMsPerRequest,omitempty"`
	// Steps are the latencies of each step of a provisioning flow.
	Steps []StepResult `json:"steps,omitempty"`
}

// Run drives the endpoint and returns what it measured.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if opts.Duration <= 0 && opts.Count <= 0 || opts.Duration > MaxDuration {
		return nil, fmt.Errorf("loadgen: give a duration (at most %v) or a count", MaxDuration)
	}
	wl, err := prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	call, raw := wl.call, wl.raw
	var cpuBefore time.Duration
	if opts.ServerCPU != nil {
		if cpuBefore, err = opts.ServerCPU(); err != nil {
			return nil, fmt.Errorf("loadgen: reading the server's CPU: %w", err)
		}
	}
	runCtx := ctx
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	// A call cut off by the run's deadline may fail (a dial's i/o timeout)
	// before the context's timer has fired and said so: those are not
	// failures, nor is anything that follows them.
	over := func() bool {
		if runCtx.Err() != nil {
			return true
		}
		deadline, ok := runCtx.Deadline()
		return ok && !time.Now().Before(deadline)
	}
	var started, done, failed atomic.Int64
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, 1<<16)
	codes := map[string]int{}
	stopProgress := progress(opts.Progress, &done, &failed)
	start, loadBefore := time.Now(), processCPU()
	var wg sync.WaitGroup
	for w := 0; w < opts.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for !over() {
				n := started.Add(1)
				if opts.Count > 0 && n > int64(opts.Count) {
					break
				}
				t0 := time.Now()
				err := call(runCtx, w)
				if err != nil && over() {
					break // cut off by the end of the run, not a failure
				}
				mine = append(mine, time.Since(t0))
				done.Add(1)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					codes[errorCode(err)]++
					mu.Unlock()
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed, loadCPU := time.Since(start), processCPU()-loadBefore
	stopProgress()
	r := &Result{
		Operation: opts.Operation, Concurrency: opts.Concurrency,
		Requests: int(done.Load()), Errors: int(failed.Load()), Seconds: elapsed.Seconds(),
		RawCostMs: ms(raw),
	}
	if len(codes) > 0 {
		r.ErrorCodes = codes
	}
	if wl.steps != nil {
		r.Steps = wl.steps()
	}
	if ok := r.Requests - r.Errors; ok > 0 {
		r.LoadCPUMs = ms(loadCPU) / float64(ok)
	}
	r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	r.P50ms, r.P90ms, r.P99ms = ms(percentile(latencies, 50)), ms(percentile(latencies, 90)), ms(percentile(latencies, 99))
	if len(latencies) > 0 {
		r.MaxMs = ms(latencies[len(latencies)-1])
	}
	if opts.ServerCPU != nil {
		after, err := opts.ServerCPU()
		if err != nil {
			return nil, fmt.Errorf("loadgen: reading the server's CPU: %w", err)
		}
		if ok := r.Requests - r.Errors; ok > 0 {
			r.ServerCPUMs = ms(after-cpuBefore) / float64(ok)
			if r.RawCostMs > 0 {
				r.CPURatio = r.ServerCPUMs / r.RawCostMs
			}
		}
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	// A step of a provisioning flow says which.
	if step, _, ok := strings.Cut(err.Error(), ":"); ok && len(step) <= 40 {
		return step
	}
	return "transport"
}

// progress writes a line a second until the returned func is called.
func progress(w io.Writer, done, failed *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-stop:
				fmt.Fprintln(w)
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(w, "\r%6.0fs %9d requests %8d/s %6d errors", time.Since(start).Seconds(), n, n-last, failed.Load())
				last = n
			}
		}
	}()
	return func() { close(stop); <-finished }
}
