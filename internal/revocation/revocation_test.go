package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/testpki"
)

// oidReasonCode is the CRL entry extension that states a reason.
var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}

// harness is a Service over a fake store, signing with a real CA, on a
// fake clock.
type harness struct {
	ca    *issuance.Authority
	st    *fakeStore
	clock *fakeClock
	obs   *fakeObserver
	svc   *Service
	key   *ecdsa.PrivateKey
}

func newAuthority(t testing.TB) *issuance.Authority {
	t.Helper()
	a, err := issuance.Open(issuance.Options{Dir: filepath.Join(t.TempDir(), "ca"), Algorithm: keys.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newHarness makes a Service with opts, whose Store, Signer, Now and
// Observer default to the harness's.
func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{ca: newAuthority(t), st: newFakeStore(), clock: newFakeClock(), obs: &fakeObserver{}, key: key}
	h.svc = h.service(t, opts)
	return h
}

// service makes another Service (a replica) over the harness's store.
func (h *harness) service(t testing.TB, opts Options) *Service {
	t.Helper()
	if opts.Store == nil {
		opts.Store = h.st
	}
	if opts.Signer == nil {
		opts.Signer = h.ca
	}
	if opts.Now == nil {
		opts.Now = h.clock.Now
	}
	if opts.Observer == nil {
		opts.Observer = h.obs
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// issue has the CA sign a device certificate; the store is not told.
func (h *harness) issue(t testing.TB) *x509.Certificate {
	t.Helper()
	issued, err := h.ca.IssueForKey(context.Background(), &h.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(issued.DER)
	if err != nil {
		t.Fatal(err)
	}
	if issued.Serial != cert.SerialNumber.Text(16) || issued.IssuerID != h.ca.IssuerID() {
		t.Fatalf("issued serial %s of %s, certificate says %s", issued.Serial, issued.IssuerID, cert.SerialNumber.Text(16))
	}
	return cert
}

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func refresh(t testing.TB, svc *Service) {
	t.Helper()
	if err := svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// served returns the CRL svc serves, parsed and checked to be the CA's.
func (h *harness) served(t testing.TB, svc *Service) (CRL, *x509.RevocationList) {
	t.Helper()
	c, ok := svc.CRL()
	if !ok {
		t.Fatal("no CRL is served")
	}
	list, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(h.ca.Issuing()); err != nil {
		t.Fatalf("the CRL is not signed by the issuing CA: %v", err)
	}
	if list.Number == nil || list.Number.Int64() != c.Number {
		t.Fatalf("the CRL says number %v, the Service %d", list.Number, c.Number)
	}
	if !list.ThisUpdate.Equal(c.ThisUpdate) || !list.NextUpdate.Equal(c.NextUpdate) {
		t.Fatalf("the CRL says %v to %v, the Service %v to %v", list.ThisUpdate, list.NextUpdate, c.ThisUpdate, c.NextUpdate)
	}
	block, rest := pem.Decode(c.PEM)
	if block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, c.DER) || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("the PEM is not the DER's:\n%s", c.PEM)
	}
	return c, list
}

// listed maps each serial a CRL lists to its entry.
func listed(list *x509.RevocationList) map[string]x509.RevocationListEntry {
	m := make(map[string]x509.RevocationListEntry, len(list.RevokedCertificateEntries))
	for _, e := range list.RevokedCertificateEntries {
		m[serialOf(&x509.Certificate{SerialNumber: e.SerialNumber})] = e
	}
	return m
}

func hasReasonExtension(e x509.RevocationListEntry) bool {
	return slices.ContainsFunc(e.Extensions, func(x pkix.Extension) bool { return x.Id.Equal(oidReasonCode) })
}

// request makes an OCSP request about cert of issuer.
func request(t testing.TB, cert, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// requestFor makes a request about a bare serial of the harness's CA.
func (h *harness) requestFor(t testing.TB, serial *big.Int, hash crypto.Hash) []byte {
	t.Helper()
	return request(t, &x509.Certificate{SerialNumber: serial}, h.ca.Issuing(), hash)
}

// answer asks svc about cert and parses the answer, which must be a
// successful one signed by the CA.
func (h *harness) answer(t testing.TB, svc *Service, cert *x509.Certificate, hash crypto.Hash) (*ocsp.Response, Answer) {
	t.Helper()
	a := svc.Respond(context.Background(), request(t, cert, h.ca.Issuing(), hash))
	resp, err := ocsp.ParseResponseForCert(a.DER, cert, h.ca.Issuing())
	if err != nil {
		t.Fatalf("the answer about %s does not parse: %v", serialOf(cert), err)
	}
	if resp.IssuerHash != hash {
		t.Fatalf("answer made with %v, asked with %v", resp.IssuerHash, hash)
	}
	if !a.Cacheable() || !a.ThisUpdate.Equal(resp.ThisUpdate) || !a.NextUpdate.Equal(resp.NextUpdate) {
		t.Fatalf("the answer is valid %v to %v and Cacheable()=%v; the DER says %v to %v",
			a.ThisUpdate, a.NextUpdate, a.Cacheable(), resp.ThisUpdate, resp.NextUpdate)
	}
	return resp, a
}

var allHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func TestReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	now := h.clock.Now()
	// Each certificate's Since has a fraction of a second, which the CRL
	// cannot hold.
	cases := []struct {
		name    string
		status  iot.Status
		deleted bool
		want    int
	}{
		{"revoked", iot.StatusRevoked, false, 0},
		{"inactive", iot.StatusInactive, false, 6},
		{"pending activation", iot.StatusPendingActivation, false, 6},
		{"pending transfer", iot.StatusPendingTransfer, false, 6},
		{"register inactive", iot.StatusRegisterInactive, false, 6},
		{"deleted while inactive", iot.StatusInactive, true, 5},
		{"deleted while pending activation", iot.StatusPendingActivation, true, 5},
		{"deleted while revoked", iot.StatusRevoked, true, 0},
	}
	serials := make([]string, len(cases))
	since := make([]time.Time, len(cases))
	for i, c := range cases {
		serials[i] = big.NewInt(int64(0x1000 + i)).Text(16)
		since[i] = now.Add(-time.Duration(i+1)*time.Hour - 750*time.Millisecond)
		if c.deleted {
			h.st.remove(serials[i], c.status, since[i])
		} else {
			h.st.setStatus(serials[i], c.status, since[i])
		}
	}
	refresh(t, h.svc)
	_, list := h.served(t, h.svc)
	entries := listed(list)
	if len(entries) != len(cases) {
		t.Fatalf("the CRL lists %d certificates, want %d", len(entries), len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := store.UnusableCertificate{Serial: serials[i], Status: c.status, Deleted: c.deleted, Since: since[i]}
			if got := Reason(u); got != c.want {
				t.Errorf("Reason = %d, want %d", got, c.want)
			}
			e, ok := entries[serials[i]]
			if !ok {
				t.Fatalf("%s is not listed", serials[i])
			}
			if e.ReasonCode != c.want {
				t.Errorf("the CRL entry's reason is %d, want %d", e.ReasonCode, c.want)
			}
			if has := hasReasonExtension(e); has != (c.want != 0) {
				t.Errorf("the entry has a reason extension: %v; want one only for a stated reason", has)
			}
			if want := since[i].Truncate(time.Second); !e.RevocationTime.Equal(want) {
				t.Errorf("revoked at %v, want %v", e.RevocationTime, want)
			}
		})
	}
}

func TestEntries(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	base := []store.UnusableCertificate{
		{Serial: "0a", Status: iot.StatusInactive, Since: at},
		{Serial: "1b", Status: iot.StatusRevoked, Since: at.Add(time.Minute)},
	}
	entries, digest := Entries(base)
	if len(entries) != 2 || entries[0].SerialNumber.Int64() != 0x0a || entries[1].SerialNumber.Int64() != 0x1b {
		t.Fatalf("entries %+v", entries)
	}
	if entries[0].ReasonCode != 6 || entries[1].ReasonCode != 0 || !entries[0].RevocationTime.Equal(at.Truncate(time.Second)) {
		t.Fatalf("entries %+v", entries)
	}
	cases := []struct {
		name     string
		in       []store.UnusableCertificate
		wantSame bool
		wantLen  int
	}{
		{"same list", slices.Clone(base), true, 2},
		{"a fraction of a second later", []store.UnusableCertificate{
			{Serial: "0a", Status: iot.StatusInactive, Since: at.Add(100 * time.Millisecond)}, base[1]}, true, 2},
		{"registered again after deletion: the registration wins", []store.UnusableCertificate{
			base[0], {Serial: "0a", Status: iot.StatusRevoked, Deleted: true, Since: at.Add(-time.Hour)}, base[1]}, true, 2},
		{"a serial that is not hex is left out", []store.UnusableCertificate{
			base[0], {Serial: "zz", Status: iot.StatusRevoked, Since: at}, base[1]}, true, 2},
		{"another reason", []store.UnusableCertificate{
			{Serial: "0a", Status: iot.StatusInactive, Deleted: true, Since: at}, base[1]}, false, 2},
		{"another second", []store.UnusableCertificate{
			{Serial: "0a", Status: iot.StatusInactive, Since: at.Add(time.Second)}, base[1]}, false, 2},
		{"one fewer", base[:1], false, 1},
		{"empty", nil, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, d := Entries(c.in)
			if len(got) != c.wantLen {
				t.Errorf("%d entries, want %d", len(got), c.wantLen)
			}
			if (d == digest) != c.wantSame {
				t.Errorf("digest %s, first list's %s; want same: %v", d, digest, c.wantSame)
			}
			for _, e := range got {
				if e.SerialNumber.Int64() == 0x0a && c.wantSame && e.ReasonCode != 6 {
					t.Errorf("0a listed with reason %d, want the registration's 6", e.ReasonCode)
				}
			}
		})
	}
}

func TestFirstRefreshMakesTheFirstCRL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{CRLRefresh: time.Hour, CRLValidity: 5 * time.Hour})
	if _, ok := h.svc.CRL(); ok {
		t.Fatal("a CRL is served before the first Refresh")
	}
	// The fake clock has a fraction of a second; a CRL's times have none.
	h.clock.advance(250 * time.Millisecond)
	refresh(t, h.svc)
	c, list := h.served(t, h.svc)
	wantThis := h.clock.Now().Truncate(time.Second)
	// Numbers start at the signing instant's millisecond since the epoch,
	// so that they grow even across a database restored from an older
	// backup.
	if want := h.clock.Now().UnixMilli(); c.Number != want || !c.ThisUpdate.Equal(wantThis) || !c.NextUpdate.Equal(wantThis.Add(5*time.Hour)) {
		t.Errorf("CRL %d, %v to %v; want %d, %v to %v", c.Number, c.ThisUpdate, c.NextUpdate, want, wantThis, wantThis.Add(5*time.Hour))
	}
	if len(list.RevokedCertificateEntries) != 0 {
		t.Errorf("an empty store's CRL lists %d certificates", len(list.RevokedCertificateEntries))
	}
	if !bytes.Equal(list.RawIssuer, h.ca.Issuing().RawSubject) {
		t.Error("the CRL's issuer is not the issuing CA")
	}
	stored := h.st.stored(h.ca.IssuerID())
	if len(stored) != 1 || stored[0].Number != c.Number || !bytes.Equal(stored[0].DER, c.DER) || stored[0].IssuerID != h.ca.IssuerID() {
		t.Fatalf("stored %+v", stored)
	}
	if _, want := Entries(nil); stored[0].Digest != want {
		t.Errorf("stored digest %q, want the empty list's %q", stored[0].Digest, want)
	}
	if got := h.obs.crlsObserved(); !slices.Equal(got, []observedCRL{{c.Number, 0}}) {
		t.Errorf("observed %v", got)
	}
	if h.svc.IssuerID() != h.ca.IssuerID() {
		t.Errorf("IssuerID %q, want %q", h.svc.IssuerID(), h.ca.IssuerID())
	}
}

