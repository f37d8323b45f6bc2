package template

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
)

// sdkSampleTemplate is the fleet-provisioning template of the AWS IoT
// Device SDK v2 sample (samples/service_clients/fleet_provisioning_basic.md
// of aws-iot-device-sdk-python-v2), as the spec's §2.8 uses it; the
// server's and the device SDK's end-to-end tests read the same file.
var sdkSampleTemplate = func() string {
	b, err := os.ReadFile("testdata/sdk-sample-template.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// sdkSamplePolicy is the sample's policy document, minified by hand.
const sdkSamplePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect","iot:Subscribe","iot:Publish","iot:Receive"],"Resource":"*"}]}`

// cliExample is the template of the AWS CLI's create-provisioning-template
// example (awscli/examples/iot/create-provisioning-template.rst) as
// printed: it references SerialNumber without declaring it, and it ends with
// one closing brace too many (as does dgFleetExample), which is not JSON.
const cliExample = `{
    "Parameters" : {
        "DeviceLocation": {
            "Type": "String"
        }
    },
    "Mappings": {
        "LocationTable": {
            "Seattle": {
                "LocationUrl": "https://example.aws"
            }
        }
    },
    "Resources" : {
        "thing" : {
            "Type" : "AWS::IoT::Thing",
            "Properties" : {
                "AttributePayload" : {
                    "version" : "v1",
                    "serialNumber" : "serialNumber"
                },
                "ThingName" : {"Fn::Join":["",["ThingPrefix_",{"Ref":"SerialNumber"}]]},
                "ThingTypeName" : {"Fn::Join":["",["ThingTypePrefix_",{"Ref":"SerialNumber"}]]},
                "ThingGroups" : ["widgets", "WA"],
                "BillingGroup": "BillingGroup"
            },
            "OverrideSettings" : {
                "AttributePayload" : "MERGE",
                "ThingTypeName" : "REPLACE",
                "ThingGroups" : "DO_NOTHING"
            }
        },
        "certificate" : {
            "Type" : "AWS::IoT::Certificate",
            "Properties" : {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status" : "Active"
            }
        },
        "policy" : {
            "Type" : "AWS::IoT::Policy",
            "Properties" : {
                "PolicyDocument" : {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action":["iot:Publish"],
                        "Resource": ["arn:aws:iot:us-east-1:504350838278:topic/foo/bar"]
                    }]
                }
            }
        }
    },
    "DeviceConfiguration": {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": {
            "Fn::FindInMap": ["LocationTable",{"Ref": "DeviceLocation"}, "LocationUrl"]}
        }
    }
}`

// dgFleetExample is the fleet-provisioning example of the developer guide
// (provision-template.md) as printed, which has no ThingName.
const dgFleetExample = `{
    "Parameters" : {
        "SerialNumber": {
            "Type": "String"
        },
        "DeviceLocation": {
            "Type": "String"
        }
    },
    "Mappings": {
        "LocationTable": {
            "Seattle": {
                "LocationUrl": "https://example.aws"
            }
        }
    },
    "Resources" : {
        "thing" : {
            "Type" : "AWS::IoT::Thing",
            "Properties" : {
                "AttributePayload" : { 
                    "version" : "v1",
                    "serialNumber" : "serialNumber"
                },
                "ThingTypeName" : {"Fn::Join":["",["ThingPrefix_",{"Ref":"SerialNumber"}]]},
                "ThingGroups" : ["v1-lightbulbs", "WA"],
                "BillingGroup": "LightBulbBillingGroup"
            },
            "OverrideSettings" : {
                "AttributePayload" : "MERGE",
                "ThingTypeName" : "REPLACE",
                "ThingGroups" : "DO_NOTHING"
            }
        },
        "certificate" : {
            "Type" : "AWS::IoT::Certificate",
            "Properties" : {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status" : "Active"
            }
        },
        "policy" : {
            "Type" : "AWS::IoT::Policy",
            "Properties" : {
                "PolicyDocument" : {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Action":["iot:Publish"],
                        "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"]
                    }]
                }
            }
        }
    },
    "DeviceConfiguration": {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": {
            "Fn::FindInMap": ["LocationTable",{"Ref": "DeviceLocation"}, "LocationUrl"]}
        }
    }
}`

// cliTemplate and dgFleetTemplate are the examples without their stray
// closing brace.
var (
	cliTemplate     = strings.TrimSuffix(cliExample, "\n}")
	dgFleetTemplate = strings.TrimSuffix(dgFleetExample, "\n}")
)

// jitpRegistrationConfig is the JITP guide's registrationConfig
// (jit-provisioning.md, the copy-and-paste version), whose templateBody is
// the template as an escaped string and whose policy document is itself a
// string inside it.
const jitpRegistrationConfig = `{ 
      "templateBody" : "{\r\n    \"Parameters\" : {\r\n        \"AWS::IoT::Certificate::CommonName\": {\r\n            \"Type\": \"String\"\r\n        },\r\n        \"AWS::IoT::Certificate::SerialNumber\": {\r\n            \"Type\": \"String\"\r\n        },\r\n        \"AWS::IoT::Certificate::Country\": {\r\n            \"Type\": \"String\"\r\n        },\r\n        \"AWS::IoT::Certificate::Id\": {\r\n            \"Type\": \"String\"\r\n        }\r\n    },\r\n    \"Resources\": {\r\n        \"thing\": {\r\n            \"Type\": \"AWS::IoT::Thing\",\r\n            \"Properties\": {\r\n                \"ThingName\": {\r\n                    \"Ref\": \"AWS::IoT::Certificate::CommonName\"\r\n                },\r\n                \"AttributePayload\": {\r\n                    \"version\": \"v1\",\r\n                    \"serialNumber\": {\r\n                        \"Ref\": \"AWS::IoT::Certificate::SerialNumber\"\r\n                    }\r\n                },\r\n                \"ThingTypeName\": \"lightBulb-versionA\",\r\n                \"ThingGroups\": [\r\n                    \"v1-lightbulbs\",\r\n                    {\r\n                        \"Ref\": \"AWS::IoT::Certificate::Country\"\r\n                    }\r\n                ]\r\n            },\r\n            \"OverrideSettings\": {\r\n                \"AttributePayload\": \"MERGE\",\r\n                \"ThingTypeName\": \"REPLACE\",\r\n                \"ThingGroups\": \"DO_NOTHING\"\r\n            }\r\n        },\r\n        \"certificate\": {\r\n            \"Type\": \"AWS::IoT::Certificate\",\r\n            \"Properties\": {\r\n                \"CertificateId\": {\r\n                    \"Ref\": \"AWS::IoT::Certificate::Id\"\r\n                },\r\n                \"Status\": \"ACTIVE\"\r\n            },\r\n            \"OverrideSettings\": {\r\n                \"Status\": \"DO_NOTHING\"\r\n            }\r\n        },\r\n        \"policy\": {\r\n            \"Type\": \"AWS::IoT::Policy\",\r\n            \"Properties\": {\r\n                \"PolicyDocument\": \"{ \\\"Version\\\": \\\"2012-10-17\\\", \\\"Statement\\\": [{ \\\"Effect\\\": \\\"Allow\\\", \\\"Action\\\":[\\\"iot:Publish\\\"], \\\"Resource\\\": [\\\"arn:aws:iot:us-east-1:123456789012:topic\/foo\/bar\\\"] }] }\"\r\n            }\r\n        }\r\n    }\r\n}",
      "roleArn" : "arn:aws:iam::123456789012:role/JITPRole"
    }`

// jitpTemplate is the templateBody of jitpRegistrationConfig.
func jitpTemplate(t testing.TB) string {
	t.Helper()
	var rc struct{ TemplateBody string }
	if err := json.Unmarshal([]byte(jitpRegistrationConfig), &rc); err != nil {
		t.Fatal(err)
	}
	return rc.TemplateBody
}

// policyNameTemplate is a bulk-registration template that attaches an
// existing policy by name and makes its certificate from a CSR.
const policyNameTemplate = `{
    "Parameters" : {
        "ThingName" : {"Type" : "String"},
        "Location" : {"Type" : "String", "Default" : "WA"},
        "CSR" : {"Type" : "String"}
    },
    "Resources" : {
        "thing" : {
            "Type" : "AWS::IoT::Thing",
            "Properties" : {
                "ThingName" : {"Ref" : "ThingName"},
                "ThingGroups" : ["v1-lightbulbs", {"Ref" : "Location"}]
            }
        },
        "certificate" : {
            "Type" : "AWS::IoT::Certificate",
            "Properties" : {
                "CertificateSigningRequest": {"Ref" : "CSR"},
                "Status" : "INACTIVE"
            }
        },
        "policy" : {
            "Type" : "AWS::IoT::Policy",
            "Properties" : {
                "PolicyName" : "LightBulbPolicy"
            }
        }
    }
}`

func mustParse(t testing.TB, body string) *Template {
	t.Helper()
	tp, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, body)
	}
	return tp
}

