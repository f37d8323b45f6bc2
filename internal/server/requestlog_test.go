package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/server"
)

// startWithJSONLogs starts a server that writes JSON log lines at level to
// the buffer it returns.
func startWithJSONLogs(t *testing.T, level slog.Level) (*server.Server, *syncBuffer) {
	t.Helper()
	cfg := config.Default(func(string) string { return "" })
	cfg.DataDir, cfg.APIAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", ""
	cfg.AccountID, cfg.AccessKeyID, cfg.SecretAccessKey = testAccount, testKeyID, testSecret
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, logs
}

// requestLines returns the request lines among logs' JSON lines.
func requestLines(logs *syncBuffer) []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestRequestLogLines checks that at info level each API request leaves one
// line (operation, status, latency, request ID, account, error code) and
// that at warn level successful requests leave none.
func TestRequestLogLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level     slog.Level
		wantLines int
	}{{slog.LevelInfo, 2}, {slog.LevelWarn, 0}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			srv, logs := startWithJSONLogs(t, tc.level)
			c := newIoTClient(srv.URL(), testKeyID, testSecret)
			if _, err := c.ListCertificates(context.Background(), &iot.ListCertificatesInput{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(strings.Repeat("0", 64))}); err == nil {
				t.Fatal("described a certificate that does not exist")
			}
			lines := requestLines(logs)
			if len(lines) != tc.wantLines {
				t.Fatalf("%d request lines, want %d:\n%s", len(lines), tc.wantLines, logs.String())
			}
			if tc.wantLines == 0 {
				return
			}
			if lines[0]["operation"] != "ListCertificates" || lines[0]["status"] != 200.0 || lines[0]["account"] != testAccount || lines[0]["request_id"] == "" {
				t.Errorf("first line %v", lines[0])
			}
			if lines[1]["operation"] != "DescribeCertificate" || lines[1]["status"] != 404.0 || lines[1]["error"] != "ResourceNotFoundException" {
				t.Errorf("second line %v", lines[1])
			}
		})
	}
}

// TestRequestLogClientGone checks that a request whose client gives up before
// the answer is recorded as 499, not as an internal failure: no error line,
// no 5xx in the metrics, and no certificate left behind.
func TestRequestLogClientGone(t *testing.T) {
	t.Parallel() // iotapi's TestClientGone checks the same against a fake registry
	srv, logs := startWithJSONLogs(t, slog.LevelInfo)
	c := newIoTClient(srv.URL(), testKeyID, testSecret)

	// The client leaves as soon as its request is written, so the server
	// has it whatever the machine's load; RSA key generation takes tens of
	// milliseconds, so the server is still at work when the client goes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { cancel() }})
	if _, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true}); err == nil {
		t.Skip("the request finished within 5 ms; nothing to check")
	}
	var line map[string]any
	for deadline := time.Now().Add(20 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range requestLines(logs) {
			if l["operation"] == "CreateKeysAndCertificate" {
				line = l
			}
		}
	}
	if line == nil {
		t.Fatalf("no request line:\n%s", logs.String())
	}
	if line["status"] != 499.0 || line["error"] != "ClientClosedRequest" {
		t.Errorf("request line %v, want status 499 and ClientClosedRequest", line)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("an error line for a client that went away:\n%s", logs.String())
	}
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `operation="CreateKeysAndCertificate",status="499"} 1`; !strings.Contains(string(metrics), want) || strings.Contains(string(metrics), `status="500"`) {
		t.Errorf("metrics do not count the request as %s alone:\n%s", want, metrics)
	}
	list, err := c.ListCertificates(context.Background(), &iot.ListCertificatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Certificates) != 0 {
		t.Errorf("%d certificates stored for a request its client abandoned", len(list.Certificates))
	}
}

// TestEveryLogLineIsJSON: with JSON logs, every line is JSON, the MQTT
// broker's included, and a device's refused packet is logged by type, topic
// and size, at info, never with its payload.
func TestEveryLogLineIsJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	d := ts.mustConnect(t, ts.claim(t, ts.iotClient()))
	payload := strings.Repeat("private device reading ", 200)
	// A QoS 1 publish on a reserved topic is refused, and the broker logs it.
	d.Publish("$aws/things/x/shadow/update", 1, false, payload).WaitTimeout(5 * time.Second)
	var brokerLine map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for brokerLine == nil && time.Now().Before(deadline) {
		for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("a log line is not JSON: %q", line)
			}
			if m["component"] == "mqtt" && m["pk"] != nil {
				brokerLine = m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if brokerLine == nil {
		t.Fatalf("the broker logged no refused packet:\n%s", ts.logs)
	}
	if brokerLine["level"] != "INFO" || !strings.Contains(brokerLine["pk"].(string), "payload=4600 bytes") {
		t.Errorf("the broker's line: %v", brokerLine)
	}
	if strings.Contains(ts.logs.String(), "private device reading") {
		t.Error("a device's payload was logged")
	}
}
