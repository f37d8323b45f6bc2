package server_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/testpki"
)

// TestMosquittoRR drives both fleet-provisioning flows with Debian's
// mosquitto_rr, the way the README shows, over MQTT 5 and 3.1.1.
func TestMosquittoRR(t *testing.T) {
	t.Parallel()
	rr, err := exec.LookPath("mosquitto_rr")
	if err != nil {
		t.Skip("SKIPPED: mosquitto_rr is not installed (apt-get install mosquitto-clients); the mosquitto_rr flow was not tested")
	}
	ts := startServer(t, "")
	c := ts.iotClient()
	claim := ts.claim(t, c)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := ts.rootCA(t)
	rootPath := write("root.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
	certPath, keyPath := write("claim.pem", claim.certPEM), write("claim.key", claim.keyPEM)
	_, port, _ := splitHostPort(ts.MQTTAddr())
	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "provisioned-device"})
	csrPayload, _ := json.Marshal(map[string]string{"certificateSigningRequest": csr})
	for _, version := range []string{"mqttv5", "mqttv311"} {
		for _, tc := range []struct{ topic, payload string }{
			{"$aws/certificates/create/json", "{}"},
			{"$aws/certificates/create-from-csr/json", string(csrPayload)},
		} {
			t.Run(version+" "+tc.topic, func(t *testing.T) {
				cmd := exec.Command(rr, "-V", version, "-h", "localhost", "-p", port,
					"--cafile", rootPath, "--cert", certPath, "--key", keyPath,
					"-t", tc.topic, "-e", tc.topic+"/accepted", "-m", tc.payload, "-W", "10")
				done := make(chan struct{})
				var out []byte
				go func() { out, err = cmd.CombinedOutput(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					t.Fatal("mosquitto_rr did not finish")
				}
				if err != nil {
					t.Fatalf("mosquitto_rr: %v\n%s", err, out)
				}
				var reply map[string]any
				if err := json.Unmarshal(out, &reply); err != nil {
					t.Fatalf("reply %q: %v", out, err)
				}
				certPEM, _ := reply["certificatePem"].(string)
				block, _ := pem.Decode([]byte(certPEM))
				if block == nil {
					t.Fatalf("no certificate in %v", reply)
				}
				cert, err := x509.ParseCertificate(block.Bytes)
				if err != nil || sha256Hex(cert.Raw) != reply["certificateId"] || reply["certificateOwnershipToken"] == "" {
					t.Fatalf("reply %v (%v)", reply, err)
				}
			})
		}
	}
}