func mustEvaluate(t testing.TB, tp *Template, params map[string]string) *Plan {
	t.Helper()
	plan, err := tp.Evaluate(params)
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	return plan
}

func sha1Upper(s string) string { return fmt.Sprintf("%X", sha1.Sum([]byte(s))) }

// TestSDKSample is the worked example of the spec's §2.8.
func TestSDKSample(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, sdkSampleTemplate)
	certID := strings.Repeat("0123456789abcdef", 4)
	plan := mustEvaluate(t, tp, map[string]string{
		"SerialNumber": "1", "DeviceLocation": "Seattle", ParamCertificateID: certID,
	})
	want := &Plan{
		Thing: &ThingPlan{
			LogicalID:  "thing",
			Name:       "ThingPrefix_1",
			Attributes: map[string]string{"version": "v1", "serialNumber": "serialNumber"},
			Override:   ThingOverride{Attributes: Merge, TypeName: Replace, Groups: DoNothing},
		},
		Certificate: &CertificatePlan{
			LogicalID:      "certificate",
			CertificateID:  certID,
			Status:         "ACTIVE",
			StatusOverride: Replace,
		},
		Policies: []PolicyPlan{{
			LogicalID: "policy",
			Name:      sha1Upper(sdkSamplePolicy),
			Document:  sdkSamplePolicy,
		}},
		DeviceConfiguration: map[string]string{
			"FallbackUrl": "https://www.example.com/test-site",
			"LocationUrl": "https://example.aws",
		},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", dump(plan), dump(want))
	}

	wantParams := []Parameter{{Name: ParamCertificateID}, {Name: "DeviceLocation"}, {Name: "SerialNumber"}}
	if got := tp.Parameters(); !reflect.DeepEqual(got, wantParams) {
		t.Errorf("Parameters() = %v, want %v", got, wantParams)
	}
	if got := tp.StaticPolicyDocuments(); !reflect.DeepEqual(got, map[string]string{"policy": sdkSamplePolicy}) {
		t.Errorf("StaticPolicyDocuments() = %v", got)
	}
	if !tp.UsesCertificateID() {
		t.Error("UsesCertificateID() = false")
	}

	// A device in a place the map does not know fails, naming the map.
	_, err := tp.Evaluate(map[string]string{"SerialNumber": "1", "DeviceLocation": "Portland", ParamCertificateID: certID})
	wantError(t, err, "DeviceConfiguration.LocationUrl", `map LocationTable has no key "Portland"`)
	// As does one that leaves out a parameter.
	_, err = tp.Evaluate(map[string]string{"DeviceLocation": "Seattle", ParamCertificateID: certID})
	wantError(t, err, "Resources.thing.Properties.ThingName.Fn::Join[1][1]", "parameter SerialNumber has no value")
}

