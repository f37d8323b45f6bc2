package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// noTemplateLimit is a template or version limit no test reaches.
const noTemplateLimit = 1 << 20

// newTemplate returns an enabled fleet-provisioning template with a hook,
// created and modified at at, whose body names it.
func newTemplate(scope iot.Scope, name string, at time.Time) *iot.ProvisioningTemplate {
	return &iot.ProvisioningTemplate{
		Scope:               scope,
		Name:                name,
		Description:         "the " + name + " template",
		Type:                iot.FleetProvisioning,
		Enabled:             true,
		ProvisioningRoleARN: "arn:aws:iam::" + scope.AccountID + ":role/provision-" + name,
		Hook:                &iot.PreProvisioningHook{TargetARN: "arn:aws:lambda:us-east-1:" + scope.AccountID + ":function:" + name, PayloadVersion: "2020-04-01"},
		Body:                `{"Resources":{"` + name + `":{}}}`,
		CreatedAt:           at,
		ModifiedAt:          at,
	}
}

func mustCreateTemplate(t *testing.T, s store.Store, tpl *iot.ProvisioningTemplate, tags ...iot.Tag) {
	t.Helper()
	if err := s.CreateProvisioningTemplate(t.Context(), tpl, tags, noTemplateLimit); err != nil {
		t.Fatalf("CreateProvisioningTemplate(%v, %s): %v", tpl.Scope, tpl.Name, err)
	}
}

// equalTemplates compares two templates field by field, the hook by value.
func equalTemplates(a, b *iot.ProvisioningTemplate) bool {
	return a.Scope == b.Scope && a.Name == b.Name && a.Description == b.Description && a.Type == b.Type &&
		a.Enabled == b.Enabled && a.ProvisioningRoleARN == b.ProvisioningRoleARN &&
		(a.Hook == nil) == (b.Hook == nil) && (a.Hook == nil || *a.Hook == *b.Hook) &&
		a.DefaultVersionID == b.DefaultVersionID && a.Body == b.Body &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ModifiedAt.Equal(b.ModifiedAt)
}

// inUTC reports whether every time is in UTC, as stores return them.
func inUTC(times ...time.Time) bool {
	for _, at := range times {
		if at.Location() != time.UTC {
			return false
		}
	}
	return true
}

func templateResource(scope iot.Scope, name string) iot.Resource {
	return iot.Resource{Scope: scope, Type: iot.TypeProvisioningTemplate, ID: name}
}

func testProvisioningTemplates(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Times given in another zone are kept as instants and read back in UTC.
	zone := time.FixedZone("UTC+2", 2*60*60)
	fleet := newTemplate(scopeA, "fleet", base.In(zone))
	fleet.ModifiedAt = base.Add(time.Second + time.Microsecond).In(zone)
	mustCreateTemplate(t, s, fleet, iot.Tag{Key: "team", Value: "a"}, iot.Tag{Key: "env", Value: "prod"})
	if fleet.DefaultVersionID != 1 {
		t.Fatalf("a created template's DefaultVersionID = %d, want 1", fleet.DefaultVersionID)
	}
	got, err := s.ProvisioningTemplate(ctx, scopeA, "fleet")
	if err != nil {
		t.Fatal(err)
	}
	if !equalTemplates(got, fleet) {
		t.Fatalf("ProvisioningTemplate =\n%+v\nwant\n%+v", got, fleet)
	}
	if !inUTC(got.CreatedAt, got.ModifiedAt) || got.ModifiedAt.Nanosecond() != fleet.ModifiedAt.Nanosecond() {
		t.Fatalf("times %v, %v are not the stored instants in UTC", got.CreatedAt, got.ModifiedAt)
	}
	if got.ARN() != "arn:aws:iot:us-east-1:111111111111:provisioningtemplate/fleet" {
		t.Fatalf("ARN %s", got.ARN())
	}
	if tags, err := s.Tags(ctx, templateResource(scopeA, "fleet")); err != nil ||
		!slices.Equal(tags, []iot.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "a"}}) {
		t.Fatalf("the template's tags = %v, %v", tags, err)
	}
	if v, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", 1); err != nil || v.Body != fleet.Body || !v.IsDefault ||
		!v.CreatedAt.Equal(fleet.CreatedAt) || !inUTC(v.CreatedAt) || v.Scope != scopeA || v.TemplateName != "fleet" {
		t.Fatalf("the first version = %+v, %v", v, err)
	}

	// Without a hook, disabled, JITP, no description.
	jitp := &iot.ProvisioningTemplate{Scope: scopeA, Name: "jitp", Type: iot.JITP, ProvisioningRoleARN: "arn:aws:iam::111111111111:role/r",
		Body: "{}", CreatedAt: base, ModifiedAt: base}
	mustCreateTemplate(t, s, jitp)
	got, err = s.ProvisioningTemplate(ctx, scopeA, "jitp")
	if err != nil {
		t.Fatal(err)
	}
	if got.Hook != nil || got.Enabled || got.Type != iot.JITP || got.Description != "" || !equalTemplates(got, jitp) {
		t.Fatalf("a template without a hook reads back as %+v (hook %v)", got, got.Hook)
	}
	if tags, err := s.Tags(ctx, templateResource(scopeA, "jitp")); err != nil || len(tags) != 0 {
		t.Fatalf("an untagged template's tags = %v, %v", tags, err)
	}

	// One name per scope.
	again := newTemplate(scopeA, "fleet", base.Add(time.Hour))
	again.Body, again.Description = "another body", "another"
	if err := s.CreateProvisioningTemplate(ctx, again, nil, noTemplateLimit); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second template of one name = %v, want ErrExists", err)
	}
	if got, err := s.ProvisioningTemplate(ctx, scopeA, "fleet"); err != nil || !equalTemplates(got, fleet) {
		t.Fatalf("after a refused create: %+v, %v", got, err)
	}
	if versions, _, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 0, 10); err != nil || len(versions) != 1 {
		t.Fatalf("a refused create added a version: %+v, %v", versions, err)
	}
	if _, err := s.ProvisioningTemplate(ctx, scopeA, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an absent template = %v, want ErrNotFound", err)
	}
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if _, err := s.ProvisioningTemplate(ctx, scope, "fleet"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%v sees a template of %v: %v", scope, scopeA, err)
		}
	}
	other := newTemplate(scopeB, "fleet", base)
	other.Body, other.Hook = "scope B's body", nil
	mustCreateTemplate(t, s, other)
	inC := newTemplate(scopeC, "fleet", base)
	mustCreateTemplate(t, s, inC)
	for _, want := range []*iot.ProvisioningTemplate{fleet, other, inC} {
		if got, err := s.ProvisioningTemplate(ctx, want.Scope, "fleet"); err != nil || !equalTemplates(got, want) {
			t.Fatalf("the same name in three scopes: %v has %+v, %v; want %+v", want.Scope, got, err, want)
		}
	}
	if tags, err := s.Tags(ctx, templateResource(scopeB, "fleet")); err != nil || len(tags) != 0 {
		t.Fatalf("another scope's template of the same name has tags %v, %v", tags, err)
	}

	// At most max per scope: scopeA has 2, scopeB 1.
	third := newTemplate(scopeA, "third", base)
	if err := s.CreateProvisioningTemplate(ctx, third, nil, 2); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a third template with a limit of 2 = %v, want ErrLimit", err)
	}
	if _, err := s.ProvisioningTemplate(ctx, scopeA, "third"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a template refused for the limit was stored: %v", err)
	}
	if err := s.CreateProvisioningTemplate(ctx, newTemplate(scopeB, "second", base), nil, 2); err != nil {
		t.Fatalf("another scope's templates count towards the limit: %v", err)
	}
	if err := s.CreateProvisioningTemplate(ctx, third, nil, 3); err != nil {
		t.Fatalf("a third template with a limit of 3: %v", err)
	}
}

