package keys

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	sealed, err := Seal([]byte("secret key material"), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || strings.Contains(string(sealed), "secret key material") {
		t.Fatalf("sealed data is not sealed: %q", sealed)
	}
	got, err := Unseal(sealed, "correct horse")
	if err != nil || string(got) != "secret key material" {
		t.Fatalf("Unseal = %q, %v", got, err)
	}
	if _, err := Unseal(sealed, "wrong horse"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unseal with a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
}

func TestFileStore(t *testing.T) {
	for _, passphrase := range []string{"", "a passphrase"} {
		dir := t.TempDir()
		s := FileStore{Dir: dir, Passphrase: passphrase}
		key, err := ECDSAP256.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Save("ca", key); err != nil {
			t.Fatal(err)
		}
		if err := s.Save("ca", key); err == nil {
			t.Fatal("a key was replaced")
		}
		data, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
		if IsSealed(data) != (passphrase != "") {
			t.Fatalf("passphrase %q: sealed = %v", passphrase, IsSealed(data))
		}
		info, _ := os.Stat(filepath.Join(dir, "ca.key"))
		if info.Mode().Perm() != 0o600 {
			t.Fatalf("key file mode %v", info.Mode().Perm())
		}
		got, err := s.Load("ca")
		if err != nil || !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(got.Public()) {
			t.Fatalf("Load: %v", err)
		}
		if passphrase != "" {
			if _, err := (FileStore{Dir: dir}).Load("ca"); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("loading a sealed key without a passphrase = %v", err)
			}
			if _, err := (FileStore{Dir: dir, Passphrase: "other"}).Load("ca"); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("loading a sealed key with a wrong passphrase = %v", err)
			}
		}
	}
}
