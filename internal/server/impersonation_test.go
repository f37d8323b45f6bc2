package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/testpki"
)

// TestDeviceCertificateCannotImpersonateTheBroker is the attack of a device
// (or anyone with an account's credentials) that asks for a certificate for
// CN=localhost and serves it as if it were the MQTT endpoint. Go's
// crypto/tls, openssl s_client -verify_hostname and mosquitto_pub, each
// trusting fleetca's root, must refuse the impostor and accept the real
// endpoint.
func TestDeviceCertificateCannotImpersonateTheBroker(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	csrPEM, key := testpki.NewCSR(t, "p256", pkixName("localhost"))
	out, err := c.CreateCertificateFromCsr(context.Background(), &iot.CreateCertificateFromCsrInput{
		CertificateSigningRequest: aws.String(csrPEM), SetAsActive: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	allowAll(t, c, *out.CertificateArn)
	leaf := parseCertPEM(t, aws.ToString(out.CertificatePem))
	issuing := ts.issuingCA(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPath := write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.rootCA(t).Raw}))
	certPath := write("device.pem", []byte(aws.ToString(out.CertificatePem)))
	keyPath := write("device.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))

	// The impostor presents the device certificate with the issuing CA, the
	// whole chain a device can get.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{leaf.Raw, issuing.Raw}, PrivateKey: key,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveFakeBroker(ln)
	_, impostorPort, _ := net.SplitHostPort(ln.Addr().String())
	_, brokerPort, _ := net.SplitHostPort(ts.MQTTAddr())

	endpoints := []struct {
		name, port string
		want       bool
	}{{"the real endpoint", brokerPort, true}, {"the impostor", impostorPort, false}}

	t.Run("Go crypto/tls", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(ts.rootCA(t))
		// Many device stacks connect by address and check the chain only;
		// the key purposes must refuse the impostor there too.
		chainOnly := func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
		for _, cfg := range []struct {
			name string
			tls  *tls.Config
		}{
			{"host name", &tls.Config{RootCAs: roots, ServerName: "localhost"}},
			{"chain only", &tls.Config{InsecureSkipVerify: true, VerifyConnection: chainOnly}},
		} {
			cfg.tls.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}
			for _, e := range endpoints {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+e.port, cfg.tls)
				if conn != nil {
					conn.Close()
				}
				if (err == nil) != e.want {
					t.Errorf("%s, %s: handshake error %v, want success %v", cfg.name, e.name, err, e.want)
				}
			}
		}
	})
	t.Run("openssl s_client -verify_hostname", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("SKIPPED: openssl is not installed")
		}
		for _, e := range endpoints {
			cmd := exec.Command("openssl", "s_client", "-connect", "127.0.0.1:"+e.port, "-servername", "localhost",
				"-verify_hostname", "localhost", "-CAfile", rootPath, "-verify_return_error",
				"-cert", certPath, "-key", keyPath)
			cmd.Stdin = strings.NewReader("")
			out, err := runFor(cmd, 20*time.Second)
			if (err == nil) != e.want {
				t.Errorf("%s: openssl s_client: %v, want success %v\n%s", e.name, err, e.want, out)
			}
		}
	})
	t.Run("mosquitto_pub", func(t *testing.T) {
		pub, err := exec.LookPath("mosquitto_pub")
		if err != nil {
			t.Skip("SKIPPED: mosquitto_pub is not installed (apt-get install mosquitto-clients)")
		}
		for _, e := range endpoints {
			cmd := exec.Command(pub, "-h", "localhost", "-p", e.port, "--cafile", rootPath,
				"--cert", certPath, "--key", keyPath, "-t", "impersonation/test", "-m", "hello", "-q", "1")
			out, err := runFor(cmd, 20*time.Second)
			if (err == nil) != e.want {
				t.Errorf("%s: mosquitto_pub: %v, want success %v\n%s", e.name, err, e.want, out)
			}
		}
	})
}

// runFor runs cmd and kills it if it has not finished within d.
func runFor(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	timer := time.AfterFunc(d, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	return cmd.CombinedOutput()
}

// serveFakeBroker answers just enough MQTT 3.1.1 for mosquitto_pub to
// succeed once the TLS handshake has: CONNACK, PUBACK for QoS 1.
func serveFakeBroker(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			for {
				header, err := r.ReadByte()
				if err != nil {
					return
				}
				var length, shift int
				for {
					b, err := r.ReadByte()
					if err != nil {
						return
					}
					length |= int(b&0x7f) << shift
					shift += 7
					if b&0x80 == 0 {
						break
					}
				}
				body := make([]byte, length)
				if _, err := io.ReadFull(r, body); err != nil {
					return
				}
				switch header >> 4 {
				case 1: // CONNECT
					conn.Write([]byte{0x20, 2, 0, 0})
				case 3: // PUBLISH
					if header&0x06 == 0x02 && len(body) >= 2 {
						topicLen := int(body[0])<<8 | int(body[1])
						if len(body) >= 4+topicLen {
							conn.Write([]byte{0x40, 2, body[2+topicLen], body[3+topicLen]})
						}
					}
				case 14: // DISCONNECT
					return
				}
			}
		}()
	}
}