func testListProvisioningTemplates(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{"m", "B", "a", "_x", "A-1", "9", "-z", "zz", "a_b", "a-b", "Zed"}
	byName := map[string]*iot.ProvisioningTemplate{}
	for i, name := range names {
		tpl := newTemplate(scopeA, name, base.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			tpl.Hook, tpl.Enabled, tpl.Type = nil, false, iot.JITP
		}
		mustCreateTemplate(t, s, tpl)
		byName[name] = tpl
	}
	all := slices.Clone(names)
	sort.Strings(all) // bytewise
	// Other scopes have templates that sort among scopeA's.
	mustCreateTemplate(t, s, newTemplate(scopeB, "b", base))
	mustCreateTemplate(t, s, newTemplate(scopeC, "a0", base))

	list := func(scope iot.Scope, limit int) (listed []string, sizes []int) {
		t.Helper()
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(names)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, more, err := s.ListProvisioningTemplates(ctx, scope, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit || (more && len(page) != limit) {
				t.Fatalf("limit %d: a page of %d, more %v", limit, len(page), more)
			}
			for i := range page {
				tpl := &page[i]
				if tpl.Body != "" {
					t.Fatalf("a listed template has a body: %+v", tpl)
				}
				want := byName[tpl.Name]
				if scope == scopeA && want == nil {
					t.Fatalf("listed %+v, which scopeA does not have", tpl)
				}
				if want != nil {
					bodiless := *want
					bodiless.Body = ""
					if !equalTemplates(tpl, &bodiless) || !inUTC(tpl.CreatedAt, tpl.ModifiedAt) {
						t.Fatalf("listed %+v, stored %+v", tpl, want)
					}
				}
			}
			sizes = append(sizes, len(page))
			for _, tpl := range page {
				listed = append(listed, tpl.Name)
			}
			if !more {
				return listed, sizes
			}
			after = page[len(page)-1].Name
		}
	}
	if listed, sizes := list(scopeA, 4); !slices.Equal(listed, all) || !slices.Equal(sizes, []int{4, 4, 3}) {
		t.Fatalf("11 templates by 4: %v in pages of %v; want %v in pages of [4 4 3]", listed, sizes, all)
	}
	if listed, sizes := list(scopeA, 11); !slices.Equal(listed, all) || !slices.Equal(sizes, []int{11}) {
		t.Fatalf("11 templates by 11: %v in pages of %v; want one page without more", listed, sizes)
	}
	if listed, _ := list(scopeA, 100); !slices.Equal(listed, all) {
		t.Fatalf("11 templates by 100: %v", listed)
	}
	if page, more, err := s.ListProvisioningTemplates(ctx, scopeA, "a", 2); err != nil || !more ||
		!slices.Equal(templateNames(page), []string{"a-b", "a_b"}) {
		t.Fatalf("after \"a\" by 2: %v, more %v, %v", templateNames(page), more, err)
	}
	if page, more, err := s.ListProvisioningTemplates(ctx, scopeA, "zz", 3); err != nil || len(page) != 0 || more {
		t.Fatalf("after the last template: %v, more %v, %v", templateNames(page), more, err)
	}
	if listed, _ := list(scopeB, 10); !slices.Equal(listed, []string{"b"}) {
		t.Fatalf("scopeB lists %v", listed)
	}
	if page, more, err := s.ListProvisioningTemplates(ctx, iot.Scope{AccountID: "333333333333", Region: "us-east-1"}, "", 10); err != nil || len(page) != 0 || more {
		t.Fatalf("an empty scope lists %v, more %v, %v", templateNames(page), more, err)
	}
}

func templateNames(templates []iot.ProvisioningTemplate) []string {
	names := make([]string, len(templates))
	for i, tpl := range templates {
		names[i] = tpl.Name
	}
	return names
}