// TestJITPGuide is the developer guide's JITP template, evaluated with the
// parameters of a device certificate.
func TestJITPGuide(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, jitpTemplate(t))
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"]}]}`
	if got := tp.StaticPolicyDocuments(); !reflect.DeepEqual(got, map[string]string{"policy": doc}) {
		t.Errorf("StaticPolicyDocuments() = %v", got)
	}
	if !tp.UsesCertificateID() {
		t.Error("UsesCertificateID() = false")
	}
	certID := strings.Repeat("fe", 32)
	subject := pkix.Name{CommonName: "lightbulb-0042", SerialNumber: "SN0042", Country: []string{"US", "DE"}, Organization: []string{"Example Corp"}}
	plan := mustEvaluate(t, tp, CertificateParameters(certID, subject))
	want := &Plan{
		Thing: &ThingPlan{
			LogicalID:  "thing",
			Name:       "lightbulb-0042",
			Attributes: map[string]string{"version": "v1", "serialNumber": "SN0042"},
			TypeName:   "lightBulb-versionA",
			Groups:     []string{"v1-lightbulbs", "US"},
			Override:   ThingOverride{Attributes: Merge, TypeName: Replace, Groups: DoNothing},
		},
		Certificate:         &CertificatePlan{LogicalID: "certificate", CertificateID: certID, Status: "ACTIVE", StatusOverride: DoNothing},
		Policies:            []PolicyPlan{{LogicalID: "policy", Name: sha1Upper(doc), Document: doc}},
		DeviceConfiguration: map[string]string{},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", dump(plan), dump(want))
	}

	// A certificate without a Country cannot be provisioned: AWS answers
	// "Cannot resolve reference value: {Ref=AWS::IoT::Certificate::Country}".
	subject.Country = nil
	_, err := tp.Evaluate(CertificateParameters(certID, subject))
	wantError(t, err, "Resources.thing.Properties.ThingGroups[1]", "parameter AWS::IoT::Certificate::Country has no value")
}

