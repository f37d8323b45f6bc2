package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// newThingType returns a thing type in the scope, created at base.
func newThingType(scope iot.Scope, name string, searchable ...string) *iot.ThingType {
	return &iot.ThingType{
		Scope:                scope,
		Name:                 name,
		ID:                   "type-uuid-" + scope.AccountID + "-" + scope.Region + "-" + name,
		Description:          "the " + name + " type",
		SearchableAttributes: searchable,
		CreatedAt:            base,
	}
}

func mustCreateThingType(t *testing.T, s store.Store, tt *iot.ThingType, tags ...iot.Tag) {
	t.Helper()
	if err := s.CreateThingType(t.Context(), tt, tags); err != nil {
		t.Fatalf("CreateThingType(%v, %s): %v", tt.Scope, tt.Name, err)
	}
}

// equalThingTypes compares two thing types field by field; nil and empty
// searchable attributes are equal.
func equalThingTypes(a, b *iot.ThingType) bool {
	return a.Scope == b.Scope && a.Name == b.Name && a.ID == b.ID && a.Description == b.Description &&
		slices.Equal(a.SearchableAttributes, b.SearchableAttributes) &&
		a.Deprecated == b.Deprecated && a.DeprecatedAt.Equal(b.DeprecatedAt) && a.CreatedAt.Equal(b.CreatedAt)
}

func thingTypeResource(scope iot.Scope, name string) iot.Resource {
	return iot.Resource{Scope: scope, Type: iot.TypeThingType, ID: name}
}

func thingTypeNames(types []iot.ThingType) []string {
	names := make([]string, len(types))
	for i, tt := range types {
		names[i] = tt.Name
	}
	return names
}

