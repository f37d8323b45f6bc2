//go:build cgo

package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/fleetca/fleetca/internal/keys"
)

// mutating serialises the making and deleting of keys within the process:
// SoftHSM2 has been seen to fail (CKR_TEMPLATE_INCONSISTENT,
// CKR_GENERAL_ERROR) when sessions of one process make and delete key
// pairs at the same moment. That happens a few times in a CA's life.
var mutating sync.RWMutex

// reopenInterval is how often a token that failed is opened again while it
// keeps failing: requests meanwhile fail at once instead of each waiting
// on a token that is not there.
const reopenInterval = time.Second

// Token is an open PKCS#11 token holding the CA's keys. Its signers outlive
// the token's sessions: when a signature fails (the token was removed, its
// sessions were lost), the token is closed, and the next signature opens
// it again, logs in and finds each key again by its public key.
type Token struct {
	uri keys.TokenURI
	pin string

	// mu is held for reading while signing and for writing while the
	// context is replaced, so no signature runs on a finalised module.
	mu  sync.RWMutex
	ctx *crypto11.Context // nil while the token is out of reach
	// known are the public keys of every signer handed out, by their DER:
	// what a reopened token must find again. found are those found in
	// ctx.
	known      map[string]crypto.PublicKey
	found      map[string]crypto11.Signer
	lastOpened time.Time
	closed     bool
	// refused is set when the token refused the PIN on a reopen: trying
	// again with the same PIN could lock it.
	refused error
}

// Open opens the token u names and logs in with pin. A wrong PIN, a
// missing module or token fail here, so a server with a bad URI does not
// start.
func Open(u keys.TokenURI, pin string) (*Token, error) {
	t := &Token{uri: u, pin: pin, known: map[string]crypto.PublicKey{}, found: map[string]crypto11.Signer{}}
	ctx, err := t.configure()
	if err != nil {
		return nil, err
	}
	t.ctx, t.lastOpened = ctx, time.Now()
	return t, nil
}

func (t *Token) configure() (*crypto11.Context, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path: t.uri.ModulePath, TokenLabel: t.uri.TokenLabel, TokenSerial: t.uri.TokenSerial, SlotNumber: t.uri.SlotID,
		Pin: t.pin,
		// A request waits at most this long for one of the token's sessions.
		PoolWaitTimeout: 5 * time.Second,
	})
	if err != nil {
		var p11 pkcs11.Error
		if errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_INVALID || p11 == pkcs11.CKR_PIN_LEN_RANGE || p11 == pkcs11.CKR_PIN_LOCKED) {
			return nil, &pinError{fmt.Errorf("the PKCS#11 token %s refused the PIN (%v): check FLEETCA_CA_KEY_PIN or the URI's pin-source", describe(t.uri), p11)}
		}
		return nil, fmt.Errorf("opening the PKCS#11 token %s with %s: %w", describe(t.uri), t.uri.ModulePath, err)
	}
	return ctx, nil
}

// pinError is a PIN the token refused.
type pinError struct{ error }

func (e *pinError) Unwrap() error { return e.error }

// describe names the token in messages.
func describe(u keys.TokenURI) string {
	switch {
	case u.TokenLabel != "":
		return fmt.Sprintf("labelled %q", u.TokenLabel)
	case u.TokenSerial != "":
		return fmt.Sprintf("with serial %q", u.TokenSerial)
	default:
		return fmt.Sprintf("in slot %d", *u.SlotID)
	}
}

// Close closes the token; its signers fail from then on.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.ctx == nil {
		return nil
	}
	err := t.ctx.Close()
	t.ctx, t.found = nil, map[string]crypto11.Signer{}
	return err
}

// ErrWrongType is Generate's answer when the key labelled for a role is
// not of the algorithm asked for.
var ErrWrongType = errors.New("the PKCS#11 token's key is not of the algorithm asked for")

