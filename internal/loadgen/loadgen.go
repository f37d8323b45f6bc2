// Package loadgen drives an AWS-IoT-compatible endpoint through the real AWS
// SDK client and measures it: requests per second, latency percentiles and
// errors, the raw crypto cost of the operation measured in the same run, and,
// when the server's CPU time can be read, the CPU ratio (server CPU per
// successful request divided by the raw cost).
package loadgen

import (
	"bufio"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/smithy-go"
)

// Operations are the operations Run can drive.
var Operations = []string{"csr", "keys", "describe", "list"}

// MaxDuration bounds a run.
const MaxDuration = time.Hour

// Options configure a run.
type Options struct {
	Client      *iot.Client
	Operation   string // csr, keys, describe or list
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
	// RawRuns, when positive, is the least number of runs the raw cost
	// averages over; zero means 100 for keys, whose RSA key generation time
	// varies widely, and 3 (with half a second of runs) otherwise.
	RawRuns int
	// ServerCPU, when set, reads the server's CPU time.
	ServerCPU func() (time.Duration, error)
	// Progress, when set, gets a line a second.
	Progress io.Writer
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
}

// Run drives the endpoint and returns what it measured.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if opts.Duration <= 0 && opts.Count <= 0 || opts.Duration > MaxDuration {
		return nil, fmt.Errorf("loadgen: give a duration (at most %v) or a count", MaxDuration)
	}
	call, raw, err := prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
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
	var started, done, failed atomic.Int64
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, 1<<16)
	codes := map[string]int{}
	stopProgress := progress(opts.Progress, &done, &failed)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < opts.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for runCtx.Err() == nil {
				n := started.Add(1)
				if opts.Count > 0 && n > int64(opts.Count) {
					break
				}
				t0 := time.Now()
				err := call(runCtx, w)
				if err != nil && runCtx.Err() != nil {
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
	elapsed := time.Since(start)
	stopProgress()
	r := &Result{
		Operation: opts.Operation, Concurrency: opts.Concurrency,
		Requests: int(done.Load()), Errors: int(failed.Load()), Seconds: elapsed.Seconds(),
		RawCostMs: ms(raw),
	}
	if len(codes) > 0 {
		r.ErrorCodes = codes
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

// prepare makes what the operation needs before timing starts, and measures
// its raw crypto cost.
func prepare(ctx context.Context, opts Options) (func(context.Context, int) error, time.Duration, error) {
	c := opts.Client
	switch opts.Operation {
	case "csr":
		csrs := make([]*string, opts.Concurrency)
		var rawCSR string
		for i := range csrs {
			p, err := newCSR(opts.CSRKey)
			if err != nil {
				return nil, 0, err
			}
			csrs[i], rawCSR = aws.String(p), p
		}
		raw, err := rawCost(opts.CAKey, cmp.Or(opts.RawRuns, 3), func(ca *x509.Certificate, signer crypto.Signer) error {
			block, _ := pem.Decode([]byte(rawCSR))
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				return err
			}
			if err := csr.CheckSignature(); err != nil {
				return err
			}
			return signAndHash(csr.PublicKey, ca, signer)
		})
		return func(ctx context.Context, w int) error {
			_, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: csrs[w], SetAsActive: true})
			return err
		}, raw, err
	case "keys":
		// RSA key generation's time varies widely with the prime search
		// (half a second held about ten keys, and the raw cost swung by a
		// third between runs), so average a hundred.
		raw, err := rawCost(opts.CAKey, cmp.Or(opts.RawRuns, rawKeyRuns), func(ca *x509.Certificate, signer crypto.Signer) error {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return err
			}
			return signAndHash(&key.PublicKey, ca, signer)
		})
		return func(ctx context.Context, _ int) error {
			_, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
			return err
		}, raw, err
	case "describe":
		ids, err := describeTargets(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		return func(ctx context.Context, _ int) error {
			_, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: ids[mrand.N(len(ids))]})
			return err
		}, 0, nil
	case "list":
		// Each client walks the whole list a page at a time and starts over at
		// the end, so deep pages are measured as well as the first.
		markers := make([]*string, opts.Concurrency)
		return func(ctx context.Context, w int) error {
			out, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(25), Marker: markers[w]})
			if err == nil {
				markers[w] = out.NextMarker
			}
			return err
		}, 0, nil
	}
	return nil, 0, fmt.Errorf("loadgen: unknown operation %q (one of %s)", opts.Operation, strings.Join(Operations, ", "))
}

