package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pgtest"
)

// BenchmarkCreateCertificate measures durable certificate inserts from 32
// concurrent writers, with group commit and with one transaction per write,
// on SQLite (synchronous=FULL) and, when FLEETCA_TEST_POSTGRES is set,
// PostgreSQL.
//
//	go test -run '^$' -bench CreateCertificate ./internal/store/sqlstore/
func BenchmarkCreateCertificate(b *testing.B) {
	backends := map[string]func(b *testing.B) *Store{
		"sqlite": func(b *testing.B) *Store {
			s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) *Store {
			s, err := OpenPostgres(context.Background(), pgtest.Schema(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []struct {
			name  string
			limit int
		}{{"group-commit", maxBatch}, {"tx-per-write", 1}} {
			b.Run(backend+"/"+mode.name, func(b *testing.B) {
				s := backends[backend](b)
				defer s.Close()
				s.write.limit = mode.limit
				var commits, writes atomic.Int64
				s.ObserveCommits(func(n int, _ time.Duration) { commits.Add(1); writes.Add(int64(n)) })
				var seq atomic.Int64
				scope := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						der := []byte(fmt.Sprintf("certificate %d of %p", seq.Add(1), s))
						now := time.Now()
						err := s.CreateCertificate(context.Background(), &iot.Certificate{
							Scope: scope, ID: iot.CertificateID(der), Status: iot.StatusActive, Mode: iot.ModeDefault,
							DER: der, OwnedBy: scope.AccountID, CreatedAt: now, LastModifiedAt: now,
							CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				if c := commits.Load(); c > 0 {
					b.ReportMetric(float64(writes.Load())/float64(c), "writes/commit")
				}
			})
		}
	}
}
