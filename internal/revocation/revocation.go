// Package revocation tells verifiers other than fleetca's own MQTT endpoint
// which of fleetca's certificates they must refuse: it keeps the issuing
// CA's CRL (RFC 5280) current in the database, so that every replica serves
// the same one, and answers OCSP requests (RFC 6960) from that same list,
// so that a CRL and an OCSP answer never disagree.
//
// What is listed: every certificate fleetca signed that is not ACTIVE, until
// it expires. REVOKED is revocation with no stated reason, as the AWS API
// records none. Any other status (INACTIVE, PENDING_ACTIVATION, ...) is
// reversible, so it is certificateHold, which leaves the list when the
// certificate is made ACTIVE again. A deleted certificate can never be
// ACTIVE again: it stays, as it was if REVOKED and as cessationOfOperation
// if it was held.
package revocation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/time/rate"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// Store is what revocation reads and writes (see store.Revocations).
type Store interface {
	UnusableCertificates(ctx context.Context, issuerID string, now time.Time) ([]store.UnusableCertificate, error)
	UnusableFingerprint(ctx context.Context, issuerID string) (string, error)
	IssuedSerial(ctx context.Context, issuerID, serial string) (bool, error)
	CRL(ctx context.Context, issuerID string) (*store.CRL, error)
	SaveCRL(ctx context.Context, c *store.CRL, prev int64) error
}

// Signer signs for the issuing CA; issuance.Authority is one.
type Signer interface {
	IssuerID() string
	Issuing() *x509.Certificate
	SignCRL(ctx context.Context, number int64, thisUpdate, nextUpdate time.Time, entries []x509.RevocationListEntry) ([]byte, error)
	SignOCSP(ctx context.Context, r ocsp.Response) ([]byte, error)
}

// Observer is told what revocation does; nil observes nothing.
type Observer interface {
	// ObserveCRL is called with the number of each CRL adopted, made here
	// or by another replica, and how many certificates it lists.
	ObserveCRL(issuer string, number int64, entries int)
	// ObserveOCSP is called for every OCSP answer: "good", "revoked",
	// "unknown", or the error status ("malformed", "unauthorized",
	// "tryLater", "internalError"), and whether a pre-signed answer served it.
	ObserveOCSP(status string, cached bool)
}

// The defaults of Options.
const (
	DefaultCRLRefresh   = 24 * time.Hour
	DefaultCRLValidity  = 7 * 24 * time.Hour
	DefaultOCSPValidity = time.Hour
	DefaultPoll         = time.Second
	// DefaultOCSPCache keeps answers for a quarter of a million
	// certificates under one hash, about 150 MB at most.
	DefaultOCSPCache = 1 << 18
	// unknownRate bounds the answers signed about serials the issuer never
	// signed, which anyone can ask for by the thousand; a legitimate client
	// rarely does.
	unknownRate = 100
)

