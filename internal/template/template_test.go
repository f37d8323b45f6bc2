package template

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const (
	thingRes  = `"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}}`
	certRes   = `"cert": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}`
	policyRes = `"policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "p"}}`
)

// resources is a body with the given resources and other sections.
func resources(res string, sections ...string) string {
	b := `{"Resources": {` + res + `}`
	for _, s := range sections {
		b += ", " + s
	}
	return b + "}"
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, body, path, msg string
	}{
		// The body.
		{"empty", ``, "", "The template body is empty"},
		{"too long", `{"Resources": {` + thingRes + `}, "DeviceConfiguration": {"x": "` + strings.Repeat("é", MaxBodyLength) + `"}}`, "", "more than 10240"},
		{"not UTF-8", "{\"Resources\": {\"a\xff\": 1}}", "", "not valid UTF-8"},
		{"list", `[]`, "", "The template body is not a JSON object"},
		{"string", `"x"`, "", "The template body is not a JSON object"},
		{"truncated", `{"Resources": {`, "", "unexpected end of JSON input"},
		{"syntax", `{"Resources": x}`, "", "The template body is not valid JSON: invalid character"},
		{"trailing", resources(thingRes) + `}`, "", "there is more after its closing brace"},
		{"two objects", resources(thingRes) + `{}`, "", "there is more after its closing brace"},
		{"duplicate section", `{"Resources": {` + thingRes + `}, "Resources": {}}`, "", `"Resources" is given twice`},
		{"duplicate resource", resources(thingRes + `,` + thingRes), "Resources", `"thing" is given twice`},
		{"duplicate late", resources(`"thing": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": {"a": "", "b": "", "c": "", "d": "", "e": "", "f": "", "g": "", "h": "", "i": "", "j": "", "b": ""}}}`),
			"Resources.thing.Properties.AttributePayload", `"b" is given twice`},

		// Sections.
		{"Conditions", `{"Conditions": {}, "Resources": {` + thingRes + `}}`, "Conditions", "Conditions is not a section of an AWS IoT provisioning template"},
		{"Outputs", resources(thingRes, `"Outputs": {}`), "Outputs", "Outputs is not a section"},
		{"AWSTemplateFormatVersion", `{"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}`, "AWSTemplateFormatVersion", "is not a section"},
		{"no Resources", `{"Parameters": {}}`, "", "The template has no Resources section"},
		{"Resources list", `{"Resources": []}`, "Resources", "must be an object, not a list"},
		{"Resources empty", `{"Resources": {}}`, "Resources", "declares no resource"},

		// Parameters.
		{"Parameters list", resources(thingRes, `"Parameters": []`), "Parameters", "must be an object, not a list"},
		{"parameter string", resources(thingRes, `"Parameters": {"P": "String"}`), "Parameters.P", "must be an object, not a string"},
		{"parameter type", resources(thingRes, `"Parameters": {"P": {"Type": "Number"}}`), "Parameters.P.Type", "the only parameter type is String"},
		{"parameter list type", resources(thingRes, `"Parameters": {"P": {"Type": "CommaDelimitedList"}}`), "Parameters.P.Type", "only parameter type is String"},
		{"parameter no type", resources(thingRes, `"Parameters": {"P": {"Default": "x"}}`), "Parameters.P", "has no Type"},
		{"parameter default", resources(thingRes, `"Parameters": {"P": {"Type": "String", "Default": 1}}`), "Parameters.P.Default", "must be a string, not a number"},
		{"parameter description", resources(thingRes, `"Parameters": {"P": {"Type": "String", "Description": true}}`), "Parameters.P.Description", "must be a string"},
		{"parameter key", resources(thingRes, `"Parameters": {"P": {"Type": "String", "AllowedValues": ["a"]}}`), "Parameters.P.AllowedValues", "AllowedValues is not a key of a parameter"},
		{"parameter empty name", resources(thingRes, `"Parameters": {"": {"Type": "String"}}`), "Parameters", "a parameter has an empty name"},
		{"parameter long name", resources(thingRes, `"Parameters": {"`+strings.Repeat("n", 129)+`": {"Type": "String"}}`), "Parameters." + strings.Repeat("n", 129), "the name has 129 characters, more than 128"},

		// Mappings.
		{"Mappings list", resources(thingRes, `"Mappings": []`), "Mappings", "must be an object"},
		{"map string", resources(thingRes, `"Mappings": {"M": "x"}`), "Mappings.M", "must be an object, not a string"},
		{"map entry list", resources(thingRes, `"Mappings": {"M": {"k": ["x"]}}`), "Mappings.M.k", "must be an object, not a list"},
		{"map Ref", resources(thingRes, `"Parameters": {"P": {"Type": "String"}}`, `"Mappings": {"M": {"k": {"s": {"Ref": "P"}}}}`), "Mappings.M.k.s", "Ref is not allowed in Mappings"},
		{"map FindInMap", resources(thingRes, `"Mappings": {"M": {"k": {"Fn::FindInMap": ["M", "k", "s"]}}}`), "Mappings.M.k", "Fn::FindInMap is not allowed in Mappings"},
		{"map number", resources(thingRes, `"Mappings": {"M": {"k": {"s": 1}}}`), "Mappings.M.k.s", "must be a string or a list of strings, not a number"},
		{"map list of numbers", resources(thingRes, `"Mappings": {"M": {"k": {"s": ["a", 1]}}}`), "Mappings.M.k.s[1]", "must be a string, not a number"},
		{"map object", resources(thingRes, `"Mappings": {"M": {"k": {"s": {"a": "b", "c": "d"}}}}`), "Mappings.M.k.s", "not an object"},

		// Resources.
		{"resource string", resources(`"r": "x"`), "Resources.r", "must be an object, not a string"},
		{"resource empty ID", resources(`"": {"Type": "AWS::IoT::Thing", "Properties": {}}`), "Resources", "a resource has an empty logical ID"},
		{"resource key", resources(`"r": {"Type": "AWS::IoT::Thing", "Properties": {}, "DependsOn": "x"}`), "Resources.r.DependsOn", "DependsOn is not a key of a resource"},
		{"resource Condition", resources(`"r": {"Type": "AWS::IoT::Thing", "Properties": {}, "Condition": "C"}`), "Resources.r.Condition", "Condition is not a key of a resource"},
		{"no Type", resources(`"r": {"Properties": {}}`), "Resources.r", "has no Type"},
		{"Type number", resources(`"r": {"Type": 1, "Properties": {}}`), "Resources.r.Type", "must be a string, not a number"},
		{"unknown Type", resources(`"r": {"Type": "AWS::IoT::TopicRule", "Properties": {}}`), "Resources.r.Type",
			"AWS::IoT::TopicRule is not a resource type of AWS IoT provisioning templates"},
		{"no Properties", resources(`"r": {"Type": "AWS::IoT::Thing"}`), "Resources.r", "has no Properties"},
		{"Properties list", resources(`"r": {"Type": "AWS::IoT::Thing", "Properties": []}`), "Resources.r.Properties", "must be an object, not a list"},
		{"OverrideSettings list", resources(`"r": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": []}`), "Resources.r.OverrideSettings", "must be an object"},
		{"two things", resources(thingRes + `, "thing2": {"Type": "AWS::IoT::Thing", "Properties": {}}`), "Resources.thing2.Type", "at most one AWS::IoT::Thing, and thing is one"},
		{"two certificates", resources(certRes + `, "cert2": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "x"}}`), "Resources.cert2.Type", "at most one AWS::IoT::Certificate, and cert is one"},
		{"eleven policies", resources(policies(11)), "Resources.p10.Type", "at most 10 resources of type AWS::IoT::Policy"},

		// Thing.
		{"thing property", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"Tags": []}}`), "Resources.t.Properties.Tags", "Tags is not a property of AWS::IoT::Thing"},
		{"thing exclusive", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingPrincipalType": "EXCLUSIVE_THING"}}`), "Resources.t.Properties.ThingPrincipalType", "is not a property"},
		{"attributes string", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": "a=b"}}`), "Resources.t.Properties.AttributePayload", "must be an object of names and values, not a string"},
		{"attributes Ref", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": {"Ref": "AWS::IoT::Certificate::Id"}}}`), "Resources.t.Properties.AttributePayload", "not Ref"},
		{"attributes nested", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": {"a": {"b": "c"}}}}`), "Resources.t.Properties.AttributePayload.a", "nested objects are not allowed"},
		{"attributes number", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": {"a": 1}}}`), "Resources.t.Properties.AttributePayload.a", "not a number"},
		{"thing groups string", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingGroups": "g"}}`), "Resources.t.Properties.ThingGroups", "must be a list of strings"},
		{"billing group list", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"BillingGroup": ["g"]}}`), "Resources.t.Properties.BillingGroup", "not a list"},
		{"thing override key", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"ThingName": "REPLACE"}}`),
			"Resources.t.OverrideSettings.ThingName", "ThingName is not an override setting of AWS::IoT::Thing"},
		{"thing override MERGE type", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"THING_TYPE_NAME": "MERGE"}}`),
			"Resources.t.OverrideSettings.THING_TYPE_NAME", "MERGE is only for AttributePayload and ThingGroups"},
		{"thing override lower case", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"ThingGroups": "merge"}}`),
			"Resources.t.OverrideSettings.ThingGroups", `must be DO_NOTHING, REPLACE, FAIL or MERGE, not "merge"`},
		{"thing override Ref", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"ThingGroups": {"Ref": "AWS::IoT::Certificate::Id"}}}`),
			"Resources.t.OverrideSettings.ThingGroups", "not an object"},
		{"thing override twice", resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"AttributePayload": "MERGE", "ATTRIBUTE_PAYLOAD": "FAIL"}}`),
			"Resources.t.OverrideSettings.ATTRIBUTE_PAYLOAD", "AttributePayload and ATTRIBUTE_PAYLOAD name the same setting"},

		// Certificate.
		{"certificate none", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"Status": "ACTIVE"}}`), "Resources.c.Properties",
			"names no certificate: give one of CertificateId, CertificateSigningRequest or CertificatePem"},
		{"certificate two", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a", "CertificatePem": "b"}}`),
			"Resources.c.Properties.CertificatePem", "a certificate is named one way only, and CertificateId already names it"},
		{"certificate CA without PEM", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a", "CACertificatePem": "b"}}`),
			"Resources.c.Properties.CACertificatePem", "CACertificatePem goes only with CertificatePem"},
		{"certificate ID spelling", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateID": "a"}}`),
			"Resources.c.Properties.CertificateID", "CertificateID is not a property of AWS::IoT::Certificate"},
		{"certificate status", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a", "Status": "PENDING_ACTIVATION"}}`),
			"Resources.c.Properties.Status", `Status must be ACTIVE or INACTIVE, not "PENDING_ACTIVATION"`},
		{"certificate status number", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a", "Status": 1}}`),
			"Resources.c.Properties.Status", "not a number"},
		{"certificate override key", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a"}, "OverrideSettings": {"CertificateId": "REPLACE"}}`),
			"Resources.c.OverrideSettings.CertificateId", "CertificateId is not an override setting of AWS::IoT::Certificate; use Status"},
		{"certificate override MERGE", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a"}, "OverrideSettings": {"Status": "MERGE"}}`),
			"Resources.c.OverrideSettings.Status", "MERGE is only for AttributePayload and ThingGroups"},
		{"certificate override other", resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "a"}, "OverrideSettings": {"Status": "KEEP"}}`),
			"Resources.c.OverrideSettings.Status", `must be DO_NOTHING, REPLACE or FAIL, not "KEEP"`},

		// Policy.
		{"policy neither", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {}}`), "Resources.p.Properties", "Neither PolicyName nor PolicyDocument is present"},
		{"policy both", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "n", "PolicyDocument": {}}}`), "Resources.p.Properties", "PolicyName and PolicyDocument are both present"},
		{"policy override", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "n"}, "OverrideSettings": {}}`), "Resources.p.OverrideSettings", "a policy has no OverrideSettings"},
		{"policy property", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "n", "Tags": []}}`), "Resources.p.Properties.Tags", "Tags is not a property of AWS::IoT::Policy"},
		{"policy name list", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": ["n"]}}`), "Resources.p.Properties.PolicyName", "not a list"},
		{"policy document number", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": 1}}`), "Resources.p.Properties.PolicyDocument",
			"must be a policy document (an object) or a string holding one, not a number"},
		{"policy document list", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": [{}]}}`), "Resources.p.Properties.PolicyDocument", "not a list"},
		{"policy document string not JSON", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "{Version}"}}`),
			"Resources.p.Properties.PolicyDocument", "the policy document is not valid JSON: invalid character"},
		{"policy document string list", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "[1]"}}`),
			"Resources.p.Properties.PolicyDocument", "the policy document is not a JSON object"},
		{"policy document string duplicate", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "{\"Version\": \"1\", \"Version\": \"2\"}"}}`),
			"Resources.p.Properties.PolicyDocument", `"Version" is given twice`},
		{"policy document string trailing", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": "{} {}"}}`),
			"Resources.p.Properties.PolicyDocument", "there is more after its closing brace"},
		{"policy document Fn::If", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Statement": [{"Effect": {"Fn::If": ["C", "Allow", "Deny"]}}]}}}`),
			"Resources.p.Properties.PolicyDocument.Statement[0].Effect", "Fn::If is not supported"},
		{"policy document undeclared", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Statement": [{"Resource": {"Fn::Sub": "arn:${iot:ClientId}"}}]}}}`),
			"Resources.p.Properties.PolicyDocument.Statement[0].Resource.Fn::Sub", "${iot:ClientId} refers to undeclared parameter iot:ClientId"},
		{"policy document Split", resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Fn::Split": [",", "a"]}}}`),
			"Resources.p.Properties.PolicyDocument", "Fn::Split gives a list where a string is needed"},

		// DeviceConfiguration.
		{"configuration list", resources(thingRes, `"DeviceConfiguration": []`), "DeviceConfiguration", "must be an object of names and values, not a list"},
		{"configuration nested", resources(thingRes, `"DeviceConfiguration": {"a": {"b": "c"}}`), "DeviceConfiguration.a", "nested objects are not allowed"},
		{"configuration list value", resources(thingRes, `"DeviceConfiguration": {"a": ["b"]}`), "DeviceConfiguration.a", "not a list"},
		{"configuration number", resources(thingRes, `"DeviceConfiguration": {"a": 1}`), "DeviceConfiguration.a", "not a number"},
		{"configuration Split", resources(thingRes, `"DeviceConfiguration": {"a": {"Fn::Split": [",", "b"]}}`), "DeviceConfiguration.a", "Fn::Split gives a list where a string is needed"},
		{"configuration If", resources(thingRes, `"DeviceConfiguration": {"a": {"Fn::If": []}}`), "DeviceConfiguration.a", "Fn::If is not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.body)
			wantError(t, err, c.path, c.msg)
		})
	}
}

