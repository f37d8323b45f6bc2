package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/registry"
	"github.com/fleetca/fleetca/internal/server"
)

// TestSecretsSealedAtRest: with a passphrase, SigV4 secrets are stored
// sealed (a copy of the database no longer signs requests), those stored in
// the clear before are sealed at the next start, the server refuses to
// start without the passphrase once they are sealed, and the database files
// are readable by their owner only.
func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	const passphrase = "rest-test-passphrase"
	dir := t.TempDir()
	ctx := context.Background()

	// First without a passphrase: an account's key is stored as it is.
	ts := startServer(t, dir)
	before, err := ts.CreateAccount(ctx, testOtherAcct)
	if err != nil {
		t.Fatal(err)
	}
	ts.stop(t)
	if db := readDatabase(t, dir); !bytes.Contains(db, []byte(before.SecretAccessKey)) {
		t.Fatal("the test cannot see a clear secret in the database; it proves nothing")
	}

	// With a passphrase: stored secrets are sealed at start, new ones too.
	withPassphrase := func(c *config.Config) { c.CAKeyPassphrase = passphrase }
	ts = startServerWith(t, dir, withPassphrase)
	after, err := ts.CreateAccount(ctx, "444444444444")
	if err != nil {
		t.Fatal(err)
	}
	for _, cred := range []struct{ id, secret string }{{before.AccessKeyID, before.SecretAccessKey}, {after.AccessKeyID, after.SecretAccessKey}} {
		if _, err := ts.client(cred.id, cred.secret).ListCertificates(ctx, &iot.ListCertificatesInput{}); err != nil {
			t.Fatalf("a request signed with a sealed secret: %v", err)
		}
	}
	ts.stop(t)
	db := readDatabase(t, dir)
	for _, secret := range []string{before.SecretAccessKey, after.SecretAccessKey} {
		if bytes.Contains(db, []byte(secret)) {
			t.Fatalf("a secret access key is in the database in the clear: %.8s...", secret)
		}
	}
	if !bytes.Contains(db, []byte("fleetca-sealed-v1:")) {
		t.Fatal("no sealed secret in the database")
	}
	for _, name := range []string{"fleetca.db", "fleetca.db-wal", "fleetca.db-shm"} {
		if info, err := os.Stat(filepath.Join(dir, name)); err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}

	// The operator command seals too, with the root read from the data
	// directory.
	admin := config.Default(func(string) string { return "" })
	admin.DataDir, admin.CAKeyPassphrase = dir, passphrase
	var byAdmin *registry.Credential
	if err := server.Admin(ctx, admin, func(reg *registry.Service) (err error) {
		byAdmin, err = reg.CreateAccount(ctx, "555555555555")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(readDatabase(t, dir), []byte(byAdmin.SecretAccessKey)) {
		t.Fatal("the operator command stored a secret in the clear")
	}
	ts = startServerWith(t, dir, withPassphrase)
	if _, err := ts.client(byAdmin.AccessKeyID, byAdmin.SecretAccessKey).ListCertificates(ctx, &iot.ListCertificatesInput{}); err != nil {
		t.Fatalf("a request signed with the operator command's key: %v", err)
	}
	ts.stop(t)

	// Without the passphrase, or with another, the server does not start.
	for _, p := range []string{"", "another passphrase"} {
		cfg := config.Default(func(string) string { return "" })
		cfg.DataDir, cfg.APIAddr, cfg.MQTTAddr, cfg.CAKeyPassphrase = dir, "127.0.0.1:0", "", p
		if srv, err := server.New(ctx, cfg, discardLogger()); err == nil {
			srv.Shutdown(ctx)
			t.Fatalf("started with passphrase %q over sealed secrets", p)
		} else if !strings.Contains(err.Error(), "sealed") {
			t.Fatalf("with passphrase %q: %v", p, err)
		}
	}
}

// readDatabase reads the SQLite database and its WAL as bytes.
func readDatabase(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{"fleetca.db", "fleetca.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
