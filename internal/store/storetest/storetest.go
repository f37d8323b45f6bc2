// Package storetest is the conformance suite every store backend runs:
//
//	storetest.Run(t, func(t *testing.T) store.Store { ... })
//
// newStore must return a new, empty store each time it is called; the suite
// closes it.
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

// Run runs the suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"AccessKeys", testAccessKeys},
		{"CreateAndGetCertificate", testCreateAndGet},
		{"CertificateScopes", testScopes},
		{"ListCertificatesPaging", testListPaging},
		{"UpdateCertificate", testUpdate},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"DeleteCertificate", testDelete},
		{"ConcurrentCreates", testConcurrentCreates},
		{"CACreateAndGet", testCACreateAndGet},
		{"CAModesAcrossAccounts", testCAModesAcrossAccounts},
		{"CASubjectLimit", testCASubjectLimit},
		{"CAListAndUpdate", testCAListAndUpdate},
		{"CADelete", testCADelete},
		{"ListCertificatesByCA", testListByCA},
		{"RegistrationCodes", testRegistrationCodes},
		{"Tags", testTags},
		{"CertificateProviders", testProviders},
		{"ConcurrentProviderCreates", testConcurrentProviderCreates},
		{"CertificatesByID", testCertificatesByID},
		{"CAKeeper", testCAKeeper},
		{"RootPin", testRootPin},
		{"ProvisioningTokens", testProvisioningTokens},
		{"UnusableCertificates", testUnusableCertificates},
		{"CRLs", testCRLs},
		{"Policies", testPolicies},
		{"ListPolicies", testListPolicies},
		{"PolicyAttachments", testPolicyAttachments},
		{"Things", testThings},
		{"ListThings", testListThings},
		{"UpdateThing", testUpdateThing},
		{"DeleteThing", testDeleteThing},
		{"ThingPrincipals", testThingPrincipals},
		{"AttachmentSelection", testAttachmentSelection},
		{"StatusChanges", testStatusChanges},
		{"CertificatesOnThings", testCertificatesOnThings},
		{"ThingTypes", testThingTypes},
		{"ListThingTypes", testListThingTypes},
		{"DeprecateThingType", testDeprecateThingType},
		{"DeleteThingType", testDeleteThingType},
		{"ThingTypeTags", testThingTypeTags},
		{"ConnectionGrants", testConnectionGrants},
		{"Changes", testChanges},
		{"ProvisioningTemplates", testProvisioningTemplates},
		{"ListProvisioningTemplates", testListProvisioningTemplates},
		{"UpdateProvisioningTemplate", testUpdateProvisioningTemplate},
		{"DeleteProvisioningTemplate", testDeleteProvisioningTemplate},
		{"ProvisioningTemplateVersions", testProvisioningTemplateVersions},
		{"OwnershipTokens", testOwnershipTokens},
		{"Provision", testProvision},
		{"ProvisionAllOrNothing", testProvisionAllOrNothing},
		{"ProvisionExistingThing", testProvisionExistingThing},
		{"ProvisionNewCertificate", testProvisionNewCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var (
	scopeA = iot.Scope{AccountID: "111111111111", Region: "us-east-1"}
	scopeB = iot.Scope{AccountID: "222222222222", Region: "us-east-1"}
	scopeC = iot.Scope{AccountID: "111111111111", Region: "eu-west-1"}
)

// base is a fixed instant with whole microseconds, the precision stores keep.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// cert returns a distinct certificate in the scope; n varies its ID and DER.
func cert(scope iot.Scope, n int, created time.Time) *iot.Certificate {
	der := []byte(fmt.Sprintf("not really DER %d", n))
	return &iot.Certificate{
		Scope:           scope,
		ID:              iot.CertificateID(der),
		Status:          iot.StatusInactive,
		Mode:            iot.ModeDefault,
		DER:             der,
		OwnedBy:         scope.AccountID,
		CreatedAt:       created,
		LastModifiedAt:  created,
		CustomerVersion: 1,
		GenerationID:    fmt.Sprintf("gen-%d", n),
		NotBefore:       created.Add(-2 * time.Minute),
		NotAfter:        time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
	}
}

func mustCreate(t *testing.T, s store.Store, c *iot.Certificate) {
	t.Helper()
	if err := s.CreateCertificate(t.Context(), c); err != nil {
		t.Fatalf("CreateCertificate(%s): %v", c.ID, err)
	}
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"222222222222", "111111111111"} {
		if err := s.CreateAccount(ctx, store.Account{ID: id, CreatedAt: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatalf("CreateAccount(%s): %v", id, err)
		}
	}
	if err := s.CreateAccount(ctx, store.Account{ID: "111111111111", CreatedAt: base}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateAccount of an existing ID = %v, want ErrExists", err)
	}
	got, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "222222222222" || got[1].ID != "111111111111" || !got[0].CreatedAt.Equal(base) {
		t.Fatalf("Accounts = %+v, want the two accounts oldest first", got)
	}
}

func testAccessKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.CreateAccount(ctx, store.Account{ID: "111111111111", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	k := store.AccessKey{ID: "AKIAEXAMPLE", Secret: "s3cret", AccountID: "111111111111", CreatedAt: base}
	if err := s.CreateAccessKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessKey(ctx, k); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateAccessKey twice = %v, want ErrExists", err)
	}
	orphan := store.AccessKey{ID: "AKIAORPHAN", Secret: "x", AccountID: "999999999999", CreatedAt: base}
	if err := s.CreateAccessKey(ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateAccessKey for a missing account = %v, want ErrNotFound", err)
	}
	got, err := s.AccessKey(ctx, "AKIAEXAMPLE")
	if err != nil {
		t.Fatal(err)
	}
	if got != k {
		t.Fatalf("AccessKey = %+v, want %+v", got, k)
	}
	if _, err := s.AccessKey(ctx, "AKIAORPHAN"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AccessKey of an unknown ID = %v, want ErrNotFound", err)
	}
}

func testCreateAndGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	c.CACertificateID = iot.CertificateID([]byte("ca"))
	c.Mode = iot.ModeSNIOnly
	c.PreviousOwnedBy = "333333333333"
	mustCreate(t, s, c)
	got, err := s.Certificate(ctx, scopeA, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !equalCertificates(got, c) {
		t.Fatalf("Certificate =\n%+v\nwant\n%+v", got, c)
	}
	if err := s.CreateCertificate(ctx, cert(scopeA, 1, base.Add(time.Second))); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateCertificate of an existing ID = %v, want ErrExists", err)
	}
	if _, err := s.Certificate(ctx, scopeA, cert(scopeA, 2, base).ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Certificate of an unknown ID = %v, want ErrNotFound", err)
	}
}