func testThingTypes(t *testing.T, s store.Store) {
	ctx := t.Context()
	sensor := newThingType(scopeA, "sensor", "serial", "model", "site")
	sensor.CreatedAt = base.Add(time.Second + time.Microsecond)
	mustCreateThingType(t, s, sensor, iot.Tag{Key: "team", Value: "a"}, iot.Tag{Key: "floor", Value: "3"})
	got, err := s.ThingType(ctx, scopeA, "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if !equalThingTypes(got, sensor) {
		t.Fatalf("ThingType =\n%+v\nwant\n%+v", got, sensor)
	}
	if got.Deprecated || !got.DeprecatedAt.IsZero() {
		t.Fatalf("a new type reads back deprecated: %v at %v", got.Deprecated, got.DeprecatedAt)
	}
	if !inUTC(got.CreatedAt) || got.CreatedAt.Nanosecond() != sensor.CreatedAt.Nanosecond() {
		t.Fatalf("creation time %v is not the stored instant in UTC with its microseconds", got.CreatedAt)
	}
	if tags, err := s.Tags(ctx, thingTypeResource(scopeA, "sensor")); err != nil ||
		len(tags) != 2 || tags[0] != (iot.Tag{Key: "floor", Value: "3"}) || tags[1] != (iot.Tag{Key: "team", Value: "a"}) {
		t.Fatalf("the type's tags = %v, %v", tags, err)
	}

	// No searchable attributes, nil or empty, and no description.
	for _, tc := range []struct {
		name       string
		searchable []string
	}{{"bare-nil", nil}, {"bare-empty", []string{}}} {
		tt := newThingType(scopeA, tc.name)
		tt.SearchableAttributes, tt.Description = tc.searchable, ""
		mustCreateThingType(t, s, tt)
		got, err := s.ThingType(ctx, scopeA, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !equalThingTypes(got, tt) || len(got.SearchableAttributes) != 0 {
			t.Fatalf("a type without searchable attributes reads back as %+v", got)
		}
		if tags, err := s.Tags(ctx, thingTypeResource(scopeA, tc.name)); err != nil || len(tags) != 0 {
			t.Fatalf("an untagged type's tags = %v, %v", tags, err)
		}
	}

	// One name per scope.
	again := newThingType(scopeA, "sensor")
	again.ID, again.Description = "another-uuid", "another"
	if err := s.CreateThingType(ctx, again, []iot.Tag{{Key: "x", Value: "y"}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second type of one name = %v, want ErrExists", err)
	}
	if got, err := s.ThingType(ctx, scopeA, "sensor"); err != nil || !equalThingTypes(got, sensor) {
		t.Fatalf("after a refused create: %+v, %v", got, err)
	}
	if tags, err := s.Tags(ctx, thingTypeResource(scopeA, "sensor")); err != nil || len(tags) != 2 {
		t.Fatalf("a refused create changed the tags: %v, %v", tags, err)
	}
	if _, err := s.ThingType(ctx, scopeA, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an absent type = %v, want ErrNotFound", err)
	}
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if _, err := s.ThingType(ctx, scope, "sensor"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%v sees a type of %v: %v", scope, scopeA, err)
		}
		if _, err := s.Tags(ctx, thingTypeResource(scope, "sensor")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%v reads the tags of a type of %v: %v", scope, scopeA, err)
		}
	}
	other := newThingType(scopeB, "sensor", "imei")
	mustCreateThingType(t, s, other)
	for _, want := range []*iot.ThingType{sensor, other} {
		if got, err := s.ThingType(ctx, want.Scope, "sensor"); err != nil || !equalThingTypes(got, want) {
			t.Fatalf("the same name in two scopes: %v has %+v, %v; want %+v", want.Scope, got, err, want)
		}
	}
	if tags, err := s.Tags(ctx, thingTypeResource(scopeB, "sensor")); err != nil || len(tags) != 0 {
		t.Fatalf("another scope's type of the same name has tags %v, %v", tags, err)
	}
}

func testListThingTypes(t *testing.T, s store.Store) {
	ctx := t.Context()
	names := []string{"gateway", "B", "a", "_x", "A-1", "9", "-z", "type:7"}
	byName := map[string]*iot.ThingType{}
	for i, name := range names {
		tt := newThingType(scopeA, name, "k")
		tt.CreatedAt = base.Add(time.Duration(len(names)-i) * time.Second) // not in name order
		mustCreateThingType(t, s, tt)
		byName[name] = tt
	}
	all := slices.Clone(names)
	slices.Sort(all) // bytewise
	// Other scopes have types that sort among them.
	mustCreateThingType(t, s, newThingType(scopeB, "B"))
	mustCreateThingType(t, s, newThingType(scopeB, "zzz"))
	mustCreateThingType(t, s, newThingType(scopeC, "0"))

	list := func(limit int) (names []string, sizes []int) {
		t.Helper()
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, more, err := s.ListThingTypes(ctx, scopeA, after, limit)
			if err != nil {
				t.Fatalf("ListThingTypes: %v", err)
			}
			if len(page) > limit || (more && len(page) != limit) {
				t.Fatalf("limit %d: a page of %d, more %v", limit, len(page), more)
			}
			for i := range page {
				want := byName[page[i].Name]
				if want == nil || !equalThingTypes(&page[i], want) {
					t.Fatalf("listed %+v, stored %+v", page[i], want)
				}
			}
			names = append(names, thingTypeNames(page)...)
			sizes = append(sizes, len(page))
			if !more {
				return names, sizes
			}
			after = page[len(page)-1].Name
		}
	}
	if names, sizes := list(3); !slices.Equal(names, all) || !slices.Equal(sizes, []int{3, 3, 2}) {
		t.Fatalf("8 types by 3: %v in pages of %v; want %v in pages of [3 3 2]", names, sizes, all)
	}
	if names, sizes := list(8); !slices.Equal(names, all) || !slices.Equal(sizes, []int{8}) {
		t.Fatalf("8 types by 8: %v in pages of %v; want one page without more", names, sizes)
	}
	if names, sizes := list(1); !slices.Equal(names, all) || len(sizes) != 8 {
		t.Fatalf("8 types by 1: %v in pages of %v", names, sizes)
	}
	if page, more, err := s.ListThingTypes(ctx, scopeA, all[len(all)-1], 3); err != nil || len(page) != 0 || more {
		t.Fatalf("after the last type: %v, more %v, %v", thingTypeNames(page), more, err)
	}
	for _, tc := range []struct {
		scope iot.Scope
		want  []string
	}{{scopeB, []string{"B", "zzz"}}, {scopeC, []string{"0"}}, {iot.Scope{AccountID: "333333333333", Region: "us-east-1"}, nil}} {
		page, more, err := s.ListThingTypes(ctx, tc.scope, "", 10)
		if err != nil || more || !slices.Equal(thingTypeNames(page), tc.want) {
			t.Fatalf("%v lists %v, more %v, %v; want %v", tc.scope, thingTypeNames(page), more, err, tc.want)
		}
		for i := range page {
			if page[i].Scope != tc.scope {
				t.Fatalf("%v lists a type of %v", tc.scope, page[i].Scope)
			}
		}
	}
}

