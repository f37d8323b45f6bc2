package issuance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/keys"
)

func openTemp(t testing.TB, alg keys.Algorithm) (*Authority, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := Open(Options{Dir: dir, Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

// lintProblems lints der as lint-before-sign does, warnings included: the
// normal profiles are held to those too.
func lintProblems(t *testing.T, der []byte) []string {
	t.Helper()
	found, err := newLints(t, true).Lint(der)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestProfilesLintClean(t *testing.T) {
	for _, tc := range []struct {
		alg       keys.Algorithm
		publicURL string
	}{
		{keys.ECDSAP256, ""}, {keys.RSA2048, ""},
		// With revocation pointers, as --public-url puts them in.
		{keys.ECDSAP256, "http://ca.example.com:7400"}, {keys.RSA2048, "http://ca.example.com/fleetca/"},
	} {
		alg := tc.alg
		t.Run(string(alg)+" "+tc.publicURL, func(t *testing.T) {
			a, _ := openTemp(t, alg)
			a, err := a.WithPublicURL(tc.publicURL)
			if err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "thing-1", Organization: []string{"Acme"}}}, key)
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := x509.ParseCertificateRequest(csrDER)
			fromCSR, err := a.IssueForCSR(context.Background(), csr)
			if err != nil {
				t.Fatal(err)
			}
			rsaKey, err := GenerateDeviceKey()
			if err != nil {
				t.Fatal(err)
			}
			forKey, err := a.IssueForKey(context.Background(), &rsaKey.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			server, err := a.IssueServerCertificate(context.Background(), []string{"localhost", "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			claim, err := a.IssueClaim(context.Background(), &rsaKey.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if tc.publicURL != "" {
				leaf, err := x509.ParseCertificate(fromCSR.DER)
				if err != nil {
					t.Fatal(err)
				}
				base := strings.TrimSuffix(tc.publicURL, "/")
				if !slices.Equal(leaf.CRLDistributionPoints, []string{base + CRLPath(a.IssuerID())}) || !slices.Equal(leaf.OCSPServer, []string{base + OCSPPath}) {
					t.Errorf("pointers: CRL %v, OCSP %v", leaf.CRLDistributionPoints, leaf.OCSPServer)
				}
			}
			for name, der := range map[string][]byte{
				"root": a.Root().Raw, "issuing": a.Issuing().Raw, "server CA": a.ServerCA().Raw, "from CSR": fromCSR.DER, "for key": forKey.DER,
				"MQTT server": server.Certificate[0], "provisioning claim": claim.DER,
			} {
				if p := lintProblems(t, der); len(p) > 0 {
					t.Errorf("%s certificate: zlint findings:\n%v", name, p)
				}
			}
		})
	}
}

func TestDeviceProfile(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	a, err := Open(Options{Dir: filepath.Join(t.TempDir(), "ca"), Algorithm: keys.ECDSAP256, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := GenerateDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	issued, err := a.IssueForKey(context.Background(), &rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(issued.DER)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"subject", c.Subject.String() == "CN=AWS IoT Certificate"},
		{"notBefore two minutes back", c.NotBefore.Equal(now.Add(-2 * time.Minute))},
		{"notAfter 2049-12-31T23:59:59Z", c.NotAfter.Equal(DeviceNotAfter)},
		{"key usage digitalSignature only", c.KeyUsage == x509.KeyUsageDigitalSignature},
		{"not a CA", c.BasicConstraintsValid && !c.IsCA},
		{"EKU clientAuth only", len(c.ExtKeyUsage) == 1 && c.ExtKeyUsage[0] == x509.ExtKeyUsageClientAuth && len(c.UnknownExtKeyUsage) == 0},
		{"SKI", len(c.SubjectKeyId) == 20},
		{"AKI is the issuer's SKI", string(c.AuthorityKeyId) == string(a.Issuing().SubjectKeyId)},
		{"serial positive, at most 20 bytes", c.SerialNumber.Sign() > 0 && len(c.SerialNumber.Bytes()) <= 20},
		{"serial has entropy", c.SerialNumber.BitLen() > 64},
		{"signed by the issuing CA", c.CheckSignatureFrom(a.Issuing()) == nil},
		{"issued times match", issued.NotBefore.Equal(c.NotBefore) && issued.NotAfter.Equal(c.NotAfter)},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("profile: %s", ch.name)
		}
	}
}

func TestServerCertificate(t *testing.T) {
	a, _ := openTemp(t, keys.ECDSAP256)
	cert, err := a.IssueServerCertificate(context.Background(), []string{"mqtt.example.com", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.Root())
	inter := x509.NewCertPool()
	inter.AddCert(a.ServerCA())
	for _, host := range []string{"mqtt.example.com", "127.0.0.1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if len(cert.Certificate) != 2 || !a.ServerCA().Equal(mustParse(t, cert.Certificate[1])) {
		t.Error("the server certificate's chain is not [leaf, server CA]")
	}
	if cert.Leaf.CheckSignatureFrom(a.Issuing()) == nil {
		t.Error("the server certificate comes from the devices' issuing CA")
	}
	if _, err := a.IssueServerCertificate(context.Background(), nil); err == nil {
		t.Error("a server certificate without host names was issued")
	}
}

func TestOpenReloadsTheSameCA(t *testing.T) {
	a, dir := openTemp(t, keys.ECDSAP256)
	b, err := Open(Options{Dir: dir, Algorithm: keys.RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root().Equal(b.Root()) || !a.Issuing().Equal(b.Issuing()) {
		t.Fatal("reopening made a new CA")
	}
	for _, name := range []string{"root.key", "issuing.key"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("CA directory has mode %v, want 0700", info.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".ca-new-*")); len(leftovers) > 0 {
		t.Errorf("temporary CA directories left behind: %v", leftovers)
	}
}

func TestOpenRefusesAMismatchedKey(t *testing.T) {
	_, dir := openTemp(t, keys.ECDSAP256)
	_, other := openTemp(t, keys.ECDSAP256)
	data, err := os.ReadFile(filepath.Join(other, "issuing.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "issuing.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("Open accepted an issuing key that does not match the certificate")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDeviceCertificateCannotServeTLS: a device that asks for CN=localhost
// gets a certificate no verifier accepts for a TLS server, with or without
// the issuing CA in the chain it presents.
func TestDeviceCertificateCannotServeTLS(t *testing.T) {
	a, _ := openTemp(t, keys.ECDSAP256)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	issued, err := a.IssueForCSR(context.Background(), csr)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustParse(t, issued.DER)
	roots := x509.NewCertPool()
	roots.AddCert(a.Root())
	inter := x509.NewCertPool()
	inter.AddCert(a.Issuing())
	inter.AddCert(a.ServerCA())
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, Intermediates: inter}); err == nil {
		t.Fatal("a device certificate for CN=localhost verifies as a TLS server")
	}
	// The same certificate still authenticates the device as a client.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the device certificate does not verify as a client: %v", err)
	}
}

// TestOpenAddsServerCAToAnOldCA: a CA directory made before the server CA
// existed gains one at its next start, from the root key, and keeps its root
// and issuing CA; without the root key the start stops and says why.
func TestOpenAddsServerCAToAnOldCA(t *testing.T) {
	a, dir := openTemp(t, keys.ECDSAP256)
	for _, f := range []string{serverCACertFile, serverCAKeyName + ".key"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	rootKey, err := os.ReadFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "root.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("Open made up a server CA without the root key")
	}
	if err := os.WriteFile(filepath.Join(dir, "root.key"), rootKey, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Dir: dir, Algorithm: keys.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root().Equal(b.Root()) || !a.Issuing().Equal(b.Issuing()) || b.ServerCA().CheckSignatureFrom(b.Root()) != nil {
		t.Fatal("the upgraded CA is not the same CA with a server CA added")
	}
	// The root key may go offline now: the server CA is kept.
	if err := os.Remove(filepath.Join(dir, "root.key")); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("opening with the root key offline: %v", err)
	}
	if !c.ServerCA().Equal(b.ServerCA()) {
		t.Fatal("a second server CA was made")
	}
}

func TestWithPublicURLRefusesWhatIsNoBaseURL(t *testing.T) {
	a, _ := openTemp(t, keys.ECDSAP256)
	for _, bad := range []string{"ca.example.com", "ftp://ca.example.com", "http://", "http://u:p@ca.example.com", "http://ca.example.com/?x=1", "http://ca.example.com/#f", ":", "https://ca.example.com", "http://ca.example.com/?"} {
		if _, err := a.WithPublicURL(bad); err == nil {
			t.Errorf("WithPublicURL(%q) accepted", bad)
		}
	}
	same, err := a.WithPublicURL("")
	if err != nil || same != a {
		t.Errorf("WithPublicURL(\"\") = %p, %v; want the same authority", same, err)
	}
}
