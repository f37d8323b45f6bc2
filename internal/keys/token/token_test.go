//go:build cgo

package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"

	"github.com/fleetca/fleetca/internal/hsmtest"
	"github.com/fleetca/fleetca/internal/keys"
)

// conf is the SoftHSM2 configuration of this process's tokens.
var conf string

func TestMain(m *testing.M) {
	var cleanup func()
	conf, cleanup = hsmtest.ProcessConfig()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func openToken(t *testing.T) (*Token, *hsmtest.Token) {
	t.Helper()
	ht := hsmtest.NewToken(t, conf)
	u, err := keys.ParseTokenURI(ht.URI(""))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Open(u, ht.PIN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok, ht
}

// selfSign signs a certificate with s and checks it: a real use of the key.
func selfSign(t *testing.T, s crypto.Signer) error {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "token test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("the token's signature does not verify: %v", err)
	}
	return nil
}

func TestGenerateFindAndSign(t *testing.T) {
	for _, alg := range []keys.Algorithm{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			tok, ht := openToken(t)
			k, err := tok.Generate("root", alg)
			if err != nil {
				t.Fatal(err)
			}
			if err := selfSign(t, k); err != nil {
				t.Fatal(err)
			}
			// A key there already is used, not made again.
			again, err := tok.Generate("root", alg)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Fatal("Generate made a second key for a role that has one")
			}
			// Another process (a later start, another replica) finds it by
			// its public key.
			u, _ := keys.ParseTokenURI(ht.URI(ht.PINFile(t)))
			pin, err := u.PIN("")
			if err != nil {
				t.Fatal(err)
			}
			other, err := Open(u, pin)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			found, err := other.Find(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := selfSign(t, found); err != nil {
				t.Fatal(err)
			}
			otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if _, err := other.Find(otherKey.Public()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Find of a key the token does not hold: %v", err)
			}
		})
	}
}

// TestKeysStayInTheToken checks the private keys are marked sensitive and
// not extractable, whether generated or imported.
func TestKeysStayInTheToken(t *testing.T) {
	tok, _ := openToken(t)
	if _, err := tok.Generate("issuing", keys.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	imported, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := tok.Import("server-ca", imported); err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	if err := tok.Import("root", rsaKey); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"issuing", "server-ca", "root"} {
		pairs, err := tok.ctx.FindKeyPairs(nil, []byte(tok.uri.Label(role)))
		if err != nil || len(pairs) != 1 {
			t.Fatalf("%s: %d keys, %v", role, len(pairs), err)
		}
		attrs, err := tok.ctx.GetAttributes(pairs[0], []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
		if err != nil {
			t.Fatal(err)
		}
		if v := attrs[crypto11.CkaSensitive].Value; len(v) != 1 || v[0] != 1 {
			t.Errorf("%s: CKA_SENSITIVE is %v", role, v)
		}
		if v := attrs[crypto11.CkaExtractable].Value; len(v) != 1 || v[0] != 0 {
			t.Errorf("%s: CKA_EXTRACTABLE is %v", role, v)
		}
	}
	for _, k := range []crypto.Signer{imported, rsaKey} {
		s, err := tok.Find(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := selfSign(t, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tok.Import("root", rsaKey); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a second import under one label: %v", err)
	}
}

func TestWrongPIN(t *testing.T) {
	ht := hsmtest.NewToken(t, conf)
	u, _ := keys.ParseTokenURI(ht.URI(""))
	_, err := Open(u, "not-"+ht.PIN)
	if err == nil || !strings.Contains(err.Error(), "refused the PIN") {
		t.Fatalf("Open with a wrong PIN: %v", err)
	}
	u.TokenLabel = "no-such-token"
	if _, err := Open(u, ht.PIN); err == nil {
		t.Fatal("Open of a token that is not there succeeded")
	}
}

// TestTokenOutOfReach takes the token's storage away while a key is in
// use: signatures fail with ErrUnavailable, and work again once it is back.
func TestTokenOutOfReach(t *testing.T) {
	tok, ht := openToken(t)
	k, err := tok.Generate("issuing", keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("fleetca"))
	if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ht.Dir, ht.Dir+".away"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := k.Sign(rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, keys.ErrUnavailable) {
			t.Fatalf("signature %d with the token away: %v", i, err)
		}
	}
	if err := os.Rename(ht.Dir+".away", ht.Dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err == nil {
			break
		}
		if !errors.Is(err, keys.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("the token is back but signing fails: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := selfSign(t, k); err != nil {
		t.Fatal(fmt.Errorf("after recovery: %w", err))
	}
}

// TestGenerateRefusesAnotherType: a key labelled for a role but of another
// algorithm (another deployment's, an operator's) is not taken.
func TestGenerateRefusesAnotherType(t *testing.T) {
	tok, _ := openToken(t)
	if _, err := tok.Generate("root", keys.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Generate("root", keys.RSA2048); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Generate of an RSA root where a P-256 one is: %v", err)
	}
}
