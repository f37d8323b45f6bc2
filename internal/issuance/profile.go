package issuance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
)

// DeviceNotAfter is the expiry AWS IoT gives every certificate it issues.
var DeviceNotAfter = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)

// backdate is how far notBefore lies before the moment of issue, so that a
// device whose clock runs a little slow still accepts a fresh certificate. AWS
// IoT back-dates by about two minutes.
const backdate = 2 * time.Minute

// defaultSubject is the subject AWS IoT gives certificates for keys it makes.
var defaultSubject = pkix.Name{CommonName: "AWS IoT Certificate"}

// Issued is a newly signed device certificate.
type Issued struct {
	DER       []byte
	NotBefore time.Time
	NotAfter  time.Time
	// IssuerID is the certificate ID of the CA that signed it, Serial its
	// serial number in lower-case hex.
	IssuerID string
	Serial   string
}

// IssueForCSR signs a certificate for the key of a checked CSR (see
// pki.ParseCSR), keeping the CSR's subject. Everything else follows the
// profile of AWS-issued certificates; the CSR's requested extensions are not
// honoured. ctx bounds the signing: a key behind a network (a PKCS#11 token,
// a KMS) takes its time; a request already gone is not signed.
func (a *Authority) IssueForCSR(ctx context.Context, csr *x509.CertificateRequest) (*Issued, error) {
	is := a.current()
	tmpl := a.deviceTemplateOf(is)
	if len(csr.Subject.Names) > 0 {
		tmpl.RawSubject = csr.RawSubject
	} else {
		// An empty subject would need a critical SAN; use AWS's default instead.
		tmpl.Subject = defaultSubject
	}
	return a.issue(ctx, is, tmpl, csr.PublicKey, ProfileDeviceCSR)
}

// The profiles, as audit records name them.
const (
	ProfileDeviceCSR = "device-csr"
	ProfileDeviceKey = "device-key"
	ProfileClaim     = "claim"
	ProfileServer    = "server"
)

// IssueForKey signs a certificate for a public key fleetca generated, with the
// subject AWS IoT uses for such keys.
func (a *Authority) IssueForKey(ctx context.Context, pub crypto.PublicKey) (*Issued, error) {
	if err := pki.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	is := a.current()
	tmpl := a.deviceTemplateOf(is)
	tmpl.Subject = defaultSubject
	return a.issue(ctx, is, tmpl, pub, ProfileDeviceKey)
}

// ClaimValidity is how long a provisioning claim certificate is valid, as
// AWS's are: the device has five minutes to provision itself.
const ClaimValidity = 5 * time.Minute

// IssueClaim signs a provisioning claim certificate for a key fleetca
// generated: valid for ClaimValidity from now (back-dated as every
// certificate), with a random subject, as AWS's claims have one that is
// not their certificate ID.
func (a *Authority) IssueClaim(ctx context.Context, pub crypto.PublicKey) (*Issued, error) {
	if err := pki.CheckPublicKey(pub); err != nil {
		return nil, err
	}
	cn := make([]byte, 32)
	if _, err := rand.Read(cn); err != nil {
		return nil, err
	}
	is := a.current()
	tmpl := a.deviceTemplateOf(is)
	tmpl.NotAfter = tmpl.NotBefore.Add(backdate + ClaimValidity)
	tmpl.Subject = pkix.Name{CommonName: hex.EncodeToString(cn)}
	return a.issue(ctx, is, tmpl, pub, ProfileClaim)
}

func (a *Authority) deviceTemplate() *x509.Certificate {
	return a.deviceTemplateOf(a.current())
}

// deviceTemplateOf is the device profile of the certificates the issuing
// CA is signs.
func (a *Authority) deviceTemplateOf(is *IssuerKey) *x509.Certificate {
	now := a.now().UTC().Truncate(time.Second)
	crl, ocspURL := a.pointers(is.id)
	return &x509.Certificate{
		NotBefore: now.Add(-backdate),
		NotAfter:  DeviceNotAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// AWS's device certificates carry no EKU; fleetca's say clientAuth,
		// which every TLS client stack accepts in a client certificate, so
		// that no device certificate (whatever subject its CSR asked for)
		// can serve as a TLS server.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		// Empty unless the operator set a public URL: AWS's profile has no
		// pointers, and one that no client can reach helps nobody.
		CRLDistributionPoints: crl,
		OCSPServer:            ocspURL,
	}
}

