package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/config"
)

// TestHTTPS serves the API with --tls-cert/--tls-key and drives it with the
// SDK over TLS.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	ts := startServerWith(t, filepath.Join(dir, "data"), func(c *config.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(ts.URL(), "https://") {
		t.Fatalf("URL %s is not https", ts.URL())
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := iot.New(iot.Options{
		BaseEndpoint: aws.String(ts.URL()), Region: testRegion, HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""), RetryMaxAttempts: 1,
	})
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeCertificate(context.Background(), &iot.DescribeCertificateInput{CertificateId: out.CertificateId}); err != nil {
		t.Fatal(err)
	}
	// Plain HTTP to the TLS port is not served.
	if resp, err := http.Get("http://" + strings.TrimPrefix(ts.URL(), "https://") + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("the TLS listener answered plain HTTP")
	}
}
