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
			a, err := OpenShared(context.Background(), st, keys.ECDSAP256, "shared passphrase", nil)
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
	if _, err := OpenShared(context.Background(), st, keys.ECDSAP256, "wrong passphrase", nil); !errors.Is(err, keys.ErrWrongPassphrase) {
		t.Fatalf("a wrong passphrase = %v", err)
	}
	if _, err := OpenShared(context.Background(), st, keys.ECDSAP256, "", nil); err == nil {
		t.Fatal("a shared CA without a passphrase was opened")
	}
}

// oldKeeper is a shared database whose CA was stored before the server CA
// existed.
type oldKeeper struct{ m *store.CAMaterial }

func (k *oldKeeper) LoadOrCreateCA(_ context.Context, complete func(*store.CAMaterial) (*store.CAMaterial, error)) (*store.CAMaterial, error) {
	if k.m.Complete() {
		return k.m, nil
	}
	m, err := complete(k.m)
	if err == nil {
		k.m = m
	}
	return m, err
}

func TestSharedCAGainsServerCA(t *testing.T) {
	var stored *store.CAMaterial
	a, err := OpenShared(context.Background(), keeperFunc(func(complete func(*store.CAMaterial) (*store.CAMaterial, error)) (*store.CAMaterial, error) {
		m, err := complete(nil)
		stored = m
		return m, err
	}), keys.ECDSAP256, "pass", nil)
	if err != nil {
		t.Fatal(err)
	}
	old := *stored
	old.ServerCACertPEM, old.ServerCAKeySealed = nil, nil
	k := &oldKeeper{m: &old}
	b, err := OpenShared(context.Background(), k, keys.ECDSAP256, "pass", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root().Equal(b.Root()) || !a.Issuing().Equal(b.Issuing()) || b.ServerCA().CheckSignatureFrom(a.Root()) != nil || !k.m.Complete() {
		t.Fatal("the stored CA did not gain a server CA signed by its root")
	}
}

type keeperFunc func(func(*store.CAMaterial) (*store.CAMaterial, error)) (*store.CAMaterial, error)

func (f keeperFunc) LoadOrCreateCA(_ context.Context, complete func(*store.CAMaterial) (*store.CAMaterial, error)) (*store.CAMaterial, error) {
	return f(complete)
}
