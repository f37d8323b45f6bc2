package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
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

// FuzzCheckVerificationCertificate feeds arbitrary verification certificates
// and codes to the proof-of-possession check: only a certificate the CA
// signed, with the code as its common name, passes.
func FuzzCheckVerificationCertificate(f *testing.F) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	code := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	vDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: code},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, ca, &leafKey.PublicKey, caKey)
	good := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vDER})
	f.Add(good, code)
	f.Add(good, "another code")
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), "CA")
	f.Add([]byte("junk"), code)
	f.Fuzz(func(t *testing.T, data []byte, c string) {
		err := CheckVerificationCertificate(ca, data, c)
		if err == nil {
			v, perr := ParseCertificate(data)
			if perr != nil || v.Subject.CommonName != c || v.CheckSignatureFrom(ca) != nil {
				t.Fatal("accepted a verification certificate that is not a proof")
			}
			return
		}
		var verr *VerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("error %v is not a VerificationError", err)
		}
	})
}
