package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/ocsp"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// revocationPoll is how often test servers look for changes of status: the
// tests wait for the CRL rather than for a fixed time.
const revocationPoll = 20 * time.Millisecond

func startRevocationServer(t *testing.T, configure func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, "", func(c *config.Config) {
		c.RevocationPoll = revocationPoll
		c.PublicURL = "http://ca.example.test:7400"
		if configure != nil {
			configure(c)
		}
	})
}

// eventually calls check until it reports done, failing the test with its
// last word after waitLimit.
func eventually(t testing.TB, check func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		done, why := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", why)
		}
		time.Sleep(revocationPoll)
	}
}

func httpGet(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// crl fetches and checks the server's CRL of its issuing CA.
func (ts *testServer) crl(t testing.TB) *x509.RevocationList {
	t.Helper()
	issuing := ts.issuingCA(t)
	resp, body := httpGet(t, ts.URL()+"/crl/"+sha256Hex(issuing.Raw)+".crl")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	list, err := x509.ParseRevocationList(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(issuing); err != nil {
		t.Fatalf("the CRL is not signed by the issuing CA: %v", err)
	}
	return list
}

func listed(list *x509.RevocationList, serial *big.Int) (x509.RevocationListEntry, bool) {
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return e, true
		}
	}
	return x509.RevocationListEntry{}, false
}

