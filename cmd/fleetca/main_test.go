package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/server"
)

func TestRun(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantOutput string
	}{
		{"version", []string{"version"}, 0, "fleetca "},
		{"--version", []string{"--version"}, 0, "fleetca "},
		{"serve with a stray argument", []string{"serve", "now"}, 2, `unexpected argument "now"`},
		{"help", []string{"help"}, 0, "fleetca serve"},
		{"no command", nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", []string{"serve", "--no-such-flag"}, 2, "flag provided but not defined"},
		{"bad account", []string{"serve", "--account-id", "12"}, 2, "not 12 digits"},
		{"bad algorithm", []string{"serve", "--ca-key-algorithm", "dsa"}, 2, "CA key algorithm"},
		{"bad address", []string{"serve", "--api-addr", "nowhere"}, 2, "api address"},
		{"backup without --out", []string{"backup"}, 2, "--out is required"},
		{"backup with a stray argument", []string{"backup", "--out", "x", "extra"}, 2, `unexpected argument "extra"`},
		{"restore without --from", []string{"restore"}, 2, "--from is required"},
		{"ca without seal", []string{"ca"}, 2, "fleetca ca seal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.wantOutput) {
				t.Errorf("output %q does not contain %q", all, tc.wantOutput)
			}
		})
	}
}

// TestAccountCommands adds an account and a key to the data directory of a
// running server, and uses them through the SDK.
func TestAccountCommands(t *testing.T) {
	dir := t.TempDir()
	srv, _ := startServer(t, dir, nil)

	var out, errOut bytes.Buffer
	if code := run([]string{"account", "create", "--data-dir", dir, "--account-id", "555555555555"}, &out, &errOut); code != 0 {
		t.Fatalf("account create: %d %s", code, errOut.String())
	}
	keyID, secret := parseProfile(t, out.String())
	client := iot.New(iot.Options{BaseEndpoint: aws.String(srv.URL()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), RetryMaxAttempts: 1})
	created, err := client.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(*created.CertificateArn, ":555555555555:") {
		t.Fatalf("the new key acts for %s, want account 555555555555", *created.CertificateArn)
	}

	out.Reset()
	if code := run([]string{"account", "add-key", "--data-dir", dir, "--account-id", "555555555555"}, &out, &errOut); code != 0 {
		t.Fatalf("account add-key: %d %s", code, errOut.String())
	}
	k2, _ := parseProfile(t, out.String())
	if k2 == keyID {
		t.Fatal("add-key returned the existing key")
	}
	if strings.Contains(out.String(), "[fleetca-555555555555]\n") {
		t.Errorf("add-key's profile has create's name, so pasting it overwrites the first key's section:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"account", "list", "--data-dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("account list: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "555555555555\t") || !strings.Contains(out.String(), keyID) || !strings.Contains(out.String(), k2) || strings.Contains(out.String(), secret) {
		t.Errorf("account list shows %q; want the account with both key IDs and no secret", out.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"account", "create", "--data-dir", dir, "--account-id", "555555555555"}, 1, "exists already"},
		{[]string{"account", "add-key", "--data-dir", dir, "--account-id", "999999999999"}, 1, "does not exist"},
		{[]string{"account", "add-key", "--data-dir", dir}, 2, "needs --account-id"},
		{[]string{"account", "create", "--data-dir", filepath.Join(dir, "nowhere")}, 1, "no fleetca database"},
		{[]string{"account"}, 2, "usage"},
		{[]string{"account", "list", "--data-dir", dir, "stray"}, 2, `unexpected argument "stray"`},
	} {
		errOut.Reset()
		if code := run(tc.args, io.Discard, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d %q, want %d mentioning %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
}

// startServer runs a server on dir on loopback ports, changed by configure,
// until the test ends.
func startServer(t *testing.T, dir string, configure func(*config.Config)) (*server.Server, config.Config) {
	t.Helper()
	cfg := config.Default(func(string) string { return "" })
	cfg.DataDir, cfg.APIAddr, cfg.MQTTAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, cfg
}

func parseProfile(t *testing.T, s string) (keyID, secret string) {
	t.Helper()
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, " = ")
		switch k {
		case "aws_access_key_id":
			keyID = v
		case "aws_secret_access_key":
			secret = v
		}
	}
	if keyID == "" || secret == "" {
		t.Fatalf("no key pair in %q", s)
	}
	return keyID, secret
}

// TestBenchWritesIntoItsOwnAccount: with --data-dir, bench makes an account
// for the run and writes only into it, never into the default account.
func TestBenchWritesIntoItsOwnAccount(t *testing.T) {
	dir := t.TempDir()
	srv, cfg := startServer(t, dir, func(c *config.Config) {
		c.MQTTAddr = ""
		c.AccessKeyID, c.SecretAccessKey = "AKIAFLEETCABENCHTEST", "bench-test-secret-0123456789"
	})

	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--endpoint", srv.URL(), "--data-dir", dir, "--op", "csr", "--csr-key", "p256", "--count", "6", "--concurrency", "2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("bench: %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "made for this run") || strings.Contains(out.String(), "map[") {
		t.Errorf("bench output:\n%s\n%s", out.String(), errOut.String())
	}
	def := iot.New(iot.Options{BaseEndpoint: aws.String(srv.URL()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""), RetryMaxAttempts: 1})
	list, err := def.ListCertificates(context.Background(), &iot.ListCertificatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Certificates) != 0 {
		t.Fatalf("bench wrote %d certificates into the default account", len(list.Certificates))
	}
	out.Reset()
	if code := run([]string{"account", "list", "--data-dir", dir}, &out, &errOut); code != 0 || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("accounts after bench: %d\n%s", code, out.String())
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		addr, cert, want string
	}{
		{"127.0.0.1:7400", "", "http://127.0.0.1:7400/healthz"},
		{"0.0.0.0:7400", "", "http://127.0.0.1:7400/healthz"},
		{":7400", "", "http://127.0.0.1:7400/healthz"},
		{"[::]:7400", "", "http://127.0.0.1:7400/healthz"},
		{"[::1]:7400", "", "http://[::1]:7400/healthz"},
		{"0.0.0.0:7400", "api.pem", "https://127.0.0.1:7400/healthz"},
	} {
		cfg := config.Default(func(string) string { return "" })
		cfg.APIAddr, cfg.TLSCert = tc.addr, tc.cert
		if got := healthURL(cfg); got != tc.want {
			t.Errorf("healthURL(%s, tls %q) = %s, want %s", tc.addr, tc.cert, got, tc.want)
		}
	}
}