func (a *Authority) issue(ctx context.Context, is *IssuerKey, tmpl *x509.Certificate, pub crypto.PublicKey, profile string) (*Issued, error) {
	// Signing cannot be interrupted once begun (crypto.Signer takes no
	// context); it is not started for a request that has already ended.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	der, err := a.signCertificate(ctx, tmpl, is.cert, is.id, pub, is.signer, profile)
	if err != nil {
		return nil, err
	}
	return &Issued{DER: der, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter,
		IssuerID: is.id, Serial: tmpl.SerialNumber.Text(16)}, nil
}

// signCertificate signs tmpl for pub with the CA parent (whose certificate
// ID is issuerID) and records the signature, or its failure, in the audit
// log before anyone sees the certificate: a record that cannot be written
// fails the issuance.
func (a *Authority) signCertificate(ctx context.Context, tmpl, parent *x509.Certificate, issuerID string, pub crypto.PublicKey, signer crypto.Signer, profile string) ([]byte, error) {
	lintErr := a.linter.check(tmpl, parent, issuerID, pub, profile)
	var der []byte
	err := lintErr
	if err == nil {
		der, err = sign(tmpl, parent, pub, signer)
	}
	if a.auditor == nil {
		return der, err
	}
	rec := audit.Record{Time: a.now().UTC(), Object: audit.Certificate, Profile: profile, Issuer: issuerID,
		Subject: subjectString(tmpl), NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter,
		Requester: audit.RequesterOf(ctx), Outcome: audit.Signed}
	for _, ip := range tmpl.IPAddresses {
		rec.SANs = append(rec.SANs, "IP:"+ip.String())
	}
	for _, name := range tmpl.DNSNames {
		rec.SANs = append(rec.SANs, "DNS:"+name)
	}
	if tmpl.SerialNumber != nil {
		rec.Serial = tmpl.SerialNumber.Text(16)
	}
	if err != nil {
		rec.Outcome, rec.Reason = audit.Failed, err.Error()
		if _, refused := errors.AsType[*LintError](lintErr); refused {
			rec.Outcome = audit.Refused
		}
		return nil, errors.Join(err, a.auditor.Write(ctx, rec))
	}
	rec.CertificateID = iot.CertificateID(der)
	if err := a.auditor.Write(ctx, rec); err != nil {
		return nil, err
	}
	return der, nil
}

// subjectString is tmpl's subject as RFC 4514 text: the raw subject a CSR
// asked for, or the one set.
func subjectString(tmpl *x509.Certificate) string {
	if tmpl.RawSubject == nil {
		return tmpl.Subject.String()
	}
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(tmpl.RawSubject, &rdns); err != nil || len(rest) > 0 {
		return ""
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdns)
	return name.String()
}

// subjectKeyID is the SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2,
// method 1), the identifier most verifiers expect.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// GenerateDeviceKey makes the RSA-2048 key CreateKeysAndCertificate returns.
// It is never stored.
func GenerateDeviceKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
}

// serverCertValidity is the lifetime of the MQTT endpoint's certificate. A new
// one is issued at every start.
const serverCertValidity = 397 * 24 * time.Hour

// IssueServerCertificate makes a new P-256 key and a TLS server certificate
// for the host names (DNS names or IP addresses) and the account-specific
// names below each DNS name, signed by the server CA, for fleetca's own MQTT
// endpoint.
func (a *Authority) IssueServerCertificate(ctx context.Context, hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("issuance: a server certificate needs at least one host name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := a.now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(serverCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
		// Devices name their account in the SNI (<account-id>.<host>), as
		// AWS devices connect to an account-specific endpoint.
		if !strings.HasPrefix(h, "*.") {
			tmpl.DNSNames = append(tmpl.DNSNames, "*."+h)
		}
	}
	der, err := a.signCertificate(ctx, tmpl, a.serverCA, iot.CertificateID(a.serverCA.Raw), &key.PublicKey, a.serverSigner, ProfileServer)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.serverCA.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
