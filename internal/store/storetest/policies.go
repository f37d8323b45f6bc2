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

func testPolicyAttachments(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	for _, name := range []string{"p1", "p2", "p3"} {
		if err := s.CreatePolicy(ctx, newPolicy(scopeA, name, base), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p2", "p1", "p2"} {
		if err := s.AttachPolicyToCertificate(ctx, scopeA, name, c.ID, 2, base); err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
	}
	if err := s.AttachPolicyToCertificate(ctx, scopeA, "p3", c.ID, 2, base); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a third policy with a limit of 2: %v", err)
	}
	for _, tc := range []struct{ policy, cert string }{{"none", c.ID}, {"p3", "missing"}} {
		if err := s.AttachPolicyToCertificate(ctx, scopeA, tc.policy, tc.cert, 2, base); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("attach %s to %s: %v, want ErrNotFound", tc.policy, tc.cert, err)
		}
	}
	if err := s.AttachPolicyToCertificate(ctx, scopeB, "p1", c.ID, 2, base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("attaching across accounts: %v", err)
	}
	list, more, err := s.ListAttachedPolicies(ctx, scopeA, c.ARN(), "", 1)
	if err != nil || !more || len(list) != 1 || list[0].Name != "p1" {
		t.Fatalf("first page of attached policies: %+v %v %v", list, more, err)
	}
	if list, more, err = s.ListAttachedPolicies(ctx, scopeA, c.ARN(), "p1", 1); err != nil || more || len(list) != 1 || list[0].Name != "p2" {
		t.Fatalf("second page: %+v %v %v", list, more, err)
	}
	if targets, _, err := s.ListPolicyTargets(ctx, scopeA, "p1", "", 10); err != nil || len(targets) != 1 || targets[0] != c.ARN() {
		t.Fatalf("targets of p1: %v, %v", targets, err)
	}
	if _, _, err := s.ListPolicyTargets(ctx, scopeA, "none", "", 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("targets of no policy: %v", err)
	}
	if err := s.DeletePolicy(ctx, scopeA, "p1", func(*iot.Policy, int) error { return nil }); !errors.Is(err, store.ErrAttached) {
		t.Fatalf("deleting an attached policy: %v", err)
	}
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, func(*iot.Certificate) error { return nil }); !errors.Is(err, store.ErrAttached) {
		t.Fatalf("deleting a certificate with policies: %v", err)
	}
	if err := s.DetachPolicy(ctx, scopeA, "p1", c.ARN(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachPolicy(ctx, scopeA, "p1", c.ARN(), time.Now()); err != nil {
		t.Fatalf("detaching what is not attached: %v", err)
	}
	if err := s.DetachPolicy(ctx, scopeA, "none", c.ARN(), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("detaching no policy: %v", err)
	}
	if err := s.DeletePolicy(ctx, scopeA, "p1", func(*iot.Policy, int) error { return nil }); err != nil {
		t.Fatalf("deleting a detached policy: %v", err)
	}
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, true, func(*iot.Certificate) error { return nil }); err != nil {
		t.Fatalf("deleting with detach: %v", err)
	}
	if targets, _, err := s.ListPolicyTargets(ctx, scopeA, "p2", "", 10); err != nil || len(targets) != 0 {
		t.Fatalf("a deleted certificate is still a target: %v, %v", targets, err)
	}
}

// replicaPolicyAttachments: replicas attaching policies to one certificate
// at once never exceed the limit.
func replicaPolicyAttachments(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, a, c)
	for i := range 20 {
		if err := a.CreatePolicy(ctx, newPolicy(scopeA, fmt.Sprint("p", i), base), nil); err != nil {
			t.Fatal(err)
		}
	}
	var attached, limited atomic.Int64
	both(a, b, 10, func(s store.Store, i int) {
		name := fmt.Sprint("p", i)
		if s == b {
			name = fmt.Sprint("p", 10+i)
		}
		switch err := s.AttachPolicyToCertificate(ctx, scopeA, name, c.ID, 10, base); {
		case err == nil:
			attached.Add(1)
		case errors.Is(err, store.ErrLimit):
			limited.Add(1)
		default:
			t.Error(err)
		}
	})
	list, _, err := b.ListAttachedPolicies(ctx, scopeA, c.ARN(), "", 100)
	if err != nil || len(list) != 10 || attached.Load() != 10 || limited.Load() != 10 {
		t.Fatalf("%d attached (%d succeeded, %d refused, %v); want exactly 10", len(list), attached.Load(), limited.Load(), err)
	}
}
