package loadgen

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// DefaultDevices is how many device certificates connect spreads over.
const DefaultDevices = 2000

// benchConnectPolicy lets a device connect, and nothing else.
const benchConnectPolicy = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}`

// prepareConnect makes opts.Devices ACTIVE device certificates (keys of
// CSRKey's kind) with a policy that lets them connect, and returns a
// device's reconnection: a TLS handshake with its certificate, CONNECT,
// CONNACK and DISCONNECT, each call the next device.
func prepareConnect(ctx context.Context, opts Options) (*workload, error) {
	if opts.MQTTAddr == "" || opts.RootCAs == nil {
		return nil, errors.New("loadgen: connect needs the MQTT endpoint and the CA that signs its certificate")
	}
	certs, err := devices(ctx, opts)
	if err != nil {
		return nil, err
	}
	raw, err := rawConnectCost(opts.CAKey, opts.CSRKey)
	if err != nil {
		return nil, err
	}
	configs := deviceConfigs(opts, certs)
	var turn atomic.Int64
	return &workload{raw: raw, call: func(ctx context.Context, w int) error {
		i := int(turn.Add(1)-1) % len(certs)
		c, err := connectMQTT(ctx, opts.MQTTAddr, configs[i], "bench-device-"+strconv.Itoa(i), time.Minute)
		if err != nil {
			return err
		}
		c.disconnect()
		return nil
	}}, nil
}

// devices are opts.DeviceCerts if given, else opts.Devices certificates
// made for the run.
func devices(ctx context.Context, opts Options) ([]tls.Certificate, error) {
	if len(opts.DeviceCerts) > 0 {
		return opts.DeviceCerts, nil
	}
	n := opts.Devices
	if n <= 0 {
		n = DefaultDevices
	}
	return makeDevices(ctx, opts, n)
}

// deviceConfig is a device's TLS configuration for opts's endpoint: X25519
// alone, as device SDKs (s2n, mbedTLS) offer: Go's default hybrid
// post-quantum share would add an ML-KEM encapsulation to each handshake
// that no device asks the endpoint for. No session cache: every connect is
// a full handshake, as a device's first after a restart is.
func deviceConfig(opts Options, cert tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: opts.RootCAs, Certificates: []tls.Certificate{cert}, ServerName: opts.MQTTServerName,
		CurvePreferences: []tls.CurveID{tls.X25519}}
}

// deviceConfigs are deviceConfig for each of certs.
func deviceConfigs(opts Options, certs []tls.Certificate) []*tls.Config {
	configs := make([]*tls.Config, len(certs))
	for i, cert := range certs {
		configs[i] = deviceConfig(opts, cert)
	}
	return configs
}

// makeDevices makes n ACTIVE device certificates (keys of CSRKey's kind),
// eight at a time, with a policy that lets them connect.
func makeDevices(ctx context.Context, opts Options, n int) ([]tls.Certificate, error) {
	c := opts.Client
	policyName := "bench-connect-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(policyName), PolicyDocument: aws.String(benchConnectPolicy)}); err != nil {
		return nil, fmt.Errorf("loadgen: creating the connect policy: %w", err)
	}
	certs := make([]tls.Certificate, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range min(8, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				d, err := newDevice(opts.CSRKey)
				if err == nil {
					certs[i], err = registerDevice(ctx, c, d, policyName)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return certs, nil
}

// registerDevice makes d's certificate, ACTIVE, with the policy attached.
func registerDevice(ctx context.Context, c *iot.Client, d device, policyName string) (tls.Certificate, error) {
	out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(d.csr), SetAsActive: true})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loadgen: making a device certificate: %w", err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(policyName), Target: out.CertificateArn}); err != nil {
		return tls.Certificate{}, fmt.Errorf("loadgen: attaching the connect policy: %w", err)
	}
	return tls.X509KeyPair([]byte(*out.CertificatePem), d.keyPEM)
}

// rawConnectCost is the server's share of the crypto of one connection,
// done here on one core: a TLS 1.3 handshake with a client certificate of
// csrKey's kind, signed by an issuing CA of caKey's (see serverHandshake).
func rawConnectCost(caKey, csrKey string) (time.Duration, error) {
	h, err := newServerHandshake(csrKey)
	if err != nil {
		return 0, err
	}
	var chain chainCheck
	return rawCost(caKey, 3, func(_ *x509.Certificate, signer crypto.Signer) error { return h.run(&chain, signer) })
}

// MakeDevices makes opts.Devices ACTIVE device certificates through the
// API, as connect and idle do, for runs that share them (DeviceCerts).
func MakeDevices(ctx context.Context, opts Options) ([]tls.Certificate, error) {
	opts.DeviceCerts = nil
	return devices(ctx, opts)
}
