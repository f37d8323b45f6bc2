package iot

import "time"

// TypePolicy is the ARN resource type of IoT policies.
const TypePolicy = "policy"

// Policy is an AWS IoT policy: a named document with up to five versions,
// one of which, the default, is in force.
type Policy struct {
	Scope            Scope
	Name             string
	DefaultVersionID int64
	// DefaultDocument is the default version's document; listings leave it
	// empty.
	DefaultDocument string
	CreatedAt       time.Time
	LastModifiedAt  time.Time
	// GenerationID changes with every change of the default version.
	GenerationID string
}

// ARN is the policy's ARN.
func (p *Policy) ARN() string { return p.Scope.ARN(TypePolicy, p.Name) }

// PolicyVersion is one version of a policy. Version IDs count up from 1
// and are never reused, even after a version is deleted.
type PolicyVersion struct {
	Scope      Scope
	PolicyName string
	ID         int64
	Document   string
	IsDefault  bool
	CreatedAt  time.Time
}
