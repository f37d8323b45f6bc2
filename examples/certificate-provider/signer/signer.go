// Package signer is an example certificate provider for fleetca (and AWS IoT):
// a Lambda handler that signs device CSRs with its own CA, with its own
// validity and extensions.
package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Event is what AWS IoT (and fleetca) sends the function.
type Event struct {
	CertificateSigningRequest string `json:"certificateSigningRequest"`
	PrincipalID               string `json:"principalId"`
	ClientID                  string `json:"clientId"`
}

// Response is what the function must return.
type Response struct {
	CertificatePem string `json:"certificatePem"`
}

// InvalidRequest is the error for a CSR the signer refuses. The Lambda runtime
// reports its type name as the errorType, which fleetca answers to the device
// as a bad request rather than a failure of the provider.
type InvalidRequest struct{ Reason string }

func (e InvalidRequest) Error() string { return "invalid CSR: " + e.Reason }

// Signer signs CSRs with a CA.
type Signer struct {
	ca       *x509.Certificate
	key      crypto.Signer
	validity time.Duration
}

// New returns a Signer for a PEM CA certificate and its PEM private key
// (PKCS#8, PKCS#1 or SEC 1), issuing certificates valid for validity.
func New(caPEM, keyPEM []byte, validity time.Duration) (*Signer, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return nil, errors.New("signer: no CA certificate PEM")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signer: CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("signer: no CA key PEM")
	}
	var key any
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("signer: CA key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("signer: the CA key cannot sign")
	}
	return &Signer{ca: ca, key: s, validity: validity}, nil
}

// Handle is the Lambda handler.
func (s *Signer) Handle(ctx context.Context, e Event) (Response, error) {
	block, _ := pem.Decode([]byte(e.CertificateSigningRequest))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return Response{}, InvalidRequest{"no PEM certificate request"}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return Response{}, InvalidRequest{err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return Response{}, InvalidRequest{"signature: " + err.Error()}
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return Response{}, InvalidRequest{"RSA keys need at least 2048 bits"}
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return Response{}, InvalidRequest{"ECDSA keys must use P-256 or P-384"}
		}
	default:
		return Response{}, InvalidRequest{fmt.Sprintf("%T keys are not accepted", csr.PublicKey)}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return Response{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      csr.Subject,
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(s.validity),
		// What a provider is for: its own validity and extensions.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, csr.PublicKey, s.key)
	if err != nil {
		return Response{}, err
	}
	return Response{CertificatePem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}, nil
}