// Options configure New.
type Options struct {
	Store  Store
	Signer Signer
	Logger *slog.Logger
	// Observer, when set, is told of CRLs and OCSP answers.
	Observer Observer
	// CRLRefresh is how old a CRL may grow before it is signed again even
	// though nothing changed; CRLValidity is its nextUpdate - thisUpdate.
	CRLRefresh, CRLValidity time.Duration
	// OCSPValidity is an OCSP answer's nextUpdate - thisUpdate. A
	// pre-signed answer is signed again when half of it has passed.
	OCSPValidity time.Duration
	// Poll is how often Run looks for changes in the database.
	Poll time.Duration
	// OCSPCache bounds the number of pre-signed answers kept.
	OCSPCache int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service keeps one issuer's CRL and answers OCSP for it. Its methods are
// safe for concurrent use.
type Service struct {
	opts     Options
	issuerID string
	issuer   issuerHashes
	state    atomic.Pointer[state]

	// refreshMu serialises Refresh; lastFingerprint is what the store's
	// fingerprint was when the current CRL was known to be up to date.
	refreshMu       sync.Mutex
	lastFingerprint string
	// lastFullCheck is when the list was last read; nextBuild is the
	// earliest a change may have it read again (see Refresh).
	lastFullCheck, nextBuild time.Time

	cacheMu sync.Mutex
	cache   map[cacheKey]*answer
	// unknown bounds the signatures spent on "unknown" answers.
	unknown *rate.Limiter
}

// state is the CRL being served and what it lists, by serial.
type state struct {
	crl     *store.CRL
	pem     []byte
	revoked map[string]entry
}

type entry struct {
	at     time.Time
	reason int
}

// New returns a Service for the signer's issuing CA. Call Refresh before
// serving, then Run.
func New(opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.CRLRefresh = orDefault(opts.CRLRefresh, DefaultCRLRefresh)
	opts.CRLValidity = orDefault(opts.CRLValidity, DefaultCRLValidity)
	opts.OCSPValidity = orDefault(opts.OCSPValidity, DefaultOCSPValidity)
	opts.Poll = orDefault(opts.Poll, DefaultPoll)
	if opts.OCSPCache <= 0 {
		opts.OCSPCache = DefaultOCSPCache
	}
	if opts.CRLValidity <= opts.CRLRefresh {
		return nil, fmt.Errorf("revocation: a CRL's validity (%v) must be longer than its refresh period (%v), or verifiers see it expire", opts.CRLValidity, opts.CRLRefresh)
	}
	hashes, err := hashIssuer(opts.Signer.Issuing())
	if err != nil {
		return nil, err
	}
	return &Service{opts: opts, issuerID: opts.Signer.IssuerID(), issuer: hashes, cache: make(map[cacheKey]*answer),
		unknown: rate.NewLimiter(unknownRate, unknownRate)}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// IssuerID names the issuer whose CRL this is.
func (s *Service) IssuerID() string { return s.issuerID }

// CRL is the current CRL as served.
type CRL struct {
	Number                 int64
	ThisUpdate, NextUpdate time.Time
	DER, PEM               []byte
}

// CRL returns the CRL being served; ok is false before the first Refresh.
func (s *Service) CRL() (c CRL, ok bool) {
	st := s.state.Load()
	if st == nil {
		return CRL{}, false
	}
	return CRL{Number: st.crl.Number, ThisUpdate: st.crl.ThisUpdate, NextUpdate: st.crl.NextUpdate, DER: st.crl.DER, PEM: st.pem}, true
}

// Run refreshes every Poll until ctx ends. A failed refresh is logged and
// tried again at the next tick; the CRL served meanwhile stays valid until
// its nextUpdate.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.opts.Logger.Warn("revocation: refreshing the CRL failed", "issuer", s.issuerID, "err", err)
			}
		}
	}
}

