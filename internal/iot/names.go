package iot

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name and tag constraints of the AWS IoT model. The API front end checks
// them on input and says which member broke which one; the registry uses
// them where a name arrives inside another value (a resource ARN).

// ValidPolicyName reports whether name is a policy name as the model
// allows: 1 to 128 of [\w+=,.@-].
func ValidPolicyName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidProviderName reports whether name is a certificateProviderName: 1 to
// 128 characters of letters, digits, _ and =,@-.
func ValidProviderName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_=,@-", c) >= 0) {
			return false
		}
	}
	return true
}

// MaxTagKeyLength and MaxTagValueLength bound a tag, in characters.
const (
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
)

// ValidTagKeyChars reports whether every character of key is one the
// model's TagKey pattern allows: letters, digits, white space and _.:/=+-@.
func ValidTagKeyChars(key string) bool {
	if !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if !(unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Z, r) || strings.ContainsRune("_.:/=+-@", r)) {
			return false
		}
	}
	return true
}