// ocspGET asks the responder about cert with an RFC 5019 GET.
func (ts *testServer) ocspGET(t testing.TB, cert *x509.Certificate) (*ocsp.Response, *http.Response) {
	t.Helper()
	issuing := ts.issuingCA(t)
	req, err := ocsp.CreateRequest(cert, issuing, &ocsp.RequestOptions{Hash: 0})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := httpGet(t, ts.URL()+"/ocsp/"+base64.StdEncoding.EncodeToString(req))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("OCSP GET: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	answer, err := ocsp.ParseResponseForCert(body, cert, issuing)
	if err != nil {
		t.Fatalf("OCSP answer: %v", err)
	}
	return answer, resp
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTool(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestRevocationFollowsTheRegistry walks a certificate through its statuses
// with the AWS SDK and checks, at each, what the CRL (Go and openssl
// verify -crl_check) and the OCSP responder (Go and openssl ocsp) say: the
// same thing, and what the registry says.
func TestRevocationFollowsTheRegistry(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("SKIPPED: openssl is not installed; the openssl checks of the CRL and OCSP were not run")
	}
	ts := startRevocationServer(t, nil)
	c := ts.iotClient()
	ctx := context.Background()
	out, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.CertificateId)
	cert := parseCertPEM(t, aws.ToString(out.CertificatePem))
	issuerID := sha256Hex(ts.issuingCA(t).Raw)
	if want := "http://ca.example.test:7400/crl/" + issuerID + ".crl"; len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != want {
		t.Errorf("CRL distribution points %v, want %s", cert.CRLDistributionPoints, want)
	}
	if want := "http://ca.example.test:7400/ocsp"; len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != want {
		t.Errorf("OCSP servers %v, want %s", cert.OCSPServer, want)
	}

	dir := t.TempDir()
	_, chain := httpGet(t, ts.URL()+"/ca-chain.pem")
	chainPath := writeFile(t, dir, "chain.pem", chain)
	issuingPath := writeFile(t, dir, "issuing.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.issuingCA(t).Raw}))
	certPath := writeFile(t, dir, "cert.pem", []byte(aws.ToString(out.CertificatePem)))

	lastNumber := ts.crl(t).Number
	steps := []struct {
		status  string // empty: delete the certificate
		revoked bool
		reason  int
		openssl string // what openssl ocsp says of the certificate
	}{
		{"ACTIVE", false, 0, "good"},
		{"INACTIVE", true, ocsp.CertificateHold, "revoked"},
		{"ACTIVE", false, 0, "good"},
		{"REVOKED", true, ocsp.Unspecified, "revoked"},
		{"", true, ocsp.Unspecified, "revoked"},
	}
	for i, step := range steps {
		name := step.status
		if name == "" {
			name = "deleted"
		}
		t.Run(fmt.Sprintf("%d %s", i, name), func(t *testing.T) {
			switch {
			case step.status == "":
				if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: &id}); err != nil {
					t.Fatal(err)
				}
			case i > 0:
				setStatus(t, c, id, step.status)
			}
			var list *x509.RevocationList
			eventually(t, func() (bool, string) {
				list = ts.crl(t)
				_, on := listed(list, cert.SerialNumber)
				return on == step.revoked, fmt.Sprintf("CRL %d lists the certificate: %v", list.Number, on)
			})
			// Deleting a REVOKED certificate changes nothing a verifier
			// sees, so it signs no new CRL; every other step does.
			if i > 0 && step.status != "" && list.Number.Cmp(lastNumber) <= 0 {
				t.Errorf("CRL number %d after %d: not increasing", list.Number, lastNumber)
			}
			lastNumber = list.Number
			entry, _ := listed(list, cert.SerialNumber)
			if step.revoked && entry.ReasonCode != step.reason {
				t.Errorf("CRL reason %d, want %d", entry.ReasonCode, step.reason)
			}

			// OCSP agrees with the CRL, in Go and in openssl.
			answer, resp := ts.ocspGET(t, cert)
			wantStatus := ocsp.Good
			if step.revoked {
				wantStatus = ocsp.Revoked
			}
			if answer.Status != wantStatus || (step.revoked && (!answer.RevokedAt.Equal(entry.RevocationTime) || answer.RevocationReason != step.reason)) {
				t.Errorf("OCSP: status %d revoked at %v reason %d; CRL entry %+v", answer.Status, answer.RevokedAt, answer.RevocationReason, entry)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") || !answer.NextUpdate.After(answer.ThisUpdate) {
				t.Errorf("OCSP answer not cacheable: Cache-Control %q, %v..%v", cc, answer.ThisUpdate, answer.NextUpdate)
			}
			o, err := runTool(t, "openssl", "ocsp", "-issuer", issuingPath, "-cert", certPath, "-CAfile", chainPath,
				"-url", ts.URL()+"/ocsp", "-no_nonce")
			if err != nil || !strings.Contains(o, "Response verify OK") || !strings.Contains(o, certPath+": "+step.openssl) {
				t.Errorf("openssl ocsp (%v):\n%s", err, o)
			}
			if step.reason == ocsp.CertificateHold && !strings.Contains(o, "Reason: certificateHold") {
				t.Errorf("openssl ocsp does not say certificateHold:\n%s", o)
			}

			crlPath := writeFile(t, dir, "crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: list.Raw}))
			o, err = runTool(t, "openssl", "verify", "-crl_check", "-CAfile", chainPath, "-CRLfile", crlPath, certPath)
			if step.revoked != (err != nil) || (step.revoked && !strings.Contains(o, "certificate revoked")) {
				t.Errorf("openssl verify -crl_check (%v):\n%s", err, o)
			}
		})
	}

	t.Run("unknown serial", func(t *testing.T) {
		o, err := runTool(t, "openssl", "ocsp", "-issuer", issuingPath, "-serial", "0x1234567890", "-CAfile", chainPath,
			"-url", ts.URL()+"/ocsp", "-no_nonce")
		if err != nil || !strings.Contains(o, "0x1234567890: unknown") {
			t.Errorf("openssl ocsp of a serial never issued (%v):\n%s", err, o)
		}
	})
}

// TestOCSPRefusesBadRequests: what is not a request about this CA's
// certificates gets the RFC's error answers, with HTTP 200, never a 5xx.
func TestOCSPRefusesBadRequests(t *testing.T) {
	t.Parallel()
	ts := startRevocationServer(t, nil)
	other := testpki.NewRoot(t, "p256", "Another CA")
	otherLeaf, _ := other.Issue(t, "device", testpki.Key(t, "p256").Public())
	aboutOther, err := ocsp.CreateRequest(otherLeaf, other.Cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   []byte
		want   ocsp.ResponseStatus
	}{
		{"garbage", http.MethodPost, "/ocsp", []byte("not an OCSP request"), ocsp.Malformed},
		{"empty", http.MethodPost, "/ocsp", nil, ocsp.Malformed},
		{"huge", http.MethodPost, "/ocsp", bytes.Repeat([]byte{0x30}, 1<<20), ocsp.Malformed},
		{"another issuer", http.MethodPost, "/ocsp", aboutOther, ocsp.Unauthorized},
		{"another issuer by GET", http.MethodGet, "/ocsp/" + base64.StdEncoding.EncodeToString(aboutOther), nil, ocsp.Unauthorized},
		{"not base64", http.MethodGet, "/ocsp/not*base64!", nil, ocsp.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL()+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %s", resp.Status)
			}
			_, err = ocsp.ParseResponse(body, nil)
			if re, ok := err.(ocsp.ResponseError); !ok || re.Status != tc.want {
				t.Fatalf("answer %v, want the error status %v", err, tc.want)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("an error answer may be cached: Cache-Control %q", cc)
			}
		})
	}
	resp, _ := httpGet(t, ts.URL()+"/crl/0000.crl")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("CRL of an unknown issuer: %s", resp.Status)
	}
}

