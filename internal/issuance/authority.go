// Package issuance is fleetca's signing engine: it owns the certificate
// authority (a root and an issuing CA), decides the profile of every
// certificate and signs it. It is the only package that holds a CA's
// crypto.Signer.
package issuance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store"
)

// File names inside the CA directory.
const (
	rootCertFile     = "root.pem"
	issuingCertFile  = "issuing.pem"
	serverCACertFile = "server-ca.pem"
	rootKeyName      = "root"
	issuingKeyName   = "issuing"
	serverCAKeyName  = "server-ca"
)

// Validity of the CA certificates. Both outlive the 2049-12-31 notAfter of the
// certificates they issue, so no issued chain expires before its leaf.
var (
	rootNotAfter    = time.Date(2055, 12, 31, 23, 59, 59, 0, time.UTC)
	issuingNotAfter = time.Date(2052, 12, 31, 23, 59, 59, 0, time.UTC)
)

// SealKeys seals, in place, the CA keys in dir that are stored in the
// clear, and returns the names of those it sealed. The root key may be
// absent (kept offline); the others must be there. Keys sealed already are
// checked to open with passphrase.
func SealKeys(dir, passphrase string) ([]string, error) {
	ks := keys.FileStore{Dir: dir, Passphrase: passphrase}
	names, err := caKeyNames(dir)
	if err != nil {
		return nil, err
	}
	// Every key sealed already must open with this passphrase before any
	// is sealed: a mistyped one would otherwise seal some keys with it.
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name+".key"))
		if err == nil && keys.IsSealed(data) {
			if _, err := ks.Load(name); err != nil {
				return nil, fmt.Errorf("issuance: %s is sealed with another passphrase: %w", name, err)
			}
		}
	}
	var sealed []string
	for _, name := range names {
		done, err := ks.Seal(name)
		if errors.Is(err, fs.ErrNotExist) && name == rootKeyName {
			continue
		}
		if err != nil {
			return sealed, fmt.Errorf("issuance: sealing %s: %w", name, err)
		}
		if done {
			sealed = append(sealed, name+".key")
		}
	}
	return sealed, nil
}

// ErrNoCA is Open's answer, with MustExist, when there is no CA to load.
var ErrNoCA = errors.New("issuance: no CA")