func TestRefreshSignsWhenTheListChangesOrIsDue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{CRLRefresh: time.Hour, CRLValidity: 3 * time.Hour})
	h.clock.advance(123 * time.Millisecond)
	const a, b = "a1", "b2"
	var revokedA time.Time
	steps := []struct {
		name    string
		advance time.Duration
		change  func(now time.Time)
		signs   bool // a new CRL, numbered its signing instant's millisecond
		want    map[string]int
	}{
		{"first", 0, nil, true, map[string]int{}},
		{"nothing changed", time.Minute, nil, false, map[string]int{}},
		{"revoked", time.Minute, func(now time.Time) { revokedA = now; h.st.setStatus(a, iot.StatusRevoked, now) }, true, map[string]int{a: 0}},
		{"held", time.Minute, func(now time.Time) { h.st.setStatus(b, iot.StatusInactive, now) }, true, map[string]int{a: 0, b: 6}},
		{"nothing changed again", time.Minute, nil, false, map[string]int{a: 0, b: 6}},
		{"reactivated", time.Minute, func(now time.Time) { h.st.setStatus(b, iot.StatusActive, now) }, true, map[string]int{a: 0}},
		{"held and reactivated between two refreshes", time.Minute, func(now time.Time) {
			h.st.setStatus(b, iot.StatusInactive, now)
			h.st.setStatus(b, iot.StatusActive, now)
		}, false, map[string]int{a: 0}},
		// The last CRL was signed 1m0.123s ago (its thisUpdate has no fraction).
		{"refresh period not over", 58*time.Minute + 59*time.Second, nil, false, map[string]int{a: 0}},
		{"refresh period over to the nanosecond", 877 * time.Millisecond, nil, true, map[string]int{a: 0}},
		{"just re-signed", time.Second, nil, false, map[string]int{a: 0}},
	}
	var prev CRL
	var signed []int64
	for _, s := range steps {
		h.clock.advance(s.advance)
		if s.change != nil {
			s.change(h.clock.Now())
		}
		refresh(t, h.svc)
		c, list := h.served(t, h.svc)
		switch want := h.clock.Now().UnixMilli(); {
		case s.signs && (c.Number != want || c.Number <= prev.Number):
			t.Fatalf("%s: CRL %d after %d, want a new one numbered %d", s.name, c.Number, prev.Number, want)
		case !s.signs && c.Number != prev.Number:
			t.Fatalf("%s: CRL %d, want %d still", s.name, c.Number, prev.Number)
		}
		if c.Number == prev.Number {
			if !bytes.Equal(c.DER, prev.DER) {
				t.Errorf("%s: CRL %d changed without a new number", s.name, c.Number)
			}
		} else if want := h.clock.Now().Truncate(time.Second); !c.ThisUpdate.Equal(want) || !c.NextUpdate.Equal(want.Add(3*time.Hour)) {
			t.Errorf("%s: valid %v to %v, want %v to %v", s.name, c.ThisUpdate, c.NextUpdate, want, want.Add(3*time.Hour))
		}
		got := map[string]int{}
		for serial, e := range listed(list) {
			got[serial] = e.ReasonCode
		}
		if !maps.Equal(got, s.want) {
			t.Errorf("%s: the CRL lists %v, want %v", s.name, got, s.want)
		}
		if e, ok := listed(list)[a]; ok && !e.RevocationTime.Equal(revokedA.Truncate(time.Second)) {
			t.Errorf("%s: %s revoked at %v, want %v", s.name, a, e.RevocationTime, revokedA.Truncate(time.Second))
		}
		if s.signs {
			signed = append(signed, c.Number)
		}
		if n := h.st.saveCount(); n != len(signed) {
			t.Errorf("%s: %d CRLs stored, want %d", s.name, n, len(signed))
		}
		prev = c
	}
	var numbers []int64
	for _, o := range h.obs.crlsObserved() {
		numbers = append(numbers, o.number)
	}
	if !slices.Equal(numbers, signed) {
		t.Errorf("observed CRLs %v, want each of %v once", numbers, signed)
	}
}

