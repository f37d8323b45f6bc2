package server

import (
	"errors"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/issuance"
)

// ImportCAKeys moves the CA key files of cfg's SQLite data directory into
// the PKCS#11 token cfg.CAKeyURI names (see issuance.ImportKeys) and
// returns the files it removed. No server may be using the directory; the
// next start needs the same URI.
func ImportCAKeys(cfg config.Config) ([]string, error) {
	if cfg.Database != "" {
		return nil, errors.New("with PostgreSQL the CA keys are sealed in the database, not in files; moving them into a token is not supported: " +
			"a new deployment can start with --ca-key-uri and have its keys generated in the token")
	}
	if cfg.CAKeyURI == "" {
		return nil, errors.New("name the token with --ca-key-uri (or FLEETCA_CA_KEY_URI)")
	}
	passphrase, err := cfg.Passphrase()
	if err != nil {
		return nil, err
	}
	lock, err := lockCADir(cfg)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	tok, err := openToken(cfg)
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	return issuance.ImportKeys(cfg.CADir(), passphrase, tok)
}
