package issuance

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/pki"
)

// CRLPath and OCSPPath are where fleetca serves the issuing CA's CRL and its
// OCSP responder, below the public base URL.
func CRLPath(issuerID string) string { return "/crl/" + issuerID + ".crl" }

// OCSPPath is the path of the OCSP responder.
const OCSPPath = "/ocsp"

// WithPublicURL returns an Authority that issues device certificates
// pointing at the CRL and OCSP responder served below base, an absolute
// http URL without credentials, query or fragment. Plain HTTP, as RFC 5280
// (4.2.1.13, 4.2.2.1) asks: CRLs and OCSP answers are signed, and a
// verifier checking revocation must not need to check a TLS server's
// certificate first. An empty base returns a.
func (a *Authority) WithPublicURL(base string) (*Authority, error) {
	if base == "" {
		return a, nil
	}
	if err := pki.CheckPublicURL(base); err != nil {
		return nil, fmt.Errorf("issuance: the public URL %w", err)
	}
	c := *a
	c.publicURL = strings.TrimSuffix(base, "/")
	return &c, nil
}

// pointers are the CRL distribution point and OCSP responder a certificate
// of the issuing CA id carries: none without a public URL.
func (a *Authority) pointers(id string) (crl, ocspURL []string) {
	if a.publicURL == "" {
		return nil, nil
	}
	return []string{a.publicURL + CRLPath(id)}, []string{a.publicURL + OCSPPath}
}

// IssuerID is the certificate ID of the issuing CA that signs now, the
// name under which its CRL is served and its certificates are recorded.
func (a *Authority) IssuerID() string { return a.current().id }

// SignCRL signs a CRL of the current issuing CA (see IssuerKey.SignCRL).
func (a *Authority) SignCRL(ctx context.Context, number int64, thisUpdate, nextUpdate time.Time, entries []x509.RevocationListEntry) ([]byte, error) {
	return a.signCRL(ctx, a.current(), number, thisUpdate, nextUpdate, entries)
}

// SignOCSP signs an OCSP answer of the current issuing CA (see
// IssuerKey.SignOCSP).
func (a *Authority) SignOCSP(ctx context.Context, r ocsp.Response) ([]byte, error) {
	return a.signOCSP(ctx, a.current(), r)
}

func (a *Authority) signCRL(ctx context.Context, k *IssuerKey, number int64, thisUpdate, nextUpdate time.Time, entries []x509.RevocationListEntry) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, k.cert, k.signer)
	if err := a.recordSignature(ctx, k.id, audit.Record{Object: audit.CRL, CRLNumber: number, Entries: len(entries),
		NotBefore: thisUpdate, NotAfter: nextUpdate}, err); err != nil {
		return nil, err
	}
	return der, nil
}

// recordSignature completes rec (time, issuer, requester, outcome from
// err) and writes it; the error is err, or the audit log's if the record
// could not be written.
func (a *Authority) recordSignature(ctx context.Context, issuerID string, rec audit.Record, err error) error {
	if a.auditor == nil {
		return err
	}
	rec.Time, rec.Issuer, rec.Requester, rec.Outcome = a.now().UTC(), issuerID, audit.RequesterOf(ctx), audit.Signed
	if err != nil {
		rec.Outcome, rec.Reason = audit.Failed, err.Error()
		return errors.Join(err, a.auditor.Write(ctx, rec))
	}
	return a.auditor.Write(ctx, rec)
}

// signOCSP signs an OCSP answer about a certificate of the issuing CA k.
// The issuing CA signs it itself (RFC 6960 4.2.2.2), so verifiers need no
// responder certificate and nothing else holds a key.
func (a *Authority) signOCSP(ctx context.Context, k *IssuerKey, r ocsp.Response) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := ocsp.CreateResponse(k.cert, k.cert, r, k.signer)
	rec := audit.Record{Object: audit.OCSP, Status: ocspStatus[r.Status], NotBefore: r.ThisUpdate, NotAfter: r.NextUpdate}
	if r.SerialNumber != nil {
		rec.Serial = r.SerialNumber.Text(16)
	}
	if err := a.recordSignature(ctx, k.id, rec, err); err != nil {
		return nil, err
	}
	return der, nil
}

var ocspStatus = map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}
