package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// newThing returns a thing in the scope, created and modified at base.
func newThing(scope iot.Scope, name, typeName string, attributes map[string]string) *iot.Thing {
	return &iot.Thing{
		Scope:      scope,
		Name:       name,
		ID:         "uuid-" + scope.AccountID + "-" + name,
		TypeName:   typeName,
		Attributes: attributes,
		Version:    1,
		CreatedAt:  base,
		ModifiedAt: base,
	}
}

func mustCreateThing(t *testing.T, s store.Store, th *iot.Thing, tags ...iot.Tag) {
	t.Helper()
	if err := s.CreateThing(t.Context(), th, tags); err != nil {
		t.Fatalf("CreateThing(%s): %v", th.Name, err)
	}
}

func mustAttachThing(t *testing.T, s store.Store, scope iot.Scope, thing, certificateID string, exclusive bool) {
	t.Helper()
	if err := s.AttachThingPrincipal(t.Context(), scope, thing, certificateID, exclusive, base); err != nil {
		t.Fatalf("AttachThingPrincipal(%s, %s, exclusive %v): %v", thing, certificateID, exclusive, err)
	}
}

// equalThings compares two things field by field; a nil and an empty
// attribute map are equal.
func equalThings(a, b *iot.Thing) bool {
	return a.Scope == b.Scope && a.Name == b.Name && a.ID == b.ID && a.TypeName == b.TypeName &&
		maps.Equal(a.Attributes, b.Attributes) && a.Version == b.Version &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ModifiedAt.Equal(b.ModifiedAt)
}

func thingNames(things []iot.Thing) []string {
	names := make([]string, len(things))
	for i, th := range things {
		names[i] = th.Name
	}
	return names
}

func testThings(t *testing.T, s store.Store) {
	ctx := t.Context()
	lamp := newThing(scopeA, "lamp", "light", map[string]string{"color": "red", "size": "10"})
	lamp.ModifiedAt = base.Add(time.Second + time.Microsecond)
	mustCreateThing(t, s, lamp, iot.Tag{Key: "team", Value: "a"}, iot.Tag{Key: "floor", Value: "3"})
	got, err := s.Thing(ctx, scopeA, "lamp")
	if err != nil {
		t.Fatal(err)
	}
	if !equalThings(got, lamp) {
		t.Fatalf("Thing =\n%+v\nwant\n%+v", got, lamp)
	}
	if !got.CreatedAt.Equal(base) || got.CreatedAt.Nanosecond() != base.Nanosecond() || got.ModifiedAt.Nanosecond() != lamp.ModifiedAt.Nanosecond() {
		t.Fatalf("times %v, %v do not keep microseconds", got.CreatedAt, got.ModifiedAt)
	}
	if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeThing, ID: "lamp"}); err != nil ||
		len(tags) != 2 || tags[0] != (iot.Tag{Key: "floor", Value: "3"}) || tags[1] != (iot.Tag{Key: "team", Value: "a"}) {
		t.Fatalf("the thing's tags = %v, %v", tags, err)
	}

	// Without attributes (nil or empty) and without a type.
	for _, tc := range []struct {
		name       string
		attributes map[string]string
	}{{"bare-nil", nil}, {"bare-empty", map[string]string{}}} {
		mustCreateThing(t, s, newThing(scopeA, tc.name, "", tc.attributes))
		got, err := s.Thing(ctx, scopeA, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Attributes) != 0 || got.TypeName != "" || got.Version != 1 || got.ID != "uuid-"+scopeA.AccountID+"-"+tc.name {
			t.Fatalf("a thing without attributes reads back as %+v", got)
		}
		if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeA, Type: iot.TypeThing, ID: tc.name}); err != nil || len(tags) != 0 {
			t.Fatalf("an untagged thing's tags = %v, %v", tags, err)
		}
	}

	// One name per scope.
	again := newThing(scopeA, "lamp", "", nil)
	again.ID = "another-uuid"
	if err := s.CreateThing(ctx, again, nil); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second thing of one name = %v, want ErrExists", err)
	}
	if got, err := s.Thing(ctx, scopeA, "lamp"); err != nil || !equalThings(got, lamp) {
		t.Fatalf("after a refused create: %+v, %v", got, err)
	}
	if _, err := s.Thing(ctx, scopeA, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an absent thing = %v, want ErrNotFound", err)
	}
	for _, scope := range []iot.Scope{scopeB, scopeC} {
		if _, err := s.Thing(ctx, scope, "lamp"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%v sees a thing of %v: %v", scope, scopeA, err)
		}
	}
	other := newThing(scopeB, "lamp", "other-type", map[string]string{"k": "v"})
	mustCreateThing(t, s, other)
	for _, want := range []*iot.Thing{lamp, other} {
		if got, err := s.Thing(ctx, want.Scope, "lamp"); err != nil || !equalThings(got, want) {
			t.Fatalf("the same name in two scopes: %v has %+v, %v; want %+v", want.Scope, got, err, want)
		}
	}
	if tags, err := s.Tags(ctx, iot.Resource{Scope: scopeB, Type: iot.TypeThing, ID: "lamp"}); err != nil || len(tags) != 0 {
		t.Fatalf("another scope's thing of the same name has tags %v, %v", tags, err)
	}
}