// Options configure Open.
type Options struct {
	// Dir holds the CA certificates and keys.
	Dir string
	// Algorithm is the key type of a new CA. An existing CA keeps its keys.
	Algorithm keys.Algorithm
	// Passphrase, when set, seals the CA keys at rest (and must open them).
	Passphrase string
	// Token, when set, keeps the CA's keys: they are generated in it and
	// found by the public keys of the CA certificates in Dir, which then
	// holds no key. Passphrase seals nothing then.
	Token Token
	// MustExist refuses to create a CA when Dir does not exist (ErrNoCA):
	// the caller has data that belongs to a CA already.
	MustExist bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Token keeps CA keys inside a PKCS#11 token (keys/token): they are made
// there and never leave it.
type Token interface {
	// Generate returns the key labelled for role (root, issuing,
	// server-ca), generating one of alg when the token holds none.
	Generate(role string, alg keys.Algorithm) (crypto.Signer, error)
	// Find returns the key whose public key is pub.
	Find(pub crypto.PublicKey) (crypto.Signer, error)
	// Delete removes the key whose public key is pub.
	Delete(pub crypto.PublicKey) error
}

// keyMaker makes the key of a new CA's role.
type keyMaker func(role string, alg keys.Algorithm) (crypto.Signer, error)

// inMemory makes keys in memory, for files or the database.
func inMemory(_ string, alg keys.Algorithm) (crypto.Signer, error) { return alg.Generate() }

// Authority signs device certificates with fleetca's issuing CA and the MQTT
// endpoint's certificate with the server CA. Both CAs are signed by the root.
// The issuing CA of a CA created by this version is constrained to client
// authentication, and every device certificate says clientAuth, so nothing a
// device can obtain can pose as the broker to a client that trusts the root.
type Authority struct {
	root *x509.Certificate
	// issuers are the issuing CAs, the newest (which signs) first; the
	// older ones keep signing their CRLs and OCSP answers. Shared by the
	// Authority's copies, so a rotation reaches them all.
	issuers  *issuerChain
	serverCA *x509.Certificate
	// serverSigner signs the MQTT endpoint's certificates only.
	serverSigner crypto.Signer
	rootPEM      []byte
	now          func() time.Time
	// publicURL is where certificates say their CRL and OCSP responder are
	// (WithPublicURL); empty for none.
	publicURL string
	// auditor records every signature; nil records none.
	auditor Auditor
	// linter checks every certificate before the CA key signs it.
	linter *linter
	// created are the CA certificates this start made (the root key
	// signed them before any auditor was there): RecordCreation records
	// them.
	created []*x509.Certificate
}

// Auditor records signatures (audit.Log is one). Write returns only once
// the record is kept; an error fails the signature's request.
type Auditor interface {
	Write(ctx context.Context, r audit.Record) error
}

// WithLinting returns an Authority that lints certificates with lints
// before signing them, as mode says, counting refusals with observer
// (which may be nil). An Authority made by Open lints nothing until then.
func (a *Authority) WithLinting(lints Linter, mode LintMode, observer LintObserver) *Authority {
	c := *a
	c.linter = newLinter(lints, mode, observer)
	return &c
}

// WithAuditor returns an Authority that records every signature it makes,
// or fails to make, with au before returning it.
func (a *Authority) WithAuditor(au Auditor) *Authority {
	c := *a
	c.auditor = au
	return &c
}

// Open loads the CA in opts.Dir, creating a new root and issuing CA there when
// the directory does not exist yet. The CA is built in a temporary directory
// and renamed into place, so a crash leaves either no CA or a whole one.
func Open(opts Options) (*Authority, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	created := false
	if _, err := os.Stat(opts.Dir); errors.Is(err, fs.ErrNotExist) {
		if opts.MustExist {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNoCA, opts.Dir)
		}
		if err := createDir(opts); err != nil {
			return nil, fmt.Errorf("issuance: creating the CA: %w", err)
		}
		created = true
	} else if err != nil {
		return nil, err
	}
	if opts.Token != nil {
		// Keys in both places would leave the files' copies behind,
		// readable by whoever reads the data directory.
		files, _ := filepath.Glob(filepath.Join(opts.Dir, "*.key"))
		if len(files) > 0 {
			return nil, fmt.Errorf("issuance: the CA keys are to be in the PKCS#11 token, but %s holds key files (%s): "+
				"move them into the token with `fleetca ca import-key`, or start without the token's URI", opts.Dir, strings.Join(files, ", "))
		}
	}
	root, rootPEM, err := readCert(filepath.Join(opts.Dir, rootCertFile))
	if err != nil {
		return nil, err
	}
	issuing, _, err := readCert(filepath.Join(opts.Dir, issuingCertFile))
	if err != nil {
		return nil, err
	}
	signer, err := loadKey(opts, issuingKeyName, issuing)
	if err != nil {
		return nil, err
	}
	serverCA, serverSigner, serverCreated, err := loadOrCreateServerCA(opts, root)
	if err != nil {
		return nil, err
	}
	a, err := newAuthority(root, rootPEM, issuing, signer, serverCA, serverSigner, opts.Now)
	if err != nil {
		return nil, err
	}
	if err := loadRotated(opts, a); err != nil {
		return nil, err
	}
	if created {
		a.created = append(a.created, root, issuing)
	}
	if created || serverCreated {
		a.created = append(a.created, serverCA)
	}
	return a, nil
}

// loadKey loads the key of a CA's certificate cert: the file called name,
// or the token's key for the certificate's public key.
func loadKey(opts Options, name string, cert *x509.Certificate) (crypto.Signer, error) {
	if opts.Token != nil {
		key, err := opts.Token.Find(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("issuance: the %s key of %q in the PKCS#11 token: %w", name, cert.Subject.CommonName, err)
		}
		return key, nil
	}
	key, err := keys.FileStore{Dir: opts.Dir, Passphrase: opts.Passphrase}.Load(name)
	if err != nil {
		return nil, fmt.Errorf("issuance: loading the %s key: %w", name, err)
	}
	return key, nil
}

