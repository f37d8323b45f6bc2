package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// OpenSSLIndexLine is the line of an OpenSSL CA database (index.txt) that
// records c as revoked for the reason Reason gives u, so that the owner of
// a CA registered with fleetca, who signs its own CRLs, can feed fleetca's
// statuses to `openssl ca -gencrl`. A hold needs a hold instruction there:
// reject, as RFC 5280 calls for.
func OpenSSLIndexLine(c *x509.Certificate, u store.UnusableCertificate) string {
	revoked := opensslTime(u.Since)
	switch Reason(u) {
	case reasonCertificateHold:
		revoked += ",certificateHold,holdInstructionReject"
	case reasonCessationOfOperation:
		revoked += ",cessationOfOperation"
	}
	serial := strings.ToUpper(c.SerialNumber.Text(16))
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	return strings.Join([]string{"R", opensslTime(c.NotAfter), revoked, serial, "unknown", onelineName(c)}, "\t") + "\n"
}

// opensslTime is a time as the OpenSSL database writes it: UTCTime up to
// 2049, GeneralizedTime from 2050, as in certificates.
func opensslTime(t time.Time) string {
	t = t.UTC()
	if t.Year() >= 2050 {
		return t.Format("20060102150405Z")
	}
	return t.Format("060102150405Z")
}

var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "2.5.4.9": "street", "2.5.4.17": "postalCode", "1.2.840.113549.1.9.1": "emailAddress",
}

// onelineName is the subject in OpenSSL's /type=value form, which the
// database keeps for people to read; gencrl does not use it.
func onelineName(c *x509.Certificate) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(c.RawSubject, &seq); err != nil {
		return "/"
	}
	var b strings.Builder
	for _, rdn := range seq {
		for _, atv := range rdn {
			name, ok := shortNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			fmt.Fprintf(&b, "/%s=%v", name, atv.Value)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}
