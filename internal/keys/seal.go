package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// ErrWrongPassphrase is returned when sealed data does not open with the
// passphrase given.
var ErrWrongPassphrase = errors.New("keys: wrong passphrase")

// ScryptWorkFactor is log2 of scrypt's N when Seal derives a key (age's
// default, about a second) and the ceiling of a SecretBox's. Tests lower it:
// the work factor of sealed data is stored with it, so what a test seals
// opens anywhere.
var ScryptWorkFactor = 18

// Seal encrypts data with a passphrase using age (scrypt key derivation,
// ChaCha20-Poly1305), in age's ASCII armour.
func Seal(data []byte, passphrase string) ([]byte, error) {
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(ScryptWorkFactor)
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// IsSealed reports whether data is in the form Seal produces.
func IsSealed(data []byte) bool { return bytes.HasPrefix(bytes.TrimSpace(data), []byte(armor.Header)) }

// Unseal decrypts what Seal made; ErrWrongPassphrase if the passphrase is not
// the one it was sealed with.
func Unseal(sealed []byte, passphrase string) ([]byte, error) {
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(sealed)), id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("keys: opening sealed data: %w", err)
	}
	return io.ReadAll(r)
}

// EncodePEM returns the PKCS#8 PEM form of a private key.
func EncodePEM(signer crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM parses a PKCS#8 PEM private key that can sign.
func ParsePEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("keys: no PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: a %T cannot sign", k)
	}
	return signer, nil
}
