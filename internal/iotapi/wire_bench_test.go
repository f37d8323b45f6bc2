package iotapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
)

// BenchmarkWireJSON measures the JSON work of the hottest operations: decoding
// a CreateCertificateFromCsr body and encoding its answer and a
// DescribeCertificate answer.
func BenchmarkWireJSON(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		b.Fatal(err)
	}
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	body, err := json.Marshal(createCertificateFromCsrInput{CertificateSigningRequest: &csrPEM})
	if err != nil {
		b.Fatal(err)
	}
	cert := benchCertificate(b, &key.PublicKey)

	b.Run("decode CreateCertificateFromCsr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in createCertificateFromCsrInput
			if err := (&call{body: body}).decodeBody(&in); err != nil || in.CertificateSigningRequest == nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		out  func() any
	}{
		{"encode CreateCertificateFromCsr", func() any {
			return createCertificateFromCsrOutput{CertificateArn: cert.ARN(), CertificateID: cert.ID, CertificatePem: pki.EncodeCertificate(cert.DER)}
		}},
		{"encode DescribeCertificate", func() any {
			return struct {
				CertificateDescription certificateDescription `json:"certificateDescription"`
			}{describeCertificate(cert)}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				writeJSON(w, http.StatusOK, tc.out())
			}
		})
	}
}

// benchCertificate is a stored certificate as DescribeCertificate sees it.
func benchCertificate(b *testing.B, pub *rsa.PublicKey) *iot.Certificate {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, caKey)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	return &iot.Certificate{
		Scope: iot.Scope{AccountID: "123456789012", Region: "us-east-1"}, ID: iot.CertificateID(der),
		Status: iot.StatusActive, Mode: iot.ModeDefault, DER: der, OwnedBy: "123456789012",
		CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "2b3c1c7e-0d1f-4d5e-9a7b-7c8d9e0f1a2b",
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter,
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so only the encoding
// is measured.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
