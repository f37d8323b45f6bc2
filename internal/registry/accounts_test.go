package registry_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/store"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// TestAccessKeyLookups: a key found is remembered for a minute, so a change
// made in the database by another process shows within that minute and no
// sooner; a key not found is not remembered, so one made meanwhile by
// another process is found at once.
func TestAccessKeyLookups(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	open := func() *sqlstore.Store {
		st, err := sqlstore.OpenSQLite(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	clk := &clock{t: time.Now()}
	reg := registry.New(registry.Options{Store: open(), Now: clk.now})
	other := open() // another process on the same database
	cred, err := reg.CreateAccount(ctx, "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(id string) (string, bool) {
		t.Helper()
		secret, account, found, err := reg.AccessKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if found && account != cred.AccountID {
			t.Fatalf("key %s: account %s, want %s", id, account, cred.AccountID)
		}
		return secret, found
	}

	if secret, found := lookup(cred.AccessKeyID); !found || secret != cred.SecretAccessKey {
		t.Fatalf("a new key: found %v, secret matches %v", found, secret == cred.SecretAccessKey)
	}
	if err := other.ReplaceAccessKeySecret(ctx, cred.AccessKeyID, cred.SecretAccessKey, "changed-elsewhere"); err != nil {
		t.Fatal(err)
	}
	clk.advance(59 * time.Second)
	if secret, _ := lookup(cred.AccessKeyID); secret != cred.SecretAccessKey {
		t.Errorf("within the minute the remembered secret should answer, got %q", secret)
	}
	clk.advance(time.Second)
	if secret, _ := lookup(cred.AccessKeyID); secret != "changed-elsewhere" {
		t.Errorf("after the minute the stored secret should answer, got %q", secret)
	}

	const later = "AKIALATERLATERLATER1"
	if _, found := lookup(later); found {
		t.Fatal("a key that does not exist was found")
	}
	if err := other.CreateAccessKey(ctx, store.AccessKey{ID: later, Secret: "made-elsewhere", AccountID: cred.AccountID, CreatedAt: clk.now()}); err != nil {
		t.Fatal(err)
	}
	if secret, found := lookup(later); !found || secret != "made-elsewhere" {
		t.Errorf("a key made after a failed lookup: found %v, secret %q", found, secret)
	}
}
