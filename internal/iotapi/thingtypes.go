package iotapi

import (
	"unicode"
	"unicode/utf8"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/registry"
)

func (h *Handler) thingTypeOperations() []operation {
	return []operation{
		{"CreateThingType", "POST /thing-types/{thingTypeName}", h.createThingType},
		{"DescribeThingType", "GET /thing-types/{thingTypeName}", h.describeThingType},
		{"ListThingTypes", "GET /thing-types", h.listThingTypes},
		{"ListThingTypes", "GET /thing-types/{$}", h.listThingTypes},
		{"DeprecateThingType", "POST /thing-types/{thingTypeName}/deprecate", h.deprecateThingType},
		{"DeleteThingType", "DELETE /thing-types/{thingTypeName}", h.deleteThingType},
	}
}

func (c *call) thingTypeNameLabel() (string, error) {
	return checkThingName(c.r.PathValue("thingTypeName"), "thingTypeName")
}

type thingTypeProperties struct {
	ThingTypeDescription *string  `json:"thingTypeDescription,omitempty"`
	SearchableAttributes []string `json:"searchableAttributes,omitempty"`
}

// checkThingTypeDescription applies the model's ThingTypeDescription: at
// most 2028 of [\p{Graph}\x20].
func checkThingTypeDescription(d string) error {
	if utf8.RuneCountInString(d) > 2028 {
		return validation(d, "thingTypeProperties.thingTypeDescription", "Member must have length less than or equal to 2028")
	}
	for _, r := range d {
		if r != ' ' && !unicode.IsGraphic(r) || unicode.IsSpace(r) && r != ' ' {
			return validation(d, "thingTypeProperties.thingTypeDescription", `Member must satisfy regular expression pattern: [\p{Graph}\x20]*`)
		}
	}
	return nil
}

type createThingTypeInput struct {
	ThingTypeProperties *thingTypeProperties `json:"thingTypeProperties"`
	Tags                []tag                `json:"tags"`
}

type createThingTypeOutput struct {
	ThingTypeName string `json:"thingTypeName"`
	ThingTypeArn  string `json:"thingTypeArn"`
	ThingTypeID   string `json:"thingTypeId"`
}

func (h *Handler) createThingType(c *call) (any, error) {
	var in createThingTypeInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.thingTypeNameLabel()
	if err != nil {
		return nil, err
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	input := registry.ThingTypeInput{Name: name, Tags: tags}
	if p := in.ThingTypeProperties; p != nil {
		if p.ThingTypeDescription != nil {
			if err := checkThingTypeDescription(*p.ThingTypeDescription); err != nil {
				return nil, err
			}
			input.Description = *p.ThingTypeDescription
		}
		input.SearchableAttributes = p.SearchableAttributes
	}
	t, err := h.reg.CreateThingType(c.r.Context(), c.scope, input)
	if err != nil {
		return nil, err
	}
	return createThingTypeOutput{ThingTypeName: t.Name, ThingTypeArn: t.ARN(), ThingTypeID: t.ID}, nil
}

type thingTypeMetadata struct {
	Deprecated      bool   `json:"deprecated"`
	DeprecationDate *epoch `json:"deprecationDate,omitempty"`
	CreationDate    epoch  `json:"creationDate"`
}

type thingTypeDefinition struct {
	ThingTypeName       string              `json:"thingTypeName"`
	ThingTypeID         string              `json:"thingTypeId,omitempty"`
	ThingTypeArn        string              `json:"thingTypeArn"`
	ThingTypeProperties thingTypeProperties `json:"thingTypeProperties"`
	ThingTypeMetadata   thingTypeMetadata   `json:"thingTypeMetadata"`
}

func encodeThingType(t *iot.ThingType, withID bool) thingTypeDefinition {
	d := thingTypeDefinition{ThingTypeName: t.Name, ThingTypeArn: t.ARN(),
		ThingTypeProperties: thingTypeProperties{SearchableAttributes: t.SearchableAttributes},
		ThingTypeMetadata:   thingTypeMetadata{Deprecated: t.Deprecated, CreationDate: epoch(t.CreatedAt)}}
	if withID {
		d.ThingTypeID = t.ID
	}
	if t.Description != "" {
		d.ThingTypeProperties.ThingTypeDescription = &t.Description
	}
	if t.Deprecated {
		at := epoch(t.DeprecatedAt)
		d.ThingTypeMetadata.DeprecationDate = &at
	}
	return d
}

func (h *Handler) describeThingType(c *call) (any, error) {
	name, err := c.thingTypeNameLabel()
	if err != nil {
		return nil, err
	}
	t, err := h.reg.DescribeThingType(c.r.Context(), c.scope, name)
	if err != nil {
		return nil, err
	}
	return encodeThingType(t, true), nil
}

type listThingTypesOutput struct {
	ThingTypes []thingTypeDefinition `json:"thingTypes"`
	NextToken  string                `json:"nextToken,omitempty"`
}

func (h *Handler) listThingTypes(c *call) (any, error) {
	opts, err := c.tokenOptions()
	if err != nil {
		return nil, err
	}
	name, err := thingTypeName(c.query.Get("thingTypeName"), "thingTypeName")
	if err != nil {
		return nil, err
	}
	list, next, err := h.reg.ListThingTypes(c.r.Context(), c.scope, name, opts)
	if err != nil {
		return nil, err
	}
	out := listThingTypesOutput{ThingTypes: make([]thingTypeDefinition, len(list)), NextToken: next}
	for i := range list {
		out.ThingTypes[i] = encodeThingType(&list[i], false)
	}
	return out, nil
}

type deprecateThingTypeInput struct {
	UndoDeprecate bool `json:"undoDeprecate"`
}

func (h *Handler) deprecateThingType(c *call) (any, error) {
	var in deprecateThingTypeInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	name, err := c.thingTypeNameLabel()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeprecateThingType(c.r.Context(), c.scope, name, in.UndoDeprecate)
}

func (h *Handler) deleteThingType(c *call) (any, error) {
	name, err := c.thingTypeNameLabel()
	if err != nil {
		return nil, err
	}
	return nil, h.reg.DeleteThingType(c.r.Context(), c.scope, name)
}
