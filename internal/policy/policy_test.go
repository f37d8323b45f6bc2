package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

const arn = "arn:aws:iot:us-east-1:123456789012:"

// connection is a Context from maps, as a test writes it.
type connection struct {
	values map[Key]string
	lists  map[Key][]string
}

func (c connection) Value(k Key) (string, bool) { v, ok := c.values[k]; return v, ok }
func (c connection) Values(k Key) ([]string, bool) {
	v, ok := c.lists[k]
	return v, ok
}

func clientID(id string) connection {
	return connection{values: map[Key]string{{Name: "iot:ClientId"}: id}}
}

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

type check struct {
	action   Action
	resource string
	ctx      Context
	want     Decision
}

func run(t *testing.T, p *Policy, checks []check) {
	t.Helper()
	for _, c := range checks {
		r := &Request{Action: c.action, Resource: arn + c.resource, Context: c.ctx}
		if got := p.Evaluate(r); got != c.want {
			t.Errorf("%v on %s (%v): %v, want %v", c.action, c.resource, c.ctx, got, c.want)
		}
	}
}

// TestAWSExamples are the examples of AWS IoT's developer guide (policy
// examples for connect, publish/subscribe and variables), with the topics
// each allows and denies.
func TestAWSExamples(t *testing.T) {
	t.Parallel()
	thing := connection{values: map[Key]string{
		{Name: "iot:ClientId"}:                                  "thing1",
		{Name: "iot:Connection.Thing.ThingName"}:                "thing1",
		{Name: "iot:Connection.Thing.IsAttached"}:               "true",
		{Name: "iot:Connection.Thing.Attributes", Arg: "plant"}: "plant7",
	}}
	cases := []struct {
		name   string
		doc    string
		checks []check
	}{
		{"specific topic", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"]},
			{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/some_specific_topic"]},
			{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some_specific_topic"]}]}`,
			[]check{
				{Connect, "client/device-1", clientID("device-1"), Allowed},
				{Connect, "client/device-2", clientID("device-1"), ImplicitDeny},
				{Publish, "topic/some_specific_topic", nil, Allowed},
				{Receive, "topic/some_specific_topic", nil, Allowed},
				{Publish, "topic/some_specific_topic/sub", nil, ImplicitDeny},
				{Subscribe, "topicfilter/some_specific_topic", nil, Allowed},
				{Subscribe, "topic/some_specific_topic", nil, ImplicitDeny},
				{Subscribe, "topicfilter/some_specific_topic/#", nil, ImplicitDeny},
				{RetainPublish, "topic/some_specific_topic", nil, ImplicitDeny},
			}},
		{"topic prefix: * spans levels", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/topic_prefix*"]},
			{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/topic_prefix*"]}]}`,
			[]check{
				{Publish, "topic/topic_prefix", nil, Allowed},
				{Publish, "topic/topic_prefix_a/b/c", nil, Allowed},
				{Publish, "topic/other", nil, ImplicitDeny},
				{Subscribe, "topicfilter/topic_prefix/#", nil, Allowed},
				{Subscribe, "topicfilter/topic_prefix/+/x", nil, Allowed},
			}},
		{"per device topics with thing variables", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Connect"],"Resource":["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
			 "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
			{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"]},
			{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.Attributes[plant]}/alerts"]}]}`,
			[]check{
				{Connect, "client/thing1", thing, Allowed},
				{Connect, "client/thing1", clientID("thing1"), ImplicitDeny}, // no thing attached
				{Publish, "topic/thing1/telemetry", thing, Allowed},
				{Publish, "topic/thing2/telemetry", thing, ImplicitDeny},
				{Publish, "topic/thing1/telemetry", nil, ImplicitDeny}, // nothing resolves
				{Subscribe, "topicfilter/plant7/alerts", thing, Allowed},
				{Subscribe, "topicfilter/plant8/alerts", thing, ImplicitDeny},
			}},
		{"deny a subtopic", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/department/*"]},
			{"Effect":"Deny","Action":["iot:Publish"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/department/admins"]}]}`,
			[]check{
				{Publish, "topic/department/engineering", nil, Allowed},
				{Publish, "topic/department/admins", nil, ExplicitDeny},
				{Publish, "topic/department/admins/x", nil, Allowed},
			}},
		{"? is one character and MQTT wildcards are literal", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/some/sensor???/topic",
			 "arn:aws:iot:us-east-1:123456789012:topicfilter/room/+/temp"]}]}`,
			[]check{
				{Subscribe, "topicfilter/some/sensor123/topic", nil, Allowed},
				{Subscribe, "topicfilter/some/sensor12/topic", nil, ImplicitDeny},
				{Subscribe, "topicfilter/some/sensor1234/topic", nil, ImplicitDeny},
				{Subscribe, "topicfilter/room/+/temp", nil, Allowed},
				{Subscribe, "topicfilter/room/kitchen/temp", nil, ImplicitDeny},
			}},
		{"iot:* and Resource *", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}`,
			[]check{
				{Connect, "client/anything", nil, Allowed},
				{Publish, "topic/$aws/things/x/shadow/update", nil, Allowed},
				{RetainPublish, "topic/a", nil, Allowed},
			}},
		{"the fleet-provisioning claim policy", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["iot:Connect"],"Resource":"*"},
			{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":[
			 "arn:aws:iot:us-east-1:123456789012:topic/$aws/certificates/create/*",
			 "arn:aws:iot:us-east-1:123456789012:topic/$aws/provisioning-templates/templateName/provision/*"]},
			{"Effect":"Allow","Action":"iot:Subscribe","Resource":[
			 "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/certificates/create/*",
			 "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/provisioning-templates/templateName/provision/*"]}]}`,
			[]check{
				{Connect, "client/any-claim", nil, Allowed},
				{Publish, "topic/$aws/certificates/create/json", nil, Allowed},
				{Receive, "topic/$aws/certificates/create/json/accepted", nil, Allowed},
				{Subscribe, "topicfilter/$aws/certificates/create/json/rejected", nil, Allowed},
				{Publish, "topic/$aws/certificates/create-from-csr/json", nil, ImplicitDeny},
				{Publish, "topic/$aws/provisioning-templates/templateName/provision/json", nil, Allowed},
				{Publish, "topic/$aws/provisioning-templates/other/provision/json", nil, ImplicitDeny},
				{Publish, "topic/telemetry", nil, ImplicitDeny},
			}},
		{"escapes write literal wildcards", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/a$(*)b$(?)c$($)d"},
			{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/iam/${*}${?}${$}"}]}`,
			[]check{
				{Publish, "topic/a*b?c$d", nil, Allowed},
				{Publish, "topic/iam/*?$", nil, Allowed},
				{Publish, "topic/iam/xy$", nil, ImplicitDeny},
				{Publish, "topic/axxbycd", nil, ImplicitDeny},
			}},
		{"2008-10-17 has no variables", `{"Version":"2008-10-17","Statement":[
			{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}"}]}`,
			[]check{
				{Publish, "topic/${iot:ClientId}", clientID("c1"), Allowed},
				{Publish, "topic/c1", clientID("c1"), ImplicitDeny},
			}},
		{"NotAction and NotResource", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","NotAction":"iot:Publish","Resource":"*"},
			{"Effect":"Deny","Action":"iot:Receive","NotResource":"arn:aws:iot:us-east-1:123456789012:topic/public/*"}]}`,
			[]check{
				{Publish, "topic/public/a", nil, ImplicitDeny},
				{Subscribe, "topicfilter/x", nil, Allowed},
				{Receive, "topic/public/a", nil, Allowed},
				{Receive, "topic/private/a", nil, ExplicitDeny},
			}},
		{"connect attributes and last will", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}",
			 "Condition":{"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill"]},
			              "StringLike":{"iot:LastWillTopic":"arn:aws:iot:us-east-1:123456789012:topic/will/${iot:ClientId}"}}}]}`,
			[]check{
				{Connect, "client/c1", connection{values: map[Key]string{{Name: "iot:ClientId"}: "c1", {Name: "iot:LastWillTopic"}: arn + "topic/will/c1"},
					lists: map[Key][]string{{Name: "iot:ConnectAttributes"}: {"LastWill"}}}, Allowed},
				{Connect, "client/c1", connection{values: map[Key]string{{Name: "iot:ClientId"}: "c1", {Name: "iot:LastWillTopic"}: arn + "topic/will/c1"},
					lists: map[Key][]string{{Name: "iot:ConnectAttributes"}: {"LastWill", "PersistentConnect"}}}, ImplicitDeny},
				{Connect, "client/c1", connection{values: map[Key]string{{Name: "iot:ClientId"}: "c1", {Name: "iot:LastWillTopic"}: arn + "topic/will/c2"},
					lists: map[Key][]string{{Name: "iot:ConnectAttributes"}: {"LastWill"}}}, ImplicitDeny},
			}},
		{"certificate variables", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}/*"},
			{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
			[]check{
				{Publish, "topic/sensor-9/data", connection{values: map[Key]string{{Name: "iot:Certificate.Subject.CommonName"}: "sensor-9"}}, Allowed},
				// A value with a wildcard or MQTT character substitutes nothing.
				{Publish, "topic/a+b/data", connection{values: map[Key]string{{Name: "iot:Certificate.Subject.CommonName"}: "a+b"}}, ImplicitDeny},
				{Publish, "topic/a*b/data", connection{values: map[Key]string{{Name: "iot:Certificate.Subject.CommonName"}: "a*"}}, ImplicitDeny},
				{Connect, "client/x", connection{values: map[Key]string{{Name: "aws:SourceIp"}: "10.1.2.3"}}, Allowed},
				{Connect, "client/x", connection{values: map[Key]string{{Name: "aws:SourceIp"}: "192.168.1.1"}}, ImplicitDeny},
				{Connect, "client/x", nil, ImplicitDeny},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { run(t, mustParse(t, tc.doc), tc.checks) })
	}
}

func TestConditionOperators(t *testing.T) {
	t.Parallel()
	ctx := connection{values: map[Key]string{{Name: "iot:ClientId"}: "Device-7", {Name: "iot:Connection.Thing.IsAttached"}: "true",
		{Name: "iot:LastWillTopic"}:                             arn + "topic/will/Device-7",
		{Name: "iot:Connection.Thing.Attributes", Arg: "floor"}: "7",
		{Name: "iot:Connection.Thing.Attributes", Arg: "since"}: "2030-06-01T12:00:00Z",
		{Name: "iot:Connection.Thing.Attributes", Arg: "nan"}:   "NaN"},
		lists: map[Key][]string{{Name: "iot:ConnectAttributes"}: {"PersistentConnect", "LastWill"}}}
	for _, tc := range []struct {
		condition string
		want      bool
	}{
		{`"StringEquals":{"iot:ClientId":"Device-7"}`, true},
		{`"StringEquals":{"iot:ClientId":["a","Device-7"]}`, true},
		{`"StringEquals":{"iot:ClientId":"device-7"}`, false},
		{`"StringEqualsIgnoreCase":{"iot:ClientId":"device-7"}`, true},
		{`"StringEquals":{"iot:ClientId":"Device-*"}`, false}, // * is literal for Equals
		{`"StringLike":{"iot:ClientId":"Device-*"}`, true},
		{`"StringNotLike":{"iot:ClientId":"Device-*"}`, false},
		{`"StringNotEquals":{"iot:ClientId":"x"}`, true},
		{`"StringNotEquals":{"iot:Connection.Thing.ThingName":"x"}`, true}, // absent key: negated holds
		{`"StringEquals":{"iot:Connection.Thing.ThingName":"x"}`, false},
		{`"StringEqualsIfExists":{"iot:Connection.Thing.ThingName":"x"}`, true},
		{`"Bool":{"iot:Connection.Thing.IsAttached":true}`, true},
		{`"Bool":{"iot:Connection.Thing.IsAttached":"false"}`, false},
		{`"Null":{"iot:Connection.Thing.ThingName":"true"}`, true},
		{`"Null":{"iot:ClientId":"true"}`, false},
		{`"ForAnyValue:StringEquals":{"iot:ConnectAttributes":"LastWill"}`, true},
		{`"ForAllValues:StringEquals":{"iot:ConnectAttributes":"LastWill"}`, false},
		{`"ForAllValues:StringEquals":{"iot:ConnectAttributes":["LastWill","PersistentConnect"]}`, true},
		{`"ForAllValues:StringNotEquals":{"iot:ConnectAttributes":"Other"}`, true},
		{`"ForAllValues:StringEquals":{"iot:Certificate.Subject.CommonName.List":"x"}`, true}, // no values: vacuous
		{`"ForAnyValue:StringEquals":{"iot:Certificate.Subject.CommonName.List":"x"}`, false},
		{`"StringEquals":{"iot:ClientId":"${iot:Connection.Thing.IsAttached}"}`, false},
		{`"ArnLike":{"iot:ClientId":"Dev*"}`, false}, // not an ARN: matches none
		{`"ArnLike":{"iot:LastWillTopic":"arn:aws:iot:*:*:topic/will/*"}`, true},
		{`"ArnLike":{"iot:LastWillTopic":"arn:aws:*:topic/will/*"}`, false}, // * stays within its part
		{`"ArnEquals":{"iot:LastWillTopic":"arn:aws:iot:us-east-1:123456789012:topic/will/Device-?"}`, true},
		{`"ArnNotLike":{"iot:LastWillTopic":"arn:aws:iot:*:*:topic/other/*"}`, true},
		{`"Bool":{"iot:Connection.Thing.IsAttached":["false","true"]}`, true},
		{`"ForAllValues:StringEquals":{"iot:ClientId":"evil"}`, false}, // a single value is a set of one
		{`"ForAnyValue:StringEquals":{"iot:ClientId":"Device-7"}`, true},
		{`"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}`, true}, // absent: negated holds
		{`"NumericLessThan":{"iot:Connection.Thing.Attributes[floor]":"10"}`, true},
		{`"NumericGreaterThanEquals":{"iot:Connection.Thing.Attributes[floor]":7}`, true},
		{`"NumericGreaterThan":{"iot:Connection.Thing.Attributes[floor]":7}`, false},
		{`"NumericNotEquals":{"iot:Connection.Thing.Attributes[floor]":["7","8"]}`, false},
		{`"DateLessThan":{"iot:Connection.Thing.Attributes[since]":"2031-01-01T00:00:00Z"}`, true},
		{`"DateGreaterThan":{"iot:Connection.Thing.Attributes[since]":"1893456000"}`, true},
		{`"NumericEquals":{"iot:ClientId":"7"}`, false},    // not a number: no match
		{`"NumericNotEquals":{"iot:ClientId":"7"}`, false}, // ... negated ones included
		{`"NumericEquals":{"iot:Connection.Thing.Attributes[nan]":"5"}`, false},
		{`"NumericNotEquals":{"iot:Connection.Thing.Attributes[nan]":"5"}`, false},
		{`"NumericLessThanEquals":{"iot:Connection.Thing.Attributes[nan]":"5"}`, false},
		{`"DateLessThan":{"iot:Connection.Thing.Attributes[since]":"3000-01-01"}`, true},
		{`"DateGreaterThan":{"iot:Connection.Thing.Attributes[since]":"2030-01-01T00:00Z"}`, true},
	} {
		doc := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{` + tc.condition + `}}}`
		p := mustParse(t, doc)
		got := p.Evaluate(&Request{Action: Connect, Resource: arn + "client/Device-7", Context: ctx}) == Allowed
		if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.condition, got, tc.want)
		}
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		``, `not json`, `[]`, `{}`, `{"Version":"2012-10-17"}`,
		`{"Version":"2012-10-17","Statement":[]}`,
		`{"Version":"2099-01-01","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Maybe","Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","NotAction":"iot:Publish","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","NotResource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"Publish","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"topic/a"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Extra":1}}`,
		`{"Version":"2012-10-17","Statement":{"effect":"Allow","Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringSoundsLike":{"k":"v"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"nowhere"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"Bool":{"k":"maybe"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"NumericLessThan":{"k":"ten"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"DateLessThan":{"k":"yesterday"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"NumericEquals":{"k":"NaN"}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*","Condition":"x"}}`,
		"{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"\xff\"}}",
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Action":"iot:*","Resource":"*"}}`,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}} trailing`,
		`{"Version":"2012-10-17","Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}`,
	} {
		_, err := Parse([]byte(doc))
		var m *MalformedError
		if !errors.As(err, &m) || m.Reason == "" {
			t.Errorf("Parse(%q) = %v, want a MalformedError", doc, err)
		}
	}
	if _, err := Parse([]byte(`{"Version":"2012-10-17","Statement":{"Sid":"a","Effect":"Allow","Action":"greengrass:*","Resource":"*"}}`)); err != nil {
		t.Errorf("another service's action: %v", err)
	}
}

// TestDenyIsNeverOverridden: for random policies, a request that some
// statement denies is denied however many allows surround it, in one
// policy or across several.
func TestDenyIsNeverOverridden(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	resources := []string{"*", arn + "topic/a/*", arn + "topic/a/b", arn + "topic/?/b", arn + "client/${iot:ClientId}", arn + "topic/${iot:ClientId}/*", arn + "topicfilter/*"}
	actions := []string{"iot:*", "iot:Publish", "iot:Connect", "iot:Subscribe", "iot:Receive", "iot:P*"}
	topics := []string{"topic/a/b", "topic/a/c", "topic/x/b", "client/c1", "topic/c1/x", "topicfilter/a/#"}
	ctx := clientID("c1")
	for round := range 500 {
		var statements []string
		var denies []string
		for range 1 + rng.IntN(6) {
			effect := "Allow"
			if rng.IntN(3) == 0 {
				effect = "Deny"
			}
			s := fmt.Sprintf(`{"Effect":%q,"Action":%q,"Resource":%q}`, effect, actions[rng.IntN(len(actions))], resources[rng.IntN(len(resources))])
			statements = append(statements, s)
			if effect == "Deny" {
				denies = append(denies, s)
			}
		}
		all := mustParse(t, `{"Version":"2012-10-17","Statement":[`+strings.Join(statements, ",")+`]}`)
		split := []*Policy{}
		for _, s := range statements {
			split = append(split, mustParse(t, `{"Version":"2012-10-17","Statement":[`+s+`]}`))
		}
		for a := Connect; a <= Receive; a++ {
			for _, topic := range topics {
				r := &Request{Action: a, Resource: arn + topic, Context: ctx}
				denied := false
				for _, d := range denies {
					if mustParse(t, `{"Version":"2012-10-17","Statement":[`+d+`]}`).Evaluate(r) == ExplicitDeny {
						denied = true
					}
				}
				if got := all.Evaluate(r); denied != (got == ExplicitDeny) {
					t.Fatalf("round %d: %v %s: %v, but a deny statement matches: %v\n%v", round, a, topic, got, denied, statements)
				}
				if got := Evaluate(split, r); denied != (got == ExplicitDeny) {
					t.Fatalf("round %d across policies: %v %s: %v, deny matches %v", round, a, topic, got, denied)
				}
			}
		}
	}
}

func TestGlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "anything/at/all", true}, {"a*", "a", true}, {"a*b", "ab", true}, {"a*b", "axxb", true},
		{"a*b", "axxbc", false}, {"a*b*c", "abxbc", true}, {"a*b*c", "acb", false}, {"?", "", false}, {"?", "é", true},
		{"??", "é", false}, {"a?c", "abc", true}, {"**", "x", true}, {"*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"x/*/y", "x/a/b/y", true}, {"", "", true}, {"", "a", false},
	} {
		if got := compile(tc.pattern, false, true).match(tc.s, nil); got != tc.want {
			t.Errorf("%q ~ %q = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// benchPolicy is a ten-statement policy with variables and wildcards.
const benchPolicy = `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
{"Effect":"Allow","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/telemetry/*"]},
{"Effect":"Allow","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:Connection.Thing.Attributes[group]}/*"]},
{"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:Connection.Thing.ThingName}/commands/*"]},
{"Effect":"Allow","Action":"iot:Receive","Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}/commands/*"]},
{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
{"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
{"Effect":"Deny","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/*/admin/*"]},
{"Effect":"Deny","Action":"iot:*","Resource":["arn:aws:iot:us-east-1:123456789012:topic/quarantine/???/*"]},
{"Effect":"Allow","Action":"iot:Publish","Resource":["arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}/status"]}]}`

var benchContext = connection{values: map[Key]string{
	{Name: "iot:ClientId"}:                                  "sensor-0042",
	{Name: "iot:Connection.Thing.ThingName"}:                "sensor-0042",
	{Name: "iot:Connection.Thing.IsAttached"}:               "true",
	{Name: "iot:Connection.Thing.Attributes", Arg: "group"}: "north",
	{Name: "iot:Certificate.Subject.CommonName"}:            "sensor-0042",
}}

// TestEvaluationDoesNotAllocate: the per-packet checks allocate nothing.
func TestEvaluationDoesNotAllocate(t *testing.T) {
	p := mustParse(t, benchPolicy)
	requests := []*Request{
		{Action: Publish, Resource: arn + "topic/sensor-0042/telemetry/temp", Context: benchContext},
		{Action: Publish, Resource: arn + "topic/sensor-0042/admin/x", Context: benchContext},
		{Action: Subscribe, Resource: arn + "topicfilter/sensor-0042/commands/#", Context: benchContext},
		{Action: Connect, Resource: arn + "client/sensor-0042", Context: benchContext},
	}
	want := []Decision{Allowed, ExplicitDeny, Allowed, Allowed}
	for i, r := range requests {
		if got := p.Evaluate(r); got != want[i] {
			t.Fatalf("request %d: %v, want %v", i, got, want[i])
		}
		if n := testing.AllocsPerRun(100, func() { p.Evaluate(r) }); n != 0 {
			t.Errorf("request %d allocates %.0f times", i, n)
		}
	}
}

// BenchmarkEvaluate: a publish check against a ten-statement policy with
// variables and wildcards (issue 15: at most 1 µs, no allocation).
//
//	go test -run '^$' -bench Evaluate ./internal/policy/
func BenchmarkEvaluate(b *testing.B) {
	p := mustParse(b, benchPolicy)
	for _, tc := range []struct {
		name string
		r    Request
	}{
		{"publish-allowed", Request{Action: Publish, Resource: arn + "topic/sensor-0042/telemetry/temp", Context: benchContext}},
		{"publish-denied", Request{Action: Publish, Resource: arn + "topic/sensor-0042/admin/x", Context: benchContext}},
		{"publish-implicit", Request{Action: Publish, Resource: arn + "topic/other/telemetry/temp", Context: benchContext}},
		{"receive", Request{Action: Receive, Resource: arn + "topic/sensor-0042/commands/reboot", Context: benchContext}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(&tc.r)
			}
		})
	}
}
