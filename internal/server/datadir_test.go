package server_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/server"
)

// TestOneServerPerDataDirectory: a second server on a SQLite data directory
// in use refuses to start, naming the directory; once the first stops, it
// starts.
func TestOneServerPerDataDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startServer(t, dir)
	_, err := server.New(t.Context(), testConfig(dir), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "another fleetca") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("a second server on %s: %v, want a refusal naming the directory", dir, err)
	}
	if pid, _ := os.ReadFile(filepath.Join(dir, "lock")); strings.TrimSpace(string(pid)) == "" {
		t.Error("the lock file does not name its holder")
	}
	first.stop(t)
	startServer(t, dir) // the lock went with the first server
}

// TestNoSecondCA: data that belongs to a CA is never served with another.
// A database whose ca/ directory is missing (restored alone, or a server
// started in another directory) refuses to start instead of making a new
// CA, and a database given another CA's directory refuses too; both say
// what is missing and where. A first start logs the root's fingerprint.
func TestNoSecondCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	rootSum := sha256.Sum256(ts.rootCA(t).Raw)
	fingerprint := hex.EncodeToString(rootSum[:])
	if !strings.Contains(ts.logs.String(), fingerprint) || !strings.Contains(ts.logs.String(), dir) {
		t.Errorf("the first start did not log the data directory and root fingerprint %s:\n%s", fingerprint, ts.logs)
	}
	if _, err := ts.iotClient().CreateKeysAndCertificate(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	ts.stop(t)

	start := func() error {
		srv, err := server.New(t.Context(), testConfig(dir), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			srv.Shutdown(t.Context())
		}
		return err
	}
	// The CA directory moved away: no new CA.
	caDir := filepath.Join(dir, "ca")
	if err := os.Rename(caDir, caDir+".away"); err != nil {
		t.Fatal(err)
	}
	err := start()
	if err == nil || !strings.Contains(err.Error(), caDir) || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("a database without its CA: %v, want a refusal naming %s", err, caDir)
	}
	if _, statErr := os.Stat(caDir); statErr == nil {
		t.Fatal("a new CA was made for the existing data")
	}

	// Another CA's directory in its place.
	other := startServer(t, "")
	other.stop(t)
	if err := os.Rename(filepath.Join(other.dir, "ca"), caDir); err != nil {
		t.Fatal(err)
	}
	err = start()
	if err == nil || !strings.Contains(err.Error(), fingerprint) || !strings.Contains(err.Error(), "is not the CA") {
		t.Fatalf("a database with another CA: %v, want a refusal naming the pinned root %s", err, fingerprint)
	}

	// Its own CA back: it serves again.
	if err := os.RemoveAll(caDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(caDir+".away", caDir); err != nil {
		t.Fatal(err)
	}
	startServer(t, dir)
}

// TestAccountsBeforeTheFirstStart: accounts an operator makes before the
// first start belong to no CA yet, so the first start still makes one.
func TestAccountsBeforeTheFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig(dir)
	if err := server.Admin(t.Context(), cfg, func(reg *registry.Service) error {
		_, err := reg.CreateAccount(t.Context(), "222233334444")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	startServer(t, dir)
}

// TestDescribeEndpoint: the SDK's DescribeEndpoint answers the MQTT
// endpoint's host, the account's own for a DNS name, and a device connects
// to what it answers.
func TestDescribeEndpoint(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	out, err := ts.iotClient().DescribeEndpoint(t.Context(), &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
	if err != nil || *out.EndpointAddress != "localhost" {
		t.Fatalf("DescribeEndpoint = %v, %v; want localhost", out, err)
	}
	named := startServerWith(t, "", func(c *config.Config) {
		c.MQTTHosts = "localhost,mqtt.example.com"
		c.MQTTEndpoint = "mqtt.example.com"
	})
	out, err = named.iotClient().DescribeEndpoint(t.Context(), &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
	if err != nil || *out.EndpointAddress != testAccount+".mqtt.example.com" {
		t.Fatalf("DescribeEndpoint = %v, %v; want the account's host", out, err)
	}
	// The endpoint's certificate names the account's host, which picks the
	// account: a device that connects to it (by its address here, for want
	// of DNS) is admitted.
	kp := named.claim(t, named.iotClient())
	if _, err := named.connectWith(t, kp, "", func(o *paho.ClientOptions) { o.TLSConfig.ServerName = *out.EndpointAddress }); err != nil {
		t.Fatalf("connecting to %s: %v", *out.EndpointAddress, err)
	}
	if _, err := named.iotClient().DescribeEndpoint(t.Context(), &iot.DescribeEndpointInput{EndpointType: aws.String("iot:CredentialProvider")}); !isErr[*types.InvalidRequestException](err) {
		t.Fatalf("iot:CredentialProvider: %v, want InvalidRequestException", err)
	}
}

// TestClientConfigFile: the data directory's config file points the SDK at
// the server, with no endpoint given in code.
func TestClientConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(),
		awsconfig.WithSharedConfigFiles([]string{filepath.Join(dir, "config")}),
		awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(dir, "credentials")}))
	if err != nil {
		t.Fatal(err)
	}
	c := iot.NewFromConfig(cfg)
	if _, err := c.CreateKeysAndCertificate(t.Context(), &iot.CreateKeysAndCertificateInput{}); err != nil {
		t.Fatalf("the SDK configured by the data directory's files: %v", err)
	}
	if n := certificateCount(t, ts.iotClient()); n != 1 {
		t.Fatalf("%d certificates in the default account, want the one just made", n)
	}
}

// TestSealedSecretsKeepTheirCA: secrets sealed with the passphrase are
// salted with the root, so a database holding them, even without a single
// certificate, is never served with a new CA.
func TestSealedSecretsKeepTheirCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sealed := func(c *config.Config) { c.CAKeyPassphrase = "a passphrase for the test" }
	startServerWith(t, dir, sealed).stop(t)
	// As a version that pinned no root left it.
	db, err := sql.Open("sqlite", filepath.Join(dir, "fleetca.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM root_pin`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	caDir := filepath.Join(dir, "ca")
	if err := os.Rename(caDir, caDir+".away"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	sealed(&cfg)
	_, err = server.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("a database of sealed secrets without its CA: %v", err)
	}
}
