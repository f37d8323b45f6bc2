package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/storetest"
)

func openTemp(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	})
}

// TestSQLiteReopen checks that a committed write survives closing the store
// and that migrations are not applied twice.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleetca.db")
	s := openTemp(t, path)
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &iot.Certificate{
		Scope: iot.Scope{AccountID: "111111111111", Region: "us-east-1"}, ID: iot.CertificateID([]byte("x")),
		Status: iot.StatusActive, Mode: iot.ModeDefault, DER: []byte("x"), OwnedBy: "111111111111",
		CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
	}
	if err := s.CreateCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, path)
	defer s.Close()
	got, err := s.Certificate(ctx, c.Scope, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != iot.StatusActive || !got.CreatedAt.Equal(now) {
		t.Fatalf("after reopen: %+v", got)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteGroupCommit checks that concurrent writes share transactions:
// fewer commits than writes.
func TestSQLiteGroupCommit(t *testing.T) {
	commits, writes := 0, 0
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"),
		WithCommitObserver(func(n int, _ time.Duration) { commits++; writes += n }))
	defer s.Close()
	const n = 400
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func(i int) {
			<-start
			der := []byte{byte(i), byte(i >> 8), 'g'}
			now := time.Now()
			errs <- s.CreateCertificate(context.Background(), &iot.Certificate{
				Scope: iot.Scope{AccountID: "111111111111", Region: "us-east-1"}, ID: iot.CertificateID(der),
				Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der, OwnedBy: "111111111111",
				CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
			})
		}(i)
	}
	close(start)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The observer runs on the leading callers; Close waits for the last.
	s.Close()
	if writes != n {
		t.Fatalf("observed %d writes, want %d", writes, n)
	}
	if commits >= n {
		t.Fatalf("%d commits for %d concurrent writes: no group commit", commits, n)
	}
	t.Logf("%d writes in %d commits", writes, commits)
}

func TestParseMarkerRejectsGarbage(t *testing.T) {
	for _, m := range []string{"", "!!!", "AAAA", "bm90IGEgbWFya2Vy", (store.Cursor{Time: time.Now(), ID: "a\x00b"}).Marker()} {
		if _, err := store.ParseMarker(m); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ParseMarker(%q) = %v, want ErrBadCursor", m, err)
		}
	}
}

// TestSQLiteListPlansAreCovering checks that list pages are read from an
// index alone, whatever the page's position: a plan that visits the table
// reads one scattered row per listed certificate, which a million
// certificates make costly.
func TestSQLiteListPlansAreCovering(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	defer s.Close()
	after := &store.Cursor{Time: time.Now(), ID: "ab"}
	for _, tc := range []struct {
		name  string
		q     store.CertificateQuery
		index string
	}{
		{"first page", store.CertificateQuery{Limit: 25}, "certificates_by_creation"},
		{"later page, ascending", store.CertificateQuery{Limit: 25, Ascending: true, After: after}, "certificates_by_creation"},
		{"by CA", store.CertificateQuery{Limit: 25, CACertificateID: "cd", After: after}, "certificates_by_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Scope = iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
			query, args := certificateListQuery(tc.q)
			rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if len(plan) != 1 || !strings.Contains(plan[0], "USING COVERING INDEX "+tc.index) {
				t.Fatalf("plan %q; want one search using covering index %s", plan, tc.index)
			}
		})
	}
}

