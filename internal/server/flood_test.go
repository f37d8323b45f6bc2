package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestListenersSurviveAConnectionFlood is the descriptor-exhaustion attack:
// fleetca runs with 512 file descriptors and is sent 1,200 connections that
// never start TLS, from 20 addresses, and 400 idle ones at the API. It must
// stay up, refuse nothing it has room for, and serve devices and API
// clients again once the flood ends. Before the listener retried failed
// accepts, the first EMFILE ended the MQTT endpoint until restart.
func TestListenersSurviveAConnectionFlood(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("SKIPPED: no sh to set the descriptor limit")
	}
	t.Parallel()
	bin := buildFleetca(t)
	dir := t.TempDir()
	api, mqttAddr := freePort(t), freePort(t)
	cmd := exec.Command("sh", "-c", `ulimit -n 512 && exec "$0" "$@"`, bin, "serve",
		"--data-dir", dir, "--api-addr", api, "--mqtt-addr", mqttAddr)
	cmd.Env = append(os.Environ(), "FLEETCA_ACCOUNT_ID="+testAccount, "FLEETCA_ACCESS_KEY_ID="+testKeyID, "FLEETCA_SECRET_ACCESS_KEY="+testSecret)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	waitHealthy(t, "http://"+api)
	c := newIoTClient("http://"+api, testKeyID, testSecret)
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	allowAll(t, c, *out.CertificateArn)
	kp := newKeyPair(t, *out.CertificatePem, *out.KeyPair.PrivateKey)
	rootPEM := get(t, "http://"+api+"/ca.pem")

	var flood []net.Conn
	for i := 0; i < 1600; i++ {
		target, source := mqttAddr, fmt.Sprintf("127.0.0.%d", 2+i%20)
		if i >= 1200 {
			target, source = api, fmt.Sprintf("127.0.1.%d", 2+i%20)
		}
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		if conn, err := d.Dial("tcp", target); err == nil {
			flood = append(flood, conn)
		}
	}
	t.Logf("%d flood connections open", len(flood))
	select {
	case err := <-done:
		t.Fatalf("fleetca died under the flood: %v\n%s", err, logs)
	case <-time.After(time.Second):
	}
	for _, conn := range flood {
		conn.Close()
	}
	closed := time.Now()

	// Devices and API clients are served again.
	roots := x509.NewCertPool()
	block, _ := pem.Decode(rootPEM)
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(root)
	deadline := time.Now().Add(30 * time.Second)
	for {
		client := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + mqttAddr).SetClientID("after-flood").
			SetTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp.tls}, ServerName: "localhost"}).
			SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false))
		tok := client.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			client.Disconnect(0)
			t.Logf("a device connected %v after the flood ended", time.Since(closed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no device could connect after the flood: %v\n%s", tok.Error(), logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.ListCertificates(context.Background(), &iot.ListCertificatesInput{}); err != nil {
		t.Fatalf("the API after the flood: %v", err)
	}
	if resp, err := http.Get("http://" + api + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz after the flood: %v %v", resp, err)
	}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("fleetca did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}