// newKey makes a key of the kind given: rsa-2048 or p256 (the default).
func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "rsa-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "", "p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("loadgen: key %q is not rsa-2048 or p256", kind)
}

// maxDescribeTargets bounds how many certificates describe spreads over.
const maxDescribeTargets = 10000

// describeTargets returns the IDs of up to maxDescribeTargets stored
// certificates, spread over the whole list so that a large database is read
// at many places, not at one cached row; on an empty database it makes one.
func describeTargets(ctx context.Context, c *iot.Client) ([]*string, error) {
	var ids []*string
	var marker *string
	for len(ids) < maxDescribeTargets {
		out, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(250), Marker: marker})
		if err != nil {
			return nil, fmt.Errorf("loadgen: listing certificates to describe: %w", err)
		}
		for _, cert := range out.Certificates {
			ids = append(ids, cert.CertificateId)
		}
		if marker = out.NextMarker; marker == nil {
			break
		}
	}
	if len(ids) > 0 {
		return ids, nil
	}
	p, err := newCSR("p256")
	if err != nil {
		return nil, err
	}
	out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(p)})
	if err != nil {
		return nil, fmt.Errorf("loadgen: making a certificate to describe: %w", err)
	}
	return []*string{out.CertificateId}, nil
}

// newCSR makes a CSR with a key of the kind given: rsa-2048 (the default) or
// p256.
func newCSR(kind string) (string, error) {
	if kind == "" {
		kind = "rsa-2048"
	}
	key, err := newKey(kind)
	if err != nil {
		return "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fleetca-bench"}}, key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// rawKeyRuns is how many RSA keys the raw cost of CreateKeysAndCertificate
// averages over: about five seconds of one core.
const rawKeyRuns = 100

// rawCost runs op on one goroutine for about half a second, and at least
// minRuns times, against a fresh issuing CA with a caKey key and returns its
// CPU time per run.
func rawCost(caKey string, minRuns int, op func(*x509.Certificate, crypto.Signer) error) (time.Duration, error) {
	key, err := newKey(caKey)
	if err != nil {
		return 0, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raw cost CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return 0, err
	}
	ca, _ := x509.ParseCertificate(der)
	begin, n := processCPU(), 0
	for deadline := time.Now().Add(500 * time.Millisecond); n < minRuns || time.Now().Before(deadline); n++ {
		if err := op(ca, key); err != nil {
			return 0, err
		}
	}
	return (processCPU() - begin) / time.Duration(n), nil
}

func signAndHash(pub crypto.PublicKey, ca *x509.Certificate, signer crypto.Signer) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "raw"},
		NotBefore: time.Now(), NotAfter: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}, ca, pub, signer)
	if err != nil {
		return err
	}
	sha256.Sum256(der)
	return nil
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU reads a local process's CPU time (user + system) from /proc.
func ProcCPU(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, err
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			return 0, errors.New("loadgen: unexpected /proc stat format")
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, errors.New("loadgen: unexpected /proc stat format")
		}
		const ticksPerSecond = 100 // USER_HZ on Linux
		return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
	}
}

// MetricsCPU reads process_cpu_seconds_total from a Prometheus endpoint, such
// as fleetca's /metrics.
func MetricsCPU(url string) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, err
				}
				return time.Duration(f * float64(time.Second)), nil
			}
		}
		return 0, fmt.Errorf("loadgen: %s has no process_cpu_seconds_total", url)
	}
}
