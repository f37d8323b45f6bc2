package loadgen

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Peers are the servers measured beside fleetca in the same run, with the
// same client. For connect and idle, with the same devices: bare-tls, a Go
// crypto/tls server that does the handshake (verifying the device's chain)
// and answers CONNECT and PINGREQ, nothing else, the floor any Go MQTT
// endpoint stands on; and mosquitto, Debian's broker with
// require_certificate and fleetca's chain as its cafile. For csr: cfssl
// serve (go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5), signing
// with a P-256 CA, as fleetca's default issuing CA.
var Peers = []string{"bare-tls", "mosquitto", "cfssl"}

// CheckPeers says which of names cannot be measured beside op: cfssl
// goes with csr, the MQTT endpoints with connect and idle.
func CheckPeers(op string, names []string) error {
	for _, name := range names {
		mqtt := name == "bare-tls" || name == "mosquitto"
		switch {
		case !mqtt && name != "cfssl":
			return fmt.Errorf("loadgen: no peer %q (peers: %v)", name, Peers)
		case name == "cfssl" && op != "csr", mqtt && op != "connect" && op != "idle":
			return fmt.Errorf("loadgen: the %s peer cannot be measured beside --op %s (cfssl goes with csr; bare-tls and mosquitto with connect and idle)", name, op)
		}
	}
	return nil
}

// The files a peer is configured with, in its directory.
const (
	peerCertFile    = "server.pem"
	peerKeyFile     = "server.key"
	peerDevicesFile = "devices.pem"
	peerCAFile      = "ca.pem"
	peerCAKeyFile   = "ca-key.pem"
)

// A Peer is a running peer endpoint.
type Peer struct {
	Name string
	// Addr is where it listens; RootCAs sign its certificate, issued for
	// ServerName.
	Addr       string
	RootCAs    *x509.CertPool
	ServerName string
	// SignURL is cfssl's sign endpoint.
	SignURL string
	// PID is its process, whose CPU and memory are read from /proc.
	PID int
	cmd *exec.Cmd
}

// WritePeerFiles writes into dir what peers are configured with: a P-256
// server certificate and key of their own (as fleetca's endpoint has),
// signed by a CA made here, which the returned pool holds, and the chain
// that device certificates are checked against.
func WritePeerFiles(dir string, deviceChainPEM []byte) (*x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca, err := selfSignedCA("fleetca bench peer CA", caKey)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, err
	}
	for name, body := range map[string][]byte{
		peerCertFile:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		peerKeyFile:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		peerDevicesFile: deviceChainPEM,
		peerCAFile:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		peerCAKeyFile:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
	} {
		// Readable by all: Mosquitto started as root reads them as its
		// own user. The keys are this run's throwaways: the server key
		// signs handshakes with the bench's devices, the CA key the
		// certificates cfssl signs for the bench, which nothing trusts.
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return roots, nil
}

// StartPeer starts the named peer on a free port of 127.0.0.1, configured
// from dir (WritePeerFiles; cfssl signs with its CA), and waits until it accepts connections.
// bareTLS is the command line that serves bare-tls from dir at the address
// appended to it (fleetca's own: bench --serve-bare-tls).
func StartPeer(name, dir string, roots *x509.CertPool, bareTLS []string) (*Peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	switch name {
	case "bare-tls":
		cmd = exec.Command(bareTLS[0], append(bareTLS[1:], addr)...)
	case "mosquitto":
		conf := filepath.Join(dir, "mosquitto.conf")
		// One listener with mutual TLS, as fleetca's endpoint; no
		// persistence and no log, which fleetca's endpoint does not
		// have for connects either.
		body := fmt.Sprintf("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate true\nallow_anonymous true\nmax_connections -1\npersistence false\nlog_dest none\n",
			port, filepath.Join(dir, peerCertFile), filepath.Join(dir, peerKeyFile), filepath.Join(dir, peerDevicesFile))
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			return nil, err
		}
		path, err := exec.LookPath("mosquitto")
		if err != nil {
			return nil, fmt.Errorf("loadgen: the mosquitto peer needs mosquitto on PATH (Debian: apt-get install mosquitto): %w", err)
		}
		cmd = exec.Command(path, "-c", conf)
	case "cfssl":
		path, err := exec.LookPath("cfssl")
		if err != nil {
			return nil, fmt.Errorf("loadgen: the cfssl peer needs cfssl on PATH (go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5, then PATH=$PATH:$(go env GOPATH)/bin): %w", err)
		}
		cmd = exec.Command(path, "serve", "-address", "127.0.0.1", "-port", strconv.Itoa(port), "-loglevel", "4",
			"-ca", filepath.Join(dir, peerCAFile), "-ca-key", filepath.Join(dir, peerCAKeyFile))
	default:
		return nil, fmt.Errorf("loadgen: no peer %q (peers: %v)", name, Peers)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: starting %s: %w", name, err)
	}
	p := &Peer{Name: name, Addr: addr, RootCAs: roots, ServerName: "localhost", PID: cmd.Process.Pid, cmd: cmd,
		SignURL: "http://" + addr + "/api/v1/cfssl/sign"}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("loadgen: %s does not listen on %s: %w", name, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the peer's process.
func (p *Peer) Stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ServeBareTLS is the bare-tls peer: at addr, with the files in dir, it
// does each device's TLS handshake (the device's chain checked against
// the devices' CA chain), answers CONNECT with CONNACK and PINGREQ with
// PINGRESP, and nothing else, until ctx ends.
func ServeBareTLS(ctx context.Context, addr, dir string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, peerCertFile), filepath.Join(dir, peerKeyFile))
	if err != nil {
		return err
	}
	chain, err := os.ReadFile(filepath.Join(dir, peerDevicesFile))
	if err != nil {
		return err
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(chain) {
		return errors.New("loadgen: no certificate in the devices' chain")
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go serveBareConn(c)
	}
}

func serveBareConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 512)
	pk, err := packets.ReadPacket(r)
	if err != nil {
		return
	}
	if _, ok := pk.(*packets.ConnectPacket); !ok {
		return
	}
	if err := packets.NewControlPacket(packets.Connack).Write(c); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	for {
		pk, err := packets.ReadPacket(r)
		if err != nil {
			return
		}
		switch pk.(type) {
		case *packets.PingreqPacket:
			if packets.NewControlPacket(packets.Pingresp).Write(c) != nil {
				return
			}
		case *packets.DisconnectPacket:
			return
		}
	}
}