func testUpdateProvisioningTemplate(t *testing.T, s store.Store) {
	ctx := t.Context()
	tpl := newTemplate(scopeA, "fleet", base)
	mustCreateTemplate(t, s, tpl)
	mustCreateTemplate(t, s, newTemplate(scopeB, "fleet", base))
	if _, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 2", false, base.Add(time.Minute), 5); err != nil {
		t.Fatal(err)
	}
	stored := func() *iot.ProvisioningTemplate {
		t.Helper()
		got, err := s.ProvisioningTemplate(ctx, scopeA, "fleet")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Every field an update may change.
	zone := time.FixedZone("UTC-5", -5*60*60)
	at1 := base.Add(time.Hour).In(zone)
	var seen iot.ProvisioningTemplate
	got, err := s.UpdateProvisioningTemplate(ctx, scopeA, "fleet", at1, func(x *iot.ProvisioningTemplate) error {
		seen = *x
		x.Description = "changed"
		x.Enabled = false
		x.ProvisioningRoleARN = "arn:aws:iam::111111111111:role/other"
		x.Hook = &iot.PreProvisioningHook{TargetARN: "arn:aws:lambda:us-east-1:111111111111:function:other", PayloadVersion: "2020-04-01"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bodiless := *tpl
	bodiless.Body = ""
	if !equalTemplates(&seen, &bodiless) {
		t.Fatalf("change saw %+v, want the stored template %+v", seen, bodiless)
	}
	want := *tpl
	want.Description, want.Enabled, want.ProvisioningRoleARN = "changed", false, "arn:aws:iam::111111111111:role/other"
	want.Hook = &iot.PreProvisioningHook{TargetARN: "arn:aws:lambda:us-east-1:111111111111:function:other", PayloadVersion: "2020-04-01"}
	want.ModifiedAt = at1
	wantReturned := want
	wantReturned.Body = ""
	if !equalTemplates(got, &wantReturned) || !inUTC(got.CreatedAt, got.ModifiedAt) {
		t.Fatalf("UpdateProvisioningTemplate =\n%+v\nwant\n%+v", got, &wantReturned)
	}
	if got := stored(); !equalTemplates(got, &want) || !inUTC(got.ModifiedAt) {
		t.Fatalf("stored after the update:\n%+v\nwant\n%+v", got, &want)
	}

	// Another version as the default: the body follows.
	at2 := base.Add(2 * time.Hour)
	if got, err = s.UpdateProvisioningTemplate(ctx, scopeA, "fleet", at2, func(x *iot.ProvisioningTemplate) error {
		x.DefaultVersionID = 2
		return nil
	}); err != nil || got.DefaultVersionID != 2 {
		t.Fatalf("making version 2 the default: %+v, %v", got, err)
	}
	want.DefaultVersionID, want.Body, want.ModifiedAt = 2, "body 2", at2
	if got := stored(); !equalTemplates(got, &want) {
		t.Fatalf("after making version 2 the default:\n%+v\nwant\n%+v", got, &want)
	}
	if v, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", 2); err != nil || !v.IsDefault {
		t.Fatalf("version 2 after being made the default: %+v, %v", v, err)
	}
	if v, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", 1); err != nil || v.IsDefault {
		t.Fatalf("version 1 after version 2 was made the default: %+v, %v", v, err)
	}

	// A version that does not exist, or a refusing change, writes nothing.
	refuse := errors.New("refused")
	for _, tc := range []struct {
		name    string
		version int64
		err     error
		want    error
	}{
		{"a missing version", 9, nil, store.ErrNotFound},
		{"version 0", 0, nil, store.ErrNotFound},
		{"a refusing change", 1, refuse, refuse},
	} {
		if _, err := s.UpdateProvisioningTemplate(ctx, scopeA, "fleet", at2.Add(time.Hour), func(x *iot.ProvisioningTemplate) error {
			x.DefaultVersionID = tc.version
			x.Description, x.Enabled, x.Hook, x.ProvisioningRoleARN = "not written", true, nil, "not written"
			return tc.err
		}); !errors.Is(err, tc.want) {
			t.Fatalf("%s: UpdateProvisioningTemplate = %v, want %v", tc.name, err, tc.want)
		}
		if got := stored(); !equalTemplates(got, &want) {
			t.Fatalf("%s was written:\n%+v\nwant\n%+v", tc.name, got, &want)
		}
	}

	// Removing the hook.
	at3 := base.Add(3 * time.Hour)
	if got, err = s.UpdateProvisioningTemplate(ctx, scopeA, "fleet", at3, func(x *iot.ProvisioningTemplate) error {
		x.Hook = nil
		return nil
	}); err != nil || got.Hook != nil {
		t.Fatalf("removing the hook: %+v, %v", got, err)
	}
	want.Hook, want.ModifiedAt = nil, at3
	if got := stored(); !equalTemplates(got, &want) || got.Hook != nil {
		t.Fatalf("after removing the hook:\n%+v\nwant\n%+v", got, &want)
	}

	// Missing templates; the other scope's template of the same name is untouched.
	for _, tc := range []struct {
		scope iot.Scope
		name  string
	}{{scopeA, "absent"}, {scopeC, "fleet"}} {
		called := false
		if _, err := s.UpdateProvisioningTemplate(ctx, tc.scope, tc.name, at3, func(*iot.ProvisioningTemplate) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) || called {
			t.Fatalf("UpdateProvisioningTemplate(%v, %s) = %v (change called: %v), want ErrNotFound", tc.scope, tc.name, err, called)
		}
	}
	wantB := newTemplate(scopeB, "fleet", base)
	wantB.DefaultVersionID = 1
	if got, err := s.ProvisioningTemplate(ctx, scopeB, "fleet"); err != nil || !equalTemplates(got, wantB) {
		t.Fatalf("updates in scopeA changed scopeB's template: %+v, %v", got, err)
	}
}

func testDeleteProvisioningTemplate(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateTemplate(t, s, newTemplate(scopeA, "fleet", base), iot.Tag{Key: "team", Value: "a"})
	for i := 2; i <= 3; i++ {
		if _, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", fmt.Sprint("body ", i), i == 3, base, 5); err != nil {
			t.Fatal(err)
		}
	}
	mustCreateTemplate(t, s, newTemplate(scopeA, "kept", base))
	mustCreateTemplate(t, s, newTemplate(scopeB, "fleet", base), iot.Tag{Key: "team", Value: "b"})
	res := templateResource(scopeA, "fleet")

	// A CA whose registration config names the template keeps it.
	ca := caCert(scopeA, 1, "subj", iot.ModeSNIOnly, base)
	ca.RegistrationConfig = iot.RegistrationConfig{TemplateName: "fleet"}
	mustCreateCA(t, s, ca)
	// Another scope's CA naming a template of that name does not.
	caB := caCert(scopeB, 2, "subj", iot.ModeSNIOnly, base)
	caB.RegistrationConfig = iot.RegistrationConfig{TemplateName: "fleet"}
	mustCreateCA(t, s, caB)
	if err := s.DeleteProvisioningTemplate(ctx, scopeA, "fleet"); !errors.Is(err, store.ErrAttached) {
		t.Fatalf("deleting a CA's registration template = %v, want ErrAttached", err)
	}
	if got, err := s.ProvisioningTemplate(ctx, scopeA, "fleet"); err != nil || got.DefaultVersionID != 3 || got.Body != "body 3" {
		t.Fatalf("after a refused delete: %+v, %v", got, err)
	}
	if versions, _, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 0, 10); err != nil || len(versions) != 3 {
		t.Fatalf("versions after a refused delete: %+v, %v", versions, err)
	}
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 1 {
		t.Fatalf("tags after a refused delete: %v, %v", tags, err)
	}
	if _, err := s.UpdateCACertificate(ctx, scopeA, ca.ID, func(c *iot.CACertificate) error {
		c.RegistrationConfig = iot.RegistrationConfig{TemplateName: "kept"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteProvisioningTemplate(ctx, scopeA, "fleet"); err != nil {
		t.Fatalf("deleting a template no CA names: %v", err)
	}
	if _, err := s.ProvisioningTemplate(ctx, scopeA, "fleet"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted template = %v, want ErrNotFound", err)
	}
	for id := int64(1); id <= 3; id++ {
		if _, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("version %d of a deleted template = %v, want ErrNotFound", id, err)
		}
	}
	if _, _, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the versions of a deleted template = %v, want ErrNotFound", err)
	}
	if _, err := s.Tags(ctx, res); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted template's tags = %v, want ErrNotFound", err)
	}
	if page, _, err := s.ListProvisioningTemplates(ctx, scopeA, "", 10); err != nil || !slices.Equal(templateNames(page), []string{"kept"}) {
		t.Fatalf("templates after a delete: %v, %v", templateNames(page), err)
	}
	if err := s.DeleteProvisioningTemplate(ctx, scopeA, "fleet"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a deleted template = %v, want ErrNotFound", err)
	}
	if err := s.DeleteProvisioningTemplate(ctx, scopeC, "kept"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a template of another scope = %v, want ErrNotFound", err)
	}
	// The other scope's template of the same name is untouched.
	if got, err := s.ProvisioningTemplate(ctx, scopeB, "fleet"); err != nil || got.Body != newTemplate(scopeB, "fleet", base).Body {
		t.Fatalf("deleting a template deleted another scope's: %+v, %v", got, err)
	}
	if tags, err := s.Tags(ctx, templateResource(scopeB, "fleet")); err != nil || len(tags) != 1 || tags[0].Value != "b" {
		t.Fatalf("another scope's template lost its tags: %v, %v", tags, err)
	}

	// Re-created, nothing of the old one is left, and version IDs start over.
	mustCreateTemplate(t, s, newTemplate(scopeA, "fleet", base.Add(time.Hour)))
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 0 {
		t.Fatalf("a re-created template has the deleted one's tags: %v, %v", tags, err)
	}
	if versions, _, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 0, 10); err != nil || len(versions) != 1 || versions[0].ID != 1 {
		t.Fatalf("a re-created template's versions: %+v, %v", versions, err)
	}
	if v, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "again", false, base, 5); err != nil || v.ID != 2 {
		t.Fatalf("a re-created template's second version = %+v, %v; it starts over", v, err)
	}
}

