package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/pki"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/store"
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
	// Managing accounts signs nothing, so no CA key is loaded; the root
	// certificate is, as the salt of the secrets' seal.
	opts := registry.Options{Store: st}
	box, err := adminSecretBox(ctx, cfg, st)
	if err != nil {
		st.Close()
		return err
	}
	if box != nil {
		opts.Secrets = box
	}
	err = f(registry.New(opts))
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// secretBox seals access keys' secrets with the CA key passphrase, if one is
// given, salted with the deployment's root certificate.
func secretBox(passphrase string, root *x509.Certificate) (*keys.SecretBox, error) {
	if passphrase == "" {
		return nil, nil
	}
	salt := sha256.Sum256(root.Raw)
	return keys.NewSecretBox(passphrase, salt[:], 0)
}

// adminSecretBox is secretBox for an operator command, which reads the
// root certificate without opening the CA. Before the first server start
// there is no root yet: keys are then stored as they are, and that start
// seals them.
func adminSecretBox(ctx context.Context, cfg config.Config, st *sqlstore.Store) (*keys.SecretBox, error) {
	passphrase, err := cfg.Passphrase()
	if err != nil || passphrase == "" {
		return nil, err
	}
	var root *x509.Certificate
	if cfg.Database != "" {
		m, err := st.LoadCA(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the root certificate: %w", err)
		}
		if root, err = pki.ParseCertificate(m.RootCertPEM); err != nil {
			return nil, fmt.Errorf("reading the root certificate: %w", err)
		}
	} else {
		root, err = issuance.ReadRoot(cfg.CADir())
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return secretBox(passphrase, root)
}
