package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// RunReplicas checks the invariants that must hold when several fleetca
// replicas share one database: newStores returns two stores on one new, empty
// database. The suite closes them.
func RunReplicas(t *testing.T, newStores func(t *testing.T) (store.Store, store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"NoLostUpdates", replicaUpdates},
		{"CASubjectLimit", replicaSubjectLimit},
		{"OneProviderOneToken", replicaProviders},
		{"OneRegistrationCode", replicaRegistrationCodes},
		{"FirstAccountOnce", replicaFirstAccount},
		{"PagingWhileInserting", replicaPaging},
		{"OneCAWhenStartingTogether", replicaCAKeeper},
		{"CRLNumbers", replicaCRLNumbers},
		{"PolicyVersions", replicaPolicyVersions},
		{"PolicyAttachments", replicaPolicyAttachments},
		{"ExclusiveThingPrincipal", replicaExclusiveThing},
		{"ProvisionOneThingOnePolicy", replicaProvision},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newStores(t)
			t.Cleanup(func() {
				if err := errors.Join(a.Close(), b.Close()); err != nil {
					t.Error(err)
				}
			})
			tc.fn(t, a, b)
		})
	}
}

// both runs f n times on each store at once.
func both(a, b store.Store, n int, f func(s store.Store, i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		for _, s := range []store.Store{a, b} {
			wg.Add(1)
			go func(s store.Store, i int) {
				defer wg.Done()
				f(s, i)
			}(s, i)
		}
	}
	wg.Wait()
}

func replicaUpdates(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, a, c)
	const n = 25
	both(a, b, n, func(s store.Store, _ int) {
		if _, err := s.UpdateCertificate(ctx, scopeA, c.ID, func(c *iot.Certificate) error {
			c.CustomerVersion++
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	got, err := b.Certificate(ctx, scopeA, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CustomerVersion != 1+2*n {
		t.Fatalf("customer version %d after %d increments from two replicas: updates were lost", got.CustomerVersion, 2*n)
	}
}

func replicaSubjectLimit(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const limit = 4
	var mu sync.Mutex
	stored := 0
	both(a, b, 6, func(s store.Store, i int) {
		n := i
		if s == b {
			n += 100
		}
		err := s.CreateCACertificate(ctx, caCert(scopeA, n, "contested", iot.ModeSNIOnly, base), nil, limit)
		if err == nil {
			mu.Lock()
			stored++
			mu.Unlock()
		} else if !errors.Is(err, store.ErrLimit) {
			t.Error(err)
		}
	})
	if stored != limit {
		t.Fatalf("%d CAs of one subject stored by two replicas, limit %d", stored, limit)
	}
}

func replicaProviders(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	var mu sync.Mutex
	created, replayed := 0, 0
	both(a, b, 8, func(s store.Store, i int) {
		name, token := "same", store.ClientToken{Value: "shared-token", Hash: "h"}
		if i%2 == 1 {
			name, token = fmt.Sprint("other-", i), store.ClientToken{Value: fmt.Sprint("token-", i), Hash: "o"}
		}
		r, err := s.CreateCertificateProvider(ctx, provider(scopeA, name), nil, token)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && r:
			replayed++
		case err == nil:
			created++
		case errors.Is(err, store.ErrLimit), errors.Is(err, store.ErrExists), errors.Is(err, store.ErrTokenMismatch):
		default:
			t.Error(err)
		}
	})
	if created != 1 {
		t.Fatalf("%d providers created by two replicas in one scope, want 1", created)
	}
	p, err := a.ScopeCertificateProvider(ctx, scopeA)
	if err != nil {
		t.Fatal(err)
	}
	// If the shared token's request won, all its other tries replayed.
	if p.Name == "same" && replayed != 7 {
		t.Fatalf("the winning token replayed %d times, want 7", replayed)
	}
}

func replicaRegistrationCodes(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	var mu sync.Mutex
	codes := map[string]bool{}
	both(a, b, 10, func(s store.Store, i int) {
		c, err := s.RegistrationCode(ctx, scopeA, fmt.Sprint("code-", i, "-", s == a))
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		codes[c] = true
		mu.Unlock()
	})
	if len(codes) != 1 {
		t.Fatalf("two replicas handed out %d registration codes for one scope", len(codes))
	}
}

func replicaFirstAccount(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	var mu sync.Mutex
	ids := map[string]bool{}
	made := 0
	both(a, b, 5, func(s store.Store, i int) {
		id := fmt.Sprintf("%012d", 100000000000+i*2+map[bool]int{true: 1}[s == b])
		acct, created, err := s.EnsureFirstAccount(ctx, store.Account{ID: id, CreatedAt: base},
			store.AccessKey{ID: "AKIA" + id, Secret: "s", AccountID: id, CreatedAt: base})
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		ids[acct.ID] = true
		if created {
			made++
		}
		mu.Unlock()
	})
	if len(ids) != 1 || made != 1 {
		t.Fatalf("replicas starting together made %d first accounts: %v", made, ids)
	}
}

// replicaPaging lists through one replica while the other inserts: every
// certificate that existed before the listing began appears exactly once.
func replicaPaging(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const n = 120
	existing := map[string]bool{}
	for i := 0; i < n; i++ {
		c := cert(scopeA, i, base.Add(time.Duration(i)*time.Millisecond))
		mustCreate(t, a, c)
		existing[c.ID] = true
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := n; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// New certificates land before, between and after the pages.
			at := base.Add(time.Duration(i%n)*time.Millisecond + time.Microsecond)
			if err := a.CreateCertificate(ctx, cert(scopeA, i, at)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	seen := map[string]int{}
	var after *store.Cursor
	for {
		page, err := b.ListCertificates(ctx, store.CertificateQuery{Scope: scopeA, Limit: 7, Ascending: true, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Certificates {
			seen[c.ID]++
		}
		if page.Next == nil {
			break
		}
		after = page.Next
	}
	close(stop)
	wg.Wait()
	for id := range existing {
		if seen[id] != 1 {
			t.Fatalf("%s listed %d times while another replica inserted", id, seen[id])
		}
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("%s listed %d times", id, k)
		}
	}
}
