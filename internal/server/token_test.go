//go:build cgo

package server_test

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/smithy-go"

	"github.com/fleetca/fleetca/internal/hsmtest"
	"github.com/fleetca/fleetca/internal/pgtest"
	"github.com/fleetca/fleetca/internal/testpki"
)

// tokenChild starts fleetca serve as its own process with its CA keys in
// the SoftHSM2 token tok, with the PIN in a file; db empty means SQLite.
func tokenChild(t *testing.T, tok *hsmtest.Token, dir, db string) *child {
	t.Helper()
	bin := buildFleetca(t)
	addr, mqtt := freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--api-addr", addr, "--mqtt-addr", mqtt, "--mqtt-hosts", "127.0.0.1",
		"--ca-key-uri", tok.URI(tok.PINFile(t)))
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf, "FLEETCA_ACCOUNT_ID="+testAccount, "FLEETCA_ACCESS_KEY_ID="+testKeyID,
		"FLEETCA_SECRET_ACCESS_KEY="+testSecret, "FLEETCA_DATABASE_URL="+db)
	if db != "" {
		// The CA's keys are in the token; the passphrase seals the access
		// keys' secrets in the shared database.
		cmd.Env = append(cmd.Env, "FLEETCA_CA_KEY_PASSPHRASE="+testPassphrase)
	}
	cmd.Stderr = &bytes.Buffer{}
	c := launch(t, cmd, addr)
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	return c
}

// getBody is the body of a GET of url that must answer 200.
func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, body := httpGet(t, url)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body
}

