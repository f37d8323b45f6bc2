//go:build cgo

package issuance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fleetca/fleetca/internal/hsmtest"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/keys/token"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

func openTestToken(t *testing.T, ht *hsmtest.Token) *token.Token {
	t.Helper()
	u, err := keys.ParseTokenURI(ht.URI(""))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := token.Open(u, ht.PIN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok
}

// checkIssues has a issue a device certificate and checks it chains to the
// root through the issuing CA.
func checkIssues(t *testing.T, a *Authority) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := a.IssueForKey(context.Background(), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(is.DER)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(a.Root())
	inter.AddCert(a.Issuing())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
}

// TestTokenCA keeps a CA's keys in a SoftHSM2 token: the CA directory holds
// certificates only, a later start finds the keys by them, and key files
// beside a token are refused.
func TestTokenCA(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			tok := openTestToken(t, hsmtest.NewToken(t, softHSMConf))
			dir := filepath.Join(t.TempDir(), "ca")
			a, err := Open(Options{Dir: dir, Algorithm: alg, Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			checkIssues(t, a)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				if strings.HasSuffix(e.Name(), ".key") || bytes.Contains(data, []byte("PRIVATE KEY")) {
					t.Errorf("the CA directory holds key material: %s", e.Name())
				}
			}
			b, err := Open(Options{Dir: dir, Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			if !b.Root().Equal(a.Root()) || !b.Issuing().Equal(a.Issuing()) {
				t.Fatal("a second start made another CA")
			}
			checkIssues(t, b)
			if _, err := Open(Options{Dir: dir}); err == nil {
				t.Fatal("a start without the token found keys for a token's CA")
			}
			os.WriteFile(filepath.Join(dir, "issuing.key"), []byte("stray"), 0o600)
			if _, err := Open(Options{Dir: dir, Token: tok}); err == nil || !strings.Contains(err.Error(), "import-key") {
				t.Fatalf("key files beside a token: %v", err)
			}
		})
	}
}

// TestSharedTokenCA has replicas start together on one database and one
// token: one CA results, every replica signs with it, the keys the losers
// made are gone from the token, and no key is in the database.
func TestSharedTokenCA(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ht := hsmtest.NewToken(t, softHSMConf)
	var wg sync.WaitGroup
	authorities := make([]*Authority, 4)
	errs := make([]error, len(authorities))
	for i := range authorities {
		// Each replica opens the token itself, as separate processes do.
		tok := openTestToken(t, ht)
		wg.Go(func() {
			authorities[i], errs[i] = OpenShared(context.Background(), st, Options{Algorithm: keys.ECDSAP256, Token: tok})
		})
	}
	wg.Wait()
	for i, a := range authorities {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !a.Root().Equal(authorities[0].Root()) {
			t.Fatal("replicas made different CAs")
		}
		checkIssues(t, a)
	}
	m, err := st.LoadCA(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.KeysSealed() || len(m.RootKeySealed)+len(m.IssuingKeySealed)+len(m.ServerCAKeySealed) > 0 {
		t.Fatal("the database holds keys of a token's CA")
	}
	if _, err := OpenShared(context.Background(), st, Options{Passphrase: "p"}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("a replica without the token: %v", err)
	}
	// The token holds the CA's three keys and nothing the losers made.
	tok := openTestToken(t, ht)
	for _, c := range []*x509.Certificate{authorities[0].Root(), authorities[0].Issuing(), authorities[0].ServerCA()} {
		if _, err := tok.Find(c.PublicKey); err != nil {
			t.Fatalf("%s: %v", c.Subject.CommonName, err)
		}
	}
	if n := tok.CountKeys(); n != 3 {
		t.Fatalf("the token holds %d keys, want the CA's 3", n)
	}
}

// TestTokenRotate rotates a CA whose keys are in a token: the new issuing
// key is made in the token, and the directory still holds no key.
func TestTokenRotate(t *testing.T) {
	tok := openTestToken(t, hsmtest.NewToken(t, softHSMConf))
	dir := filepath.Join(t.TempDir(), "ca")
	before, err := Open(Options{Dir: dir, Algorithm: keys.ECDSAP256, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	old := deviceCert(t, before)
	if _, _, err := Rotate(Options{Dir: dir, Token: tok}); err != nil {
		t.Fatal(err)
	}
	after, err := Open(Options{Dir: dir, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	checkRotated(t, before, after, old)
	if files, _ := filepath.Glob(filepath.Join(dir, "*.key")); len(files) > 0 {
		t.Fatalf("key files: %v", files)
	}
	if n := tok.CountKeys(); n != 4 {
		t.Fatalf("the token holds %d keys, want root, server CA and two issuing CAs", n)
	}
}

// TestImportRotatedKeys moves a rotated CA's key files into a token: every
// generation's key, so the CA starts from the token.
func TestImportRotatedKeys(t *testing.T) {
	_, dir := openTemp(t, keys.ECDSAP256)
	if _, _, err := Rotate(Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	tok := openTestToken(t, hsmtest.NewToken(t, softHSMConf))
	removed, err := ImportKeys(dir, "", tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, " ") != "root.key issuing.key issuing-2.key server-ca.key" {
		t.Fatalf("removed %v", removed)
	}
	a, err := Open(Options{Dir: dir, Token: tok})
	if err != nil || len(a.Issuers()) != 2 {
		t.Fatalf("starting from the token: %v", err)
	}
	checkIssues(t, a)
}
