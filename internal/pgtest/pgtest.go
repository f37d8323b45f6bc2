// Package pgtest gives tests a fresh PostgreSQL schema in the database that
// FLEETCA_TEST_POSTGRES names, and drops it when the test ends. Without the
// variable the test is skipped with a message that says so; CI sets it and
// fails if any PostgreSQL test was skipped. Only tests import this package.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvVar names the variable that holds the test database's URL.
const EnvVar = "FLEETCA_TEST_POSTGRES"

// Schema returns a postgres:// URL whose search_path is a new, empty schema.
func Schema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Skip("SKIPPED: " + EnvVar + " is not set; PostgreSQL was not tested")
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
		t.Fatalf("%s is set but PostgreSQL is not usable: %v", EnvVar, err)
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
