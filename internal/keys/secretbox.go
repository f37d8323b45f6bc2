package keys

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// sealedSecretPrefix marks a secret sealed by a SecretBox.
const sealedSecretPrefix = "fleetca-sealed-v1:"

// DefaultSecretWorkFactor is scrypt's N for a SecretBox's key (at most
// 2^ScryptWorkFactor): its cost is paid once per process start, not per
// secret.
const DefaultSecretWorkFactor = 1 << 15

// SecretBox seals short secrets (SigV4 secret access keys) for storage in a
// database, with a key derived once from the passphrase that seals the CA
// keys: ChaCha20-Poly1305, a random nonce per secret, and the name the
// secret is stored under as associated data, so that a sealed secret moved
// to another row does not open. Sealing per secret with scrypt, as the CA
// keys are, would cost tens of milliseconds per API request.
type SecretBox struct{ aead cipher.AEAD }

// NewSecretBox derives the box's key from passphrase and salt (a value
// unique to the deployment, such as its root certificate). workFactor is
// scrypt's N, a power of two; zero means DefaultSecretWorkFactor.
func NewSecretBox(passphrase string, salt []byte, workFactor int) (*SecretBox, error) {
	if passphrase == "" {
		return nil, errors.New("keys: a secret box needs a passphrase")
	}
	if workFactor == 0 {
		workFactor = min(DefaultSecretWorkFactor, 1<<ScryptWorkFactor)
	}
	key, err := scrypt.Key([]byte(passphrase), append([]byte("fleetca secret box\x00"), salt...), workFactor, 8, 1, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return &SecretBox{aead: aead}, nil
}

// IsSealedSecret reports whether s was sealed by a SecretBox.
func IsSealedSecret(s string) bool { return strings.HasPrefix(s, sealedSecretPrefix) }

// Seal seals secret, stored under name.
func (b *SecretBox) Seal(name, secret string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(secret)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(secret), []byte(name))
	return sealedSecretPrefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open opens a secret sealed under name; a wrong passphrase, another name or
// a changed byte is ErrWrongPassphrase.
func (b *SecretBox) Open(name, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(sealed, sealedSecretPrefix))
	if err != nil || !IsSealedSecret(sealed) || len(raw) < b.aead.NonceSize() {
		return "", errors.New("keys: not a sealed secret")
	}
	plain, err := b.aead.Open(nil, raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():], []byte(name))
	if err != nil {
		return "", ErrWrongPassphrase
	}
	return string(plain), nil
}
