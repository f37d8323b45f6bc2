// Package iot is fleetca's vocabulary: the resources of the AWS IoT certificate
// API (certificates, their statuses and modes), the scope they live in, and how
// their identifiers and ARNs are formed. It imports only the standard library.
package iot

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Scope is the (account, region) pair that owns every resource. The account
// comes from the access key that signed a request, the region from the SigV4
// credential scope.
type Scope struct {
	AccountID string
	Region    string
}

// Partition is the ARN partition fleetca uses for every resource.
const Partition = "aws"

// ARN builds an ARN of the given resource type and id in the scope, for example
// arn:aws:iot:us-east-1:123456789012:cert/<id>.
func (s Scope) ARN(resourceType, id string) string {
	return "arn:" + Partition + ":iot:" + s.Region + ":" + s.AccountID + ":" + resourceType + "/" + id
}

// The ARN resource types of AWS IoT that fleetca serves.
const (
	TypeCertificate         = "cert"
	TypeCACertificate       = "cacert"
	TypeCertificateProvider = "certificateprovider"
)

// CertificateARN is the ARN of a device certificate in the scope.
func (s Scope) CertificateARN(id string) string { return s.ARN(TypeCertificate, id) }

// Status is the lifecycle status of a device certificate.
type Status string

// The statuses of the model. REGISTER_INACTIVE is deprecated and is never set
// by fleetca, but it is a valid value on the wire.
const (
	StatusActive            Status = "ACTIVE"
	StatusInactive          Status = "INACTIVE"
	StatusRevoked           Status = "REVOKED"
	StatusPendingTransfer   Status = "PENDING_TRANSFER"
	StatusRegisterInactive  Status = "REGISTER_INACTIVE"
	StatusPendingActivation Status = "PENDING_ACTIVATION"
)

// ParseStatus returns the status named s and whether it is one of the model's.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusActive, StatusInactive, StatusRevoked, StatusPendingTransfer,
		StatusRegisterInactive, StatusPendingActivation:
		return st, true
	}
	return "", false
}

// Mode is a certificate's certificateMode.
type Mode string

// The certificate modes of the model.
const (
	ModeDefault Mode = "DEFAULT"
	ModeSNIOnly Mode = "SNI_ONLY"
)

// Certificate is a device certificate registered in a scope.
type Certificate struct {
	Scope Scope
	// ID is the lower-case hex SHA-256 of DER.
	ID              string
	Status          Status
	Mode            Mode
	CACertificateID string // empty unless registered under a CA
	// DER is the certificate itself. Listings leave it nil.
	DER             []byte
	OwnedBy         string
	PreviousOwnedBy string
	CreatedAt       time.Time
	LastModifiedAt  time.Time
	// CustomerVersion starts at 1 and grows by one with every change of status
	// or owner; GenerationID is a new UUID at each such change.
	CustomerVersion int64
	GenerationID    string
	NotBefore       time.Time
	NotAfter        time.Time
	// IssuerID names the fleetca CA that signed the certificate (the
	// certificate ID of that issuing CA) and Serial is its serial number in
	// lower-case hex; both are empty for a certificate fleetca did not sign.
	// They are what CRLs and OCSP answers are made from.
	IssuerID string
	Serial   string
}

// ARN is the certificate's ARN.
func (c *Certificate) ARN() string { return c.Scope.CertificateARN(c.ID) }

// CertificateID is the ID AWS IoT gives a certificate: the lower-case hex
// SHA-256 of its DER encoding.
func CertificateID(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NormalizeCertificateID accepts an ID the way the model's pattern
// (0x)?[a-fA-F0-9]+ allows it, in either case, and returns it in the
// canonical lower-case form. ok is false unless the result is 64 hex digits.
func NormalizeCertificateID(s string) (id string, ok bool) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s) != 64 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// ValidAccountID reports whether s is a 12-digit AWS account ID.
func ValidAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
