package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// TestMetrics checks that /metrics counts requests of both front ends, the
// certificates issued, the store's commits, and the process.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	claim := ts.claim(t, c)
	c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(strings.Repeat("0", 64))})
	d := ts.mustConnect(t, claim)
	d.request(t, "$aws/certificates/create", "json", map[string]any{})
	// A device whose certificate is not ACTIVE is refused, and counted.
	inactive, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.connect(t, newKeyPair(t, *inactive.CertificatePem, *inactive.KeyPair.PrivateKey), ""); err == nil {
		t.Fatal("an INACTIVE certificate connected")
	}

	resp, err := http.Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`fleetca_requests_total{frontend="http",operation="CreateKeysAndCertificate",status="200"} 2`,
		`fleetca_mqtt_connected_devices 1`,
		`fleetca_mqtt_admissions_total{outcome="admitted",reason=""} 1`,
		`fleetca_mqtt_admissions_total{outcome="refused",reason="the certificate is INACTIVE"} 1`,
		`fleetca_requests_total{frontend="http",operation="DescribeCertificate",status="404"} 1`,
		`fleetca_requests_total{frontend="mqtt",operation="CreateKeysAndCertificate",status="200"} 1`,
		`fleetca_certificates_issued_total{operation="http/CreateKeysAndCertificate"} 2`,
		`fleetca_certificates_issued_total{operation="mqtt/CreateKeysAndCertificate"} 1`,
		`fleetca_request_duration_seconds_count{frontend="http",operation="CreateKeysAndCertificate"} 2`,
		`fleetca_store_commit_batch_size_count`,
		`fleetca_store_commit_duration_seconds_bucket`,
		`process_cpu_seconds_total`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Unauthenticated, so nothing that tells a flood how close it is.
	for _, secret := range []string{"process_open_fds", "process_max_fds"} {
		if strings.Contains(text, secret) {
			t.Errorf("/metrics shows %s", secret)
		}
	}
}