// loadOrCreateServerCA loads the server CA, or, for a CA directory made
// before there was one, creates it with the root key.
func loadOrCreateServerCA(opts Options, root *x509.Certificate) (_ *x509.Certificate, _ crypto.Signer, created bool, _ error) {
	certPath := filepath.Join(opts.Dir, serverCACertFile)
	cert, _, err := readCert(certPath)
	if err == nil {
		key, err := loadKey(opts, serverCAKeyName, cert)
		return cert, key, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, err
	}
	rootKey, err := loadKey(opts, rootKeyName, root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, fmt.Errorf("issuance: %s is missing and the root key is not in %s to create it: put root.key back for one start", certPath, opts.Dir)
	}
	if err != nil {
		return nil, nil, false, err
	}
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	der, key, err := newServerCA(root, rootKey, makeKey, opts.Now)
	if err != nil {
		return nil, nil, false, err
	}
	if opts.Token == nil {
		// A key without its certificate is what a crash between the two
		// writes leaves; it never signed anything.
		os.Remove(filepath.Join(opts.Dir, serverCAKeyName+".key"))
		ks := keys.FileStore{Dir: opts.Dir, Passphrase: opts.Passphrase}
		if err := ks.Save(serverCAKeyName, key); err != nil {
			return nil, nil, false, err
		}
	}
	if err := keys.WriteFileExclusive(certPath, pemCert(der), 0o644); err != nil {
		return nil, nil, false, err
	}
	cert, err = x509.ParseCertificate(der)
	return cert, key, err == nil, err
}

// OpenShared loads the CA kept by keeper (the database several replicas
// share), creating it there first when there is none: every replica signs
// with the one CA. Its keys are sealed with opts.Passphrase before they
// leave the process, or, with opts.Token, live in the token every replica
// reaches, and the database holds only the certificates that name them.
// opts.Dir and opts.MustExist are not used.
func OpenShared(ctx context.Context, keeper store.CAKeeper, opts Options) (*Authority, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.Passphrase == "" && opts.Token == nil {
		return nil, errors.New("issuance: a shared CA needs a passphrase to seal its keys, or a PKCS#11 token to keep them")
	}
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	// Keys are made and sealed here, outside the store's transaction (scrypt
	// takes its time, a token too); replicas starting together may each
	// make a CA, and the store keeps the first.
	m, err := keeper.LoadCA(ctx)
	var made *store.CAMaterial // what this replica made, if anything
	madeAll := false           // a whole CA, not a server CA for an old one
	switch {
	case errors.Is(err, store.ErrNotFound):
		var g *generated
		if g, err = generate(opts.Algorithm, makeKey, now); err != nil {
			return nil, err
		}
		made, madeAll = &store.CAMaterial{RootCertPEM: pemCert(g.rootDER), IssuingCertPEM: pemCert(g.issuingDER), ServerCACertPEM: pemCert(g.serverCADER)}, true
		if opts.Token == nil {
			if made.RootKeySealed, err = sealKey(g.rootKey, opts.Passphrase); err != nil {
				return nil, err
			}
			if made.IssuingKeySealed, err = sealKey(g.issuingKey, opts.Passphrase); err != nil {
				return nil, err
			}
			if made.ServerCAKeySealed, err = sealKey(g.serverCAKey, opts.Passphrase); err != nil {
				return nil, err
			}
		}
		if m, err = keeper.StoreCA(ctx, made); err == nil && opts.Token != nil {
			dropLosingKeys(opts.Token, m, g.rootKey, g.issuingKey, g.serverCAKey)
		}
	case err == nil && !m.Complete():
		// Made before the server CA existed: add it with the root key.
		if len(m.RootKeySealed) > 0 && opts.Token != nil {
			return nil, errors.New("issuance: the shared CA's keys are sealed in the database, not in the PKCS#11 token: start without the token's URI")
		}
		if made, err = completeSharedCA(m, opts, makeKey, now); err != nil {
			return nil, err
		}
		m, err = keeper.StoreCA(ctx, made)
	}
	if err != nil {
		return nil, fmt.Errorf("issuance: the shared CA: %w", err)
	}
	switch {
	case m.KeysSealed() && opts.Token != nil:
		return nil, errors.New("issuance: the shared CA's keys are sealed in the database, not in the PKCS#11 token: start without the token's URI")
	case !m.KeysSealed() && opts.Token == nil:
		return nil, errors.New("issuance: the shared CA's keys are in a PKCS#11 token: start with its URI (--ca-key-uri)")
	}
	root, err := parseCertPEM(m.RootCertPEM)
	if err != nil {
		return nil, err
	}
	issuing, err := parseCertPEM(m.IssuingCertPEM)
	if err != nil {
		return nil, err
	}
	serverCA, err := parseCertPEM(m.ServerCACertPEM)
	if err != nil {
		return nil, err
	}
	signer, err := sharedKey(m.IssuingKeySealed, issuing, opts, "issuing")
	if err != nil {
		return nil, err
	}
	serverSigner, err := sharedKey(m.ServerCAKeySealed, serverCA, opts, "server CA")
	if err != nil {
		return nil, err
	}
	a, err := newAuthority(root, m.RootCertPEM, issuing, signer, serverCA, serverSigner, now)
	if err != nil {
		return nil, err
	}
	if _, err := a.AdoptStored(ctx, keeper, opts, nil); err != nil {
		return nil, fmt.Errorf("issuance: the shared CA's rotated issuing CAs: %w", err)
	}
	// What this replica made and the store kept is this replica's to
	// record; another replica's is that one's.
	if made != nil && bytes.Equal(made.ServerCACertPEM, m.ServerCACertPEM) {
		if madeAll {
			a.created = append(a.created, root, issuing)
		}
		a.created = append(a.created, serverCA)
	}
	return a, nil
}