// failingSigner is a Signer whose signing fails.
type failingSigner struct {
	Signer
	crl, ocsp error
}

func (f failingSigner) SignCRL(ctx context.Context, number int64, thisUpdate, nextUpdate time.Time, entries []x509.RevocationListEntry) ([]byte, error) {
	if f.crl != nil {
		return nil, f.crl
	}
	return f.Signer.SignCRL(ctx, number, thisUpdate, nextUpdate, entries)
}

func (f failingSigner) SignOCSP(ctx context.Context, r ocsp.Response) ([]byte, error) {
	if f.ocsp != nil {
		return nil, f.ocsp
	}
	return f.Signer.SignOCSP(ctx, r)
}

func TestRefreshFailureKeepsTheCRL(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cases := []struct {
		name   string
		method string
	}{
		{"reading the stored CRL", "CRL"},
		{"reading the fingerprint", "UnusableFingerprint"},
		{"listing", "UnusableCertificates"},
		{"storing", "SaveCRL"},
		{"signing", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{})
			signer := &failingSigner{Signer: h.ca}
			svc := h.service(t, Options{Signer: signer})
			refresh(t, svc)
			before, _ := svc.CRL()
			h.st.setStatus("77", iot.StatusRevoked, h.clock.Now())
			if c.method == "" {
				signer.crl = boom
			} else {
				h.st.failOn(c.method, boom)
			}
			if err := svc.Refresh(context.Background()); !errors.Is(err, boom) {
				t.Fatalf("Refresh = %v, want the failure", err)
			}
			if after, _ := svc.CRL(); after.Number != before.Number || !bytes.Equal(after.DER, before.DER) {
				t.Fatalf("after a failure the CRL served is %d, want %d still", after.Number, before.Number)
			}
			h.st.failOn(c.method, nil)
			signer.crl = nil
			refresh(t, svc)
			if _, list := h.served(t, svc); list.Number.Int64() != before.Number+1 || len(list.RevokedCertificateEntries) != 1 {
				t.Fatalf("after healing: CRL %v with %d entries, want %d with 1", list.Number, len(list.RevokedCertificateEntries), before.Number+1)
			}
		})
	}
}

func TestRefreshRefusesAnotherIssuersStoredCRL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	other := newHarness(t, Options{})
	refresh(t, other.svc)
	forged := other.st.stored(other.ca.IssuerID())[0]
	forged.IssuerID = h.ca.IssuerID()
	if err := h.st.SaveCRL(context.Background(), &forged, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "not the issuer's") {
		t.Fatalf("Refresh over another CA's CRL = %v, want a refusal", err)
	}
	if _, ok := h.svc.CRL(); ok {
		t.Fatal("another CA's CRL is served")
	}
}

func TestNewRefusesValidityNotLongerThanRefresh(t *testing.T) {
	t.Parallel()
	ca := newAuthority(t)
	cases := []struct {
		name              string
		refresh, validity time.Duration
		ok                bool
	}{
		{"defaults", 0, 0, true},
		{"longer", time.Hour, time.Hour + time.Second, true},
		{"equal", time.Hour, time.Hour, false},
		{"shorter", 2 * time.Hour, time.Hour, false},
		{"shorter than the default refresh", 0, DefaultCRLRefresh, false},
		{"default validity below refresh", DefaultCRLValidity, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			svc, err := New(Options{Store: newFakeStore(), Signer: ca, CRLRefresh: c.refresh, CRLValidity: c.validity})
			if c.ok != (err == nil) {
				t.Fatalf("New = %v, %v; want ok: %v", svc, err, c.ok)
			}
			if err == nil && svc.opts.CRLValidity <= svc.opts.CRLRefresh {
				t.Fatalf("New accepted validity %v for refresh %v", svc.opts.CRLValidity, svc.opts.CRLRefresh)
			}
		})
	}
}

