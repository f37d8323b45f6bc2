package iotapi

import (
	"testing"

	"github.com/fleetca/fleetca/internal/apierr"
)

// TestEveryKindHasAStatus: an apierr kind added without an HTTP status
// fails here instead of being answered 500.
func TestEveryKindHasAStatus(t *testing.T) {
	for _, k := range apierr.Kinds {
		if _, ok := statusOf[k]; !ok {
			t.Errorf("%s has no HTTP status", k)
		}
	}
	if len(statusOf) != len(apierr.Kinds) {
		t.Errorf("statusOf has %d kinds, apierr.Kinds %d", len(statusOf), len(apierr.Kinds))
	}
}
