package registry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/provider"
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

// TestProviderFailures: a provider's failure leaves the registry as an apierr
// error whose cause, for the log, is the provider's.
func TestProviderFailures(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind apierr.Kind
	}{
		{provider.Errorf(provider.CSRRejected, nil, "no"), apierr.InvalidRequest},
		{fmt.Errorf("invoking: %w", provider.Errorf(provider.CSRRejected, nil, "no")), apierr.InvalidRequest},
		{provider.Errorf(provider.TimedOut, nil, "slow"), apierr.InternalFailure},
		{provider.Errorf(provider.WrongKey, nil, "other key"), apierr.InternalFailure},
	} {
		err := providerFailure(tc.err)
		if !apierr.Is(err, tc.kind) || !errors.Is(err, tc.err) {
			t.Errorf("providerFailure(%v) = %v, want %s keeping the cause", tc.err, err, tc.kind)
		}
	}
	if err := providerFailure(context.Canceled); err != context.Canceled {
		t.Errorf("canceled: %v", err)
	}
	if err := providerFailure(errors.New("boom")); apierr.Is(err, apierr.InvalidRequest) {
		t.Errorf("an unexpected failure became the device's mistake: %v", err)
	}
}
