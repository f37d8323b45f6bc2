package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/server"
)

const (
	testAccount   = "123456789012"
	testKeyID     = "AKIAFLEETCATESTKEY01"
	testSecret    = "fleetca-test-secret-access-key-0123456789"
	testRegion    = "us-east-1"
	testOtherAcct = "210987654321"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a fleetca listening on a loopback port, with its logs.
type testServer struct {
	*server.Server
	dir  string
	logs *syncBuffer
}

// startServer starts fleetca on dir (a new temporary directory when empty)
// with the test account and key pair, and stops it when the test ends.
func startServer(t testing.TB, dir string) *testServer {
	t.Helper()
	return startServerWith(t, dir, nil)
}

// testConfig is the configuration of a test server on dir: loopback ports
// the system chooses, the test account and key pair.
func testConfig(dir string) config.Config {
	cfg := config.Default(func(string) string { return "" })
	cfg.DataDir = dir
	cfg.APIAddr = "127.0.0.1:0"
	cfg.MQTTAddr = "127.0.0.1:0"
	cfg.AccountID = testAccount
	cfg.AccessKeyID = testKeyID
	cfg.SecretAccessKey = testSecret
	return cfg
}

// startServerWith is startServer with a chance to change the configuration.
func startServerWith(t testing.TB, dir string, configure func(*config.Config)) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := testConfig(dir)
	if configure != nil {
		configure(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, dir: dir, logs: logs}
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	if ts.Server == nil {
		return
	}
	// The production shutdown's deadline (cmd/fleetca): under the race
	// detector and parallel tests a device's last write can take seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	ts.Server = nil
}

// client returns the real AWS SDK IoT client pointed at the server, signing
// with the given key pair.
func (ts *testServer) client(keyID, secret string) *iot.Client {
	return newIoTClient(ts.URL(), keyID, secret)
}

// clientFor returns the test account's client for the endpoint url.
func (ts *testServer) clientFor(url string) *iot.Client {
	return newIoTClient(url, testKeyID, testSecret)
}

func newIoTClient(url, keyID, secret string) *iot.Client {
	return iot.New(iot.Options{
		BaseEndpoint:     aws.String(url),
		Region:           testRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// accountClient creates the account and returns a client signing with its
// key pair.
func (ts *testServer) accountClient(t testing.TB, account string) *iot.Client {
	t.Helper()
	cred, err := ts.CreateAccount(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return ts.client(cred.AccessKeyID, cred.SecretAccessKey)
}

// iotClient is the client of the test account.
func (ts *testServer) iotClient() *iot.Client { return ts.client(testKeyID, testSecret) }

// rootCA fetches the root certificate the way a device would.
func (ts *testServer) rootCA(t testing.TB) *x509.Certificate {
	t.Helper()
	resp, err := http.Get(ts.URL() + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	block, _ := pem.Decode(body)
	if resp.StatusCode != 200 || block == nil {
		t.Fatalf("GET /ca.pem: %d %q", resp.StatusCode, body)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// issuingCA fetches the issuing CA from /ca-chain.pem, where it comes first.
func (ts *testServer) issuingCA(t testing.TB) *x509.Certificate {
	t.Helper()
	resp, err := http.Get(ts.URL() + "/ca-chain.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	block, rest := pem.Decode(body)
	root, _ := pem.Decode(rest)
	if resp.StatusCode != 200 || block == nil || root == nil {
		t.Fatalf("GET /ca-chain.pem: %d %q", resp.StatusCode, body)
	}
	issuing, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return issuing
}

// verifyChain checks that certPEM chains to the server's root through its
// issuing CA, for TLS client authentication.
func (ts *testServer) verifyChain(t testing.TB, certPEM string) *x509.Certificate {
	t.Helper()
	cert := parseCertPEM(t, certPEM)
	issuing := ts.issuingCA(t)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ts.rootCA(t))
	inter.AddCert(issuing)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not chain to the root: %v", err)
	}
	return cert
}

func parseCertPEM(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one PEM certificate: %q", s)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func parseCertFile(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCertPEM(t, string(data))
}

// isErr reports whether err's chain holds a T, the SDK's typed error.
// resourceTags is the tags ListTagsForResource gives for arn, by key.
func resourceTags(t *testing.T, c *iot.Client, arn *string) map[string]string {
	t.Helper()
	list, err := c.ListTagsForResource(context.Background(), &iot.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tag := range list.Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

func isErr[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// certificateCount counts the test account's certificates through the API.
func certificateCount(t testing.TB, c *iot.Client) int {
	t.Helper()
	n := 0
	p := iot.NewListCertificatesPaginator(c, &iot.ListCertificatesInput{PageSize: aws.Int32(250)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Certificates)
	}
	return n
}

// readFileMode reads a file and fails the test unless its permissions are mode.
func readFileMode(t testing.TB, path string, mode os.FileMode) ([]byte, error) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm() != mode {
		t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), mode)
	}
	return os.ReadFile(path)
}

// brokenSignatureCSR returns csrPEM with a bit of its signature flipped.
func brokenSignatureCSR(t testing.TB, csrPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(csrPEM))
	der := bytes.Clone(block.Bytes)
	der[len(der)-1] ^= 0x01
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// dsaCSR builds a CSR for a DSA key by hand: Go can parse DSA keys but no
// longer makes them. Its signature is junk; the key is refused first.
func dsaCSR(t testing.TB) string {
	t.Helper()
	params, err := asn1.Marshal(struct{ P, Q, G *big.Int }{big.NewInt(23), big.NewInt(11), big.NewInt(4)})
	if err != nil {
		t.Fatal(err)
	}
	y, err := asn1.Marshal(big.NewInt(8))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := asn1.Marshal(pkix.Name{CommonName: "dsa"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	type spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	type info struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  spki
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}
	tbs := info{
		Subject: asn1.RawValue{FullBytes: subject},
		PublicKey: spki{
			Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}, Parameters: asn1.RawValue{FullBytes: params}},
			PublicKey: asn1.BitString{Bytes: y, BitLength: 8 * len(y)},
		},
	}
	der, err := asn1.Marshal(struct {
		Info      info
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{tbs, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 2}}, asn1.BitString{Bytes: []byte{1, 2, 3, 4}, BitLength: 32}})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func ed25519CSR(t testing.TB) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ed"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func typesStatus(s string) types.CertificateStatus { return types.CertificateStatus(s) }

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }
