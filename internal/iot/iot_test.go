package iot

import (
	"strings"
	"testing"
)

func TestNormalizeCertificateID(t *testing.T) {
	id := strings.Repeat("ab", 32)
	cases := []struct {
		in, want string
		ok       bool
	}{
		{id, id, true},
		{strings.ToUpper(id), id, true},
		{"0x" + id, id, true},
		{"0X" + strings.ToUpper(id), id, true},
		{id[:63], "", false},
		{id + "a", "", false},
		{"0x" + id[:62], "", false},
		{strings.Repeat("g", 64), "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		got, ok := NormalizeCertificateID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeCertificateID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestARNs(t *testing.T) {
	s := Scope{AccountID: "123456789012", Region: "eu-west-1"}
	if got, want := s.CertificateARN("abc"), "arn:aws:iot:eu-west-1:123456789012:cert/abc"; got != want {
		t.Errorf("CertificateARN = %s, want %s", got, want)
	}
}
