package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"testing"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/keys"
)

// BenchmarkIssueForCSR measures signing one device certificate for a parsed,
// checked CSR: the issuing CA's signature, and x509.CreateCertificate's own
// check of it, for each issuing-CA and device key type.
func BenchmarkIssueForCSR(b *testing.B) {
	csrs := map[string]*x509.CertificateRequest{}
	for name, newKey := range map[string]func() (crypto.Signer, error){
		"rsa-2048 CSR": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
		"p256 CSR":     func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	} {
		key, err := newKey()
		if err != nil {
			b.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
		if err != nil {
			b.Fatal(err)
		}
		if csrs[name], err = x509.ParseCertificateRequest(der); err != nil {
			b.Fatal(err)
		}
	}
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.RSA2048} {
		a, _ := openTemp(b, alg)
		for _, csrName := range []string{"rsa-2048 CSR", "p256 CSR"} {
			csr := csrs[csrName]
			b.Run(string(alg)+" CA/"+csrName, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.IssueForCSR(context.Background(), csr); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAccountability measures what lint-before-sign and the audit
// record add to signing a device certificate for an RSA-2048 CSR with a
// P-256 CA: bare signing, the audit record (JSON, to a discarding stream),
// linting once per profile (the default), and linting every certificate.
func BenchmarkAccountability(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	bare, _ := openTemp(b, keys.ECDSAP256)
	log, err := audit.New(slog.NewJSONHandler(io.Discard, nil), "")
	if err != nil {
		b.Fatal(err)
	}
	lints := newLints(b, false)
	for _, tc := range []struct {
		name string
		a    *Authority
	}{
		{"bare", bare},
		{"audit", bare.WithAuditor(log)},
		{"audit+lint-each-profile", bare.WithAuditor(log).WithLinting(lints, LintEachProfile, nil)},
		{"audit+lint-each-certificate", bare.WithAuditor(log).WithLinting(lints, LintEachCertificate, nil)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.a.IssueForCSR(context.Background(), csr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