// dropLosingKeys removes from the token the keys a replica made for a CA
// that another replica stored first; a key of the stored CA stays (the
// token gave both replicas the key labelled for a role when there was
// one).
func dropLosingKeys(tok Token, stored *store.CAMaterial, made ...crypto.Signer) {
	var kept []crypto.PublicKey
	for _, p := range [][]byte{stored.RootCertPEM, stored.IssuingCertPEM, stored.ServerCACertPEM} {
		if c, err := parseCertPEM(p); err == nil {
			kept = append(kept, c.PublicKey)
		}
	}
	for _, k := range made {
		used := false
		for _, pub := range kept {
			used = used || publicKeysEqual(k.Public(), pub)
		}
		if !used {
			tok.Delete(k.Public())
		}
	}
}

func sealKey(key crypto.Signer, passphrase string) ([]byte, error) {
	p, err := keys.EncodePEM(key)
	if err != nil {
		return nil, err
	}
	return keys.Seal(p, passphrase)
}

// sharedKey opens one of the shared CA's keys: sealed in the database, or
// in the token.
func sharedKey(sealed []byte, cert *x509.Certificate, opts Options, name string) (crypto.Signer, error) {
	if opts.Token != nil {
		key, err := opts.Token.Find(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("issuance: the shared CA's %s key in the PKCS#11 token: %w", name, err)
		}
		return key, nil
	}
	keyPEM, err := keys.Unseal(sealed, opts.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("issuance: opening the shared CA's %s key: %w", name, err)
	}
	return keys.ParsePEM(keyPEM)
}

