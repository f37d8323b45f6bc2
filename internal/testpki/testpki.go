// Package testpki is test support: keys, CSRs, CAs and the certificates they
// issue, made the way a fleet owner's own PKI would make them. Every helper
// fails the test on error, so tests read as what they make. No production
// package may import it.
package testpki

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

// Key makes a key of the kind: "rsa-<bits>" (1024, 2048, 2056, 3072, 4096)
// or an ECDSA curve, "p224", "p256", "p384", "p521". Weak and odd kinds are
// here so that tests can show they are refused.
func Key(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "rsa-1024":
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa-2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-2056":
		key, err = rsa.GenerateKey(rand.Reader, 2056)
	case "rsa-3072":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case "rsa-4096":
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	case "p224":
		key, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p521":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		t.Fatalf("testpki: unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// KeyPEM encodes key as PKCS#8 PEM.
func KeyPEM(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// CSR makes a PEM certificate signing request for key.
func CSR(t testing.TB, key crypto.Signer, subject pkix.Name) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// NewCSR makes a key of the kind and a PEM CSR for it.
func NewCSR(t testing.TB, kind string, subject pkix.Name) (string, crypto.Signer) {
	t.Helper()
	key := Key(t, kind)
	return CSR(t, key, subject), key
}

// Serial is a random positive serial number of at most 128 bits.
func Serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// Sign makes the certificate tmpl describes for pub, signed by signer as
// parent (tmpl itself for a self-signed one). A missing serial or validity
// is filled in: valid from an hour ago for a year.
func Sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, string) {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = Serial(t)
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

// CATemplate is a CA certificate's template: the common name, an
// organization, certificate and CRL signing, CA:TRUE.
func CATemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Acme Devices"}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// CA is a certificate authority made in a test.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  string
}

// NewRoot makes a self-signed CA with a new key of the kind.
func NewRoot(t testing.TB, kind, cn string) *CA {
	t.Helper()
	return NewRootWithKey(t, Key(t, kind), CATemplate(cn))
}

// NewRootWithKey makes a self-signed CA of key from tmpl.
func NewRootWithKey(t testing.TB, key crypto.Signer, tmpl *x509.Certificate) *CA {
	t.Helper()
	cert, p := Sign(t, tmpl, tmpl, key.Public(), key)
	return &CA{Cert: cert, Key: key, PEM: p}
}

// KeyPEM is the CA's key as PKCS#8 PEM.
func (ca *CA) KeyPEM(t testing.TB) string { t.Helper(); return KeyPEM(t, ca.Key) }

// Intermediate makes a CA with a new key of the kind, signed by ca.
func (ca *CA) Intermediate(t testing.TB, kind, cn string) *CA {
	t.Helper()
	key := Key(t, kind)
	cert, p := Sign(t, CATemplate(cn), ca.Cert, key.Public(), ca.Key)
	return &CA{Cert: cert, Key: key, PEM: p}
}

// Issue signs a client certificate (digitalSignature, clientAuth) for pub.
func (ca *CA) Issue(t testing.TB, cn string, pub crypto.PublicKey) (*x509.Certificate, string) {
	t.Helper()
	return Sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.Cert, pub, ca.Key)
}

// Leaf issues a device certificate, as PEM, for a new key of the kind that
// the test does not need (Issue is for when it does).
func (ca *CA) Leaf(t testing.TB, kind, cn string) string {
	t.Helper()
	_, p := ca.Issue(t, cn, Key(t, kind).Public())
	return p
}

// Verification makes the certificate that proves possession of the CA's
// key to AWS IoT: its common name is the registration code, and ca signs it.
func (ca *CA) Verification(t testing.TB, code string) string {
	t.Helper()
	return ca.Leaf(t, "p256", code)
}
