package storetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

func newPolicy(scope iot.Scope, name string, at time.Time) *iot.Policy {
	return &iot.Policy{Scope: scope, Name: name, DefaultDocument: `{"doc":"` + name + `"}`, CreatedAt: at, LastModifiedAt: at, GenerationID: "g-" + name}
}

func change(at time.Time, generation string, setAsDefault bool) store.PolicyChange {
	return store.PolicyChange{At: at, GenerationID: generation, SetAsDefault: setAsDefault}
}

func testPolicies(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newPolicy(scopeA, "sensors", base)
	if err := s.CreatePolicy(ctx, p, []iot.Tag{{Key: "team", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "sensors", base), nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second policy of one name = %v, want ErrExists", err)
	}
	if err := s.CreatePolicy(ctx, newPolicy(scopeB, "sensors", base), nil); err != nil {
		t.Fatalf("the same name in another account: %v", err)
	}
	got, err := s.Policy(ctx, scopeA, "sensors")
	if err != nil || got.DefaultVersionID != 1 || got.DefaultDocument != p.DefaultDocument || !got.CreatedAt.Equal(base) || got.GenerationID != "g-sensors" {
		t.Fatalf("Policy = %+v, %v", got, err)
	}
	if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypePolicy, ID: "sensors"}); err != nil || len(tags) != 1 {
		t.Fatalf("tags %v, %v", tags, err)
	}
	if _, err := s.Policy(ctx, scopeC, "sensors"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another region's policy = %v", err)
	}

	// Versions: IDs count up and are never reused; at most max.
	at := base.Add(time.Minute)
	v2, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", "doc 2", change(at, "g2", false), 5)
	if err != nil || v2.ID != 2 || v2.IsDefault {
		t.Fatalf("version 2 = %+v, %v", v2, err)
	}
	if got, _ := s.Policy(ctx, scopeA, "sensors"); got.DefaultVersionID != 1 || got.GenerationID != "g-sensors" {
		t.Fatalf("a version not set as default changed the policy: %+v", got)
	}
	v3, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", "doc 3", change(at, "g3", true), 5)
	if err != nil || v3.ID != 3 || !v3.IsDefault {
		t.Fatalf("version 3 = %+v, %v", v3, err)
	}
	if got, _ := s.Policy(ctx, scopeA, "sensors"); got.DefaultVersionID != 3 || got.DefaultDocument != "doc 3" || got.GenerationID != "g3" || !got.LastModifiedAt.Equal(at) {
		t.Fatalf("after a default version: %+v", got)
	}
	for i := 4; i <= 5; i++ {
		if _, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", fmt.Sprint("doc ", i), change(at, "g", false), 5); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", "doc 6", change(at, "g", false), 5); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a sixth version = %v, want ErrLimit", err)
	}
	versions, err := s.ListPolicyVersions(ctx, scopeA, "sensors")
	if err != nil || len(versions) != 5 || versions[0].ID != 5 || versions[4].ID != 1 {
		t.Fatalf("versions %+v, %v; want 5..1", versions, err)
	}
	for _, v := range versions {
		if v.IsDefault != (v.ID == 3) {
			t.Errorf("version %d IsDefault %v", v.ID, v.IsDefault)
		}
	}
	if v, err := s.PolicyVersion(ctx, scopeA, "sensors", 2); err != nil || v.Document != "doc 2" || v.IsDefault || !v.CreatedAt.Equal(at) {
		t.Fatalf("PolicyVersion 2 = %+v, %v", v, err)
	}
	if _, err := s.PolicyVersion(ctx, scopeA, "sensors", 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing version = %v", err)
	}

	// Deleting versions: check sees the version; a refusal changes nothing.
	refuse := errors.New("refused")
	if err := s.DeletePolicyVersion(ctx, scopeA, "sensors", 3, func(v *iot.PolicyVersion) error {
		if !v.IsDefault || v.Document != "doc 3" {
			t.Errorf("check saw %+v", v)
		}
		return refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("refused deletion = %v", err)
	}
	if err := s.DeletePolicyVersion(ctx, scopeA, "sensors", 2, func(*iot.PolicyVersion) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicyVersion(ctx, scopeA, "sensors", 2, func(*iot.PolicyVersion) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a deleted version = %v", err)
	}
	v6, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", "doc 6", change(at, "g6", false), 5)
	if err != nil || v6.ID != 6 {
		t.Fatalf("the version after a deletion = %+v, %v; want ID 6, never a reused one", v6, err)
	}
	if err := s.SetDefaultPolicyVersion(ctx, scopeA, "sensors", 6, change(at.Add(time.Minute), "g-set", false)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Policy(ctx, scopeA, "sensors"); got.DefaultVersionID != 6 || got.DefaultDocument != "doc 6" || got.GenerationID != "g-set" {
		t.Fatalf("after SetDefaultPolicyVersion: %+v", got)
	}
	if err := s.SetDefaultPolicyVersion(ctx, scopeA, "sensors", 2, change(at, "g", false)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("default to a deleted version = %v", err)
	}

	// Deleting the policy: check sees how many versions; then all is gone.
	var seen int
	if err := s.DeletePolicy(ctx, scopeA, "sensors", func(p *iot.Policy, n int) error { seen = n; return refuse }); !errors.Is(err, refuse) || seen != 5 {
		t.Fatalf("refused DeletePolicy = %v with %d versions seen, want 5", err, seen)
	}
	if err := s.DeletePolicy(ctx, scopeA, "sensors", func(*iot.Policy, int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Policy(ctx, scopeA, "sensors"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted policy = %v", err)
	}
	if _, err := s.ListPolicyVersions(ctx, scopeA, "sensors"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted policy's versions = %v", err)
	}
	if _, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypePolicy, ID: "sensors"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted policy's tags = %v", err)
	}
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "sensors", base), nil); err != nil {
		t.Fatalf("re-creating a deleted policy: %v", err)
	}
	if v, err := s.CreatePolicyVersion(ctx, scopeA, "sensors", "again", change(at, "g", false), 5); err != nil || v.ID != 2 {
		t.Fatalf("a re-created policy's second version = %+v, %v; it starts over", v, err)
	}
}

func testListPolicies(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 23
	for i := range n {
		if err := s.CreatePolicy(ctx, newPolicy(scopeA, fmt.Sprintf("p%02d", i), base), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreatePolicy(ctx, newPolicy(scopeB, "elsewhere", base), nil); err != nil {
		t.Fatal(err)
	}
	for _, ascending := range []bool{true, false} {
		var names []string
		after := ""
		for pages := 0; ; pages++ {
			page, more, err := s.ListPolicies(ctx, scopeA, after, ascending, 5)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				if p.DefaultDocument != "" || p.DefaultVersionID != 1 {
					t.Errorf("listed %+v", p)
				}
				names = append(names, p.Name)
			}
			if !more {
				break
			}
			after = page[len(page)-1].Name
			if pages > n {
				t.Fatal("paging does not end")
			}
		}
		if len(names) != n {
			t.Fatalf("ascending %v: %d policies listed, want %d: %v", ascending, len(names), n, names)
		}
		for i := 1; i < n; i++ {
			if (names[i-1] < names[i]) != ascending {
				t.Fatalf("ascending %v: out of order: %v", ascending, names)
			}
		}
	}
}

// replicaPolicyVersions: replicas adding versions to one policy at once
// never make more than the limit, and the policy keeps exactly one default,
// which is one of its versions.
func replicaPolicyVersions(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	if err := a.CreatePolicy(ctx, newPolicy(scopeA, "raced", base), nil); err != nil {
		t.Fatal(err)
	}
	var created, limited atomic.Int64
	both(a, b, 10, func(s store.Store, i int) {
		_, err := s.CreatePolicyVersion(ctx, scopeA, "raced", fmt.Sprint("doc ", i), change(base, fmt.Sprint("g", i), i%2 == 0), 5)
		switch {
		case err == nil:
			created.Add(1)
		case errors.Is(err, store.ErrLimit):
			limited.Add(1)
		default:
			t.Error(err)
		}
	})
	if created.Load() != 4 || limited.Load() != 16 {
		t.Fatalf("%d versions created and %d refused by 20 racing calls; want 4 (to 5 in all) and 16", created.Load(), limited.Load())
	}
	versions, err := b.ListPolicyVersions(ctx, scopeA, "raced")
	if err != nil || len(versions) != 5 {
		t.Fatalf("%d versions (%v), want 5", len(versions), err)
	}
	defaults := 0
	ids := map[int64]bool{}
	for _, v := range versions {
		if ids[v.ID] {
			t.Fatalf("version ID %d twice", v.ID)
		}
		ids[v.ID] = true
		if v.IsDefault {
			defaults++
		}
	}
	p, err := a.Policy(ctx, scopeA, "raced")
	if err != nil || defaults != 1 || !ids[p.DefaultVersionID] {
		t.Fatalf("%d defaults among the versions, the policy says %d (%v)", defaults, p.DefaultVersionID, err)
	}
}
