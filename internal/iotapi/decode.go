package iotapi

import (
	"github.com/fleetca/fleetca/internal/iot"
)

// Decoders shared by several operations: tags and PEM members.

// maxPEMLength is the model's bound on every certificate PEM member.
const maxPEMLength = 65536

// tag is the wire form of iot.Tag; its members are PascalCase in the model.
type tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

func decodeTags(in []tag, member string) ([]iot.Tag, error) {
	out := make([]iot.Tag, 0, len(in))
	for _, t := range in {
		if t.Key == nil {
			return nil, validation("null", member+".member.Key", "Member must not be null")
		}
		if err := checkTagKey(*t.Key, member+".member.Key"); err != nil {
			return nil, err
		}
		v := ""
		if t.Value != nil {
			v = *t.Value
		}
		if err := checkTagValue(v, member+".member.Value"); err != nil {
			return nil, err
		}
		out = append(out, iot.Tag{Key: *t.Key, Value: v})
	}
	return out, nil
}

// pemMember checks a required or optional PEM member's length.
func pemMember(p *string, member string, required bool) (string, error) {
	if p == nil {
		if required {
			return "", validation("null", member, "Member must not be null")
		}
		return "", nil
	}
	if n := len(*p); n < 1 || n > maxPEMLength {
		return "", validation(*p, member, "Member must have length between 1 and 65536")
	}
	return *p, nil
}
