package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// testCA is a certificate authority made in a test, the way a fleet owner's
// own PKI would be.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "rsa-2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func randomSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, string) {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial(t)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Acme Devices"}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// newRootCA makes a self-signed CA.
func newRootCA(t testing.TB, kind, cn string) *testCA {
	t.Helper()
	return newRootCAWithKey(t, newKey(t, kind), cn, caTemplate(cn))
}

func newRootCAWithKey(t testing.TB, key crypto.Signer, cn string, tmpl *x509.Certificate) *testCA {
	t.Helper()
	cert, p := sign(t, tmpl, tmpl, key.Public(), key)
	return &testCA{cert: cert, key: key, pem: p}
}

// intermediate makes a CA signed by ca.
func (ca *testCA) intermediate(t testing.TB, kind, cn string) *testCA {
	t.Helper()
	key := newKey(t, kind)
	cert, p := sign(t, caTemplate(cn), ca.cert, key.Public(), ca.key)
	return &testCA{cert: cert, key: key, pem: p}
}

// leaf issues a device certificate with a new key.
func (ca *testCA) leaf(t testing.TB, kind, cn string) string {
	t.Helper()
	key := newKey(t, kind)
	_, p := sign(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: cn},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.cert, key.Public(), ca.key)
	return p
}

// verification makes the certificate that proves possession of the CA's key:
// common name = the registration code, signed by the CA.
func (ca *testCA) verification(t testing.TB, code string) string {
	t.Helper()
	return ca.leaf(t, "p256", code)
}
