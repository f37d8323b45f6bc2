package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/registry"
)

// TestDeleteThingTypeDelay: a thing type can be deleted only once it has
// been deprecated for five minutes by the registry's clock, and never while
// a thing has it.
func TestDeleteThingTypeDelay(t *testing.T) {
	ctx := context.Background()
	reg, clk := newClockedRegistry(t)
	if registry.ThingTypeDeleteDelay != 5*time.Minute {
		t.Fatalf("ThingTypeDeleteDelay = %v, want AWS's five minutes", registry.ThingTypeDeleteDelay)
	}
	for _, name := range []string{"sensor", "gateway"} {
		if _, err := reg.CreateThingType(ctx, scope, registry.ThingTypeInput{Name: name}); err != nil {
			t.Fatal(err)
		}
	}

	// Not deprecated: refused however long it has existed.
	clk.advance(time.Hour)
	if err := reg.DeleteThingType(ctx, scope, "sensor"); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("deleting a type never deprecated: %v, want InvalidRequest", err)
	}

	if err := reg.DeprecateThingType(ctx, scope, "sensor", false); err != nil {
		t.Fatal(err)
	}
	deprecatedAt := clk.now()
	tt, err := reg.DescribeThingType(ctx, scope, "sensor")
	if err != nil {
		t.Fatal(err)
	}
	if !tt.Deprecated || tt.DeprecatedAt.Sub(deprecatedAt).Abs() > time.Microsecond {
		t.Fatalf("deprecated %v at %v, want at the clock's %v", tt.Deprecated, tt.DeprecatedAt, deprecatedAt)
	}
	for _, wait := range []time.Duration{0, time.Minute, 4*time.Minute + 58*time.Second} {
		clk.advance(wait - (clk.now().Sub(deprecatedAt)))
		err := reg.DeleteThingType(ctx, scope, "sensor")
		if !apierr.Is(err, apierr.InvalidRequest) || !strings.Contains(err.Error(), "five minutes") {
			t.Fatalf("deleting %v after the deprecation: %v, want InvalidRequest mentioning five minutes", wait, err)
		}
		if _, err := reg.DescribeThingType(ctx, scope, "sensor"); err != nil {
			t.Fatalf("a refused delete deleted: %v", err)
		}
	}
	clk.advance(5*time.Minute + time.Second - clk.now().Sub(deprecatedAt))
	if err := reg.DeleteThingType(ctx, scope, "sensor"); err != nil {
		t.Fatalf("deleting 5m1s after the deprecation: %v", err)
	}
	if _, err := reg.DescribeThingType(ctx, scope, "sensor"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Fatalf("a deleted type: %v, want ResourceNotFound", err)
	}
	if err := reg.DeleteThingType(ctx, scope, "sensor"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Fatalf("deleting a deleted type: %v, want ResourceNotFound", err)
	}
	if _, err := reg.CreateThing(ctx, scope, "after", "sensor", "", nil); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Fatalf("a thing of a deleted type: %v, want ResourceNotFound", err)
	}

	// Undoing the deprecation restarts the wait.
	if err := reg.DeprecateThingType(ctx, scope, "gateway", false); err != nil {
		t.Fatal(err)
	}
	clk.advance(10 * time.Minute)
	if err := reg.DeprecateThingType(ctx, scope, "gateway", true); err != nil {
		t.Fatal(err)
	}
	if tt, err := reg.DescribeThingType(ctx, scope, "gateway"); err != nil || tt.Deprecated || !tt.DeprecatedAt.IsZero() {
		t.Fatalf("after undoing the deprecation: %+v, %v", tt, err)
	}
	if err := reg.DeleteThingType(ctx, scope, "gateway"); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("deleting a type whose deprecation was undone: %v, want InvalidRequest", err)
	}
	if err := reg.DeprecateThingType(ctx, scope, "gateway", false); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeleteThingType(ctx, scope, "gateway"); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("deleting a type deprecated again just now: %v, want InvalidRequest", err)
	}
}

