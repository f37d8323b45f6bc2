package server_test

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetca/fleetca/examples/certificate-provider/signer"
	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/lambdatest"
	"github.com/fleetca/fleetca/internal/testpki"
)

// These tests drive fleet provisioning end to end: provisioning templates
// made through the AWS SDK, devices with a claim certificate asking for
// their own certificate and registering it with RegisterThing over MQTT
// 3.1.1 and 5 (JSON and CBOR), pre-provisioning hooks and a certificate
// provider invoked for real through the Lambda Invoke API (lambdalocal),
// and just-in-time provisioning of devices of a registered CA.

// provSampleTemplate is the fleet-provisioning template of the AWS IoT
// Device SDK v2 sample (the spec's §2.8), as the template package's tests
// have it.
var provSampleTemplate = func() string {
	b, err := os.ReadFile("../template/testdata/sdk-sample-template.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

const (
	provRoleARN     = "arn:aws:iam::123456789012:role/Provisioning"
	provFallbackURL = "https://www.example.com/test-site"
	provSeattleURL  = "https://example.aws"
	provPortlandURL = "https://portland.example.com"
)

// provDevicePolicy is what a provisioned device may do: connect, and
// publish, subscribe and receive on its own telemetry topic only, named by
// its thing (the device connects with the thing's name as client ID).
var provDevicePolicy = enfDoc(enfConnectAny,
	enfAllow("iot:Publish,iot:Receive", enfARN("topic/telemetry/${iot:Connection.Thing.ThingName}")),
	enfAllow("iot:Subscribe", enfARN("topicfilter/telemetry/${iot:Connection.Thing.ThingName}")))

// provTemplateBody is the SDK sample with provDevicePolicy (as an object)
// in place of its allow-all policy, and a second location, Portland, so
// that a hook's override of the location shows in the device
// configuration.
func provTemplateBody(t testing.TB) string {
	t.Helper()
	var tpl, policy map[string]any
	if err := json.Unmarshal([]byte(provSampleTemplate), &tpl); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(provDevicePolicy), &policy); err != nil {
		t.Fatal(err)
	}
	resources := tpl["Resources"].(map[string]any)
	resources["policy"].(map[string]any)["Properties"] = map[string]any{"PolicyDocument": policy}
	tpl["Mappings"].(map[string]any)["LocationTable"].(map[string]any)["Portland"] = map[string]any{"LocationUrl": provPortlandURL}
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// provServer starts a server whose provisioning rate limit is out of the
// way: a test sends a few dozen requests at once, and a 429 would only
// hide what it checks.
func provServer(t testing.TB, configure func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, "", func(c *config.Config) {
		c.MQTTProvisioningRate, c.MQTTProvisioningBurst = 1000, 1000
		if configure != nil {
			configure(c)
		}
	})
}

// provCreateTemplate creates a template; the role defaults to provRoleARN.
func provCreateTemplate(t testing.TB, c *iot.Client, in iot.CreateProvisioningTemplateInput) *iot.CreateProvisioningTemplateOutput {
	t.Helper()
	if in.ProvisioningRoleArn == nil {
		in.ProvisioningRoleArn = aws.String(provRoleARN)
	}
	out, err := c.CreateProvisioningTemplate(context.Background(), &in)
	if err != nil {
		t.Fatalf("CreateProvisioningTemplate %s: %v", aws.ToString(in.TemplateName), err)
	}
	return out
}

// provFleetTemplate creates an enabled FLEET_PROVISIONING template of
// provTemplateBody, with the function as its pre-provisioning hook when
// hookARN is set.
func provFleetTemplate(t testing.TB, c *iot.Client, name, hookARN string) {
	t.Helper()
	in := iot.CreateProvisioningTemplateInput{TemplateName: aws.String(name), TemplateBody: aws.String(provTemplateBody(t)), Enabled: aws.Bool(true)}
	if hookARN != "" {
		in.PreProvisioningHook = &types.ProvisioningHook{TargetArn: aws.String(hookARN)}
	}
	provCreateTemplate(t, c, in)
}

// provClaimPolicy is a claim certificate's policy: connect, the two
// certificate topics, and RegisterThing with the named templates, nothing
// else (the README's claim policy plus the provisioning topics).
func provClaimPolicy(templates ...string) string {
	topics := []string{"$aws/certificates/create/*", "$aws/certificates/create-from-csr/*"}
	for _, name := range templates {
		topics = append(topics, "$aws/provisioning-templates/"+name+"/provision/*")
	}
	// Any account, as in the README, so that other accounts can use it.
	arn := "arn:aws:iot:" + testRegion + ":*:"
	var pub, sub []string
	for _, tp := range topics {
		pub = append(pub, arn+"topic/"+tp)
		sub = append(sub, arn+"topicfilter/"+tp)
	}
	return enfDoc(enfConnectAny, enfAllow("iot:Publish,iot:Receive", pub...), enfAllow("iot:Subscribe", sub...))
}

// provTopic is RegisterThing's request topic.
func provTopic(template, format string) string {
	return "$aws/provisioning-templates/" + template + "/provision/" + format
}

// provNewCertificate asks over MQTT for a certificate, with
// CreateCertificateFromCsr when csr is set and CreateKeysAndCertificate
// otherwise, and returns its key pair and ownership token.
func provNewCertificate(t testing.TB, d *device, format string, csr bool) (keyPair, string) {
	t.Helper()
	if csr {
		req, key := testpki.NewCSR(t, "p256", pkix.Name{CommonName: "fleet-device"})
		topic, reply := d.request(t, "$aws/certificates/create-from-csr", format, map[string]string{"certificateSigningRequest": req})
		certPEM, _ := reply["certificatePem"].(string)
		token, _ := reply["certificateOwnershipToken"].(string)
		if topic != "$aws/certificates/create-from-csr/"+format+"/accepted" || certPEM == "" || token == "" {
			t.Fatalf("CreateCertificateFromCsr: reply on %s: %v", topic, reply)
		}
		return newKeyPair(t, certPEM, testpki.KeyPEM(t, key)), token
	}
	topic, reply := d.request(t, "$aws/certificates/create", format, map[string]any{})
	certPEM, _ := reply["certificatePem"].(string)
	keyPEM, _ := reply["privateKey"].(string)
	token, _ := reply["certificateOwnershipToken"].(string)
	if topic != "$aws/certificates/create/"+format+"/accepted" || certPEM == "" || keyPEM == "" || token == "" {
		t.Fatalf("CreateKeysAndCertificate: reply on %s: %v", topic, reply)
	}
	return newKeyPair(t, certPEM, keyPEM), token
}

// provRequest is a RegisterThing request: the ownership token and the
// parameters.
func provRequest(token string, params map[string]string) map[string]any {
	return map[string]any{"certificateOwnershipToken": token, "parameters": params}
}

// provParams are the sample's parameters for a device of the serial number
// at the location.
func provParams(serial, location string) map[string]string {
	return map[string]string{"SerialNumber": serial, "DeviceLocation": location}
}

// provRegister publishes RegisterThing on the template's topic in format
// (body encoded in it, or sent as is when it is []byte) and returns
// whether it was accepted, and the decoded reply.
func provRegister(t testing.TB, d *device, template, format string, body any) (bool, map[string]any) {
	t.Helper()
	topic := provTopic(template, format)
	replies := d.subscribe(t, topic+"/accepted", topic+"/rejected")
	payload, raw := body.([]byte)
	if !raw {
		payload = encodeAs(t, format, body)
	}
	d.publish(t, topic, payload)
	m := receive(t, replies)
	return m.Topic() == topic+"/accepted", decodeAs(t, format, m.Payload())
}

// provAccepted is the exact accepted payload of the sample template.
func provAccepted(thing, locationURL string) map[string]any {
	return map[string]any{
		"deviceConfiguration": map[string]any{"FallbackUrl": provFallbackURL, "LocationUrl": locationURL},
		"thingName":           thing,
	}
}

func provWantAccepted(t testing.TB, accepted bool, reply map[string]any, thing, locationURL string) {
	t.Helper()
	if !accepted {
		t.Fatalf("RegisterThing rejected: %v", reply)
	}
	if want := provAccepted(thing, locationURL); !reflect.DeepEqual(reply, want) {
		t.Fatalf("accepted payload %v, want exactly %v", reply, want)
	}
}

func provWantRejected(t testing.TB, accepted bool, reply map[string]any, status int, code string) string {
	t.Helper()
	msg, _ := reply["errorMessage"].(string)
	if accepted || toInt(reply["statusCode"]) != status || reply["errorCode"] != code || msg == "" || len(reply) != 3 {
		t.Fatalf("reply (accepted=%v) %v, want rejected %d %s with a message", accepted, reply, status, code)
	}
	return msg
}

// provCertARN is a certificate's ARN, as the account's client describes it.
func provCertARN(t testing.TB, c *iot.Client, id string) string {
	t.Helper()
	_, d := describeStatus(t, c, id)
	return aws.ToString(d.CertificateArn)
}

func provAttachedPolicies(t testing.TB, c *iot.Client, target string) []types.Policy {
	t.Helper()
	out, err := c.ListAttachedPolicies(context.Background(), &iot.ListAttachedPoliciesInput{Target: aws.String(target)})
	if err != nil {
		t.Fatalf("ListAttachedPolicies %s: %v", target, err)
	}
	return out.Policies
}

func provThingPrincipals(t testing.TB, c *iot.Client, thing string) []string {
	t.Helper()
	out, err := c.ListThingPrincipals(context.Background(), &iot.ListThingPrincipalsInput{ThingName: aws.String(thing)})
	if err != nil {
		t.Fatalf("ListThingPrincipals %s: %v", thing, err)
	}
	return out.Principals
}

func provPrincipalThings(t testing.TB, c *iot.Client, principal string) []string {
	t.Helper()
	out, err := c.ListPrincipalThings(context.Background(), &iot.ListPrincipalThingsInput{Principal: aws.String(principal)})
	if err != nil {
		t.Fatalf("ListPrincipalThings %s: %v", principal, err)
	}
	return out.Things
}

// provPolicyName is the name a template's PolicyDocument takes: 40
// upper-case hex digits, a SHA-1.
var provPolicyName = regexp.MustCompile(`^[0-9A-F]{40}$`)

// provCheckProvisioned checks through the SDK what RegisterThing with the
// sample made of a certificate: the thing with the sample's attributes,
// the certificate ACTIVE and attached to it, and one policy, named by the
// hash of its document, which is provDevicePolicy. It returns the policy's
// name.
func provCheckProvisioned(t testing.TB, c *iot.Client, thing, certID string) string {
	t.Helper()
	ctx := context.Background()
	th, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(thing)})
	if err != nil {
		t.Fatalf("DescribeThing %s: %v", thing, err)
	}
	if want := map[string]string{"version": "v1", "serialNumber": "serialNumber"}; !reflect.DeepEqual(th.Attributes, want) {
		t.Fatalf("thing %s has attributes %v, want %v", thing, th.Attributes, want)
	}
	status, d := describeStatus(t, c, certID)
	if status != types.CertificateStatusActive {
		t.Fatalf("the provisioned certificate is %s", status)
	}
	arn := aws.ToString(d.CertificateArn)
	if principals := provThingPrincipals(t, c, thing); !slices.Contains(principals, arn) {
		t.Fatalf("thing %s has principals %v, not %s", thing, principals, arn)
	}
	policies := provAttachedPolicies(t, c, arn)
	if len(policies) != 1 || !provPolicyName.MatchString(aws.ToString(policies[0].PolicyName)) {
		t.Fatalf("the certificate has policies %+v, want one named by a hash", policies)
	}
	name := aws.ToString(policies[0].PolicyName)
	p, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	doc := aws.ToString(p.PolicyDocument)
	if !provSameJSON(doc, provDevicePolicy) {
		t.Fatalf("policy %s is %s, want %s", name, doc, provDevicePolicy)
	}
	if sum := fmt.Sprintf("%X", sha1.Sum([]byte(doc))); sum != name {
		t.Fatalf("policy %s: the SHA-1 of its document is %s", name, sum)
	}
	return name
}

func provSameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// provState is what a refused request must leave as it was.
type provState struct{ things, policies int }

func provCount(t testing.TB, c *iot.Client) provState {
	t.Helper()
	s := provState{things: len(thingListAll(t, c, iot.ListThingsInput{}))}
	in := &iot.ListPoliciesInput{}
	for {
		out, err := c.ListPolicies(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		s.policies += len(out.Policies)
		if out.NextMarker == nil {
			return s
		}
		in.Marker = out.NextMarker
	}
}

// provUntouched checks that a refused RegisterThing left everything as it
// was: as many things and policies as before, and the certificate still
// PENDING_ACTIVATION, with no policy and no thing.
func provUntouched(t testing.TB, c *iot.Client, before provState, certID string) {
	t.Helper()
	if after := provCount(t, c); after != before {
		t.Fatalf("a refused RegisterThing changed things and policies from %+v to %+v", before, after)
	}
	status, d := describeStatus(t, c, certID)
	if status != types.CertificateStatusPendingActivation {
		t.Fatalf("after a refused RegisterThing the certificate is %s", status)
	}
	arn := aws.ToString(d.CertificateArn)
	if p := provAttachedPolicies(t, c, arn); len(p) != 0 {
		t.Fatalf("after a refused RegisterThing the certificate has policies %+v", p)
	}
	if th := provPrincipalThings(t, c, arn); len(th) != 0 {
		t.Fatalf("after a refused RegisterThing the certificate is attached to %v", th)
	}
}

// provPublishes3 connects a provisioned device with MQTT 3.1.1 as its thing
// and checks that it publishes under the provisioned policy: on its own
// telemetry topic, delivered to a watcher; anywhere else, refused, and the
// connection closed.
func provPublishes3(t testing.TB, ts *testServer, c *iot.Client, kp keyPair, thing string, configure func(*paho.ClientOptions)) {
	t.Helper()
	watcher := ts.mustConnect(t, ts.claim(t, c))
	msgs := enfSubscribe3(t, watcher, "telemetry/"+thing+"/#")
	d, err := ts.connectWith(t, kp, thing, configure)
	if err != nil {
		t.Fatalf("the provisioned device connecting as %s: %v", thing, err)
	}
	d.publish(t, "telemetry/"+thing, []byte("allowed"))
	if m := enfExpect(t, msgs, "telemetry/"+thing); m.payload != "allowed" {
		t.Fatalf("received %q", m.payload)
	}
	d.Publish("telemetry/"+thing+"/elsewhere", 1, false, []byte("refused"))
	enfLost(t, d, "a publish the provisioned policy does not allow")
	// The watcher's own message comes after the refused one would have.
	watcher.publish(t, "telemetry/"+thing+"/control", []byte("control"))
	enfExpect(t, msgs, "telemetry/"+thing+"/control")
}

// TestProvisioningTemplateAPI drives the template control plane with the
// SDK: create and its defaults, describe, list, update, versions, delete,
// tags, and the bodies refused at create.
func TestProvisioningTemplateAPI(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	body := provTemplateBody(t)
	const hookARN = "arn:aws:lambda:us-east-1:123456789012:function:pre-provision"
	arnOf := func(name string) string {
		return "arn:aws:iot:" + testRegion + ":" + testAccount + ":provisioningtemplate/" + name
	}
	describe := func(t *testing.T, name string) *iot.DescribeProvisioningTemplateOutput {
		t.Helper()
		d, err := c.DescribeProvisioningTemplate(ctx, &iot.DescribeProvisioningTemplateInput{TemplateName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeProvisioningTemplate %s: %v", name, err)
		}
		return d
	}
	update := func(t *testing.T, in iot.UpdateProvisioningTemplateInput) error {
		t.Helper()
		in.TemplateName = aws.String("fleet")
		_, err := c.UpdateProvisioningTemplate(ctx, &in)
		return err
	}

	out := provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{
		TemplateName: aws.String("fleet"), TemplateBody: aws.String(body), Description: aws.String("fleet devices"),
		Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("fleet-team")}},
	})
	if aws.ToString(out.TemplateArn) != arnOf("fleet") || aws.ToString(out.TemplateName) != "fleet" || aws.ToInt32(out.DefaultVersionId) != 1 {
		t.Fatalf("created %s %s version %d", aws.ToString(out.TemplateArn), aws.ToString(out.TemplateName), aws.ToInt32(out.DefaultVersionId))
	}
	d := describe(t, "fleet")
	if aws.ToString(d.TemplateArn) != arnOf("fleet") || aws.ToString(d.TemplateName) != "fleet" || aws.ToString(d.Description) != "fleet devices" ||
		aws.ToBool(d.Enabled) || d.Type != types.TemplateTypeFleetProvisioning || aws.ToInt32(d.DefaultVersionId) != 1 ||
		aws.ToString(d.TemplateBody) != body || aws.ToString(d.ProvisioningRoleArn) != provRoleARN || d.PreProvisioningHook != nil {
		t.Fatalf("described %+v", d)
	}
	if d.CreationDate == nil || time.Since(*d.CreationDate) > time.Minute || d.LastModifiedDate == nil || !d.LastModifiedDate.Equal(*d.CreationDate) {
		t.Fatalf("dates: created %v, modified %v", d.CreationDate, d.LastModifiedDate)
	}

	t.Run("tags", func(t *testing.T) {
		tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(arnOf("fleet"))})
		if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "owner" || aws.ToString(tags.Tags[0].Value) != "fleet-team" {
			t.Fatalf("tags: %v %+v", err, tags)
		}
		if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(arnOf("fleet")), Tags: []types.Tag{{Key: aws.String("stage"), Value: aws.String("prod")}}}); err != nil {
			t.Fatal(err)
		}
		if tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(arnOf("fleet"))}); err != nil || len(tags.Tags) != 2 {
			t.Fatalf("tags after TagResource: %v %+v", err, tags)
		}
	})
	t.Run("duplicate name", func(t *testing.T) {
		_, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{
			TemplateName: aws.String("fleet"), TemplateBody: aws.String(body), ProvisioningRoleArn: aws.String(provRoleARN),
		})
		if !isErr[*types.ResourceAlreadyExistsException](err) {
			t.Fatalf("err = %v, want ResourceAlreadyExistsException", err)
		}
	})
	t.Run("bad bodies", func(t *testing.T) {
		const cert = `"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}`
		for i, tc := range []struct{ name, body, mentions string }{
			{"not JSON", `{"Resources": {`, "not a JSON object"},
			{"unknown resource type", `{"Resources": {` + cert + `, "widget": {"Type": "AWS::IoT::Widget", "Properties": {}}}}`, "AWS::IoT::Widget"},
			{"Ref to an undeclared parameter", `{"Resources": {` + cert + `, "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Serial"}}}}}`, "undeclared parameter Serial"},
			{"Fn::If", `{"Parameters": {"A": {"Type": "String"}}, "Resources": {` + cert +
				`, "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::If": ["c", {"Ref": "A"}, "b"]}}}}}`, "Fn::If"},
			{"Conditions section", `{"Conditions": {"c": {"Fn::Equals": ["a", "b"]}}, "Resources": {` + cert + `}}`, "Conditions"},
			{"policy with neither name nor document", `{"Resources": {` + cert + `, "policy": {"Type": "AWS::IoT::Policy", "Properties": {}}}}`, "Neither PolicyName nor PolicyDocument"},
			{"policy document that is no IoT policy", `{"Resources": {` + cert +
				`, "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps", "Action": "iot:Connect", "Resource": "*"}]}}}}}`,
				"Resources.policy.Properties.PolicyDocument: Policy document is Malformed"},
			{"no certificate resource", `{"Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "x"}}}}`, "AWS::IoT::Certificate"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprint("bad-", i)
				_, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{
					TemplateName: aws.String(name), TemplateBody: aws.String(tc.body), ProvisioningRoleArn: aws.String(provRoleARN),
				})
				var invalid *types.InvalidRequestException
				if !errors.As(err, &invalid) || !strings.Contains(invalid.ErrorMessage(), tc.mentions) {
					t.Fatalf("err = %v, want InvalidRequestException mentioning %q", err, tc.mentions)
				}
				if _, err := c.DescribeProvisioningTemplate(ctx, &iot.DescribeProvisioningTemplateInput{TemplateName: aws.String(name)}); !isErr[*types.ResourceNotFoundException](err) {
					t.Fatalf("a refused template was stored: %v", err)
				}
			})
		}
	})
	t.Run("list", func(t *testing.T) {
		for _, name := range []string{"fleet-b", "fleet-c"} {
			provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{TemplateName: aws.String(name), TemplateBody: aws.String(body)})
		}
		var names []string
		in := &iot.ListProvisioningTemplatesInput{MaxResults: aws.Int32(1)}
		for pages := 1; ; pages++ {
			page, err := c.ListProvisioningTemplates(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Templates) != 1 || pages > 3 {
				t.Fatalf("page %d has %d templates", pages, len(page.Templates))
			}
			s := page.Templates[0]
			if aws.ToString(s.TemplateArn) != arnOf(aws.ToString(s.TemplateName)) || aws.ToBool(s.Enabled) || s.Type != types.TemplateTypeFleetProvisioning || s.CreationDate == nil {
				t.Fatalf("summary %+v", s)
			}
			names = append(names, aws.ToString(s.TemplateName))
			if page.NextToken == nil {
				break
			}
			in.NextToken = page.NextToken
		}
		if !slices.Equal(names, []string{"fleet", "fleet-b", "fleet-c"}) {
			t.Fatalf("listed %v", names)
		}
	})
	t.Run("update", func(t *testing.T) {
		before := describe(t, "fleet")
		if err := update(t, iot.UpdateProvisioningTemplateInput{Enabled: aws.Bool(true), Description: aws.String("updated")}); err != nil {
			t.Fatal(err)
		}
		d := describe(t, "fleet")
		if !aws.ToBool(d.Enabled) || aws.ToString(d.Description) != "updated" || !d.CreationDate.Equal(*before.CreationDate) || d.LastModifiedDate.Before(*before.LastModifiedDate) {
			t.Fatalf("after update: %+v", d)
		}

		// The default version: one that exists, then one that does not.
		v2 := strings.Replace(body, "test-site", "test-site-v2", 1)
		if _, err := c.CreateProvisioningTemplateVersion(ctx, &iot.CreateProvisioningTemplateVersionInput{TemplateName: aws.String("fleet"), TemplateBody: aws.String(v2)}); err != nil {
			t.Fatal(err)
		}
		if err := update(t, iot.UpdateProvisioningTemplateInput{DefaultVersionId: aws.Int32(2)}); err != nil {
			t.Fatal(err)
		}
		if d := describe(t, "fleet"); aws.ToInt32(d.DefaultVersionId) != 2 || aws.ToString(d.TemplateBody) != v2 {
			t.Fatalf("default version %d with body %.60q", aws.ToInt32(d.DefaultVersionId), aws.ToString(d.TemplateBody))
		}
		if err := update(t, iot.UpdateProvisioningTemplateInput{DefaultVersionId: aws.Int32(9)}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("a missing default version: %v", err)
		}
		if d := describe(t, "fleet"); aws.ToInt32(d.DefaultVersionId) != 2 {
			t.Fatalf("a refused update changed the default version to %d", aws.ToInt32(d.DefaultVersionId))
		}

		// The hook, set and removed.
		if err := update(t, iot.UpdateProvisioningTemplateInput{PreProvisioningHook: &types.ProvisioningHook{TargetArn: aws.String(hookARN)}}); err != nil {
			t.Fatal(err)
		}
		if h := describe(t, "fleet").PreProvisioningHook; h == nil || aws.ToString(h.TargetArn) != hookARN || aws.ToString(h.PayloadVersion) != "2020-04-01" {
			t.Fatalf("hook %+v", h)
		}
		err := update(t, iot.UpdateProvisioningTemplateInput{PreProvisioningHook: &types.ProvisioningHook{TargetArn: aws.String(hookARN + "-2")}, RemovePreProvisioningHook: aws.Bool(true)})
		if !isErr[*types.InvalidRequestException](err) {
			t.Fatalf("a hook and its removal together: %v", err)
		}
		if h := describe(t, "fleet").PreProvisioningHook; h == nil || aws.ToString(h.TargetArn) != hookARN {
			t.Fatalf("a refused update changed the hook to %+v", h)
		}
		if err := update(t, iot.UpdateProvisioningTemplateInput{RemovePreProvisioningHook: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if h := describe(t, "fleet").PreProvisioningHook; h != nil {
			t.Fatalf("the removed hook is %+v", h)
		}

		// A hook given at create.
		provFleetTemplate(t, c, "hooked", hookARN)
		if h := describe(t, "hooked").PreProvisioningHook; h == nil || aws.ToString(h.TargetArn) != hookARN || aws.ToString(h.PayloadVersion) != "2020-04-01" {
			t.Fatalf("hook given at create: %+v", h)
		}

		// No hook on a JITP template, at create or update.
		createJITPTemplate(t, c, "jitp")
		if _, err := c.UpdateProvisioningTemplate(ctx, &iot.UpdateProvisioningTemplateInput{
			TemplateName: aws.String("jitp"), PreProvisioningHook: &types.ProvisioningHook{TargetArn: aws.String(hookARN)},
		}); !isErr[*types.InvalidRequestException](err) {
			t.Fatalf("a hook on a JITP template: %v", err)
		}
		if _, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{
			TemplateName: aws.String("jitp-hooked"), TemplateBody: aws.String(jitpTemplateBody), Type: types.TemplateTypeJitp,
			ProvisioningRoleArn: aws.String(provRoleARN), PreProvisioningHook: &types.ProvisioningHook{TargetArn: aws.String(hookARN)},
		}); !isErr[*types.InvalidRequestException](err) {
			t.Fatalf("a JITP template created with a hook: %v", err)
		}
		if err := update(t, iot.UpdateProvisioningTemplateInput{}); err != nil {
			t.Fatalf("an empty update: %v", err)
		}
		if _, err := c.UpdateProvisioningTemplate(ctx, &iot.UpdateProvisioningTemplateInput{TemplateName: aws.String("ghost"), Enabled: aws.Bool(true)}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("update of an unknown template: %v", err)
		}
	})
	t.Run("versions", func(t *testing.T) {
		provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{TemplateName: aws.String("versioned"), TemplateBody: aws.String(body)})
		bodyN := func(n int) string { return strings.Replace(body, "test-site", fmt.Sprint("test-site-", n), 1) }
		newVersion := func(n int, setAsDefault bool) (*iot.CreateProvisioningTemplateVersionOutput, error) {
			return c.CreateProvisioningTemplateVersion(ctx, &iot.CreateProvisioningTemplateVersionInput{
				TemplateName: aws.String("versioned"), TemplateBody: aws.String(bodyN(n)), SetAsDefault: setAsDefault,
			})
		}
		v, err := newVersion(2, false)
		if err != nil || aws.ToInt32(v.VersionId) != 2 || v.IsDefaultVersion || aws.ToString(v.TemplateArn) != arnOf("versioned") || aws.ToString(v.TemplateName) != "versioned" {
			t.Fatalf("version 2: %v %+v", err, v)
		}
		if d := describe(t, "versioned"); aws.ToInt32(d.DefaultVersionId) != 1 || aws.ToString(d.TemplateBody) != body {
			t.Fatalf("a version made without setAsDefault became the default: %d", aws.ToInt32(d.DefaultVersionId))
		}
		v, err = newVersion(3, true)
		if err != nil || aws.ToInt32(v.VersionId) != 3 || !v.IsDefaultVersion {
			t.Fatalf("version 3: %v %+v", err, v)
		}
		if d := describe(t, "versioned"); aws.ToInt32(d.DefaultVersionId) != 3 || aws.ToString(d.TemplateBody) != bodyN(3) {
			t.Fatalf("after setAsDefault: version %d", aws.ToInt32(d.DefaultVersionId))
		}
		list := func() []string {
			out, err := c.ListProvisioningTemplateVersions(ctx, &iot.ListProvisioningTemplateVersionsInput{TemplateName: aws.String("versioned")})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range out.Versions {
				if v.CreationDate == nil {
					t.Fatalf("version %d has no creation date", aws.ToInt32(v.VersionId))
				}
				got = append(got, fmt.Sprint(aws.ToInt32(v.VersionId), v.IsDefaultVersion))
			}
			return got
		}
		if got := list(); !slices.Equal(got, []string{"1 false", "2 false", "3 true"}) {
			t.Fatalf("versions %v", got)
		}
		dv, err := c.DescribeProvisioningTemplateVersion(ctx, &iot.DescribeProvisioningTemplateVersionInput{TemplateName: aws.String("versioned"), VersionId: aws.Int32(2)})
		if err != nil || aws.ToString(dv.TemplateBody) != bodyN(2) || dv.IsDefaultVersion || aws.ToInt32(dv.VersionId) != 2 || dv.CreationDate == nil {
			t.Fatalf("version 2 described: %v %+v", err, dv)
		}
		deleteVersion := func(n int32) error {
			_, err := c.DeleteProvisioningTemplateVersion(ctx, &iot.DeleteProvisioningTemplateVersionInput{TemplateName: aws.String("versioned"), VersionId: aws.Int32(n)})
			return err
		}
		if err := deleteVersion(3); !isErr[*types.DeleteConflictException](err) {
			t.Fatalf("deleting the default version: %v", err)
		}
		if err := deleteVersion(2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DescribeProvisioningTemplateVersion(ctx, &iot.DescribeProvisioningTemplateVersionInput{TemplateName: aws.String("versioned"), VersionId: aws.Int32(2)}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("a deleted version: %v", err)
		}
		// Versions 1, 3, 4, 5 and 6 are five; a sixth is refused.
		for n := 4; n <= 6; n++ {
			if v, err := newVersion(n, false); err != nil || aws.ToInt32(v.VersionId) != int32(n) {
				t.Fatalf("version %d: %v", n, err)
			}
		}
		if _, err := newVersion(7, false); !isErr[*types.VersionsLimitExceededException](err) {
			t.Fatalf("a sixth version: %v", err)
		}
		if got := list(); !slices.Equal(got, []string{"1 false", "3 true", "4 false", "5 false", "6 false"}) {
			t.Fatalf("versions %v", got)
		}
		if _, err := c.CreateProvisioningTemplateVersion(ctx, &iot.CreateProvisioningTemplateVersionInput{
			TemplateName: aws.String("versioned"), TemplateBody: aws.String(`{"Resources": {}}`),
		}); !isErr[*types.InvalidRequestException](err) {
			t.Fatalf("a version with a bad body: %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{TemplateName: aws.String("doomed"), TemplateBody: aws.String(body),
			Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("nobody")}}})
		del := func() error {
			_, err := c.DeleteProvisioningTemplate(ctx, &iot.DeleteProvisioningTemplateInput{TemplateName: aws.String("doomed")})
			return err
		}
		if err := del(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DescribeProvisioningTemplate(ctx, &iot.DescribeProvisioningTemplateInput{TemplateName: aws.String("doomed")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("describe after delete: %v", err)
		}
		if _, err := c.ListProvisioningTemplateVersions(ctx, &iot.ListProvisioningTemplateVersionsInput{TemplateName: aws.String("doomed")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("versions after delete: %v", err)
		}
		if err := del(); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(arnOf("doomed"))}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("tags of a deleted template: %v", err)
		}
		// The name is free again, without the old tags.
		provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{TemplateName: aws.String("doomed"), TemplateBody: aws.String(body)})
		if tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(arnOf("doomed"))}); err != nil || len(tags.Tags) != 0 {
			t.Fatalf("a new template of a deleted one's name: %v %+v", err, tags)
		}
	})
	t.Run("named by a CA", func(t *testing.T) {
		createJITPTemplate(t, c, "ca-template")
		ca := testpki.NewRoot(t, "p256", "Template Holder CA")
		reg, err := c.RegisterCACertificate(ctx, &iot.RegisterCACertificateInput{
			CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, c))),
			SetAsActive: true, AllowAutoRegistration: true, RegistrationConfig: &types.RegistrationConfig{TemplateName: aws.String("ca-template")},
		})
		if err != nil {
			t.Fatal(err)
		}
		del := func() error {
			_, err := c.DeleteProvisioningTemplate(ctx, &iot.DeleteProvisioningTemplateInput{TemplateName: aws.String("ca-template")})
			return err
		}
		if err := del(); !isErr[*types.DeleteConflictException](err) {
			t.Fatalf("deleting a CA's registration template: %v", err)
		}
		describe(t, "ca-template")
		if _, err := c.UpdateCACertificate(ctx, &iot.UpdateCACertificateInput{CertificateId: reg.CertificateId, RemoveAutoRegistration: true}); err != nil {
			t.Fatal(err)
		}
		if err := del(); err != nil {
			t.Fatalf("after the CA let go of it: %v", err)
		}
	})
}

