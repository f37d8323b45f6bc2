package server_test

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// flood sends n signed CreateCertificateFromCsr requests from each of the
// workers and counts the answers by status and error code.
func flood(t *testing.T, ts *testServer, workers, n int) map[string]int {
	t.Helper()
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "flood"})
	body, _ := json.Marshal(map[string]string{"certificateSigningRequest": csr})
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				r := ts.send(t, rawRequest{method: "POST", path: "/certificates", body: body})
				mu.Lock()
				answers[http200or(r)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return answers
}

func http200or(r rawResponse) string {
	if r.status == 200 {
		return "200"
	}
	return r.errorType
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestOverload floods the server past its limits: it answers
// ThrottlingException, which the SDKs retry, instead of queueing, keeps its
// memory bounded, and serves again when the flood ends.
func TestOverload(t *testing.T) {
	// Not parallel: it measures the heap, which other tests would grow.
	t.Run("requests in flight", func(t *testing.T) {
		ts := startServerWith(t, "", func(c *config.Config) { c.MaxInFlight = 2 })
		before := heapInUse()
		answers := flood(t, ts, 96, 25)
		growth := int64(heapInUse()) - int64(before)
		t.Logf("answers %v, heap growth %d KiB", answers, growth/1024)
		if len(answers) > 2 || answers["200"] == 0 || answers["ThrottlingException:"] == 0 {
			t.Fatalf("answers %v: want successes and ThrottlingException only", answers)
		}
		// 2,400 requests leave at most the certificates they made behind;
		// queued requests would hold their bodies and goroutines.
		if growth > 64<<20 {
			t.Fatalf("heap grew by %d MiB under the flood", growth>>20)
		}
		// The SDK retries ThrottlingException, so clients ride out a flood.
		c := iot.New(iot.Options{BaseEndpoint: aws.String(ts.URL()), Region: testRegion,
			Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")})
		if _, err := c.ListCertificates(context.Background(), &iot.ListCertificatesInput{}); err != nil {
			t.Fatalf("after the flood: %v", err)
		}
	})
	t.Run("per-account rate", func(t *testing.T) {
		ts := startServerWith(t, "", func(c *config.Config) { c.AccountRate, c.AccountBurst = 5, 5 })
		start := time.Now()
		answers := flood(t, ts, 32, 10)
		t.Logf("answers %v in %v", answers, time.Since(start))
		if answers["200"] < 5 || answers["200"] > 40 || answers["ThrottlingException:"] < 280 || len(answers) != 2 {
			t.Fatalf("answers %v: want about five a second to pass and the rest throttled", answers)
		}
		// Another account has its own budget.
		cred, err := ts.CreateAccount(context.Background(), testOtherAcct)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.client(cred.AccessKeyID, cred.SecretAccessKey).ListCertificates(context.Background(), &iot.ListCertificatesInput{}); err != nil {
			t.Fatalf("another account was throttled: %v", err)
		}
	})
}

// TestStalledBodiesDoNotStarveSignedRequests is the unauthenticated
// starvation attack: many connections send headers and part of a body, then
// stall. They must not hold the in-flight slots that signed requests need.
func TestStalledBodiesDoNotStarveSignedRequests(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, "", func(c *config.Config) { c.MaxInFlight = 4 })
	host := strings.TrimPrefix(ts.URL(), "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 40; i++ {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		fmt.Fprintf(conn, "POST /certificates HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"certif", host)
	}
	// Give the server time to take the stalled requests in.
	time.Sleep(200 * time.Millisecond)
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "while stalled"})
	for i := 0; i < 8; i++ {
		if _, err := ts.iotClient().CreateCertificateFromCsr(context.Background(), &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)}); err != nil {
			t.Fatalf("a signed request while 40 bodies stall: %v", err)
		}
	}
}
