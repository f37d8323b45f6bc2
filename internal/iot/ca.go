package iot

import (
	"strings"
	"time"
)

// CAStatus is the status of a registered CA certificate.
type CAStatus string

// The CA statuses of the model.
const (
	CAStatusActive   CAStatus = "ACTIVE"
	CAStatusInactive CAStatus = "INACTIVE"
)

// AutoRegistration is whether devices signed by a CA are registered on their
// first connection (just-in-time registration).
type AutoRegistration string

// The auto-registration statuses of the model.
const (
	AutoRegistrationEnable  AutoRegistration = "ENABLE"
	AutoRegistrationDisable AutoRegistration = "DISABLE"
)

// RegistrationConfig is a CA's just-in-time provisioning template: an inline
// template and role, or the name of a provisioning template.
type RegistrationConfig struct {
	TemplateBody string
	RoleARN      string
	TemplateName string
}

// IsZero reports whether no member is set.
func (r RegistrationConfig) IsZero() bool { return r == RegistrationConfig{} }

// CACertificate is a CA certificate registered in a scope.
type CACertificate struct {
	Scope Scope
	// ID is the lower-case hex SHA-256 of DER.
	ID               string
	Status           CAStatus
	AutoRegistration AutoRegistration
	Mode             Mode
	// DER is the certificate. Listings leave it nil.
	DER []byte
	// SubjectKey identifies the certificate's subject (the hex SHA-256 of its
	// raw DER), so that device certificates find their CA by issuer name.
	SubjectKey         string
	RegistrationConfig RegistrationConfig
	OwnedBy            string
	CreatedAt          time.Time
	LastModifiedAt     time.Time
	CustomerVersion    int64
	GenerationID       string
	NotBefore          time.Time
	NotAfter           time.Time
}

// CACertificateARN is the ARN of a CA certificate in the scope.
func (s Scope) CACertificateARN(id string) string { return s.ARN(TypeCACertificate, id) }

// ARN is the CA certificate's ARN.
func (c *CACertificate) ARN() string { return c.Scope.CACertificateARN(c.ID) }

// Tag is a key-value pair attached to a resource.
type Tag struct {
	Key   string
	Value string
}

// Resource names a taggable resource of a scope.
type Resource struct {
	Scope Scope
	// Type is the ARN resource type: TypeCACertificate or
	// TypeCertificateProvider.
	Type string
	ID   string
}

// ARN is the resource's ARN.
func (r Resource) ARN() string { return r.Scope.ARN(r.Type, r.ID) }

// ParsedARN is an IoT ARN split into its parts.
type ParsedARN struct {
	Partition, Region, AccountID, ResourceType, ResourceID string
}

// ParseARN splits an arn:PARTITION:iot:REGION:ACCOUNT:TYPE/ID string; ok is
// false for anything else.
func ParseARN(s string) (ParsedARN, bool) {
	var p ParsedARN
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iot" || parts[1] == "" {
		return p, false
	}
	p.Partition, p.Region, p.AccountID = parts[1], parts[3], parts[4]
	var found bool
	p.ResourceType, p.ResourceID, found = strings.Cut(parts[5], "/")
	return p, found && p.ResourceType != "" && p.ResourceID != ""
}