func testDeprecateThingType(t *testing.T, s store.Store) {
	ctx := t.Context()
	tt := newThingType(scopeA, "lamp", "color")
	mustCreateThingType(t, s, tt)
	mustCreateThingType(t, s, newThingType(scopeB, "lamp"))

	at := base.Add(time.Hour + 7*time.Microsecond)
	if err := s.DeprecateThingType(ctx, scopeA, "lamp", true, at); err != nil {
		t.Fatal(err)
	}
	got, err := s.ThingType(ctx, scopeA, "lamp")
	if err != nil {
		t.Fatal(err)
	}
	want := *tt
	want.Deprecated, want.DeprecatedAt = true, at
	if !equalThingTypes(got, &want) || !inUTC(got.DeprecatedAt, got.CreatedAt) || got.DeprecatedAt.Nanosecond() != at.Nanosecond() {
		t.Fatalf("after deprecation =\n%+v\nwant\n%+v", got, &want)
	}
	if page, _, err := s.ListThingTypes(ctx, scopeA, "", 10); err != nil || len(page) != 1 || !equalThingTypes(&page[0], &want) {
		t.Fatalf("a deprecated type lists as %+v, %v", page, err)
	}
	if other, err := s.ThingType(ctx, scopeB, "lamp"); err != nil || other.Deprecated || !other.DeprecatedAt.IsZero() {
		t.Fatalf("deprecating a type deprecated another scope's: %+v, %v", other, err)
	}

	// Undone, the type is as it was made.
	if err := s.DeprecateThingType(ctx, scopeA, "lamp", false, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ThingType(ctx, scopeA, "lamp"); err != nil || !equalThingTypes(got, tt) || got.Deprecated || !got.DeprecatedAt.IsZero() {
		t.Fatalf("after undoing the deprecation: %+v, %v; want %+v", got, err, tt)
	}
	// And may be deprecated again, at the later time.
	again := at.Add(2 * time.Minute)
	if err := s.DeprecateThingType(ctx, scopeA, "lamp", true, again); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ThingType(ctx, scopeA, "lamp"); err != nil || !got.Deprecated || !got.DeprecatedAt.Equal(again) {
		t.Fatalf("deprecated again: %+v, %v; want deprecated at %v", got, err, again)
	}

	for _, deprecate := range []bool{true, false} {
		if err := s.DeprecateThingType(ctx, scopeA, "absent", deprecate, at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeprecateThingType(absent, %v) = %v, want ErrNotFound", deprecate, err)
		}
		if err := s.DeprecateThingType(ctx, scopeC, "lamp", deprecate, at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeprecateThingType in a scope without the type = %v, want ErrNotFound", err)
		}
	}
	if _, err := s.ThingType(ctx, scopeC, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deprecating an absent type made one: %v", err)
	}
}

func testDeleteThingType(t *testing.T, s store.Store) {
	ctx := t.Context()
	tt := newThingType(scopeA, "door", "floor")
	mustCreateThingType(t, s, tt, iot.Tag{Key: "team", Value: "a"})
	mustCreateThingType(t, s, newThingType(scopeB, "door"), iot.Tag{Key: "team", Value: "b"})
	if err := s.DeprecateThingType(ctx, scopeA, "door", true, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	res := thingTypeResource(scopeA, "door")

	refuse := errors.New("refused")
	var checked *iot.ThingType
	if err := s.DeleteThingType(ctx, scopeA, "door", func(tt *iot.ThingType) error { checked = tt; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("DeleteThingType with a refusing check = %v, want its error", err)
	}
	want := *tt
	want.Deprecated, want.DeprecatedAt = true, base.Add(time.Minute)
	if checked == nil || !equalThingTypes(checked, &want) {
		t.Fatalf("check saw %+v, want %+v", checked, &want)
	}
	if got, err := s.ThingType(ctx, scopeA, "door"); err != nil || !equalThingTypes(got, &want) {
		t.Fatalf("a refused delete deleted: %+v, %v", got, err)
	}

	// While a thing has the type, it stays, with its tags.
	mustCreateThing(t, s, newThing(scopeA, "front", "door", map[string]string{"floor": "1"}))
	// Things of another scope or another type do not hold it.
	mustCreateThing(t, s, newThing(scopeB, "back", "door", nil))
	mustCreateThing(t, s, newThing(scopeA, "window", "", nil))
	if err := s.DeleteThingType(ctx, scopeA, "door", func(*iot.ThingType) error { return nil }); !errors.Is(err, store.ErrAttached) {
		t.Fatalf("deleting a type a thing has = %v, want ErrAttached", err)
	}
	if got, err := s.ThingType(ctx, scopeA, "door"); err != nil || !equalThingTypes(got, &want) {
		t.Fatalf("after a refused delete: %+v, %v", got, err)
	}
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 1 {
		t.Fatalf("tags after a refused delete: %v, %v", tags, err)
	}
	// A refusing check comes before the count of things.
	if err := s.DeleteThingType(ctx, scopeA, "door", func(*iot.ThingType) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("DeleteThingType with a refusing check and a thing = %v, want the check's error", err)
	}

	// Once the thing leaves the type, the type may go.
	if _, err := s.UpdateThing(ctx, scopeA, "front", base.Add(time.Hour), func(th *iot.Thing) error { th.TypeName = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteThingType(ctx, scopeA, "door", func(*iot.ThingType) error { return nil }); err != nil {
		t.Fatalf("deleting a type no thing has: %v", err)
	}
	if _, err := s.ThingType(ctx, scopeA, "door"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted type = %v, want ErrNotFound", err)
	}
	if _, err := s.Tags(ctx, res); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted type's tags = %v, want ErrNotFound", err)
	}
	if page, _, err := s.ListThingTypes(ctx, scopeA, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("a deleted type is listed: %v, %v", thingTypeNames(page), err)
	}
	called := false
	if err := s.DeleteThingType(ctx, scopeA, "door", func(*iot.ThingType) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) || called {
		t.Fatalf("deleting a deleted type = %v (check called: %v), want ErrNotFound without a check", err, called)
	}
	if err := s.DeleteThingType(ctx, scopeA, "never", func(*iot.ThingType) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a type never made = %v, want ErrNotFound", err)
	}
	// The other scope's type of the same name is untouched, tags and all.
	if _, err := s.ThingType(ctx, scopeB, "door"); err != nil {
		t.Fatalf("deleting a type deleted another scope's: %v", err)
	}
	if tags, err := s.Tags(ctx, thingTypeResource(scopeB, "door")); err != nil || len(tags) != 1 || tags[0].Value != "b" {
		t.Fatalf("another scope's type lost its tags: %v, %v", tags, err)
	}

	// Re-created without tags, nothing of the old one is left.
	again := newThingType(scopeA, "door")
	again.ID = "a-new-uuid"
	mustCreateThingType(t, s, again)
	if got, err := s.ThingType(ctx, scopeA, "door"); err != nil || !equalThingTypes(got, again) {
		t.Fatalf("the re-created type: %+v, %v; want %+v", got, err, again)
	}
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 0 {
		t.Fatalf("a re-created type has the deleted one's tags: %v, %v", tags, err)
	}
}

func testThingTypeTags(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := thingTypeResource(scopeA, "meter")
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "a", Value: "1"}}, 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tagging a missing type = %v, want ErrNotFound", err)
	}
	if _, err := s.Tags(ctx, r); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the tags of a missing type = %v, want ErrNotFound", err)
	}
	mustCreateThingType(t, s, newThingType(scopeA, "meter"), iot.Tag{Key: "b", Value: "2"})
	// A thing of the same name is another resource.
	mustCreateThing(t, s, newThing(scopeA, "meter", "", nil), iot.Tag{Key: "thing", Value: "yes"})
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "two"}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "c", Value: "3"}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TagResource(ctx, r, []iot.Tag{{Key: "d", Value: "4"}}, 3); !errors.Is(err, store.ErrLimit) {
		t.Fatalf("a fourth tag with max 3 = %v, want ErrLimit", err)
	}
	if err := s.UntagResource(ctx, r, []string{"c", "absent"}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := []iot.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "two"}}; !slices.Equal(tags, want) {
		t.Fatalf("the type's tags %v, want %v", tags, want)
	}
	if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeThing, ID: "meter"}); err != nil ||
		!slices.Equal(tags, []iot.Tag{{Key: "thing", Value: "yes"}}) {
		t.Fatalf("the thing of the type's name has tags %v, %v; want only its own", tags, err)
	}
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if err := s.TagResource(ctx, thingTypeResource(scope, "meter"), []iot.Tag{{Key: "x", Value: "y"}}, 5); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%v tags a type of %v: %v", scope, scopeA, err)
		}
	}
}
