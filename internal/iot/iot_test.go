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

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"signer", true}, {"a=b,c@d-e_f", true}, {strings.Repeat("p", 128), true},
		{"", false}, {strings.Repeat("p", 129), false}, {"bad name", false}, {"naïve", false}, {"a/b", false},
	} {
		if got := ValidProviderName(tc.name); got != tc.ok {
			t.Errorf("ValidProviderName(%q) = %v", tc.name, got)
		}
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"env", true}, {"team/owner:name=x+y-z@w_v.u", true}, {"Größe 1", true}, {"", true},
		{"semi;colon", false}, {"a|b", false}, {"tab\tkey", false}, {"\xff", false},
	} {
		if got := ValidTagKeyChars(tc.key); got != tc.ok {
			t.Errorf("ValidTagKeyChars(%q) = %v", tc.key, got)
		}
	}
}
