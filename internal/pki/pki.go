// Package pki holds pure X.509 helpers: parsing and checking PEM-encoded CSRs,
// certificates and keys against the rules AWS IoT applies. It signs nothing and
// holds no keys.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
)

// Bounds on what fleetca parses. RSA keys above MaxRSABits cost seconds to
// verify and no device needs them.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// Error is a problem with caller-supplied PKI material; its message is safe to
// show to the caller.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func errorf(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

// IsError reports whether err is a problem with the input rather than an
// internal failure.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// ParseCSR decodes a PEM PKCS#10 request, checks its self-signature, checks
// that its key is one AWS IoT accepts (RSA of 2048, 3072 or 4096 bits, or
// ECDSA on P-256, P-384 or P-521) and is not weak (CheckKeyToSign), and that
// its subject is one parsers read alike (CheckSubject).
func ParseCSR(pemText []byte) (*x509.CertificateRequest, error) {
	der, err := singleBlock(pemText, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, errorf("the certificate signing request could not be parsed: %v", err)
	}
	if err := CheckKeyToSign(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errorf("the signature of the certificate signing request does not verify: %v", err)
	}
	if err := CheckSubject(csr.RawSubject); err != nil {
		return nil, err
	}
	return csr, nil
}

// ParseCertificate decodes exactly one PEM certificate.
func ParseCertificate(pemText []byte) (*x509.Certificate, error) {
	der, err := singleBlock(pemText, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errorf("the certificate could not be parsed: %v", err)
	}
	return cert, nil
}

// CheckPublicKey accepts RSA keys of MinRSABits to MaxRSABits and ECDSA keys on
// P-256, P-384 and P-521, and explains why anything else is refused.
func CheckPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return errorf("RSA keys must have %d to %d bits; this one has %d", MinRSABits, MaxRSABits, bits)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return errorf("ECDSA keys must be on P-256, P-384 or P-521; this one is on %s", k.Curve.Params().Name)
	case nil:
		return errorf("the public key algorithm is not supported; use RSA (at least %d bits) or ECDSA (P-256, P-384, P-521)", MinRSABits)
	default:
		return errorf("%T keys are not supported; use RSA (at least %d bits) or ECDSA (P-256, P-384, P-521)", pub, MinRSABits)
	}
}

// singleBlock returns the DER of the one PEM block of an allowed type in text.
// Anything but white space around it is refused, so what is stored is what was
// checked.
func singleBlock(text []byte, types ...string) ([]byte, error) {
	block, rest := pem.Decode(text)
	if block == nil {
		return nil, errorf("no PEM data of type %s was found", types[0])
	}
	ok := false
	for _, t := range types {
		ok = ok || block.Type == t
	}
	if !ok {
		return nil, errorf("expected PEM type %s, got %s", types[0], block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, errorf("PEM headers are not allowed")
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return nil, errorf("unexpected data after the PEM %s block", block.Type)
		}
	}
	return block.Bytes, nil
}

// EncodeCertificate returns the PEM form of a DER certificate, ending in a newline.
func EncodeCertificate(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// EncodeRSAPrivateKey returns the PKCS#1 PEM form AWS IoT uses for the private
// keys it generates.
func EncodeRSAPrivateKey(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// EncodePublicKey returns the SPKI PEM form of a public key.
func EncodePublicKey(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// VerificationError says why a verification certificate is refused.
type VerificationError struct {
	// CodeMismatch is true when the certificate is valid and signed by the
	// CA but its common name is not the registration code.
	CodeMismatch bool
	msg          string
}

func (e *VerificationError) Error() string { return e.msg }

// CheckVerificationCertificate is the proof that the caller holds a CA's
// private key: verificationPEM must be one certificate, signed by ca, whose
// subject common name is code.
func CheckVerificationCertificate(ca *x509.Certificate, verificationPEM []byte, code string) error {
	v, err := ParseCertificate(verificationPEM)
	if err != nil {
		return &VerificationError{msg: fmt.Sprintf("The verification certificate is not valid: %v", err)}
	}
	if v.Subject.CommonName != code {
		return &VerificationError{CodeMismatch: true, msg: "The common name of the verification certificate is not the registration code."}
	}
	if err := v.CheckSignatureFrom(ca); err != nil {
		return &VerificationError{msg: fmt.Sprintf("The verification certificate is not signed by the CA certificate's key: %v", err)}
	}
	return nil
}

// CheckPublicURL checks a base URL under which fleetca's CRLs and OCSP
// responder are published in certificates: absolute, plain http (RFC 5280
// 4.2.1.13 and 4.2.2.1 want HTTP for both, and what is served there is
// signed), with no credentials, query or fragment, since paths are appended
// to it.
func CheckPublicURL(base string) error {
	u, err := url.Parse(base)
	// Written as url.URL writes it back, so what goes into certificates
	// (IA5String) is the URL as given: no spaces, no non-ASCII.
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" || u.String() != base {
		return fmt.Errorf("%q must be an absolute http:// URL with no credentials, query or fragment (RFC 5280 wants revocation over plain HTTP; what is served there is signed)", base)
	}
	return nil
}