func policies(n int) string {
	var b []string
	for i := range n {
		b = append(b, fmt.Sprintf(`"p%02d": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "n%d"}}`, i, i))
	}
	return strings.Join(b, ",")
}

// TestBodyLength counts characters, not bytes.
func TestBodyLength(t *testing.T) {
	t.Parallel()
	body := resources(thingRes, `"DeviceConfiguration": {"x": "`)
	pad := MaxBodyLength - len(body) - len(`"}}`)
	body += strings.Repeat("é", pad) + `"}}`
	if n := len([]rune(body)); n != MaxBodyLength {
		t.Fatalf("body has %d characters", n)
	}
	mustParse(t, body)
	_, err := Parse(body + " ")
	wantError(t, err, "", "The template body has 10241 characters, more than 10240")
}

func TestParameters(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, resources(thingRes, `"Parameters": {"b": {"Type": "String", "Default": ""}, "a": {"Type": "String", "Description": "the a"}, "AWS::IoT::Certificate::Id": {"Type": "String"}}`))
	want := []Parameter{{Name: ParamCertificateID}, {Name: "a"}, {Name: "b", HasDefault: true}}
	got := tp.Parameters()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parameters() = %v, want %v", got, want)
	}
	got[0].Name = "changed"
	if tp.Parameters()[0].Name != ParamCertificateID {
		t.Error("Parameters() shares the template's slice")
	}
	// An empty default is a value.
	tp = mustParse(t, resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Join": ["x", [{"Ref": "b"}, "y"]]}}}`, `"Parameters": {"b": {"Type": "String", "Default": ""}}`))
	if plan := mustEvaluate(t, tp, nil); plan.Thing.Name != "xy" {
		t.Errorf("name %q", plan.Thing.Name)
	}
}

