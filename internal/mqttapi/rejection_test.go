package mqttapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/provider"
	"github.com/fleetca/fleetca/internal/registry"
)

// TestEveryKindHasARejection: an apierr kind added without an MQTT
// rendering fails here instead of becoming a 500 unnoticed.
func TestEveryKindHasARejection(t *testing.T) {
	for _, k := range apierr.Kinds {
		if _, ok := rejectionOf[k]; !ok {
			t.Errorf("%s has no MQTT rejection", k)
		}
	}
	if len(rejectionOf) != len(apierr.Kinds) {
		t.Errorf("rejectionOf has %d kinds, apierr.Kinds %d", len(rejectionOf), len(apierr.Kinds))
	}
}

func TestRejection(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		name string
		msg  string
	}{
		{apierr.New(apierr.InvalidRequest, "bad CSR"), 400, "InvalidRequest", "bad CSR"},
		{fmt.Errorf("wrapped: %w", apierr.New(apierr.Throttling, "slow down")), 429, "Throttled", "slow down"},
		{apierr.New(apierr.ServiceUnavailable, "db"), 503, "ServiceUnavailable", "db"},
		{apierr.Wrap(apierr.InternalFailure, errors.New("secret detail"), "The certificate provider did not sign the certificate signing request."), 500, "InternalError", "The certificate provider did not sign the certificate signing request."},
		{apierr.New(apierr.CertificateConflict, "internal detail"), 500, "InternalError", "An internal error occurred."},
		// RegisterThing's refusals.
		{apierr.New(apierr.ResourceNotFound, "The provisioning template t does not exist."), 404, "ResourceNotFound", "The provisioning template t does not exist."},
		{apierr.New(apierr.AccessDenied, "The pre-provisioning hook did not allow provisioning."), 403, "AccessDenied", "The pre-provisioning hook did not allow provisioning."},
		{apierr.New(apierr.ResourceRegistrationFailure, "parameter X has no value"), 400, "InvalidParameters", "parameter X has no value"},
		{apierr.New(apierr.ConflictingResourceUpdate, "FAIL"), 400, "ResourceConflict", "FAIL"},
		{fmt.Errorf("registering: %w", apierr.Wrap(apierr.InvalidRequest, registry.ErrInvalidOwnershipToken, "Certificate ownership token cannot be empty.")),
			400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty."},
		{context.DeadlineExceeded, 503, "ServiceUnavailable", "The service could not complete the request in time; retry later."},
		{fmt.Errorf("storing: %w", context.Canceled), 503, "ServiceUnavailable", "The service is shutting down; retry later."},
		{provider.Errorf(provider.TimedOut, nil, "not through the registry"), 500, "InternalError", "An internal error occurred."},
		{errors.New("disk on fire"), 500, "InternalError", "An internal error occurred."},
	} {
		r := rejection(tc.err)
		if r.StatusCode != tc.code || r.ErrorCode != tc.name || r.ErrorMessage != tc.msg {
			t.Errorf("rejection(%v) = %+v", tc.err, r)
		}
	}
}