// TestProvisioningRegisterThing is the whole fleet-provisioning flow: a
// claim certificate gets a certificate over MQTT, RegisterThing provisions
// it with the SDK sample's template (JSON and CBOR, MQTT 3.1.1 and 5), the
// SDK sees the thing, the ACTIVE certificate and its policy, and the device
// then connects with its new certificate and publishes under exactly that
// policy.
func TestProvisioningRegisterThing(t *testing.T) {
	t.Parallel()
	ts := provServer(t, nil)
	c := ts.iotClient()
	provFleetTemplate(t, c, "fleet", "")
	enfPolicy(t, c, "claim", provClaimPolicy("fleet"))
	claim, _ := enfCert(t, c, "claim")

	for _, format := range []string{"json", "cbor"} {
		for _, how := range []string{"CreateKeysAndCertificate", "CreateCertificateFromCsr"} {
			t.Run(format+"/"+how, func(t *testing.T) {
				t.Parallel()
				d := ts.mustConnect(t, claim)
				kp, token := provNewCertificate(t, d, format, how == "CreateCertificateFromCsr")
				if status, _ := describeStatus(t, c, kp.id); status != types.CertificateStatusPendingActivation {
					t.Fatalf("before RegisterThing the certificate is %s", status)
				}
				serial := format + "-" + how
				accepted, reply := provRegister(t, d, "fleet", format, provRequest(token, provParams(serial, "Seattle")))
				thing := "ThingPrefix_" + serial
				provWantAccepted(t, accepted, reply, thing, provSeattleURL)
				provCheckProvisioned(t, c, thing, kp.id)
				provPublishes3(t, ts, c, kp, thing, nil)
			})
		}
	}
	t.Run("templateName in the payload", func(t *testing.T) {
		t.Parallel()
		// The SDK's v1 client sends the whole request object.
		d := ts.mustConnect(t, claim)
		kp, token := provNewCertificate(t, d, "json", false)
		body := provRequest(token, provParams("v1-client", "Seattle"))
		body["templateName"] = "fleet"
		accepted, reply := provRegister(t, d, "fleet", "json", body)
		provWantAccepted(t, accepted, reply, "ThingPrefix_v1-client", provSeattleURL)
		provCheckProvisioned(t, c, "ThingPrefix_v1-client", kp.id)
	})
	t.Run("MQTT 5", func(t *testing.T) {
		t.Parallel()
		d := ts.enfMustDial5(t, claim, "fleet-provisioning-5")
		// The replies at QoS 0: paho.golang would write its PUBACK of a
		// QoS 1 reply from its own goroutine while this one writes the
		// next request, and their writes interleave on TLS (see
		// enfNoPinger). QoS 1 replies are checked with the other clients.
		subscribe0 := func(filters ...string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			var subs []paho5.SubscribeOptions
			for _, f := range filters {
				subs = append(subs, paho5.SubscribeOptions{Topic: f, QoS: 0})
			}
			if sa, err := d.Subscribe(ctx, &paho5.Subscribe{Subscriptions: subs}); err != nil || sa.Reasons[0] >= 0x80 {
				t.Fatalf("subscribe %v: %+v, %v", filters, sa, err)
			}
		}
		subscribe0("$aws/certificates/create/json/accepted", "$aws/certificates/create/json/rejected")
		d.mustPublish(t, "$aws/certificates/create/json", "{}")
		created := map[string]string{}
		if err := json.Unmarshal([]byte(enfExpect(t, d.msgs, "$aws/certificates/create/json/accepted").payload), &created); err != nil {
			t.Fatal(err)
		}
		kp := newKeyPair(t, created["certificatePem"], created["privateKey"])
		topic := provTopic("fleet", "json")
		subscribe0(topic+"/accepted", topic+"/rejected")
		d.mustPublish(t, topic, string(encodeAs(t, "json", provRequest(created["certificateOwnershipToken"], provParams("mqtt5", "Seattle")))))
		m := enfExpect(t, d.msgs, topic+"/accepted")
		provWantAccepted(t, true, decodeAs(t, "json", []byte(m.payload)), "ThingPrefix_mqtt5", provSeattleURL)
		provCheckProvisioned(t, c, "ThingPrefix_mqtt5", kp.id)

		watcher := ts.enfMustDial5(t, ts.claim(t, c), "watcher-5")
		watcher.mustSubscribe(t, "telemetry/ThingPrefix_mqtt5/#")
		dev := ts.enfMustDial5(t, kp, "ThingPrefix_mqtt5")
		if got := dev.subscribe(t, "telemetry/ThingPrefix_mqtt5", "telemetry/ThingPrefix_other"); len(got) != 2 || got[0] != enfGrantedQoS1 || got[1] != enfNotAuthorized {
			t.Fatalf("SUBACK %#v, want [granted QoS 1, 0x87]", got)
		}
		dev.mustPublish(t, "telemetry/ThingPrefix_mqtt5", "allowed")
		if m := enfExpect(t, watcher.msgs, "telemetry/ThingPrefix_mqtt5"); m.payload != "allowed" {
			t.Fatalf("received %q", m.payload)
		}
		if code := dev.publish(t, "telemetry/ThingPrefix_mqtt5/elsewhere", 1, "refused"); code != enfNotAuthorized {
			t.Fatalf("a publish the provisioned policy does not allow: PUBACK %#x, want 0x87", code)
		}
		dev.alive(t)
		dev.mustPublish(t, "telemetry/ThingPrefix_mqtt5", "after")
		if m := enfExpect(t, watcher.msgs, "telemetry/ThingPrefix_mqtt5"); m.payload != "after" {
			t.Fatalf("received %q after the refused publish", m.payload)
		}
	})
	t.Run("same serial twice", func(t *testing.T) {
		t.Parallel()
		const thing = "ThingPrefix_twice"
		var certs []keyPair
		var policy string
		for i := range 2 {
			d := ts.mustConnect(t, claim)
			kp, token := provNewCertificate(t, d, "json", i == 1)
			accepted, reply := provRegister(t, d, "fleet", "json", provRequest(token, provParams("twice", "Seattle")))
			provWantAccepted(t, accepted, reply, thing, provSeattleURL)
			p := provCheckProvisioned(t, c, thing, kp.id)
			if policy != "" && p != policy {
				t.Fatalf("the second device got policy %s, the first %s", p, policy)
			}
			policy = p
			certs = append(certs, kp)
		}
		n := 0
		for _, th := range thingListAll(t, c, iot.ListThingsInput{}) {
			if aws.ToString(th.ThingName) == thing {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d things named %s", n, thing)
		}
		principals := provThingPrincipals(t, c, thing)
		slices.Sort(principals)
		want := []string{provCertARN(t, c, certs[0].id), provCertARN(t, c, certs[1].id)}
		slices.Sort(want)
		if !slices.Equal(principals, want) {
			t.Fatalf("thing %s has principals %v, want both certificates %v", thing, principals, want)
		}
		th, err := c.DescribeThing(context.Background(), &iot.DescribeThingInput{ThingName: aws.String(thing)})
		if err != nil {
			t.Fatal(err)
		}
		if th.Version != 1 {
			t.Fatalf("the second device changed the thing: version %d", th.Version)
		}
	})
}

// TestProvisioningRejections: every refused RegisterThing gets its rejected
// reply, on the requesting connection only, and leaves nothing behind.
func TestProvisioningRejections(t *testing.T) {
	t.Parallel()
	ts := provServer(t, nil)
	c := ts.iotClient()
	provFleetTemplate(t, c, "fleet", "")
	provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{TemplateName: aws.String("disabled"), TemplateBody: aws.String(provTemplateBody(t))})
	createJITPTemplate(t, c, "jitp")
	names := []string{"fleet", "disabled", "jitp", "ghost"}
	enfPolicy(t, c, "claim", provClaimPolicy(names...))
	claim, _ := enfCert(t, c, "claim")

	// A bystander with the same claim certificate listens on every reply
	// topic the tests use.
	bystander := ts.mustConnect(t, claim)
	var replyTopics []string
	for _, name := range names {
		for _, format := range []string{"json", "cbor"} {
			replyTopics = append(replyTopics, provTopic(name, format)+"/accepted", provTopic(name, format)+"/rejected")
		}
	}
	overheard := bystander.subscribe(t, replyTopics...)

	t.Run("token reused", func(t *testing.T) {
		d := ts.mustConnect(t, claim)
		kp, token := provNewCertificate(t, d, "json", false)
		accepted, reply := provRegister(t, d, "fleet", "json", provRequest(token, provParams("reused-1", "Seattle")))
		provWantAccepted(t, accepted, reply, "ThingPrefix_reused-1", provSeattleURL)
		before := provCount(t, c)
		accepted, reply = provRegister(t, d, "fleet", "json", provRequest(token, provParams("reused-2", "Seattle")))
		provWantRejected(t, accepted, reply, 400, "InvalidCertificateOwnershipToken")
		if after := provCount(t, c); after != before {
			t.Fatalf("a reused token changed things and policies from %+v to %+v", before, after)
		}
		arn := provCertARN(t, c, kp.id)
		if th := provPrincipalThings(t, c, arn); !slices.Equal(th, []string{"ThingPrefix_reused-1"}) {
			t.Fatalf("the certificate is attached to %v", th)
		}
		if p := provAttachedPolicies(t, c, arn); len(p) != 1 {
			t.Fatalf("the certificate has policies %+v", p)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, template, format string
			body                   func(token string) any
			status                 int
			code                   string
			message                string // the exact message, when set
			mentions               string // in the message, when set
		}{
			{name: "unknown template", template: "ghost", format: "json", status: 404, code: "ResourceNotFound", mentions: "ghost"},
			{name: "disabled template", template: "disabled", format: "json", status: 400, code: "InvalidRequest", mentions: "disabled"},
			{name: "JITP template", template: "jitp", format: "cbor", status: 400, code: "InvalidRequest", mentions: "JITP"},
			{name: "empty token", template: "fleet", format: "json", status: 400, code: "InvalidCertificateOwnershipToken",
				body: func(string) any { return provRequest("", provParams("empty", "Seattle")) }, message: "Certificate ownership token cannot be empty."},
			{name: "no token", template: "fleet", format: "cbor", status: 400, code: "InvalidCertificateOwnershipToken",
				body: func(string) any { return map[string]any{"parameters": provParams("none", "Seattle")} }, message: "Certificate ownership token cannot be empty."},
			{name: "garbage token", template: "fleet", format: "cbor", status: 400, code: "InvalidCertificateOwnershipToken",
				body: func(string) any { return provRequest("bm90IGEgdG9rZW4gYXQgYWxs", provParams("garbage", "Seattle")) }},
			{name: "missing SerialNumber", template: "fleet", format: "json", status: 400, code: "InvalidParameters", mentions: "SerialNumber",
				body: func(token string) any { return provRequest(token, map[string]string{"DeviceLocation": "Seattle"}) }},
			{name: "not JSON", template: "fleet", format: "json", status: 400, code: "InvalidRequest",
				body: func(token string) any { return []byte(`{"certificateOwnershipToken": "` + token + `", `) }},
			{name: "not CBOR", template: "fleet", format: "cbor", status: 400, code: "InvalidRequest",
				body: func(token string) any { return []byte{0xbf, 0x61} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				d := ts.mustConnect(t, claim)
				kp, token := provNewCertificate(t, d, tc.format, false)
				before := provCount(t, c)
				var body any = provRequest(token, provParams(strings.ReplaceAll(tc.name, " ", "-"), "Seattle"))
				if tc.body != nil {
					body = tc.body(token)
				}
				accepted, reply := provRegister(t, d, tc.template, tc.format, body)
				msg := provWantRejected(t, accepted, reply, tc.status, tc.code)
				if tc.message != "" && msg != tc.message {
					t.Fatalf("errorMessage %q, want %q", msg, tc.message)
				}
				if !strings.Contains(msg, tc.mentions) {
					t.Fatalf("errorMessage %q does not mention %s", msg, tc.mentions)
				}
				provUntouched(t, c, before, kp.id)
			})
		}
		t.Run("token of another account", func(t *testing.T) {
			t.Parallel()
			cB := ts.accountClient(t, testOtherAcct)
			enfPolicy(t, cB, "claim", provClaimPolicy("fleet"))
			provFleetTemplate(t, cB, "fleet", "")
			claimB, _ := enfCert(t, cB, "claim")
			dB, err := ts.connectAs(t, claimB, testOtherAcct)
			if err != nil {
				t.Fatal(err)
			}
			kpB, tokenB := provNewCertificate(t, dB, "json", false)
			before, beforeB := provCount(t, c), provCount(t, cB)
			d := ts.mustConnect(t, claim)
			accepted, reply := provRegister(t, d, "fleet", "json", provRequest(tokenB, provParams("stolen", "Seattle")))
			provWantRejected(t, accepted, reply, 400, "InvalidCertificateOwnershipToken")
			if after := provCount(t, c); after != before {
				t.Fatalf("another account's token changed things and policies from %+v to %+v", before, after)
			}
			provUntouched(t, cB, beforeB, kpB.id)
			// The token is still good in its own account.
			accepted, reply = provRegister(t, dB, "fleet", "json", provRequest(tokenB, provParams("own", "Seattle")))
			provWantAccepted(t, accepted, reply, "ThingPrefix_own", provSeattleURL)
		})
	})

	// Every reply went to its requester: had one reached the bystander, it
	// would be queued before the reply to the bystander's own request.
	kp, token := provNewCertificate(t, bystander, "json", false)
	bystander.publish(t, provTopic("fleet", "json"), encodeAs(t, "json", provRequest(token, provParams("bystander", "Seattle"))))
	m := receive(t, overheard)
	reply := decodeAs(t, "json", m.Payload())
	if m.Topic() != provTopic("fleet", "json")+"/accepted" || reply["thingName"] != "ThingPrefix_bystander" {
		t.Fatalf("the bystander overheard another device's reply on %s: %s", m.Topic(), m.Payload())
	}
	provWantAccepted(t, true, reply, "ThingPrefix_bystander", provSeattleURL)
	provCheckProvisioned(t, c, "ThingPrefix_bystander", kp.id)
}

