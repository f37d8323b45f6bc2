package loadgen

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
	"strconv"
	"testing"
	"time"
)

// TestBareTLSPeer: the bare TLS peer admits a device whose certificate
// chains to the devices' CA (CONNACK accepted, keep-alives answered, a
// DISCONNECT ends it) and refuses one whose certificate does not, in the
// handshake; the load generator's MQTT client drives it.
func TestBareTLSPeer(t *testing.T) {
	devicesCA, devicesKey := testCA(t, "devices CA")
	strangerCA, strangerKey := testCA(t, "stranger CA")
	dir := t.TempDir()
	roots, err := WritePeerFiles(dir, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: devicesCA.Raw}))
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeBareTLS(ctx, addr, dir) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeBareTLS: %v", err)
		}
	}()
	config := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	}
	device := testDevice(t, devicesCA, devicesKey)
	var c *mqttConn
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = connectMQTT(ctx, addr, config(device), "device", time.Minute); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the device with a certificate of the devices' CA: %v", err)
	}
	held, release := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		c.keepAlive(held, 10*time.Millisecond)
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the connection ended while its keep-alives were answered")
	default:
	}
	release()
	<-done

	stranger := testDevice(t, strangerCA, strangerKey)
	if c, err := connectMQTT(ctx, addr, config(stranger), "stranger", time.Minute); err == nil {
		c.disconnect()
		t.Fatal("a device whose certificate does not chain to the devices' CA connected")
	}
}

func testCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := selfSignedCA(name, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func testDevice(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	d, err := newDevice("p256")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, d.key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), d.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCheckPeers(t *testing.T) {
	for _, tc := range []struct {
		op    string
		names []string
		ok    bool
	}{
		{"csr", []string{"cfssl"}, true},
		{"connect", []string{"bare-tls", "mosquitto"}, true},
		{"idle", []string{"mosquitto"}, true},
		{"csr", []string{"bare-tls"}, false},
		{"connect", []string{"cfssl"}, false},
		{"keys", []string{"cfssl"}, false},
		{"connect", []string{"emqx"}, false},
	} {
		if err := CheckPeers(tc.op, tc.names); (err == nil) != tc.ok {
			t.Errorf("CheckPeers(%s, %v) = %v, want ok %v", tc.op, tc.names, err, tc.ok)
		}
	}
}
