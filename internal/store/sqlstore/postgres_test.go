package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/storetest"
)

// postgresSchema creates a fresh schema in the database FLEETCA_TEST_POSTGRES
// names and returns a URL whose search_path is that schema; the schema is
// dropped when the test ends. Without the variable the test is skipped, loudly.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("FLEETCA_TEST_POSTGRES")
	if base == "" {
		t.Skip("SKIPPED: FLEETCA_TEST_POSTGRES is not set; PostgreSQL was not tested")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fleetca_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("FLEETCA_TEST_POSTGRES is set but PostgreSQL is not usable: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t *testing.T, u string) *Store {
	t.Helper()
	s, err := OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t, postgresSchema(t)) })
}

// TestPostgresReplicas runs the suite's cross-replica cases with two stores on
// one database, as two fleetca replicas would be.
func TestPostgresReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		u := postgresSchema(t)
		return openPostgres(t, u), openPostgres(t, u)
	})
}

// TestSQLiteReplicas does the same with two processes' worth of stores on one
// SQLite file, as fleetca serve and fleetca account do.
func TestSQLiteReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		path := t.TempDir() + "/fleetca.db"
		return openTemp(t, path), openTemp(t, path)
	})
}
