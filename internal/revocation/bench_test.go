package revocation_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/revocation"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// The benchmarks run over the real SQLite store and a real CA, as the
// server does:
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/revocation/

var benchScope = iot.Scope{AccountID: "111111111111", Region: "us-east-1"}

// fleet is a SQLite store holding n certificates of the authority, all
// REVOKED, as left by a mass revocation.
func fleet(b *testing.B, n int) (*sqlstore.Store, *issuance.Authority, []*iot.Certificate) {
	b.Helper()
	ctx := context.Background()
	a, err := issuance.Open(issuance.Options{Dir: filepath.Join(b.TempDir(), "ca"), Algorithm: keys.ECDSAP256})
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	certs := make([]*iot.Certificate, n)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				serial := make([]byte, 20)
				rand.Read(serial)
				serial[0] &= 0x7f
				der := append([]byte(fmt.Sprintf("certificate %d ", i)), make([]byte, 600)...)
				c := &iot.Certificate{Scope: benchScope, ID: iot.CertificateID(der), Status: iot.StatusRevoked, Mode: iot.ModeDefault,
					DER: der, OwnedBy: benchScope.AccountID, CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g",
					NotBefore: now, NotAfter: issuance.DeviceNotAfter, IssuerID: a.IssuerID(), Serial: hex.EncodeToString(serial)}
				if err := st.CreateCertificate(ctx, c); err != nil {
					b.Error(err)
					return
				}
				certs[i] = c
			}
		}()
	}
	wg.Wait()
	return st, a, certs
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCRLRegeneration: one status change among n revoked certificates,
// then the Refresh that notices it, reads the n entries from SQLite,
// signs the new CRL and stores it. cpu-ms/op is the process's CPU time.
func BenchmarkCRLRegeneration(b *testing.B) {
	sizes := []int{1000, 100000}
	if testing.Short() {
		sizes = sizes[:1] // CI's one-iteration pass: filling 100,000 rows takes a while
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("revoked=%d", n), func(b *testing.B) {
			st, a, certs := fleet(b, n)
			ctx := context.Background()
			// A clock that moves a second between refreshes and stands
			// still during one: each refresh sees the change at once,
			// without the pause a real replica takes after a long build.
			clock := time.Now()
			svc, err := revocation.New(revocation.Options{Store: st, Signer: a, Now: func() time.Time { return clock }})
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			// Each pass over the fleet holds every certificate, the next
			// revokes it again: every change is one a verifier sees.
			statuses := []iot.Status{iot.StatusInactive, iot.StatusRevoked}
			var cpu time.Duration
			for i := 0; b.Loop(); i++ {
				c := certs[i%n]
				b.StopTimer()
				if _, err := st.UpdateCertificate(ctx, c.Scope, c.ID, func(c *iot.Certificate) error {
					c.Status, c.LastModifiedAt = statuses[(i/n)%2], time.Now()
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				clock = clock.Add(time.Second)
				cpu -= cpuTime()
				b.StartTimer()
				before, _ := svc.CRL()
				if err := svc.Refresh(ctx); err != nil {
					b.Fatal(err)
				}
				if after, _ := svc.CRL(); after.Number <= before.Number {
					b.Fatalf("CRL %d after %d: the change was not noticed", after.Number, before.Number)
				}
				b.StopTimer()
				cpu += cpuTime()
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			crl, _ := svc.CRL()
			b.ReportMetric(float64(len(crl.DER))/1024, "KiB/CRL")
		})
	}
}

// BenchmarkOCSP: answers for 1000 certificates from the pre-signed cache
// (warm), answers that must each be signed (cold: a cache of one), and the
// raw cost of the ECDSA P-256 signature a cold answer needs, in the same
// run. The ratio cold/raw is the responder's overhead; warm needs no
// signature at all.
func BenchmarkOCSP(b *testing.B) {
	st, a, certs := fleet(b, 1000)
	ctx := context.Background()
	requests := make([][]byte, len(certs))
	for i, c := range certs {
		serial, _ := new(big.Int).SetString(c.Serial, 16)
		req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, a.Issuing(), nil)
		if err != nil {
			b.Fatal(err)
		}
		requests[i] = req
	}
	for _, tc := range []struct {
		name  string
		cache int
	}{{"warm", 0}, {"cold", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			svc, err := revocation.New(revocation.Options{Store: st, Signer: a, OCSPCache: tc.cache})
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			for _, r := range requests {
				svc.Respond(ctx, r)
			}
			var i atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if ans := svc.Respond(ctx, requests[i.Add(1)%int64(len(requests))]); !ans.Cacheable() {
						b.Error("error answer")
						return
					}
				}
			})
		})
	}
	b.Run("raw-p256-sign", func(b *testing.B) {
		key, err := keys.ECDSAP256.Generate()
		if err != nil {
			b.Fatal(err)
		}
		digest := make([]byte, 32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := key.Sign(rand.Reader, digest, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
