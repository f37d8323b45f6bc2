package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

const (
	issuer1 = "1111111111111111111111111111111111111111111111111111111111111111"
	issuer2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

// signed is cert n as if fleetca's issuer had signed it, with a serial.
func signed(scope iot.Scope, n int, issuer string, status iot.Status) *iot.Certificate {
	c := cert(scope, n, base.Add(time.Duration(n)*time.Second))
	c.Status, c.IssuerID, c.Serial = status, issuer, fmt.Sprintf("%x", 0x1000+n)
	return c
}

func unusable(t *testing.T, s store.Store, issuer string, now time.Time) map[string]store.UnusableCertificate {
	t.Helper()
	list, err := s.UnusableCertificates(t.Context(), issuer, now)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.UnusableCertificate{}
	for i, u := range list {
		if i > 0 && list[i-1].Serial > u.Serial {
			t.Errorf("UnusableCertificates not sorted by serial: %s after %s", u.Serial, list[i-1].Serial)
		}
		m[u.Serial] = u
	}
	return m
}

func fingerprint(t *testing.T, s store.Store, issuer string) string {
	t.Helper()
	f, err := s.UnusableFingerprint(t.Context(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testUnusableCertificates(t *testing.T, s store.Store) {
	ctx := t.Context()
	active := signed(scopeA, 1, issuer1, iot.StatusActive)
	inactive := signed(scopeA, 2, issuer1, iot.StatusInactive)
	revoked := signed(scopeB, 3, issuer1, iot.StatusRevoked)
	pending := signed(scopeA, 4, issuer1, iot.StatusPendingActivation)
	expired := signed(scopeA, 5, issuer1, iot.StatusRevoked)
	expired.NotAfter = base.Add(time.Hour)
	other := signed(scopeA, 6, issuer2, iot.StatusRevoked)
	registered := cert(scopeA, 7, base) // not signed by fleetca: no issuer
	registered.Status = iot.StatusRevoked
	before := fingerprint(t, s, issuer1)
	for _, c := range []*iot.Certificate{active, inactive, revoked, pending, expired, other, registered} {
		mustCreate(t, s, c)
	}
	got, err := s.Certificate(ctx, scopeA, inactive.ID)
	if err != nil || got.IssuerID != issuer1 || got.Serial != inactive.Serial {
		t.Fatalf("Certificate keeps issuer %q serial %q (%v), want %q %q", got.IssuerID, got.Serial, err, issuer1, inactive.Serial)
	}
	list := unusable(t, s, issuer1, base.Add(2*time.Hour))
	want := map[string]iot.Status{inactive.Serial: iot.StatusInactive, revoked.Serial: iot.StatusRevoked, pending.Serial: iot.StatusPendingActivation}
	if len(list) != len(want) {
		t.Fatalf("UnusableCertificates = %v, want the serials of %v", list, want)
	}
	for serial, status := range want {
		if u, ok := list[serial]; !ok || u.Status != status || u.Deleted {
			t.Errorf("serial %s: %+v, want status %s, not deleted", serial, u, status)
		}
	}
	if u := list[inactive.Serial]; !u.Since.Equal(inactive.LastModifiedAt) {
		t.Errorf("Since = %v, want the last change %v", u.Since, inactive.LastModifiedAt)
	}
	if _, ok := unusable(t, s, issuer1, base)[expired.Serial]; !ok {
		t.Errorf("an unexpired REVOKED certificate is not listed")
	}
	if l := unusable(t, s, issuer2, base); len(l) != 1 {
		t.Errorf("issuer2 lists %v, want only its own certificate", l)
	}
	afterCreate := fingerprint(t, s, issuer1)
	if afterCreate == before {
		t.Errorf("the fingerprint did not change when unusable certificates were created")
	}

	// Activation takes a certificate off; a change of status within the
	// set and a deletion both move the fingerprint.
	at := base.Add(time.Minute)
	steps := []struct {
		name string
		do   func() error
	}{
		{"activate", func() error { return setStatus(t, s, inactive, iot.StatusActive, at) }},
		{"revoke a pending one", func() error { return setStatus(t, s, pending, iot.StatusRevoked, at.Add(time.Second)) }},
		{"deactivate", func() error { return setStatus(t, s, active, iot.StatusInactive, at.Add(2*time.Second)) }},
		{"delete", func() error {
			return s.DeleteCertificate(ctx, scopeA, active.ID, false, func(*iot.Certificate) error { return nil })
		}},
	}
	last := afterCreate
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if f := fingerprint(t, s, issuer1); f == last {
			t.Errorf("%s did not change the fingerprint (%s)", step.name, f)
		} else {
			last = f
		}
	}
	list = unusable(t, s, issuer1, base.Add(2*time.Hour))
	if _, ok := list[inactive.Serial]; ok {
		t.Errorf("an ACTIVE certificate is listed")
	}
	if u := list[pending.Serial]; u.Status != iot.StatusRevoked {
		t.Errorf("revoked pending certificate: %+v", u)
	}
	// A deleted certificate stays, with the status it had, until it expires.
	if u, ok := list[active.Serial]; !ok || !u.Deleted || u.Status != iot.StatusInactive || !u.Since.Equal(at.Add(2*time.Second)) {
		t.Errorf("deleted certificate: %+v (listed %v), want deleted INACTIVE since %v", u, ok, at.Add(2*time.Second))
	}
	if _, ok := unusable(t, s, issuer1, active.NotAfter.Add(time.Second))[active.Serial]; ok {
		t.Errorf("a deleted certificate is listed after it expired")
	}
	for serial, want := range map[string]bool{active.Serial: true, inactive.Serial: true, "abcdef": false, other.Serial: false} {
		if got, err := s.IssuedSerial(ctx, issuer1, serial); err != nil || got != want {
			t.Errorf("IssuedSerial(%s) = %v, %v; want %v", serial, got, err, want)
		}
	}
	// Fleet provisioning's expiry deletes too, and remembers as deletion
	// does; it takes the certificate's policy attachments with it.
	prov := signed(scopeA, 8, issuer1, iot.StatusPendingActivation)
	if err := s.CreateProvisionedCertificate(ctx, prov, store.ProvisioningToken{Hash: "h8", ExpiresAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "provisioned", base), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPolicyToCertificate(ctx, scopeA, "provisioned", prov.ID, 10, base); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExpireProvisioningTokens(ctx, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, ok := unusable(t, s, issuer1, base)[prov.Serial]; !ok || !u.Deleted || u.Status != iot.StatusPendingActivation {
		t.Errorf("expired provisioning certificate: %+v (listed %v)", u, ok)
	}
	if targets, _, err := s.ListPolicyTargets(ctx, scopeA, "provisioned", "", 10); err != nil || len(targets) != 0 {
		t.Errorf("an expired certificate is still a policy target: %v (%v)", targets, err)
	}
}

func setStatus(t *testing.T, s store.Store, c *iot.Certificate, status iot.Status, at time.Time) error {
	_, err := s.UpdateCertificate(t.Context(), c.Scope, c.ID, func(c *iot.Certificate) error {
		c.Status, c.LastModifiedAt = status, at
		return nil
	})
	return err
}

func testCRLs(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.CRL(ctx, issuer1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CRL before any = %v, want ErrNotFound", err)
	}
	crl := func(n int64) *store.CRL {
		at := base.Add(time.Duration(n%100000) * time.Second)
		return &store.CRL{IssuerID: issuer1, Number: n, ThisUpdate: at, NextUpdate: at.Add(7 * 24 * time.Hour), Digest: fmt.Sprintf("digest-%d", n), DER: []byte(fmt.Sprintf("der %d", n))}
	}
	if err := s.SaveCRL(ctx, crl(2), 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SaveCRL over CRL 1 with none stored = %v, want ErrConflict", err)
	}
	// Numbers may jump (replicas number from the clock), never go back.
	prev := int64(0)
	for _, n := range []int64{1, 2, 1796000000} {
		if err := s.SaveCRL(ctx, crl(n), prev); err != nil {
			t.Fatalf("SaveCRL(%d over %d): %v", n, prev, err)
		}
		got, err := s.CRL(ctx, issuer1)
		if err != nil {
			t.Fatal(err)
		}
		want := crl(n)
		if got.Number != n || got.Digest != want.Digest || !bytes.Equal(got.DER, want.DER) ||
			!got.ThisUpdate.Equal(want.ThisUpdate) || !got.NextUpdate.Equal(want.NextUpdate) {
			t.Fatalf("CRL = %+v, want %+v", got, want)
		}
		prev = n
	}
	for _, stale := range []struct{ n, prev int64 }{{1796000001, 2}, {1796000001, 0}, {1796000001, 1795999999}} {
		if err := s.SaveCRL(ctx, crl(stale.n), stale.prev); !errors.Is(err, store.ErrConflict) {
			t.Errorf("SaveCRL(%d over %d) with %d stored = %v, want ErrConflict", stale.n, stale.prev, prev, err)
		}
	}
	if err := s.SaveCRL(ctx, crl(prev), prev); err == nil {
		t.Errorf("SaveCRL of a number not above the stored one succeeded")
	}
	if _, err := s.CRL(ctx, issuer2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another issuer's CRL = %v, want ErrNotFound", err)
	}
}

// replicaCRLNumbers: replicas storing CRLs at once never store two under
// one number, and every number follows the one before.
func replicaCRLNumbers(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const rounds = 20
	won := make([][]int64, 2)
	both(a, b, 1, func(s store.Store, _ int) {
		who := 0
		if s == b {
			who = 1
		}
		for range rounds {
			cur, err := s.CRL(ctx, issuer1)
			prev := int64(0)
			if err == nil {
				prev = cur.Number
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Error(err)
				return
			}
			next := prev + 1
			c := &store.CRL{IssuerID: issuer1, Number: next, ThisUpdate: base, NextUpdate: base.Add(time.Hour),
				Digest: fmt.Sprintf("%d-%d", who, next), DER: []byte{byte(who), byte(next)}}
			switch err := s.SaveCRL(ctx, c, prev); {
			case err == nil:
				won[who] = append(won[who], next)
			case !errors.Is(err, store.ErrConflict):
				t.Error(err)
				return
			}
		}
	})
	seen := map[int64]bool{}
	for _, numbers := range won {
		for _, n := range numbers {
			if seen[n] {
				t.Fatalf("number %d stored by both replicas", n)
			}
			seen[n] = true
		}
	}
	final, err := a.CRL(ctx, issuer1)
	if err != nil {
		t.Fatal(err)
	}
	if int(final.Number) != len(seen) {
		t.Fatalf("final number %d after %d successful saves: a number was skipped or reused", final.Number, len(seen))
	}
	for n := int64(1); n <= final.Number; n++ {
		if !seen[n] {
			t.Fatalf("number %d was never stored", n)
		}
	}
}