// TestReplicasAgree runs two Services over one store, as two replicas over
// one database: they sign in turn, never two CRLs under one number, and
// serve the same one once they have both refreshed.
func TestReplicasAgree(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{CRLRefresh: time.Hour, CRLValidity: 2 * time.Hour})
	obsA, obsB := &fakeObserver{}, &fakeObserver{}
	a := h.service(t, Options{CRLRefresh: time.Hour, CRLValidity: 2 * time.Hour, Observer: obsA})
	b := h.service(t, Options{CRLRefresh: time.Hour, CRLValidity: 2 * time.Hour, Observer: obsB})
	issuer := h.ca.IssuerID()

	var mu sync.Mutex
	servedAs := map[int64][]byte{}
	record := func(svc *Service) {
		c, ok := svc.CRL()
		if !ok {
			t.Error("no CRL served after a Refresh")
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := servedAs[c.Number]; ok && !bytes.Equal(prev, c.DER) {
			t.Errorf("CRL %d is served with two contents", c.Number)
		}
		servedAs[c.Number] = c.DER
	}
	converged := func(when string) {
		t.Helper()
		ca, _ := a.CRL()
		cb, _ := b.CRL()
		st, err := h.st.CRL(context.Background(), issuer)
		if err != nil {
			t.Fatal(err)
		}
		if ca.Number != st.Number || cb.Number != st.Number || !bytes.Equal(ca.DER, st.DER) || !bytes.Equal(cb.DER, st.DER) {
			t.Fatalf("%s: the replicas serve %d and %d, the store has %d", when, ca.Number, cb.Number, st.Number)
		}
		unusable, err := h.st.UnusableCertificates(context.Background(), issuer, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, digest := Entries(unusable); st.Digest != digest {
			t.Fatalf("%s: the CRL served is not the current list's", when)
		}
	}

	// In turn. A replica's first pass signs anew, whatever is stored (a
	// restored database may hold an old CRL); after that, the second
	// adopts what the first signed.
	refresh(t, a)
	refresh(t, b)
	refresh(t, a)
	converged("first")
	h.st.setStatus("5e", iot.StatusRevoked, h.clock.Now())
	refresh(t, b)
	refresh(t, a)
	converged("after a change")
	if n := h.st.saveCount(); n != 3 {
		t.Fatalf("%d CRLs stored for two starts and one change, want 3", n)
	}

	// Together, round after round: a change, sometimes the refresh period
	// over, then both refresh at once.
	for round := range 40 {
		serial := big.NewInt(int64(0x100 + round%9)).Text(16)
		switch round % 4 {
		case 0:
			h.st.setStatus(serial, iot.StatusRevoked, h.clock.Now())
		case 1:
			h.st.setStatus(serial, iot.StatusInactive, h.clock.Now())
		case 2:
			h.st.setStatus(serial, iot.StatusActive, h.clock.Now())
		case 3:
			h.st.remove(serial, iot.StatusInactive, h.clock.Now())
		}
		if round%5 == 0 {
			h.clock.advance(time.Hour)
		}
		h.clock.advance(time.Second)
		var wg sync.WaitGroup
		for _, svc := range []*Service{a, b, a, b} {
			wg.Go(func() {
				for range 3 {
					if err := svc.Refresh(context.Background()); err != nil {
						t.Error(err)
					}
					record(svc)
				}
			})
		}
		wg.Wait()
		converged("round " + big.NewInt(int64(round)).String())
	}

	// Changes while both refresh in a loop; then both refresh once more.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 200 {
			serial := big.NewInt(int64(0x200 + i%13)).Text(16)
			h.st.setStatus(serial, []iot.Status{iot.StatusRevoked, iot.StatusInactive, iot.StatusActive}[i%3], h.clock.Now())
			h.clock.advance(time.Duration(i%4) * 20 * time.Minute)
		}
	})
	for _, svc := range []*Service{a, b} {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := svc.Refresh(context.Background()); err != nil {
					t.Error(err)
				}
				record(svc)
			}
		})
	}
	wg.Wait()
	refresh(t, a)
	refresh(t, b)
	record(a)
	record(b)
	converged("after concurrent changes")

	history := h.st.stored(issuer)
	for i, c := range history {
		if i > 0 && c.Number <= history[i-1].Number {
			t.Fatalf("the store's CRL %d is numbered %d after %d: a number reused or gone back", i+1, c.Number, history[i-1].Number)
		}
		if der, ok := servedAs[c.Number]; ok && !bytes.Equal(der, c.DER) {
			t.Errorf("CRL %d served is not CRL %d stored", c.Number, c.Number)
		}
	}
	stored := map[int64]bool{}
	for _, c := range history {
		stored[c.Number] = true
	}
	for n := range servedAs {
		if !stored[n] {
			t.Errorf("CRL %d served was never stored", n)
		}
	}
	for name, o := range map[string]*fakeObserver{"a": obsA, "b": obsB} {
		prev := int64(0)
		for _, c := range o.crlsObserved() {
			if c.number <= prev {
				t.Errorf("replica %s adopted CRL %d after %d", name, c.number, prev)
			}
			prev = c.number
		}
	}
}

func TestRespondStatuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{OCSPValidity: 2 * time.Hour})
	now := h.clock.Now()
	active, held, revoked, deletedHeld, deletedRevoked, neverTold := h.issue(t), h.issue(t), h.issue(t), h.issue(t), h.issue(t), h.issue(t)
	h.st.issue(serialOf(active))
	h.st.setStatus(serialOf(held), iot.StatusInactive, now.Add(-time.Hour))
	h.st.setStatus(serialOf(revoked), iot.StatusRevoked, now.Add(-2*time.Hour))
	h.st.remove(serialOf(deletedHeld), iot.StatusPendingActivation, now.Add(-3*time.Hour))
	h.st.remove(serialOf(deletedRevoked), iot.StatusRevoked, now.Add(-4*time.Hour))
	h.clock.advance(1500 * time.Millisecond)
	refresh(t, h.svc)

	cases := []struct {
		name      string
		cert      *x509.Certificate
		status    int
		reason    int
		revokedAt time.Time
		observed  string
	}{
		{"active", active, ocsp.Good, 0, time.Time{}, "good"},
		{"held", held, ocsp.Revoked, ocsp.CertificateHold, now.Add(-time.Hour), "revoked"},
		{"revoked", revoked, ocsp.Revoked, ocsp.Unspecified, now.Add(-2 * time.Hour), "revoked"},
		{"deleted while held", deletedHeld, ocsp.Revoked, ocsp.CessationOfOperation, now.Add(-3 * time.Hour), "revoked"},
		{"deleted while revoked", deletedRevoked, ocsp.Revoked, ocsp.Unspecified, now.Add(-4 * time.Hour), "revoked"},
		{"never registered", neverTold, ocsp.Unknown, 0, time.Time{}, "unknown"},
	}
	for _, c := range cases {
		for _, hash := range allHashes {
			t.Run(c.name+"/"+hash.String(), func(t *testing.T) {
				resp, a := h.answer(t, h.svc, c.cert, hash)
				if resp.Status != c.status {
					t.Fatalf("status %d, want %d", resp.Status, c.status)
				}
				if resp.SerialNumber.Cmp(c.cert.SerialNumber) != 0 {
					t.Errorf("answer about %v, asked about %v", resp.SerialNumber, c.cert.SerialNumber)
				}
				if want := h.clock.Now().Truncate(time.Second); !resp.ThisUpdate.Equal(want) || !resp.NextUpdate.Equal(want.Add(2*time.Hour)) {
					t.Errorf("valid %v to %v, want %v to %v", resp.ThisUpdate, resp.NextUpdate, want, want.Add(2*time.Hour))
				}
				if c.status == ocsp.Revoked {
					if !resp.RevokedAt.Equal(c.revokedAt) || resp.RevocationReason != c.reason {
						t.Errorf("revoked at %v for %d, want %v for %d", resp.RevokedAt, resp.RevocationReason, c.revokedAt, c.reason)
					}
				}
				if got := h.obs.lastOCSP(); got.status != c.observed {
					t.Errorf("observed %+v, want %s", got, c.observed)
				}
				if len(a.DER) == 0 {
					t.Error("empty answer")
				}
			})
		}
	}
}

// TestRespondRevokedWithoutTheRegistry shows that a revoked answer comes
// from the CRL alone: the registry failing does not hide a revocation.
func TestRespondRevokedWithoutTheRegistry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	revoked := h.issue(t)
	h.st.setStatus(serialOf(revoked), iot.StatusRevoked, h.clock.Now())
	refresh(t, h.svc)
	h.st.failOn("IssuedSerial", errors.New("database down"))
	if resp, _ := h.answer(t, h.svc, revoked, crypto.SHA256); resp.Status != ocsp.Revoked {
		t.Fatalf("status %d, want revoked", resp.Status)
	}
}

func TestRespondRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	active := h.issue(t)
	h.st.issue(serialOf(active))
	refresh(t, h.svc)

	other := testpki.NewRoot(t, "p256", "Other CA")
	otherLeaf, _ := other.Issue(t, "device", testpki.Key(t, "p256").Public())
	sameName := testpki.NewRootWithKey(t, testpki.Key(t, "p256"), &x509.Certificate{
		RawSubject: h.ca.Issuing().RawSubject, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	})
	sameKey := &x509.Certificate{RawSubject: other.Cert.RawSubject, RawSubjectPublicKeyInfo: h.ca.Issuing().RawSubjectPublicKeyInfo}
	valid := request(t, active, h.ca.Issuing(), crypto.SHA256)
	sha1Hashes, err := ocsp.ParseRequest(request(t, active, h.ca.Issuing(), crypto.SHA1))
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := (&ocsp.Request{HashAlgorithm: crypto.SHA256, IssuerNameHash: sha1Hashes.IssuerNameHash,
		IssuerKeyHash: sha1Hashes.IssuerKeyHash, SerialNumber: active.SerialNumber}).Marshal()
	if err != nil {
		t.Fatal(err)
	}

	notRefreshed := h.service(t, Options{})
	registryDown := newFakeStore()
	registryDown.failOn("IssuedSerial", errors.New("database down"))
	withRegistryDown := h.service(t, Options{Store: registryDown})
	refresh(t, withRegistryDown)
	cannotSign := h.service(t, Options{Signer: failingSigner{Signer: h.ca, ocsp: errors.New("HSM gone")}})
	refresh(t, cannotSign)

	cases := []struct {
		name     string
		svc      *Service
		req      []byte
		want     []byte
		status   ocsp.ResponseStatus
		observed string
	}{
		{"nil", h.svc, nil, ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"empty", h.svc, []byte{}, ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"garbage", h.svc, []byte("GET / HTTP/1.1\r\n\r\n"), ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"huge", h.svc, bytes.Repeat([]byte{0x30, 0x84}, 1<<19), ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"trailing data", h.svc, append(slices.Clone(valid), make([]byte, 1<<20)...), ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"truncated", h.svc, valid[:len(valid)-1], ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"serial zero", h.svc, h.requestFor(t, big.NewInt(0), crypto.SHA256), ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"negative serial", h.svc, h.requestFor(t, big.NewInt(-5), crypto.SHA1), ocsp.MalformedRequestErrorResponse, ocsp.Malformed, "malformed"},
		{"another CA", h.svc, request(t, otherLeaf, other.Cert, crypto.SHA1), ocsp.UnauthorizedErrorResponse, ocsp.Unauthorized, "unauthorized"},
		{"a CA with the issuer's name", h.svc, request(t, active, sameName.Cert, crypto.SHA256), ocsp.UnauthorizedErrorResponse, ocsp.Unauthorized, "unauthorized"},
		{"a CA with the issuer's key", h.svc, request(t, active, sameKey, crypto.SHA256), ocsp.UnauthorizedErrorResponse, ocsp.Unauthorized, "unauthorized"},
		{"hashes of another algorithm", h.svc, mixed, ocsp.UnauthorizedErrorResponse, ocsp.Unauthorized, "unauthorized"},
		{"before the first refresh", notRefreshed, valid, ocsp.TryLaterErrorResponse, ocsp.TryLater, "tryLater"},
		{"another CA before the first refresh", notRefreshed, request(t, otherLeaf, other.Cert, crypto.SHA1), ocsp.UnauthorizedErrorResponse, ocsp.Unauthorized, "unauthorized"},
		{"the registry fails", withRegistryDown, valid, ocsp.TryLaterErrorResponse, ocsp.TryLater, "tryLater"},
		{"signing fails", cannotSign, valid, ocsp.InternalErrorErrorResponse, ocsp.InternalError, "internalError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.svc.Respond(context.Background(), c.req)
			if !bytes.Equal(a.DER, c.want) {
				t.Fatalf("answer %x, want %x", a.DER, c.want)
			}
			if a.Cacheable() || !a.ThisUpdate.IsZero() || !a.NextUpdate.IsZero() {
				t.Errorf("an error answer is cacheable (%v) or valid from %v to %v", a.Cacheable(), a.ThisUpdate, a.NextUpdate)
			}
			_, err := ocsp.ParseResponse(a.DER, h.ca.Issuing())
			var re ocsp.ResponseError
			if !errors.As(err, &re) || re.Status != c.status {
				t.Errorf("ParseResponse = %v, want the error status %v", err, c.status)
			}
			if got := h.obs.lastOCSP(); got != (observedOCSP{c.observed, false}) {
				t.Errorf("observed %+v, want %s", got, c.observed)
			}
		})
	}
}

