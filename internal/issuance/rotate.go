package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
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

// rotations returns how many issuing CAs rotations left in dir
// (issuing-2.pem, issuing-3.pem, ...); a gap in the numbers is an error,
// since a later generation must not be taken for an earlier one.
func rotations(dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, issuingKeyName+"-*.pem"))
	if err != nil {
		return 0, err
	}
	seen := map[int]bool{}
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), issuingKeyName+"-"), ".pem"))
		if err != nil || n < 2 {
			return 0, fmt.Errorf("issuance: %s is not an issuing CA of a rotation", f)
		}
		seen[n] = true
	}
	for n := 2; n < len(seen)+2; n++ {
		if !seen[n] {
			return 0, fmt.Errorf("issuance: %s is missing, but later issuing CAs are in %s: restore it", issuingName(n)+".pem", dir)
		}
	}
	return len(seen), nil
}

// caKeyNames are the names of every key of the CA in dir: the root, the
// issuing CA of each generation, the server CA.
func caKeyNames(dir string) ([]string, error) {
	n, err := rotations(dir)
	if err != nil {
		return nil, err
	}
	names := []string{rootKeyName, issuingKeyName}
	for g := 2; g < n+2; g++ {
		names = append(names, issuingName(g))
	}
	return append(names, serverCAKeyName), nil
}

// loadRotated adopts the issuing CAs rotations left in opts.Dir, oldest
// first, so that the newest signs.
func loadRotated(opts Options, a *Authority) error {
	n, err := rotations(opts.Dir)
	if err != nil {
		return err
	}
	for g := 2; g < n+2; g++ {
		cert, _, err := readCert(filepath.Join(opts.Dir, issuingName(g)+".pem"))
		if err != nil {
			return err
		}
		key, err := loadKey(opts, issuingName(g), cert)
		if err != nil {
			return err
		}
		if err := a.Adopt(cert, key); err != nil {
			return err
		}
	}
	return nil
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
// using the directory. It returns the new issuing CA and the root that
// signed it.
func Rotate(opts Options) (issuing, root *x509.Certificate, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// A rotation makes the new issuing CA and nothing else: not a CA, not
	// the server CA of an old one (a start does that, and records it).
	if _, err := os.Stat(filepath.Join(opts.Dir, serverCACertFile)); err != nil {
		return nil, nil, fmt.Errorf("issuance: %w: start the server on it once before rotating", err)
	}
	a, err := Open(Options{Dir: opts.Dir, Passphrase: opts.Passphrase, Token: opts.Token, MustExist: true, Now: opts.Now})
	if err != nil {
		return nil, nil, err
	}
	rootKey, err := loadKey(opts, rootKeyName, a.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("issuance: rotating needs the root key, which is not in %s: put root.key back for the rotation", opts.Dir)
	}
	if err != nil {
		return nil, nil, err
	}
	alg, err := algorithmOf(a.Issuing().PublicKey)
	if err != nil {
		return nil, nil, err
	}
	n := len(a.Issuers()) + 1
	role := issuingName(n)
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	der, key, err := newIssuingCA(a.root, rootKey, role, alg, makeKey, opts.Now)
	if err != nil {
		return nil, nil, err
	}
	if opts.Token == nil {
		// A key without its certificate is what a crash between the two
		// writes leaves; it never signed anything.
		os.Remove(filepath.Join(opts.Dir, role+".key"))
		if err := (keys.FileStore{Dir: opts.Dir, Passphrase: opts.Passphrase}).Save(role, key); err != nil {
			return nil, nil, err
		}
	}
	if err := keys.WriteFileExclusive(filepath.Join(opts.Dir, role+".pem"), pemCert(der), 0o644); err != nil {
		return nil, nil, err
	}
	issuing, err = x509.ParseCertificate(der)
	return issuing, a.root, err
}

// RotateShared makes a new issuing CA for the CA keeper holds, with a key
// of the current issuing CA's algorithm, sealed with opts.Passphrase or
// kept in opts.Token as the CA's keys are, and stores it as the next
// generation. Running replicas adopt it at their next AdoptStored. It
// returns the new issuing CA and the root that signed it.
func RotateShared(ctx context.Context, keeper store.CAKeeper, opts Options) (issuing, root *x509.Certificate, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// A rotation makes the new issuing CA and nothing else: a database
	// without a whole CA is a wrong URL or one no replica has started on.
	m, err := keeper.LoadCA(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && !m.Complete():
		return nil, nil, fmt.Errorf("%w in the database: start a replica on it once before rotating", ErrNoCA)
	case err != nil:
		return nil, nil, err
	}
	a, err := OpenShared(ctx, keeper, opts)
	if err != nil {
		return nil, nil, err
	}
	rootKey, err := sharedKey(m.RootKeySealed, a.root, opts, "root")
	if err != nil {
		return nil, nil, err
	}
	alg, err := algorithmOf(a.Issuing().PublicKey)
	if err != nil {
		return nil, nil, err
	}
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	// The generation is the store's to give; the token's label only has
	// to be new, even for two rotations at once.
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, nil, err
	}
	role := issuingKeyName + "-" + hex.EncodeToString(suffix)
	der, key, err := newIssuingCA(a.root, rootKey, role, alg, makeKey, opts.Now)
	if err != nil {
		return nil, nil, err
	}
	stored := store.IssuingCA{CertPEM: pemCert(der)}
	if opts.Token == nil {
		if stored.KeySealed, err = sealKey(key, opts.Passphrase); err != nil {
			return nil, nil, err
		}
	}
	if _, err := keeper.AddIssuingCA(ctx, stored); err != nil {
		return nil, nil, err
	}
	issuing, err = x509.ParseCertificate(der)
	return issuing, a.root, err
}

// AdoptStored adopts the issuing CAs stored in keeper that a does not have
// yet, oldest first, and returns those it adopted: how a replica follows
// a rotation made elsewhere without a restart. prepare, when set, is
// given each before it is adopted (to start serving its revocation before
// it signs anything); an error leaves it, and those after it, for the next
// call.
func (a *Authority) AdoptStored(ctx context.Context, keeper store.CAKeeper, opts Options, prepare func(*IssuerKey) error) ([]*IssuerKey, error) {
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
		is := &IssuerKey{cert: cert, signer: key, id: iot.CertificateID(cert.Raw), a: a}
		if prepare != nil {
			if err := prepare(is); err != nil {
				return adopted, err
			}
		}
		if err := a.Adopt(cert, key); err != nil {
			return adopted, err
		}
		adopted = append(adopted, is)
	}
	return adopted, nil
}