func TestPlanShape(t *testing.T) {
	t.Parallel()
	// A template with only a policy plans no thing or certificate, and an
	// empty device configuration.
	plan := mustEvaluate(t, mustParse(t, resources(policyRes)), nil)
	if plan.Thing != nil || plan.Certificate != nil || plan.DeviceConfiguration == nil || len(plan.DeviceConfiguration) != 0 {
		t.Errorf("plan = %s", dump(plan))
	}
	tp := mustParse(t, resources(policyRes))
	if tp.UsesCertificateID() || tp.HasCertificate() {
		t.Error("UsesCertificateID() or HasCertificate() without a certificate")
	}

	// Absent properties stay empty: nil attributes and groups, DO_NOTHING
	// overrides, ACTIVE certificate.
	plan = mustEvaluate(t, mustParse(t, resources(thingRes+","+certRes)), p(ParamCertificateID, "id"))
	wantThing := &ThingPlan{LogicalID: "thing", Name: "t", Override: ThingOverride{DoNothing, DoNothing, DoNothing}}
	if !reflect.DeepEqual(plan.Thing, wantThing) {
		t.Errorf("thing = %s", dump(plan.Thing))
	}
	wantCert := &CertificatePlan{LogicalID: "cert", CertificateID: "id", Status: "ACTIVE", StatusOverride: DoNothing}
	if !reflect.DeepEqual(plan.Certificate, wantCert) {
		t.Errorf("certificate = %s", dump(plan.Certificate))
	}

	// An empty AttributePayload is an empty, not a nil, map.
	plan = mustEvaluate(t, mustParse(t, resources(`"t": {"Type": "AWS::IoT::Thing", "Properties": {"AttributePayload": {}}}`)), nil)
	if plan.Thing.Attributes == nil || len(plan.Thing.Attributes) != 0 {
		t.Errorf("attributes = %#v", plan.Thing.Attributes)
	}

	// Policies come in logical-ID order.
	plan = mustEvaluate(t, mustParse(t, resources(`"z": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "nz"}},
		"a": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "na"}},
		"m": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17"}}}`)), nil)
	var ids []string
	for _, pp := range plan.Policies {
		ids = append(ids, pp.LogicalID)
	}
	if !reflect.DeepEqual(ids, []string{"a", "m", "z"}) {
		t.Errorf("policies in order %v", ids)
	}
	mustParse(t, resources(policies(10)))
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	body := func(props string) string {
		return resources(`"c": {"Type": "AWS::IoT::Certificate", "Properties": {`+props+`}, "OverrideSettings": {"Status": "FAIL"}}`,
			`"Parameters": {"S": {"Type": "String"}, "PEM": {"Type": "String"}, "CA": {"Type": "String"}}`)
	}
	for _, c := range []struct {
		name, props string
		params      map[string]string
		want        CertificatePlan
	}{
		{"Active", `"CertificateId": "id", "Status": "Active"`, nil, CertificatePlan{CertificateID: "id", Status: "ACTIVE"}},
		{"inactive", `"CertificateId": "id", "Status": "inactive"`, nil, CertificatePlan{CertificateID: "id", Status: "INACTIVE"}},
		{"computed status", `"CertificateId": "id", "Status": {"Ref": "S"}`, p("S", "InActive"), CertificatePlan{CertificateID: "id", Status: "INACTIVE"}},
		{"CSR", `"CertificateSigningRequest": {"Ref": "PEM"}`, p("PEM", "csr"), CertificatePlan{CSR: "csr", Status: "ACTIVE"}},
		{"PEM and CA", `"CertificatePem": {"Ref": "PEM"}, "CACertificatePem": {"Ref": "CA"}`, p("PEM", "pem", "CA", "ca"),
			CertificatePlan{CertificatePEM: "pem", CACertificatePEM: "ca", Status: "ACTIVE"}},
	} {
		plan := mustEvaluate(t, mustParse(t, body(c.props)), c.params)
		c.want.LogicalID, c.want.StatusOverride = "c", Fail
		if !reflect.DeepEqual(*plan.Certificate, c.want) {
			t.Errorf("%s: certificate = %s", c.name, dump(plan.Certificate))
		}
	}

	tp := mustParse(t, body(`"CertificateId": "id", "Status": {"Ref": "S"}`))
	_, err := tp.Evaluate(p("S", "revoked"))
	wantError(t, err, "Resources.c.Properties.Status", `Status must be ACTIVE or INACTIVE, not "revoked"`)
	tp = mustParse(t, body(`"CertificatePem": {"Ref": "PEM"}`))
	_, err = tp.Evaluate(p("PEM", ""))
	wantError(t, err, "Resources.c.Properties.CertificatePem", "CertificatePem resolves to an empty string")
	if tp.UsesCertificateID() || !tp.HasCertificate() {
		t.Error("UsesCertificateID() or !HasCertificate() for CertificatePem")
	}
}

