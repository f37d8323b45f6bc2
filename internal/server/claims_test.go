package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// claimTemplateBody provisions a thing named after the serial number with
// the device's certificate ACTIVE.
const claimTemplateBody = `{
  "Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["", ["claimed-", {"Ref": "SerialNumber"}]]}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
  }
}`

// TestProvisioningClaimOverMQTT is provisioning by a trusted user: a claim
// from CreateProvisioningClaim connects, gets its own certificate and
// registers itself with the claim's template, which is all it may do; the
// claim itself is never a registered certificate.
func TestProvisioningClaimOverMQTT(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	for _, name := range []string{"claimed", "other"} {
		if _, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{TemplateName: aws.String(name), TemplateBody: aws.String(claimTemplateBody),
			Enabled: aws.Bool(true), ProvisioningRoleArn: aws.String("arn:aws:iam::123456789012:role/Provision")}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.CreateProvisioningClaim(ctx, &iot.CreateProvisioningClaimInput{TemplateName: aws.String("claimed")})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(*out.Expiration); d <= 0 || d > 5*time.Minute+time.Second {
		t.Errorf("the claim expires in %v, want five minutes", d)
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: out.CertificateId}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("DescribeCertificate of a claim: %v, want ResourceNotFoundException", err)
	}
	if n := certificateCount(t, c); n != 0 {
		t.Errorf("ListCertificates shows %d certificates after a claim, want none", n)
	}
	if _, err := c.CreateProvisioningClaim(ctx, &iot.CreateProvisioningClaimInput{TemplateName: aws.String("missing")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("claim of a missing template: %v", err)
	}

	claim := newKeyPair(t, *out.CertificatePem, *out.KeyPair.PrivateKey)
	d := ts.mustConnect(t, claim)
	topic, created := d.request(t, "$aws/certificates/create", "json", map[string]any{})
	if !strings.HasSuffix(topic, "/accepted") {
		t.Fatalf("CreateKeysAndCertificate with a claim: %s %v", topic, created)
	}
	topic, reply := d.request(t, "$aws/provisioning-templates/claimed/provision", "json",
		map[string]any{"certificateOwnershipToken": created["certificateOwnershipToken"], "parameters": map[string]string{"SerialNumber": "7"}})
	if !strings.HasSuffix(topic, "/accepted") || reply["thingName"] != "claimed-7" {
		t.Fatalf("RegisterThing with a claim: %s %v", topic, reply)
	}
	desc, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(created["certificateId"].(string))})
	if err != nil || desc.CertificateDescription.Status != types.CertificateStatusActive {
		t.Fatalf("the provisioned certificate: %v, %v", desc, err)
	}

	// Nothing but its template's topics: another template's are refused at
	// SUBSCRIBE (3.1.1 closes the connection).
	tok := d.Subscribe("$aws/provisioning-templates/other/provision/json/accepted", 1, nil)
	if !tok.WaitTimeout(waitLimit) {
		t.Fatal("subscribe timed out")
	}
	select {
	case <-d.lost:
	case <-time.After(waitLimit):
		t.Fatal("a claim subscribed to another template's topics and stayed connected")
	}
}
