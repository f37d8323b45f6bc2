// Package lambdalocal serves the Lambda Invoke API for Go handlers, run
// through aws-lambda-go's own handler machinery, and answers the way the
// Lambda service and sam local do, X-Amz-Function-Error included for a
// handler that returns an error. It lets the example certificate provider
// run on a laptop with nothing else installed, and tests invoke providers
// for real.
package lambdalocal

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

// maxPayload bounds an invocation's payload, as Lambda bounds synchronous
// ones (6 MB).
const maxPayload = 6 << 20

// Handler serves the functions (handlers in any form lambda.NewHandler
// accepts), by function name. seen, if set, is given each invocation's
// payload.
func Handler(functions map[string]any, seen func(payload []byte)) http.Handler {
	handlers := map[string]lambda.Handler{}
	for name, f := range functions {
		handlers[name] = lambda.NewHandler(f)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{function}/invocations", func(w http.ResponseWriter, r *http.Request) {
		name, _ := url.PathUnescape(r.PathValue("function"))
		// The SDK sends the ARN; the name is its seventh field.
		if parts := strings.Split(name, ":"); len(parts) >= 7 {
			name = parts[6]
		}
		h, ok := handlers[name]
		if !ok {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": "Function not found: " + name})
			return
		}
		payload, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
		if err != nil || len(payload) > maxPayload {
			w.Header().Set("X-Amzn-ErrorType", "RequestTooLargeException")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		if seen != nil {
			seen(payload)
		}
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
	})
	return mux
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
