package iot

import (
	"strings"
	"time"
)

// TypeThing is the ARN resource type of things.
const TypeThing = "thing"

// Thing is a device in the registry: a name, attributes, and the
// certificates (principals) attached to it.
type Thing struct {
	Scope Scope
	Name  string
	// ID is a UUID given at creation.
	ID string
	// TypeName is the thing type, "" for none.
	TypeName   string
	Attributes map[string]string
	// Version counts from 1 and grows with every update.
	Version    int64
	CreatedAt  time.Time
	ModifiedAt time.Time
}

// ARN is the thing's ARN.
func (t *Thing) ARN() string { return t.Scope.ARN(TypeThing, t.Name) }

// ThingPrincipal is a principal (a certificate ARN) attached to a thing.
// An exclusive attachment keeps the principal from any other thing.
type ThingPrincipal struct {
	ThingName string
	Principal string
	Exclusive bool
}

// Thing name and attribute limits of the model.
const (
	MaxThingNameLength      = 128
	MaxAttributeNameLength  = 128
	MaxAttributeValueLength = 800
	// MaxAttributesWithoutType is how many attributes a thing without a
	// thing type may have (50 with one).
	MaxAttributesWithoutType = 3
)

// ValidThingName reports whether name is a thing name as the model allows:
// 1 to 128 of [a-zA-Z0-9:_-].
func ValidThingName(name string) bool {
	return len(name) >= 1 && len(name) <= MaxThingNameLength && only(name, ":_-")
}

// ValidAttributeName reports whether name is an attribute name: 1 to 128 of
// [a-zA-Z0-9_.,@/:#-].
func ValidAttributeName(name string) bool {
	return len(name) >= 1 && len(name) <= MaxAttributeNameLength && only(name, "_.,@/:#-")
}

// ValidAttributeValue reports whether value is an attribute value: at most
// 800 of [a-zA-Z0-9_.,@/:#=\[\]-] (empty allowed: in a merge it removes the
// attribute).
func ValidAttributeValue(value string) bool {
	return len(value) <= MaxAttributeValueLength && only(value, "_.,@/:#=[]-")
}

// only reports whether s has only ASCII letters, digits and bytes of extra.
func only(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// TypeThingType is the ARN resource type of thing types.
const TypeThingType = "thingtype"

// ThingType is a named kind of thing: a description and up to three
// searchable attributes; a thing with a type may have fifty attributes.
// A deprecated type takes no new things.
type ThingType struct {
	Scope                Scope
	Name                 string
	ID                   string
	Description          string
	SearchableAttributes []string
	Deprecated           bool
	DeprecatedAt         time.Time
	CreatedAt            time.Time
}

// ARN is the thing type's ARN.
func (t *ThingType) ARN() string { return t.Scope.ARN(TypeThingType, t.Name) }