func equalCertificates(a, b *iot.Certificate) bool {
	return a.Scope == b.Scope && a.ID == b.ID && a.Status == b.Status && a.Mode == b.Mode &&
		a.CACertificateID == b.CACertificateID && string(a.DER) == string(b.DER) &&
		a.OwnedBy == b.OwnedBy && a.PreviousOwnedBy == b.PreviousOwnedBy &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastModifiedAt.Equal(b.LastModifiedAt) &&
		a.CustomerVersion == b.CustomerVersion && a.GenerationID == b.GenerationID &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter)
}

// testScopes checks that one certificate can live in several scopes and that
// no scope sees another's.
func testScopes(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, scope := range []iot.Scope{scopeA, scopeB, scopeC} {
		mustCreate(t, s, cert(scope, 1, base))
	}
	mustCreate(t, s, cert(scopeA, 2, base))
	id2 := cert(scopeA, 2, base).ID
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if _, err := s.Certificate(ctx, scope, id2); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%v sees a certificate of %v: %v", scope, scopeA, err)
		}
		page, err := s.ListCertificates(ctx, store.CertificateQuery{Scope: scope, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Certificates) != 1 {
			t.Errorf("%v lists %d certificates, want 1", scope, len(page.Certificates))
		}
	}
}

func testListPaging(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 137
	want := map[string]time.Time{}
	for i := 0; i < n; i++ {
		// Groups of three share a creation time, so the ID must break ties.
		c := cert(scopeA, i, base.Add(time.Duration(i/3)*time.Millisecond))
		mustCreate(t, s, c)
		want[c.ID] = c.CreatedAt
	}
	mustCreate(t, s, cert(scopeB, 1000, base))
	for _, ascending := range []bool{false, true} {
		for _, limit := range []int{1, 7, 25, 250} {
			seen := map[string]bool{}
			var prev *iot.Certificate
			var after *store.Cursor
			for pages := 0; ; pages++ {
				if pages > n+1 {
					t.Fatalf("ascending=%v limit=%d: paging does not end", ascending, limit)
				}
				page, err := s.ListCertificates(ctx, store.CertificateQuery{Scope: scopeA, Limit: limit, Ascending: ascending, After: after})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Certificates) > limit {
					t.Fatalf("page of %d certificates, limit %d", len(page.Certificates), limit)
				}
				for i := range page.Certificates {
					c := &page.Certificates[i]
					if seen[c.ID] {
						t.Fatalf("ascending=%v limit=%d: %s listed twice", ascending, limit, c.ID)
					}
					seen[c.ID] = true
					if !want[c.ID].Equal(c.CreatedAt) || c.Status != iot.StatusInactive || c.Mode != iot.ModeDefault || c.Scope != scopeA {
						t.Fatalf("listed certificate %+v does not match what was stored", c)
					}
					if prev != nil && !inOrder(prev, c, ascending) {
						t.Fatalf("ascending=%v: %s (%v) listed after %s (%v)", ascending, c.ID, c.CreatedAt, prev.ID, prev.CreatedAt)
					}
					prev = c
				}
				if page.Next == nil {
					break
				}
				// Round-trip the cursor through its wire form, as the API does.
				cur, err := store.ParseMarker(page.Next.Marker())
				if err != nil {
					t.Fatal(err)
				}
				after = &cur
			}
			if len(seen) != n {
				t.Fatalf("ascending=%v limit=%d: listed %d certificates, want %d", ascending, limit, len(seen), n)
			}
		}
	}
	// A page that ends exactly at the last certificate says no more follow.
	page, err := s.ListCertificates(ctx, store.CertificateQuery{Scope: scopeB, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Certificates) != 1 || page.Next != nil {
		t.Fatalf("last page = %d certificates, next %v; want 1 and none", len(page.Certificates), page.Next)
	}
}

func inOrder(a, b *iot.Certificate, ascending bool) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt) == ascending
	}
	return (a.ID < b.ID) == ascending
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	later := base.Add(time.Hour)
	got, err := s.UpdateCertificate(ctx, scopeA, c.ID, func(c *iot.Certificate) error {
		c.Status = iot.StatusActive
		c.LastModifiedAt = later
		c.CustomerVersion++
		c.GenerationID = "gen-new"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != iot.StatusActive || got.CustomerVersion != 2 {
		t.Fatalf("UpdateCertificate returned %+v", got)
	}
	stored, err := s.Certificate(ctx, scopeA, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != iot.StatusActive || stored.CustomerVersion != 2 || stored.GenerationID != "gen-new" ||
		!stored.LastModifiedAt.Equal(later) || !stored.CreatedAt.Equal(base) || string(stored.DER) != string(c.DER) {
		t.Fatalf("stored after update: %+v", stored)
	}
	refuse := errors.New("refused")
	_, err = s.UpdateCertificate(ctx, scopeA, c.ID, func(c *iot.Certificate) error {
		c.Status = iot.StatusRevoked
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("UpdateCertificate with a refusing change = %v, want its error", err)
	}
	if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || stored.Status != iot.StatusActive {
		t.Fatalf("a refused change was written: %+v, %v", stored, err)
	}
	if _, err := s.UpdateCertificate(ctx, scopeB, c.ID, func(*iot.Certificate) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateCertificate in another scope = %v, want ErrNotFound", err)
	}
}

func testConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	const workers = 40
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateCertificate(ctx, scopeA, c.ID, func(c *iot.Certificate) error {
				c.CustomerVersion++
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	stored, err := s.Certificate(ctx, scopeA, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.CustomerVersion != 1+workers {
		t.Fatalf("customer version %d after %d concurrent increments from 1: updates were lost", stored.CustomerVersion, workers)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	refuse := errors.New("refused")
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, func(*iot.Certificate) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("DeleteCertificate with a refusing check = %v", err)
	}
	if _, err := s.Certificate(ctx, scopeA, c.ID); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}
	var checked *iot.Certificate
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, func(c *iot.Certificate) error { checked = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if checked == nil || checked.ID != c.ID || checked.Status != c.Status {
		t.Fatalf("check saw %+v", checked)
	}
	if _, err := s.Certificate(ctx, scopeA, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Certificate after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, func(*iot.Certificate) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteCertificate = %v, want ErrNotFound", err)
	}
}

// testConcurrentCreates makes many writes at once, some of them duplicates, so
// that a group-committing backend batches them: every distinct certificate
// must be stored once, and each duplicate must fail alone.
func testConcurrentCreates(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := 0; i < 2*n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.CreateCertificate(ctx, cert(scopeA, i%n, base.Add(time.Duration(i%n)*time.Microsecond)))
		}(i)
	}
	wg.Wait()
	failures := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, store.ErrExists):
			failures++
		default:
			t.Fatalf("CreateCertificate: %v", err)
		}
	}
	if failures != n {
		t.Fatalf("%d duplicate creates failed, want %d", failures, n)
	}
	page, err := s.ListCertificates(ctx, store.CertificateQuery{Scope: scopeA, Limit: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Certificates) != n {
		t.Fatalf("%d certificates stored, want %d", len(page.Certificates), n)
	}
}