// opensslVerify has openssl check that certPEM chains to the child's root
// through its issuing CA.
func opensslVerify(t *testing.T, c *child, certPEM string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dir := t.TempDir()
	files := map[string][]byte{"root.pem": getBody(t, "http://"+c.addr+"/ca.pem"), "chain.pem": getBody(t, "http://"+c.addr+"/ca-chain.pem"), "leaf.pem": []byte(certPEM)}
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "chain.pem"),
		"-purpose", "sslclient", filepath.Join(dir, "leaf.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}

func readyz(t *testing.T, c *child) (int, string) {
	t.Helper()
	resp, body := httpGet(t, "http://"+c.addr+"/readyz")
	return resp.StatusCode, string(body)
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// TestTokenCA runs fleetca with its CA keys in a SoftHSM2 token: the keys
// are generated in it on first start, certificates verify with openssl,
// no file of the data directory holds a private key, a token out of reach
// gives 503s while the server stays up, and it signs again once the token
// is back.
func TestTokenCA(t *testing.T) {
	t.Parallel()
	tok := hsmtest.NewToken(t, hsmtest.Config(t, t.TempDir()))
	dir := t.TempDir()
	c := tokenChild(t, tok, dir, "")
	api := c.client()
	ctx := context.Background()
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "token device"})
	out, err := api.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	opensslVerify(t, c, *out.CertificatePem)
	keysOut, err := api.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	opensslVerify(t, c, *keysOut.CertificatePem)

	t.Run("no key material in the data directory", func(t *testing.T) {
		devicePEM := []byte(*keysOut.KeyPair.PrivateKey)
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, marker := range [][]byte{[]byte("PRIVATE KEY"), []byte("AGE ENCRYPTED"), devicePEM} {
				if bytes.Contains(data, marker) {
					t.Errorf("%s holds %.40q", path, marker)
				}
			}
			if strings.HasSuffix(path, ".key") {
				t.Errorf("%s is a key file", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("token out of reach, then back", func(t *testing.T) {
		if err := os.Rename(tok.Dir, tok.Dir+".away"); err != nil {
			t.Fatal(err)
		}
		_, err := api.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
		if errorCode(err) != "ServiceUnavailableException" {
			t.Fatalf("signing with the token away: %v, want ServiceUnavailableException", err)
		}
		if _, err := api.ListCertificates(ctx, &iot.ListCertificatesInput{}); err != nil {
			t.Fatalf("the server stopped serving what needs no key: %v", err)
		}
		if code, body := readyz(t, c); code != http.StatusServiceUnavailable || !strings.Contains(body, "token") {
			t.Fatalf("/readyz with the token away: %d %s", code, body)
		}
		if err := os.Rename(tok.Dir+".away", tok.Dir); err != nil {
			t.Fatal(err)
		}
		// The readiness check opens the token again, no request needed.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			code, body := readyz(t, c)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz after the token came back: %d %s", code, body)
			}
		}
		for deadline := time.Now().Add(15 * time.Second); ; {
			out, err := api.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr)})
			if err == nil {
				opensslVerify(t, c, *out.CertificatePem)
				break
			}
			if errorCode(err) != "ServiceUnavailableException" || time.Now().After(deadline) {
				t.Fatalf("the token is back but signing fails: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestTokenWrongPIN: a wrong PIN stops the start with a message that says so.
func TestTokenWrongPIN(t *testing.T) {
	t.Parallel()
	tok := hsmtest.NewToken(t, hsmtest.Config(t, t.TempDir()))
	tok.PIN = "wrong-" + tok.PIN
	cmd := exec.Command(buildFleetca(t), "serve", "--data-dir", t.TempDir(), "--api-addr", freePort(t), "--mqtt-addr", "",
		"--ca-key-uri", tok.URI(tok.PINFile(t)))
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused the PIN") {
		t.Fatalf("fleetca serve with a wrong PIN: %v\n%s", err, out)
	}
}

// TestTokenImportKey moves the key files of a CA that began with files into
// a token; the server then signs with the same CA from the token.
func TestTokenImportKey(t *testing.T) {
	t.Parallel()
	bin := buildFleetca(t)
	dir := t.TempDir()
	plain := startChild(t, bin, dir, "")
	root := getBody(t, "http://"+plain.addr+"/ca-chain.pem")
	plain.cmd.Process.Signal(os.Interrupt)
	<-plain.done

	tok := hsmtest.NewToken(t, hsmtest.Config(t, t.TempDir()))
	importKey := func() string {
		cmd := exec.Command(bin, "ca", "import-key", "--data-dir", dir, "--ca-key-uri", tok.URI(""))
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf, "FLEETCA_CA_KEY_PIN="+tok.PIN)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fleetca ca import-key: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := importKey(); !strings.Contains(out, "root.key, issuing.key, server-ca.key") {
		t.Fatalf("import-key said %q", out)
	}
	if keyFiles, _ := filepath.Glob(filepath.Join(dir, "ca", "*.key")); len(keyFiles) > 0 {
		t.Fatalf("key files left behind: %v", keyFiles)
	}
	if out := importKey(); !strings.Contains(out, "already") {
		t.Fatalf("a second import-key said %q", out)
	}
	c := tokenChild(t, tok, dir, "")
	if !bytes.Equal(getBody(t, "http://"+c.addr+"/ca-chain.pem"), root) {
		t.Fatal("the CA changed")
	}
	out, err := c.client().CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	opensslVerify(t, c, *out.CertificatePem)
}

// TestTokenReplicasOnPostgres: two replicas on one PostgreSQL database
// share one token: one CA, made by whichever started first, whose keys
// both use, and no key in the database.
func TestTokenReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	tok := hsmtest.NewToken(t, hsmtest.Config(t, t.TempDir()))
	a := tokenChild(t, tok, t.TempDir(), db)
	b := tokenChild(t, tok, t.TempDir(), db)
	chain := getBody(t, "http://"+a.addr+"/ca-chain.pem")
	if !bytes.Equal(chain, getBody(t, "http://"+b.addr+"/ca-chain.pem")) {
		t.Fatal("the replicas serve different CAs")
	}
	for _, c := range []*child{a, b} {
		out, err := c.client().CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{})
		if err != nil {
			t.Fatal(err)
		}
		opensslVerify(t, a, *out.CertificatePem)
		opensslVerify(t, b, *out.CertificatePem)
	}
}
