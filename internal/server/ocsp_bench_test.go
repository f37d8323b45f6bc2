package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"golang.org/x/crypto/ocsp"
)

// BenchmarkOCSPOverHTTP: OCSP answers per second over HTTP for 200
// certificates whose answers are pre-signed (a warm cache), from 32
// concurrent keep-alive clients in this process; and, when cfssl is
// installed, the same requests against cfssl's ocspserve serving answers
// for the same certificates signed by the same CA key, as the peer.
//
//	go test -run '^$' -bench OCSPOverHTTP -benchtime 5s ./internal/server/
func BenchmarkOCSPOverHTTP(b *testing.B) {
	ts := startServerWith(b, "", nil)
	c := ts.iotClient()
	issuing := ts.issuingCA(b)
	const certs = 200
	var requests [][]byte
	var pems []string
	for range certs {
		out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
		if err != nil {
			b.Fatal(err)
		}
		cert := parseCertPEM(b, aws.ToString(out.CertificatePem))
		req, err := ocsp.CreateRequest(cert, issuing, nil)
		if err != nil {
			b.Fatal(err)
		}
		requests = append(requests, req)
		pems = append(pems, aws.ToString(out.CertificatePem))
	}
	b.Run("fleetca", func(b *testing.B) { benchOCSP(b, ts.URL()+"/ocsp", requests, issuing) })
	if cfssl, err := exec.LookPath("cfssl"); err == nil {
		url := startCFSSLResponder(b, cfssl, filepath.Join(ts.dir, "ca"), pems)
		b.Run("cfssl-ocspserve", func(b *testing.B) { benchOCSP(b, url, requests, issuing) })
	}
}

func benchOCSP(b *testing.B, url string, requests [][]byte, issuing *x509.Certificate) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(req []byte) ([]byte, error) {
		resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	// Warm the cache, and check every answer is a real one.
	for _, req := range requests {
		body, err := post(req)
		if err != nil {
			b.Fatal(err)
		}
		if r, err := ocsp.ParseResponse(body, issuing); err != nil || r.Status != ocsp.Good {
			b.Fatalf("answer: %v", err)
		}
	}
	var i atomic.Int64
	b.SetParallelism(16) // 16 x GOMAXPROCS(2) = 32 clients
	start := time.Now()
	cpuPerOp(b, func() {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := post(requests[i.Add(1)%int64(len(requests))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "answers/s")
}

// startCFSSLResponder signs a "good" answer for each certificate with cfssl
// ocspsign, using fleetca's issuing CA key from caDir, and serves them with
// cfssl ocspserve until the benchmark ends; it returns the responder's URL.
func startCFSSLResponder(b *testing.B, cfssl, caDir string, pems []string) string {
	b.Helper()
	dir := b.TempDir()
	var responses strings.Builder
	for i, p := range pems {
		certPath := filepath.Join(dir, fmt.Sprintf("cert%d.pem", i))
		if err := os.WriteFile(certPath, []byte(p), 0o600); err != nil {
			b.Fatal(err)
		}
		out, err := exec.Command(cfssl, "ocspsign", "-ca", filepath.Join(caDir, "issuing.pem"),
			"-responder", filepath.Join(caDir, "issuing.pem"), "-responder-key", filepath.Join(caDir, "issuing.key"),
			"-cert", certPath, "-status", "good").Output()
		if err != nil {
			b.Fatalf("cfssl ocspsign: %v %s", err, out)
		}
		var signed struct{ OCSPResponse string }
		if err := json.Unmarshal(out, &signed); err != nil || signed.OCSPResponse == "" {
			b.Fatalf("cfssl ocspsign said %s (%v)", out, err)
		}
		if _, err := base64.StdEncoding.DecodeString(signed.OCSPResponse); err != nil {
			b.Fatal(err)
		}
		responses.WriteString(signed.OCSPResponse + "\n")
	}
	file := filepath.Join(dir, "responses")
	if err := os.WriteFile(file, []byte(responses.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(cfssl, "ocspserve", "-address", "127.0.0.1", "-port", port, "-responses", file, "-loglevel", "5")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://127.0.0.1:" + port + "/"
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			conn.Close()
			return url
		}
		if time.Now().After(deadline) {
			b.Fatal("cfssl ocspserve did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
