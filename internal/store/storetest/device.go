package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

func testCertificatesByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, scope := range []iot.Scope{scopeA, scopeB} {
		mustCreate(t, s, cert(scope, 1, base))
	}
	mustCreate(t, s, cert(scopeA, 2, base))
	got, err := s.CertificatesByID(ctx, cert(scopeA, 1, base).ID)
	if err != nil || len(got) != 2 || got[0].DER == nil {
		t.Fatalf("CertificatesByID = %d registrations, %v; want 2 with DER", len(got), err)
	}
	if got, err := s.CertificatesByID(ctx, cert(scopeA, 3, base).ID); err != nil || len(got) != 0 {
		t.Fatalf("an unknown ID has %d registrations, %v", len(got), err)
	}
	// CA certificates by subject in every scope.
	mustCreateCA(t, s, caCert(scopeA, 1, "shared", iot.ModeSNIOnly, base))
	mustCreateCA(t, s, caCert(scopeB, 2, "shared", iot.ModeSNIOnly, base))
	mustCreateCA(t, s, caCert(scopeB, 3, "other", iot.ModeSNIOnly, base))
	if all, err := s.CACertificatesBySubject(ctx, iot.Scope{}, "shared"); err != nil || len(all) != 2 {
		t.Fatalf("CACertificatesBySubject in every scope = %d, %v; want 2", len(all), err)
	}
}

func testProvisioningTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	expiry := base.Add(time.Hour)
	pending := cert(scopeA, 1, base)
	pending.Status = iot.StatusPendingActivation
	activated := cert(scopeA, 2, base)
	activated.Status = iot.StatusPendingActivation
	later := cert(scopeA, 3, base)
	later.Status = iot.StatusPendingActivation
	for i, c := range []*iot.Certificate{pending, activated, later} {
		at := expiry
		if c == later {
			at = expiry.Add(time.Hour)
		}
		if err := s.CreateProvisionedCertificate(ctx, c, store.ProvisioningToken{Hash: string(rune('a' + i)), ExpiresAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateProvisionedCertificate(ctx, pending, store.ProvisioningToken{Hash: "z", ExpiresAt: expiry}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("provisioning an existing certificate = %v, want ErrExists", err)
	}
	if _, err := s.UpdateCertificate(ctx, scopeA, activated.ID, func(c *iot.Certificate) error { c.Status = iot.StatusActive; return nil }); err != nil {
		t.Fatal(err)
	}
	if deleted, err := s.ExpireProvisioningTokens(ctx, expiry.Add(-time.Second)); err != nil || len(deleted) != 0 {
		t.Fatalf("before expiry: deleted %d, %v", len(deleted), err)
	}
	deleted, err := s.ExpireProvisioningTokens(ctx, expiry.Add(time.Second))
	if err != nil || len(deleted) != 1 || deleted[0].ID != pending.ID {
		t.Fatalf("at expiry: deleted %v, %v; want only the pending one", deleted, err)
	}
	if _, err := s.Certificate(ctx, scopeA, pending.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("the expired pending certificate is still there")
	}
	for _, c := range []*iot.Certificate{activated, later} {
		if _, err := s.Certificate(ctx, scopeA, c.ID); err != nil {
			t.Fatalf("%s was deleted: %v", c.ID, err)
		}
	}
	if deleted, err := s.ExpireProvisioningTokens(ctx, expiry.Add(2*time.Hour)); err != nil || len(deleted) != 1 || deleted[0].ID != later.ID {
		t.Fatalf("later expiry deleted %v, %v", deleted, err)
	}
}