// completeSharedCA adds a server CA to a shared CA stored without one.
func completeSharedCA(stored *store.CAMaterial, opts Options, makeKey keyMaker, now func() time.Time) (*store.CAMaterial, error) {
	root, err := parseCertPEM(stored.RootCertPEM)
	if err != nil {
		return nil, err
	}
	rootKey, err := sharedKey(stored.RootKeySealed, root, opts, "root")
	if err != nil {
		return nil, err
	}
	der, key, err := newServerCA(root, rootKey, makeKey, now)
	if err != nil {
		return nil, err
	}
	m := *stored
	m.ServerCACertPEM = pemCert(der)
	if opts.Token == nil {
		if m.ServerCAKeySealed, err = sealKey(key, opts.Passphrase); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

func newAuthority(root *x509.Certificate, rootPEM []byte, issuing *x509.Certificate, signer crypto.Signer,
	serverCA *x509.Certificate, serverSigner crypto.Signer, now func() time.Time) (*Authority, error) {
	for _, ca := range []struct {
		name   string
		cert   *x509.Certificate
		signer crypto.Signer
	}{{"issuing", issuing, signer}, {"server", serverCA, serverSigner}} {
		if err := ca.cert.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("issuance: the %s CA is not signed by the root: %w", ca.name, err)
		}
		if !publicKeysEqual(ca.signer.Public(), ca.cert.PublicKey) {
			return nil, fmt.Errorf("issuance: the %s key does not match the %s certificate", ca.name, ca.name)
		}
	}
	chain := &issuerChain{}
	chain.list.Store(&[]*IssuerKey{{cert: issuing, signer: signer, id: iot.CertificateID(issuing.Raw)}})
	return &Authority{root: root, issuers: chain, serverCA: serverCA, serverSigner: serverSigner,
		rootPEM: rootPEM, now: now}, nil
}

// generated is a new CA, not yet stored anywhere.
type generated struct {
	rootDER, issuingDER, serverCADER []byte
	rootKey, issuingKey, serverCAKey crypto.Signer
}

// generate makes a root CA and an issuing CA signed by it.
func generate(alg keys.Algorithm, makeKey keyMaker, now func() time.Time) (*generated, error) {
	if !alg.Valid() {
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	rootKey, err := makeKey(rootKeyName, alg)
	if err != nil {
		return nil, err
	}
	issuingKey, err := makeKey(issuingKeyName, alg)
	if err != nil {
		return nil, err
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	tag := strings.ToUpper(hex.EncodeToString(suffix))
	start := now().UTC().Truncate(time.Second).Add(-time.Hour)
	rootTmpl := &x509.Certificate{
		Subject:               caName("Root", tag),
		NotBefore:             start,
		NotAfter:              rootNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := sign(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	issuingTmpl := issuingTemplate(caName("Issuing", tag), start)
	issuingDER, err := sign(issuingTmpl, root, issuingKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	serverCADER, serverCAKey, err := newServerCA(root, rootKey, makeKey, now)
	if err != nil {
		return nil, err
	}
	return &generated{
		rootDER: rootDER, issuingDER: issuingDER, serverCADER: serverCADER,
		rootKey: rootKey, issuingKey: issuingKey, serverCAKey: serverCAKey,
	}, nil
}

// issuingTemplate is the profile of an issuing CA called name.
func issuingTemplate(name pkix.Name, start time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:   name,
		NotBefore: start,
		NotAfter:  issuingNotAfter,
		KeyUsage:  x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// Everything below the issuing CA authenticates clients only: a
		// verifier that checks the chain's key purposes (Go, OpenSSL) refuses
		// any certificate under it as a TLS server.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
}

// newServerCA makes the server CA: signed by the root, constrained to TLS
// server authentication, and the signer of the MQTT endpoint's certificate
// only, so that devices, which get their certificates from the issuing CA,
// can never obtain one from the chain the broker's certificate comes from.
//
// Its key is ECDSA P-256 whatever the CA's algorithm, like the endpoint
// certificate's own key: a device that can verify the one can verify the
// other.
func newServerCA(root *x509.Certificate, rootKey crypto.Signer, makeKey keyMaker, now func() time.Time) ([]byte, crypto.Signer, error) {
	key, err := makeKey(serverCAKeyName, keys.ECDSAP256)
	if err != nil {
		return nil, nil, err
	}
	tag := root.Subject.CommonName[strings.LastIndexByte(root.Subject.CommonName, ' ')+1:]
	tmpl := &x509.Certificate{
		Subject:               caName("Server", tag),
		NotBefore:             now().UTC().Truncate(time.Second).Add(-time.Hour),
		NotAfter:              issuingNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := sign(tmpl, root, key.Public(), rootKey)
	return der, key, err
}

// caName is the subject of one of fleetca's CAs; tag tells one fleetca's CAs
// from another's.
func caName(role, tag string) pkix.Name {
	return pkix.Name{Organization: []string{"fleetca"}, CommonName: "fleetca " + role + " CA " + tag}
}

// createDir stores a new CA in opts.Dir, whole or not at all.
func createDir(opts Options) error {
	makeKey := keyMaker(inMemory)
	if opts.Token != nil {
		makeKey = opts.Token.Generate
	}
	g, err := generate(opts.Algorithm, makeKey, opts.Now)
	if err != nil {
		return err
	}
	parent := filepath.Dir(opts.Dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	// Remove what an earlier crash may have left.
	stale, _ := filepath.Glob(filepath.Join(parent, ".ca-new-*"))
	for _, s := range stale {
		os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(parent, ".ca-new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if opts.Token == nil {
		ks := keys.FileStore{Dir: tmp, Passphrase: opts.Passphrase}
		for name, key := range map[string]crypto.Signer{rootKeyName: g.rootKey, issuingKeyName: g.issuingKey, serverCAKeyName: g.serverCAKey} {
			if err := ks.Save(name, key); err != nil {
				return err
			}
		}
	}
	for file, der := range map[string][]byte{rootCertFile: g.rootDER, issuingCertFile: g.issuingDER, serverCACertFile: g.serverCADER} {
		if err := keys.WriteFileExclusive(filepath.Join(tmp, file), pemCert(der), 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Rename(tmp, opts.Dir); err != nil {
		return err
	}
	d, err := os.Open(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadRoot reads the root certificate of the CA in dir without opening any
// key; fs.ErrNotExist if there is no CA there yet.
func ReadRoot(dir string) (*x509.Certificate, error) {
	root, _, err := readCert(filepath.Join(dir, rootCertFile))
	return root, err
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("issuance: no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func readCert(path string) (*x509.Certificate, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("issuance: %w", err)
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("issuance: %s: %w", path, err)
	}
	return cert, data, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// sign fills in the serial number and subject key identifier and signs.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	if tmpl.SerialNumber == nil {
		// Set already when a linting certificate was made from tmpl: the
		// certificate signed is the one linted.
		serial, err := newSerial(tmpl.NotBefore)
		if err != nil {
			return nil, err
		}
		tmpl.SerialNumber = serial
	}
	if tmpl.SubjectKeyId == nil {
		ski, err := subjectKeyID(pub)
		if err != nil {
			return nil, err
		}
		tmpl.SubjectKeyId = ski
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

// newSerial returns a positive 20-byte serial, the most RFC 5280 allows:
// the time in milliseconds (6 bytes), then 112 random bits, far more
// entropy than the 64 bits asked of CAs. The time first makes one issuer's
// serials grow, so the revocation index on them (issuer, serial) takes each
// new certificate at its end instead of on a random page: a cheaper insert
// and a smaller commit (BENCHMARKS.md).
func newSerial(at time.Time) (*big.Int, error) {
	var b [20]byte
	ms := uint64(max(at.UnixMilli(), 0))
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[0] &= 0x7f
	for {
		if _, err := rand.Read(b[6:]); err != nil {
			return nil, err
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// Root returns the root CA certificate.
func (a *Authority) Root() *x509.Certificate { return a.root }

// RootFingerprint is the SHA-256 of the root certificate, in hex: what
// clients pin and what the database records as the CA its data belongs to.
func (a *Authority) RootFingerprint() string {
	sum := sha256.Sum256(a.root.Raw)
	return hex.EncodeToString(sum[:])
}

// Issuing returns the issuing CA certificate.
func (a *Authority) Issuing() *x509.Certificate { return a.current().cert }

// ChainPEM returns the issuing CA certificates (the newest first) and the
// root in PEM form: what verifies every certificate fleetca has issued.
func (a *Authority) ChainPEM() []byte {
	var chain []byte
	for _, is := range a.issuers.all() {
		chain = append(chain, pemCert(is.cert.Raw)...)
	}
	return append(chain, a.rootPEM...)
}

// OwnCA reports whether c certifies the key of fleetca's root, issuing or
// server CA.
func (a *Authority) OwnCA(c *x509.Certificate) bool {
	for _, own := range append([]*x509.Certificate{a.root, a.serverCA}, a.Issuers()...) {
		if publicKeysEqual(own.PublicKey, c.PublicKey) {
			return true
		}
	}
	return false
}

// ServerCA returns the CA that signs the MQTT endpoint's certificates.
func (a *Authority) ServerCA() *x509.Certificate { return a.serverCA }

// RootPEM returns the root CA certificate in PEM form.
func (a *Authority) RootPEM() []byte { return bytes.Clone(a.rootPEM) }

// RecordCreation writes the audit records of the CA certificates this
// start made (a new CA, or a server CA added to an old one), signed by the
// root key before the Authority had an auditor.
func (a *Authority) RecordCreation(ctx context.Context) error {
	if a.auditor == nil {
		return nil
	}
	rootID := iot.CertificateID(a.root.Raw)
	for _, c := range a.created {
		profile := "issuing-ca"
		switch c {
		case a.root:
			profile = "root-ca"
		case a.serverCA:
			profile = "server-ca"
		}
		rec := audit.Record{Time: a.now().UTC(), Object: audit.Certificate, Profile: profile, Issuer: rootID,
			CertificateID: iot.CertificateID(c.Raw), Serial: c.SerialNumber.Text(16), Subject: c.Subject.String(),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, Requester: audit.RequesterOf(ctx), Outcome: audit.Signed}
		if err := a.auditor.Write(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// KeyImporter is a Token that takes keys made elsewhere.
type KeyImporter interface {
	Token
	// Import stores key in the token as the key of role.
	Import(role string, key crypto.Signer) error
}

// ImportKeys moves the CA key files in dir into tok: each key (opened with
// passphrase if sealed) is imported, found again by its certificate's
// public key and made to sign, and only when every key present has been
// are the files removed. The root key may be absent (kept offline): it is
// left where it is. A key the token holds already is not imported twice,
// so a run cut short can be run again. It returns the files it removed.
func ImportKeys(dir, passphrase string, tok KeyImporter) ([]string, error) {
	ks := keys.FileStore{Dir: dir, Passphrase: passphrase}
	type moved struct {
		name string
		cert *x509.Certificate
	}
	var done []moved
	names, err := caKeyNames(dir)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		ca := struct{ name, certFile string }{name, name + ".pem"}
		cert, _, err := readCert(filepath.Join(dir, ca.certFile))
		if err != nil {
			return nil, err
		}
		key, err := ks.Load(ca.name)
		if errors.Is(err, fs.ErrNotExist) {
			if ca.name == rootKeyName {
				continue
			}
			if _, ferr := tok.Find(cert.PublicKey); ferr == nil {
				continue // moved by an earlier run
			}
			return nil, fmt.Errorf("issuance: the %s key is neither in %s nor in the token", ca.name, dir)
		}
		if err != nil {
			return nil, err
		}
		if !publicKeysEqual(key.Public(), cert.PublicKey) {
			return nil, fmt.Errorf("issuance: %s.key does not match %s", ca.name, ca.certFile)
		}
		if _, err := tok.Find(cert.PublicKey); err != nil {
			if err := tok.Import(ca.name, key); err != nil {
				return nil, fmt.Errorf("issuance: importing the %s key: %w", ca.name, err)
			}
		}
		inToken, err := tok.Find(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("issuance: the imported %s key: %w", ca.name, err)
		}
		if err := checkSigns(inToken, cert); err != nil {
			return nil, fmt.Errorf("issuance: the imported %s key: %w", ca.name, err)
		}
		done = append(done, moved{ca.name, cert})
	}
	var removed []string
	for _, m := range done {
		file := filepath.Join(dir, m.name+".key")
		if err := os.Remove(file); err != nil {
			return removed, err
		}
		removed = append(removed, m.name+".key")
	}
	return removed, keys.SyncDir(dir)
}

// checkSigns has key sign a random digest and checks the signature with
// cert's public key: no certificate is made, so nothing is signed that
// could ever be used.
func checkSigns(key crypto.Signer, cert *x509.Certificate) error {
	var msg [32]byte
	if _, err := rand.Read(msg[:]); err != nil {
		return err
	}
	digest := sha256.Sum256(msg[:])
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("the signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	}
	return fmt.Errorf("a %T key cannot be checked", cert.PublicKey)
}
