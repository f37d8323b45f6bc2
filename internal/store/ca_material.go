package store

import "context"

// CAMaterial is fleetca's CA as kept in a shared database, so that every
// replica signs with the same CA. The keys are sealed by the caller before
// they reach the store.
type CAMaterial struct {
	RootCertPEM    []byte
	IssuingCertPEM []byte
	// The keys, sealed; all three empty when they live in a PKCS#11 token
	// every replica reaches, which the certificates' public keys name.
	RootKeySealed    []byte
	IssuingKeySealed []byte
	// The server CA signs the MQTT endpoint's certificate and nothing else.
	// A CA stored before the server CA existed has neither field.
	ServerCACertPEM   []byte
	ServerCAKeySealed []byte
}

// Complete reports whether m holds every part of the CA.
func (m *CAMaterial) Complete() bool {
	certs := len(m.RootCertPEM) > 0 && len(m.IssuingCertPEM) > 0 && len(m.ServerCACertPEM) > 0
	return certs && (m.KeysSealed() || len(m.RootKeySealed)+len(m.IssuingKeySealed)+len(m.ServerCAKeySealed) == 0)
}

// KeysSealed reports whether m holds its keys, sealed, rather than naming
// keys kept in a token.
func (m *CAMaterial) KeysSealed() bool {
	return len(m.RootKeySealed) > 0 && len(m.IssuingKeySealed) > 0 && len(m.ServerCAKeySealed) > 0
}

// IssuingCA is an issuing CA a rotation made for the shared CA (whose first
// is in CAMaterial): generation 2 and up, its key sealed, or empty when the
// CA's keys live in a PKCS#11 token.
type IssuingCA struct {
	Generation int
	CertPEM    []byte
	KeySealed  []byte
}

// CAKeeper keeps the CA material of replicas that share a database.
type CAKeeper interface {
	// IssuingCAs returns the issuing CAs rotations made, oldest first.
	IssuingCAs(ctx context.Context) ([]IssuingCA, error)
	// AddIssuingCA stores ca as the next generation and returns it.
	AddIssuingCA(ctx context.Context, ca IssuingCA) (int, error)
	// LoadCA returns the stored CA, or ErrNotFound when there is none.
	LoadCA(ctx context.Context) (*CAMaterial, error)
	// StoreCA stores m, which must be Complete, unless a CA is stored
	// already, and returns the CA stored once it is done: m, or the one
	// another replica stored first. A stored CA that is not Complete gains
	// m's server CA if m has the same root. Keys are made and sealed before
	// the call, never inside the store's transaction.
	StoreCA(ctx context.Context, m *CAMaterial) (*CAMaterial, error)
}

// RootPin records which root CA a database's data belongs to, so that the
// data is never served with another CA.
type RootPin interface {
	// PinnedRoot returns the recorded SHA-256 (hex) of the root
	// certificate, or ErrNotFound when none is recorded yet.
	PinnedRoot(ctx context.Context) (string, error)
	// PinRoot records sha256 unless a root is recorded already, and returns
	// the one recorded once it is done.
	PinRoot(ctx context.Context, sha256 string) (string, error)
}
