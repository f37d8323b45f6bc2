package policy

import (
	"testing"
)

// FuzzParse: any document either parses or is refused as malformed, never
// a panic; one that parses evaluates without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(benchPolicy))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"iot:P*","NotResource":"arn:*${iot:ClientId}$(*)?","Condition":{"ForAnyValue:StringLike":{"iot:ConnectAttributes":["*"]},"IpAddress":{"aws:SourceIp":"::1/128"}}}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if _, ok := err.(*MalformedError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for a := Connect; a < numActions; a++ {
			p.Evaluate(&Request{Action: a, Resource: arn + "topic/sensor-0042/x", Context: benchContext})
			p.Evaluate(&Request{Action: a, Resource: string(doc), Context: nil})
		}
	})
}

// FuzzMatch: matching never panics, and a pattern without wildcards or
// variables matches exactly itself.
func FuzzMatch(f *testing.F) {
	f.Add("topic/*/a?", "topic/x/ab")
	f.Add("${iot:ClientId}*", "sensor-0042/x")
	f.Fuzz(func(t *testing.T, pat, s string) {
		compile(pat, true, true).match(s, benchContext)
		lit := compile(pat, false, false)
		if lit.match(s, nil) != (pat == s) {
			t.Fatalf("literal %q ~ %q = %v", pat, s, !(pat == s))
		}
	})
}