func TestRespondPresigned(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{OCSPValidity: time.Hour})
	x, y, stranger := h.issue(t), h.issue(t), h.issue(t)
	h.st.issue(serialOf(x))
	h.st.issue(serialOf(y))
	h.clock.advance(400 * time.Millisecond)
	refresh(t, h.svc)

	ask := func(cert *x509.Certificate, hash crypto.Hash) (*ocsp.Response, []byte, bool) {
		t.Helper()
		before := h.obs.cachedCount()
		resp, a := h.answer(t, h.svc, cert, hash)
		return resp, a.DER, h.obs.cachedCount() == before+1
	}

	first, der1, cached := ask(x, crypto.SHA256)
	if cached || first.Status != ocsp.Good {
		t.Fatalf("first answer: status %d, cached %v", first.Status, cached)
	}
	if _, der, cached := ask(x, crypto.SHA256); !cached || !bytes.Equal(der, der1) {
		t.Fatalf("second answer: cached %v, same DER %v", cached, bytes.Equal(der, der1))
	}
	if _, der, cached := ask(x, crypto.SHA1); cached || bytes.Equal(der, der1) {
		t.Fatal("an answer under SHA-1 was served from the SHA-256 one")
	}
	for range 2 {
		if _, _, cached := ask(stranger, crypto.SHA256); cached {
			t.Fatal("an unknown answer was served pre-signed")
		}
	}

	// Renewed when half its validity has passed, to the second: the answer
	// was made at a whole second, 0.4 s before the clock.
	h.clock.advance(29*time.Minute + 59*time.Second)
	if _, der, cached := ask(x, crypto.SHA256); !cached || !bytes.Equal(der, der1) {
		t.Fatal("the answer was not reused before half its validity")
	}
	h.clock.advance(600 * time.Millisecond)
	renewed, der2, cached := ask(x, crypto.SHA256)
	if cached || bytes.Equal(der2, der1) || !renewed.ThisUpdate.Equal(h.clock.Now().Truncate(time.Second)) {
		t.Fatalf("at half its validity: cached %v, thisUpdate %v", cached, renewed.ThisUpdate)
	}
	if _, der, cached := ask(x, crypto.SHA256); !cached || !bytes.Equal(der, der2) {
		t.Fatal("the renewed answer was not reused")
	}

	// Another certificate's change keeps x's answers.
	h.st.setStatus(serialOf(y), iot.StatusInactive, h.clock.Now())
	refresh(t, h.svc)
	if _, der, cached := ask(x, crypto.SHA256); !cached || !bytes.Equal(der, der2) {
		t.Fatal("x's answer was dropped when y changed")
	}

	// x's own change is answered at once, under every hash.
	revokedAt := h.clock.Now()
	h.st.setStatus(serialOf(x), iot.StatusRevoked, revokedAt)
	refresh(t, h.svc)
	for _, hash := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		resp, _, cached := ask(x, hash)
		if cached || resp.Status != ocsp.Revoked || !resp.RevokedAt.Equal(revokedAt.Truncate(time.Second)) {
			t.Fatalf("%v after revocation: status %d at %v, cached %v", hash, resp.Status, resp.RevokedAt, cached)
		}
		if resp, _, cached := ask(x, hash); !cached || resp.Status != ocsp.Revoked {
			t.Fatalf("%v: the revoked answer was not reused", hash)
		}
	}

	// And so is its reactivation.
	h.st.setStatus(serialOf(x), iot.StatusActive, h.clock.Now())
	refresh(t, h.svc)
	if resp, _, cached := ask(x, crypto.SHA256); cached || resp.Status != ocsp.Good {
		t.Fatalf("after reactivation: status %d, cached %v", resp.Status, cached)
	}
	// y's hold too, though an answer about y was never asked for before.
	if resp, _, cached := ask(y, crypto.SHA256); cached || resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.CertificateHold {
		t.Fatalf("y: status %d reason %d, cached %v", resp.Status, resp.RevocationReason, cached)
	}
}

// TestRespondAdoptedCRLDropsAnswers shows that a CRL another replica signed
// drops the pre-signed answers it changes.
func TestRespondAdoptedCRLDropsAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	other := h.service(t, Options{Observer: &fakeObserver{}})
	x := h.issue(t)
	h.st.issue(serialOf(x))
	refresh(t, h.svc)
	if resp, _ := h.answer(t, h.svc, x, crypto.SHA256); resp.Status != ocsp.Good {
		t.Fatal("not good")
	}
	h.answer(t, h.svc, x, crypto.SHA256)
	if h.obs.lastOCSP() != (observedOCSP{"good", true}) {
		t.Fatal("the answer was not pre-signed")
	}
	h.st.setStatus(serialOf(x), iot.StatusInactive, h.clock.Now())
	refresh(t, other)
	refresh(t, h.svc)
	if n := h.st.saveCount(); n != 2 {
		t.Fatalf("%d CRLs stored, want 2 (the second signed by the other replica)", n)
	}
	if resp, _ := h.answer(t, h.svc, x, crypto.SHA256); resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.CertificateHold {
		t.Fatalf("status %d reason %d after the other replica's CRL, want held", resp.Status, resp.RevocationReason)
	}
}

// hookSigner is a Signer that calls beforeOCSP before each OCSP signature.
type hookSigner struct {
	Signer
	beforeOCSP func()
}

func (h *hookSigner) SignOCSP(ctx context.Context, r ocsp.Response) ([]byte, error) {
	if h.beforeOCSP != nil {
		h.beforeOCSP()
	}
	return h.Signer.SignOCSP(ctx, r)
}

