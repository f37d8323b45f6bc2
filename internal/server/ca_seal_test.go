package server_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/server"
	"github.com/fleetca/fleetca/internal/testpki"
)

// TestSealCA: fleetca ca seal turns a CA's plain key files into sealed
// ones, which the server then needs the passphrase to open, with nothing
// else changed; it refuses while a server uses the directory.
func TestSealCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	out, err := ts.iotClient().CreateKeysAndCertificate(t.Context(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	sealing := testConfig(dir)
	sealing.CAKeyPassphrase = "a passphrase for the test"
	if _, err := server.SealCA(sealing); err == nil || !strings.Contains(err.Error(), "another fleetca") {
		t.Fatalf("sealing under a running server: %v", err)
	}
	ts.stop(t)

	sealed, err := server.SealCA(sealing)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"root.key", "issuing.key", "server-ca.key"}; !reflect.DeepEqual(sealed, want) {
		t.Fatalf("sealed %v, want %v", sealed, want)
	}
	for _, name := range sealed {
		data, err := os.ReadFile(filepath.Join(dir, "ca", name))
		if err != nil || !keys.IsSealed(data) {
			t.Fatalf("%s is not sealed: %v", name, err)
		}
	}
	if again, err := server.SealCA(sealing); err != nil || len(again) != 0 {
		t.Fatalf("sealing again: %v, %v; want nothing to do", again, err)
	}
	wrong := sealing
	wrong.CAKeyPassphrase = "another passphrase"
	if _, err := server.SealCA(wrong); err == nil {
		t.Fatal("sealed keys checked with the wrong passphrase")
	}
	if _, err := server.New(t.Context(), testConfig(dir), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("a server opened the sealed keys without the passphrase")
	}
	rs := startServerWith(t, dir, func(c *config.Config) { c.CAKeyPassphrase = sealing.CAKeyPassphrase })
	if _, err := rs.iotClient().DescribeCertificate(t.Context(), &iot.DescribeCertificateInput{CertificateId: out.CertificateId}); err != nil {
		t.Fatalf("after sealing: %v", err)
	}
	if _, err := rs.iotClient().CreateKeysAndCertificate(t.Context(), &iot.CreateKeysAndCertificateInput{}); err != nil {
		t.Fatalf("signing with the sealed key: %v", err)
	}
}

// TestSealCANeverMixesPassphrases: with a key sealed already, a mistyped
// passphrase seals nothing, not even the keys still in the clear.
func TestSealCANeverMixesPassphrases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startServer(t, dir).stop(t)
	first := testConfig(dir)
	first.CAKeyPassphrase = "the first passphrase"
	if _, err := server.SealCA(first); err != nil {
		t.Fatal(err)
	}
	// The root key back from offline storage, in the clear.
	plainRoot := filepath.Join(dir, "ca", "root.key")
	if err := os.Remove(plainRoot); err != nil {
		t.Fatal(err)
	}
	key := testpki.Key(t, "p256")
	if err := os.WriteFile(plainRoot, []byte(testpki.KeyPEM(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	mistyped := first
	mistyped.CAKeyPassphrase = "the frist passphrase"
	if _, err := server.SealCA(mistyped); err == nil || !strings.Contains(err.Error(), "another passphrase") {
		t.Fatalf("sealing with a mistyped passphrase: %v", err)
	}
	if data, _ := os.ReadFile(plainRoot); keys.IsSealed(data) {
		t.Fatal("the root key was sealed with the mistyped passphrase")
	}
}
