package issuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/iot"
)

// IssuerKey is one issuing CA with its key: the current one signs device
// certificates; every one signs its own CRLs and OCSP answers, so the
// certificates of an issuing CA rotated away keep their revocation.
type IssuerKey struct {
	cert   *x509.Certificate
	signer crypto.Signer
	id     string
	a      *Authority
}

// issuerChain is the list of issuing CAs, the newest first, replaced whole
// when one is added.
type issuerChain struct {
	mu   sync.Mutex // serialises adds
	list atomic.Pointer[[]*IssuerKey]
}

func (c *issuerChain) all() []*IssuerKey { return *c.list.Load() }

func (a *Authority) current() *IssuerKey { return a.issuers.all()[0] }

// Issuers returns the issuing CA certificates, the newest (the one that
// signs) first.
func (a *Authority) Issuers() []*x509.Certificate {
	var certs []*x509.Certificate
	for _, is := range a.issuers.all() {
		certs = append(certs, is.cert)
	}
	return certs
}

// Issuer returns the issuing CA whose certificate ID is id, for its CRLs
// and OCSP answers.
func (a *Authority) Issuer(id string) (*IssuerKey, bool) {
	for _, is := range a.issuers.all() {
		if is.id == id {
			c := *is
			c.a = a
			return &c, true
		}
	}
	return nil, false
}

// Adopt makes cert, whose key signer holds, the issuing CA that signs from
// now on; the ones before it stay, for their certificates' revocation. It
// must be signed by the root. Adopting the current one again does nothing.
func (a *Authority) Adopt(cert *x509.Certificate, signer crypto.Signer) error {
	if err := cert.CheckSignatureFrom(a.root); err != nil {
		return fmt.Errorf("issuance: the new issuing CA is not signed by the root: %w", err)
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return errors.New("issuance: the new issuing CA's key does not match its certificate")
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		return errors.New("issuance: the new issuing CA does not have the issuing CA's profile")
	}
	a.issuers.mu.Lock()
	defer a.issuers.mu.Unlock()
	old := a.issuers.all()
	id := iot.CertificateID(cert.Raw)
	if slices.ContainsFunc(old, func(is *IssuerKey) bool { return is.id == id }) {
		return nil
	}
	// Admission finds a leaf's issuing CA by name, and OCSP by name and
	// key: each must be one CA's.
	for _, is := range old {
		if bytes.Equal(is.cert.RawSubject, cert.RawSubject) || publicKeysEqual(is.cert.PublicKey, cert.PublicKey) {
			return fmt.Errorf("issuance: the new issuing CA has the name or key of %s", is.cert.Subject)
		}
	}
	list := append([]*IssuerKey{{cert: cert, signer: signer, id: id}}, old...)
	a.issuers.list.Store(&list)
	return nil
}

// IssuerID is the certificate ID of the issuing CA, the name under which
// its CRL is served and its certificates are recorded.
func (k *IssuerKey) IssuerID() string { return k.id }

// Issuing is the issuing CA's certificate.
func (k *IssuerKey) Issuing() *x509.Certificate { return k.cert }

// SignCRL signs a CRL of this issuing CA listing entries, with the number
// and validity given. Entries with a zero reason code carry no reason, as
// RFC 5280 asks of reason "unspecified".
func (k *IssuerKey) SignCRL(ctx context.Context, number int64, thisUpdate, nextUpdate time.Time, entries []x509.RevocationListEntry) ([]byte, error) {
	return k.a.signCRL(ctx, k, number, thisUpdate, nextUpdate, entries)
}

// SignOCSP signs an OCSP answer about a certificate of this issuing CA.
func (k *IssuerKey) SignOCSP(ctx context.Context, r ocsp.Response) ([]byte, error) {
	return k.a.signOCSP(ctx, k, r)
}