// TestCRLNumbersSurviveRestarts: numbers only grow across a restart (which
// signs anew, in case the database was restored from an older backup), and
// the list is what the registry says.
func TestCRLNumbersSurviveRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	configure := func(c *config.Config) { c.RevocationPoll = revocationPoll }
	ts := startServerWith(t, dir, configure)
	c := ts.iotClient()
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	first := ts.crl(t)
	setStatus(t, c, aws.ToString(out.CertificateId), "REVOKED")
	eventually(t, func() (bool, string) {
		n := ts.crl(t).Number
		return n.Cmp(first.Number) > 0, fmt.Sprintf("CRL number %d, want one above %d", n, first.Number)
	})
	before := ts.crl(t)
	ts.stop(t)

	ts = startServerWith(t, dir, configure)
	after := ts.crl(t)
	if after.Number.Cmp(before.Number) <= 0 || len(after.RevokedCertificateEntries) != len(before.RevokedCertificateEntries) {
		t.Fatalf("after a restart: CRL %d with %d entries; was %d with %d", after.Number, len(after.RevokedCertificateEntries),
			before.Number, len(before.RevokedCertificateEntries))
	}
	before = after
	if _, err := ts.iotClient().CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() (bool, string) {
		n := ts.crl(t).Number
		return n.Cmp(before.Number) > 0, fmt.Sprintf("CRL number %d after an INACTIVE certificate was made, want one above %d", n, before.Number)
	})
}

// TestReplicasServeOneCRL: two replicas on PostgreSQL revoking at once
// serve strictly increasing numbers, never two contents under one number,
// and end on the same CRL listing every revocation.
func TestReplicasServeOneCRL(t *testing.T) {
	if os.Getenv("FLEETCA_TEST_POSTGRES") == "" {
		t.Skip("SKIPPED: FLEETCA_TEST_POSTGRES is not set")
	}
	t.Parallel()
	replicas := startReplicas(t, 2, func(c *config.Config) { c.RevocationPoll = revocationPoll })
	const perReplica = 8
	serials := make(chan *big.Int, 2*perReplica)
	hammer(replicas, perReplica, func(c *iot.Client, _, _ int) {
		out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := c.UpdateCertificate(context.Background(), &iot.UpdateCertificateInput{CertificateId: out.CertificateId, NewStatus: "REVOKED"}); err != nil {
			t.Error(err)
		}
		serials <- parseCertPEM(t, aws.ToString(out.CertificatePem)).SerialNumber
	})
	close(serials)
	var want []*big.Int
	for s := range serials {
		want = append(want, s)
	}
	var mu sync.Mutex
	contents := map[int64][32]byte{}
	last := make([]int64, len(replicas))
	eventually(t, func() (bool, string) {
		var final [][]byte
		for i, r := range replicas {
			list := r.crl(t)
			n := list.Number.Int64()
			if n < last[i] {
				t.Fatalf("replica %d served CRL %d after %d", i, n, last[i])
			}
			last[i] = n
			mu.Lock()
			if sum, seen := contents[n]; seen && sum != sha256.Sum256(list.Raw) {
				t.Fatalf("two different CRLs numbered %d", n)
			}
			contents[n] = sha256.Sum256(list.Raw)
			mu.Unlock()
			for _, s := range want {
				if _, ok := listed(list, s); !ok {
					return false, fmt.Sprintf("replica %d's CRL %d misses a revoked serial", i, n)
				}
			}
			final = append(final, list.Raw)
		}
		return bytes.Equal(final[0], final[1]), fmt.Sprintf("the replicas serve CRLs %v", last)
	})
}