// TestDeleteThingTypeWithThings: a type that a thing has is not deleted,
// however long it has been deprecated; once no thing has it, it is.
func TestDeleteThingTypeWithThings(t *testing.T) {
	ctx := context.Background()
	reg, clk := newClockedRegistry(t)
	if _, err := reg.CreateThingType(ctx, scope, registry.ThingTypeInput{Name: "lamp", SearchableAttributes: []string{"color"}}); err != nil {
		t.Fatal(err)
	}
	attributes := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}
	if _, err := reg.CreateThing(ctx, scope, "lamp-1", "lamp", "", attributes); err != nil {
		t.Fatalf("a thing of a type with four attributes: %v", err)
	}
	if _, err := reg.CreateThing(ctx, scope, "lamp-2", "", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.UpdateThing(ctx, scope, "lamp-2", registry.ThingUpdate{TypeName: "lamp"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeprecateThingType(ctx, scope, "lamp", false); err != nil {
		t.Fatal(err)
	}
	// A deprecated type takes no new things, and no thing changes to it.
	if _, err := reg.CreateThing(ctx, scope, "lamp-3", "lamp", "", nil); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("a thing of a deprecated type: %v, want InvalidRequest", err)
	}
	if _, err := reg.DescribeThing(ctx, scope, "lamp-3"); !apierr.Is(err, apierr.ResourceNotFound) {
		t.Fatalf("a refused thing was made: %v", err)
	}
	clk.advance(time.Hour)

	err := reg.DeleteThingType(ctx, scope, "lamp")
	if !apierr.Is(err, apierr.InvalidRequest) || !strings.Contains(err.Error(), "things") {
		t.Fatalf("deleting a type two things have: %v, want InvalidRequest", err)
	}
	// The thing with more than three attributes cannot leave its type.
	if err := reg.UpdateThing(ctx, scope, "lamp-1", registry.ThingUpdate{RemoveType: true}); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("removing the type of a thing with four attributes: %v, want InvalidRequest", err)
	}
	if err := reg.DeleteThing(ctx, scope, "lamp-1", nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeleteThingType(ctx, scope, "lamp"); !apierr.Is(err, apierr.InvalidRequest) {
		t.Fatalf("deleting a type one thing has: %v, want InvalidRequest", err)
	}
	if _, err := reg.DescribeThingType(ctx, scope, "lamp"); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}
	if err := reg.UpdateThing(ctx, scope, "lamp-2", registry.ThingUpdate{RemoveType: true}); err != nil {
		t.Fatal(err)
	}
	if th, err := reg.DescribeThing(ctx, scope, "lamp-2"); err != nil || th.TypeName != "" {
		t.Fatalf("after removing the type: %+v, %v", th, err)
	}
	if err := reg.DeleteThingType(ctx, scope, "lamp"); err != nil {
		t.Fatalf("deleting a type no thing has: %v", err)
	}
}

// TestDeprecatedTypeKeptByItsThings: deprecating a type changes nothing for
// the things that have it (AWS: "existing things associated with the
// thing type are unchanged"): they are updated and created again as
// before; only a new association is refused.
func TestDeprecatedTypeKeptByItsThings(t *testing.T) {
	ctx := context.Background()
	reg, _ := newClockedRegistry(t)
	if _, err := reg.CreateThingType(ctx, scope, registry.ThingTypeInput{Name: "lamp"}); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}
	if _, err := reg.CreateThing(ctx, scope, "lamp-1", "lamp", "", attrs); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateThing(ctx, scope, "plain", "", "", nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.DeprecateThingType(ctx, scope, "lamp", false); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateThing(ctx, scope, "lamp-1", "lamp", "", attrs); err != nil {
		t.Errorf("creating a thing of a deprecated type again, the same: %v", err)
	}
	if err := reg.UpdateThing(ctx, scope, "lamp-1", registry.ThingUpdate{TypeName: "lamp", Attributes: map[string]string{"e": "5"}, Merge: true}); err != nil {
		t.Errorf("updating a thing that has the deprecated type: %v", err)
	}
	if _, err := reg.CreateThing(ctx, scope, "lamp-2", "lamp", "", nil); !apierr.Is(err, apierr.InvalidRequest) {
		t.Errorf("a new thing of a deprecated type: %v", err)
	}
	if err := reg.UpdateThing(ctx, scope, "plain", registry.ThingUpdate{TypeName: "lamp"}); !apierr.Is(err, apierr.InvalidRequest) {
		t.Errorf("a thing taking a deprecated type: %v", err)
	}
}
