// Package devicesdk runs the AWS IoT Device SDK v2 for JavaScript, unmodified,
// through fleet provisioning against a fleetca built from this module and
// started as users start it (`fleetca serve`): the acceptance test of
// "the SDK's fleet-provisioning flow completes against fleetca unchanged,
// and the provisioned device connects and publishes under its policy".
//
// The SDK is installed by `npm ci` in testdata (.ci/run does it and sets
// FLEETCA_TEST_DEVICE_SDK=1). Without node or testdata/node_modules the test
// is skipped, unless FLEETCA_TEST_DEVICE_SDK=1 says it must run.
// FLEETCA_TEST_DEVICE_SDK_LOG=debug (or trace, info, ...) turns on the SDK's
// native log at that level and prints fleetca's debug log as well.
package devicesdk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

const (
	account      = "123456789012"
	accessKeyID  = "AKIAFLEETCADEVICESDK"
	secretKey    = "fleetca-device-sdk-test-secret-0123456789"
	region       = "us-east-1"
	templateName = "DeviceSDKFleetProvisioning"
	// mqttHost is the name the SDK connects to (and sends as SNI); the
	// endpoint's certificate names it by default (--mqtt-hosts).
	mqttHost = "localhost"
)

// sdkSampleTemplate is the fleet-provisioning template of the AWS IoT
// Device SDK v2 sample (the spec's §2.8), as the template package's tests
// have it.
var sdkSampleTemplate = func() string {
	b, err := os.ReadFile("../../template/testdata/sdk-sample-template.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// claimPolicy is the README's claim policy with the RegisterThing topics of
// the template added, as AWS's fleet-provisioning guide writes it.
const claimPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
      "arn:aws:iot:us-east-1:*:topic/$aws/certificates/create/*",
      "arn:aws:iot:us-east-1:*:topic/$aws/certificates/create-from-csr/*",
      "arn:aws:iot:us-east-1:*:topic/$aws/provisioning-templates/` + templateName + `/provision/*"]},
    {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
      "arn:aws:iot:us-east-1:*:topicfilter/$aws/certificates/create/*",
      "arn:aws:iot:us-east-1:*:topicfilter/$aws/certificates/create-from-csr/*",
      "arn:aws:iot:us-east-1:*:topicfilter/$aws/provisioning-templates/` + templateName + `/provision/*"]}
  ]
}`

func TestFleetProvisioningWithDeviceSDK(t *testing.T) {
	required := os.Getenv("FLEETCA_TEST_DEVICE_SDK") == "1"
	node, err := exec.LookPath("node")
	if err != nil {
		if required {
			t.Fatal("FLEETCA_TEST_DEVICE_SDK=1 but node is not on PATH")
		}
		t.Skip("node is not on PATH; install Node.js and run `npm ci` in internal/e2e/devicesdk/testdata to run the AWS IoT Device SDK v2 against fleetca")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "provision.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("testdata", "node_modules", "aws-iot-device-sdk-v2", "package.json")); err != nil {
		if required {
			t.Fatalf("FLEETCA_TEST_DEVICE_SDK=1 but the SDK is not installed (%v); run `npm ci` in internal/e2e/devicesdk/testdata", err)
		}
		t.Skip("testdata/node_modules is absent; run `(cd internal/e2e/devicesdk/testdata && npm ci)` to run the AWS IoT Device SDK v2 against fleetca")
	}

	tmp := t.TempDir()
	srv := startFleetca(t, buildFleetca(t, tmp), filepath.Join(tmp, "data"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	client := iot.New(iot.Options{
		BaseEndpoint:     aws.String(srv.apiURL),
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretKey, ""),
		RetryMaxAttempts: 1,
	})

	// The fleet owner's side, as the README's walkthrough does it: the
	// root the device trusts, a claim certificate with the claim policy,
	// and the SDK sample's template.
	rootCA := filepath.Join(tmp, "root.pem")
	writeFile(t, rootCA, httpGet(t, srv.apiURL+"/ca.pem"))
	claim, err := client.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
	if err != nil {
		t.Fatalf("CreateKeysAndCertificate: %v", err)
	}
	claimCert, claimKey := filepath.Join(tmp, "claim.pem"), filepath.Join(tmp, "claim.key")
	writeFile(t, claimCert, []byte(aws.ToString(claim.CertificatePem)))
	writeFile(t, claimKey, []byte(aws.ToString(claim.KeyPair.PrivateKey)))
	if _, err := client.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("claim"), PolicyDocument: aws.String(claimPolicy)}); err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if _, err := client.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("claim"), Target: claim.CertificateArn}); err != nil {
		t.Fatalf("AttachPolicy: %v", err)
	}
	if _, err := client.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{
		TemplateName:        aws.String(templateName),
		TemplateBody:        aws.String(sdkSampleTemplate),
		ProvisioningRoleArn: aws.String("arn:aws:iam::" + account + ":role/FleetProvisioningRole"),
		Enabled:             aws.Bool(true),
	}); err != nil {
		t.Fatalf("CreateProvisioningTemplate: %v", err)
	}

	// The CSR mode's device key, made on the device.
	csrPath, csrKey := filepath.Join(tmp, "device.csr"), filepath.Join(tmp, "device.key")
	makeCSR(t, csrPath, csrKey)

	for _, tc := range []struct{ mode, serial string }{
		{"keys", "sdk-keys-1"},
		{"csr", "sdk-csr-2"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			args := []string{script,
				"--mode", tc.mode, "--endpoint", mqttHost, "--port", srv.mqttPort, "--ca", rootCA,
				"--claim-cert", claimCert, "--claim-key", claimKey,
				"--template", templateName, "--serial", tc.serial,
				"--out-dir", filepath.Join(tmp, "devices-"+tc.mode)}
			if tc.mode == "csr" {
				args = append(args, "--csr", csrPath, "--csr-key", csrKey)
			}
			if os.Getenv("FLEETCA_TEST_DEVICE_SDK_LOG") != "" {
				args = append(args, "--crt-log", os.Getenv("FLEETCA_TEST_DEVICE_SDK_LOG"))
			}
			steps := runSDK(ctx, t, node, args)

			certStep := "createKeysAndCertificate"
			if tc.mode == "csr" {
				certStep = "createCertificateFromCsr"
			}
			var created struct {
				CertificateID string `json:"certificateId"`
			}
			decodeStep(t, steps, certStep, &created)
			var registered struct {
				ThingName           string            `json:"thingName"`
				DeviceConfiguration map[string]string `json:"deviceConfiguration"`
			}
			decodeStep(t, steps, "registerThing", &registered)
			thingName := "ThingPrefix_" + tc.serial
			if registered.ThingName != thingName {
				t.Errorf("registerThing answered thingName %q, want %q", registered.ThingName, thingName)
			}
			wantConfig := map[string]string{"FallbackUrl": "https://www.example.com/test-site", "LocationUrl": "https://example.aws"}
			if fmt.Sprint(registered.DeviceConfiguration) != fmt.Sprint(wantConfig) {
				t.Errorf("registerThing answered deviceConfiguration %v, want %v", registered.DeviceConfiguration, wantConfig)
			}
			if _, ok := steps["publish"]; !ok {
				t.Errorf("the script reported no publish")
			}
			checkProvisioned(ctx, t, client, thingName, created.CertificateID)
			cleanUpAsAWSCIDoes(ctx, t, client, thingName)
		})
	}
}

// checkProvisioned checks, through the API, what RegisterThing left: the
// thing with the template's attributes, the new certificate ACTIVE and
// attached to it, and the template's policy attached to the certificate.
func checkProvisioned(ctx context.Context, t *testing.T, client *iot.Client, thingName, certificateID string) {
	t.Helper()
	thing, err := client.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(thingName)})
	if err != nil {
		t.Fatalf("DescribeThing %s: %v", thingName, err)
	}
	if got, want := fmt.Sprint(thing.Attributes), fmt.Sprint(map[string]string{"serialNumber": "serialNumber", "version": "v1"}); got != want {
		t.Errorf("thing %s has attributes %s, want %s", thingName, got, want)
	}
	principals, err := client.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thingName)})
	if err != nil {
		t.Fatalf("ListThingPrincipals %s: %v", thingName, err)
	}
	if len(principals.Principals) != 1 {
		t.Fatalf("thing %s has principals %v, want the one new certificate", thingName, principals.Principals)
	}
	cert, err := client.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(certificateID)})
	if err != nil {
		t.Fatalf("DescribeCertificate %s: %v", certificateID, err)
	}
	d := cert.CertificateDescription
	if d.Status != types.CertificateStatusActive {
		t.Errorf("certificate %s is %s, want ACTIVE", certificateID, d.Status)
	}
	if principals.Principals[0] != aws.ToString(d.CertificateArn) {
		t.Errorf("thing %s's principal is %s, want the new certificate %s", thingName, principals.Principals[0], aws.ToString(d.CertificateArn))
	}
	policies, err := client.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: d.CertificateArn})
	if err != nil {
		t.Fatalf("ListAttachedPolicies %s: %v", certificateID, err)
	}
	if len(policies.Policies) != 1 {
		t.Errorf("certificate %s has policies %v, want the template's one", certificateID, policies.Policies)
	}
}

// cleanUpAsAWSCIDoes is what the SDKs' CI runs after their fleet-provisioning
// sample (the spec's §9.6); it must succeed against fleetca as against AWS.
func cleanUpAsAWSCIDoes(ctx context.Context, t *testing.T, client *iot.Client, thingName string) {
	t.Helper()
	principals, err := client.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thingName)})
	if err != nil {
		t.Fatalf("cleanup: ListThingPrincipals: %v", err)
	}
	for _, p := range principals.Principals {
		if _, err := client.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(thingName), Principal: aws.String(p)}); err != nil {
			t.Fatalf("cleanup: DetachThingPrincipal: %v", err)
		}
		id := p[strings.LastIndex(p, "/")+1:]
		if _, err := client.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: types.CertificateStatusInactive}); err != nil {
			t.Fatalf("cleanup: UpdateCertificate INACTIVE: %v", err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			left, err := client.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thingName)})
			var notFound *types.ResourceNotFoundException
			if errors.As(err, &notFound) || err == nil && len(left.Principals) == 0 {
				break
			}
			if err != nil {
				t.Fatalf("cleanup: ListThingPrincipals: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("cleanup: thing %s still has principals %v", thingName, left.Principals)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := client.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: true}); err != nil {
			t.Fatalf("cleanup: DeleteCertificate forceDelete: %v", err)
		}
	}
	if _, err := client.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String(thingName)}); err != nil {
		t.Fatalf("cleanup: DeleteThing: %v", err)
	}
}

// runSDK runs the script and returns its steps' responses by name; a
// non-zero exit fails the test with the script's output (and the server's
// log, which startFleetca's cleanup prints when the test failed).
func runSDK(ctx context.Context, t *testing.T, node string, args []string) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = filepath.Dir(args[0])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("node %s (%s):\n%s", strings.Join(args[1:3], " "), time.Since(start).Round(time.Millisecond), stdout.String())
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("the AWS IoT Device SDK v2 did not complete fleet provisioning against fleetca: %v", err)
	}
	steps := map[string]json.RawMessage{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var step struct {
			Step     string          `json:"step"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(line), &step); err != nil {
			t.Fatalf("script printed %q: %v", line, err)
		}
		steps[step.Step] = step.Response
	}
	return steps
}