// TestRespondKeepsNoAnswerOfAnOlderList revokes a certificate while an
// answer about it is being signed: that answer, made from the list before,
// goes out, but is not kept to answer the next request.
func TestRespondKeepsNoAnswerOfAnOlderList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	signer := &hookSigner{Signer: h.ca}
	svc := h.service(t, Options{Signer: signer})
	x := h.issue(t)
	h.st.issue(serialOf(x))
	refresh(t, svc)
	signer.beforeOCSP = func() {
		signer.beforeOCSP = nil
		h.st.setStatus(serialOf(x), iot.StatusRevoked, h.clock.Now())
		refresh(t, svc)
	}
	if resp, _ := h.answer(t, svc, x, crypto.SHA256); resp.Status != ocsp.Good {
		t.Fatalf("the answer in flight says %d, want good", resp.Status)
	}
	if resp, _ := h.answer(t, svc, x, crypto.SHA256); resp.Status != ocsp.Revoked {
		t.Fatalf("the next answer says %d, want revoked", resp.Status)
	}
	if h.obs.lastOCSP() != (observedOCSP{"revoked", false}) {
		t.Fatalf("observed %+v", h.obs.lastOCSP())
	}
}

func TestRespondCacheIsBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{OCSPCache: 3})
	certs := make([]*x509.Certificate, 8)
	for i := range certs {
		certs[i] = h.issue(t)
		h.st.issue(serialOf(certs[i]))
	}
	refresh(t, h.svc)
	for _, c := range certs {
		h.answer(t, h.svc, c, crypto.SHA256)
		h.svc.cacheMu.Lock()
		n := len(h.svc.cache)
		h.svc.cacheMu.Unlock()
		if n > 3 {
			t.Fatalf("%d answers kept, bound 3", n)
		}
	}
	h.answer(t, h.svc, certs[len(certs)-1], crypto.SHA256)
	if h.obs.lastOCSP() != (observedOCSP{"good", true}) {
		t.Fatal("the latest answer was not kept")
	}
}

// TestCRLAndOCSPAgree changes statuses at random and checks, after every
// Refresh, that the CRL lists exactly what it should and that OCSP says
// revoked for exactly what it lists, with the same time and reason.
func TestCRLAndOCSPAgree(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	rng := mrand.New(mrand.NewPCG(20240607, 42))
	certs := make([]*x509.Certificate, 16)
	for i := range certs {
		certs[i] = h.issue(t)
		h.st.issue(serialOf(certs[i]))
	}
	type model struct {
		status  iot.Status
		deleted bool
		since   time.Time
	}
	want := map[string]model{}
	statuses := []iot.Status{iot.StatusActive, iot.StatusActive, iot.StatusInactive, iot.StatusRevoked,
		iot.StatusPendingActivation, iot.StatusPendingTransfer}

	check := func(step int) {
		t.Helper()
		_, list := h.served(t, h.svc)
		entries := listed(list)
		for serial, m := range want {
			if m.status == iot.StatusActive && !m.deleted {
				continue
			}
			e, ok := entries[serial]
			if !ok {
				t.Fatalf("step %d: %s (%s, deleted %v) is not listed", step, serial, m.status, m.deleted)
			}
			if r := Reason(store.UnusableCertificate{Status: m.status, Deleted: m.deleted}); e.ReasonCode != r || !e.RevocationTime.Equal(m.since.Truncate(time.Second)) {
				t.Fatalf("step %d: %s listed for %d at %v, want %d at %v", step, serial, e.ReasonCode, e.RevocationTime, r, m.since)
			}
		}
		for serial := range entries {
			if m, ok := want[serial]; !ok || m.status == iot.StatusActive && !m.deleted {
				t.Fatalf("step %d: %s is listed but usable", step, serial)
			}
		}
		for _, c := range certs {
			hash := allHashes[rng.IntN(len(allHashes))]
			resp, _ := h.answer(t, h.svc, c, hash)
			e, inCRL := entries[serialOf(c)]
			switch {
			case inCRL && (resp.Status != ocsp.Revoked || !resp.RevokedAt.Equal(e.RevocationTime) || resp.RevocationReason != e.ReasonCode):
				t.Fatalf("step %d: the CRL lists %s for %d at %v; OCSP says status %d for %d at %v",
					step, serialOf(c), e.ReasonCode, e.RevocationTime, resp.Status, resp.RevocationReason, resp.RevokedAt)
			case !inCRL && resp.Status != ocsp.Good:
				t.Fatalf("step %d: the CRL does not list %s; OCSP says status %d", step, serialOf(c), resp.Status)
			}
		}
	}

	refreshes := 0
	for step := range 300 {
		c := certs[rng.IntN(len(certs))]
		serial := serialOf(c)
		now := h.clock.Now()
		if m := want[serial]; !m.deleted {
			if rng.IntN(8) == 0 && m.status != "" && m.status != iot.StatusActive {
				h.st.remove(serial, m.status, now)
				want[serial] = model{m.status, true, now}
			} else {
				st := statuses[rng.IntN(len(statuses))]
				h.st.setStatus(serial, st, now)
				want[serial] = model{st, false, now}
			}
		}
		h.clock.advance(time.Duration(rng.IntN(900_000)) * time.Millisecond)
		if rng.IntN(3) == 0 {
			refresh(t, h.svc)
			refreshes++
			check(step)
		}
	}
	refresh(t, h.svc)
	check(-1)
	if refreshes < 50 {
		t.Fatalf("only %d refreshes", refreshes)
	}
}

// discardObserver observes nothing, so that fuzzing does not pile up
// observations.
type discardObserver struct{}

func (discardObserver) ObserveCRL(string, int64, int) {}
func (discardObserver) ObserveOCSP(string, bool)      {}

