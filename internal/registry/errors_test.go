package registry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/store"
)

// TestInternalErrors: a database that is unavailable (disk full, read-only,
// no answer in time) is the client's 503, which SDKs retry; a client that
// went away stays a context error; anything else is wrapped for the log.
func TestInternalErrors(t *testing.T) {
	unavailable := fmt.Errorf("%w: %w", store.ErrUnavailable, errors.New("database or disk is full"))
	if err := internal("storing", unavailable); !apierr.Is(err, apierr.ServiceUnavailable) {
		t.Errorf("unavailable: %v, want ServiceUnavailable", err)
	}
	if err := internal("storing", context.Canceled); err != context.Canceled {
		t.Errorf("canceled: %v", err)
	}
	other := errors.New("boom")
	if err := internal("storing", other); !errors.Is(err, other) || apierr.Is(err, apierr.ServiceUnavailable) {
		t.Errorf("other: %v", err)
	}
	if err := internal("storing", nil); err != nil {
		t.Errorf("nil: %v", err)
	}
}
