package server

import (
	"context"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// CreateAccount adds an account with a new access key pair to the running
// server's registry.
func (s *Server) CreateAccount(ctx context.Context, accountID string) (*registry.Credential, error) {
	return s.registry.CreateAccount(ctx, accountID)
}

// Admin runs an operator's command on the database of cfg (the data
// directory's SQLite file, or PostgreSQL), whether or not servers run on it:
// SQLite lets a second process write safely, and running servers read access
// keys from the database, so they see the change at once.
func Admin(ctx context.Context, cfg config.Config, f func(*registry.Service) error) error {
	var st *sqlstore.Store
	var err error
	if cfg.Database != "" {
		st, err = sqlstore.OpenPostgres(ctx, cfg.Database)
	} else {
		st, err = sqlstore.OpenSQLite(ctx, cfg.DatabasePath())
	}
	if err != nil {
		return err
	}
	// Managing accounts signs nothing, so no CA is loaded.
	err = f(registry.New(registry.Options{Store: st}))
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}