func FuzzRespond(f *testing.F) {
	h := newHarness(f, Options{Observer: discardObserver{}})
	active, held := h.issue(f), h.issue(f)
	h.st.issue(serialOf(active))
	h.st.setStatus(serialOf(held), iot.StatusInactive, h.clock.Now())
	refresh(f, h.svc)
	other := testpki.NewRoot(f, "p256", "Other CA")
	for _, hash := range allHashes {
		f.Add(request(f, active, h.ca.Issuing(), hash))
		f.Add(request(f, held, h.ca.Issuing(), hash))
		f.Add(h.requestFor(f, big.NewInt(12345), hash))
	}
	f.Add(request(f, other.Cert, other.Cert, crypto.SHA1))
	f.Add(append(request(f, active, h.ca.Issuing(), crypto.SHA1), 0))
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})

	f.Fuzz(func(t *testing.T, raw []byte) {
		a := h.svc.Respond(context.Background(), raw)
		if len(a.DER) == 0 {
			t.Fatal("an empty answer")
		}
		resp, err := ocsp.ParseResponse(a.DER, h.ca.Issuing())
		if err != nil {
			var re ocsp.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("the answer does not parse: %v", err)
			}
			switch re.Status {
			case ocsp.Malformed, ocsp.Unauthorized, ocsp.TryLater, ocsp.InternalError:
			default:
				t.Fatalf("error status %v", re.Status)
			}
			if a.Cacheable() {
				t.Fatal("an error answer is cacheable")
			}
			return
		}
		req, err := ocsp.ParseRequest(raw)
		if err != nil {
			t.Fatalf("a request that does not parse (%v) got a successful answer", err)
		}
		if resp.SerialNumber.Cmp(req.SerialNumber) != 0 || resp.IssuerHash != req.HashAlgorithm {
			t.Fatalf("answer about %v under %v, asked about %v under %v", resp.SerialNumber, resp.IssuerHash, req.SerialNumber, req.HashAlgorithm)
		}
		if !a.Cacheable() {
			t.Fatal("a successful answer is not cacheable")
		}
		switch resp.Status {
		case ocsp.Good, ocsp.Revoked, ocsp.Unknown:
		default:
			t.Fatalf("status %d", resp.Status)
		}
	})
}

// TestNumbersGrowWhenTheDatabaseGoesBack: a database restored from an
// older backup, or a failover to a standby that lags, holds an older CRL
// than replicas served. The replica that served the newer one signs again
// over the stored one instead of failing its compare and swap forever, and
// a replica started afresh on the old data numbers past what was served,
// since numbers are at least thisUpdate's second.
func TestNumbersGrowWhenTheDatabaseGoesBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	issuer := h.ca.IssuerID()
	refresh(t, h.svc)
	h.clock.advance(time.Minute)
	h.st.setStatus("a1", iot.StatusRevoked, h.clock.Now())
	refresh(t, h.svc)
	served, _ := h.svc.CRL()
	history := h.st.stored(issuer)
	if len(history) != 2 {
		t.Fatalf("%d CRLs stored, want 2", len(history))
	}
	// The database goes back to its first CRL.
	older := history[0]
	h.st.mu.Lock()
	h.st.crl[issuer] = &older
	h.st.mu.Unlock()

	h.clock.advance(time.Second)
	h.st.setStatus("b2", iot.StatusRevoked, h.clock.Now())
	refresh(t, h.svc)
	after, list := h.served(t, h.svc)
	if after.Number <= served.Number || len(list.RevokedCertificateEntries) != 2 {
		t.Fatalf("after the database went back: CRL %d with %d entries, want above %d with 2", after.Number, len(list.RevokedCertificateEntries), served.Number)
	}
	if stored, err := h.st.CRL(context.Background(), issuer); err != nil || stored.Number != after.Number {
		t.Fatalf("stored CRL %v (%v), want %d", stored, err, after.Number)
	}

	// A fresh replica on data restored to the first CRL.
	h.st.mu.Lock()
	h.st.crl[issuer] = &older
	h.st.mu.Unlock()
	h.clock.advance(time.Second)
	fresh := h.service(t, Options{})
	refresh(t, fresh)
	if c, list := h.served(t, fresh); c.Number <= after.Number || len(list.RevokedCertificateEntries) != 2 {
		t.Fatalf("a fresh replica serves CRL %d with %d entries, want one above the %d served before the restore, with 2",
			c.Number, len(list.RevokedCertificateEntries), after.Number)
	}
}

// TestUnknownAnswersAreRateLimited: anyone can ask about serials never
// issued, each costing a signature; past unknownRate a second the answer
// is the unsigned tryLater, and answers about known certificates go on.
func TestUnknownAnswersAreRateLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	active := h.issue(t)
	h.st.issue(serialOf(active))
	refresh(t, h.svc)
	statuses := map[string]int{}
	for i := range 3 * unknownRate {
		req := h.requestFor(t, big.NewInt(int64(0x7000+i)), crypto.SHA1)
		a := h.svc.Respond(context.Background(), req)
		switch _, err := ocsp.ParseResponse(a.DER, h.ca.Issuing()); {
		case err == nil:
			statuses["signed"]++
		case bytes.Equal(a.DER, ocsp.TryLaterErrorResponse):
			statuses["tryLater"]++
		default:
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	// The bucket holds unknownRate; the test may take a moment, in which
	// a few more drip in.
	if statuses["signed"] < unknownRate || statuses["signed"] > 2*unknownRate || statuses["tryLater"] == 0 {
		t.Fatalf("answers about %d unknown serials: %v, want about %d signed and the rest tryLater", 3*unknownRate, statuses, unknownRate)
	}
	if resp, _ := h.answer(t, h.svc, active, crypto.SHA1); resp.Status != ocsp.Good {
		t.Fatalf("a known certificate after the flood: status %d, want good", resp.Status)
	}
}

// TestARestoreUnderEveryReplicaKeepsNumbersGrowing: the whole database,
// statuses and CRL together, goes back to an older backup and every
// replica restarts. The stored CRL matches the stored statuses, yet a
// restarted replica signs anew, numbered from the clock, above what was
// served before the restore.
func TestARestoreUnderEveryReplicaKeepsNumbersGrowing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	issuer := h.ca.IssuerID()
	refresh(t, h.svc)
	backup := h.st.stored(issuer)[0] // the CRL of an empty list
	h.clock.advance(time.Minute)
	h.st.setStatus("a1", iot.StatusRevoked, h.clock.Now())
	refresh(t, h.svc)
	served, _ := h.svc.CRL()

	// The restore: the statuses and the CRL as they were at the backup.
	h.st.setStatus("a1", iot.StatusActive, h.clock.Now())
	h.st.mu.Lock()
	h.st.crl[issuer] = &backup
	h.st.mu.Unlock()
	h.clock.advance(time.Second)

	restarted := h.service(t, Options{})
	refresh(t, restarted)
	c, list := h.served(t, restarted)
	if c.Number <= served.Number {
		t.Fatalf("after the restore the CRL is numbered %d, not above the %d served before it", c.Number, served.Number)
	}
	if len(list.RevokedCertificateEntries) != 0 {
		t.Fatalf("the restored list has %d entries, want the backup's none", len(list.RevokedCertificateEntries))
	}
}
