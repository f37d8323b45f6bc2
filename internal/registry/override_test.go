package registry

import (
	"maps"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/template"
)

// TestOverrideThing: what a template's OverrideSettings make of a thing
// that exists.
func TestOverrideThing(t *testing.T) {
	existing := func() *iot.Thing {
		return &iot.Thing{Name: "t", TypeName: "old", Attributes: map[string]string{"a": "1", "b": "2"}, Version: 3}
	}
	for _, tc := range []struct {
		name       string
		plan       template.ThingPlan
		attributes map[string]string // nil: the thing is left as it is
		typeName   string
		conflict   bool
	}{
		{name: "nothing asked", plan: template.ThingPlan{}},
		{name: "DO_NOTHING keeps the attributes", plan: template.ThingPlan{Attributes: map[string]string{"c": "3"}}},
		{name: "REPLACE", plan: template.ThingPlan{Attributes: map[string]string{"c": "3"}, Override: template.ThingOverride{Attributes: template.Replace}},
			attributes: map[string]string{"c": "3"}, typeName: "old"},
		{name: "MERGE, an empty value removing", plan: template.ThingPlan{Attributes: map[string]string{"a": "", "c": "3"}, Override: template.ThingOverride{Attributes: template.Merge}},
			attributes: map[string]string{"b": "2", "c": "3"}, typeName: "old"},
		{name: "FAIL on a change", plan: template.ThingPlan{Attributes: map[string]string{"a": "9"}, Override: template.ThingOverride{Attributes: template.Fail}}, conflict: true},
		{name: "FAIL without a change", plan: template.ThingPlan{Attributes: map[string]string{"a": "1", "b": "2"}, Override: template.ThingOverride{Attributes: template.Fail}}},
		{name: "type DO_NOTHING", plan: template.ThingPlan{TypeName: "new"}},
		{name: "type REPLACE", plan: template.ThingPlan{TypeName: "new", Override: template.ThingOverride{TypeName: template.Replace}},
			attributes: map[string]string{"a": "1", "b": "2"}, typeName: "new"},
		{name: "type FAIL", plan: template.ThingPlan{TypeName: "new", Override: template.ThingOverride{TypeName: template.Fail}}, conflict: true},
		{name: "type FAIL, the same type", plan: template.ThingPlan{TypeName: "old", Override: template.ThingOverride{TypeName: template.Fail}}},
	} {
		e := existing()
		got, err := overrideThing(e, &tc.plan)
		switch {
		case tc.conflict:
			if !apierr.Is(err, apierr.ConflictingResourceUpdate) {
				t.Errorf("%s: %v, want ConflictingResourceUpdate", tc.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.attributes == nil && got != nil:
			t.Errorf("%s: changed to %+v, want left as it is", tc.name, got)
		case tc.attributes != nil && (got == nil || !maps.Equal(got.Attributes, tc.attributes) || got.TypeName != tc.typeName):
			t.Errorf("%s: %+v, want attributes %v and type %q", tc.name, got, tc.attributes, tc.typeName)
		}
		if !maps.Equal(e.Attributes, map[string]string{"a": "1", "b": "2"}) || e.TypeName != "old" {
			t.Errorf("%s: the existing thing was changed in place: %+v", tc.name, e)
		}
	}
}

// TestOverrideStatus: a certificate waiting for activation takes the
// template's status; another follows the Status override; a revoked one
// is never provisioned.
func TestOverrideStatus(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		from     iot.Status
		plan     template.CertificatePlan
		want     iot.Status
		conflict bool
	}{
		{iot.StatusPendingActivation, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.DoNothing}, iot.StatusActive, false},
		{iot.StatusPendingActivation, template.CertificatePlan{Status: "INACTIVE"}, iot.StatusInactive, false},
		{iot.StatusInactive, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.DoNothing}, iot.StatusInactive, false},
		{iot.StatusInactive, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.Replace}, iot.StatusActive, false},
		{iot.StatusInactive, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.Fail}, iot.StatusInactive, true},
		{iot.StatusActive, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.Fail}, iot.StatusActive, false},
		{iot.StatusRevoked, template.CertificatePlan{Status: "ACTIVE", StatusOverride: template.Replace}, iot.StatusRevoked, true},
	} {
		c := &iot.Certificate{ID: "c", Status: tc.from, CustomerVersion: 1}
		err := overrideStatus(c, &tc.plan, now)
		if (err != nil) != tc.conflict || c.Status != tc.want {
			t.Errorf("%s with %+v: %s, %v; want %s (refused: %v)", tc.from, tc.plan, c.Status, err, tc.want, tc.conflict)
		}
		if c.Status != tc.from && (c.CustomerVersion != 2 || !c.LastModifiedAt.Equal(now)) {
			t.Errorf("%s -> %s: version %d, modified %v", tc.from, c.Status, c.CustomerVersion, c.LastModifiedAt)
		}
	}
}
