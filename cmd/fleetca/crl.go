package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/config"
	iotvocab "github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/revocation"
	"github.com/fleetca/fleetca/internal/store"
)

// maxCRL bounds a CRL fetched from a server: a million entries fit.
const maxCRL = 64 << 20

// crl exports revocation lists to files, for brokers that read a file.
func crl(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(stderr, "usage: fleetca crl export --out FILE [--url URL] | --ca-certificate-id ID --out FILE [--endpoint URL] [--region R] [--profile P]")
		return 2
	}
	fs := flag.NewFlagSet("fleetca crl export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config.FromEnv()
	out := fs.String("out", "", "file to write; replaced atomically, so a broker never reads half of it")
	url := fs.String("url", strings.TrimSuffix(healthURL(cfg), "/healthz"), "base URL of a fleetca server, whose /crl.pem (every current CRL, PEM) is exported")
	caID := fs.String("ca-certificate-id", "", "instead: list the certificates of this registered CA that fleetca holds unusable, as an OpenSSL CA database (index.txt) for `openssl ca -gencrl`")
	endpoint := fs.String("endpoint", "http://127.0.0.1:7400", "with --ca-certificate-id: the AWS IoT endpoint (credentials: the standard AWS sources)")
	region := fs.String("region", "us-east-1", "with --ca-certificate-id: the region")
	profile := fs.String("profile", "", "with --ca-certificate-id: AWS profile whose credentials sign the requests")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "fleetca crl export: --out is required, and nothing else")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var body []byte
	var what string
	var err error
	if *caID != "" {
		body, what, err = exportCA(ctx, *caID, *endpoint, *region, *profile)
	} else {
		body, what, err = fetchCRLs(ctx, *url)
	}
	if err == nil {
		// Replaced whole, so a broker never reads half of one.
		err = keys.WriteFile(*out, body, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetca crl export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s to %s\n", what, *out)
	return 0
}

// fetchCRLs gets every current CRL from a server and checks that each
// parses, so a broken answer never replaces a good file.
func fetchCRLs(ctx context.Context, base string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/crl.pem", nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCRL+1))
	if err != nil {
		return nil, "", err
	}
	if len(body) > maxCRL {
		return nil, "", fmt.Errorf("%s: the answer is larger than %d bytes", req.URL, maxCRL)
	}
	var described []string
	for rest := body; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			return nil, "", fmt.Errorf("%s: a %s where a CRL should be", req.URL, block.Type)
		}
		list, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%s: not a CRL: %w", req.URL, err)
		}
		described = append(described, fmt.Sprintf("CRL %s of %q (%d entries, next update %s)",
			list.Number, list.Issuer.CommonName, len(list.RevokedCertificateEntries), list.NextUpdate.Format(time.RFC3339)))
	}
	if len(described) == 0 {
		return nil, "", fmt.Errorf("%s: no CRL in the answer", req.URL)
	}
	return body, strings.Join(described, ", "), nil
}

// exportCA lists, through the AWS IoT API, the certificates of a registered
// CA that are not ACTIVE, as lines of an OpenSSL CA database. fleetca
// cannot sign for that CA; its owner's signer can, from this file.
func exportCA(ctx context.Context, caID, endpoint, region, profile string) ([]byte, string, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", err
	}
	client := iot.NewFromConfig(awsCfg, func(o *iot.Options) { o.BaseEndpoint = &endpoint })
	var b strings.Builder
	n := 0
	pages := iot.NewListCertificatesByCAPaginator(client, &iot.ListCertificatesByCAInput{CaCertificateId: &caID, PageSize: aws.Int32(250)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, "", err
		}
		for _, c := range page.Certificates {
			if c.Status == types.CertificateStatusActive {
				continue
			}
			d, err := client.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: c.CertificateId})
			if err != nil {
				return nil, "", err
			}
			desc := d.CertificateDescription
			if desc == nil || desc.CertificatePem == nil || desc.LastModifiedDate == nil {
				return nil, "", fmt.Errorf("certificate %s: the endpoint described it without its PEM or its last change", *c.CertificateId)
			}
			block, _ := pem.Decode([]byte(*desc.CertificatePem))
			if block == nil {
				return nil, "", fmt.Errorf("certificate %s: no PEM", *c.CertificateId)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, "", fmt.Errorf("certificate %s: %w", *c.CertificateId, err)
			}
			b.WriteString(revocation.OpenSSLIndexLine(cert, store.UnusableCertificate{
				Serial: cert.SerialNumber.Text(16), Status: iotvocab.Status(desc.Status), Since: *desc.LastModifiedDate,
			}))
			n++
		}
	}
	return []byte(b.String()), fmt.Sprintf("%d unusable certificates of CA %s (OpenSSL index.txt lines)", n, caID), nil
}
