package issuance

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

func TestSealedFileCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := Open(Options{Dir: dir, Algorithm: keys.ECDSAP256, Passphrase: "s3cret passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Dir: dir, Passphrase: "s3cret passphrase"})
	if err != nil || !a.Root().Equal(b.Root()) {
		t.Fatalf("reopening with the passphrase: %v", err)
	}
	if _, err := Open(Options{Dir: dir, Passphrase: "wrong"}); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Fatalf("a wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
}

// TestSharedCA has replicas start together on one database: one CA results,
// and every replica signs with it.
func TestSharedCA(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var wg sync.WaitGroup
	authorities := make([]*Authority, 4)
	for i := range authorities {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, err := OpenShared(context.Background(), st, Options{Algorithm: keys.ECDSAP256, Passphrase: "shared passphrase"})
			if err != nil {
				t.Error(err)
			}
			authorities[i] = a
		}(i)
	}
	wg.Wait()
	for _, a := range authorities[1:] {
		if a == nil || !a.Root().Equal(authorities[0].Root()) || !a.Issuing().Equal(authorities[0].Issuing()) {
			t.Fatal("replicas starting together made different CAs")
		}
	}
	if _, err := OpenShared(context.Background(), st, Options{Algorithm: keys.ECDSAP256, Passphrase: "wrong passphrase"}); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Fatalf("a wrong passphrase = %v", err)
	}
	if _, err := OpenShared(context.Background(), st, Options{Algorithm: keys.ECDSAP256, Passphrase: ""}); err == nil {
		t.Fatal("a shared CA without a passphrase was opened")
	}
}

// memKeeper is a shared database in memory.
type memKeeper struct {
	m       *store.CAMaterial
	rotated []store.IssuingCA
}

func (k *memKeeper) IssuingCAs(context.Context) ([]store.IssuingCA, error) { return k.rotated, nil }

func (k *memKeeper) AddIssuingCA(_ context.Context, ca store.IssuingCA) (int, error) {
	ca.Generation = len(k.rotated) + 2
	k.rotated = append(k.rotated, ca)
	return ca.Generation, nil
}

func (k *memKeeper) LoadCA(context.Context) (*store.CAMaterial, error) {
	if k.m == nil {
		return nil, store.ErrNotFound
	}
	return k.m, nil
}

func (k *memKeeper) StoreCA(_ context.Context, m *store.CAMaterial) (*store.CAMaterial, error) {
	if k.m == nil || !k.m.Complete() {
		k.m = m
	}
	return k.m, nil
}

// TestSharedCAGainsServerCA: a CA stored before the server CA existed gains
// one, signed by its root, and keeps its root and issuing CA.
func TestSharedCAGainsServerCA(t *testing.T) {
	k := &memKeeper{}
	a, err := OpenShared(context.Background(), k, Options{Algorithm: keys.ECDSAP256, Passphrase: "pass"})
	if err != nil {
		t.Fatal(err)
	}
	old := *k.m
	old.ServerCACertPEM, old.ServerCAKeySealed = nil, nil
	k.m = &old
	b, err := OpenShared(context.Background(), k, Options{Algorithm: keys.ECDSAP256, Passphrase: "pass"})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root().Equal(b.Root()) || !a.Issuing().Equal(b.Issuing()) || b.ServerCA().CheckSignatureFrom(a.Root()) != nil || !k.m.Complete() {
		t.Fatal("the stored CA did not gain a server CA signed by its root")
	}
}