func testListThings(t *testing.T, s store.Store) {
	ctx := t.Context()
	things := []*iot.Thing{
		newThing(scopeA, "B", "sensor", map[string]string{"color": "red", "serial": "a_1"}),
		newThing(scopeA, "a", "", map[string]string{"color": "red"}),
		newThing(scopeA, "_x", "sensor", map[string]string{"color": "reddish"}),
		newThing(scopeA, "A-1", "gateway", map[string]string{"color": "blue", "serial": "ab2"}),
		newThing(scopeA, "9", "sensor", nil),
		newThing(scopeA, "-z", "", map[string]string{"colour": "red"}),
		newThing(scopeA, "thing:7", "gateway", map[string]string{"color": "re"}),
	}
	byName := map[string]*iot.Thing{}
	var all []string
	for _, th := range things {
		mustCreateThing(t, s, th)
		byName[th.Name] = th
		all = append(all, th.Name)
	}
	sort.Strings(all) // bytewise
	// Another scope has things that every filter below would select.
	mustCreateThing(t, s, newThing(scopeB, "B", "sensor", map[string]string{"color": "red", "serial": "a_1"}))
	mustCreateThing(t, s, newThing(scopeB, "zzz", "gateway", map[string]string{"color": "red", "colour": "red"}))
	mustCreateThing(t, s, newThing(scopeC, "0", "sensor", map[string]string{"color": "red"}))

	// list pages through the filter with the limit, checking each page and
	// each listed thing; it returns the names and the page sizes.
	list := func(f store.ThingFilter, limit int) (names []string, sizes []int) {
		t.Helper()
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(things)+1 {
				t.Fatalf("filter %+v limit %d: paging does not end", f, limit)
			}
			page, more, err := s.ListThings(ctx, scopeA, f, after, limit)
			if err != nil {
				t.Fatalf("ListThings(%+v): %v", f, err)
			}
			if len(page) > limit || (more && len(page) != limit) {
				t.Fatalf("filter %+v limit %d: a page of %d, more %v", f, limit, len(page), more)
			}
			for i := range page {
				want := byName[page[i].Name]
				if want == nil || !equalThings(&page[i], want) {
					t.Fatalf("filter %+v: listed %+v, stored %+v", f, page[i], want)
				}
			}
			names = append(names, thingNames(page)...)
			sizes = append(sizes, len(page))
			if !more {
				return names, sizes
			}
			after = page[len(page)-1].Name
		}
	}

	names, sizes := list(store.ThingFilter{}, 3)
	if !slices.Equal(names, all) || !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Fatalf("7 things by 3: %v in pages of %v; want %v in pages of [3 3 1]", names, sizes, all)
	}
	if names, sizes := list(store.ThingFilter{}, 7); !slices.Equal(names, all) || !slices.Equal(sizes, []int{7}) {
		t.Fatalf("7 things by 7: %v in pages of %v; want one page without more", names, sizes)
	}
	if names, sizes := list(store.ThingFilter{AttributeName: "color"}, 2); !slices.Equal(names, []string{"A-1", "B", "_x", "a", "thing:7"}) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("things with a color by 2: %v in pages of %v", names, sizes)
	}
	if page, more, err := s.ListThings(ctx, scopeA, store.ThingFilter{}, "thing:7", 3); err != nil || len(page) != 0 || more {
		t.Fatalf("after the last thing: %v, more %v, %v", thingNames(page), more, err)
	}

	for _, tc := range []struct {
		filter store.ThingFilter
		want   []string
	}{
		{store.ThingFilter{AttributeName: "color"}, []string{"A-1", "B", "_x", "a", "thing:7"}},
		{store.ThingFilter{AttributeName: "color", ValuePrefix: true}, []string{"A-1", "B", "_x", "a", "thing:7"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "red"}, []string{"B", "a"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "RED"}, nil},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "re"}, []string{"thing:7"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "red", ValuePrefix: true}, []string{"B", "_x", "a"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "re", ValuePrefix: true}, []string{"B", "_x", "a", "thing:7"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "reddish-too", ValuePrefix: true}, nil},
		{store.ThingFilter{AttributeName: "colour", AttributeValue: "red"}, []string{"-z"}},
		// _ and % are no wildcards: "a_" is no prefix of "ab2".
		{store.ThingFilter{AttributeName: "serial", AttributeValue: "a_", ValuePrefix: true}, []string{"B"}},
		{store.ThingFilter{AttributeName: "serial", AttributeValue: "a%", ValuePrefix: true}, nil},
		{store.ThingFilter{AttributeName: "serial", AttributeValue: "a", ValuePrefix: true}, []string{"A-1", "B"}},
		{store.ThingFilter{AttributeName: "missing"}, nil},
		{store.ThingFilter{TypeName: "sensor"}, []string{"9", "B", "_x"}},
		{store.ThingFilter{TypeName: "gateway"}, []string{"A-1", "thing:7"}},
		{store.ThingFilter{TypeName: "none"}, nil},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "red", TypeName: "sensor"}, []string{"B"}},
		{store.ThingFilter{AttributeName: "color", AttributeValue: "red", ValuePrefix: true, TypeName: "sensor"}, []string{"B", "_x"}},
		{store.ThingFilter{AttributeName: "color", TypeName: "gateway"}, []string{"A-1", "thing:7"}},
		{store.ThingFilter{AttributeName: "colour", TypeName: "sensor"}, nil},
	} {
		if names, _ := list(tc.filter, 100); !slices.Equal(names, tc.want) {
			t.Errorf("ListThings(%+v) = %q, want %q", tc.filter, names, tc.want)
		}
	}

	// A scope without things lists none.
	if page, more, err := s.ListThings(ctx, iot.Scope{AccountID: "333333333333", Region: "us-east-1"}, store.ThingFilter{}, "", 10); err != nil || len(page) != 0 || more {
		t.Fatalf("an empty scope lists %v, more %v, %v", thingNames(page), more, err)
	}
}