// Generate returns the key labelled for role (see keys.TokenURI.Label), generating
// it of algorithm alg inside the token when there is none: marked
// sensitive and not extractable, so it never leaves the token. A key there
// already (made by an operator, by `fleetca ca import-key`, or by a start
// that crashed before it stored its certificates) is used as it is.
func (t *Token) Generate(role string, alg keys.Algorithm) (crypto.Signer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return nil, fmt.Errorf("%w: the PKCS#11 token is closed", keys.ErrUnavailable)
	}
	label := []byte(t.uri.Label(role))
	var existing []crypto11.Signer
	err := retryListing(func() (err error) {
		existing, err = t.ctx.FindKeyPairs(nil, label)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("looking for the key %q in the token: %w", label, err)
	}
	if len(existing) > 0 {
		// Several are what replicas starting together on an empty
		// database leave for a moment: each makes keys, the first CA
		// stored wins and the others delete theirs. Any of them will do
		// for a CA that is about to lose the race.
		if got := keyAlgorithm(existing[0].Public()); got != alg {
			return nil, fmt.Errorf("%w: the key labelled %q is %s, not %s; give this CA's keys another prefix (object= in the URI) or remove that key",
				ErrWrongType, label, got, alg)
		}
		return t.keep(existing[0])
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	mutating.Lock()
	defer mutating.Unlock()
	var k crypto11.Signer
	switch alg {
	case keys.ECDSAP256:
		k, err = t.ctx.GenerateECDSAKeyPairWithLabel(id, label, elliptic.P256())
	case keys.ECDSAP384:
		k, err = t.ctx.GenerateECDSAKeyPairWithLabel(id, label, elliptic.P384())
	case keys.RSA2048, keys.RSA3072, keys.RSA4096:
		bits := map[keys.Algorithm]int{keys.RSA2048: 2048, keys.RSA3072: 3072, keys.RSA4096: 4096}[alg]
		k, err = t.ctx.GenerateRSAKeyPairWithLabel(id, label, bits)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating the key %q in the token: %w", label, err)
	}
	return t.keep(k)
}

// keyAlgorithm names pub's algorithm as keys does; empty for others.
func keyAlgorithm(pub crypto.PublicKey) keys.Algorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return map[int]keys.Algorithm{256: keys.ECDSAP256, 384: keys.ECDSAP384}[k.Curve.Params().BitSize]
	case *rsa.PublicKey:
		return map[int]keys.Algorithm{2048: keys.RSA2048, 3072: keys.RSA3072, 4096: keys.RSA4096}[k.N.BitLen()]
	}
	return ""
}

// keep remembers k and returns its lasting signer. t.mu is held.
func (t *Token) keep(k crypto11.Signer) (crypto.Signer, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	t.found[string(der)], t.known[string(der)] = k, k.Public()
	return &signer{t: t, pub: k.Public(), id: string(der)}, nil
}

// Find returns the signer of the token's private key whose public key is
// pub: a CA's certificate names its key.
func (t *Token) Find(pub crypto.PublicKey) (crypto.Signer, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		if err := t.reopen(); err != nil {
			return nil, err
		}
	}
	if _, ok := t.found[string(der)]; !ok {
		k, err := t.lookUp(pub)
		if err != nil {
			return nil, err
		}
		t.found[string(der)] = k
	}
	t.known[string(der)] = pub
	return &signer{t: t, pub: pub, id: string(der)}, nil
}

// retryListing runs list again when it fails because an object went
// away while it read them: another replica deleting the keys of a CA that
// lost the race to be stored. Other failures are returned at once.
func retryListing(list func() error) error {
	mutating.RLock() // the deletions of this process wait
	defer mutating.RUnlock()
	var err error
	for attempt := range 5 {
		// What SoftHSM2 answers, depending on the moment, when another
		// process deletes an object while this one reads the list.
		if err = list(); err == nil || !errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)) && !errors.Is(err, pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

// ErrNotFound is Find's answer when the token holds no key for the public
// key.
var ErrNotFound = errors.New("the PKCS#11 token holds no such key")

// lookUp finds the key pair for pub among the token's. t.mu is held.
func (t *Token) lookUp(pub crypto.PublicKey) (crypto11.Signer, error) {
	var all []crypto11.Signer
	err := retryListing(func() (err error) {
		all, err = t.ctx.FindAllKeyPairs()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: listing the token's keys: %v", keys.ErrUnavailable, err)
	}
	for _, k := range all {
		if eq, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
			return k, nil
		}
	}
	return nil, ErrNotFound
}

// Delete removes the key pair of pub from the token: a replica that lost
// the race to store a new CA removes the keys it made for it.
func (t *Token) Delete(pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return fmt.Errorf("%w: the PKCS#11 token is closed", keys.ErrUnavailable)
	}
	k, ok := t.found[string(der)]
	if !ok {
		if k, err = t.lookUp(pub); err != nil {
			return err
		}
	}
	delete(t.found, string(der))
	delete(t.known, string(der))
	mutating.Lock()
	defer mutating.Unlock()
	return k.Delete()
}

