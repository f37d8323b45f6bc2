package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pgtest"
)

// benchDER is a certificate-sized DER for write n: fleetca's RSA-2048 device
// certificates are about 700 bytes.
func benchDER(n int64, salt any) []byte {
	return append([]byte(fmt.Sprintf("certificate %d of %p ", n, salt)), make([]byte, 680)...)
}

// serialFor is a serial as issuance makes them for a signed certificate
// (the time in milliseconds, then random bits), and none for one fleetca
// did not sign.
func serialFor(issuer string, der []byte) string {
	if issuer == "" {
		return ""
	}
	return fmt.Sprintf("%x%s", time.Now().UnixMilli(), iot.CertificateID(der)[:28])
}

// BenchmarkCreateCertificate measures durable certificate inserts from 32
// concurrent writers, with group commit and with one transaction per write,
// on SQLite (synchronous=FULL) and, when FLEETCA_TEST_POSTGRES is set,
// PostgreSQL; and, as the yardstick, SQLite's own rate for the same rows in
// the same schema inserted 16 to a transaction straight through database/sql.
//
//	go test -run '^$' -bench CreateCertificate ./internal/store/sqlstore/
func BenchmarkCreateCertificate(b *testing.B) {
	b.Run("sqlite/raw-16-per-commit", benchmarkRawSQLite)
	backends := map[string]func(b *testing.B, opts ...Option) *Store{
		"sqlite": func(b *testing.B, opts ...Option) *Store {
			s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts...)
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B, opts ...Option) *Store {
			s, err := OpenPostgres(context.Background(), pgtest.Schema(b), opts...)
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []struct {
			name   string
			limit  int
			issuer string
		}{{"group-commit", maxBatch, ""}, {"tx-per-write", 1, ""}, {"group-commit-signed", maxBatch, "issuer"}} {
			b.Run(backend+"/"+mode.name, func(b *testing.B) {
				var commits, writes atomic.Int64
				s := backends[backend](b, WithCommitObserver(func(n int, _ time.Duration) { commits.Add(1); writes.Add(int64(n)) }))
				defer s.Close()
				s.write.limit = mode.limit
				var seq atomic.Int64
				scope := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						der := benchDER(seq.Add(1), s)
						now := time.Now()
						err := s.CreateCertificate(context.Background(), &iot.Certificate{
							Scope: scope, ID: iot.CertificateID(der), Status: iot.StatusActive, Mode: iot.ModeDefault,
							DER: der, OwnedBy: scope.AccountID, CreatedAt: now, LastModifiedAt: now,
							CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
							// "-signed": a certificate fleetca signed, which
							// the revocation indexes hold (migration 0010).
							IssuerID: mode.issuer, Serial: serialFor(mode.issuer, der),
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

// benchmarkRawSQLite inserts certificate rows into fleetca's schema 16 to a
// transaction from one goroutine, through database/sql with prepared
// statements, synchronous=FULL and SQLite's own automatic checkpoints: the
// raw group-commit rate the store is measured against.
func benchmarkRawSQLite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "raw.db")
	s, err := OpenSQLite(context.Background(), path) // for the schema
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	const perCommit = 16
	now := time.Now().UnixMicro()
	b.ResetTimer()
	for n := 0; n < b.N; {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.Prepare(`INSERT INTO certificates (` + certificateColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < perCommit && n < b.N; i, n = i+1, n+1 {
			der := benchDER(int64(n), db)
			if _, err := stmt.Exec("111111111111", "us-east-1", iot.CertificateID(der), "ACTIVE", "DEFAULT", "", der,
				"111111111111", "", now, now, 1, "g", now, now, "", ""); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCertificateTable compares the certificates table clustered on its
// key (migrations up to 0015) with the rowid table of 0016, on a database of
// 20,000 signed certificates: a durable insert alone in its transaction (and
// the WAL frames it writes), a lookup by ID, and the database's size.
//
//	go test -run '^$' -bench CertificateTable ./internal/store/sqlstore/
func BenchmarkCertificateTable(b *testing.B) {
	const rows = 20_000
	for _, layout := range []struct {
		name    string
		version int
	}{{"clustered-0015", 15}, {"rowid-0016", 16}} {
		path := filepath.Join(b.TempDir(), "table.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if err := migrateFrom(context.Background(), db, &dialect{}, migrationsUpTo(b, layout.version)); err != nil {
			b.Fatal(err)
		}
		var seq int64
		insert := func(tx *sql.Tx) string {
			seq++
			der := benchDER(seq, db)
			id := iot.CertificateID(der)
			now := time.Now().UnixMicro()
			if _, err := tx.Exec(`INSERT INTO certificates (`+certificateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				"111111111111", "us-east-1", id, "ACTIVE", "DEFAULT", "", der, "111111111111", "", now, now, 1,
				"c0b7e9f2-7d1f-4a52-9b1e-3f0c4d5e6a7b", now, now, "d7307cd3336b601bf8fbfc68041ddab4c8a0e0507fd607c668dc5b17eb836131", serialFor("issuer", der)); err != nil {
				b.Fatal(err)
			}
			return id
		}
		var ids []string
		for len(ids) < rows {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			for range 500 {
				ids = append(ids, insert(tx))
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		walFrames := func() int {
			var busy, frames, done int
			if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
				b.Fatal(err)
			}
			return frames
		}
		walFrames()
		b.Run(layout.name+"/insert", func(b *testing.B) {
			walFrames()
			for b.Loop() {
				tx, err := db.Begin()
				if err != nil {
					b.Fatal(err)
				}
				insert(tx)
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			var busy, frames, done int
			if err := db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(frames)/float64(b.N), "frames/insert")
		})
		b.Run(layout.name+"/lookup", func(b *testing.B) {
			stmt, err := db.Prepare(`SELECT der FROM certificates WHERE certificate_id = ?`)
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			var der []byte
			i := 0
			for b.Loop() {
				if err := stmt.QueryRow(ids[i%len(ids)]).Scan(&der); err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
			var pages int
			if err := db.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(pages), "db-pages")
		})
		db.Close()
	}
}

// BenchmarkDiskFlush is the floor under a durable commit on this disk: a
// page-sized write to a log file and its fsync, as SQLite's commit does,
// with the median and the 99th percentile of the pairs' latencies. A lone
// client's p99 cannot be below this p99 while every answer follows its fsync.
// "append" grows the file, as a log that never starts over does;
// "overwrite" rewrites its first hundred pages, as a log started over does.
//
//	go test -run '^$' -bench DiskFlush ./internal/store/sqlstore/
func BenchmarkDiskFlush(b *testing.B) {
	for _, mode := range []string{"append", "overwrite"} {
		b.Run(mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			page := make([]byte, 4096+24)
			var took []time.Duration
			var n int64
			for b.Loop() {
				off := n * int64(len(page))
				if mode == "overwrite" {
					off %= 100 * int64(len(page))
				}
				n++
				start := time.Now()
				if _, err := f.WriteAt(page, off); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
