package loadgen

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// benchTemplateBody is AWS's fleet-provisioning sample template: a thing
// per serial number, the certificate made ACTIVE, and one policy (the same
// document for every device, so one policy) attached to it.
const benchTemplateBody = `{
  "Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["", ["bench_", {"Ref": "SerialNumber"}]]},
      "AttributePayload": {"version": "v1"}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
      {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/telemetry/${iot:Connection.Thing.ThingName}"}]}}}
  }
}`

// benchClaimPolicy lets the claim certificate do fleet provisioning with
// any template, and nothing else.
const benchClaimPolicy = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
  {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
    "arn:aws:iot:*:*:topic/$aws/certificates/create-from-csr/*", "arn:aws:iot:*:*:topic/$aws/provisioning-templates/*"]},
  {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
    "arn:aws:iot:*:*:topicfilter/$aws/certificates/create-from-csr/*", "arn:aws:iot:*:*:topicfilter/$aws/provisioning-templates/*"]}]}`

// provisionSteps are the steps of one device's provisioning, timed apart.
var provisionSteps = []string{"connect", "createFromCsr", "registerThing", "reconnect"}

// device is one simulated device's key and CSR; a worker provisions its
// devices with them, one after another (each gets its own certificate).
type device struct {
	key    crypto.Signer
	keyPEM []byte
	csr    string
}

// prepareProvision makes the claim certificate and its policy and an
// enabled template through the API, and returns the flow of one device:
// connect with the claim over mutual TLS, CreateCertificateFromCsr,
// RegisterThing, then connect again with the new certificate.
func prepareProvision(ctx context.Context, opts Options) (*workload, error) {
	if opts.MQTTAddr == "" || opts.RootCAs == nil {
		return nil, errors.New("loadgen: provision needs the MQTT endpoint and the CA that signs its certificate")
	}
	c := opts.Client
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	template, policyName := "bench-"+suffix, "bench-claim-"+suffix
	if _, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{TemplateName: aws.String(template),
		TemplateBody: aws.String(benchTemplateBody), Enabled: aws.Bool(true),
		ProvisioningRoleArn: aws.String("arn:aws:iam::123456789012:role/bench")}); err != nil {
		return nil, fmt.Errorf("loadgen: creating the provisioning template: %w", err)
	}
	// The claim has a key of the devices' kind: an RSA claim would make
	// this load generator, beside the server, spend a millisecond signing
	// each handshake.
	claimDevice, err := newDevice(opts.CSRKey)
	if err != nil {
		return nil, err
	}
	claimOut, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(claimDevice.csr), SetAsActive: true})
	if err != nil {
		return nil, fmt.Errorf("loadgen: making the claim certificate: %w", err)
	}
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(policyName), PolicyDocument: aws.String(benchClaimPolicy)}); err != nil {
		return nil, fmt.Errorf("loadgen: creating the claim policy: %w", err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policyName), Target: claimOut.CertificateArn}); err != nil {
		return nil, fmt.Errorf("loadgen: attaching the claim policy: %w", err)
	}
	claim, err := tls.X509KeyPair([]byte(*claimOut.CertificatePem), claimDevice.keyPEM)
	if err != nil {
		return nil, err
	}
	devices := make([]device, opts.Concurrency)
	for i := range devices {
		if devices[i], err = newDevice(opts.CSRKey); err != nil {
			return nil, err
		}
	}
	raw, err := rawProvisionCost(opts.CAKey, opts.CSRKey)
	if err != nil {
		return nil, err
	}
	p := &provisioner{opts: opts, template: template, claim: claim, devices: devices, times: make([][][]time.Duration, opts.Concurrency)}
	return &workload{call: p.provision, raw: raw, steps: p.steps}, nil
}

func newDevice(kind string) (device, error) {
	if kind == "" {
		kind = "p256"
	}
	key, err := newKey(kind)
	if err != nil {
		return device{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return device{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return device{}, err
	}
	return device{key: key, keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))}, nil
}

type provisioner struct {
	opts     Options
	template string
	claim    tls.Certificate
	devices  []device
	serial   atomic.Int64
	// times[w][step] are worker w's durations of each step.
	mu    sync.Mutex
	times [][][]time.Duration
}

// dial opens an MQTT 3.1.1 session over mutual TLS to the endpoint opts
// name.
func dial(ctx context.Context, o Options, cert tls.Certificate, clientID string) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker("ssl://" + o.MQTTAddr).SetClientID(clientID).
		SetTLSConfig(deviceConfig(o, cert)).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).
		SetConnectTimeout(30 * time.Second).SetOrderMatters(false)
	cl := paho.NewClient(opts)
	if err := wait(ctx, cl.Connect()); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return cl, nil
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request publishes a fleet-provisioning request and waits for its reply,
// which is an error unless it came on /accepted.
func request(ctx context.Context, cl paho.Client, replies <-chan paho.Message, topic string, body any) (map[string]any, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, cl.Publish(topic, 1, false, payload)); err != nil {
		return nil, err
	}
	select {
	case m := <-replies:
		var out map[string]any
		if err := json.Unmarshal(m.Payload(), &out); err != nil {
			return nil, err
		}
		if m.Topic() != topic+"/accepted" {
			return nil, fmt.Errorf("%s: %v", m.Topic(), out)
		}
		return out, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// provision runs one device's flow on worker w.
func (p *provisioner) provision(ctx context.Context, w int) error {
	d := p.devices[w]
	serial := strconv.FormatInt(p.serial.Add(1), 10)
	var took [4]time.Duration
	t0 := time.Now()
	cl, err := dial(ctx, p.opts, p.claim, "bench-claim-"+strconv.Itoa(w)+"-"+serial)
	if err != nil {
		return err
	}
	defer cl.Disconnect(0)
	replies := make(chan paho.Message, 4)
	csrTopic, registerTopic := "$aws/certificates/create-from-csr/json", "$aws/provisioning-templates/"+p.template+"/provision/json"
	if err := wait(ctx, cl.SubscribeMultiple(map[string]byte{
		csrTopic + "/accepted": 1, csrTopic + "/rejected": 1, registerTopic + "/accepted": 1, registerTopic + "/rejected": 1,
	}, func(_ paho.Client, m paho.Message) { replies <- m })); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	took[0] = time.Since(t0)
	t1 := time.Now()
	created, err := request(ctx, cl, replies, csrTopic, map[string]string{"certificateSigningRequest": d.csr})
	if err != nil {
		return fmt.Errorf("CreateCertificateFromCsr: %w", err)
	}
	took[1] = time.Since(t1)
	t2 := time.Now()
	registered, err := request(ctx, cl, replies, registerTopic, map[string]any{
		"certificateOwnershipToken": created["certificateOwnershipToken"], "parameters": map[string]string{"SerialNumber": serial}})
	if err != nil {
		return fmt.Errorf("RegisterThing: %w", err)
	}
	took[2] = time.Since(t2)
	cl.Disconnect(0)
	certPEM, _ := created["certificatePem"].(string)
	thing, _ := registered["thingName"].(string)
	own, err := tls.X509KeyPair([]byte(certPEM), d.keyPEM)
	if err != nil {
		return err
	}
	t3 := time.Now()
	again, err := dial(ctx, p.opts, own, thing)
	if err != nil {
		return fmt.Errorf("reconnecting with the new certificate: %w", err)
	}
	took[3] = time.Since(t3)
	again.Disconnect(0)
	p.mu.Lock()
	if p.times[w] == nil {
		p.times[w] = make([][]time.Duration, len(provisionSteps))
	}
	for i, d := range took {
		p.times[w][i] = append(p.times[w][i], d)
	}
	p.mu.Unlock()
	return nil
}

// steps are the latency percentiles of each step over the devices that
// were provisioned.
func (p *provisioner) steps() []StepResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]StepResult, len(provisionSteps))
	for i, name := range provisionSteps {
		var all []time.Duration
		for _, w := range p.times {
			if w != nil {
				all = append(all, w[i]...)
			}
		}
		sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
		out[i] = StepResult{Name: name, P50ms: ms(percentile(all, 50)), P99ms: ms(percentile(all, 99))}
	}
	return out
}

// rawProvisionCost is the server's share of the crypto of one device's
// flow, done here on one core: two TLS 1.3 handshakes with client
// certificates (see serverHandshake), the check of the CSR's signature,
// and the signature of the new certificate with the issuing CA (caKey).
// The claim's and the device's keys are csrKey's.
func rawProvisionCost(caKey, csrKey string) (time.Duration, error) {
	claim, err := newServerHandshake(csrKey)
	if err != nil {
		return 0, err
	}
	dev, err := newServerHandshake(csrKey)
	if err != nil {
		return 0, err
	}
	block, _ := pem.Decode([]byte(dev.client.csr))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return 0, err
	}
	var chain chainCheck
	return rawCost(caKey, 3, func(ca *x509.Certificate, signer crypto.Signer) error {
		if err := claim.run(&chain, signer); err != nil {
			return err
		}
		if err := csr.CheckSignature(); err != nil {
			return err
		}
		if err := signAndHash(csr.PublicKey, ca, signer); err != nil {
			return err
		}
		return dev.run(&chain, signer)
	})
}
