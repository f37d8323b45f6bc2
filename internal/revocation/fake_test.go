package revocation

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// fakeStore is an in-memory Store for one or more issuers. It keeps the
// certificates that are registered and not ACTIVE, or deleted, by serial;
// the serials ever issued; and each issuer's current CRL, which SaveCRL
// replaces by compare and swap as store.Revocations documents. Every CRL
// it accepted is kept in history, so that tests can check that no number
// was ever stored twice.
type fakeStore struct {
	mu       sync.Mutex
	unusable map[string]store.UnusableCertificate
	issued   map[string]bool
	// version moves on every change to unusable; it is the fingerprint.
	version int
	crl     map[string]*store.CRL
	history map[string][]store.CRL
	saves   int
	// errs makes the named method fail with the error.
	errs map[string]error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		unusable: map[string]store.UnusableCertificate{},
		issued:   map[string]bool{},
		crl:      map[string]*store.CRL{},
		history:  map[string][]store.CRL{},
		errs:     map[string]error{},
	}
}

// issue records that the issuer signed the serial (lower-case hex).
func (f *fakeStore) issue(serial string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued[serial] = true
}

// setStatus records the status of a registered certificate: ACTIVE takes
// it out of the unusable set, any other status puts it in since when.
func (f *fakeStore) setStatus(serial string, status iot.Status, since time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued[serial] = true
	f.version++
	if status == iot.StatusActive {
		delete(f.unusable, serial)
		return
	}
	f.unusable[serial] = store.UnusableCertificate{Serial: serial, Status: status, Since: since}
}

// remove deletes a registered certificate: it stays unusable, with the
// status it had, from when.
func (f *fakeStore) remove(serial string, status iot.Status, when time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issued[serial] = true
	f.version++
	f.unusable[serial] = store.UnusableCertificate{Serial: serial, Status: status, Deleted: true, Since: when}
}

// failOn makes the method (by name) fail with err; nil heals it.
func (f *fakeStore) failOn(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// saveCount is how many CRLs SaveCRL accepted.
func (f *fakeStore) saveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saves
}

// stored returns a copy of every CRL the issuer ever had, oldest first.
func (f *fakeStore) stored(issuerID string) []store.CRL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.history[issuerID])
}

func (f *fakeStore) UnusableCertificates(_ context.Context, _ string, _ time.Time) ([]store.UnusableCertificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["UnusableCertificates"]; err != nil {
		return nil, err
	}
	out := make([]store.UnusableCertificate, 0, len(f.unusable))
	for _, u := range f.unusable {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b store.UnusableCertificate) int { return strings.Compare(a.Serial, b.Serial) })
	return out, nil
}

func (f *fakeStore) UnusableFingerprint(_ context.Context, _ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["UnusableFingerprint"]; err != nil {
		return "", err
	}
	return fmt.Sprint(f.version), nil
}

func (f *fakeStore) IssuedSerial(_ context.Context, _ string, serial string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["IssuedSerial"]; err != nil {
		return false, err
	}
	return f.issued[serial], nil
}

func (f *fakeStore) CRL(_ context.Context, issuerID string) (*store.CRL, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["CRL"]; err != nil {
		return nil, err
	}
	c, ok := f.crl[issuerID]
	if !ok {
		return nil, store.ErrNotFound
	}
	cp := *c
	cp.DER = bytes.Clone(c.DER)
	return &cp, nil
}

func (f *fakeStore) SaveCRL(_ context.Context, c *store.CRL, prev int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["SaveCRL"]; err != nil {
		return err
	}
	if c.Number <= prev {
		return fmt.Errorf("CRL %d does not follow %d", c.Number, prev)
	}
	cur, ok := f.crl[c.IssuerID]
	if ok && cur.Number != prev || !ok && prev != 0 {
		return fmt.Errorf("CRL %d of %s: %w", c.Number, c.IssuerID, store.ErrConflict)
	}
	cp := *c
	cp.DER = bytes.Clone(c.DER)
	f.crl[c.IssuerID] = &cp
	f.history[c.IssuerID] = append(f.history[c.IssuerID], cp)
	f.saves++
	return nil
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeObserver records what a Service tells its Observer.
type fakeObserver struct {
	mu   sync.Mutex
	crls []observedCRL
	ocsp []observedOCSP
}

type observedCRL struct {
	number  int64
	entries int
}

type observedOCSP struct {
	status string
	cached bool
}

func (o *fakeObserver) ObserveCRL(_ string, number int64, entries int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.crls = append(o.crls, observedCRL{number, entries})
}

func (o *fakeObserver) ObserveOCSP(status string, cached bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ocsp = append(o.ocsp, observedOCSP{status, cached})
}

// lastOCSP returns the last OCSP answer observed.
func (o *fakeObserver) lastOCSP() observedOCSP {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.ocsp) == 0 {
		return observedOCSP{}
	}
	return o.ocsp[len(o.ocsp)-1]
}

// cachedCount is how many OCSP answers a pre-signed answer served.
func (o *fakeObserver) cachedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, a := range o.ocsp {
		if a.cached {
			n++
		}
	}
	return n
}

func (o *fakeObserver) crlsObserved() []observedCRL {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.crls)
}