// TestSQLiteStatementCache checks that queries run more than once become
// prepared statements on the writer's connection and the readers', that a
// query that fails to prepare is never cached and still reports its error,
// and that the cache stays bounded.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	defer s.Close()
	scope := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
	var last *iot.Certificate
	for i := range 3 {
		der := []byte{byte(i), 'c'}
		now := time.Now()
		last = &iot.Certificate{
			Scope: scope, ID: iot.CertificateID(der), Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der,
			OwnedBy: scope.AccountID, CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g",
			NotBefore: now, NotAfter: now,
		}
		if err := s.CreateCertificate(ctx, last); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Certificate(ctx, scope, last.ID); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(st *statements, prefix string) bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		for q := range st.m {
			if strings.HasPrefix(strings.TrimSpace(q), prefix) {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct {
		name   string
		stmts  *statements
		prefix string
	}{
		{"writer insert", s.write.stmts, "INSERT INTO certificates"},
		{"reader select", s.read.stmts, "SELECT"},
	} {
		if !cached(tc.stmts, tc.prefix) {
			t.Errorf("%s: no prepared statement starting %q", tc.name, tc.prefix)
		}
	}

	// A connection's grants are read in a transaction, which only looks
	// statements up: both reads are prepared once it ends.
	if _, _, err := s.ConnectionGrants(ctx, scope, last.ID, "client"); err != nil {
		t.Fatal(err)
	}
	s.read.stmts.mu.Lock()
	_, policies := s.read.stmts.m[grantPoliciesQuery]
	_, thing := s.read.stmts.m[grantThingQuery]
	s.read.stmts.mu.Unlock()
	if !policies || !thing {
		t.Errorf("after ConnectionGrants: policies read prepared %v, thing read prepared %v; want both", policies, thing)
	}

	// A duplicate insert runs the cached statement and still fails as one.
	if err := s.CreateCertificate(ctx, last); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate through the cached insert: %v, want ErrExists", err)
	}

	const bad = "SELECT no_such_column FROM certificates"
	for range 2 {
		if _, err := s.read.QueryContext(ctx, bad); err == nil {
			t.Fatal("a bad query succeeded")
		}
	}
	if cached(s.read.stmts, bad) {
		t.Fatal("a query that failed to prepare was cached")
	}

	for i := range 2 * maxStatements {
		rows, err := s.read.QueryContext(ctx, fmt.Sprintf("SELECT %d", i))
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	s.read.stmts.mu.Lock()
	n := len(s.read.stmts.m) + len(s.read.stmts.missed)
	s.read.stmts.mu.Unlock()
	if n > maxStatements {
		t.Fatalf("%d statements cached, bound is %d", n, maxStatements)
	}
}

// TestSQLiteGatherUnderLoad checks that while the process reports many
// requests in flight, writes that arrive together share one commit, where
// otherwise the first of them commits alone and the rest share a second; and
// that every write is answered with or without load.
func TestSQLiteGatherUnderLoad(t *testing.T) {
	const rounds, n = 10, gatherTarget
	for _, tc := range []struct {
		name        string
		load        int
		wantCommits int // at most, over all rounds; 0: no bound
	}{
		{"idle", 0, 0},
		// One commit a round, with room for two rounds that a slow
		// goroutine splits; without gathering it is two a round.
		{"under load", gatherLoad, rounds + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commits, writes := 0, 0
			s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"),
				WithLoad(func() int { return tc.load }),
				WithCommitObserver(func(n int, _ time.Duration) { commits++; writes += n }))
			defer s.Close()
			for round := range rounds {
				errs := make(chan error, n)
				start := make(chan struct{})
				for i := range n {
					go func() {
						<-start
						der := []byte{byte(round), byte(i), 'u'}
						now := time.Now()
						errs <- s.CreateCertificate(context.Background(), &iot.Certificate{
							Scope: iot.Scope{AccountID: "111111111111", Region: "us-east-1"}, ID: iot.CertificateID(der),
							Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der, OwnedBy: "111111111111",
							CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
						})
					}()
				}
				close(start)
				for range n {
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
				}
			}
			s.Close() // the observer runs on the leading callers
			if writes != rounds*n {
				t.Fatalf("observed %d writes, want %d", writes, rounds*n)
			}
			if tc.wantCommits > 0 && commits > tc.wantCommits {
				t.Fatalf("%d rounds of %d writes arriving together took %d commits, want at most %d", rounds, n, commits, tc.wantCommits)
			}
			t.Logf("%d writes in %d commits", writes, commits)
		})
	}
}

// TestCAKeeper: the first CA stored stays; a CA stored before the server CA
// existed (migration 0008 leaves its columns empty) gains the server CA of
// material with the same root, and of no other.
func TestCAKeeper(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "db"))
	if _, err := s.LoadCA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoadCA of an empty store: %v", err)
	}
	material := func(root, server string) *store.CAMaterial {
		return &store.CAMaterial{RootCertPEM: []byte(root), IssuingCertPEM: []byte("issuing"), RootKeySealed: []byte("rk"),
			IssuingKeySealed: []byte("ik"), ServerCACertPEM: []byte(server), ServerCAKeySealed: []byte("sk-" + server)}
	}
	first, err := s.StoreCA(ctx, material("root-1", "server-1"))
	if err != nil || string(first.RootCertPEM) != "root-1" {
		t.Fatalf("StoreCA: %v %+v", err, first)
	}
	second, err := s.StoreCA(ctx, material("root-2", "server-2"))
	if err != nil || string(second.RootCertPEM) != "root-1" || string(second.ServerCACertPEM) != "server-1" {
		t.Fatalf("a second StoreCA replaced the first CA: %v %+v", err, second)
	}
	if _, err := s.wdb.Exec(`UPDATE ca_material SET server_ca_cert_pem = '', server_ca_key_sealed = ''`); err != nil {
		t.Fatal(err)
	}
	if m, err := s.LoadCA(ctx); err != nil || m.Complete() {
		t.Fatalf("an old CA: %v %+v", err, m)
	}
	if m, err := s.StoreCA(ctx, material("root-2", "server-2")); err != nil || m.Complete() {
		t.Fatalf("another root's server CA was added: %v %+v", err, m)
	}
	m, err := s.StoreCA(ctx, material("root-1", "server-3"))
	if err != nil || !m.Complete() || string(m.ServerCACertPEM) != "server-3" {
		t.Fatalf("completing the old CA: %v %+v", err, m)
	}
	if m, err := s.LoadCA(ctx); err != nil || string(m.ServerCACertPEM) != "server-3" || string(m.RootCertPEM) != "root-1" {
		t.Fatalf("after completing: %v %+v", err, m)
	}
}

