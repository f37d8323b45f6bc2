package pki

import (
	"encoding/asn1"
	"unicode/utf8"
)

// MaxSubjectBytes bounds the DER of a CSR's subject. The longest subject the
// attribute bounds below allow in one attribute each is well under it; the
// bound keeps a CSR from making every copy of the certificate kilobytes long.
const MaxSubjectBytes = 1024

// maxSubjectAttributes bounds how many attributes a subject may have.
const maxSubjectAttributes = 16

// ASN.1 universal string tags a subject attribute may use (RFC 5280 4.1.2.4:
// new certificates use UTF8String or PrintableString, with IA5String for
// emailAddress and domainComponent).
const (
	tagUTF8String      = 12
	tagPrintableString = 19
	tagIA5String       = 22
)

// attributeRule is what one attribute type may hold.
type attributeRule struct {
	name string
	// max is the upper bound of RFC 5280's Appendix A, in characters
	// (for surname and given name, the 64 zlint recommends).
	max int
	// tags are the string types allowed.
	tags []int
}

var directoryString = []int{tagUTF8String, tagPrintableString}

// subjectAttributes are the attribute types fleetca signs, with RFC 5280's
// upper bounds. Anything else in a CSR's subject is refused.
var subjectAttributes = map[string]attributeRule{
	"2.5.4.3":                    {"CN", 64, directoryString},
	"2.5.4.4":                    {"SN", 64, directoryString},
	"2.5.4.5":                    {"serialNumber", 64, []int{tagPrintableString}},
	"2.5.4.6":                    {"C", 2, []int{tagPrintableString}},
	"2.5.4.7":                    {"L", 128, directoryString},
	"2.5.4.8":                    {"ST", 128, directoryString},
	"2.5.4.9":                    {"street", 128, directoryString},
	"2.5.4.10":                   {"O", 64, directoryString},
	"2.5.4.11":                   {"OU", 64, directoryString},
	"2.5.4.12":                   {"title", 64, directoryString},
	"2.5.4.17":                   {"postalCode", 16, directoryString},
	"2.5.4.41":                   {"name", 128, directoryString},
	"2.5.4.42":                   {"GN", 64, directoryString},
	"2.5.4.43":                   {"initials", 128, directoryString},
	"2.5.4.44":                   {"generationQualifier", 128, directoryString},
	"2.5.4.46":                   {"dnQualifier", 64, []int{tagPrintableString}},
	"2.5.4.65":                   {"pseudonym", 128, directoryString},
	"2.5.4.97":                   {"organizationIdentifier", 64, directoryString},
	"0.9.2342.19200300.100.1.1":  {"UID", 128, directoryString},
	"0.9.2342.19200300.100.1.25": {"DC", 63, []int{tagIA5String}},
}

// refusedAttributes are attribute types a subject may not have, and why.
var refusedAttributes = map[string]string{
	// RFC 5280 4.1.2.6: new certificates carry e-mail addresses in the
	// subject alternative name, which fleetca's profile does not have.
	"1.2.840.113549.1.9.1": "the subject attribute emailAddress is not allowed: RFC 5280 puts e-mail addresses in the subject alternative name, which these certificates do not carry",
}

// CheckSubject checks the DER of a subject a CSR asks for: a bounded
// sequence of the attribute types above, each a string of an allowed type,
// non-empty, within its bound, free of control characters and valid in its
// encoding. Parsers refuse, or misread, certificates with anything else.
func CheckSubject(der []byte) error {
	if len(der) > MaxSubjectBytes {
		return errorf("the subject has %d bytes; at most %d are allowed", len(der), MaxSubjectBytes)
	}
	var rdns []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil || len(rest) != 0 {
		return errorf("the subject is not a valid distinguished name")
	}
	count := 0
	for _, rdn := range rdns {
		var attrs []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if rest, err := asn1.UnmarshalWithParams(rdn.FullBytes, &attrs, "set"); err != nil || len(rest) != 0 || len(attrs) == 0 {
			return errorf("the subject is not a valid distinguished name")
		}
		for _, a := range attrs {
			if count++; count > maxSubjectAttributes {
				return errorf("the subject has more than %d attributes", maxSubjectAttributes)
			}
			if err := checkAttribute(a.Type.String(), a.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkAttribute(oid string, v asn1.RawValue) error {
	if why, refused := refusedAttributes[oid]; refused {
		return errorf("%s", why)
	}
	rule, ok := subjectAttributes[oid]
	if !ok {
		return errorf("the subject attribute type %s is not allowed", oid)
	}
	allowed := false
	for _, tag := range rule.tags {
		allowed = allowed || (v.Class == asn1.ClassUniversal && !v.IsCompound && v.Tag == tag)
	}
	if !allowed {
		return errorf("the subject attribute %s must be a %s", rule.name, tagNames(rule.tags))
	}
	s := v.Bytes
	if v.Tag == tagUTF8String && !utf8.Valid(s) {
		return errorf("the subject attribute %s is not valid UTF-8", rule.name)
	}
	n := utf8.RuneCount(s)
	if n == 0 || n > rule.max {
		return errorf("the subject attribute %s must have 1 to %d characters; it has %d", rule.name, rule.max, n)
	}
	if rule.name == "C" && !(len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z') {
		// ISO 3166 codes are upper case; verifiers compare them as bytes.
		return errorf("the subject attribute C must be a two-letter country code in upper case")
	}
	for _, r := range string(s) {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return errorf("the subject attribute %s holds a control character", rule.name)
		case v.Tag == tagIA5String && r > 0x7f:
			return errorf("the subject attribute %s must be ASCII", rule.name)
		case v.Tag == tagPrintableString && !printable(r):
			return errorf("the subject attribute %s holds %q, which a PrintableString cannot", rule.name, r)
		}
	}
	return nil
}

// printable reports whether r is in PrintableString's alphabet (X.680 41.4).
func printable(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == ' ' || r == '\'' || r == '(' || r == ')' || r == '+' || r == ',' || r == '-' ||
		r == '.' || r == '/' || r == ':' || r == '=' || r == '?'
}

func tagNames(tags []int) string {
	names := map[int]string{tagUTF8String: "UTF8String", tagPrintableString: "PrintableString", tagIA5String: "IA5String"}
	s := names[tags[0]]
	for _, t := range tags[1:] {
		s += " or " + names[t]
	}
	return s
}
