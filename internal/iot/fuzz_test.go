package iot

import (
	"strings"
	"testing"
)

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{
		"arn:aws:iot:us-east-1:123456789012:cacert/" + strings.Repeat("a", 64),
		"arn:aws:iot:us-east-1:123456789012:certificateprovider/p",
		"arn:aws:iot:::/", "arn:::::", "", "arn:aws:iot:r:a:t/i/j",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ParseARN(s)
		if !ok {
			return
		}
		if p.ResourceType == "" || p.ResourceID == "" {
			t.Fatalf("accepted %q with an empty resource", s)
		}
		// A parsed ARN rebuilds to itself.
		scope := Scope{AccountID: p.AccountID, Region: p.Region}
		if p.Partition == Partition && scope.ARN(p.ResourceType, p.ResourceID) != s {
			t.Fatalf("%q rebuilds as %q", s, scope.ARN(p.ResourceType, p.ResourceID))
		}
	})
}

func FuzzNormalizeCertificateID(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("0x" + strings.Repeat("AB", 32))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := NormalizeCertificateID(s)
		if !ok {
			return
		}
		if again, ok2 := NormalizeCertificateID(id); !ok2 || again != id || len(id) != 64 || strings.ToLower(id) != id {
			t.Fatalf("%q normalised to %q, which is not canonical", s, id)
		}
	})
}
