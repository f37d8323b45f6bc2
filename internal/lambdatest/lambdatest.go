// Package lambdatest serves the Lambda Invoke API on a loopback port for
// tests: it runs Go handlers through aws-lambda-go's own handler machinery
// and answers the way the Lambda service (and sam local) does, including
// X-Amz-Function-Error for a handler that returns an error. Only tests import
// it.
package lambdatest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

// Server is a Lambda Invoke API endpoint.
type Server struct {
	*httptest.Server
	handlers map[string]lambda.Handler
	// Calls counts invocations.
	Calls atomic.Int64
	// LastEvent is the payload of the latest invocation.
	lastEvent atomic.Value
}

// NewServer serves the handlers (functions in any form lambda.NewHandler
// accepts), by function name, until the test ends.
func NewServer(t testing.TB, handlers map[string]any) *Server {
	s := &Server{handlers: map[string]lambda.Handler{}}
	for name, h := range handlers {
		s.handlers[name] = lambda.NewHandler(h)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{function}/invocations", s.invoke)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// LastEvent returns the payload of the latest invocation.
func (s *Server) LastEvent() []byte {
	b, _ := s.lastEvent.Load().([]byte)
	return b
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	s.Calls.Add(1)
	name, _ := url.PathUnescape(r.PathValue("function"))
	// The SDK sends the ARN; the name is its seventh field.
	if parts := strings.Split(name, ":"); len(parts) >= 7 {
		name = parts[6]
	}
	h, ok := s.handlers[name]
	if !ok {
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": "Function not found: " + name})
		return
	}
	payload, _ := io.ReadAll(r.Body)
	s.lastEvent.Store(payload)
	out, err := h.Invoke(r.Context(), payload)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller is gone
		}
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(map[string]string{"errorMessage": err.Error(), "errorType": errorType(err)})
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// errorType names an error the way the Lambda Go runtime does: its type's
// name, without the pointer.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// Sleep is a handler that answers only when ctx ends, for timeout tests.
func Sleep(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
