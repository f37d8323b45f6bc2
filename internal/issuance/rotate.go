package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store"
)

// A CA's issuing CAs are numbered by generation: the first is issuing.pem
// (and issuing.key, or the token's "issuing" key), each rotation's the
// next: issuing-2.pem, issuing-3.pem, ... The newest signs.

// issuingName is the file (without its extension) and token role of the
// issuing CA of generation n.
func issuingName(n int) string {
	if n == 1 {
		return issuingKeyName
	}
	return issuingKeyName + "-" + strconv.Itoa(n)
}

// loadRotated adopts the issuing CAs rotations left in opts.Dir, oldest
// first, so that the newest signs.
func loadRotated(opts Options, a *Authority) error {
	for n := 2; ; n++ {
		cert, _, err := readCert(filepath.Join(opts.Dir, issuingName(n)+".pem"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		key, err := loadKey(opts, issuingName(n), cert)
		if err != nil {
			return err
		}
		if err := a.Adopt(cert, key); err != nil {
			return err
		}
	}
}

// algorithmOf names pub's algorithm as keys does.
func algorithmOf(pub crypto.PublicKey) (keys.Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return keys.ECDSAP256, nil
		case 384:
			return keys.ECDSAP384, nil
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return keys.RSA2048, nil
		case 3072:
			return keys.RSA3072, nil
		case 4096:
			return keys.RSA4096, nil
		}
	}
	return "", fmt.Errorf("issuance: no algorithm for a %T key", pub)
}

// newIssuingCA makes an issuing CA under root, signed by rootKey, with a
// key of alg made by makeKey for role.
func newIssuingCA(root *x509.Certificate, rootKey crypto.Signer, role string, alg keys.Algorithm, makeKey keyMaker, now func() time.Time) ([]byte, crypto.Signer, error) {
	key, err := makeKey(role, alg)
	if err != nil {
		return nil, nil, err
	}
	tag := root.Subject.CommonName[strings.LastIndexByte(root.Subject.CommonName, ' ')+1:]
	// The generation in the name tells the issuing CAs of one root apart
	// in chains and logs.
	name := caName("Issuing", tag)
	if role != issuingKeyName {
		name.CommonName += " " + strings.TrimPrefix(role, issuingKeyName+"-")
	}
	der, err := sign(issuingTemplate(name, now().UTC().Truncate(time.Second).Add(-time.Hour)), root, key.Public(), rootKey)
	return der, key, err
}

// Rotate makes a new issuing CA under the root of the CA in opts.Dir, with
// a key of the current issuing CA's algorithm kept where the CA keeps its
// keys (a file, or opts.Token), and stores it as the next generation: from
// the next start on it signs, and the ones before it keep signing their
// CRLs and OCSP answers. The root key must be there. No server may be
// using the directory.
func Rotate(opts Options) (*x509.Certificate, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a, err := Open(Options{Dir: opts.Dir, Passphrase: opts.Passphrase, Token: opts.Token, MustExist: true, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	rootKey, err := loadKey(opts, rootKeyName, a.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("issuance: rotating needs the root key, which is not in %s: put root.key back for the rotation", opts.Dir)
	}
	if err != nil {
		return nil, err
	}
	alg, err := algorithmOf(a.Issuing().PublicKey)
	if err != nil {
		return nil, err
	}
	n := len(a.Issuers()) + 1
	role := issuingName(n)
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	der, key, err := newIssuingCA(a.root, rootKey, role, alg, makeKey, opts.Now)
	if err != nil {
		return nil, err
	}
	if opts.Token == nil {
		// A key without its certificate is what a crash between the two
		// writes leaves; it never signed anything.
		os.Remove(filepath.Join(opts.Dir, role+".key"))
		if err := (keys.FileStore{Dir: opts.Dir, Passphrase: opts.Passphrase}).Save(role, key); err != nil {
			return nil, err
		}
	}
	if err := keys.WriteFileExclusive(filepath.Join(opts.Dir, role+".pem"), pemCert(der), 0o644); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// RotateShared makes a new issuing CA for the CA keeper holds, with a key
// of the current issuing CA's algorithm, sealed with opts.Passphrase or
// kept in opts.Token as the CA's keys are, and stores it as the next
// generation. Running replicas adopt it at their next AdoptStored.
func RotateShared(ctx context.Context, keeper store.CAKeeper, opts Options) (*x509.Certificate, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a, err := OpenShared(ctx, keeper, opts)
	if err != nil {
		return nil, err
	}
	m, err := keeper.LoadCA(ctx)
	if err != nil {
		return nil, err
	}
	rootKey, err := sharedKey(m.RootKeySealed, a.root, opts, "root")
	if err != nil {
		return nil, err
	}
	alg, err := algorithmOf(a.Issuing().PublicKey)
	if err != nil {
		return nil, err
	}
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	// The generation is the store's to give; the token's label only has
	// to be new.
	role := issuingName(len(a.Issuers())+1) + "-" + strconv.FormatInt(opts.Now().Unix(), 10)
	der, key, err := newIssuingCA(a.root, rootKey, role, alg, makeKey, opts.Now)
	if err != nil {
		return nil, err
	}
	stored := store.IssuingCA{CertPEM: pemCert(der)}
	if opts.Token == nil {
		if stored.KeySealed, err = sealKey(key, opts.Passphrase); err != nil {
			return nil, err
		}
	}
	if _, err := keeper.AddIssuingCA(ctx, stored); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// AdoptStored adopts the issuing CAs stored in keeper that a does not have
// yet, oldest first, and returns those it adopted: how a replica follows
// a rotation made elsewhere without a restart.
func (a *Authority) AdoptStored(ctx context.Context, keeper store.CAKeeper, opts Options) ([]*IssuerKey, error) {
	stored, err := keeper.IssuingCAs(ctx)
	if err != nil {
		return nil, err
	}
	var adopted []*IssuerKey
	for _, ca := range stored {
		cert, err := parseCertPEM(ca.CertPEM)
		if err != nil {
			return adopted, err
		}
		if _, ok := a.Issuer(iot.CertificateID(cert.Raw)); ok {
			continue
		}
		key, err := sharedKey(ca.KeySealed, cert, opts, "rotated issuing")
		if err != nil {
			return adopted, err
		}
		if err := a.Adopt(cert, key); err != nil {
			return adopted, err
		}
		is, _ := a.Issuer(iot.CertificateID(cert.Raw))
		adopted = append(adopted, is)
	}
	return adopted, nil
}