func testProvisioningTemplateVersions(t *testing.T, s store.Store) {
	ctx := t.Context()
	tpl := newTemplate(scopeA, "fleet", base)
	tpl.Body = "body 1"
	mustCreateTemplate(t, s, tpl)
	template := func() *iot.ProvisioningTemplate {
		t.Helper()
		got, err := s.ProvisioningTemplate(ctx, scopeA, "fleet")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	at1 := base.Add(time.Minute)
	v2, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 2", false, at1, 5)
	if err != nil || v2.ID != 2 || v2.IsDefault || v2.Body != "body 2" || !v2.CreatedAt.Equal(at1) || v2.Scope != scopeA || v2.TemplateName != "fleet" {
		t.Fatalf("version 2 = %+v, %v", v2, err)
	}
	if got := template(); got.DefaultVersionID != 1 || got.Body != "body 1" || !got.ModifiedAt.Equal(base) {
		t.Fatalf("a version not set as default changed the template: %+v", got)
	}
	at2 := base.Add(2 * time.Minute)
	v3, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 3", true, at2, 5)
	if err != nil || v3.ID != 3 || !v3.IsDefault || !v3.CreatedAt.Equal(at2) {
		t.Fatalf("version 3 = %+v, %v", v3, err)
	}
	if got := template(); got.DefaultVersionID != 3 || got.Body != "body 3" || !got.ModifiedAt.Equal(at2) || !got.CreatedAt.Equal(base) {
		t.Fatalf("after a default version: %+v", got)
	}
	for i := 4; i <= 5; i++ {
		if v, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", fmt.Sprint("body ", i), false, at2, 5); err != nil || v.ID != int64(i) {
			t.Fatalf("version %d = %+v, %v", i, v, err)
		}
	}
	if _, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 6", true, at2, 5); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a sixth version = %v, want ErrLimit", err)
	}
	if got := template(); got.DefaultVersionID != 3 || got.Body != "body 3" {
		t.Fatalf("a version refused for the limit changed the default: %+v", got)
	}

	// One version.
	for _, tc := range []struct {
		id        int64
		body      string
		isDefault bool
		at        time.Time
	}{{1, "body 1", false, base}, {2, "body 2", false, at1}, {3, "body 3", true, at2}, {5, "body 5", false, at2}} {
		v, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", tc.id)
		if err != nil || v.ID != tc.id || v.Body != tc.body || v.IsDefault != tc.isDefault || !v.CreatedAt.Equal(tc.at) ||
			!inUTC(v.CreatedAt) || v.Scope != scopeA || v.TemplateName != "fleet" {
			t.Fatalf("ProvisioningTemplateVersion(%d) = %+v, %v", tc.id, v, err)
		}
	}
	for _, id := range []int64{0, 6, 9} {
		if _, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("version %d = %v, want ErrNotFound", id, err)
		}
	}

	// Listing, oldest first.
	listVersions := func(limit int) (ids []int64, sizes []int, defaults []int64) {
		t.Helper()
		var after int64
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			page, more, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit || (more && len(page) != limit) {
				t.Fatalf("limit %d: a page of %d, more %v", limit, len(page), more)
			}
			for _, v := range page {
				ids = append(ids, v.ID)
				if v.IsDefault {
					defaults = append(defaults, v.ID)
				}
				if v.Scope != scopeA || v.TemplateName != "fleet" || v.CreatedAt.IsZero() || !inUTC(v.CreatedAt) {
					t.Fatalf("listed %+v", v)
				}
			}
			sizes = append(sizes, len(page))
			if !more {
				return ids, sizes, defaults
			}
			after = page[len(page)-1].ID
		}
	}
	if ids, sizes, defaults := listVersions(2); !slices.Equal(ids, []int64{1, 2, 3, 4, 5}) || !slices.Equal(sizes, []int{2, 2, 1}) || !slices.Equal(defaults, []int64{3}) {
		t.Fatalf("versions by 2: %v in pages of %v, defaults %v; want [1 2 3 4 5] in pages of [2 2 1], default [3]", ids, sizes, defaults)
	}
	if ids, sizes, _ := listVersions(5); !slices.Equal(ids, []int64{1, 2, 3, 4, 5}) || !slices.Equal(sizes, []int{5}) {
		t.Fatalf("versions by 5: %v in pages of %v; want one page without more", ids, sizes)
	}
	if page, more, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 2, 2); err != nil || !more || len(page) != 2 || page[0].ID != 3 || page[1].ID != 4 {
		t.Fatalf("after version 2 by 2: %+v, more %v, %v; want 3 and 4, more", page, more, err)
	}
	if page, more, err := s.ListProvisioningTemplateVersions(ctx, scopeA, "fleet", 5, 2); err != nil || more || len(page) != 0 {
		t.Fatalf("after the last version: %+v, more %v, %v", page, more, err)
	}
	if got := template(); got.DefaultVersionID != 3 {
		t.Fatalf("the template's default %d", got.DefaultVersionID)
	}
	// A new default shows in the listing.
	if _, err := s.UpdateProvisioningTemplate(ctx, scopeA, "fleet", at2, func(x *iot.ProvisioningTemplate) error { x.DefaultVersionID = 4; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, defaults := listVersions(3); !slices.Equal(defaults, []int64{4}) {
		t.Fatalf("defaults after making version 4 the default: %v", defaults)
	}

	// Deleting: check sees the version under the lock; a refusal deletes nothing.
	refuse := errors.New("refused")
	var checked *iot.ProvisioningTemplateVersion
	if err := s.DeleteProvisioningTemplateVersion(ctx, scopeA, "fleet", 4, func(v *iot.ProvisioningTemplateVersion) error {
		checked = v
		return refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("a refused delete = %v, want its error", err)
	}
	if checked == nil || checked.ID != 4 || !checked.IsDefault || checked.Body != "body 4" || !checked.CreatedAt.Equal(at2) || checked.TemplateName != "fleet" || checked.Scope != scopeA {
		t.Fatalf("check saw %+v", checked)
	}
	checked = nil
	if err := s.DeleteProvisioningTemplateVersion(ctx, scopeA, "fleet", 2, func(v *iot.ProvisioningTemplateVersion) error {
		checked = v
		return refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("a refused delete = %v, want its error", err)
	}
	if checked == nil || checked.ID != 2 || checked.IsDefault || checked.Body != "body 2" || !checked.CreatedAt.Equal(at1) {
		t.Fatalf("check saw %+v", checked)
	}
	if v, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", 2); err != nil || v.Body != "body 2" {
		t.Fatalf("a refused delete deleted: %+v, %v", v, err)
	}
	ok := func(*iot.ProvisioningTemplateVersion) error { return nil }
	if err := s.DeleteProvisioningTemplateVersion(ctx, scopeA, "fleet", 2, ok); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProvisioningTemplateVersion(ctx, scopeA, "fleet", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted version = %v, want ErrNotFound", err)
	}
	called := false
	if err := s.DeleteProvisioningTemplateVersion(ctx, scopeA, "fleet", 2, func(*iot.ProvisioningTemplateVersion) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) || called {
		t.Fatalf("deleting a deleted version = %v (check called: %v), want ErrNotFound", err, called)
	}
	if ids, _, _ := listVersions(10); !slices.Equal(ids, []int64{1, 3, 4, 5}) {
		t.Fatalf("versions after deleting 2: %v", ids)
	}

	// IDs are never reused, also when the highest is deleted.
	if v, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 6", false, at2, 5); err != nil || v.ID != 6 {
		t.Fatalf("the version after a deletion = %+v, %v; want ID 6, never a reused one", v, err)
	}
	if _, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 7", false, at2, 5); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a sixth version after a deletion = %v, want ErrLimit", err)
	}
	if err := s.DeleteProvisioningTemplateVersion(ctx, scopeA, "fleet", 6, ok); err != nil {
		t.Fatal(err)
	}
	if v, err := s.CreateProvisioningTemplateVersion(ctx, scopeA, "fleet", "body 7", false, at2, 5); err != nil || v.ID != 7 {
		t.Fatalf("the version after deleting the highest = %+v, %v; want ID 7", v, err)
	}
	if ids, _, _ := listVersions(10); !slices.Equal(ids, []int64{1, 3, 4, 5, 7}) {
		t.Fatalf("versions: %v", ids)
	}

	// Another scope's template of the same name counts on its own.
	mustCreateTemplate(t, s, newTemplate(scopeB, "fleet", base))
	if v, err := s.CreateProvisioningTemplateVersion(ctx, scopeB, "fleet", "b 2", false, at2, 5); err != nil || v.ID != 2 {
		t.Fatalf("scopeB's second version = %+v, %v", v, err)
	}
	if page, _, err := s.ListProvisioningTemplateVersions(ctx, scopeB, "fleet", 0, 10); err != nil || len(page) != 2 {
		t.Fatalf("scopeB's versions: %+v, %v", page, err)
	}

	// A missing template, everywhere.
	for _, tc := range []struct {
		scope iot.Scope
		name  string
	}{{scopeA, "absent"}, {scopeC, "fleet"}} {
		if _, err := s.CreateProvisioningTemplateVersion(ctx, tc.scope, tc.name, "x", true, at2, 5); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateProvisioningTemplateVersion(%v, %s) = %v, want ErrNotFound", tc.scope, tc.name, err)
		}
		if _, err := s.ProvisioningTemplateVersion(ctx, tc.scope, tc.name, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ProvisioningTemplateVersion(%v, %s) = %v, want ErrNotFound", tc.scope, tc.name, err)
		}
		if _, _, err := s.ListProvisioningTemplateVersions(ctx, tc.scope, tc.name, 0, 10); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ListProvisioningTemplateVersions(%v, %s) = %v, want ErrNotFound", tc.scope, tc.name, err)
		}
		called := false
		if err := s.DeleteProvisioningTemplateVersion(ctx, tc.scope, tc.name, 1, func(*iot.ProvisioningTemplateVersion) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) || called {
			t.Errorf("DeleteProvisioningTemplateVersion(%v, %s) = %v (check called: %v), want ErrNotFound", tc.scope, tc.name, err, called)
		}
		if err := s.DeleteProvisioningTemplate(ctx, tc.scope, tc.name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteProvisioningTemplate(%v, %s) = %v, want ErrNotFound", tc.scope, tc.name, err)
		}
	}
	if ids, _, _ := listVersions(10); !slices.Equal(ids, []int64{1, 3, 4, 5, 7}) {
		t.Fatalf("versions after the calls on missing templates: %v", ids)
	}
}

