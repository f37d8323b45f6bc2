// Package keys keeps the private keys of fleetca's certificate authorities and
// hands them out as crypto.Signer. The file backend stores each key as a
// PKCS#8 PEM file readable by its owner only.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Algorithm names a key type and size.
type Algorithm string

// The algorithms a CA key may use.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA2048   Algorithm = "rsa-2048"
	RSA3072   Algorithm = "rsa-3072"
	RSA4096   Algorithm = "rsa-4096"
)

// Algorithms lists every supported algorithm.
var Algorithms = []Algorithm{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}

// Valid reports whether a is a supported algorithm.
func (a Algorithm) Valid() bool {
	for _, x := range Algorithms {
		if a == x {
			return true
		}
	}
	return false
}

// Generate makes a new key of the algorithm.
func (a Algorithm) Generate() (crypto.Signer, error) {
	switch a {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("keys: unknown algorithm %q", a)
}

// FileStore keeps keys as files in one directory. With a Passphrase, keys
// are sealed (see Seal) before they are written, and sealed keys are opened
// when read.
type FileStore struct {
	Dir        string
	Passphrase string
}

func (s FileStore) path(name string) string { return filepath.Join(s.Dir, name+".key") }

// Load reads the key called name. A missing key is an error matching
// os.ErrNotExist; a sealed key without the right passphrase,
// ErrWrongPassphrase.
func (s FileStore) Load(name string) (crypto.Signer, error) {
	data, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, err
	}
	if IsSealed(data) {
		if s.Passphrase == "" {
			return nil, fmt.Errorf("keys: %s is sealed and no passphrase is given: %w", s.path(name), ErrWrongPassphrase)
		}
		if data, err = Unseal(data, s.Passphrase); err != nil {
			return nil, fmt.Errorf("keys: %s: %w", s.path(name), err)
		}
	}
	signer, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", s.path(name), err)
	}
	return signer, nil
}

// Save stores a key called name durably, sealed if the store has a
// passphrase. It fails if the key exists already, so a key is never replaced.
func (s FileStore) Save(name string, signer crypto.Signer) error {
	data, err := EncodePEM(signer)
	if err != nil {
		return err
	}
	if s.Passphrase != "" {
		if data, err = Seal(data, s.Passphrase); err != nil {
			return err
		}
	}
	return WriteFileExclusive(s.path(name), data, 0o600)
}

// Seal seals the key called name in place if it is stored in the clear,
// and reports whether it did; a key sealed already is checked to open with
// the passphrase and left as it is. The sealed file replaces the plain one
// atomically. The plain key's bytes may remain in the disk's free blocks:
// sealing protects copies made from now on, not copies made before.
func (s FileStore) Seal(name string) (bool, error) {
	if s.Passphrase == "" {
		return false, errors.New("keys: sealing needs a passphrase")
	}
	path := s.path(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if IsSealed(data) {
		_, err := s.Load(name)
		return false, err
	}
	if _, err := ParsePEM(data); err != nil {
		return false, fmt.Errorf("keys: %s: %w", path, err)
	}
	sealed, err := Seal(data, s.Passphrase)
	if err != nil {
		return false, err
	}
	return true, replaceFile(path, sealed, 0o600)
}

// replaceFile writes data to path durably, replacing what is there: the
// old content or the new, whole, never a mix.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return writeDurably(path, data, perm, func(tmp, path string) error {
		// Run as root for a service's user (systemd's DynamicUser), the new
		// file must stay that user's.
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			if err := os.Chown(tmp, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		return os.Rename(tmp, path)
	})
}

// WriteFile writes data to path durably, creating it or replacing what is
// there: a reader sees the old content or the new, whole, never a mix.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeDurably(path, data, perm, os.Rename)
}

// WriteFileExclusive writes data to path durably: the file appears whole or not
// at all, and the call fails if path exists.
func WriteFileExclusive(path string, data []byte, perm os.FileMode) error {
	// A hard link, unlike rename, refuses to replace an existing file.
	return writeDurably(path, data, perm, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("keys: %s exists already: %w", path, err)
			}
			return err
		}
		return nil
	})
}

// writeDurably writes data to a synced temporary file beside path, puts it
// in place with place, and syncs the directory.
func writeDurably(path string, data []byte, perm os.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a directory's entries (files created, renamed or removed in
// it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrUnavailable is the error of a signer whose keys are out of reach for
// now (a token removed, its session lost): the request that needed it may
// be tried again later. The key store tries to reach them again itself.
var ErrUnavailable = errors.New("keys: the CA key is unavailable")