// Refresh brings the CRL up to date: it adopts a newer CRL another replica
// stored, and signs and stores a new one when the unusable certificates
// changed or the current one is due to be signed again. The database
// decides between replicas: a CRL is stored only over the one read in the
// same pass (compare and swap), and its number exceeds both that one's and
// the one served and is at least the signing instant in milliseconds since
// the epoch. A process signs a new CRL at its first pass whatever the
// database holds. So numbers grow even when the database goes back in time
// (a failover to a standby that lags, a backup restored under every
// replica): the restored CRL is replaced by one numbered from the clock.
func (s *Service) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	first := s.state.Load() == nil
	stored, err := s.adoptStored(ctx)
	if err != nil {
		return err
	}
	// The fingerprint is read before the list, so a change made between
	// the two reads shows in the next pass's fingerprint.
	fingerprint, err := s.opts.Store.UnusableFingerprint(ctx, s.issuerID)
	if err != nil {
		return fmt.Errorf("reading the revocation fingerprint: %w", err)
	}
	now := s.opts.Now().UTC()
	cur := s.state.Load()
	// Due: this process has signed nothing yet (cur can be nil only then), the
	// CRL is old enough to sign again, or the database holds an older one
	// than is served (it went back in time).
	due := first || now.Sub(cur.crl.ThisUpdate) >= s.opts.CRLRefresh || stored < cur.crl.Number
	if !due {
		// The fingerprint can in theory miss a change (its sums could
		// coincide), so the list itself is checked every fullCheck too.
		changed := fingerprint != s.lastFingerprint || now.Sub(s.lastFullCheck) >= fullCheck
		// Reading and signing a long list takes a while: under a steady
		// stream of changes, a replica spends at most a tenth of its time
		// on it.
		if !changed || now.Before(s.nextBuild) {
			return nil
		}
	}
	unusable, err := s.opts.Store.UnusableCertificates(ctx, s.issuerID, now)
	if err != nil {
		return fmt.Errorf("listing unusable certificates: %w", err)
	}
	s.lastFullCheck = now
	// The pause is taken after a read that worked, and is at most a
	// minute, so a slow failure does not hold revocations back.
	defer func() { s.nextBuild = now.Add(min(10*s.opts.Now().Sub(now), time.Minute)) }()
	entries, digest := Entries(unusable)
	if !due && digest == cur.crl.Digest {
		s.lastFingerprint = fingerprint
		return nil
	}
	next := &store.CRL{IssuerID: s.issuerID, ThisUpdate: now.Truncate(time.Second), Digest: digest}
	served := int64(0)
	if cur != nil {
		served = cur.crl.Number
		// thisUpdate never goes back, whatever the clocks of the replicas
		// say (a replica whose clock runs behind repeats the latest).
		if next.ThisUpdate.Before(cur.crl.ThisUpdate) {
			next.ThisUpdate = cur.crl.ThisUpdate
		}
	}
	next.Number = max(stored+1, served+1, now.UnixMilli())
	next.NextUpdate = next.ThisUpdate.Add(s.opts.CRLValidity)
	// A CRL is fleetca's own doing, whichever request changed a status.
	signing := audit.WithRequester(ctx, audit.Requester{Operation: "RefreshCRL"})
	if next.DER, err = s.opts.Signer.SignCRL(signing, next.Number, next.ThisUpdate, next.NextUpdate, entries); err != nil {
		return fmt.Errorf("signing CRL %d: %w", next.Number, err)
	}
	if err := s.opts.Store.SaveCRL(ctx, next, stored); errors.Is(err, store.ErrConflict) {
		// Another replica stored a CRL first. Serve it; the next pass
		// checks it against the list again.
		_, err := s.adoptStored(ctx)
		return err
	} else if err != nil {
		return fmt.Errorf("storing CRL %d: %w", next.Number, err)
	}
	s.adopt(next, revokedSet(entries))
	s.lastFingerprint = fingerprint
	return nil
}

// fullCheck is how often the list of unusable certificates is read even
// though the fingerprint did not move.
const fullCheck = time.Minute

// adoptStored serves the stored CRL if it is newer than the one served, and
// returns the stored CRL's number (0 when there is none).
func (s *Service) adoptStored(ctx context.Context) (int64, error) {
	stored, err := s.opts.Store.CRL(ctx, s.issuerID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the stored CRL: %w", err)
	}
	if cur := s.state.Load(); cur != nil && cur.crl.Number >= stored.Number {
		return stored.Number, nil
	}
	// What OCSP answers is read from the CRL itself, so the two agree.
	list, err := x509.ParseRevocationList(stored.DER)
	if err != nil {
		return 0, fmt.Errorf("the stored CRL %d does not parse: %w", stored.Number, err)
	}
	if err := list.CheckSignatureFrom(s.opts.Signer.Issuing()); err != nil {
		return 0, fmt.Errorf("the stored CRL %d is not the issuer's: %w", stored.Number, err)
	}
	s.adopt(stored, revokedSet(list.RevokedCertificateEntries))
	return stored.Number, nil
}

// adopt serves c and drops the pre-signed OCSP answers whose certificate
// changed. The swap and the drop happen under the cache lock, and an answer
// is cached only if the state it was made from is still served, so no
// answer made from an older list outlives it.
func (s *Service) adopt(c *store.CRL, revoked map[string]entry) {
	next := &state{crl: c, pem: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.DER}), revoked: revoked}
	s.cacheMu.Lock()
	prev := s.state.Swap(next)
	if prev != nil {
		for serial, old := range prev.revoked {
			if now, ok := revoked[serial]; !ok || now.reason != old.reason || !now.at.Equal(old.at) {
				s.dropCached(serial)
			}
		}
		for serial := range revoked {
			if _, ok := prev.revoked[serial]; !ok {
				s.dropCached(serial)
			}
		}
	}
	s.cacheMu.Unlock()
	if o := s.opts.Observer; o != nil {
		o.ObserveCRL(s.issuerID, c.Number, len(revoked))
	}
	s.opts.Logger.Info("revocation: serving a new CRL", "issuer", s.issuerID, "number", c.Number, "entries", len(revoked),
		"next_update", c.NextUpdate)
}