func testUpdateThing(t *testing.T, s store.Store) {
	ctx := t.Context()
	lamp := newThing(scopeA, "lamp", "", map[string]string{"color": "red", "size": "10"})
	mustCreateThing(t, s, lamp)
	mustCreateThing(t, s, newThing(scopeA, "other", "", map[string]string{"color": "red"}))
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}

	at1 := base.Add(time.Hour)
	var seen *iot.Thing
	got, err := s.UpdateThing(ctx, scopeA, "lamp", at1, func(th *iot.Thing) error {
		c := *th
		c.Attributes = maps.Clone(th.Attributes)
		seen = &c
		th.Attributes["color"] = "blue"
		delete(th.Attributes, "size")
		th.Attributes["shape"] = "round"
		th.TypeName = "light"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == nil || !equalThings(seen, lamp) {
		t.Fatalf("update saw %+v, want the stored %+v", seen, lamp)
	}
	want := *lamp
	want.TypeName, want.Version, want.ModifiedAt = "light", 2, at1
	want.Attributes = map[string]string{"color": "blue", "shape": "round"}
	if !equalThings(got, &want) {
		t.Fatalf("UpdateThing =\n%+v\nwant\n%+v", got, &want)
	}
	if stored, err := s.Thing(ctx, scopeA, "lamp"); err != nil || !equalThings(stored, &want) {
		t.Fatalf("stored after the update: %+v, %v; want %+v", stored, err, &want)
	}
	checkFilters := func(when string, cases map[store.ThingFilter][]string) {
		t.Helper()
		for f, wantNames := range cases {
			page, _, err := s.ListThings(ctx, scopeA, f, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if names := thingNames(page); !slices.Equal(names, wantNames) {
				t.Errorf("%s: ListThings(%+v) = %q, want %q", when, f, names, wantNames)
			}
		}
	}
	checkFilters("after the first update", map[store.ThingFilter][]string{
		{AttributeName: "color", AttributeValue: "red"}:   {"other"},
		{AttributeName: "color", AttributeValue: "blue"}:  {"lamp"},
		{AttributeName: "size"}:                           nil,
		{AttributeName: "shape", AttributeValue: "round"}: {"lamp"},
		{TypeName: "light"}:                               {"lamp"},
	})

	// Replacing every attribute with none.
	at2 := at1.Add(time.Minute)
	got, err = s.UpdateThing(ctx, scopeA, "lamp", at2, func(th *iot.Thing) error {
		th.Attributes = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || len(got.Attributes) != 0 || !got.ModifiedAt.Equal(at2) || got.TypeName != "light" {
		t.Fatalf("after removing every attribute: %+v", got)
	}
	stored, err := s.Thing(ctx, scopeA, "lamp")
	if err != nil || stored.Version != 3 || len(stored.Attributes) != 0 || !stored.ModifiedAt.Equal(at2) || !stored.CreatedAt.Equal(base) {
		t.Fatalf("stored after removing every attribute: %+v, %v", stored, err)
	}
	checkFilters("without attributes", map[store.ThingFilter][]string{
		{AttributeName: "color"}: {"other"},
		{AttributeName: "shape"}: nil,
	})

	// A refusing update changes nothing.
	refuse := errors.New("refused")
	if _, err := s.UpdateThing(ctx, scopeA, "lamp", at2.Add(time.Minute), func(th *iot.Thing) error {
		th.Attributes = map[string]string{"refused": "yes"}
		th.TypeName = "refused"
		return refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("UpdateThing with a refusing update = %v, want its error", err)
	}
	if after, err := s.Thing(ctx, scopeA, "lamp"); err != nil || !equalThings(after, stored) {
		t.Fatalf("a refused update was written: %+v, %v", after, err)
	}
	checkFilters("after a refused update", map[store.ThingFilter][]string{
		{AttributeName: "refused"}: nil,
		{TypeName: "refused"}:      nil,
	})

	for _, tc := range []struct {
		scope iot.Scope
		name  string
	}{{scopeA, "absent"}, {scopeB, "lamp"}} {
		called := false
		if _, err := s.UpdateThing(ctx, tc.scope, tc.name, at2, func(*iot.Thing) error { called = true; return nil }); !errors.Is(err, store.ErrNotFound) || called {
			t.Fatalf("UpdateThing(%v, %s) = %v (update called: %v), want ErrNotFound", tc.scope, tc.name, err, called)
		}
	}

	// Each update that was written is on the change feed, and only those.
	changes, err := s.Changes(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkChanges(t, changes, []store.Change{
		{Scope: scopeA, Kind: store.ChangeThing, Name: "lamp", At: at1},
		{Scope: scopeA, Kind: store.ChangeThing, Name: "lamp", At: at2},
	})
}

// checkChanges compares changes read from the feed with want, ignoring
// Seq, and checks that their numbers increase.
func checkChanges(t *testing.T, got, want []store.Change) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.Scope == w.Scope && g.Kind == w.Kind && g.Name == w.Name && g.At.Equal(w.At) && (i == 0 || g.Seq > got[i-1].Seq)
	}
	if !ok {
		var b []byte
		for _, c := range got {
			b = fmt.Appendf(b, "\n\t%d %v %s %s %v", c.Seq, c.Scope, c.Kind, c.Name, c.At)
		}
		b = append(b, "\nwant"...)
		for _, c := range want {
			b = fmt.Appendf(b, "\n\t%v %s %s %v", c.Scope, c.Kind, c.Name, c.At)
		}
		t.Fatalf("changes:%s", b)
	}
}

func testDeleteThing(t *testing.T, s store.Store) {
	ctx := t.Context()
	door := newThing(scopeA, "door", "lock", map[string]string{"floor": "1"})
	mustCreateThing(t, s, door, iot.Tag{Key: "team", Value: "a"})
	mustCreateThing(t, s, newThing(scopeB, "door", "", map[string]string{"floor": "1"}))
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	mustAttachThing(t, s, scopeA, "door", c.ID, false)
	res := iot.Resource{Scope: scopeA, Type: iot.TypeThing, ID: "door"}

	refuse := errors.New("refused")
	var checked *iot.Thing
	if err := s.DeleteThing(ctx, scopeA, "door", func(th *iot.Thing) error { checked = th; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("DeleteThing with a refusing check = %v, want its error", err)
	}
	if checked == nil || !equalThings(checked, door) {
		t.Fatalf("check saw %+v, want %+v", checked, door)
	}
	if _, err := s.Thing(ctx, scopeA, "door"); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}
	if err := s.DeleteThing(ctx, scopeA, "door", func(*iot.Thing) error { return nil }); !errors.Is(err, store.ErrThingAttached) {
		t.Fatalf("deleting a thing with a principal = %v, want ErrThingAttached", err)
	}
	if got, err := s.Thing(ctx, scopeA, "door"); err != nil || !equalThings(got, door) {
		t.Fatalf("after a refused delete: %+v, %v", got, err)
	}
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 1 {
		t.Fatalf("tags after a refused delete: %v, %v", tags, err)
	}
	if list, _, err := s.ListThingPrincipals(ctx, scopeA, "door", store.AnyAttachment, "", 10); err != nil || len(list) != 1 {
		t.Fatalf("principals after a refused delete: %+v, %v", list, err)
	}

	if err := s.DetachThingPrincipal(ctx, scopeA, "door", c.ARN(), base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteThing(ctx, scopeA, "door", func(*iot.Thing) error { return nil }); err != nil {
		t.Fatalf("deleting a detached thing: %v", err)
	}
	if _, err := s.Thing(ctx, scopeA, "door"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted thing = %v, want ErrNotFound", err)
	}
	if _, err := s.Tags(ctx, res); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted thing's tags = %v, want ErrNotFound", err)
	}
	if page, _, err := s.ListThings(ctx, scopeA, store.ThingFilter{AttributeName: "floor"}, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("a deleted thing is listed by its attribute: %v, %v", thingNames(page), err)
	}
	if _, _, err := s.ListThingPrincipals(ctx, scopeA, "door", store.AnyAttachment, "", 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted thing's principals = %v, want ErrNotFound", err)
	}
	if err := s.DeleteThing(ctx, scopeA, "door", func(*iot.Thing) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a deleted thing = %v, want ErrNotFound", err)
	}
	// The other scope's thing of the same name is untouched.
	if _, err := s.Thing(ctx, scopeB, "door"); err != nil {
		t.Fatalf("deleting a thing deleted another scope's: %v", err)
	}
	if page, _, err := s.ListThings(ctx, scopeB, store.ThingFilter{AttributeName: "floor", AttributeValue: "1"}, "", 10); err != nil || len(page) != 1 {
		t.Fatalf("another scope's thing lost its attribute: %v, %v", thingNames(page), err)
	}

	// Re-created without attributes or tags, nothing of the old one is left.
	mustCreateThing(t, s, newThing(scopeA, "door", "", nil))
	if tags, err := s.Tags(ctx, res); err != nil || len(tags) != 0 {
		t.Fatalf("a re-created thing has the deleted one's tags: %v, %v", tags, err)
	}
	if page, _, err := s.ListThings(ctx, scopeA, store.ThingFilter{AttributeName: "floor"}, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("a re-created thing is listed by the deleted one's attribute: %v, %v", thingNames(page), err)
	}
	if page, _, err := s.ListThings(ctx, scopeA, store.ThingFilter{TypeName: "lock"}, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("a re-created thing is listed by the deleted one's type: %v, %v", thingNames(page), err)
	}
}

func testThingPrincipals(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"t1", "t2", "t3", "t4", "t5"} {
		mustCreateThing(t, s, newThing(scopeA, name, "", nil))
	}
	mustCreateThing(t, s, newThing(scopeB, "t1", "", nil))
	var certs []*iot.Certificate
	for i := range 10 {
		c := cert(scopeA, i, base)
		mustCreate(t, s, c)
		certs = append(certs, c)
	}
	c1, c2 := certs[0], certs[1]
	principalThings := func(principal string) []iot.ThingPrincipal {
		t.Helper()
		list, more, err := s.ListPrincipalThings(ctx, scopeA, principal, store.AnyAttachment, "", 100)
		if err != nil || more {
			t.Fatalf("ListPrincipalThings(%s): more %v, %v", principal, more, err)
		}
		return list
	}
	thingPrincipals := func(thing string) []iot.ThingPrincipal {
		t.Helper()
		list, more, err := s.ListThingPrincipals(ctx, scopeA, thing, store.AnyAttachment, "", 100)
		if err != nil || more {
			t.Fatalf("ListThingPrincipals(%s): more %v, %v", thing, more, err)
		}
		return list
	}

	// Nothing attached: empty lists, no errors.
	if list, more, err := s.ListPrincipalThings(ctx, scopeA, c1.ARN(), store.AnyAttachment, "", 10); err != nil || more || len(list) != 0 {
		t.Fatalf("an unattached principal's things: %+v, more %v, %v", list, more, err)
	}
	if list, more, err := s.ListPrincipalThings(ctx, scopeA, "arn:aws:iot:us-east-1:111111111111:cert/none", store.AnyAttachment, "", 10); err != nil || more || len(list) != 0 {
		t.Fatalf("an unknown principal's things: %+v, more %v, %v", list, more, err)
	}
	if list := thingPrincipals("t1"); len(list) != 0 {
		t.Fatalf("a new thing's principals: %+v", list)
	}

	// Attaching twice is no change.
	mustAttachThing(t, s, scopeA, "t1", c1.ID, false)
	mustAttachThing(t, s, scopeA, "t1", c1.ID, false)
	if list := thingPrincipals("t1"); !slices.Equal(list, []iot.ThingPrincipal{{ThingName: "t1", Principal: c1.ARN()}}) {
		t.Fatalf("principals of t1 after attaching twice: %+v", list)
	}

	// Missing things and certificates.
	for _, tc := range []struct {
		scope       iot.Scope
		thing, cert string
	}{
		{scopeA, "absent", c1.ID},
		{scopeA, "t1", cert(scopeA, 99, base).ID},
		{scopeB, "t1", c1.ID}, // the certificate is in scopeA only
		{scopeB, "t2", c1.ID},
	} {
		for _, exclusive := range []bool{false, true} {
			if err := s.AttachThingPrincipal(ctx, tc.scope, tc.thing, tc.cert, exclusive, base); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("AttachThingPrincipal(%v, %s, %.8s, exclusive %v) = %v, want ErrNotFound", tc.scope, tc.thing, tc.cert, exclusive, err)
			}
		}
	}
	if list, _, err := s.ListThingPrincipals(ctx, scopeB, "t1", store.AnyAttachment, "", 10); err != nil || len(list) != 0 {
		t.Fatalf("another scope's t1 has principals %+v, %v", list, err)
	}
	if list, _, err := s.ListPrincipalThings(ctx, scopeB, c1.ARN(), store.AnyAttachment, "", 10); err != nil || len(list) != 0 {
		t.Fatalf("another scope lists the things of a principal: %+v, %v", list, err)
	}
	if _, _, err := s.ListThingPrincipals(ctx, scopeA, "absent", store.AnyAttachment, "", 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the principals of an absent thing = %v, want ErrNotFound", err)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "absent", c1.ARN(), base); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("detaching from an absent thing = %v, want ErrNotFound", err)
	}

	// Exclusive attachments.
	mustAttachThing(t, s, scopeA, "t2", c1.ID, false) // non-exclusive on two things is fine
	if list := principalThings(c1.ARN()); !slices.Equal(list, []iot.ThingPrincipal{
		{ThingName: "t1", Principal: c1.ARN()}, {ThingName: "t2", Principal: c1.ARN()},
	}) {
		t.Fatalf("things of c1: %+v", list)
	}
	if err := s.AttachThingPrincipal(ctx, scopeA, "t1", c1.ID, true, base); !errors.Is(err, store.ErrExclusive) {
		t.Fatalf("making an attachment exclusive while attached elsewhere = %v, want ErrExclusive", err)
	}
	if err := s.AttachThingPrincipal(ctx, scopeA, "t3", c1.ID, true, base); !errors.Is(err, store.ErrExclusive) {
		t.Fatalf("attaching exclusively while attached elsewhere = %v, want ErrExclusive", err)
	}
	if list := principalThings(c1.ARN()); len(list) != 2 || list[0].Exclusive || list[1].Exclusive {
		t.Fatalf("refused exclusive attachments changed c1's: %+v", list)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "t2", c1.ARN(), base); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "t2", c1.ARN(), base); err != nil {
		t.Fatalf("detaching what is not attached: %v", err)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "t2", "arn:aws:iot:us-east-1:111111111111:cert/none", base); err != nil {
		t.Fatalf("detaching an unknown principal: %v", err)
	}
	mustAttachThing(t, s, scopeA, "t1", c1.ID, true) // the same thing: made exclusive
	exclusiveT1 := []iot.ThingPrincipal{{ThingName: "t1", Principal: c1.ARN(), Exclusive: true}}
	if list := principalThings(c1.ARN()); !slices.Equal(list, exclusiveT1) {
		t.Fatalf("things of c1 made exclusive: %+v", list)
	}
	mustAttachThing(t, s, scopeA, "t1", c1.ID, false) // no change: stays exclusive
	mustAttachThing(t, s, scopeA, "t1", c1.ID, true)
	if list := thingPrincipals("t1"); !slices.Equal(list, exclusiveT1) {
		t.Fatalf("attaching an exclusive principal again changed it: %+v", list)
	}
	for _, exclusive := range []bool{false, true} {
		if err := s.AttachThingPrincipal(ctx, scopeA, "t2", c1.ID, exclusive, base); !errors.Is(err, store.ErrExclusive) {
			t.Fatalf("attaching (exclusive %v) a principal attached exclusively elsewhere = %v, want ErrExclusive", exclusive, err)
		}
	}
	if list := thingPrincipals("t2"); len(list) != 0 {
		t.Fatalf("refused attachments attached: %+v", list)
	}
	mustAttachThing(t, s, scopeA, "t2", c2.ID, false)
	if err := s.AttachThingPrincipal(ctx, scopeA, "t1", c2.ID, true, base); !errors.Is(err, store.ErrExclusive) {
		t.Fatalf("attaching exclusively a principal attached elsewhere = %v, want ErrExclusive", err)
	}
	// After detaching, the exclusive principal can go elsewhere.
	if err := s.DetachThingPrincipal(ctx, scopeA, "t1", c1.ARN(), base); err != nil {
		t.Fatal(err)
	}
	mustAttachThing(t, s, scopeA, "t2", c1.ID, false)
	if list := thingPrincipals("t2"); len(list) != 2 {
		t.Fatalf("principals of t2: %+v", list)
	}

	// Paging: five principals of t3 by two; three things of one principal by two.
	var arns []string
	for _, c := range certs[5:10] {
		mustAttachThing(t, s, scopeA, "t3", c.ID, false)
		arns = append(arns, c.ARN())
	}
	sort.Strings(arns)
	var listed []string
	var sizes []int
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, more, err := s.ListThingPrincipals(ctx, scopeA, "t3", store.AnyAttachment, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			if p.ThingName != "t3" || p.Exclusive {
				t.Fatalf("listed %+v", p)
			}
			listed = append(listed, p.Principal)
		}
		sizes = append(sizes, len(page))
		if !more {
			break
		}
		after = page[len(page)-1].Principal
	}
	if !slices.Equal(listed, arns) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("principals of t3 by 2: %v in pages of %v; want %v in pages of [2 2 1]", listed, sizes, arns)
	}
	p := certs[5]
	mustAttachThing(t, s, scopeA, "t5", p.ID, false)
	mustAttachThing(t, s, scopeA, "t4", p.ID, false)
	page, more, err := s.ListPrincipalThings(ctx, scopeA, p.ARN(), store.AnyAttachment, "", 2)
	if err != nil || !more || !slices.Equal(page, []iot.ThingPrincipal{{ThingName: "t3", Principal: p.ARN()}, {ThingName: "t4", Principal: p.ARN()}}) {
		t.Fatalf("first page of a principal's things: %+v, more %v, %v", page, more, err)
	}
	page, more, err = s.ListPrincipalThings(ctx, scopeA, p.ARN(), store.AnyAttachment, "t4", 2)
	if err != nil || more || !slices.Equal(page, []iot.ThingPrincipal{{ThingName: "t5", Principal: p.ARN()}}) {
		t.Fatalf("second page of a principal's things: %+v, more %v, %v", page, more, err)
	}
}

