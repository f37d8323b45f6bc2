package iotapi

import (
	"fmt"
	"unicode/utf8"

	"github.com/fleetca/fleetca/internal/iot"
)

// The AWS model's constraints on names, tokens and tags, checked here and
// nowhere else, each answered in the model's one message form
// (validation). The registry keeps the rules beyond the model: limits,
// states, ownership, reserved prefixes.

// providerName reads the certificateProviderName path label.
func (c *call) providerName() (string, error) {
	name := c.r.PathValue("certificateProviderName")
	if n := len(name); n < 1 || n > 128 {
		return "", validation(name, "certificateProviderName", "Member must have length between 1 and 128")
	}
	if !iot.ValidProviderName(name) {
		return "", validation(name, "certificateProviderName", `Member must satisfy regular expression pattern: [\w=,@-]+`)
	}
	return name, nil
}

// checkClientToken applies the model's ClientToken: 36 to 64 printable
// ASCII characters other than space.
func checkClientToken(token string) error {
	if n := len(token); n < 36 || n > 64 {
		return validation(token, "clientToken", "Member must have length between 36 and 64")
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return validation(token, "clientToken", `Member must satisfy regular expression pattern: ^[\x21-\x7E]+$`)
		}
	}
	return nil
}

// checkDefaultOperations applies the model's accountDefaultForOperations: a
// list of exactly one operation, CreateCertificateFromCsr.
func checkDefaultOperations(ops []string) error {
	if len(ops) != 1 {
		return validation(fmt.Sprint(ops), "accountDefaultForOperations", "Member must have length between 1 and 1")
	}
	if ops[0] != iot.OperationCreateCertificateFromCsr {
		return validation(ops[0], "accountDefaultForOperations.member", "Member must satisfy enum value set: ["+iot.OperationCreateCertificateFromCsr+"]")
	}
	return nil
}

// checkTagKey applies the model's TagKey to a key at member.
func checkTagKey(key, member string) error {
	if n := utf8.RuneCountInString(key); n < 1 || n > iot.MaxTagKeyLength {
		return validation(key, member, "Member must have length between 1 and 128")
	}
	if !iot.ValidTagKeyChars(key) {
		return validation(key, member, `Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
	}
	return nil
}

// checkTagValue applies the model's TagValue to a value at member. JSON
// decoding has made it valid UTF-8 already.
func checkTagValue(value, member string) error {
	if utf8.RuneCountInString(value) > iot.MaxTagValueLength {
		return validation(value, member, "Member must have length less than or equal to 256")
	}
	return nil
}