// TestDiskFullAndReadOnly: when SQLite refuses writes (a full disk, made
// real with max_page_count; a read-only database, with query_only), writes
// fail with store.ErrUnavailable and nothing is stored, Health says so, and
// both clear once the database takes writes again.
func TestDiskFullAndReadOnly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, filepath.Join(t.TempDir(), "db"))
	scope := iot.Scope{AccountID: "123456789012", Region: "us-east-1"}
	n := 0
	create := func() error {
		n++
		now := time.Now().UTC().Truncate(time.Microsecond)
		der := []byte(fmt.Sprintf("certificate %d %s", n, strings.Repeat("x", 64<<10)))
		return s.CreateCertificate(ctx, &iot.Certificate{
			Scope: scope, ID: iot.CertificateID(der), DER: der, Status: iot.StatusActive, Mode: iot.ModeDefault, CustomerVersion: 1,
			CreatedAt: now, LastModifiedAt: now, GenerationID: "g", NotBefore: now, NotAfter: now.Add(time.Hour),
		})
	}
	if err := create(); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := s.wdb.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, refuse, allow string }{
		{"disk full", fmt.Sprintf("PRAGMA max_page_count = %d", pages), "PRAGMA max_page_count = 1073741823"},
		{"read-only", "PRAGMA query_only = 1", "PRAGMA query_only = 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.wdb.Exec(c.refuse); err != nil {
				t.Fatal(err)
			}
			before := countCertificates(t, s, scope)
			if err := create(); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("a write: %v, want ErrUnavailable", err)
			}
			if err := s.Health(ctx); err == nil {
				t.Fatal("Health is nil while writes fail")
			}
			if after := countCertificates(t, s, scope); after != before {
				t.Fatalf("%d certificates stored by failed writes", after-before)
			}
			if _, err := s.wdb.Exec(c.allow); err != nil {
				t.Fatal(err)
			}
			if err := create(); err != nil {
				t.Fatalf("once the database takes writes again: %v", err)
			}
			if err := s.Health(ctx); err != nil {
				t.Fatalf("Health after recovery: %v", err)
			}
		})
	}
}

func countCertificates(t *testing.T, s *Store, scope iot.Scope) int {
	t.Helper()
	var n int
	if err := s.read.db.QueryRow(`SELECT count(*) FROM certificates WHERE account_id = ? AND region = ?`, scope.AccountID, scope.Region).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefusesANewerSchema: a database a newer fleetca migrated is refused,
// not served by a version that does not know its schema.
func TestRefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetca.db")
	s := openTemp(t, path)
	if err := s.write.do(t.Context(), func(tx txn) error {
		_, err := tx.Exec(`INSERT INTO schema_migrations (version) VALUES (9999)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSQLite(t.Context(), path); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "9999") {
		t.Fatalf("OpenSQLite of a newer schema: %v, want ErrNewerSchema naming its version", err)
	}
}

// TestSQLiteCheckpointsBesideTheWriter: the checkpointer, not a commit,
// copies the log into the database file; the writes here take the log far
// from the writer's own backstop.
func TestSQLiteCheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleetca.db")
	s := openTemp(t, path)
	defer s.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	for i := range 3 * checkpointEvery {
		der := []byte{byte(i), byte(i >> 8), 'c'}
		now := time.Now()
		if err := s.CreateCertificate(ctx, &iot.Certificate{
			Scope: iot.Scope{AccountID: "111111111111", Region: "us-east-1"}, ID: iot.CertificateID(der),
			Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der, OwnedBy: "111111111111",
			CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := s.wdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM certificates").Scan(&n); err != nil || n != 3*checkpointEvery {
		t.Fatalf("%d certificates, %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() == before {
		if time.Now().After(deadline) {
			t.Fatalf("after %d commits the database file is still %d bytes: nothing was checkpointed", 3*checkpointEvery, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSQLiteLogStartsOver: under writes that never pause, the log still
// starts over after each checkpoint, so it stays a few checkpoints long
// instead of growing to the backstop.
func TestSQLiteLogStartsOver(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleetca.db")
	s := openTemp(t, path)
	defer s.Close()
	const commits = 20 * checkpointEvery
	for i := range commits {
		der := append([]byte{byte(i), byte(i >> 8), 'l'}, make([]byte, 600)...)
		now := time.Now()
		if err := s.CreateCertificate(ctx, &iot.Certificate{
			Scope: iot.Scope{AccountID: "111111111111", Region: "us-east-1"}, ID: iot.CertificateID(der),
			Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der, OwnedBy: "111111111111",
			CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now,
			IssuerID: "issuer", Serial: fmt.Sprintf("%040x", i),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each commit writes at least its row's page, so a log that never
	// started over would hold at least one page a commit.
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if pages := fi.Size() / 4120; pages >= commits/2 {
		t.Fatalf("after %d commits the log has grown to %d pages: it did not start over", commits, pages)
	}
}