// provHookEvent is the event AWS sends a pre-provisioning hook.
type provHookEvent struct {
	ClaimCertificateID string            `json:"claimCertificateId"`
	CertificateID      string            `json:"certificateId"`
	CertificatePEM     string            `json:"certificatePem"`
	TemplateARN        string            `json:"templateArn"`
	ClientID           string            `json:"clientId"`
	Parameters         map[string]string `json:"parameters"`
}

// provHooks are pre-provisioning hooks served through lambdalocal, which
// record the events they receive.
type provHooks struct {
	mu     sync.Mutex
	events map[string][]provHookEvent // by function
}

func (h *provHooks) record(function string, ev provHookEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events[function] = append(h.events[function], ev)
}

// received returns the events of the function for the certificate.
func (h *provHooks) received(function, certificateID string) []provHookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []provHookEvent
	for _, ev := range h.events[function] {
		if ev.CertificateID == certificateID {
			out = append(out, ev)
		}
	}
	return out
}

// provHookAllow is the answer of a hook that allows and moves the device to
// Seattle.
var provHookAllow = map[string]any{"allowProvisioning": true, "parameterOverrides": map[string]string{"DeviceLocation": "Seattle"}}

func (h *provHooks) functions() map[string]any {
	return map[string]any{
		"allow": func(_ context.Context, ev provHookEvent) (map[string]any, error) {
			h.record("allow", ev)
			return provHookAllow, nil
		},
		"deny": func(_ context.Context, ev provHookEvent) (map[string]any, error) {
			h.record("deny", ev)
			return map[string]any{"allowProvisioning": false}, nil
		},
		"fail": func(_ context.Context, ev provHookEvent) (map[string]any, error) {
			h.record("fail", ev)
			return nil, errors.New("the device registry is unreachable")
		},
		"malformed": func(_ context.Context, ev provHookEvent) (string, error) {
			h.record("malformed", ev)
			return "allow", nil
		},
		// slow would allow, after twice the five seconds a hook has; it
		// returns as soon as the call is abandoned.
		"slow": func(ctx context.Context, ev provHookEvent) (map[string]any, error) {
			h.record("slow", ev)
			select {
			case <-time.After(10 * time.Second):
				return provHookAllow, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
}

func provHookARN(function string) string {
	return "arn:aws:lambda:" + testRegion + ":" + testAccount + ":function:" + function
}

// provLambdaCredentials gives the server's Lambda client credentials to
// sign with (lambdalocal does not check them). The server reads them from
// the environment when it starts, so the test cannot be parallel; its
// subtests are.
func provLambdaCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALLAMBDA")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-lambda-secret")
}

// TestProvisioningHooks: a template's pre-provisioning hook, a Lambda
// function invoked for real, receives AWS's event and decides: its
// parameter overrides win over the device's, and a denial, an error, a
// malformed answer or no answer within five seconds refuse the device with
// 403 AccessDenied, leaving nothing behind.
func TestProvisioningHooks(t *testing.T) {
	hooks := &provHooks{events: map[string][]provHookEvent{}}
	fn := lambdatest.NewServer(t, hooks.functions())
	provLambdaCredentials(t)
	ts := provServer(t, func(cfg *config.Config) { cfg.LambdaEndpoint = fn.URL })
	c := ts.iotClient()
	functions := []string{"allow", "deny", "fail", "malformed", "slow"}
	var templates []string
	for _, f := range functions {
		provFleetTemplate(t, c, "hook-"+f, provHookARN(f))
		templates = append(templates, "hook-"+f)
	}
	enfPolicy(t, c, "claim", provClaimPolicy(templates...))
	claim, _ := enfCert(t, c, "claim")

	// First, while nothing else changes the registry, the one that allows.
	t.Run("allow with overrides", func(t *testing.T) {
		d, err := ts.connect(t, claim, "hooked-device")
		if err != nil {
			t.Fatal(err)
		}
		kp, token := provNewCertificate(t, d, "json", false)
		// The device says Portland; the hook moves it to Seattle.
		accepted, reply := provRegister(t, d, "hook-allow", "json", provRequest(token, provParams("hooked", "Portland")))
		provWantAccepted(t, accepted, reply, "ThingPrefix_hooked", provSeattleURL)
		provCheckProvisioned(t, c, "ThingPrefix_hooked", kp.id)
		events := hooks.received("allow", kp.id)
		if len(events) != 1 {
			t.Fatalf("the hook was invoked %d times for the certificate", len(events))
		}
		ev := events[0]
		if ev.ClaimCertificateID != claim.id || ev.CertificateID != kp.id || ev.ClientID != "hooked-device" ||
			ev.TemplateARN != "arn:aws:iot:"+testRegion+":"+testAccount+":provisioningtemplate/hook-allow" ||
			!reflect.DeepEqual(ev.Parameters, provParams("hooked", "Portland")) {
			t.Fatalf("the hook received %+v", ev)
		}
		if sent := parseCertPEM(t, ev.CertificatePEM); !sent.Equal(parseCertPEM(t, kp.certPEM)) {
			t.Fatal("the hook received another certificate's PEM")
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct{ function, mentions string }{
			{"deny", "did not allow"},
			{"fail", "raised an error"},
			{"malformed", "allowProvisioning"},
			{"slow", "5 seconds"},
		} {
			t.Run(tc.function, func(t *testing.T) {
				t.Parallel()
				d := ts.mustConnect(t, claim)
				kp, token := provNewCertificate(t, d, "json", false)
				before := provCount(t, c)
				accepted, reply := provRegister(t, d, "hook-"+tc.function, "json", provRequest(token, provParams("refused-"+tc.function, "Seattle")))
				if msg := provWantRejected(t, accepted, reply, 403, "AccessDenied"); !strings.Contains(msg, tc.mentions) {
					t.Fatalf("errorMessage %q does not say %q", msg, tc.mentions)
				}
				if n := len(hooks.received(tc.function, kp.id)); n != 1 {
					t.Fatalf("the hook was invoked %d times for the certificate", n)
				}
				provUntouched(t, c, before, kp.id)
			})
		}
	})
}

// TestProvisioningProviderRegisterThing: with a certificate provider (the
// example function behind lambdalocal) as the account's signer,
// CreateCertificateFromCsr over MQTT is signed by the provider's CA, and
// RegisterThing then provisions and activates that certificate.
func TestProvisioningProviderRegisterThing(t *testing.T) {
	pca := testpki.NewRoot(t, "p256", "Provider CA")
	example, err := signer.New([]byte(pca.PEM), []byte(pca.KeyPEM(t)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fn := lambdatest.NewServer(t, map[string]any{"signer": example.Handle})
	provLambdaCredentials(t)
	ts := provServer(t, func(cfg *config.Config) { cfg.LambdaEndpoint = fn.URL })
	c := ts.iotClient()
	if _, err := c.CreateCertificateProvider(context.Background(), createProvider("signer", provHookARN("signer"), "")); err != nil {
		t.Fatal(err)
	}
	provFleetTemplate(t, c, "fleet", "")
	enfPolicy(t, c, "claim", provClaimPolicy("fleet"))
	claim, _ := enfCert(t, c, "claim")
	d, err := ts.connect(t, claim, "provider-claim")
	if err != nil {
		t.Fatal(err)
	}
	kp, token := provNewCertificate(t, d, "json", true)
	if fn.Calls.Load() != 1 {
		t.Fatalf("the provider was invoked %d times", fn.Calls.Load())
	}
	leaf, err := x509.ParseCertificate(kp.tls.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.CheckSignatureFrom(pca.Cert) != nil {
		t.Fatalf("issued by %s, not signed by the provider's CA", leaf.Issuer)
	}
	// The provider's signature has its audit record, asked by the claim.
	var recorded bool
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		var r struct {
			Msg, Profile, Issuer, Outcome string
			CertificateID                 string `json:"certificate_id"`
			Requester                     struct {
				Operation string
				Device    string `json:"device_certificate_id"`
			}
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == "audit" && r.Profile == "provider" {
			recorded = r.Issuer == provHookARN("signer") && r.Outcome == "signed" && r.CertificateID == kp.id &&
				r.Requester.Operation == "CreateCertificateFromCsr" && r.Requester.Device == claim.id
		}
	}
	if !recorded {
		t.Error("no audit record of the provider's signature, asked by the claim")
	}
	status, desc := describeStatus(t, c, kp.id)
	if status != types.CertificateStatusPendingActivation || desc.CertificateMode != types.CertificateModeSniOnly {
		t.Fatalf("the provider's certificate is %s %s", status, desc.CertificateMode)
	}
	accepted, reply := provRegister(t, d, "fleet", "json", provRequest(token, provParams("provider", "Seattle")))
	provWantAccepted(t, accepted, reply, "ThingPrefix_provider", provSeattleURL)
	provCheckProvisioned(t, c, "ThingPrefix_provider", kp.id)
	// SNI_ONLY: the device names its account.
	provPublishes3(t, ts, c, kp, "ThingPrefix_provider", func(o *paho.ClientOptions) { o.TLSConfig.ServerName = testAccount + ".localhost" })
}

// provJITPLeaf issues a device certificate from ca with the common name and
// country US.
func provJITPLeaf(t testing.TB, ca *testpki.CA, cn string) keyPair {
	t.Helper()
	key := testpki.Key(t, "p256")
	_, p := testpki.Sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: cn, Country: []string{"US"}}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.Cert, key.Public(), ca.Key)
	return newKeyPair(t, p, testpki.KeyPEM(t, key))
}

// provJITPCA registers ca ACTIVE with auto-registration and the
// registration config.
func provJITPCA(t testing.TB, c *iot.Client, ca *testpki.CA, rc *types.RegistrationConfig) string {
	t.Helper()
	out, err := c.RegisterCACertificate(context.Background(), &iot.RegisterCACertificateInput{
		CaCertificate: aws.String(ca.PEM), VerificationCertificate: aws.String(ca.Verification(t, registrationCode(t, c))),
		SetAsActive: true, AllowAutoRegistration: true, RegistrationConfig: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateId)
}

// TestJITProvisioning: a device certificate of a CA whose registration
// config has a JITP template is refused on its first connection, which
// provisions it — thing <CN> with the certificate's country, the
// certificate ACTIVE, attached to the thing and to a policy, the
// registration event published — and admitted on the next one. A template
// that cannot run registers the certificate just in time instead.
func TestJITProvisioning(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	listener := ts.mustConnect(t, ts.claim(t, c))
	createJITPTemplate(t, c, "jitp-named")

	for _, tc := range []struct{ name, cn string }{{"templateBody", "jitp-body-device"}, {"templateName", "jitp-named-device"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := testpki.NewRoot(t, "p256", "JITP Root "+tc.name)
			rc := &types.RegistrationConfig{TemplateBody: aws.String(jitpTemplateBody), RoleArn: aws.String(provRoleARN)}
			if tc.name == "templateName" {
				rc = &types.RegistrationConfig{TemplateName: aws.String("jitp-named")}
			}
			caID := provJITPCA(t, c, ca, rc)
			events := listener.subscribe(t, "$aws/events/certificates/registered/"+caID)
			kp := provJITPLeaf(t, ca, tc.cn)
			if _, err := ts.connect(t, kp, tc.cn); err == nil {
				t.Fatal("the first connection of an unknown certificate was admitted")
			}
			var ev map[string]any
			if err := json.Unmarshal(receive(t, events).Payload(), &ev); err != nil {
				t.Fatal(err)
			}
			if ev["certificateId"] != kp.id || ev["caCertificateId"] != caID || ev["awsAccountId"] != testAccount {
				t.Fatalf("registration event %v", ev)
			}
			th, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(tc.cn)})
			if err != nil {
				t.Fatalf("DescribeThing %s: %v", tc.cn, err)
			}
			if want := map[string]string{"version": "v1", "country": "US"}; !reflect.DeepEqual(th.Attributes, want) {
				t.Fatalf("thing attributes %v, want %v", th.Attributes, want)
			}
			status, d := describeStatus(t, c, kp.id)
			if status != types.CertificateStatusActive || aws.ToString(d.CaCertificateId) != caID {
				t.Fatalf("the certificate is %s under %s", status, aws.ToString(d.CaCertificateId))
			}
			arn := aws.ToString(d.CertificateArn)
			if p := provThingPrincipals(t, c, tc.cn); !slices.Equal(p, []string{arn}) {
				t.Fatalf("thing principals %v", p)
			}
			if p := provAttachedPolicies(t, c, arn); len(p) != 1 || !provPolicyName.MatchString(aws.ToString(p[0].PolicyName)) {
				t.Fatalf("the certificate has policies %+v", p)
			}
			dev, err := ts.connect(t, kp, tc.cn)
			if err != nil {
				t.Fatalf("the second connection: %v", err)
			}
			dev.publish(t, "jitp/"+tc.cn, []byte("provisioned"))
		})
	}
	// A template that cannot run (disabled here) provisions nothing: the
	// certificate is registered just in time instead, waiting for
	// activation, and the event published, as AWS's JITP leaves a
	// certificate whose template failed.
	t.Run("disabled template", func(t *testing.T) {
		t.Parallel()
		provCreateTemplate(t, c, iot.CreateProvisioningTemplateInput{
			TemplateName: aws.String("jitp-disabled"), TemplateBody: aws.String(jitpTemplateBody), Type: types.TemplateTypeJitp,
		})
		ca := testpki.NewRoot(t, "p256", "JITP Root disabled")
		caID := provJITPCA(t, c, ca, &types.RegistrationConfig{TemplateName: aws.String("jitp-disabled")})
		events := listener.subscribe(t, "$aws/events/certificates/registered/"+caID)
		kp := provJITPLeaf(t, ca, "jitp-disabled-device")
		for attempt := 1; attempt <= 2; attempt++ {
			if _, err := ts.connect(t, kp, ""); err == nil {
				t.Fatalf("attempt %d: admitted", attempt)
			}
			var ev map[string]any
			if err := json.Unmarshal(receive(t, events).Payload(), &ev); err != nil || ev["certificateId"] != kp.id || ev["certificateStatus"] != "PENDING_ACTIVATION" {
				t.Fatalf("attempt %d: registration event %v (%v)", attempt, ev, err)
			}
		}
		status, d := describeStatus(t, c, kp.id)
		if status != types.CertificateStatusPendingActivation || aws.ToString(d.CaCertificateId) != caID {
			t.Fatalf("the certificate is %s under %s, want PENDING_ACTIVATION under %s", status, aws.ToString(d.CaCertificateId), caID)
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("jitp-disabled-device")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("the thing was made: %v", err)
		}
		if p := provAttachedPolicies(t, c, aws.ToString(d.CertificateArn)); len(p) != 0 {
			t.Fatalf("the certificate has policies %+v", p)
		}
		// Enabled, the template runs at the device's next connection: the
		// certificate waiting for activation is provisioned, and the one
		// after is admitted.
		if _, err := c.UpdateProvisioningTemplate(ctx, &iot.UpdateProvisioningTemplateInput{TemplateName: aws.String("jitp-disabled"), Enabled: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatal("the connection that provisions was admitted")
		}
		if status, _ := describeStatus(t, c, kp.id); status != types.CertificateStatusActive {
			t.Fatalf("after the template ran: %s", status)
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("jitp-disabled-device")}); err != nil {
			t.Fatalf("the thing: %v", err)
		}
		if _, err := ts.connect(t, kp, "jitp-disabled-device"); err != nil {
			t.Fatalf("the connection after provisioning: %v", err)
		}
	})
	// A subject without the field the template needs: the same.
	t.Run("subject without the country", func(t *testing.T) {
		t.Parallel()
		ca := testpki.NewRoot(t, "p256", "JITP Root no country")
		provJITPCA(t, c, ca, &types.RegistrationConfig{TemplateBody: aws.String(jitpTemplateBody), RoleArn: aws.String(provRoleARN)})
		key := testpki.Key(t, "p256")
		_, p := testpki.Sign(t, &x509.Certificate{
			Subject: pkix.Name{CommonName: "jitp-stateless-device"}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca.Cert, key.Public(), ca.Key)
		kp := newKeyPair(t, p, testpki.KeyPEM(t, key))
		if _, err := ts.connect(t, kp, ""); err == nil {
			t.Fatal("admitted")
		}
		if status, _ := describeStatus(t, c, kp.id); status != types.CertificateStatusPendingActivation {
			t.Fatalf("the certificate is %s, want PENDING_ACTIVATION", status)
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("jitp-stateless-device")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("the thing was made: %v", err)
		}
	})
}

// TestProvisioningReplicas: two replicas on one PostgreSQL database, a
// device on each, provision the same serial number at the same moment:
// both are accepted, and there is one thing with both certificates.
func TestProvisioningReplicas(t *testing.T) {
	t.Parallel()
	replicas := startReplicas(t, 2, func(c *config.Config) { c.MQTTProvisioningRate, c.MQTTProvisioningBurst = 1000, 1000 })
	c := replicas[0].iotClient()
	provFleetTemplate(t, c, "fleet", "")
	enfPolicy(t, c, "claim", provClaimPolicy("fleet"))
	claim, _ := enfCert(t, c, "claim")
	topic := provTopic("fleet", "json")
	const rounds = 3
	var policies []string
	for round := range rounds {
		serial := fmt.Sprint("shared-", round)
		thing := "ThingPrefix_" + serial
		var devices [2]*device
		var certs [2]keyPair
		var replies [2]<-chan paho.Message
		var payloads [2][]byte
		for i, ts := range replicas {
			devices[i] = ts.mustConnect(t, claim)
			kp, token := provNewCertificate(t, devices[i], "json", false)
			certs[i], payloads[i] = kp, encodeAs(t, "json", provRequest(token, provParams(serial, "Seattle")))
			replies[i] = devices[i].subscribe(t, topic+"/accepted", topic+"/rejected")
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		var errs [2]error
		for i := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tok := devices[i].Publish(topic, 1, false, payloads[i])
				if !tok.WaitTimeout(waitLimit) {
					errs[i] = errors.New("no PUBACK")
				} else {
					errs[i] = tok.Error()
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range devices {
			if errs[i] != nil {
				t.Fatalf("round %d: replica %d: publish: %v", round, i, errs[i])
			}
			m := receive(t, replies[i])
			provWantAccepted(t, m.Topic() == topic+"/accepted", decodeAs(t, "json", m.Payload()), thing, provSeattleURL)
		}
		want := []string{}
		for i, kp := range certs {
			// Each replica sees what both did.
			policies = append(policies, provCheckProvisioned(t, replicas[i].iotClient(), thing, kp.id))
			want = append(want, provCertARN(t, c, kp.id))
		}
		got := provThingPrincipals(t, replicas[1].iotClient(), thing)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: thing %s has principals %v, want %v", round, thing, got, want)
		}
	}
	if n := len(thingListAll(t, c, iot.ListThingsInput{})); n != rounds {
		t.Fatalf("%d things after %d rounds of one serial number each", n, rounds)
	}
	for _, p := range policies {
		if p != policies[0] {
			t.Fatalf("the devices got different policies: %v", policies)
		}
	}
	if s := provCount(t, c); s.policies != 2 {
		t.Fatalf("%d policies, want the claim policy and one provisioned policy", s.policies)
	}
}
