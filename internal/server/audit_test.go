package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/testpki"
)

// readAudit reads the audit file's records.
func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var records []audit.Record
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		records = append(records, r)
	}
	return records
}

// TestAuditRecords: every signature — a certificate over the API and over
// MQTT, a claim, the endpoint's certificate, a CRL, an OCSP answer — has
// its record in the audit file and in the log, naming what was signed and
// who asked, and neither holds a private key or a secret.
func TestAuditRecords(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	ts := startServerWith(t, "", func(c *config.Config) { c.AuditLog = path })
	c := ts.iotClient()
	ctx := context.Background()

	csr, _ := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "audited device", Organization: []string{"Example"}})
	fromCSR, err := c.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{CertificateSigningRequest: aws.String(csr), SetAsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	withKey, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{TemplateName: aws.String("audited"), TemplateBody: aws.String(claimTemplateBody),
		Enabled: aws.Bool(true), ProvisioningRoleArn: aws.String("arn:aws:iam::123456789012:role/Provision")}); err != nil {
		t.Fatal(err)
	}
	claim, err := c.CreateProvisioningClaim(ctx, &iot.CreateProvisioningClaimInput{TemplateName: aws.String("audited")})
	if err != nil {
		t.Fatal(err)
	}
	d := ts.mustConnect(t, newKeyPair(t, *claim.CertificatePem, *claim.KeyPair.PrivateKey))
	topic, overMQTT := d.request(t, "$aws/certificates/create", "json", map[string]any{})
	if !strings.HasSuffix(topic, "/accepted") {
		t.Fatalf("CreateKeysAndCertificate over MQTT: %s %v", topic, overMQTT)
	}
	ts.ocspGET(t, parseCertPEM(t, *fromCSR.CertificatePem))

	records := readAudit(t, path)
	byID := map[string]audit.Record{}
	var crls, ocsps, servers, cas int
	for _, r := range records {
		if r.Outcome != audit.Signed || r.Issuer == "" || r.Time.IsZero() {
			t.Errorf("record %+v", r)
		}
		switch {
		case r.Object == audit.CRL:
			crls++
			if r.Requester.Operation != "RefreshCRL" || r.CRLNumber == 0 {
				t.Errorf("CRL record %+v", r)
			}
		case r.Object == audit.OCSP:
			ocsps++
			if r.Requester.Operation != "OCSP" || r.Requester.Remote == "" || r.Status != "good" || r.Serial == "" {
				t.Errorf("OCSP record %+v", r)
			}
		case r.Profile == "server":
			servers++
			if len(r.SANs) == 0 {
				t.Errorf("server record %+v", r)
			}
		case r.Requester.Operation == "CreateCA":
			cas++
			if r.Profile == "" || r.CertificateID == "" || r.Serial == "" {
				t.Errorf("CA record %+v", r)
			}
		default:
			byID[r.CertificateID] = r
		}
	}
	if crls == 0 || ocsps != 1 || servers != 1 || cas != 3 {
		t.Errorf("%d CRL, %d OCSP, %d server and %d CA records; want some, one, one and three (root, issuing, server CA)", crls, ocsps, servers, cas)
	}
	api := audit.Requester{Account: testAccount, Region: testRegion, AccessKeyID: testKeyID}
	for _, want := range []struct {
		id, profile, operation string
		who                    audit.Requester
	}{
		{*fromCSR.CertificateId, "device-csr", "CreateCertificateFromCsr", api},
		{*withKey.CertificateId, "device-key", "CreateKeysAndCertificate", api},
		{*claim.CertificateId, "claim", "CreateProvisioningClaim", api},
		{overMQTT["certificateId"].(string), "device-key", "CreateKeysAndCertificate",
			audit.Requester{Account: testAccount, Region: testRegion, CertificateID: *claim.CertificateId}},
	} {
		r, ok := byID[want.id]
		if !ok {
			t.Errorf("no record of %s (%s)", want.id, want.operation)
			continue
		}
		who := r.Requester
		if r.Profile != want.profile || who.Operation != want.operation || who.Account != want.who.Account || who.Region != want.who.Region ||
			who.AccessKeyID != want.who.AccessKeyID || who.CertificateID != want.who.CertificateID || r.Serial == "" || r.NotAfter.IsZero() {
			t.Errorf("record of %s: %+v", want.operation, r)
		}
	}
	if r := byID[*fromCSR.CertificateId]; r.Subject != "CN=audited device,O=Example" {
		t.Errorf("subject %q", r.Subject)
	}

	// The log has the same records, and neither has a secret.
	logs := ts.logs.String()
	if n := strings.Count(logs, `"msg":"audit"`); n != len(records) {
		t.Errorf("%d audit lines in the log, %d in the file", n, len(records))
	}
	file, _ := os.ReadFile(path)
	for _, secret := range []string{testSecret, "PRIVATE KEY", keyBody(*withKey.KeyPair.PrivateKey), keyBody(*claim.KeyPair.PrivateKey),
		overMQTT["certificateOwnershipToken"].(string)} {
		if bytes.Contains(file, []byte(secret)) || strings.Contains(logs, secret) {
			t.Errorf("a secret is in the audit records: %.30q", secret)
		}
	}
}

// keyBody is a line from the middle of a PEM private key.
func keyBody(p string) string {
	lines := strings.Split(p, "\n")
	return lines[len(lines)/2]
}
