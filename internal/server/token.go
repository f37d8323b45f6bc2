package server

import (
	"fmt"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/keys/token"
)

// openToken opens the PKCS#11 token --ca-key-uri names, logged in with
// its PIN; nil without a URI. A wrong PIN or a token that is not there
// stops the start.
func openToken(cfg config.Config) (*token.Token, error) {
	if cfg.CAKeyURI == "" {
		return nil, nil
	}
	u, err := keys.ParseTokenURI(cfg.CAKeyURI)
	if err != nil {
		return nil, fmt.Errorf("--ca-key-uri: %w", err)
	}
	pin, err := u.PIN(cfg.CAKeyPIN)
	if err != nil {
		return nil, err
	}
	return token.Open(u, pin)
}