// TestPolicyNameTemplate attaches an existing policy and makes its
// certificate from a CSR.
func TestPolicyNameTemplate(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, policyNameTemplate)
	if tp.UsesCertificateID() {
		t.Error("UsesCertificateID() = true for a CSR")
	}
	if got := tp.StaticPolicyDocuments(); len(got) != 0 {
		t.Errorf("StaticPolicyDocuments() = %v, want none", got)
	}
	wantParams := []Parameter{{Name: "CSR"}, {Name: "Location", Default: "WA", HasDefault: true}, {Name: "ThingName"}}
	if got := tp.Parameters(); !reflect.DeepEqual(got, wantParams) {
		t.Errorf("Parameters() = %v, want %v", got, wantParams)
	}
	plan := mustEvaluate(t, tp, map[string]string{"ThingName": "bulb-7", "CSR": "-----BEGIN CERTIFICATE REQUEST-----"})
	want := &Plan{
		Thing: &ThingPlan{
			LogicalID: "thing",
			Name:      "bulb-7",
			Groups:    []string{"v1-lightbulbs", "WA"},
			Override:  ThingOverride{Attributes: DoNothing, TypeName: DoNothing, Groups: DoNothing},
		},
		Certificate:         &CertificatePlan{LogicalID: "certificate", CSR: "-----BEGIN CERTIFICATE REQUEST-----", Status: "INACTIVE", StatusOverride: DoNothing},
		Policies:            []PolicyPlan{{LogicalID: "policy", Name: "LightBulbPolicy"}},
		DeviceConfiguration: map[string]string{},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", dump(plan), dump(want))
	}
}

// TestCLITemplate: the CLI example references SerialNumber without
// declaring it, which fleetca refuses at create time.
func TestCLITemplate(t *testing.T) {
	t.Parallel()
	_, err := Parse(cliTemplate)
	wantError(t, err, "Resources.thing.Properties.ThingName.Fn::Join[1][1]", "Ref to undeclared parameter SerialNumber; declare it in Parameters")
	if err.Error() != "Resources.thing.Properties.ThingName.Fn::Join[1][1]: Ref to undeclared parameter SerialNumber; declare it in Parameters" {
		t.Errorf("Error() = %q", err.Error())
	}
	// As printed, the example is not even JSON.
	_, err = Parse(cliExample)
	wantError(t, err, "", "there is more after its closing brace")
	// Declaring it is enough.
	fixed := strings.Replace(cliTemplate, `"DeviceLocation": {`, `"SerialNumber": {"Type": "String"}, "DeviceLocation": {`, 1)
	plan := mustEvaluate(t, mustParse(t, fixed), map[string]string{"SerialNumber": "7", "DeviceLocation": "Seattle", ParamCertificateID: "abc"})
	th := plan.Thing
	if th.Name != "ThingPrefix_7" || th.TypeName != "ThingTypePrefix_7" || th.BillingGroup != "BillingGroup" ||
		!reflect.DeepEqual(th.Groups, []string{"widgets", "WA"}) {
		t.Errorf("thing = %s", dump(th))
	}
}

