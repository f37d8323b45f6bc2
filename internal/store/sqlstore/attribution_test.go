package sqlstore

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/revocation"
	"github.com/fleetca/fleetca/internal/testpki"
)

// TestAttributionOfCertificatesFromBeforeRevocation upgrades a database as
// migration 0010 does and checks that revocation.Attribute then finds the
// issuer and serial of what fleetca signed, so that a certificate revoked
// before the upgrade is on the first CRL after it.
func TestAttributionOfCertificatesFromBeforeRevocation(t *testing.T) {
	ctx := context.Background()
	a, err := issuance.Open(issuance.Options{Dir: filepath.Join(t.TempDir(), "ca"), Algorithm: keys.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "fleetca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	scope := iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
	now := time.Now().UTC().Truncate(time.Microsecond)
	stored := func(der []byte, status iot.Status, mode iot.Mode, caID string) *iot.Certificate {
		t.Helper()
		c := &iot.Certificate{Scope: scope, ID: iot.CertificateID(der), Status: status, Mode: mode, CACertificateID: caID, DER: der,
			OwnedBy: scope.AccountID, CreatedAt: now, LastModifiedAt: now, CustomerVersion: 1, GenerationID: "g", NotBefore: now, NotAfter: now.Add(time.Hour)}
		if err := st.CreateCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	signed := func(status iot.Status) (*iot.Certificate, *x509.Certificate) {
		issued, err := a.IssueForKey(ctx, testpki.Key(t, "p256").Public())
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(issued.DER)
		return stored(issued.DER, status, iot.ModeDefault, ""), cert
	}
	revoked, revokedCert := signed(iot.StatusRevoked)
	active, activeCert := signed(iot.StatusActive)
	held, heldCert := signed(iot.StatusInactive)
	other := testpki.NewRoot(t, "p256", "Another CA")
	foreignCert, _ := other.Issue(t, "device", testpki.Key(t, "p256").Public())
	foreign := stored(foreignCert.Raw, iot.StatusRevoked, iot.ModeDefault, "")
	sniCert, _ := other.Issue(t, "sni", testpki.Key(t, "p256").Public())
	sni := stored(sniCert.Raw, iot.StatusRevoked, iot.ModeSNIOnly, "")

	// The rows as the previous version stored them, then migration 0010's
	// own statement.
	if _, err := st.wdb.ExecContext(ctx, `UPDATE certificates SET issuer_id = '', serial = ''`); err != nil {
		t.Fatal(err)
	}
	body, err := migrations.ReadFile("migrations/sqlite/0010_revocation.sql")
	if err != nil {
		t.Fatal(err)
	}
	var mark string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "UPDATE certificates SET issuer_id") {
			mark = line
		}
	}
	if mark == "" {
		t.Fatal("migration 0010 no longer marks the certificates to attribute")
	}
	if _, err := st.wdb.ExecContext(ctx, mark); err != nil {
		t.Fatal(err)
	}

	n, err := revocation.Attribute(ctx, st, a.Issuing(), a.IssuerID())
	if err != nil || n != 3 {
		t.Fatalf("Attribute = %d, %v; want the 3 certificates fleetca signed", n, err)
	}
	for _, tc := range []struct {
		c            *iot.Certificate
		issuer, want string
	}{
		{revoked, a.IssuerID(), revokedCert.SerialNumber.Text(16)},
		{active, a.IssuerID(), activeCert.SerialNumber.Text(16)},
		{held, a.IssuerID(), heldCert.SerialNumber.Text(16)},
		{foreign, "", ""},
		{sni, "", ""},
	} {
		got, err := st.Certificate(ctx, scope, tc.c.ID)
		if err != nil || got.IssuerID != tc.issuer || got.Serial != tc.want {
			t.Errorf("%s: issuer %q serial %q (%v), want %q %q", tc.c.ID[:8], got.IssuerID, got.Serial, err, tc.issuer, tc.want)
		}
	}
	unusable, err := st.UnusableCertificates(ctx, a.IssuerID(), now)
	if err != nil || len(unusable) != 2 {
		t.Fatalf("unusable after attribution: %+v (%v), want the REVOKED and the INACTIVE one", unusable, err)
	}
	if n, err := revocation.Attribute(ctx, st, a.Issuing(), a.IssuerID()); err != nil || n != 0 {
		t.Errorf("a second Attribute = %d, %v; want nothing left", n, err)
	}
	if left, err := st.UnattributedCertificates(ctx, 10); err != nil || len(left) != 0 {
		t.Errorf("unattributed left: %d (%v)", len(left), err)
	}
}
