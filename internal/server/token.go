package server

import (
	"crypto"
	"errors"
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

// TokenBenchKey makes a key of alg in the token uri names, for fleetca
// bench to measure the token's raw signing cost with, and a function that
// deletes it from the token and closes the token.
func TokenBenchKey(uri, pinEnv string, alg keys.Algorithm) (crypto.Signer, func(), error) {
	if !alg.Valid() {
		return nil, nil, errors.New("the raw cost's key must be p256 or rsa-2048")
	}
	tok, err := openToken(config.Config{CAKeyURI: uri, CAKeyPIN: pinEnv})
	if err != nil {
		return nil, nil, err
	}
	key, err := tok.Generate("bench-raw-cost", alg)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	return key, func() { tok.Delete(key.Public()); tok.Close() }, nil
}
