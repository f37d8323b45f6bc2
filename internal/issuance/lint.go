package issuance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/fleetca/fleetca/internal/keys"
)

// Linter lints a certificate: zlint, through package certlint. Findings
// refuse the certificate.
type Linter interface {
	Lint(der []byte) ([]string, error)
}

// LintMode says which certificates are linted before the CA key signs them.
type LintMode int

const (
	// LintEachProfile lints the first certificate of each profile, key
	// type, issuer and set of revocation pointers, and then none of that
	// kind again: what varies between them (subject, public key, serial,
	// time) is checked before signing by pki.CheckSubject,
	// pki.CheckKeyToSign and the profile's own code, and
	// TestPerRequestFieldsCannotChangeTheLint shows the lints cannot
	// tell such certificates apart.
	LintEachProfile LintMode = iota
	// LintEachCertificate lints every certificate (Boulder's way).
	LintEachCertificate
	// LintNone lints nothing: for benchmarks of signing alone.
	LintNone
)

// LintObserver counts refusals; telemetry implements it.
type LintObserver interface {
	ObserveLintRefusal(profile string)
}

// linter builds each certificate first with a throwaway key of the
// issuer's type (Boulder's "linting certificate"), lints it, and only
// then lets the CA key sign.
type linter struct {
	mode     LintMode
	lints    Linter
	observer LintObserver
	// issuers are the stand-ins of the real issuers: the same subject and
	// key identifier, with a throwaway key of the same type, by the real
	// issuer's raw certificate.
	mu      sync.Mutex
	issuers map[string]lintIssuer
	// passed are the kinds of certificate that linted clean once.
	passed sync.Map // lintKind -> struct{}
}

type lintIssuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// lintKind is what LintEachProfile lints once: everything about a
// certificate that the profile fixes, not the request.
type lintKind struct {
	profile, issuerID, keyType, pointers string
}

func newLinter(lints Linter, mode LintMode, observer LintObserver) *linter {
	return &linter{mode: mode, lints: lints, observer: observer, issuers: map[string]lintIssuer{}}
}

// LintError is a certificate the lints refused.
type LintError struct {
	Profile  string
	Findings []string
}

func (e *LintError) Error() string {
	return fmt.Sprintf("issuance: the %s certificate fails lints: %s", e.Profile, strings.Join(e.Findings, "; "))
}

// check lints the certificate tmpl for pub would be when parent signs it,
// unless its kind has passed already.
func (l *linter) check(tmpl, parent *x509.Certificate, issuerID string, pub crypto.PublicKey, profile string) error {
	if l == nil || l.lints == nil || l.mode == LintNone {
		return nil
	}
	kind := lintKind{profile: profile, issuerID: issuerID, keyType: keyType(pub)}
	if len(tmpl.CRLDistributionPoints)+len(tmpl.OCSPServer) > 0 {
		kind.pointers = strings.Join(tmpl.CRLDistributionPoints, " ") + "|" + strings.Join(tmpl.OCSPServer, " ")
	}
	if l.mode == LintEachProfile {
		if _, ok := l.passed.Load(kind); ok {
			return nil
		}
	}
	issuer, err := l.issuer(parent)
	if err != nil {
		return err
	}
	// The template is the one the CA key will sign; serial and key
	// identifier are filled in by sign and kept for the real signature.
	der, err := sign(tmpl, issuer.cert, pub, issuer.key)
	if err != nil {
		return fmt.Errorf("issuance: making the linting certificate: %w", err)
	}
	findings, err := l.lints.Lint(der)
	if err != nil {
		return fmt.Errorf("issuance: linting: %w", err)
	}
	if len(findings) > 0 {
		if l.observer != nil {
			l.observer.ObserveLintRefusal(profile)
		}
		return &LintError{Profile: profile, Findings: findings}
	}
	if l.mode == LintEachProfile {
		l.passed.Store(kind, struct{}{})
	}
	return nil
}

// issuer returns parent's stand-in, made at its first use.
func (l *linter) issuer(parent *x509.Certificate) (lintIssuer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if is, ok := l.issuers[string(parent.Raw)]; ok {
		return is, nil
	}
	key, err := throwawayLike(parent.PublicKey)
	if err != nil {
		return lintIssuer{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: parent.SerialNumber, RawSubject: parent.RawSubject, SubjectKeyId: parent.SubjectKeyId,
		NotBefore: parent.NotBefore, NotAfter: parent.NotAfter, KeyUsage: parent.KeyUsage, ExtKeyUsage: parent.ExtKeyUsage,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: parent.MaxPathLen, MaxPathLenZero: parent.MaxPathLenZero,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return lintIssuer{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return lintIssuer{}, err
	}
	is := lintIssuer{cert: cert, key: key}
	l.issuers[string(parent.Raw)] = is
	return is, nil
}

// throwawayLike makes a key of pub's type and size, so that the linting
// certificate's signature algorithm is the real one's.
func throwawayLike(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return keys.ECDSAP256.Generate()
		case 384:
			return keys.ECDSAP384.Generate()
		}
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	return nil, fmt.Errorf("issuance: no throwaway key of the issuer's type %T", pub)
}

// keyType names pub's algorithm and size.
func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-" + k.Curve.Params().Name
	case *rsa.PublicKey:
		return "rsa-" + strconv.Itoa(k.N.BitLen()) + "-e" + strconv.Itoa(k.E)
	}
	return fmt.Sprintf("%T", pub)
}