// TestPolicyDocuments: documents with intrinsic functions resolve at
// Evaluate, keeping the document's structure, numbers and booleans.
func TestPolicyDocuments(t *testing.T) {
	t.Parallel()
	body := resources(`
		"static": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": []}}},
		"string": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": " { \"Version\" : \"2012-10-17\" , \"Statement\":[] } "}},
		"object": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {
			"Version": "2012-10-17",
			"Statement": [{
				"Effect": "Allow",
				"Action": {"Fn::Split": [",", {"Ref": "Actions"}]},
				"Resource": [{"Fn::Sub": "arn:aws:iot:us-east-1:123456789012:client/${AWS::IoT::Certificate::CommonName}"}, "arn:<&>"],
				"Condition": {"NumericLessThan": {"n": 1.50}, "Bool": {"b": true}, "Null": {"x": null}}
			}]
		}}},
		"sub": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Fn::Sub": "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iot:Connect\", \"Resource\": \"${R}\"}]}"}}}`,
		`"Parameters": {"Actions": {"Type": "String"}, "R": {"Type": "String"}}`)
	tp := mustParse(t, body)
	const static = `{"Version":"2012-10-17","Statement":[]}`
	if got := tp.StaticPolicyDocuments(); !reflect.DeepEqual(got, map[string]string{"static": static, "string": static}) {
		t.Errorf("StaticPolicyDocuments() = %v", got)
	}
	plan := mustEvaluate(t, tp, p("Actions", "iot:Connect,iot:Publish", ParamCommonName, `dev"1`, "R", "*"))
	want := []PolicyPlan{
		{LogicalID: "object", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect","iot:Publish"],` +
			`"Resource":["arn:aws:iot:us-east-1:123456789012:client/dev\"1","arn:<&>"],` +
			`"Condition":{"NumericLessThan":{"n":1.50},"Bool":{"b":true},"Null":{"x":null}}}]}`},
		{LogicalID: "static", Document: static},
		{LogicalID: "string", Document: static},
		{LogicalID: "sub", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}`},
	}
	for i := range want {
		want[i].Name = sha1Upper(want[i].Document)
	}
	if !reflect.DeepEqual(plan.Policies, want) {
		t.Errorf("policies:\n%s\nwant:\n%s", dump(plan.Policies), dump(want))
	}

	// A parameter that breaks the JSON of a string document fails at
	// Evaluate, naming the document.
	_, err := tp.Evaluate(p("Actions", "a", ParamCommonName, "c", "R", `"`))
	wantError(t, err, "Resources.sub.Properties.PolicyDocument", "the policy document is not valid JSON")
	_, err = tp.Evaluate(p("Actions", "a", ParamCommonName, "c"))
	wantError(t, err, "Resources.sub.Properties.PolicyDocument", "parameter R has no value")

	// Invalid UTF-8 in a parameter still gives valid JSON.
	plan = mustEvaluate(t, tp, p("Actions", "a\xff", ParamCommonName, "c\x01", "R", "*"))
	if doc := plan.Policies[0].Document; !strings.Contains(doc, `"Action":["a\ufffd"]`) || !strings.Contains(doc, `client/c\u0001"`) {
		t.Errorf("document %s", doc)
	}
}

func TestDeviceConfiguration(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, resources(thingRes, `"Parameters": {"A": {"Type": "String"}}`,
		`"DeviceConfiguration": {"Foo": "Bar", "Url": {"Fn::Sub": "https://${A}/x"}, "Empty": ""}`))
	plan := mustEvaluate(t, tp, p("A", "example.com"))
	want := map[string]string{"Foo": "Bar", "Url": "https://example.com/x", "Empty": ""}
	if !reflect.DeepEqual(plan.DeviceConfiguration, want) {
		t.Errorf("DeviceConfiguration = %v", plan.DeviceConfiguration)
	}
	_, err := tp.Evaluate(nil)
	wantError(t, err, "DeviceConfiguration.Url", "parameter A has no value")
}

