// Package lambdatest serves the Lambda Invoke API (lambdalocal) on a
// loopback port for tests, counting the invocations. Only tests import it.
package lambdatest

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/fleetca/fleetca/internal/lambdalocal"
)

// Server is a Lambda Invoke API endpoint.
type Server struct {
	*httptest.Server
	// Calls counts invocations.
	Calls atomic.Int64
	// LastEvent is the payload of the latest invocation.
	lastEvent atomic.Value
}

// NewServer serves the handlers (functions in any form lambda.NewHandler
// accepts), by function name, until the test ends.
func NewServer(t testing.TB, handlers map[string]any) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(lambdalocal.Handler(handlers, func(payload []byte) {
		s.Calls.Add(1)
		s.lastEvent.Store(payload)
	}))
	t.Cleanup(s.Close)
	return s
}

// LastEvent returns the payload of the latest invocation.
func (s *Server) LastEvent() []byte {
	b, _ := s.lastEvent.Load().([]byte)
	return b
}

// Sleep is a handler that answers only when ctx ends, for timeout tests.
func Sleep(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
