// Package audit records every signature fleetca makes with a CA key:
// what was signed, for whom and at whose request, and how it ended. A
// record is written before the answer it belongs to is sent; a record
// that cannot be written fails the request, so no signature goes
// unrecorded. Records never hold a private key or a secret: only public
// facts about the signed object and who asked.
package audit

import (
	"context"
	"time"
)

// Requester is who asked for a signature: an API caller (by access key),
// a device (by the certificate it connected with), or fleetca itself (a
// CRL refresh, an OCSP answer to an anonymous client).
type Requester struct {
	Account   string `json:"account,omitempty"`
	Region    string `json:"region,omitempty"`
	Operation string `json:"operation,omitempty"`
	// AccessKeyID signed the API request.
	AccessKeyID string `json:"access_key_id,omitempty"`
	// CertificateID is the certificate the device connected with, and
	// ClientID its MQTT client ID.
	CertificateID string `json:"device_certificate_id,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
	// Remote is the client's address, for requests without credentials
	// (OCSP).
	Remote string `json:"remote,omitempty"`
}

type requesterKey struct{}

// WithRequester returns ctx carrying who is asking; the front ends set it,
// the signing engine reads it.
func WithRequester(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// RequesterOf returns who is asking, as set by WithRequester.
func RequesterOf(ctx context.Context) Requester {
	r, _ := ctx.Value(requesterKey{}).(Requester)
	return r
}

// What was signed.
const (
	Certificate = "certificate"
	CRL         = "crl"
	OCSP        = "ocsp"
)

// Outcomes.
const (
	Signed = "signed"
	// Refused: a check before signing said no (a lint error); nothing was
	// signed with the CA key.
	Refused = "refused"
	// Failed: the CA key did not sign (a token out of reach).
	Failed = "failed"
)

// Record is one signature, made or refused.
type Record struct {
	Time   time.Time `json:"time"`
	Object string    `json:"object"`
	// Profile is the certificate's kind: device-csr, device-key, claim,
	// server, or provider (signed by a certificate provider's function).
	Profile string `json:"profile,omitempty"`
	// Issuer is the certificate ID of the CA that signed (or a provider's
	// function ARN).
	Issuer        string    `json:"issuer"`
	CertificateID string    `json:"certificate_id,omitempty"`
	Serial        string    `json:"serial,omitempty"`
	Subject       string    `json:"subject,omitempty"`
	SANs          []string  `json:"sans,omitempty"`
	NotBefore     time.Time `json:"not_before,omitzero"`
	NotAfter      time.Time `json:"not_after,omitzero"`
	// CRLNumber and Entries describe a CRL; Status an OCSP answer.
	CRLNumber int64     `json:"crl_number,omitempty"`
	Entries   int       `json:"entries,omitempty"`
	Status    string    `json:"status,omitempty"`
	Requester Requester `json:"requester"`
	Outcome   string    `json:"outcome"`
	// Reason says why a signature was refused or failed.
	Reason string `json:"reason,omitempty"`
}
