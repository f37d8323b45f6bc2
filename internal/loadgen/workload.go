package loadgen

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// workload is an operation ready to run: call makes one request on a
// worker, raw is the operation's raw crypto cost, and steps, when set,
// times the parts of an operation made of several.
type workload struct {
	call  func(ctx context.Context, w int) error
	raw   time.Duration
	steps func() []StepResult
}

// prepare makes what the operation needs before timing starts, and measures
// its raw crypto cost.
func prepare(ctx context.Context, opts Options) (*workload, error) {
	switch opts.Operation {
	case "provision":
		return prepareProvision(ctx, opts)
	case "connect":
		return prepareConnect(ctx, opts)
	}
	call, raw, err := prepareAPI(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &workload{call: call, raw: raw}, nil
}

// prepareAPI prepares the operations of the API alone.
func prepareAPI(ctx context.Context, opts Options) (func(context.Context, int) error, time.Duration, error) {
	c := opts.Client
	switch opts.Operation {
	case "csr", "cfssl-sign":
		csrs, raw, err := csrsAndRawCost(opts)
		if err != nil {
			return nil, 0, err
		}
		if opts.Operation == "cfssl-sign" {
			if opts.SignURL == "" {
				return nil, 0, errors.New("loadgen: cfssl-sign needs cfssl's sign URL (fleetca bench --op csr --peers cfssl)")
			}
			return cfsslSign(opts.SignURL, csrs), raw, nil
		}
		return func(ctx context.Context, w int) error {
			_, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: &csrs[w], SetAsActive: true})
			return err
		}, raw, err
	case "keys":
		// RSA key generation's time varies widely with the prime search
		// (half a second held about ten keys, and the raw cost swung by a
		// third between runs), so average a hundred.
		raw, err := rawCost(opts.CAKey, cmp.Or(opts.RawRuns, rawKeyRuns), func(ca *x509.Certificate, signer crypto.Signer) error {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return err
			}
			return signAndHash(&key.PublicKey, ca, signer)
		})
		return func(ctx context.Context, _ int) error {
			_, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{SetAsActive: true})
			return err
		}, raw, err
	case "describe":
		ids, err := describeTargets(ctx, c)
		if err != nil {
			return nil, 0, err
		}
		return func(ctx context.Context, _ int) error {
			_, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: ids[mrand.N(len(ids))]})
			return err
		}, 0, nil
	case "list":
		// Each client walks the whole list a page at a time and starts over at
		// the end, so deep pages are measured as well as the first.
		markers := make([]*string, opts.Concurrency)
		return func(ctx context.Context, w int) error {
			out, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(25), Marker: markers[w]})
			if err == nil {
				markers[w] = out.NextMarker
			}
			return err
		}, 0, nil
	}
	return nil, 0, fmt.Errorf("loadgen: unknown operation %q (one of %s)", opts.Operation, strings.Join(Operations, ", "))
}

// newKey makes a key of the kind given: rsa-2048 or p256 (the default).
func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "rsa-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "", "p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("loadgen: key %q is not rsa-2048 or p256", kind)
}

// maxDescribeTargets bounds how many certificates describe spreads over.
const maxDescribeTargets = 10000

// describeTargets returns the IDs of up to maxDescribeTargets stored
// certificates, spread over the whole list so that a large database is read
// at many places, not at one cached row; on an empty database it makes one.
func describeTargets(ctx context.Context, c *iot.Client) ([]*string, error) {
	var ids []*string
	var marker *string
	for len(ids) < maxDescribeTargets {
		out, err := c.ListCertificates(ctx, &iot.ListCertificatesInput{PageSize: aws.Int32(250), Marker: marker})
		if err != nil {
			return nil, fmt.Errorf("loadgen: listing certificates to describe: %w", err)
		}
		for _, cert := range out.Certificates {
			ids = append(ids, cert.CertificateId)
		}
		if marker = out.NextMarker; marker == nil {
			break
		}
	}
	if len(ids) > 0 {
		return ids, nil
	}
	p, err := newCSR("p256")
	if err != nil {
		return nil, err
	}
	out, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(p)})
	if err != nil {
		return nil, fmt.Errorf("loadgen: making a certificate to describe: %w", err)
	}
	return []*string{out.CertificateId}, nil
}

// newCSR makes a CSR with a key of the kind given: rsa-2048 (the default) or
// p256.
func newCSR(kind string) (string, error) {
	if kind == "" {
		kind = "rsa-2048"
	}
	key, err := newKey(kind)
	if err != nil {
		return "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fleetca-bench"}}, key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// csrsAndRawCost makes a CSR per client and measures the raw cost of
// signing one: PEM decode, CSR parse and signature check, signing, SHA-256.
func csrsAndRawCost(opts Options) ([]string, time.Duration, error) {
	csrs := make([]string, opts.Concurrency)
	for i := range csrs {
		p, err := newCSR(opts.CSRKey)
		if err != nil {
			return nil, 0, err
		}
		csrs[i] = p
	}
	op := func(ca *x509.Certificate, signer crypto.Signer) error {
		block, _ := pem.Decode([]byte(csrs[0]))
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return err
		}
		if err := csr.CheckSignature(); err != nil {
			return err
		}
		return signAndHash(csr.PublicKey, ca, signer)
	}
	if opts.CASigner != nil {
		raw, err := rawCostWith(opts.CASigner, cmp.Or(opts.RawRuns, 3), op)
		return csrs, raw, err
	}
	raw, err := rawCost(opts.CAKey, cmp.Or(opts.RawRuns, 3), op)
	return csrs, raw, err
}
