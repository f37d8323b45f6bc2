package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/server"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
	"github.com/fleetca/fleetca/internal/testpki"
)

// chainCerts returns the issuing CAs /ca-chain.pem serves (newest first)
// and the root after them.
func (ts *testServer) chainCerts(t testing.TB) (issuers []*x509.Certificate, root *x509.Certificate) {
	t.Helper()
	_, body := httpGet(t, ts.URL()+"/ca-chain.pem")
	var certs []*x509.Certificate
	for rest := body; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("/ca-chain.pem has %d certificates", len(certs))
	}
	return certs[:len(certs)-1], certs[len(certs)-1]
}

// verifiesWithChain checks certPEM chains to the root through the issuing
// CAs /ca-chain.pem serves, and returns its issuer.
func (ts *testServer) verifiesWithChain(t testing.TB, certPEM string) *x509.Certificate {
	t.Helper()
	cert := parseCertPEM(t, certPEM)
	issuers, root := ts.chainCerts(t)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, ca := range issuers {
		inter.AddCert(ca)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("%s does not chain to the root with /ca-chain.pem: %v", cert.Subject, err)
	}
	return chains[0][1]
}

// revokedBy checks cert is on its issuer's CRL and OCSP says revoked.
func (ts *testServer) revokedBy(t testing.TB, cert, issuer *x509.Certificate) {
	t.Helper()
	eventually(t, func() (bool, string) {
		resp, body := httpGet(t, ts.URL()+"/crl/"+sha256Hex(issuer.Raw)+".crl")
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status
		}
		list, err := x509.ParseRevocationList(body)
		if err != nil || list.CheckSignatureFrom(issuer) != nil {
			return false, "the CRL does not verify"
		}
		if _, ok := listed(list, cert.SerialNumber); !ok {
			return false, "not on the CRL yet"
		}
		req, _ := ocsp.CreateRequest(cert, issuer, nil)
		_, answer := httpGet(t, ts.URL()+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
		r, err := ocsp.ParseResponseForCert(answer, cert, issuer)
		if err != nil || r.Status != ocsp.Revoked {
			return false, "OCSP does not say revoked"
		}
		return true, ""
	})
}

func revoke(t testing.TB, c *iot.Client, id string) {
	t.Helper()
	if _, err := c.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: "REVOKED"}); err != nil {
		t.Fatal(err)
	}
}

// TestRotation rotates the issuing CA of a server on SQLite: after the
// restart new certificates come from the new issuing CA, a device whose
// certificate came from the old one still connects, its revocation still
// reaches the old one's CRL and OCSP, and /ca-chain.pem and /crl.pem cover
// both.
func TestRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	c := ts.iotClient()
	ctx := context.Background()
	device := ts.claim(t, c)
	ts.mustConnect(t, device)
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "before the rotation"})
	before, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	oldIssuer := ts.verifiesWithChain(t, *before.CertificatePem)
	ts.stop(t)

	made, err := server.RotateCA(ctx, testConfig(dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts = startServer(t, dir)
	c = ts.iotClient()
	after, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	if newIssuer := ts.verifiesWithChain(t, *after.CertificatePem); !newIssuer.Equal(made) {
		t.Fatalf("a new certificate is issued by %s, not the new issuing CA", newIssuer.Subject)
	}
	if issuers, _ := ts.chainCerts(t); len(issuers) != 2 || !issuers[0].Equal(made) || !issuers[1].Equal(oldIssuer) {
		t.Fatalf("/ca-chain.pem has %d issuing CAs", len(issuers))
	}
	ts.verifiesWithChain(t, *before.CertificatePem)
	// The old issuing CA's device is still admitted.
	if _, err := ts.connect(t, device, "old-device"); err != nil {
		t.Fatalf("a device of the old issuing CA: %v", err)
	}
	revoke(t, c, *before.CertificateId)
	ts.revokedBy(t, parseCertPEM(t, *before.CertificatePem), oldIssuer)
	revoke(t, c, *after.CertificateId)
	ts.revokedBy(t, parseCertPEM(t, *after.CertificatePem), made)
	if _, body := httpGet(t, ts.URL()+"/crl.pem"); bytes.Count(body, []byte("BEGIN X509 CRL")) != 2 {
		t.Fatalf("/crl.pem has %d CRLs, want both issuing CAs'", bytes.Count(body, []byte("BEGIN X509 CRL")))
	}
}

// TestRotationReachesRunningReplicas rotates the shared CA of two running
// replicas on PostgreSQL: both sign with the new issuing CA within
// seconds, without a restart, and the old one's certificates keep their
// revocation.
func TestRotationReachesRunningReplicas(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	var replicas []*testServer
	for range 2 {
		replicas = append(replicas, startServerWith(t, "", func(c *config.Config) {
			c.Database, c.CAKeyPassphrase = db, testPassphrase
			c.RevocationPoll = 100 * time.Millisecond
		}))
	}
	ctx := context.Background()
	a := replicas[0].iotClient()
	old, err := a.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	oldIssuer := replicas[0].verifiesWithChain(t, *old.CertificatePem)
	cfg := testConfig(t.TempDir())
	cfg.Database, cfg.CAKeyPassphrase = db, testPassphrase
	made, err := server.RotateCA(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range replicas {
		c := r.iotClient()
		eventually(t, func() (bool, string) {
			out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
			if err != nil {
				return false, err.Error()
			}
			if issuer := r.verifiesWithChain(t, *out.CertificatePem); !issuer.Equal(made) {
				return false, "replica " + string(rune('0'+i)) + " still signs with " + issuer.Subject.CommonName
			}
			return true, ""
		})
		r.verifiesWithChain(t, *old.CertificatePem)
	}
	revoke(t, a, *old.CertificateId)
	for _, r := range replicas {
		r.revokedBy(t, parseCertPEM(t, *old.CertificatePem), oldIssuer)
	}
}

// TestRotationThatCannotBeTakenUp: a replica that cannot open a rotated
// issuing CA's key (here: a row whose key is not sealed with its
// passphrase) would refuse that CA's devices, so it says it is not ready.
func TestRotationThatCannotBeTakenUp(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	ts := startServerWith(t, "", func(c *config.Config) {
		c.Database, c.CAKeyPassphrase = db, testPassphrase
		c.RevocationPoll = 100 * time.Millisecond
	})
	st, err := sqlstore.OpenPostgres(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, root := ts.chainCerts(t)
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	if _, err := st.AddIssuingCA(context.Background(), store.IssuingCA{CertPEM: rootPEM, KeySealed: []byte("not sealed with the passphrase")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() (bool, string) {
		resp, body := httpGet(t, ts.URL()+"/readyz")
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("rotated")) {
			return false, resp.Status + " " + string(body)
		}
		return true, ""
	})
}
