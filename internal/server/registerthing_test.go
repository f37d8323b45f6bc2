package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/fleetca/fleetca/internal/testpki"
)

// TestRegisterThingOverHTTP is single-thing provisioning: the control
// plane's RegisterThing with an inline template, through the SDK.
func TestRegisterThingOverHTTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	register := func(body string, params map[string]string) (*iot.RegisterThingOutput, error) {
		return c.RegisterThing(ctx, &iot.RegisterThingInput{TemplateBody: aws.String(body), Parameters: params})
	}

	t.Run("existing certificate and policy", func(t *testing.T) {
		cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("http-existing"), PolicyDocument: aws.String(allowAllPolicy)}); err != nil {
			t.Fatal(err)
		}
		body := `{"Parameters": {"ThingName": {"Type": "String"}, "CertificateId": {"Type": "String"}},
			"Resources": {
				"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}, "AttributePayload": {"line": "a"}}},
				"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "CertificateId"}, "Status": "ACTIVE"},
					"OverrideSettings": {"Status": "REPLACE"}},
				"policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "http-existing"}}}}`
		out, err := register(body, map[string]string{"ThingName": "http-thing-1", "CertificateId": *cert.CertificateId})
		if err != nil {
			t.Fatal(err)
		}
		if *out.CertificatePem != *cert.CertificatePem {
			t.Errorf("certificatePem is not the named certificate's")
		}
		want := map[string]string{
			"thing":       "arn:aws:iot:" + testRegion + ":" + testAccount + ":thing/http-thing-1",
			"certificate": *cert.CertificateArn,
		}
		if len(out.ResourceArns) != len(want) || out.ResourceArns["thing"] != want["thing"] || out.ResourceArns["certificate"] != want["certificate"] {
			t.Errorf("resourceArns = %v, want %v (no entry for a policy the call did not create)", out.ResourceArns, want)
		}
		d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: cert.CertificateId})
		if err != nil {
			t.Fatal(err)
		}
		if d.CertificateDescription.Status != types.CertificateStatusActive {
			t.Errorf("status %s, want ACTIVE (OverrideSettings REPLACE)", d.CertificateDescription.Status)
		}
		things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: cert.CertificateArn})
		if err != nil {
			t.Fatal(err)
		}
		if len(things.Things) != 1 || things.Things[0] != "http-thing-1" {
			t.Errorf("principal things %v", things.Things)
		}
		policies, err := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: cert.CertificateArn})
		if err != nil {
			t.Fatal(err)
		}
		if len(policies.Policies) != 1 || *policies.Policies[0].PolicyName != "http-existing" {
			t.Errorf("attached policies %v", policies.Policies)
		}
	})

	t.Run("certificate from a CSR and a policy document", func(t *testing.T) {
		csr, _ := testpki.NewCSR(t, "p256", pkixName("http-device-2"))
		body := `{"Parameters": {"ThingName": {"Type": "String"}, "CSR": {"Type": "String"}},
			"Resources": {
				"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}}},
				"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"}},
				"policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17",
					"Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}}}}}`
		out, err := register(body, map[string]string{"ThingName": "http-thing-2", "CSR": csr})
		if err != nil {
			t.Fatal(err)
		}
		leaf := ts.verifyChain(t, *out.CertificatePem)
		id := sha256Hex(leaf.Raw)
		d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		if d.CertificateDescription.Status != types.CertificateStatusActive {
			t.Errorf("status %s, want ACTIVE", d.CertificateDescription.Status)
		}
		policyARN := out.ResourceArns["policy"]
		name := policyARN[strings.LastIndex(policyARN, "/")+1:]
		if len(name) != 40 || strings.ToUpper(name) != name {
			t.Errorf("policy ARN %q: the name is not 40 upper-case hex digits", policyARN)
		}
		if _, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String(name)}); err != nil {
			t.Errorf("the created policy: %v", err)
		}
		if out.ResourceArns["certificate"] != *d.CertificateDescription.CertificateArn {
			t.Errorf("resourceArns %v", out.ResourceArns)
		}
	})

	t.Run("refusals create nothing", func(t *testing.T) {
		before, err := c.ListThings(ctx, &iot.ListThingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			body   string
			params map[string]string
			check  func(error) bool
			substr string
		}{
			{"not JSON", `{"Resources":`, nil, isErr[*types.InvalidRequestException], "template body"},
			{"empty string body", `""`, nil, isErr[*types.InvalidRequestException], "template body"},
			{"unknown certificate", `{"Parameters": {"Id": {"Type": "String"}}, "Resources": {
				"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "http-refused"}},
				"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "Id"}}}}}`,
				map[string]string{"Id": strings.Repeat("ab", 32)}, isErr[*types.ResourceRegistrationFailureException], "does not exist"},
			{"missing parameter", `{"Parameters": {"Name": {"Type": "String"}}, "Resources": {
				"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Name"}}}}}`,
				nil, isErr[*types.ResourceRegistrationFailureException], "Name"},
			{"CSR that does not parse", `{"Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "http-refused"}},
				"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateSigningRequest": "not a CSR"}}}}`,
				nil, isErr[*types.ResourceRegistrationFailureException], "signing request"},
		} {
			_, err := register(tc.body, tc.params)
			if !tc.check(err) || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("%s: err = %v, want one that mentions %q", tc.name, err, tc.substr)
			}
		}
		after, err := c.ListThings(ctx, &iot.ListThingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Things) != len(before.Things) {
			t.Errorf("refused registrations made things: %d before, %d after", len(before.Things), len(after.Things))
		}
	})
}
