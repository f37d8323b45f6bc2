package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"strings"
	"testing"
)

type attr struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// rawName encodes a distinguished name exactly as given, one RDN per slice.
func rawName(t *testing.T, rdns ...[]attr) []byte {
	t.Helper()
	var seq []asn1.RawValue
	for _, rdn := range rdns {
		var set []byte
		for _, a := range rdn {
			der, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{a.oid, asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, Bytes: []byte(a.value)}})
			if err != nil {
				t.Fatal(err)
			}
			set = append(set, der...)
		}
		seq = append(seq, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: set})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func one(a attr) []attr { return []attr{a} }

func TestCheckSubject(t *testing.T) {
	goName, _ := asn1.Marshal(pkix.Name{CommonName: "thing-1", Organization: []string{"Acme Ünited"}, Country: []string{"DE"}}.ToRDNSequence())
	integer := rawName(t, one(attr{oidCN, asn1.TagInteger, "\x01"}))
	manyOU := make([][]attr, 17)
	for i := range manyOU {
		manyOU[i] = one(attr{oidOU, tagUTF8String, "unit"})
	}
	hugeCN := make([][]attr, 16)
	for i := range hugeCN {
		hugeCN[i] = one(attr{oidOU, tagUTF8String, strings.Repeat("x", 64)})
	}
	cases := []struct {
		name    string
		der     []byte
		wantErr string
	}{
		{"Go's own encoding", goName, ""},
		{"empty subject", rawName(t), ""},
		{"multi-valued RDN", rawName(t, []attr{{oidCN, tagUTF8String, "a"}, {oidO, tagPrintableString, "b"}}), ""},
		{"email (RFC 5280 wants it in a SAN)", rawName(t, one(attr{oidEmail, tagIA5String, "d@example.com"})), "emailAddress is not allowed"},
		{"DC as IA5String", rawName(t, one(attr{oidDC, tagIA5String, "example"})), ""},
		{"country", rawName(t, one(attr{oidC, tagPrintableString, "DE"})), ""},
		{"country in lower case", rawName(t, one(attr{oidC, tagPrintableString, "de"})), "upper case"},
		{"country of digits", rawName(t, one(attr{oidC, tagPrintableString, "12"})), "upper case"},
		{"NUL byte", rawName(t, one(attr{oidCN, tagUTF8String, "local\x00host"})), "control character"},
		{"newline", rawName(t, one(attr{oidCN, tagUTF8String, "a\nb"})), "control character"},
		{"C1 control", rawName(t, one(attr{oidCN, tagUTF8String, "a\u0085b"})), "control character"},
		{"integer value", integer, "must be a UTF8String or PrintableString"},
		{"BMPString", rawName(t, one(attr{oidCN, 30, "\x00a"})), "must be a UTF8String or PrintableString"},
		{"CN of 65 characters", rawName(t, one(attr{oidCN, tagUTF8String, strings.Repeat("a", 65)})), "1 to 64 characters"},
		{"CN of 64 characters", rawName(t, one(attr{oidCN, tagUTF8String, strings.Repeat("ü", 64)})), ""},
		{"empty CN", rawName(t, one(attr{oidCN, tagUTF8String, ""})), "1 to 64 characters"},
		{"C of three letters", rawName(t, one(attr{oidC, tagPrintableString, "USA"})), "1 to 2 characters"},
		{"C as UTF8String", rawName(t, one(attr{oidC, tagUTF8String, "US"})), "must be a PrintableString"},
		{"PrintableString with @", rawName(t, one(attr{oidCN, tagPrintableString, "a@b"})), "PrintableString cannot"},
		{"invalid UTF-8", rawName(t, one(attr{oidCN, tagUTF8String, "a\xffb"})), "not valid UTF-8"},
		{"DC as UTF8String", rawName(t, one(attr{oidDC, tagUTF8String, "example"})), "must be a IA5String"},
		{"IA5String beyond ASCII", rawName(t, one(attr{oidDC, tagIA5String, "exämple"})), "must be ASCII"},
		{"unknown attribute type", rawName(t, one(attr{asn1.ObjectIdentifier{1, 2, 3, 4}, tagUTF8String, "x"})), "1.2.3.4 is not allowed"},
		{"17 attributes", rawName(t, manyOU...), "more than 16 attributes"},
		{"over 1024 bytes", rawName(t, hugeCN...), "at most 1024"},
		{"not DER", []byte{0x30, 0x05, 0x01}, "not a valid distinguished name"},
		{"trailing bytes", append(append([]byte{}, goName...), 0), "not a valid distinguished name"},
		{"empty set", []byte{0x30, 0x02, 0x31, 0x00}, "not a valid distinguished name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSubject(tc.der)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSubject: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsError(err) {
				t.Fatalf("CheckSubject error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestParseCSRChecksTheSubject: the subject check applies to every CSR.
func TestParseCSRChecksTheSubject(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject: rawName(t, one(attr{oidCN, tagUTF8String, "local\x00host"})),
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err == nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("ParseCSR of a subject with a NUL byte: %v", err)
	}
}

// FuzzCheckSubject: any bytes give nil or an input error, never a panic,
// and an accepted subject parses as a name.
func FuzzCheckSubject(f *testing.F) {
	goName, _ := asn1.Marshal(pkix.Name{CommonName: "thing-1", Organization: []string{"Acme"}}.ToRDNSequence())
	f.Add(goName)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x02, 0x31, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		err := CheckSubject(der)
		if err != nil {
			if !IsError(err) {
				t.Fatalf("a non-input error: %v", err)
			}
			return
		}
		var rdns pkix.RDNSequence
		if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
			t.Fatalf("accepted a subject that does not parse as a name: %v", err)
		}
	})
}
