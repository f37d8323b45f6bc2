package server

import (
	"context"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/issuance"
)

// Hooks for the tests of package server_test; they are not part of the
// production Server.

// KeyPoolStats reports what the CreateKeysAndCertificate key pool has done;
// zeros without a pool.
func (s *Server) KeyPoolStats() issuance.KeyPoolStats {
	if s.keyPool == nil {
		return issuance.KeyPoolStats{}
	}
	return s.keyPool.Stats()
}

// ExpireProvisionedCertificates deletes the certificates whose ownership token
// expired before at while they were still PENDING_ACTIVATION (the janitor does
// this every minute with the current time).
func (s *Server) ExpireProvisionedCertificates(ctx context.Context, at time.Time) (int, error) {
	if s.mqtt == nil {
		return 0, errors.New("the MQTT endpoint is disabled")
	}
	return s.mqtt.ExpireNow(ctx, at)
}
