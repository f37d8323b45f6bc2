package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/certlint"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/pki"
)

// countingSigner counts the signatures of the key it wraps.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (c *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, digest, opts)
}

type recorder struct {
	mu      sync.Mutex
	records []audit.Record
}

func (r *recorder) Write(_ context.Context, rec audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}

type refusals struct{ n atomic.Int64 }

func (r *refusals) ObserveLintRefusal(string) { r.n.Add(1) }

// TestLintRefusesABrokenProfile: a profile that would make a certificate
// RFC 5280 forbids (a non-CA that may sign certificates) is refused before
// the CA key signs anything, with an audit record and a count.
func TestLintRefusesABrokenProfile(t *testing.T) {
	for _, mode := range []LintMode{LintEachProfile, LintEachCertificate} {
		a, _ := openTemp(t, keys.ECDSAP256)
		counted := &refusals{}
		a = a.WithLinting(newLints(t, false), mode, counted)
		rec := &recorder{}
		a = a.WithAuditor(rec)
		ca := &countingSigner{Signer: a.current().signer}
		a.current().signer = ca
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		broken := a.deviceTemplate()
		broken.Subject = defaultSubject
		broken.KeyUsage |= x509.KeyUsageCertSign // only a CA may sign certificates
		_, err := a.issue(context.Background(), a.current(), broken, &key.PublicKey, "broken-test-profile")
		var lintErr *LintError
		if !errors.As(err, &lintErr) || !strings.Contains(err.Error(), "e_ext_key_usage_cert_sign_without_ca") {
			t.Fatalf("mode %d: issuing with a broken profile: %v", mode, err)
		}
		if ca.n.Load() != 0 {
			t.Fatalf("mode %d: the CA key signed %d times for a refused certificate", mode, ca.n.Load())
		}
		if counted.n.Load() != 1 {
			t.Fatalf("mode %d: %d refusals counted", mode, counted.n.Load())
		}
		if len(rec.records) != 1 || rec.records[0].Outcome != audit.Refused || !strings.Contains(rec.records[0].Reason, "e_ext_key_usage_cert_sign_without_ca") {
			t.Fatalf("mode %d: audit records %+v", mode, rec.records)
		}
		// The normal profile still signs, and is recorded.
		if _, err := a.IssueForKey(context.Background(), &key.PublicKey); err != nil {
			t.Fatal(err)
		}
		if ca.n.Load() != 1 || rec.records[1].Outcome != audit.Signed {
			t.Fatalf("mode %d: the normal profile: %d signatures, %+v", mode, ca.n.Load(), rec.records)
		}
	}
}

// TestEveryProfilePassesTheLint issues every profile with every kind of CA
// and device key, linting each certificate.
func TestEveryProfilePassesTheLint(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048} {
		for _, url := range []string{"", "http://ca.example.com:7400"} {
			a, _ := openTemp(t, alg)
			a, err := a.WithPublicURL(url)
			if err != nil {
				t.Fatal(err)
			}
			a = a.WithLinting(newLints(t, false), LintEachCertificate, nil)
			for _, dev := range []string{"p256", "p384", "rsa2048"} {
				key := deviceKey(t, dev)
				csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "thing-1", Organization: []string{"Acme"}}}, key)
				csr, _ := x509.ParseCertificateRequest(csrDER)
				if _, err := a.IssueForCSR(context.Background(), csr); err != nil {
					t.Errorf("%s %q %s: from a CSR: %v", alg, url, dev, err)
				}
				if _, err := a.IssueForKey(context.Background(), key.Public()); err != nil {
					t.Errorf("%s %q %s: for a key: %v", alg, url, dev, err)
				}
				if _, err := a.IssueClaim(context.Background(), key.Public()); err != nil {
					t.Errorf("%s %q %s: claim: %v", alg, url, dev, err)
				}
			}
			if _, err := a.IssueServerCertificate(context.Background(), []string{"mqtt.example.com", "127.0.0.1"}); err != nil {
				t.Errorf("%s: server: %v", alg, err)
			}
		}
	}
}

func deviceKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "p256":
		k, err = keys.ECDSAP256.Generate()
	case "p384":
		k, err = keys.ECDSAP384.Generate()
	default:
		k, err = keys.RSA2048.Generate()
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newLints(t testing.TB, warnings bool) *certlint.Linter {
	t.Helper()
	l, err := certlint.New(warnings)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// lintFindings lints der with the lints lint-before-sign uses and returns
// what would refuse it (errors and fatals; the normal profiles are held to
// warnings too, by TestProfilesLintClean).
func lintFindings(t testing.TB, der []byte) []string {
	t.Helper()
	found, err := newLints(t, false).Lint(der)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// subjectAttribute is an attribute type a random subject may have, its
// bound, and its string types (as pki.CheckSubject allows).
type subjectAttribute struct {
	oid  asn1.ObjectIdentifier
	max  int
	tags []int
}

var randomAttributes = []subjectAttribute{
	{asn1.ObjectIdentifier{2, 5, 4, 3}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, 64, []int{asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 6}, 2, []int{asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, 128, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, 128, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, 16, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 42}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, 128, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, 63, []int{asn1.TagIA5String}},
	{asn1.ObjectIdentifier{2, 5, 4, 4}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 12}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
	{asn1.ObjectIdentifier{2, 5, 4, 97}, 64, []int{asn1.TagUTF8String, asn1.TagPrintableString}},
}

const printableAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '()+,-./:=?"

// randomSubject is a subject of 1 to 6 attributes within their bounds.
func randomSubject(r *mrand.Rand) []byte {
	var rdns []asn1.RawValue
	for range 1 + r.IntN(6) {
		at := randomAttributes[r.IntN(len(randomAttributes))]
		tag := at.tags[r.IntN(len(at.tags))]
		n := 1 + r.IntN(at.max)
		if at.max == 2 {
			n = 2 // a country code
		}
		var sb strings.Builder
		for range n {
			switch {
			case at.max == 2: // a country code
				sb.WriteByte(byte('A' + r.IntN(26)))
			case tag == asn1.TagUTF8String && r.IntN(4) == 0:
				sb.WriteRune(rune(0xa0 + r.IntN(0x2000))) // beyond ASCII, printable
			case tag == asn1.TagIA5String:
				sb.WriteByte(byte(0x20 + r.IntN(0x5f)))
			default:
				sb.WriteByte(printableAlphabet[r.IntN(len(printableAlphabet))])
			}
		}
		value, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(sb.String())})
		atv, _ := asn1.Marshal(struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}{at.oid, asn1.RawValue{FullBytes: value}})
		set, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: atv})
		rdns = append(rdns, asn1.RawValue{FullBytes: set})
	}
	der, _ := asn1.Marshal(rdns)
	return der
}

// TestPerRequestFieldsCannotChangeTheLint is why LintEachProfile may lint
// a profile once: certificates of one profile, issuer and key type that
// differ in every per-request field — subjects pki.CheckSubject accepts,
// public keys, serials, times — all lint as the first one did (clean).
func TestPerRequestFieldsCannotChangeTheLint(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	n := 100 // each certificate takes about 5 ms to lint
	if testing.Short() {
		n = 30
	}
	// RSA keys take long to make; a few, each used several times, still
	// vary the key between certificates.
	rsaKeys := []crypto.Signer{deviceKey(t, "rsa2048"), deviceKey(t, "rsa2048"), deviceKey(t, "rsa2048")}
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.RSA2048} {
		a, _ := openTemp(t, alg)
		pointed, _ := a.WithPublicURL("http://ca.example.com")
		for i := range n {
			subject := randomSubject(r)
			if err := pki.CheckSubject(subject); err != nil {
				t.Fatalf("the generator made a subject CheckSubject refuses: %v", err)
			}
			key := rsaKeys[i%len(rsaKeys)]
			if i%3 != 0 {
				key = deviceKey(t, []string{"p256", "p384"}[i%3-1])
			}
			auth := a
			if i%2 == 1 {
				auth = pointed
			}
			tmpl := auth.deviceTemplate()
			tmpl.RawSubject = subject
			is, err := auth.issue(context.Background(), auth.current(), tmpl, key.Public(), ProfileDeviceCSR)
			if err != nil {
				t.Fatal(err)
			}
			claim, err := auth.IssueClaim(context.Background(), key.Public())
			if err != nil {
				t.Fatal(err)
			}
			for _, der := range [][]byte{is.DER, claim.DER} {
				if f := lintFindings(t, der); len(f) > 0 {
					t.Fatalf("subject %x, key %T: %v", subject, key, f)
				}
			}
		}
	}
}

// FuzzLintSubject: any subject pki.CheckSubject accepts lints clean in a
// device certificate.
func FuzzLintSubject(f *testing.F) {
	r := mrand.New(mrand.NewPCG(3, 4))
	for range 8 {
		f.Add(randomSubject(r))
	}
	a, _ := openTemp(f, keys.ECDSAP256)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Fuzz(func(t *testing.T, subject []byte) {
		if pki.CheckSubject(subject) != nil {
			return
		}
		tmpl := a.deviceTemplate()
		tmpl.RawSubject = subject
		is, err := a.issue(context.Background(), a.current(), tmpl, &key.PublicKey, ProfileDeviceCSR)
		if err != nil {
			return // Go refused to sign it; nothing was issued
		}
		if found := lintFindings(t, is.DER); len(found) > 0 {
			t.Fatalf("subject %x passes CheckSubject but lints: %v", subject, found)
		}
	})
}