// TestDeveloperGuideFleetExample: the guide's fleet example has no
// ThingName; it parses, and the plan's empty name is the registry's to
// refuse.
func TestDeveloperGuideFleetExample(t *testing.T) {
	t.Parallel()
	plan := mustEvaluate(t, mustParse(t, dgFleetTemplate), map[string]string{"SerialNumber": "9", "DeviceLocation": "Seattle", ParamCertificateID: "abc"})
	if th := plan.Thing; th.Name != "" || th.TypeName != "ThingPrefix_9" || th.BillingGroup != "LightBulbBillingGroup" {
		t.Errorf("thing = %s", dump(th))
	}
}

// TestPolicyNameIsSHA1 checks the generated name against SHA-1 computed
// here of a document minified by hand, for the document given as an
// object, as a string (with other white space) and through Fn::Sub.
func TestPolicyNameIsSHA1(t *testing.T) {
	t.Parallel()
	const minified = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}`
	sum := sha1.Sum([]byte(minified))
	want := strings.ToUpper(fmt.Sprintf("%x", sum))
	if len(want) != 40 {
		t.Fatalf("want %q", want)
	}
	if got := PolicyName(minified); got != want {
		t.Errorf("PolicyName = %s, want %s", got, want)
	}
	object := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [ {\n    \"Effect\": \"Allow\",\n    \"Action\": \"iot:Connect\",\n    \"Resource\": \"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}\"\n  } ]\n}"
	quoted, _ := json.Marshal(object)
	sub, _ := json.Marshal(strings.Replace(object, "${iot:", "${!iot:", 1))
	for name, doc := range map[string]string{"object": object, "string": string(quoted), "Fn::Sub": `{"Fn::Sub": ` + string(sub) + `}`} {
		body := `{"Resources": {"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": ` + doc + `}}}}`
		plan := mustEvaluate(t, mustParse(t, body), nil)
		if got := plan.Policies[0]; got.Name != want || got.Document != minified {
			t.Errorf("%s: policy %+v, want name %s and document %s", name, got, want, minified)
		}
	}
}

// TestCertificateParameters takes the subject of a real certificate, so
// that the qualifier comes from Names as crypto/x509 fills it.
func TestCertificateParameters(t *testing.T) {
	t.Parallel()
	oidDNQ := asn1.ObjectIdentifier{2, 5, 4, 46}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject: pkix.Name{
			CommonName: "dev-1", Country: []string{"DE", "FR"}, Organization: []string{"Org A", "Org B"},
			OrganizationalUnit: []string{"Unit"}, Province: []string{"Bavaria"}, Locality: []string{"Munich"},
			SerialNumber: "SN-1",
			ExtraNames:   []pkix.AttributeTypeAndValue{{Type: oidDNQ, Value: "qual-1"}, {Type: oidDNQ, Value: "qual-2"}},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	got := CertificateParameters("id-1", cert.Subject)
	want := map[string]string{
		ParamCertificateID: "id-1", ParamCommonName: "dev-1", ParamCountry: "DE", ParamOrganization: "Org A",
		ParamOrganizationalUnit: "Unit", ParamStateName: "Bavaria", ParamSerialNumber: "SN-1",
		ParamDistinguishedNameQualifier: "qual-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CertificateParameters = %v\nwant %v", got, want)
	}
	// A bare subject gives only the ID.
	if got := CertificateParameters("id-2", pkix.Name{}); !reflect.DeepEqual(got, map[string]string{ParamCertificateID: "id-2"}) {
		t.Errorf("CertificateParameters(empty) = %v", got)
	}
	// A subject built by hand carries the qualifier in ExtraNames.
	got = CertificateParameters("id-3", pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidDNQ, Value: "q"}}})
	if got[ParamDistinguishedNameQualifier] != "q" {
		t.Errorf("CertificateParameters(ExtraNames) = %v", got)
	}
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// wantError checks that err is an *Error at path whose message contains
// msg.
func wantError(t testing.TB, err error, path, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want %s: ...%s...", path, msg)
		return
	}
	e, ok := err.(*Error)
	if !ok {
		t.Errorf("error %v is a %T, not an *Error", err, err)
		return
	}
	if e.Path != path || !strings.Contains(e.Message, msg) {
		t.Errorf("error %q: %q\n      want %q: ...%q...", e.Path, e.Message, path, msg)
	}
}
