//go:build !cgo

package token

import (
	"crypto"
	"errors"

	"github.com/fleetca/fleetca/internal/keys"
)

// errNoCgo is every call's answer in a build without cgo, which cannot
// load a PKCS#11 module.
var errNoCgo = errors.New("this fleetca was built without cgo (CGO_ENABLED=0), which a PKCS#11 token needs: build it with CGO_ENABLED=1")

// ErrNotFound is Find's answer when the token holds no such key.
var ErrNotFound = errors.New("the PKCS#11 token holds no such key")

// Token is a PKCS#11 token; this build cannot open one.
type Token struct{}

// Open fails: this build has no PKCS#11 support.
func Open(keys.TokenURI, string) (*Token, error) { return nil, errNoCgo }

func (*Token) Close() error { return errNoCgo }

func (*Token) Generate(string, keys.Algorithm) (crypto.Signer, error) {
	return nil, errNoCgo
}

func (*Token) Find(crypto.PublicKey) (crypto.Signer, error) { return nil, errNoCgo }

func (*Token) Delete(crypto.PublicKey) error { return errNoCgo }

func (*Token) Import(string, crypto.Signer) error { return errNoCgo }
func (*Token) CountKeys() int                     { return -1 }
func (*Token) Ready() error                       { return errNoCgo }
