package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/server"
)

// TestRequestLogLines checks that at info level each API request leaves one
// line (operation, status, latency, request ID, account, error code) and
// that at warn level successful requests leave none.
func TestRequestLogLines(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		wantLines int
	}{{slog.LevelInfo, 2}, {slog.LevelWarn, 0}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			cfg := config.Default(func(string) string { return "" })
			cfg.DataDir, cfg.APIAddr, cfg.MQTTAddr = t.TempDir(), "127.0.0.1:0", ""
			cfg.AccountID, cfg.AccessKeyID, cfg.SecretAccessKey = testAccount, testKeyID, testSecret
			logs := &syncBuffer{}
			srv, err := server.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: tc.level})))
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			c := newIoTClient(srv.URL(), testKeyID, testSecret)
			if _, err := c.ListCertificates(context.Background(), &iot.ListCertificatesInput{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: aws.String(strings.Repeat("0", 64))}); err == nil {
				t.Fatal("described a certificate that does not exist")
			}
			var lines []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
					lines = append(lines, m)
				}
			}
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
