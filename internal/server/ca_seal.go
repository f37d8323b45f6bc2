package server

import (
	"errors"
	"fmt"
	"os"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/issuance"
)

// SealCA seals the CA keys of cfg's SQLite data directory that are stored
// in the clear, with cfg's passphrase, and returns the files it sealed. No
// server may be using the directory. The access keys' secrets are sealed
// by the next start with the passphrase.
func SealCA(cfg config.Config) ([]string, error) {
	if cfg.Database != "" {
		return nil, errors.New("with PostgreSQL the CA keys are sealed in the database already")
	}
	passphrase, err := cfg.Passphrase()
	if err != nil {
		return nil, err
	}
	if passphrase == "" {
		return nil, errors.New("set FLEETCA_CA_KEY_PASSPHRASE or --ca-key-passphrase-file: the keys are sealed with it")
	}
	lock, err := lockCADir(cfg)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	return issuance.SealKeys(cfg.CADir(), passphrase)
}

// lockCADir takes the lock of cfg's data directory, whose CA a command
// changes: it must exist, and no server may be using it.
func lockCADir(cfg config.Config) (*os.File, error) {
	if _, err := os.Stat(cfg.CADir()); err != nil {
		return nil, fmt.Errorf("no fleetca CA in %s: %w", absolute(cfg.CADir()), err)
	}
	return lockDataDir(cfg.DataDir)
}