func decodeStep(t *testing.T, steps map[string]json.RawMessage, name string, v any) {
	t.Helper()
	raw, ok := steps[name]
	if !ok {
		t.Fatalf("the script reported no %s", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// buildFleetca builds cmd/fleetca of this module into dir.
func buildFleetca(t *testing.T, dir string) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(dir, "fleetca")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/fleetca")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fleetca: %v\n%s", err, out)
	}
	t.Logf("built fleetca in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// fleetca is a running `fleetca serve`.
type fleetca struct {
	apiURL   string
	mqttPort string
}

// startFleetca starts `fleetca serve` on dataDir with loopback ports the
// system chooses, debug logging, and the test's key pair for the default
// account, waits until /readyz answers 200, and stops it when the test
// ends.
func startFleetca(t *testing.T, bin, dataDir string) *fleetca {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir,
		"--api-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "debug")
	cmd.Env = append(hermeticEnv(),
		"FLEETCA_ACCOUNT_ID="+account, "FLEETCA_ACCESS_KEY_ID="+accessKeyID, "FLEETCA_SECRET_ACCESS_KEY="+secretKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	ready := make(chan readyLine, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			logs.WriteLine(line)
			var r readyLine
			if json.Unmarshal(line, &r) == nil && r.Msg == "fleetca is ready" {
				select {
				case ready <- r:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	go func() { <-copied; exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("fleetca serve exited with %v", err)
			}
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("fleetca serve did not stop within 40s of SIGTERM; killed")
		}
		if t.Failed() || os.Getenv("FLEETCA_TEST_DEVICE_SDK_LOG") != "" {
			t.Logf("fleetca's log:\n%s", logs.String())
		}
	})

	var r readyLine
	select {
	case r = <-ready:
	case err := <-exited:
		exited <- err
		t.Fatalf("fleetca serve exited before it was ready (%v):\n%s", err, logs.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("fleetca serve was not ready within 2 minutes:\n%s", logs.String())
	}
	mqtt, err := url.Parse(r.MQTT)
	if err != nil || mqtt.Port() == "" {
		t.Fatalf("fleetca is ready with mqtt %q: %v", r.MQTT, err)
	}
	if r.Account != account {
		t.Fatalf("fleetca's account is %s, want %s", r.Account, account)
	}
	waitReady(t, r.Endpoint)
	t.Logf("fleetca serve: API %s, MQTT %s", r.Endpoint, net.JoinHostPort(mqttHost, mqtt.Port()))
	return &fleetca{apiURL: r.Endpoint, mqttPort: mqtt.Port()}
}

// readyLine is the log line `serve` writes once it listens.
type readyLine struct {
	Msg      string `json:"msg"`
	Endpoint string `json:"endpoint"`
	MQTT     string `json:"mqtt"`
	Account  string `json:"account"`
}

// hermeticEnv is the test's environment without the variables that
// configure fleetca or the AWS SDK, so that neither the developer's
// settings nor CI's reach the server.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FLEETCA_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func waitReady(t *testing.T, apiURL string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(apiURL + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", u, resp.Status, err)
	}
	return body
}

// makeCSR writes a P-256 key and a CSR for it, as a device makes them.
func makeCSR(t *testing.T, csrPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device-sdk-csr"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) WriteLine(line []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(line)
	b.buf.WriteByte('\n')
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
