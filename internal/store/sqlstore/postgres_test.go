package sqlstore

import (
	"context"
	"testing"

	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/storetest"
)

func openPostgres(t *testing.T, u string) *Store {
	t.Helper()
	s, err := OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t, pgtest.Schema(t)) })
}

// TestPostgresReplicas runs the suite's cross-replica cases with two stores on
// one database, as two fleetca replicas would be.
func TestPostgresReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		u := pgtest.Schema(t)
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
