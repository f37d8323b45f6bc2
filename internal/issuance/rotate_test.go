package issuance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// deviceCert issues a device certificate with a.
func deviceCert(t *testing.T, a *Authority) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := a.IssueForKey(context.Background(), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(is.DER)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifiesWith checks c chains to a's root through the issuing CAs of a's
// chain.
func verifiesWith(t *testing.T, a *Authority, c *x509.Certificate) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(a.Root())
	for rest := a.ChainPEM(); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ca)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("%s does not verify with the chain: %v", c.Subject, err)
	}
}

// checkRotated checks what a rotation from before to after promises.
func checkRotated(t *testing.T, before, after *Authority, old *x509.Certificate) {
	t.Helper()
	if after.Issuing().Equal(before.Issuing()) || len(after.Issuers()) != len(before.Issuers())+1 {
		t.Fatalf("no new issuing CA: %d issuers", len(after.Issuers()))
	}
	if !after.Root().Equal(before.Root()) {
		t.Fatal("the root changed")
	}
	fresh := deviceCert(t, after)
	if fresh.CheckSignatureFrom(after.Issuing()) != nil {
		t.Fatalf("a new certificate is not the new issuing CA's: %s", fresh.Issuer)
	}
	verifiesWith(t, after, fresh)
	verifiesWith(t, after, old) // the old one still validates
	if !after.OwnCA(before.Issuing()) || !after.OwnCA(after.Issuing()) {
		t.Fatal("OwnCA forgets an issuing CA")
	}
	if n := bytes.Count(after.ChainPEM(), []byte("BEGIN CERTIFICATE")); n != len(after.Issuers())+1 {
		t.Fatalf("the chain has %d certificates", n)
	}
	// The old issuing CA still signs its CRLs.
	oldKey, ok := after.Issuer(before.IssuerID())
	if !ok {
		t.Fatal("the old issuing CA is gone")
	}
	der, err := oldKey.SignCRL(context.Background(), 7, time.Now(), time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || crl.CheckSignatureFrom(before.Issuing()) != nil {
		t.Fatalf("the old issuing CA's CRL: %v", err)
	}
}

func TestRotate(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			before, dir := openTemp(t, alg)
			old := deviceCert(t, before)
			if _, _, err := Rotate(Options{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			after, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			checkRotated(t, before, after, old)
			if _, _, err := Rotate(Options{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			third, err := Open(Options{Dir: dir})
			if err != nil || len(third.Issuers()) != 3 {
				t.Fatalf("a second rotation: %v", err)
			}
			verifiesWith(t, third, old)
			// Without the root key there is no rotation.
			os.Rename(filepath.Join(dir, "root.key"), filepath.Join(dir, "root.key.offline"))
			if _, _, err := Rotate(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "root key") {
				t.Fatalf("a rotation without the root key: %v", err)
			}
		})
	}
}

// TestRotateShared: a rotation of the shared CA reaches a running replica
// through AdoptStored, and a new replica loads every issuing CA.
func TestRotateShared(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts := Options{Algorithm: keys.ECDSAP256, Passphrase: "shared passphrase"}
	running, err := OpenShared(context.Background(), st, opts)
	if err != nil {
		t.Fatal(err)
	}
	before := running.WithAuditor(nil) // a copy: rotation must reach copies too
	oldIssuing := running.Issuing()
	old := deviceCert(t, running)
	if _, _, err := RotateShared(context.Background(), st, opts); err != nil {
		t.Fatal(err)
	}
	adopted, err := running.AdoptStored(context.Background(), st, opts, nil)
	if err != nil || len(adopted) != 1 {
		t.Fatalf("AdoptStored: %d, %v", len(adopted), err)
	}
	if before.Issuing().Equal(oldIssuing) {
		t.Fatal("a copy of the Authority still signs with the old issuing CA")
	}
	fresh, err := OpenShared(context.Background(), st, opts)
	if err != nil || len(fresh.Issuers()) != 2 || !fresh.Issuing().Equal(running.Issuing()) {
		t.Fatalf("a new replica: %v", err)
	}
	verifiesWith(t, fresh, old)
	verifiesWith(t, fresh, deviceCert(t, running))
}

// TestRotatedKeysAreEveryCommandsKeys: sealing covers every generation's
// key, a gap in the generations stops the start, a rotation creates
// nothing else, and an issuing CA is adopted once and never twice by name.
func TestRotatedKeysAreEveryCommandsKeys(t *testing.T) {
	a, dir := openTemp(t, keys.ECDSAP256)
	for range 2 {
		if _, _, err := Rotate(Options{Dir: dir}); err != nil {
			t.Fatal(err)
		}
	}
	sealed, err := SealKeys(dir, "seal them all")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(sealed, " ") != "root.key issuing.key issuing-2.key issuing-3.key server-ca.key" {
		t.Fatalf("sealed %v", sealed)
	}
	b, err := Open(Options{Dir: dir, Passphrase: "seal them all"})
	if err != nil || len(b.Issuers()) != 3 {
		t.Fatalf("after sealing: %v", err)
	}
	// Adopting an issuing CA of the chain again changes nothing; one with
	// the name of another is refused (admission finds them by name).
	cur, _ := b.Issuer(b.IssuerID())
	if err := b.Adopt(cur.cert, cur.signer); err != nil || len(b.Issuers()) != 3 {
		t.Fatalf("adopting the current issuing CA again: %v", err)
	}
	rootKey, err := keys.FileStore{Dir: dir, Passphrase: "seal them all"}.Load("root")
	if err != nil {
		t.Fatal(err)
	}
	twinKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	twinDER, err := sign(issuingTemplate(a.Issuing().Subject, time.Now()), b.Root(), twinKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := x509.ParseCertificate(twinDER)
	if err := b.Adopt(twin, twinKey); err == nil || !strings.Contains(err.Error(), "name or key") {
		t.Fatalf("an issuing CA with the first one's name: %v", err)
	}
	os.Rename(filepath.Join(dir, "issuing-2.pem"), filepath.Join(dir, "issuing-2.pem.lost"))
	if _, err := Open(Options{Dir: dir, Passphrase: "seal them all"}); err == nil || !strings.Contains(err.Error(), "issuing-2.pem is missing") {
		t.Fatalf("a start with a generation missing: %v", err)
	}
	// A directory without its server CA is a start's to complete, not a
	// rotation's.
	_, old := openTemp(t, keys.ECDSAP256)
	os.Remove(filepath.Join(old, "server-ca.pem"))
	if _, _, err := Rotate(Options{Dir: old}); err == nil {
		t.Fatal("a rotation completed an old CA")
	}
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := RotateShared(context.Background(), st, Options{Passphrase: "p"}); !errors.Is(err, ErrNoCA) {
		t.Fatalf("a rotation of a database without a CA: %v", err)
	}
}
