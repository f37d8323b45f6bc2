package server_test

import (
	"context"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// TestNoSecretsInLogs runs everything that handles a secret (private keys
// made by the API and over MQTT, access keys, the CA passphrase, sealed CA
// keys) at debug level, including failures, and searches every log line for
// them.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	const passphrase = "log-test-passphrase-7f3a"
	dir := t.TempDir()
	ts := startServerWith(t, dir, func(c *config.Config) { c.CAKeyPassphrase = passphrase })
	c := ts.iotClient()
	ctx := context.Background()
	var secrets []string
	keyLines := func(pemText string) {
		for _, line := range strings.Split(pemText, "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
	}
	// Keys answered by the API.
	out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	keyLines(*out.KeyPair.PrivateKey)
	allowAll(t, c, *out.CertificateArn)
	// Keys answered over MQTT.
	claim := newKeyPair(t, *out.CertificatePem, *out.KeyPair.PrivateKey)
	d := ts.mustConnect(t, claim)
	_, reply := d.request(t, "$aws/certificates/create", "json", map[string]any{})
	keyLines(reply["privateKey"].(string))
	// A new account's key, and failures that carry request bodies.
	cred, err := ts.CreateAccount(ctx, testOtherAcct)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "logged?"})
	c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr + "junk")})
	ts.client(testKeyID, "wrong-"+testSecret).ListCertificates(ctx, &iot.ListCertificatesInput{})
	// The sealed CA keys, opened with the passphrase.
	for _, name := range []string{"root.key", "issuing.key"} {
		sealed, err := os.ReadFile(filepath.Join(dir, "ca", name))
		if err != nil || !strings.Contains(string(sealed), "AGE ENCRYPTED FILE") {
			t.Fatalf("%s is not sealed at rest (%v)", name, err)
		}
	}
	secrets = append(secrets, testSecret, cred.SecretAccessKey, passphrase)
	ts.stop(t)

	logs := ts.logs.String()
	if !strings.Contains(logs, `"operation":"CreateKeysAndCertificate"`) || !strings.Contains(logs, "mqtt request") {
		t.Fatal("the log does not have the run in it")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("a secret appears in the logs: %.12s...", s)
		}
	}
	t.Logf("searched %d bytes of logs for %d secrets", len(logs), len(secrets))
}
