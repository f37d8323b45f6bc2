package template

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse: any body either parses or is refused with an *Error, never a
// panic; one that parses evaluates, with any parameters, to a plan or an
// *Error, and its policy documents are valid JSON named by their hash.
func FuzzParse(f *testing.F) {
	for _, body := range []string{
		sdkSampleTemplate, cliTemplate, dgFleetTemplate, jitpTemplate(f), policyNameTemplate,
		exprBody(`{"Fn::Join": ["-", [{"Fn::Select": [0, {"Fn::Split": [",", {"Fn::Sub": "${A},z"}]}]}, {"Fn::FindInMap": ["M", {"Ref": "A"}, "s"]}]]}`, false),
		exprBody(`{"Fn::Select": [{"Ref": "A"}, {"Fn::FindInMap": ["M", {"Ref": "B"}, "l"]}]}`, false),
		exprBody(`{"Fn::Split": [",", {"Fn::Sub": ["${X}${A}", {"X": {"Ref": "B"}}]}]}`, true),
		resources(`"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Fn::Sub": "{\"a\": \"${A}\"}"}}}`, `"Parameters": {"A": {"Type": "String"}}`),
	} {
		f.Add(body, "1|Seattle|k1|s|0|x,y")
	}
	f.Fuzz(func(t *testing.T, body, values string) {
		tp, err := Parse(body)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for id, doc := range tp.StaticPolicyDocuments() {
			if !json.Valid([]byte(doc)) {
				t.Fatalf("static document %s is not JSON: %s", id, doc)
			}
		}
		// Give every declared and built-in parameter one of the values, in
		// turn; and evaluate once with none at all.
		vs := strings.Split(values, "|")
		params := map[string]string{}
		names := []string{ParamCertificateID, ParamCommonName, ParamCountry, ParamSerialNumber}
		for _, p := range tp.Parameters() {
			names = append(names, p.Name)
		}
		for i, name := range names {
			params[name] = vs[i%len(vs)]
		}
		for _, params := range []map[string]string{params, nil} {
			plan, err := tp.Evaluate(params)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error of type %T: %v", err, err)
				}
				continue
			}
			if plan.DeviceConfiguration == nil {
				t.Fatal("nil DeviceConfiguration")
			}
			if c := plan.Certificate; c != nil {
				n := 0
				for _, s := range []string{c.CertificateID, c.CSR, c.CertificatePEM} {
					if s != "" {
						n++
					}
				}
				if n != 1 || (c.Status != "ACTIVE" && c.Status != "INACTIVE") {
					t.Fatalf("certificate plan %+v", c)
				}
			}
			for _, p := range plan.Policies {
				if p.Document == "" {
					continue
				}
				if !json.Valid([]byte(p.Document)) || p.Name != PolicyName(p.Document) {
					t.Fatalf("policy %+v", p)
				}
			}
		}
	})
}
