package certlint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T, tmpl *x509.Certificate) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLint(t *testing.T) {
	l, err := New(false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.registry.Names()); n < 100 {
		t.Fatalf("only %d lints selected; the filter is wrong", n)
	}
	for _, name := range l.registry.Names() {
		if name == "e_ecdsa_small_private_key" || strings.HasPrefix(name, "e_sub_cert_") || strings.HasPrefix(name, "e_cab_") {
			t.Errorf("%s is selected", name)
		}
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Lint CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if found, err := l.Lint(selfSigned(t, ca)); err != nil || len(found) > 0 {
		t.Fatalf("a clean CA: %v %v", found, err)
	}
	bad := *ca
	bad.IsCA = false // a non-CA that signs certificates: RFC 5280 forbids it
	found, err := l.Lint(selfSigned(t, &bad))
	if err != nil || len(found) == 0 || !strings.Contains(strings.Join(found, " "), "e_ext_key_usage_cert_sign_without_ca") {
		t.Fatalf("a broken certificate: %v %v", found, err)
	}
	if _, err := l.Lint([]byte("not DER")); err == nil {
		t.Fatal("garbage linted")
	}
}
