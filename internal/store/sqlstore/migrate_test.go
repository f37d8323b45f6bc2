package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// migrationsUpTo is the SQLite migrations up to and including version.
func migrationsUpTo(t testing.TB, version int) fs.FS {
	t.Helper()
	entries, err := fs.ReadDir(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	sub := fstest.MapFS{}
	for _, e := range entries {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err != nil {
			t.Fatal(err)
		}
		if v > version {
			continue
		}
		body, err := fs.ReadFile(migrations, "migrations/sqlite/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		sub["migrations/sqlite/"+e.Name()] = &fstest.MapFile{Data: body}
	}
	return sub
}

// TestSQLiteCertificatesLeaveTheClusteredTable: migration 0016 moves the
// certificates of a clustered table (0006) into a rowid table with every
// field, index and order kept, and a lookup by ID still uses the key.
func TestSQLiteCertificatesLeaveTheClusteredTable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleetca.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateFrom(ctx, db, &dialect{}, migrationsUpTo(t, 15)); err != nil {
		t.Fatal(err)
	}
	var ddl string
	if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'certificates'`).Scan(&ddl); err != nil || !strings.Contains(ddl, "WITHOUT ROWID") {
		t.Fatalf("before 0016 the table is %q (%v), want it clustered", ddl, err)
	}
	indexes := func(db *sql.DB) string {
		t.Helper()
		rows, err := db.Query(`SELECT name || ': ' || sql FROM sqlite_master WHERE tbl_name = 'certificates' AND type = 'index' AND sql IS NOT NULL ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var all []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			all = append(all, s)
		}
		return strings.Join(all, "\n---\n")
	}
	indexesBefore := indexes(db)
	scope := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
	if _, err := db.Exec(`INSERT INTO accounts (account_id, created_us) VALUES (?, 0)`, scope.AccountID); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var made []*iot.Certificate
	for i := range 60 {
		der := []byte(fmt.Sprintf("certificate %d", i))
		at := base.Add(time.Duration(i%20) * time.Second) // creation times repeat
		c := &iot.Certificate{
			Scope: scope, ID: iot.CertificateID(der), Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der,
			OwnedBy: scope.AccountID, CreatedAt: at, LastModifiedAt: at.Add(time.Minute), CustomerVersion: int64(1 + i%3),
			GenerationID: fmt.Sprintf("g%d", i), NotBefore: at, NotAfter: at.Add(time.Hour), IssuerID: "issuer", Serial: fmt.Sprintf("%040x", i),
		}
		switch i % 4 {
		case 1:
			c.Status = iot.StatusRevoked
		case 2:
			c.Mode, c.CACertificateID, c.IssuerID, c.Serial = iot.ModeSNIOnly, "ca-1", "", ""
		}
		_, err := db.Exec(`INSERT INTO certificates (`+certificateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Scope.AccountID, c.Scope.Region, c.ID, string(c.Status), string(c.Mode), c.CACertificateID, c.DER,
			c.OwnedBy, c.PreviousOwnedBy, c.CreatedAt.UnixMicro(), c.LastModifiedAt.UnixMicro(),
			c.CustomerVersion, c.GenerationID, c.NotBefore.UnixMicro(), c.NotAfter.UnixMicro(), c.IssuerID, c.Serial)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, c)
	}
	list := func(s *Store, q store.CertificateQuery) []string {
		t.Helper()
		var ids []string
		for {
			page, err := s.ListCertificates(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Certificates {
				ids = append(ids, c.ID+"/"+string(c.Status))
			}
			if page.Next == nil {
				return ids
			}
			q.After = page.Next
		}
	}
	db.Close()

	// The store as it was, read at version 15 (Open would migrate it).
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	oldStore := &Store{d: &dialect{}, read: reader{old, &dialect{}, newStatements(ctx, old, &dialect{})}}
	before := list(oldStore, store.CertificateQuery{Scope: scope, Limit: 7})
	beforeByCA := list(oldStore, store.CertificateQuery{Scope: scope, Limit: 7, CACertificateID: "ca-1", Ascending: true})
	oldStore.read.stmts.close()
	old.Close()

	s := openTemp(t, path)
	defer s.Close()
	if err := s.read.db.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'certificates'`).Scan(&ddl); err != nil || strings.Contains(ddl, "WITHOUT ROWID") {
		t.Fatalf("after 0016 the table is %q (%v), want a rowid table", ddl, err)
	}
	if after := indexes(s.read.db); after != indexesBefore || strings.Count(after, "\n---\n") != 3 {
		t.Errorf("the indexes after the migration:\n%s\nwant those before:\n%s", after, indexesBefore)
	}
	var id, parent, unused int
	var plan string
	if err := s.read.db.QueryRow(`EXPLAIN QUERY PLAN SELECT der FROM certificates WHERE certificate_id = ?`, made[0].ID).Scan(&id, &parent, &unused, &plan); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "USING INDEX sqlite_autoindex_certificates_1") {
		t.Errorf("a lookup by ID alone is planned as %q, want it to use the key's index", plan)
	}
	for _, want := range made {
		got, err := s.Certificate(ctx, scope, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("certificate %s after the migration:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
	if after := list(s, store.CertificateQuery{Scope: scope, Limit: 7}); strings.Join(after, ",") != strings.Join(before, ",") || len(after) != len(made) {
		t.Errorf("ListCertificates after the migration differs: %d before, %d after", len(before), len(after))
	}
	if after := list(s, store.CertificateQuery{Scope: scope, Limit: 7, CACertificateID: "ca-1", Ascending: true}); strings.Join(after, ",") != strings.Join(beforeByCA, ",") || len(after) != len(made)/4 {
		t.Errorf("ListCertificatesByCA after the migration differs: %d before, %d after", len(beforeByCA), len(after))
	}
	unusable, err := s.UnusableCertificates(ctx, "issuer", base)
	if err != nil || len(unusable) != len(made)/4 {
		t.Errorf("%d unusable certificates (%v), want the %d revoked", len(unusable), err, len(made)/4)
	}
	if ok, err := s.IssuedSerial(ctx, "issuer", made[0].Serial); err != nil || !ok {
		t.Errorf("an issued serial is not found after the migration: %v", err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}
