package keys

import (
	"errors"
	"strings"
	"testing"
)

func TestSecretBox(t *testing.T) {
	box, err := NewSecretBox("passphrase", []byte("deployment"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sealed, err := box.Seal("AKIAEXAMPLE", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealedSecret(sealed) || strings.Contains(sealed, secret) {
		t.Fatalf("sealed form %q", sealed)
	}
	if again, _ := box.Seal("AKIAEXAMPLE", secret); again == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	if got, err := box.Open("AKIAEXAMPLE", sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSecretBox("another passphrase", []byte("deployment"), 1<<10)
	otherSalt, _ := NewSecretBox("passphrase", []byte("another deployment"), 1<<10)
	for name, open := range map[string]func() (string, error){
		"wrong passphrase": func() (string, error) { return other.Open("AKIAEXAMPLE", sealed) },
		"wrong salt":       func() (string, error) { return otherSalt.Open("AKIAEXAMPLE", sealed) },
		"another row":      func() (string, error) { return box.Open("AKIAOTHER", sealed) },
		"changed byte":     func() (string, error) { return box.Open("AKIAEXAMPLE", sealed[:len(sealed)-2]+"AA") },
	} {
		if _, err := open(); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s: %v, want ErrWrongPassphrase", name, err)
		}
	}
	for _, bad := range []string{"", "plaintext", sealedSecretPrefix + "!!", sealedSecretPrefix + "AAAA"} {
		if _, err := box.Open("AKIAEXAMPLE", bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := NewSecretBox("", nil, 0); err == nil {
		t.Error("a box without a passphrase")
	}
}
