package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/fleetca/fleetca/internal/testpki"
)

func csrPEM(t *testing.T, key crypto.Signer) string {
	t.Helper()
	return testpki.CSR(t, key, pkix.Name{CommonName: "t"})
}

func TestParseCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	good := csrPEM(t, p256)
	block, _ := pem.Decode([]byte(good))
	withHeaders := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"X": "y"}, Bytes: block.Bytes}))
	newType := string(pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes}))
	truncated := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: block.Bytes[:len(block.Bytes)/2]}))
	cases := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"P-256", good, ""},
		{"RSA-2048", csrPEM(t, rsa2048), ""},
		{"legacy PEM type", newType, ""},
		{"trailing newlines", good + "\n\n", ""},
		{"RSA-1024", csrPEM(t, rsa1024), "2048 to 8192 bits"},
		{"P-224", csrPEM(t, p224), "P-224"},
		{"Ed25519", csrPEM(t, ed), "not supported"},
		{"not PEM", "hello", "no PEM data"},
		{"PEM headers", withHeaders, "headers"},
		{"truncated DER", truncated, "could not be parsed"},
		{"two blocks", good + good, "unexpected data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			csr, err := ParseCSR([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil || csr == nil {
					t.Fatalf("ParseCSR: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsError(err) {
				t.Fatalf("ParseCSR error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