// TestMosquittoFollowsTheCRL configures Debian's Mosquitto as the README
// shows: fleetca's chain as cafile, client certificates required, and the
// CRL that `fleetca crl export` writes as crlfile, reloaded on SIGHUP. A
// device is admitted while ACTIVE, refused while INACTIVE or REVOKED, and
// admitted again when reactivated.
func TestMosquittoFollowsTheCRL(t *testing.T) {
	t.Parallel()
	broker, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("SKIPPED: mosquitto is not installed (apt-get install mosquitto); the broker test was not run")
	}
	ts := startRevocationServer(t, nil)
	c := ts.iotClient()
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.CertificateId)
	device := newKeyPair(t, aws.ToString(out.CertificatePem), aws.ToString(out.KeyPair.PrivateKey))

	// The broker's own certificate comes from a CA of its own, as it would.
	dir := t.TempDir()
	brokerCA := testpki.NewRoot(t, "p256", "Broker CA")
	brokerKey := testpki.Key(t, "p256")
	_, brokerPEM := testpki.Sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, brokerCA.Cert, brokerKey.Public(), brokerCA.Key)
	_, chain := httpGet(t, ts.URL()+"/ca-chain.pem")
	crlPath := filepath.Join(dir, "fleetca.crl.pem")
	export := func() {
		t.Helper()
		_, body := httpGet(t, ts.URL()+"/crl.pem")
		writeFile(t, dir, "fleetca.crl.pem", body)
	}
	export()
	_, port, _ := net.SplitHostPort(freePort(t))
	conf := fmt.Sprintf(`per_listener_settings false
allow_anonymous true
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
crlfile %s
`, port, writeFile(t, dir, "fleetca-chain.pem", chain), writeFile(t, dir, "broker.pem", []byte(brokerPEM)),
		writeFile(t, dir, "broker.key", []byte(testpki.KeyPEM(t, brokerKey))), crlPath)
	if os.Getuid() == 0 {
		// As root, Mosquitto would drop to the mosquitto user, who cannot
		// read the test's files.
		conf += "user root\n"
	}
	cmd := exec.Command(broker, "-c", writeFile(t, dir, "mosquitto.conf", []byte(conf)))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto:\n%s", logs.String())
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(brokerCA.Cert)
	connects := func() error {
		opts := paho.NewClientOptions().AddBroker("ssl://" + net.JoinHostPort("127.0.0.1", port)).
			SetClientID("device").SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitLimit).
			SetTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{device.tls}, ServerName: "localhost"})
		client := paho.NewClient(opts)
		tok := client.Connect()
		if !tok.WaitTimeout(waitLimit) {
			return fmt.Errorf("connect timed out")
		}
		if err := tok.Error(); err != nil {
			return err
		}
		client.Disconnect(0)
		return nil
	}
	expect := func(admitted bool) {
		t.Helper()
		eventually(t, func() (bool, string) {
			err := connects()
			return (err == nil) == admitted, fmt.Sprintf("want admitted=%v, connect: %v", admitted, err)
		})
	}
	expect(true)
	for _, step := range []struct {
		status   string
		admitted bool
	}{
		{"INACTIVE", false},
		{"ACTIVE", true},
		{"REVOKED", false},
	} {
		number := ts.crl(t).Number
		setStatus(t, c, id, step.status)
		eventually(t, func() (bool, string) {
			n := ts.crl(t).Number
			return n.Cmp(number) > 0, fmt.Sprintf("CRL still %d after %s", n, step.status)
		})
		export()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		expect(step.admitted)
	}
}