// pendingCertificate stores a PENDING_ACTIVATION certificate with its
// ownership token, as CreateKeysAndCertificate over MQTT does.
func pendingCertificate(t *testing.T, s store.Store, scope iot.Scope, n int, token string, expires time.Time) *iot.Certificate {
	t.Helper()
	c := cert(scope, n, base)
	c.Status = iot.StatusPendingActivation
	if err := s.CreateProvisionedCertificate(t.Context(), c, store.ProvisioningToken{Hash: token, ExpiresAt: expires}); err != nil {
		t.Fatalf("CreateProvisionedCertificate(%d): %v", n, err)
	}
	return c
}

func testOwnershipTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	expires := base.Add(time.Hour).In(time.FixedZone("UTC+1", 60*60))
	c := pendingCertificate(t, s, scopeA, 1, "hash-a", expires)
	pendingCertificate(t, s, scopeB, 2, "hash-b", expires.Add(time.Minute))
	id, at, err := s.OwnershipToken(ctx, scopeA, "hash-a")
	if err != nil || id != c.ID || !at.Equal(expires) || !inUTC(at) {
		t.Fatalf("OwnershipToken = %.8s, %v, %v; want %.8s, %v", id, at, err, c.ID, expires)
	}
	for _, tc := range []struct {
		scope iot.Scope
		hash  string
	}{{scopeB, "hash-a"}, {scopeC, "hash-a"}, {scopeA, "hash-b"}, {scopeA, "hash-unknown"}, {scopeA, ""}} {
		if id, _, err := s.OwnershipToken(ctx, tc.scope, tc.hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OwnershipToken(%v, %s) = %.8s, %v; want ErrNotFound", tc.scope, tc.hash, id, err)
		}
	}
	if id, _, err := s.OwnershipToken(ctx, scopeB, "hash-b"); err != nil || id != cert(scopeB, 2, base).ID {
		t.Fatalf("scopeB's token = %.8s, %v", id, err)
	}
	// A token swept at expiry is gone.
	if _, err := s.ExpireProvisioningTokens(ctx, expires.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OwnershipToken(ctx, scopeA, "hash-a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired token after the sweep = %v, want ErrNotFound", err)
	}
}

// activate returns a Certificate rule that makes the certificate ACTIVE.
func activate(at time.Time) func(*iot.Certificate) error {
	return func(c *iot.Certificate) error {
		c.Status = iot.StatusActive
		c.LastModifiedAt = at
		c.CustomerVersion++
		c.GenerationID = "gen-active"
		return nil
	}
}

// createThing returns a Thing rule that creates the thing with the
// attributes and leaves it as it is if it exists.
func createThing(scope iot.Scope, name string, at time.Time, attributes map[string]string) func(*iot.Thing) (*iot.Thing, error) {
	return func(existing *iot.Thing) (*iot.Thing, error) {
		if existing != nil {
			return nil, nil
		}
		th := newThing(scope, name, "", maps.Clone(attributes))
		th.CreatedAt, th.ModifiedAt = at, at
		return th, nil
	}
}

// changesSince returns the changes after seq, each as changeString.
func changesSince(t *testing.T, s store.Store, seq int64) []string {
	t.Helper()
	changes, err := s.Changes(t.Context(), seq, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range changes {
		out = append(out, changeString(c.Scope, c.Kind, c.Name, c.At))
	}
	return out
}

// changeString is a change as changesSince gives it.
func changeString(scope iot.Scope, kind store.ChangeKind, name string, at time.Time) string {
	return fmt.Sprintf("%v %s %s %s", scope, kind, name, at.UTC().Format(time.RFC3339Nano))
}

func attachedPolicyNames(t *testing.T, s store.Store, c *iot.Certificate) []string {
	t.Helper()
	list, more, err := s.ListAttachedPolicies(t.Context(), c.Scope, c.ARN(), "", 100)
	if err != nil || more {
		t.Fatalf("ListAttachedPolicies(%.8s): more %v, %v", c.ID, more, err)
	}
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	return names
}

func principalThings(t *testing.T, s store.Store, c *iot.Certificate) []iot.ThingPrincipal {
	t.Helper()
	list, more, err := s.ListPrincipalThings(t.Context(), c.Scope, c.ARN(), store.AnyAttachment, "", 100)
	if err != nil || more {
		t.Fatalf("ListPrincipalThings(%.8s): more %v, %v", c.ID, more, err)
	}
	return list
}

func testProvision(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := pendingCertificate(t, s, scopeA, 1, "tok", base.Add(time.Hour))
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "existing", base), nil); err != nil {
		t.Fatal(err)
	}
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at := base.Add(10 * time.Minute)
	const doc = `{"Version":"2012-10-17","Statement":[]}`
	var thingCalls []*iot.Thing
	makeThing := createThing(scopeA, "dev", at, map[string]string{"serial": "s1"})
	var certSeen *iot.Certificate
	got, err := s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At:            at,
		TokenHash:     "tok",
		CertificateID: c.ID,
		Certificate: func(x *iot.Certificate) error {
			y := *x
			certSeen = &y
			return activate(at)(x)
		},
		ThingName: "dev",
		Thing: func(existing *iot.Thing) (*iot.Thing, error) {
			thingCalls = append(thingCalls, existing)
			return makeThing(existing)
		},
		Policies:    []store.ProvisionedPolicy{{Name: "gen", Document: doc, GenerationID: "g-gen"}, {Name: "existing"}},
		MaxPolicies: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if certSeen == nil || !equalCertificates(certSeen, c) {
		t.Fatalf("the Certificate rule saw %+v, want the stored %+v", certSeen, c)
	}
	if len(thingCalls) != 1 || thingCalls[0] != nil {
		t.Fatalf("the Thing rule was given %v, want nil once", thingCalls)
	}
	wantThing := newThing(scopeA, "dev", "", map[string]string{"serial": "s1"})
	wantThing.CreatedAt, wantThing.ModifiedAt = at, at
	wantCert := *c
	wantCert.Status, wantCert.LastModifiedAt, wantCert.CustomerVersion, wantCert.GenerationID = iot.StatusActive, at, 2, "gen-active"
	if got.Thing == nil || !equalThings(got.Thing, wantThing) {
		t.Fatalf("Provisioned.Thing = %+v, want %+v", got.Thing, wantThing)
	}
	if got.Certificate == nil || !equalCertificates(got.Certificate, &wantCert) {
		t.Fatalf("Provisioned.Certificate = %+v, want %+v", got.Certificate, &wantCert)
	}
	if !slices.Equal(got.CreatedPolicies, []string{"gen"}) {
		t.Fatalf("Provisioned.CreatedPolicies = %q, want [gen]", got.CreatedPolicies)
	}

	// What was written.
	if _, _, err := s.OwnershipToken(ctx, scopeA, "tok"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the used token = %v, want ErrNotFound", err)
	}
	if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || !equalCertificates(stored, &wantCert) {
		t.Fatalf("the stored certificate = %+v, %v; want %+v", stored, err, &wantCert)
	}
	if stored, err := s.Thing(ctx, scopeA, "dev"); err != nil || !equalThings(stored, wantThing) {
		t.Fatalf("the stored thing = %+v, %v; want %+v", stored, err, wantThing)
	}
	if list, _, err := s.ListThingPrincipals(ctx, scopeA, "dev", store.AnyAttachment, "", 10); err != nil ||
		!slices.Equal(list, []iot.ThingPrincipal{{ThingName: "dev", Principal: c.ARN()}}) {
		t.Fatalf("the thing's principals: %+v, %v", list, err)
	}
	if names := attachedPolicyNames(t, s, c); !slices.Equal(names, []string{"existing", "gen"}) {
		t.Fatalf("the certificate's policies: %q, want [existing gen]", names)
	}
	if p, err := s.Policy(ctx, scopeA, "gen"); err != nil || p.DefaultVersionID != 1 || p.DefaultDocument != doc ||
		p.GenerationID != "g-gen" || !p.CreatedAt.Equal(at) || !p.LastModifiedAt.Equal(at) {
		t.Fatalf("the created policy: %+v, %v", p, err)
	}
	if p, err := s.Policy(ctx, scopeA, "existing"); err != nil || p.DefaultDocument != newPolicy(scopeA, "existing", base).DefaultDocument {
		t.Fatalf("the existing policy: %+v, %v", p, err)
	}
	if list, err := s.ListPolicyVersions(ctx, scopeA, "gen"); err != nil || len(list) != 1 {
		t.Fatalf("the created policy's versions: %+v, %v", list, err)
	}
	// The status change and the attachments are on the feed; nothing else
	// but the new thing may be.
	changes := changesSince(t, s, start)
	wantCertChange := changeString(scopeA, store.ChangeCertificate, c.ID, at)
	wantPrincipalChange := changeString(scopeA, store.ChangePrincipal, c.ARN(), at)
	if !slices.Contains(changes, wantCertChange) || !slices.Contains(changes, wantPrincipalChange) {
		t.Fatalf("changes %q; want the certificate's status change and its attachments", changes)
	}
	for _, ch := range changes {
		if ch != wantCertChange && ch != wantPrincipalChange && ch != changeString(scopeA, store.ChangeThing, "dev", at) {
			t.Fatalf("change %q; want only the certificate's status change and its attachments", ch)
		}
	}

	// The token is used: a second plan with it writes nothing.
	last, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At: at.Add(time.Minute), TokenHash: "tok", CertificateID: c.ID,
		Certificate: func(x *iot.Certificate) error { x.Status = iot.StatusInactive; return nil },
		ThingName:   "dev2", Thing: createThing(scopeA, "dev2", at, nil),
		Policies:    []store.ProvisionedPolicy{{Name: "gen2", Document: doc}},
		MaxPolicies: 10,
	})
	if !errors.Is(err, store.ErrNoToken) {
		t.Fatalf("provisioning with a used token = %v, want ErrNoToken", err)
	}
	if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || stored.Status != iot.StatusActive {
		t.Fatalf("a refused plan changed the certificate: %+v, %v", stored, err)
	}
	if _, err := s.Thing(ctx, scopeA, "dev2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused plan created its thing: %v", err)
	}
	if _, err := s.Policy(ctx, scopeA, "gen2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused plan created its policy: %v", err)
	}
	if changes := changesSince(t, s, last); len(changes) != 0 {
		t.Fatalf("a refused plan recorded changes %q", changes)
	}

	// A plan of another scope finds neither the token nor the certificate.
	other := pendingCertificate(t, s, scopeA, 2, "tok-2", base.Add(time.Hour))
	if _, err := s.Provision(ctx, scopeB, &store.ProvisionWrite{At: at, TokenHash: "tok-2", CertificateID: other.ID, MaxPolicies: 10}); !errors.Is(err, store.ErrNoToken) {
		t.Fatalf("provisioning with another scope's token = %v, want ErrNoToken", err)
	}
	if id, _, err := s.OwnershipToken(ctx, scopeA, "tok-2"); err != nil || id != other.ID {
		t.Fatalf("another scope's plan used the token: %.8s, %v", id, err)
	}
}