// TestErrorString renders Path and Message.
func TestErrorString(t *testing.T) {
	t.Parallel()
	if s := (&Error{Message: "m"}).Error(); s != "m" {
		t.Errorf("%q", s)
	}
	if s := (&Error{Path: "a.b", Message: "m"}).Error(); s != "a.b: m" {
		t.Errorf("%q", s)
	}
}

// TestConcurrentEvaluate: a Template is shared by concurrent evaluations
// (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, sdkSampleTemplate)
	done := make(chan string)
	for i := range 8 {
		go func() {
			plan, err := tp.Evaluate(p("SerialNumber", fmt.Sprint(i), "DeviceLocation", "Seattle", ParamCertificateID, "id"))
			if err != nil {
				done <- err.Error()
				return
			}
			done <- plan.Thing.Name
		}()
	}
	seen := map[string]bool{}
	for range 8 {
		seen[<-done] = true
	}
	for i := range 8 {
		if !seen[fmt.Sprintf("ThingPrefix_%d", i)] {
			t.Errorf("missing ThingPrefix_%d in %v", i, seen)
		}
	}
}

// TestDocumentFromParameter: a document that a parameter supplies is held
// to the same bounds as the body, since a device chooses it.
func TestDocumentFromParameter(t *testing.T) {
	t.Parallel()
	tp := mustParse(t, resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Ref": "D"}}}`, `"Parameters": {"D": {"Type": "String"}}`))
	const path = "Resources.p.Properties.PolicyDocument"
	_, err := tp.Evaluate(p("D", `{"a":[`+strings.Repeat("0,", 9000)+`0]}`))
	wantError(t, err, path+".a[8190]", "the document has more than 8192 values")
	_, err = tp.Evaluate(p("D", `{"a":`+strings.Repeat("[", 70)+strings.Repeat("]", 70)+`}`))
	wantError(t, err, path+".a"+strings.Repeat("[0]", 63), "nested more than 64 levels deep")
	plan := mustEvaluate(t, tp, p("D", "{\"a\":\"tab\\there\\r\\n\\u0000\\\"\\\\\"}"))
	if got, want := plan.Policies[0].Document, `{"a":"tab\there\r\n\u0000\"\\"}`; got != want {
		t.Errorf("document %s, want %s", got, want)
	}
}

func TestNamesProvisionedCertificate(t *testing.T) {
	for body, want := range map[string]bool{
		`{"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}}}}}`:                    true,
		`{"Parameters": {"Id": {"Type": "String"}}, "Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "Id"}}}}}`: false,
		`{"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "0123"}}}}`:                                                  false,
		`{"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateSigningRequest": "csr"}}}}`:                                       false,
		`{"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t"}}}}`:                                                               false,
	} {
		tpl, err := Parse(body)
		if err != nil {
			t.Fatalf("Parse(%s): %v", body, err)
		}
		if got := tpl.NamesProvisionedCertificate(); got != want {
			t.Errorf("NamesProvisionedCertificate(%s) = %v, want %v", body, got, want)
		}
	}
}