// reopen opens the token again and finds every key it has handed out,
// at most once per reopenInterval (counted from the end of the last try,
// however long the module took). t.mu is held. A token that comes back
// without one of the keys stays closed, and the next try looks again.
func (t *Token) reopen() error {
	switch {
	case t.closed:
		return fmt.Errorf("%w: the PKCS#11 token is closed", keys.ErrUnavailable)
	case t.refused != nil:
		return fmt.Errorf("%w: %v; restart with the token's PIN", keys.ErrUnavailable, t.refused)
	case time.Since(t.lastOpened) < reopenInterval:
		return fmt.Errorf("%w: the PKCS#11 token %s is out of reach; trying again shortly", keys.ErrUnavailable, describe(t.uri))
	}
	ctx, err := t.configure()
	t.lastOpened = time.Now()
	if err != nil {
		var pinErr *pinError
		if errors.As(err, &pinErr) {
			t.refused = err
		}
		return fmt.Errorf("%w: %v", keys.ErrUnavailable, err)
	}
	t.ctx = ctx
	found := make(map[string]crypto11.Signer, len(t.known))
	for id, pub := range t.known {
		k, err := t.lookUp(pub)
		if err != nil {
			t.ctx.Close()
			t.ctx = nil
			return fmt.Errorf("%w: finding the CA key again in the token: %v", keys.ErrUnavailable, err)
		}
		found[id] = k
	}
	t.found = found
	return nil
}

// lostToken reports whether a signature's error says the token, its
// session or its objects are gone, so that only opening it again can
// help. Anything else (the session pool's wait, a bad argument) leaves the
// token open.
func lostToken(err error) bool {
	var p11 pkcs11.Error
	if !errors.As(err, &p11) {
		return false
	}
	switch p11 {
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_USER_NOT_LOGGED_IN, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_GENERAL_ERROR,
		pkcs11.CKR_DEVICE_MEMORY:
		return true
	}
	return false
}

// fail closes a context whose signature failed, so that the next signature
// opens the token again. Another goroutine may have replaced it meanwhile.
func (t *Token) fail(ctx *crypto11.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx != ctx || t.ctx == nil {
		return
	}
	t.ctx.Close()
	t.ctx = nil
}

// signer signs with one of the token's keys, whichever session the token
// has open.
type signer struct {
	t   *Token
	pub crypto.PublicKey
	id  string
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs with the token's key. While the token is out of reach it
// fails at once with keys.ErrUnavailable, except for the one signature a
// second that tries to open it again.
func (s *signer) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		s.t.mu.RLock()
		ctx, k := s.t.ctx, s.t.found[s.id]
		if ctx != nil && k != nil {
			sig, err := k.Sign(r, digest, opts)
			s.t.mu.RUnlock()
			if err == nil {
				return sig, nil
			}
			if lostToken(err) {
				s.t.fail(ctx)
			}
			return nil, fmt.Errorf("%w: the PKCS#11 token failed to sign: %v", keys.ErrUnavailable, err)
		}
		s.t.mu.RUnlock()
		if attempt > 0 {
			return nil, fmt.Errorf("%w: the key is not in the PKCS#11 token", keys.ErrUnavailable)
		}
		// Someone else is opening the token again (or closing it): fail
		// now rather than queue behind a module that may take its time.
		if !s.t.mu.TryLock() {
			return nil, fmt.Errorf("%w: the PKCS#11 token %s is being opened again", keys.ErrUnavailable, describe(s.t.uri))
		}
		var err error
		switch {
		case s.t.ctx == nil:
			err = s.t.reopen()
		case s.t.found[s.id] == nil:
			var k crypto11.Signer
			if k, err = s.t.lookUp(s.pub); err == nil {
				s.t.found[s.id] = k
			} else {
				err = fmt.Errorf("%w: %v", keys.ErrUnavailable, err)
			}
		}
		s.t.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// CountKeys is how many key pairs the token holds, -1 if it cannot tell.
func (t *Token) CountKeys() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return -1
	}
	all, err := t.ctx.FindAllKeyPairs()
	if err != nil {
		return -1
	}
	return len(all)
}

// Ready reports whether the token can sign: nil while its session is
// open. A token closed by a failed signature is opened again here (at most
// once a second), so a server's readiness check brings it back even when
// no request is signing.
func (t *Token) Ready() error {
	if !t.mu.TryLock() {
		return nil // a signature or a reopen is under way; it will tell
	}
	defer t.mu.Unlock()
	if t.ctx != nil {
		return nil
	}
	if err := t.reopen(); err != nil {
		return fmt.Errorf("the CA keys' token: %w", err)
	}
	return nil
}