// testProvisionAllOrNothing runs plans that fail at each of their steps:
// each fails with its error and writes nothing.
func testProvisionAllOrNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	expires := base.Add(time.Hour)
	at := base.Add(10 * time.Minute)
	const doc = `{"doc":"generated"}`
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "existing", base), nil); err != nil {
		t.Fatal(err)
	}
	// A policy of a generated name with another document.
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "taken", base), nil); err != nil {
		t.Fatal(err)
	}
	taken := newThing(scopeA, "taken", "", map[string]string{"k": "v"})
	mustCreateThing(t, s, taken)
	mustCreateThing(t, s, newThing(scopeA, "owner", "", nil))
	// A certificate whose token another plan presents.
	another := pendingCertificate(t, s, scopeA, 99, "another's", expires)
	refuse := errors.New("refused")

	for i, tc := range []struct {
		name string
		// plan changes the plan that would otherwise succeed.
		plan func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate)
		want error
		// thenOK: the plan unchanged succeeds afterwards.
		thenOK bool
	}{
		{"an expired token", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.At = expires.Add(time.Microsecond)
		}, store.ErrNoToken, true},
		{"another certificate's token", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.TokenHash = "another's"
		}, store.ErrNoToken, true},
		{"a token of an unknown hash", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.TokenHash = "unknown"
		}, store.ErrNoToken, true},
		{"a missing policy", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.Policies = append(w.Policies, store.ProvisionedPolicy{Name: "absent"})
		}, store.ErrNotFound, true},
		{"a policy of the generated name with another document", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.Policies = append(w.Policies, store.ProvisionedPolicy{Name: "taken", Document: doc})
		}, store.ErrExists, true},
		{"a Thing rule refusing the existing thing", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.ThingName = "taken"
			w.Thing = func(existing *iot.Thing) (*iot.Thing, error) {
				if existing == nil {
					th := newThing(scopeA, "taken", "", nil)
					th.ID = "new-uuid"
					return th, nil
				}
				return nil, refuse
			}
		}, refuse, true},
		{"a Thing rule refusing a new thing", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.Thing = func(*iot.Thing) (*iot.Thing, error) { return nil, refuse }
		}, refuse, true},
		{"a Certificate rule refusing", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.Certificate = func(x *iot.Certificate) error {
				x.Status = iot.StatusActive
				return refuse
			}
		}, refuse, true},
		{"too many policies", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.MaxPolicies = 1
		}, store.ErrLimit, true},
		{"a certificate attached to another thing exclusively", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			mustAttachThing(t, s, scopeA, "owner", c.ID, true)
		}, store.ErrExclusive, false},
		{"a missing certificate", func(t *testing.T, w *store.ProvisionWrite, c *iot.Certificate) {
			w.TokenHash = ""
			w.CertificateID = cert(scopeA, 999, base).ID
		}, store.ErrNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pendingCertificate(t, s, scopeA, 100+i, fmt.Sprint("tok-", i), expires)
			thing, policy := fmt.Sprint("dev-", i), fmt.Sprint("gen-", i)
			plan := func() *store.ProvisionWrite {
				return &store.ProvisionWrite{
					At:            at,
					TokenHash:     fmt.Sprint("tok-", i),
					CertificateID: c.ID,
					Certificate:   activate(at),
					ThingName:     thing,
					Thing:         createThing(scopeA, thing, at, map[string]string{"case": fmt.Sprint(i)}),
					Policies:      []store.ProvisionedPolicy{{Name: policy, Document: doc}, {Name: "existing"}},
					MaxPolicies:   10,
				}
			}
			w := plan()
			tc.plan(t, w, c)
			before := principalThings(t, s, c)
			start, err := s.LastChange(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Provision(ctx, scopeA, w); !errors.Is(err, tc.want) {
				t.Fatalf("Provision = %v, want %v", err, tc.want)
			}
			if id, _, err := s.OwnershipToken(ctx, scopeA, fmt.Sprint("tok-", i)); err != nil || id != c.ID {
				t.Errorf("the token after a refused plan: %.8s, %v", id, err)
			}
			if id, _, err := s.OwnershipToken(ctx, scopeA, "another's"); err != nil || id != another.ID {
				t.Errorf("the other token after a refused plan: %.8s, %v", id, err)
			}
			if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || !equalCertificates(stored, c) {
				t.Errorf("the certificate after a refused plan: %+v, %v; want %+v", stored, err, c)
			}
			if _, err := s.Thing(ctx, scopeA, thing); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused plan created its thing: %v", err)
			}
			if stored, err := s.Thing(ctx, scopeA, "taken"); err != nil || !equalThings(stored, taken) {
				t.Errorf("a refused plan changed an existing thing: %+v, %v", stored, err)
			}
			if _, err := s.Policy(ctx, scopeA, policy); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused plan created its policy: %v", err)
			}
			if p, err := s.Policy(ctx, scopeA, "taken"); err != nil || p.DefaultDocument != newPolicy(scopeA, "taken", base).DefaultDocument {
				t.Errorf("a refused plan changed a policy: %+v, %v", p, err)
			}
			if names := attachedPolicyNames(t, s, c); len(names) != 0 {
				t.Errorf("a refused plan attached policies %q", names)
			}
			if after := principalThings(t, s, c); !slices.Equal(after, before) {
				t.Errorf("a refused plan attached the certificate to things: %+v, was %+v", after, before)
			}
			if list, _, err := s.ListThingPrincipals(ctx, scopeA, "taken", store.AnyAttachment, "", 10); err != nil || len(list) != 0 {
				t.Errorf("a refused plan attached a certificate to an existing thing: %+v, %v", list, err)
			}
			if changes := changesSince(t, s, start); len(changes) != 0 {
				t.Errorf("a refused plan recorded changes %q", changes)
			}
			if t.Failed() || !tc.thenOK {
				return
			}
			// The plan as it was, with the same token, still succeeds.
			if _, err := s.Provision(ctx, scopeA, plan()); err != nil {
				t.Fatalf("the plan unchanged after a refused one: %v", err)
			}
			if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || stored.Status != iot.StatusActive {
				t.Fatalf("the certificate after the plan: %+v, %v", stored, err)
			}
			if names := attachedPolicyNames(t, s, c); !slices.Equal(names, []string{"existing", policy}) {
				t.Fatalf("the certificate's policies after the plan: %q", names)
			}
		})
	}
}

