package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// TestOpenSSLGuideFlow follows the AWS IoT developer guide's "register your CA
// certificate" steps with the openssl commands it gives, and registers a
// device certificate made the same way.
func TestOpenSSLGuideFlow(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIPPED: openssl is not installed; the guide's openssl flow was not tested")
	}
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	dir := t.TempDir()
	openssl := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, kind := range []struct{ name string }{{"rsa"}, {"ec"}} {
		t.Run(kind.name, func(t *testing.T) {
			genkey := func(file string) {
				t.Helper()
				switch kind.name {
				case "rsa":
					openssl("genrsa", "-out", file, "2048")
				default:
					openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file)
				}
			}
			genkey("root_CA_key.key")
			openssl("req", "-x509", "-new", "-nodes", "-key", "root_CA_key.key", "-sha256", "-days", "1024",
				"-subj", "/CN=Guide Root "+kind.name+"/O=Example Corp", "-out", "root_CA_cert.pem")
			code := registrationCode(t, c)
			genkey("verification_cert_key.key")
			openssl("req", "-new", "-key", "verification_cert_key.key", "-subj", "/CN="+code, "-out", "verification_cert.csr")
			openssl("x509", "-req", "-in", "verification_cert.csr", "-CA", "root_CA_cert.pem", "-CAkey", "root_CA_key.key",
				"-CAcreateserial", "-out", "verification_cert.pem", "-days", "500", "-sha256")
			reg, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
				CaCertificate: aws.String(read("root_CA_cert.pem")), VerificationCertificate: aws.String(read("verification_cert.pem")),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: reg.CertificateId, NewStatus: types.CACertificateStatusActive}); err != nil {
				t.Fatal(err)
			}
			genkey("device_cert_key.key")
			openssl("req", "-new", "-key", "device_cert_key.key", "-subj", "/CN=guide-device", "-out", "device_cert.csr")
			openssl("x509", "-req", "-in", "device_cert.csr", "-CA", "root_CA_cert.pem", "-CAkey", "root_CA_key.key",
				"-CAcreateserial", "-out", "device_cert.pem", "-days", "500", "-sha256")
			dev, err := c.RegisterCertificate(ctx, &iot.RegisterCertificateInput{
				CertificatePem: aws.String(read("device_cert.pem")), CaCertificatePem: aws.String(read("root_CA_cert.pem")),
			})
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: dev.CertificateId})
			if err != nil || aws.ToString(d.CertificateDescription.CaCertificateId) != *reg.CertificateId {
				t.Fatalf("device certificate: %v %+v", err, d)
			}
		})
	}
}