// testCertificatesOnThings: a certificate attached to a thing is not
// deleted, forced or not; an expired provisioned one takes its attachments
// with it.
func testCertificatesOnThings(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateThing(t, s, newThing(scopeA, "dev", "", nil))
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	if err := s.CreatePolicy(ctx, newPolicy(scopeA, "p", base), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachPolicyToCertificate(ctx, scopeA, "p", c.ID, 10, base); err != nil {
		t.Fatal(err)
	}
	mustAttachThing(t, s, scopeA, "dev", c.ID, false)
	ok := func(*iot.Certificate) error { return nil }
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, true, ok); !errors.Is(err, store.ErrThingAttached) {
		t.Fatalf("deleting with detach a certificate on a thing = %v, want ErrThingAttached", err)
	}
	if _, err := s.Certificate(ctx, scopeA, c.ID); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}
	if list, _, err := s.ListAttachedPolicies(ctx, scopeA, c.ARN(), "", 10); err != nil || len(list) != 1 {
		t.Fatalf("a refused delete detached the policies: %v, %v", list, err)
	}
	if list, _, err := s.ListThingPrincipals(ctx, scopeA, "dev", store.AnyAttachment, "", 10); err != nil || len(list) != 1 {
		t.Fatalf("a refused delete detached the thing: %+v, %v", list, err)
	}
	if err := s.DetachPolicy(ctx, scopeA, "p", c.ARN(), base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, ok); !errors.Is(err, store.ErrThingAttached) {
		t.Fatalf("deleting a certificate on a thing = %v, want ErrThingAttached", err)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "dev", c.ARN(), base); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCertificate(ctx, scopeA, c.ID, false, ok); err != nil {
		t.Fatalf("deleting a detached certificate: %v", err)
	}

	// An expired provisioning token deletes its pending certificate and the
	// certificate's attachments to things.
	pending := cert(scopeA, 2, base)
	pending.Status = iot.StatusPendingActivation
	if err := s.CreateProvisionedCertificate(ctx, pending, store.ProvisioningToken{Hash: "h", ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mustCreateThing(t, s, newThing(scopeA, "dev2", "", nil))
	mustAttachThing(t, s, scopeA, "dev", pending.ID, false)
	mustAttachThing(t, s, scopeA, "dev2", pending.ID, false)
	if deleted, err := s.ExpireProvisioningTokens(ctx, base.Add(2*time.Hour)); err != nil || len(deleted) != 1 || deleted[0].ID != pending.ID {
		t.Fatalf("ExpireProvisioningTokens deleted %v, %v; want the pending certificate", deleted, err)
	}
	if list, _, err := s.ListPrincipalThings(ctx, scopeA, pending.ARN(), store.AnyAttachment, "", 10); err != nil || len(list) != 0 {
		t.Fatalf("an expired certificate is still attached: %+v, %v", list, err)
	}
	for _, name := range []string{"dev", "dev2"} {
		if list, _, err := s.ListThingPrincipals(ctx, scopeA, name, store.AnyAttachment, "", 10); err != nil || len(list) != 0 {
			t.Fatalf("%s still has an expired certificate: %+v, %v", name, list, err)
		}
		if err := s.DeleteThing(ctx, scopeA, name, func(*iot.Thing) error { return nil }); err != nil {
			t.Fatalf("deleting %s after its certificate expired: %v", name, err)
		}
	}
}

func testConnectionGrants(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	e := cert(scopeA, 2, base)
	mustCreate(t, s, c)
	mustCreate(t, s, e)
	for _, name := range []string{"p1", "p2", "p3"} {
		if err := s.CreatePolicy(ctx, newPolicy(scopeA, name, base), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"p2", "p1"} {
		if err := s.AttachPolicyToCertificate(ctx, scopeA, name, c.ID, 10, base); err != nil {
			t.Fatal(err)
		}
	}
	dev1 := newThing(scopeA, "dev1", "sensor", map[string]string{"a": "1"})
	dev2 := newThing(scopeA, "dev2", "", nil)
	dev3 := newThing(scopeA, "dev3", "", map[string]string{"b": "2"})
	for _, th := range []*iot.Thing{dev1, dev2, dev3, newThing(scopeA, "other", "", nil)} {
		mustCreateThing(t, s, th)
	}
	mustCreateThing(t, s, newThing(scopeB, "dev1", "", nil))
	mustAttachThing(t, s, scopeA, "dev1", c.ID, false)
	mustAttachThing(t, s, scopeA, "dev2", c.ID, false)
	mustAttachThing(t, s, scopeA, "dev3", e.ID, true)

	grants := func(scope iot.Scope, principal, clientID string) ([]iot.Policy, *iot.Thing) {
		t.Helper()
		policies, thing, err := s.ConnectionGrants(ctx, scope, principal, clientID)
		if err != nil {
			t.Fatalf("ConnectionGrants(%v, %s, %s): %v", scope, principal, clientID, err)
		}
		sort.Slice(policies, func(i, j int) bool { return policies[i].Name < policies[j].Name })
		return policies, thing
	}
	// checkPolicies checks the granted policies' names, default versions
	// and default documents.
	checkPolicies := func(when string, got []iot.Policy, want ...iot.Policy) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			ok = got[i].Scope == scopeA && got[i].Name == want[i].Name && got[i].DefaultVersionID == want[i].DefaultVersionID && got[i].DefaultDocument == want[i].DefaultDocument
		}
		if !ok {
			t.Fatalf("%s: policies %+v, want %+v", when, got, want)
		}
	}
	p1 := iot.Policy{Name: "p1", DefaultVersionID: 1, DefaultDocument: newPolicy(scopeA, "p1", base).DefaultDocument}
	p2 := iot.Policy{Name: "p2", DefaultVersionID: 1, DefaultDocument: newPolicy(scopeA, "p2", base).DefaultDocument}

	for _, tc := range []struct {
		principal, clientID string
		want                *iot.Thing
	}{
		{c.ARN(), "dev1", dev1},
		{c.ARN(), "dev2", dev2},
		{c.ARN(), "other", nil}, // a thing the certificate is not attached to
		{c.ARN(), "dev3", nil},  // another certificate's exclusive thing
		{c.ARN(), "no-such-thing", nil},
		{e.ARN(), "no-such-thing", dev3}, // the exclusive thing when the client ID names none
		{e.ARN(), "dev3", dev3},
		{e.ARN(), "dev1", dev3},
	} {
		policies, thing := grants(scopeA, tc.principal, tc.clientID)
		switch {
		case tc.want == nil && thing != nil:
			t.Errorf("%.30s… as %s is granted thing %+v, want none", tc.principal, tc.clientID, thing)
		case tc.want != nil && (thing == nil || !equalThings(thing, tc.want)):
			t.Errorf("%.30s… as %s is granted thing %+v, want %+v", tc.principal, tc.clientID, thing, tc.want)
		}
		if tc.principal == c.ARN() {
			checkPolicies("c as "+tc.clientID, policies, p1, p2)
		} else {
			checkPolicies("e as "+tc.clientID, policies)
		}
	}

	// The policies follow their default versions; the thing its updates.
	if _, err := s.CreatePolicyVersion(ctx, scopeA, "p1", "p1 v2", change(base, "g2", false), 5); err != nil {
		t.Fatal(err)
	}
	policies, _ := grants(scopeA, c.ARN(), "dev1")
	checkPolicies("after a version not made default", policies, p1, p2)
	if err := s.SetDefaultPolicyVersion(ctx, scopeA, "p1", 2, change(base, "g3", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePolicyVersion(ctx, scopeA, "p2", "p2 v2", change(base, "g4", true), 5); err != nil {
		t.Fatal(err)
	}
	updated, err := s.UpdateThing(ctx, scopeA, "dev1", base.Add(time.Hour), func(th *iot.Thing) error {
		th.Attributes["a"] = "changed"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	policies, thing := grants(scopeA, c.ARN(), "dev1")
	checkPolicies("after new default versions", policies,
		iot.Policy{Name: "p1", DefaultVersionID: 2, DefaultDocument: "p1 v2"},
		iot.Policy{Name: "p2", DefaultVersionID: 2, DefaultDocument: "p2 v2"})
	if thing == nil || !equalThings(thing, updated) {
		t.Fatalf("granted thing %+v after an update, want %+v", thing, updated)
	}
	if err := s.DetachPolicy(ctx, scopeA, "p2", c.ARN(), base); err != nil {
		t.Fatal(err)
	}
	if err := s.DetachThingPrincipal(ctx, scopeA, "dev1", c.ARN(), base); err != nil {
		t.Fatal(err)
	}
	policies, thing = grants(scopeA, c.ARN(), "dev1")
	checkPolicies("after detaching p2", policies, iot.Policy{Name: "p1", DefaultVersionID: 2, DefaultDocument: "p1 v2"})
	if thing != nil {
		t.Fatalf("granted detached thing %+v", thing)
	}

	// Nothing of another scope, nor for an unknown principal.
	for _, tc := range []struct {
		scope               iot.Scope
		principal, clientID string
	}{
		{scopeB, c.ARN(), "dev1"},
		{scopeB, e.ARN(), "dev3"},
		{scopeC, c.ARN(), "dev2"},
		{scopeA, "arn:aws:iot:us-east-1:111111111111:cert/none", "dev2"},
	} {
		if policies, thing := grants(tc.scope, tc.principal, tc.clientID); len(policies) != 0 || thing != nil {
			t.Errorf("ConnectionGrants(%v, %.30s…, %s) = %+v, %+v; want nothing", tc.scope, tc.principal, tc.clientID, policies, thing)
		}
	}
}

func testChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	if last, err := s.LastChange(ctx); err != nil || last != 0 {
		t.Fatalf("LastChange of a new store = %d, %v; want 0", last, err)
	}
	if changes, err := s.Changes(ctx, 0, 10); err != nil || len(changes) != 0 {
		t.Fatalf("changes of a new store: %+v, %v", changes, err)
	}
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	cb := cert(scopeB, 1, base)
	mustCreate(t, s, cb)
	for _, scope := range []iot.Scope{scopeA, scopeB} {
		if err := s.CreatePolicy(ctx, newPolicy(scope, "p", base), nil); err != nil {
			t.Fatal(err)
		}
	}
	mustCreateThing(t, s, newThing(scopeA, "dev", "", map[string]string{"k": "v"}))
	mustCreateThing(t, s, newThing(scopeA, "dev2", "", nil))
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Each step happens at its own minute; want collects the changes it
	// should make.
	var want []store.Change
	step := 0
	do := func(what string, f func(at time.Time) error, changes ...store.Change) {
		t.Helper()
		step++
		at := base.Add(time.Duration(step) * time.Minute)
		if err := f(at); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, c := range changes {
			c.At = at
			want = append(want, c)
		}
	}
	policyChange := store.Change{Scope: scopeA, Kind: store.ChangePolicy, Name: "p"}
	principalChange := store.Change{Scope: scopeA, Kind: store.ChangePrincipal, Name: c.ARN()}
	do("a version not made default", func(at time.Time) error {
		_, err := s.CreatePolicyVersion(ctx, scopeA, "p", "v2", change(at, "g2", false), 5)
		return err
	})
	do("a default version", func(at time.Time) error {
		_, err := s.CreatePolicyVersion(ctx, scopeA, "p", "v3", change(at, "g3", true), 5)
		return err
	}, policyChange)
	do("SetDefaultPolicyVersion", func(at time.Time) error {
		return s.SetDefaultPolicyVersion(ctx, scopeA, "p", 2, change(at, "g4", false))
	}, policyChange)
	do("AttachPolicyToCertificate", func(at time.Time) error {
		return s.AttachPolicyToCertificate(ctx, scopeA, "p", c.ID, 10, at)
	}, principalChange)
	do("AttachPolicyToCertificate again", func(at time.Time) error {
		return s.AttachPolicyToCertificate(ctx, scopeA, "p", c.ID, 10, at)
	})
	do("AttachPolicyToCertificate in scopeB", func(at time.Time) error {
		return s.AttachPolicyToCertificate(ctx, scopeB, "p", cb.ID, 10, at)
	}, store.Change{Scope: scopeB, Kind: store.ChangePrincipal, Name: cb.ARN()})
	do("DetachPolicy", func(at time.Time) error {
		return s.DetachPolicy(ctx, scopeA, "p", c.ARN(), at)
	}, principalChange)
	do("DetachPolicy of what is not attached", func(at time.Time) error {
		return s.DetachPolicy(ctx, scopeA, "p", c.ARN(), at)
	})
	do("AttachThingPrincipal", func(at time.Time) error {
		return s.AttachThingPrincipal(ctx, scopeA, "dev", c.ID, false, at)
	}, principalChange)
	do("AttachThingPrincipal again", func(at time.Time) error {
		return s.AttachThingPrincipal(ctx, scopeA, "dev", c.ID, false, at)
	})
	// Made exclusive, the attachment changes what ConnectionGrants returns.
	do("AttachThingPrincipal made exclusive", func(at time.Time) error {
		return s.AttachThingPrincipal(ctx, scopeA, "dev", c.ID, true, at)
	}, principalChange)
	do("a refused AttachThingPrincipal", func(at time.Time) error {
		if err := s.AttachThingPrincipal(ctx, scopeA, "dev2", c.ID, false, at); !errors.Is(err, store.ErrExclusive) {
			return fmt.Errorf("got %v, want ErrExclusive", err)
		}
		return nil
	})
	do("DetachThingPrincipal of what is not attached", func(at time.Time) error {
		return s.DetachThingPrincipal(ctx, scopeA, "dev2", c.ARN(), at)
	})
	do("DetachThingPrincipal", func(at time.Time) error {
		return s.DetachThingPrincipal(ctx, scopeA, "dev", c.ARN(), at)
	}, principalChange)
	do("UpdateThing", func(at time.Time) error {
		_, err := s.UpdateThing(ctx, scopeA, "dev", at, func(th *iot.Thing) error { th.Attributes["k"] = "w"; return nil })
		return err
	}, store.Change{Scope: scopeA, Kind: store.ChangeThing, Name: "dev"})
	do("a refused UpdateThing", func(at time.Time) error {
		refuse := errors.New("refused")
		if _, err := s.UpdateThing(ctx, scopeA, "dev", at, func(*iot.Thing) error { return refuse }); !errors.Is(err, refuse) {
			return fmt.Errorf("got %v, want the refusal", err)
		}
		return nil
	})

	changes, err := s.Changes(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkChanges(t, changes, want)
	last, err := s.LastChange(ctx)
	if err != nil || last != changes[len(changes)-1].Seq {
		t.Fatalf("LastChange = %d, %v; want %d, the last change's number", last, err, changes[len(changes)-1].Seq)
	}
	if changes[0].Seq <= start {
		t.Fatalf("the first change is numbered %d, not above %d", changes[0].Seq, start)
	}

	// after and limit.
	for _, tc := range []struct{ from, limit int }{{0, 3}, {1, 2}, {3, 100}, {len(changes) - 1, 5}} {
		after := start
		if tc.from > 0 {
			after = changes[tc.from-1].Seq
		}
		got, err := s.Changes(ctx, after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		checkChanges(t, got, want[tc.from:min(tc.from+tc.limit, len(want))])
	}
	if got, err := s.Changes(ctx, last, 10); err != nil || len(got) != 0 {
		t.Fatalf("changes after the last: %+v, %v", got, err)
	}

	// Pruning deletes the changes made before the time, and only those.
	all, err := s.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cut := want[3].At
	var kept []store.Change
	for _, c := range all {
		if !c.At.Before(cut) {
			kept = append(kept, c)
		}
	}
	if len(kept) == len(all) || len(kept) == 0 {
		t.Fatalf("the test prunes nothing or everything: %d of %d", len(kept), len(all))
	}
	if err := s.PruneChanges(ctx, cut); err != nil {
		t.Fatal(err)
	}
	got, err := s.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, kept, func(a, b store.Change) bool {
		return a.Seq == b.Seq && a.Scope == b.Scope && a.Kind == b.Kind && a.Name == b.Name && a.At.Equal(b.At)
	}) {
		t.Fatalf("after PruneChanges(%v): %+v\nwant %+v", cut, got, kept)
	}
	if l, err := s.LastChange(ctx); err != nil || l != last {
		t.Fatalf("LastChange after pruning = %d, %v; want %d", l, err, last)
	}

	// Pruned to nothing, the feed still remembers the numbers it gave:
	// LastChange is "the highest number given so far", and a new change is
	// numbered above it.
	if err := s.PruneChanges(ctx, base.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Changes(ctx, 0, 1000); err != nil || len(got) != 0 {
		t.Fatalf("after pruning everything: %+v, %v", got, err)
	}
	if l, err := s.LastChange(ctx); err != nil || l != last {
		t.Errorf("LastChange after pruning every change = %d, %v; want %d, the highest number given so far", l, err, last)
	}
	if _, err := s.UpdateThing(ctx, scopeA, "dev", base.Add(25*time.Hour), func(*iot.Thing) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Changes(ctx, last, 10); err != nil || len(got) != 1 || got[0].Seq <= last || got[0].Kind != store.ChangeThing {
		t.Fatalf("a change after pruning everything: %+v, %v; want one numbered above %d", got, err, last)
	}
}

// replicaExclusiveThing: replicas attaching one certificate exclusively to
// different things at once attach it to exactly one.
func replicaExclusiveThing(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, a, c)
	const n = 5
	thingName := func(s store.Store, i int) string {
		if s == a {
			return fmt.Sprint("a", i)
		}
		return fmt.Sprint("b", i)
	}
	for i := range n {
		for _, s := range []store.Store{a, b} {
			mustCreateThing(t, a, newThing(scopeA, thingName(s, i), "", nil))
		}
	}
	var attached, refused atomic.Int64
	both(a, b, n, func(s store.Store, i int) {
		switch err := s.AttachThingPrincipal(ctx, scopeA, thingName(s, i), c.ID, true, base); {
		case err == nil:
			attached.Add(1)
		case errors.Is(err, store.ErrExclusive):
			refused.Add(1)
		default:
			t.Error(err)
		}
	})
	list, more, err := b.ListPrincipalThings(ctx, scopeA, c.ARN(), store.AnyAttachment, "", 100)
	if err != nil || more || len(list) != 1 || !list[0].Exclusive || attached.Load() != 1 || refused.Load() != 2*n-1 {
		t.Fatalf("attached to %+v (%d succeeded, %d refused, %v); want to exactly one thing, exclusively", list, attached.Load(), refused.Load(), err)
	}
}

// testAttachmentSelection: the principal listings select by how each
// principal is attached, before paging, so a page is never cut short by
// the selection.
func testAttachmentSelection(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreateThing(t, s, newThing(scopeA, "hub", "", nil))
	mustCreateThing(t, s, newThing(scopeA, "other", "", nil))
	var arns []string
	for i := range 6 {
		c := cert(scopeA, i, base)
		mustCreate(t, s, c)
		// Every other certificate is the hub's alone.
		mustAttachThing(t, s, scopeA, "hub", c.ID, i%2 == 0)
		if i%2 == 1 {
			mustAttachThing(t, s, scopeA, "other", c.ID, false)
		}
		arns = append(arns, c.ARN())
	}
	for _, tc := range []struct {
		only store.Attachments
		want int
	}{{store.AnyAttachment, 6}, {store.ExclusiveOnly, 3}, {store.NonExclusiveOnly, 3}} {
		var got []iot.ThingPrincipal
		after := ""
		for {
			page, more, err := s.ListThingPrincipals(ctx, scopeA, "hub", tc.only, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if more && len(page) != 2 {
				t.Fatalf("selection %d: a page of %d before the end", tc.only, len(page))
			}
			got = append(got, page...)
			if !more {
				break
			}
			after = page[len(page)-1].Principal
		}
		if len(got) != tc.want {
			t.Errorf("selection %d: %d principals, want %d", tc.only, len(got), tc.want)
		}
		for _, p := range got {
			if tc.only == store.ExclusiveOnly && !p.Exclusive || tc.only == store.NonExclusiveOnly && p.Exclusive {
				t.Errorf("selection %d listed %+v", tc.only, p)
			}
		}
	}
	for i, arn := range arns {
		exclusive, _, err := s.ListPrincipalThings(ctx, scopeA, arn, store.ExclusiveOnly, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		shared, _, err := s.ListPrincipalThings(ctx, scopeA, arn, store.NonExclusiveOnly, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if wantExclusive := i%2 == 0; wantExclusive && (len(exclusive) != 1 || len(shared) != 0) || !wantExclusive && (len(exclusive) != 0 || len(shared) != 2) {
			t.Errorf("certificate %d: exclusive %v, shared %v", i, exclusive, shared)
		}
	}
}

// testStatusChanges: a certificate's or CA's change of status, and its
// deletion, is on the change feed, so that replicas disconnect the devices
// it concerns; an update that leaves the status as it was is not.
func testStatusChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := cert(scopeA, 1, base)
	mustCreate(t, s, c)
	ca := caCert(scopeA, 1, "CN=fleet", iot.ModeDefault, base)
	mustCreateCA(t, s, ca)
	start, err := s.LastChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { // same status: no change
			_, err := s.UpdateCertificate(ctx, scopeA, c.ID, func(x *iot.Certificate) error { x.CustomerVersion++; return nil })
			return err
		},
		func() error {
			_, err := s.UpdateCertificate(ctx, scopeA, c.ID, func(x *iot.Certificate) error { x.Status = iot.StatusRevoked; return nil })
			return err
		},
		func() error {
			return s.DeleteCertificate(ctx, scopeA, c.ID, true, func(*iot.Certificate) error { return nil })
		},
		func() error { // same status: no change
			_, err := s.UpdateCACertificate(ctx, scopeA, ca.ID, func(x *iot.CACertificate) error { x.CustomerVersion++; return nil })
			return err
		},
		func() error {
			_, err := s.UpdateCACertificate(ctx, scopeA, ca.ID, func(x *iot.CACertificate) error { x.Status = iot.CAStatusActive; return nil })
			return err
		},
		func() error {
			return s.DeleteCACertificate(ctx, scopeA, ca.ID, func(*iot.CACertificate) error { return nil })
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := s.Changes(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ch := range got {
		if ch.Scope != scopeA {
			t.Errorf("change %+v in another scope", ch)
		}
		kinds = append(kinds, string(ch.Kind)+" "+ch.Name)
	}
	want := []string{
		"certificate " + c.ID, "certificate " + c.ID,
		"ca " + ca.ID, "ca " + ca.ID,
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("changes %q, want %q", kinds, want)
	}
}