// testProvisionExistingThing: a plan naming a thing that exists gives it to
// the Thing rule, which may change it or leave it.
func testProvisionExistingThing(t *testing.T, s store.Store) {
	ctx := t.Context()
	dev := newThing(scopeA, "dev", "sensor", map[string]string{"a": "1", "b": "2"})
	mustCreateThing(t, s, dev)
	mustCreateThing(t, s, newThing(scopeA, "other", "", map[string]string{"serial": "s0"}))
	c1 := pendingCertificate(t, s, scopeA, 1, "tok-1", base.Add(time.Hour))
	c2 := cert(scopeA, 2, base)
	c2.Status = iot.StatusActive
	mustCreate(t, s, c2)
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Changed: the thing takes its next version, and its attributes are
	// written where the filters find them.
	at1 := base.Add(time.Hour).In(time.FixedZone("UTC+3", 3*60*60))
	var calls []*iot.Thing
	got, err := s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At: at1, TokenHash: "tok-1", CertificateID: c1.ID, Certificate: activate(at1),
		ThingName: "dev",
		Thing: func(existing *iot.Thing) (*iot.Thing, error) {
			if existing == nil {
				calls = append(calls, nil)
				th := newThing(scopeA, "dev", "", nil)
				th.ID = "a-new-uuid"
				return th, nil
			}
			seen := *existing
			seen.Attributes = maps.Clone(existing.Attributes)
			calls = append(calls, &seen)
			changed := *existing
			changed.Attributes = map[string]string{"a": "3", "serial": "s1"}
			return &changed, nil
		},
		MaxPolicies: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0] != nil || calls[1] == nil || !equalThings(calls[1], dev) {
		t.Fatalf("the Thing rule was given %+v; want nil, then the stored thing %+v", calls, dev)
	}
	want := *dev
	want.Attributes = map[string]string{"a": "3", "serial": "s1"}
	want.Version, want.ModifiedAt = 2, at1
	if got.Thing == nil || !equalThings(got.Thing, &want) {
		t.Fatalf("Provisioned.Thing = %+v, want %+v", got.Thing, &want)
	}
	stored, err := s.Thing(ctx, scopeA, "dev")
	if err != nil || !equalThings(stored, &want) || !inUTC(stored.ModifiedAt) {
		t.Fatalf("the stored thing = %+v, %v; want %+v", stored, err, &want)
	}
	for f, wantNames := range map[store.ThingFilter][]string{
		{AttributeName: "serial", AttributeValue: "s1"}: {"dev"},
		{AttributeName: "serial"}:                       {"dev", "other"},
		{AttributeName: "a", AttributeValue: "3"}:       {"dev"},
		{AttributeName: "a", AttributeValue: "1"}:       nil,
		{AttributeName: "b"}:                            nil,
		{TypeName: "sensor"}:                            {"dev"},
	} {
		page, _, err := s.ListThings(ctx, scopeA, f, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if names := thingNames(page); !slices.Equal(names, wantNames) {
			t.Errorf("ListThings(%+v) = %q, want %q", f, names, wantNames)
		}
	}
	if list := principalThings(t, s, c1); !slices.Equal(list, []iot.ThingPrincipal{{ThingName: "dev", Principal: c1.ARN()}}) {
		t.Fatalf("c1's things: %+v", list)
	}
	changes := changesSince(t, s, start)
	if wantChange := changeString(scopeA, store.ChangeThing, "dev", at1); !slices.Contains(changes, wantChange) {
		t.Fatalf("changes %q; want the thing's change %q", changes, wantChange)
	}

	// Left: the thing stays as it is, and the certificate is attached.
	last, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at2 := base.Add(2 * time.Hour)
	got, err = s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At: at2, CertificateID: c2.ID,
		ThingName: "dev", Thing: createThing(scopeA, "dev", at2, map[string]string{"ignored": "yes"}),
		MaxPolicies: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Thing == nil || !equalThings(got.Thing, &want) {
		t.Fatalf("Provisioned.Thing of a thing left as it is = %+v, want %+v", got.Thing, &want)
	}
	if got.Certificate == nil || !equalCertificates(got.Certificate, c2) {
		t.Fatalf("Provisioned.Certificate without a Certificate rule = %+v, want %+v", got.Certificate, c2)
	}
	if stored, err := s.Thing(ctx, scopeA, "dev"); err != nil || !equalThings(stored, &want) {
		t.Fatalf("a thing left as it is was written: %+v, %v; want %+v", stored, err, &want)
	}
	if stored, err := s.Certificate(ctx, scopeA, c2.ID); err != nil || !equalCertificates(stored, c2) {
		t.Fatalf("a plan without a Certificate rule changed the certificate: %+v, %v", stored, err)
	}
	if list, _, err := s.ListThingPrincipals(ctx, scopeA, "dev", store.AnyAttachment, "", 10); err != nil || len(list) != 2 {
		t.Fatalf("the thing's principals: %+v, %v; want c1 and c2", list, err)
	}
	for _, ch := range changesSince(t, s, last) {
		if want := changeString(scopeA, store.ChangePrincipal, c2.ARN(), at2); ch != want {
			t.Fatalf("a plan leaving the thing recorded %q; want only %q", ch, want)
		}
	}

	// A plan of a thing alone.
	got, err = s.Provision(ctx, scopeA, &store.ProvisionWrite{At: at2, ThingName: "alone", Thing: createThing(scopeA, "alone", at2, nil), MaxPolicies: 10})
	if err != nil || got.Thing == nil || got.Thing.Name != "alone" || got.Certificate != nil {
		t.Fatalf("a plan of a thing alone: %+v, %v", got, err)
	}
	if _, err := s.Thing(ctx, scopeA, "alone"); err != nil {
		t.Fatalf("a plan of a thing alone did not create it: %v", err)
	}
}

