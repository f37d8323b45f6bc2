package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fleetca/fleetca/internal/config"
)

// TestProfilerOnItsOwnAddress checks that --debug-addr serves Go's profiler
// there and only there: the API's address, which faces the fleet, has none.
func TestProfilerOnItsOwnAddress(t *testing.T) {
	t.Parallel()
	off := startServer(t, "")
	if off.DebugURL() != "" {
		t.Fatalf("profiler on %s without --debug-addr", off.DebugURL())
	}
	ts := startServerWith(t, "", func(c *config.Config) { c.DebugAddr = "127.0.0.1:0" })
	for _, tc := range []struct {
		url        string
		wantStatus int
		wantBody   string
	}{
		{ts.DebugURL() + "goroutine?debug=1", http.StatusOK, "goroutine profile:"},
		{ts.DebugURL(), http.StatusOK, "heap"},
		{ts.URL() + "/debug/pprof/goroutine?debug=1", http.StatusForbidden, "MissingAuthenticationToken"},
	} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body)+resp.Header.Get("x-amzn-ErrorType"), tc.wantBody) {
			t.Errorf("GET %s: %d %.80q; want %d with %q", tc.url, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
		}
	}
}