// The RFC 5280 reason codes fleetca uses. Unspecified is left out of the
// entry, as the RFC asks.
const (
	reasonUnspecified          = 0
	reasonCessationOfOperation = 5
	reasonCertificateHold      = 6
)

// Reason is the CRL reason code of an unusable certificate (see the
// package comment).
func Reason(u store.UnusableCertificate) int {
	switch {
	case u.Status == iot.StatusRevoked:
		return reasonUnspecified
	case u.Deleted:
		return reasonCessationOfOperation
	default:
		return reasonCertificateHold
	}
}

// Entries makes the CRL entries of the unusable certificates, which come
// sorted by serial, and a digest of them that tells one list from another.
// A serial listed twice (a deleted certificate whose serial is registered
// again) is listed once, as the first listing says: the store puts the
// registration first.
func Entries(unusable []store.UnusableCertificate) ([]x509.RevocationListEntry, string) {
	entries := make([]x509.RevocationListEntry, 0, len(unusable))
	h := sha256.New()
	var line []byte
	for i, u := range unusable {
		if i > 0 && unusable[i-1].Serial == u.Serial {
			continue
		}
		serial, ok := new(big.Int).SetString(u.Serial, 16)
		if !ok {
			continue
		}
		e := x509.RevocationListEntry{SerialNumber: serial, RevocationTime: u.Since.UTC().Truncate(time.Second), ReasonCode: Reason(u)}
		entries = append(entries, e)
		line = append(line[:0], u.Serial...)
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(e.ReasonCode), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, e.RevocationTime.Unix(), 10)
		line = append(line, '\n')
		h.Write(line)
	}
	return entries, hex.EncodeToString(h.Sum(nil))
}

func revokedSet(entries []x509.RevocationListEntry) map[string]entry {
	m := make(map[string]entry, len(entries))
	for _, e := range entries {
		m[e.SerialNumber.Text(16)] = entry{at: e.RevocationTime.UTC(), reason: e.ReasonCode}
	}
	return m
}

// issuerHashes are the issuer's name and key hashes under each hash an OCSP
// request may use.
type issuerHashes map[crypto.Hash]struct{ name, key []byte }

func hashIssuer(issuer *x509.Certificate) (issuerHashes, error) {
	key, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	hashes := issuerHashes{}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		n, k := h.New(), h.New()
		n.Write(issuer.RawSubject)
		k.Write(key)
		hashes[h] = struct{ name, key []byte }{n.Sum(nil), k.Sum(nil)}
	}
	return hashes, nil
}

// Attributer is what Attribute reads and writes (see store.Revocations).
type Attributer interface {
	UnattributedCertificates(ctx context.Context, limit int) ([]iot.Certificate, error)
	AttributeCertificates(ctx context.Context, attributions []store.Attribution) error
}

// Attribute records the issuer and serial of the certificates stored before
// fleetca recorded them, reading both from each certificate's DER, so that
// those the issuing CA signed are on its CRL and known to OCSP like any
// other. A certificate the issuer did not sign is recorded as not fleetca's.
// It returns how many it attributed to the issuer, 500 to a transaction.
// Replicas may run it at once: attributing a certificate twice writes the
// same values.
func Attribute(ctx context.Context, st Attributer, issuing *x509.Certificate, issuerID string) (int, error) {
	n := 0
	for {
		batch, err := st.UnattributedCertificates(ctx, 500)
		if err != nil || len(batch) == 0 {
			return n, err
		}
		attributions := make([]store.Attribution, len(batch))
		for i, c := range batch {
			attributions[i] = store.Attribution{Scope: c.Scope, ID: c.ID}
			if cert, err := x509.ParseCertificate(c.DER); err == nil && cert.CheckSignatureFrom(issuing) == nil {
				attributions[i].IssuerID, attributions[i].Serial = issuerID, cert.SerialNumber.Text(16)
				n++
			}
		}
		if err := st.AttributeCertificates(ctx, attributions); err != nil {
			return n, err
		}
	}
}