// testProvisionNewCertificate: a plan registering a certificate inserts it,
// once.
func testProvisionNewCertificate(t *testing.T, s store.Store) {
	ctx := t.Context()
	at := base.Add(time.Hour)
	c := cert(scopeA, 1, at)
	c.Status = iot.StatusActive
	c.IssuerID, c.Serial = "issuer", "0a1b"
	got, err := s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At: at, NewCertificate: c, CertificateID: c.ID,
		ThingName: "dev", Thing: createThing(scopeA, "dev", at, nil),
		Policies:    []store.ProvisionedPolicy{{Name: "gen", Document: "doc"}},
		MaxPolicies: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate == nil || !equalCertificates(got.Certificate, c) {
		t.Fatalf("Provisioned.Certificate = %+v, want %+v", got.Certificate, c)
	}
	stored, err := s.Certificate(ctx, scopeA, c.ID)
	if err != nil || !equalCertificates(stored, c) || stored.IssuerID != "issuer" || stored.Serial != "0a1b" {
		t.Fatalf("the registered certificate = %+v, %v; want %+v", stored, err, c)
	}
	if names := attachedPolicyNames(t, s, c); !slices.Equal(names, []string{"gen"}) {
		t.Fatalf("the registered certificate's policies: %q", names)
	}
	if list := principalThings(t, s, c); !slices.Equal(list, []iot.ThingPrincipal{{ThingName: "dev", Principal: c.ARN()}}) {
		t.Fatalf("the registered certificate's things: %+v", list)
	}

	// Registered already: ErrExists, and nothing of the plan is written.
	again := cert(scopeA, 1, at.Add(time.Hour))
	again.Status = iot.StatusInactive
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Provision(ctx, scopeA, &store.ProvisionWrite{
		At: at.Add(time.Hour), NewCertificate: again, CertificateID: again.ID,
		Certificate: activate(at.Add(time.Hour)),
		ThingName:   "dev2", Thing: createThing(scopeA, "dev2", at, nil),
		Policies:    []store.ProvisionedPolicy{{Name: "gen2", Document: "doc"}},
		MaxPolicies: 10,
	})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("registering a registered certificate = %v, want ErrExists", err)
	}
	if stored, err := s.Certificate(ctx, scopeA, c.ID); err != nil || !equalCertificates(stored, c) {
		t.Fatalf("a refused registration changed the certificate: %+v, %v", stored, err)
	}
	if _, err := s.Thing(ctx, scopeA, "dev2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused registration created its thing: %v", err)
	}
	if _, err := s.Policy(ctx, scopeA, "gen2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused registration created its policy: %v", err)
	}
	if names := attachedPolicyNames(t, s, c); !slices.Equal(names, []string{"gen"}) {
		t.Fatalf("a refused registration attached policies: %q", names)
	}
	if changes := changesSince(t, s, start); len(changes) != 0 {
		t.Fatalf("a refused registration recorded changes %q", changes)
	}

	// The same certificate in another scope is another registration.
	inB := cert(scopeB, 1, at)
	if _, err := s.Provision(ctx, scopeB, &store.ProvisionWrite{At: at, NewCertificate: inB, CertificateID: inB.ID, MaxPolicies: 10}); err != nil {
		t.Fatalf("registering the certificate in another scope: %v", err)
	}
	if stored, err := s.Certificate(ctx, scopeB, inB.ID); err != nil || !equalCertificates(stored, inB) {
		t.Fatalf("the certificate registered in scopeB: %+v, %v", stored, err)
	}
}

// replicaProvision: replicas provisioning many devices at once that name
// one thing and one generated policy create each once and attach every
// certificate to both; no plan fails for the race. A second round names a
// thing alone, since the policy's lock, taken first, orders the first
// round's plans before they reach the thing.
func replicaProvision(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const n = 10
	const doc = `{"doc":"fleet"}`
	for round, policy := range []string{"fleet-policy", ""} {
		thing := fmt.Sprint("fleet-dev-", round)
		// Certificate and token k: the plan of store a (k < n) or b.
		var certs []*iot.Certificate
		token := func(k int) string { return fmt.Sprint("tok-", round, "-", k) }
		for k := range 2 * n {
			certs = append(certs, pendingCertificate(t, a, scopeA, 100*round+k, token(k), base.Add(time.Hour)))
		}
		at := base.Add(time.Minute)
		var mu sync.Mutex
		created := 0
		both(a, b, n, func(s store.Store, i int) {
			k := i
			if s == b {
				k += n
			}
			c := certs[k]
			w := &store.ProvisionWrite{
				At: at, TokenHash: token(k), CertificateID: c.ID, Certificate: activate(at),
				ThingName: thing,
				Thing: func(existing *iot.Thing) (*iot.Thing, error) {
					if existing != nil {
						return nil, nil
					}
					th := newThing(scopeA, thing, "", map[string]string{"batch": "1"})
					th.ID = fmt.Sprintf("uuid-%.8s", c.ID) // each plan's own UUID
					return th, nil
				},
				MaxPolicies: 10,
			}
			if policy != "" {
				w.Policies = []store.ProvisionedPolicy{{Name: policy, Document: doc, GenerationID: "g"}}
			}
			got, err := s.Provision(ctx, scopeA, w)
			if err != nil {
				t.Errorf("round %d: Provision(%.8s): %v", round, c.ID, err)
				return
			}
			mu.Lock()
			created += len(got.CreatedPolicies)
			mu.Unlock()
		})
		if t.Failed() {
			return
		}
		if th, err := b.Thing(ctx, scopeA, thing); err != nil || th.Version != 1 {
			t.Fatalf("round %d: the thing after %d racing plans: %+v, %v; want it at version 1", round, 2*n, th, err)
		}
		principals, more, err := b.ListThingPrincipals(ctx, scopeA, thing, store.AnyAttachment, "", 100)
		if err != nil || more || len(principals) != 2*n {
			t.Fatalf("round %d: the thing has %d principals (%v), want %d", round, len(principals), err, 2*n)
		}
		onThing := map[string]bool{}
		for _, p := range principals {
			onThing[p.Principal] = true
		}
		var targets []string
		if policy != "" {
			if created != 1 {
				t.Errorf("%d plans report creating the policy, want 1", created)
			}
			policies, _, err := b.ListPolicies(ctx, scopeA, "", true, 10)
			if err != nil || len(policies) != 1 || policies[0].Name != policy {
				t.Fatalf("policies after %d racing plans: %+v, %v; want %s once", 2*n, policies, err, policy)
			}
			if versions, err := b.ListPolicyVersions(ctx, scopeA, policy); err != nil || len(versions) != 1 || versions[0].Document != doc {
				t.Fatalf("the policy's versions: %+v, %v; want one", versions, err)
			}
			targets, more, err = b.ListPolicyTargets(ctx, scopeA, policy, "", 100)
			if err != nil || more || len(targets) != 2*n {
				t.Fatalf("the policy has %d targets (%v), want %d", len(targets), err, 2*n)
			}
		} else if created != 0 {
			t.Errorf("round %d: %d plans without policies report creating one", round, created)
		}
		for k, c := range certs {
			if !onThing[c.ARN()] || (policy != "" && !slices.Contains(targets, c.ARN())) {
				t.Errorf("round %d: certificate %.8s is not attached to the thing and the policy", round, c.ID)
			}
			if stored, err := a.Certificate(ctx, scopeA, c.ID); err != nil || stored.Status != iot.StatusActive {
				t.Errorf("round %d: certificate %.8s after its plan: %+v, %v", round, c.ID, stored, err)
			}
			if _, _, err := a.OwnershipToken(ctx, scopeA, token(k)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("round %d: token %d after its plan: %v, want ErrNotFound", round, k, err)
			}
		}
	}
	things, _, err := a.ListThings(ctx, scopeA, store.ThingFilter{}, "", 10)
	if err != nil || !slices.Equal(thingNames(things), []string{"fleet-dev-0", "fleet-dev-1"}) {
		t.Fatalf("things after both rounds: %v, %v; want each round's once", thingNames(things), err)
	}
}
