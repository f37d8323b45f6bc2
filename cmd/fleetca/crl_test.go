package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

const (
	crlTestKeyID  = "AKIAFLEETCACRLTEST01"
	crlTestSecret = "crl-export-test-secret-0123456789"
)

// TestCRLExport: crl export writes the server's CRL for brokers that read
// a file, and never replaces a good file with something that is not a CRL.
func TestCRLExport(t *testing.T) {
	srv, _ := startServer(t, t.TempDir(), func(c *config.Config) { c.MQTTAddr = "" })
	out := filepath.Join(t.TempDir(), "fleetca.crl.pem")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"crl", "export", "--url", srv.URL(), "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("crl export: %d\n%s", code, stderr.String())
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("exported %q", body)
	}
	if _, err := x509.ParseRevocationList(block.Bytes); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "wrote CRL ") || !strings.Contains(stdout.String(), "(0 entries") {
		t.Errorf("output: %s", stdout.String())
	}
	// A URL that answers something else leaves the file as it was.
	if code := run([]string{"crl", "export", "--url", srv.URL() + "/ca.pem?", "--out", out}, &stdout, &stderr); code == 0 {
		t.Fatal("crl export of something that is not a CRL succeeded")
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(after, body) {
		t.Fatal("a failed export changed the file")
	}
}

// TestCRLExportOfARegisteredCA: the index.txt that crl export writes for a
// registered CA is what `openssl ca -gencrl` needs to sign that CA's CRL,
// listing its REVOKED and INACTIVE certificates and not its ACTIVE ones.
func TestCRLExportOfARegisteredCA(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIPPED: openssl is not installed; openssl ca -gencrl was not tried")
	}
	srv, _ := startServer(t, t.TempDir(), func(c *config.Config) {
		c.MQTTAddr = ""
		c.AccessKeyID, c.SecretAccessKey = crlTestKeyID, crlTestSecret
	})
	ctx := context.Background()
	c := iot.New(iot.Options{BaseEndpoint: aws.String(srv.URL()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(crlTestKeyID, crlTestSecret, ""), RetryMaxAttempts: 1})
	code, err := c.GetRegistrationCode(ctx, &iot.GetRegistrationCodeInput{})
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewRoot(t, "p256", "Acme Device CA")
	reg, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, *code.RegistrationCode)), SetAsActive: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	serials := map[types.CertificateStatus]string{}
	for _, status := range []types.CertificateStatus{types.CertificateStatusActive, types.CertificateStatusInactive, types.CertificateStatusRevoked} {
		leaf, leafPEM := ca.Issue(t, "device "+string(status), testpki.Key(t, "p256").Public())
		if _, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{CertificatePem: aws.String(leafPEM), Status: status}); err != nil {
			t.Fatal(err)
		}
		serials[status] = strings.ToUpper(leaf.SerialNumber.Text(16))
	}

	dir := t.TempDir()
	index := filepath.Join(dir, "index.txt")
	t.Setenv("AWS_ACCESS_KEY_ID", crlTestKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", crlTestSecret)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	var stdout, stderr bytes.Buffer
	if code := run([]string{"crl", "export", "--ca-certificate-id", *reg.CertificateId, "--endpoint", srv.URL(), "--out", index}, &stdout, &stderr); code != 0 {
		t.Fatalf("crl export: %d\n%s", code, stderr.String())
	}

	// The CA owner's side: openssl ca signs the CRL from that database.
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("crlnumber", "01\n")
	conf := write("ca.cnf", "[ca]\ndefault_ca = byo\n[byo]\ndatabase = "+index+"\ncrlnumber = "+filepath.Join(dir, "crlnumber")+
		"\ndefault_md = sha256\ndefault_crl_days = 7\n")
	crlPath := filepath.Join(dir, "byo.crl.pem")
	cmd := exec.Command("openssl", "ca", "-gencrl", "-batch", "-config", conf, "-cert", write("ca.pem", ca.PEM),
		"-keyfile", write("ca.key", ca.KeyPEM(t)), "-out", crlPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl ca -gencrl: %v\n%s\nindex:\n%s", err, out, readFile(t, index))
	}
	block, _ := pem.Decode([]byte(readFile(t, crlPath)))
	if block == nil {
		t.Fatal("openssl wrote no CRL")
	}
	list, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range list.RevokedCertificateEntries {
		reasons[strings.ToUpper(e.SerialNumber.Text(16))] = e.ReasonCode
	}
	if _, ok := reasons[serials[types.CertificateStatusActive]]; ok || len(reasons) != 2 {
		t.Errorf("the CRL lists %v; want the INACTIVE and REVOKED serials only (%v)", reasons, serials)
	}
	if r, ok := reasons[serials[types.CertificateStatusInactive]]; !ok || r != 6 {
		t.Errorf("INACTIVE: listed %v with reason %d, want certificateHold (6)", ok, r)
	}
	if _, ok := reasons[serials[types.CertificateStatusRevoked]]; !ok {
		t.Errorf("REVOKED is not listed")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
