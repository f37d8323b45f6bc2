package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

func seeds(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "seed"}}, key)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	cert, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr[:len(csr)/2]}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("not pem at all"))
	f.Add([]byte{})
}

// FuzzParseCSR feeds arbitrary bytes to the CSR parser: it must return a
// checked CSR or a pki error, never panic.
func FuzzParseCSR(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err == nil {
			if csr == nil || CheckPublicKey(csr.PublicKey) != nil || csr.CheckSignature() != nil {
				t.Fatal("ParseCSR accepted a CSR that fails its own checks")
			}
		} else if !IsError(err) {
			t.Fatalf("ParseCSR failed with a non-input error: %v", err)
		}
	})
}

// FuzzParseCertificate does the same for certificates.
func FuzzParseCertificate(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := ParseCertificate(data)
		if err == nil && cert == nil {
			t.Fatal("nil certificate without an error")
		}
		if err != nil && !IsError(err) {
			t.Fatalf("non-input error: %v", err)
		}
	})
}
