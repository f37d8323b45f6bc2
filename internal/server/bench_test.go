package server_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/testpki"
)

// These benchmarks put each API operation beside its raw crypto cost, measured
// in the same run on the same CA key, and report:
//
//	cpu-ns/op   process CPU (user+system) per operation: server and SDK client
//	            together, since both run in this process
//	x-raw       cpu-ns/op divided by the raw crypto's CPU per operation
//
// Run: go test -run '^$' -bench . -benchtime 2000x ./internal/server/

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerOp runs f (which runs b.N operations) and returns CPU per operation.
func cpuPerOp(b *testing.B, f func()) float64 {
	b.ResetTimer()
	start := processCPU()
	f()
	used := processCPU() - start
	b.StopTimer()
	perOp := float64(used.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	return perOp
}

// rawCSRCost measures, on one goroutine, the crypto of one CreateCertificateFromCsr:
// PEM decode, CSR parse, CSR signature check, signing, SHA-256 of the DER.
func rawCSRCost(csrPEM string, issuing *x509.Certificate, signer crypto.Signer) func(b *testing.B) float64 {
	return func(b *testing.B) float64 {
		return cpuPerOp(b, func() {
			for i := 0; i < b.N; i++ {
				block, _ := pem.Decode([]byte(csrPEM))
				csr, err := x509.ParseCertificateRequest(block.Bytes)
				if err != nil {
					b.Fatal(err)
				}
				if err := csr.CheckSignature(); err != nil {
					b.Fatal(err)
				}
				signRaw(b, csr.PublicKey, issuing, signer)
			}
		})
	}
}

func signRaw(b *testing.B, pub crypto.PublicKey, issuing *x509.Certificate, signer crypto.Signer) {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "raw"},
		NotBefore: time.Now(), NotAfter: time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuing, pub, signer)
	if err != nil {
		b.Fatal(err)
	}
	sha256.Sum256(der)
}

// rawCA is a CA of fleetca's default algorithm for the raw measurements,
// made like fleetca makes its own.
func rawCA(b *testing.B) (*x509.Certificate, crypto.Signer) {
	dir := b.TempDir() + "/ca"
	if _, err := issuance.Open(issuance.Options{Dir: dir, Algorithm: keys.ECDSAP256}); err != nil {
		b.Fatal(err)
	}
	signer, err := keys.FileStore{Dir: dir}.Load("issuing")
	if err != nil {
		b.Fatal(err)
	}
	return parseCertFile(b, dir+"/issuing.pem"), signer
}

func BenchmarkCreateCertificateFromCsr(b *testing.B) {
	for _, kind := range []string{"rsa-2048", "p256"} {
		b.Run(kind, func(b *testing.B) { benchCreateFromCSR(b, startServer(b, ""), kind) })
	}
}

// BenchmarkCreateCertificateFromCsrPostgres is the same on PostgreSQL, to
// set beside the SQLite figures.
func BenchmarkCreateCertificateFromCsrPostgres(b *testing.B) {
	ts := startServerWith(b, "", func(c *config.Config) {
		c.Database = pgtest.Schema(b)
		c.CAKeyPassphrase = testPassphrase
	})
	b.Run("rsa-2048", func(b *testing.B) { benchCreateFromCSR(b, ts, "rsa-2048") })
}

func benchCreateFromCSR(b *testing.B, ts *testServer, kind string) {
	issuing, signer := rawCA(b)
	csr, _ := testpki.NewCSR(b, kind, pkix.Name{CommonName: "bench"})
	c := ts.iotClient()
	in := &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true}
	var rawCPU float64
	b.Run("raw", func(b *testing.B) { rawCPU = rawCSRCost(csr, issuing, signer)(b) })
	b.Run("api-1client", func(b *testing.B) {
		cpu := cpuPerOp(b, func() {
			for i := 0; i < b.N; i++ {
				if _, err := c.CreateCertificateFromCsr(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
		reportRatio(b, cpu, rawCPU)
	})
	b.Run("api-32clients", func(b *testing.B) {
		b.SetParallelism(16) // 16 x GOMAXPROCS(2) = 32 goroutines
		cpu := cpuPerOp(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.CreateCertificateFromCsr(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		reportRatio(b, cpu, rawCPU)
	})
}

// reportRatio reports CPU per operation as a multiple of the raw crypto's,
// when the raw sub-benchmark ran before.
func reportRatio(b *testing.B, cpu, rawCPU float64) {
	if rawCPU > 0 {
		b.ReportMetric(cpu/rawCPU, "x-raw")
	}
}

func BenchmarkCreateKeysAndCertificate(b *testing.B) {
	ts := startServer(b, "")
	issuing, signer := rawCA(b)
	rawCost := func(b *testing.B) float64 {
		return cpuPerOp(b, func() {
			for i := 0; i < b.N; i++ {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					b.Fatal(err)
				}
				signRaw(b, &key.PublicKey, issuing, signer)
			}
		})
	}
	c := ts.iotClient()
	var rawCPU float64
	b.Run("raw", func(b *testing.B) { rawCPU = rawCost(b) })
	b.Run("api-1client", func(b *testing.B) {
		cpu := cpuPerOp(b, func() {
			for i := 0; i < b.N; i++ {
				if _, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
		reportRatio(b, cpu, rawCPU)
	})
	b.Run("api-8clients", func(b *testing.B) {
		b.SetParallelism(4)
		cpu := cpuPerOp(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		reportRatio(b, cpu, rawCPU)
	})
}
