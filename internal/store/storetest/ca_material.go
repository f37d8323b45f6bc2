package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fleetca/fleetca/internal/store"
)

// material is a CA as the store sees it: opaque bytes, distinct per tag.
func material(tag string) *store.CAMaterial {
	b := func(part string) []byte { return []byte(fmt.Sprintf("%s %s", tag, part)) }
	return &store.CAMaterial{
		RootCertPEM: b("root"), IssuingCertPEM: b("issuing"), RootKeySealed: b("root key"),
		IssuingKeySealed: b("issuing key"), ServerCACertPEM: b("server CA"), ServerCAKeySealed: b("server CA key"),
	}
}

func sameCA(a, b *store.CAMaterial) bool {
	return a != nil && b != nil && bytes.Equal(a.RootCertPEM, b.RootCertPEM) && bytes.Equal(a.IssuingCertPEM, b.IssuingCertPEM) &&
		bytes.Equal(a.RootKeySealed, b.RootKeySealed) && bytes.Equal(a.IssuingKeySealed, b.IssuingKeySealed) &&
		bytes.Equal(a.ServerCACertPEM, b.ServerCACertPEM) && bytes.Equal(a.ServerCAKeySealed, b.ServerCAKeySealed)
}

func testCAKeeper(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.LoadCA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoadCA of an empty store: %v, want ErrNotFound", err)
	}
	incomplete := material("half")
	incomplete.ServerCAKeySealed = nil
	if _, err := s.StoreCA(ctx, incomplete); err == nil {
		t.Fatal("StoreCA took an incomplete CA")
	}
	if _, err := s.LoadCA(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a refused StoreCA: %v, want ErrNotFound", err)
	}
	first := material("first")
	got, err := s.StoreCA(ctx, first)
	if err != nil || !sameCA(got, first) {
		t.Fatalf("StoreCA(first) = %v, %v", got, err)
	}
	// The first CA stays: a second is never stored over it.
	got, err = s.StoreCA(ctx, material("second"))
	if err != nil || !sameCA(got, first) {
		t.Fatalf("StoreCA(second) = %v, %v; want the first CA back", got, err)
	}
	got, err = s.LoadCA(ctx)
	if err != nil || !sameCA(got, first) {
		t.Fatalf("LoadCA = %v, %v; want the first CA", got, err)
	}
}

// replicaCAKeeper: replicas starting together, each with a CA of its own
// made before it calls the store, end with one CA, the same for all.
func replicaCAKeeper(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const n = 4
	var mu sync.Mutex
	var stored []*store.CAMaterial
	var errs []error
	both(a, b, n, func(s store.Store, i int) {
		m, err := s.StoreCA(ctx, material(fmt.Sprintf("replica %p %d", s, i)))
		mu.Lock()
		defer mu.Unlock()
		stored, errs = append(stored, m), append(errs, err)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, m := range stored[1:] {
		if !sameCA(m, stored[0]) {
			t.Fatalf("replicas stored different CAs: %q and %q", m.RootCertPEM, stored[0].RootCertPEM)
		}
	}
	for _, s := range []store.Store{a, b} {
		got, err := s.LoadCA(ctx)
		if err != nil || !sameCA(got, stored[0]) {
			t.Fatalf("LoadCA = %v, %v; want the CA every replica was given", got, err)
		}
	}
}

func testRootPin(t *testing.T, s store.Store) {
	ctx := t.Context()
	if found, err := s.AnyCertificates(ctx); err != nil || found {
		t.Fatalf("AnyCertificates of an empty store = %v, %v", found, err)
	}
	mustCreate(t, s, cert(scopeB, 1, base))
	if found, err := s.AnyCertificates(ctx); err != nil || !found {
		t.Fatalf("AnyCertificates with one certificate = %v, %v", found, err)
	}
	if _, err := s.PinnedRoot(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PinnedRoot of an empty store: %v, want ErrNotFound", err)
	}
	if got, err := s.PinRoot(ctx, "first"); err != nil || got != "first" {
		t.Fatalf("PinRoot(first) = %q, %v", got, err)
	}
	// The first pin stays: data is never re-pinned to another root.
	if got, err := s.PinRoot(ctx, "second"); err != nil || got != "first" {
		t.Fatalf("PinRoot(second) = %q, %v; want first", got, err)
	}
	if got, err := s.PinnedRoot(ctx); err != nil || got != "first" {
		t.Fatalf("PinnedRoot = %q, %v; want first", got, err)
	}
}
