package iotapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fleetca/fleetca/internal/apierr"
)

func TestDescribeEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, endpoint, query string
		status                int
		body                  string
		kind                  apierr.Kind
	}{
		{"DNS name: the account's host", "mqtt.example.com", "?endpointType=iot%3AData-ATS", 200, `{"endpointAddress":"123456789012.mqtt.example.com"}`, ""},
		{"type omitted", "mqtt.example.com", "", 200, `{"endpointAddress":"123456789012.mqtt.example.com"}`, ""},
		{"legacy iot:Data", "mqtt.example.com", "?endpointType=iot%3AData", 200, `{"endpointAddress":"123456789012.mqtt.example.com"}`, ""},
		{"localhost as it is", "localhost", "?endpointType=iot%3AData-ATS", 200, `{"endpointAddress":"localhost"}`, ""},
		{"an address as it is", "192.0.2.7", "?endpointType=iot%3AData-ATS", 200, `{"endpointAddress":"192.0.2.7"}`, ""},
		{"jobs", "mqtt.example.com", "?endpointType=iot%3AJobs", 400, `{"message":"fleetca serves no iot:Jobs endpoint; iot:Data-ATS is the MQTT endpoint."}`, apierr.InvalidRequest},
		{"unknown type", "mqtt.example.com", "?endpointType=mqtt", 400, `{"message":"Endpoint type mqtt is not valid."}`, apierr.InvalidRequest},
		{"too long", "mqtt.example.com", "?endpointType=" + strings.Repeat("x", 129), 400,
			`{"message":"1 validation error detected: Value '` + strings.Repeat("x", 64) + `...' at 'endpointType' failed to satisfy constraint: Member must have length less than or equal to 128"}`, apierr.InvalidRequest},
		{"no MQTT endpoint", "", "?endpointType=iot%3AData-ATS", 400, `{"message":"The MQTT endpoint is disabled on this server (--mqtt-addr)."}`, apierr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := &fakeRegistry{}
			th := newTestHandler(reg, Options{MQTTEndpoint: tc.endpoint})
			rec := th.do(newRequest(t, "GET", "/endpoint"+tc.query, ""))
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.body {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tc.status, tc.body)
			}
			if tc.kind != "" && rec.Header().Get("x-amzn-ErrorType") != string(tc.kind)+":" {
				t.Errorf("error type %q", rec.Header().Get("x-amzn-ErrorType"))
			}
			if tc.status == http.StatusOK && rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", rec.Header().Get("Content-Type"))
			}
			checkNoCalls(t, reg)
		})
	}
}
