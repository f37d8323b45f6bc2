package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

// TestThingTypesOverHTTP is the thing-type API through the SDK: create,
// describe, list, things of a type, deprecation, deletion and tags.
func TestThingTypesOverHTTP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	typeARN := func(name string) string {
		return "arn:aws:iot:" + testRegion + ":" + testAccount + ":thingtype/" + name
	}
	create := func(name, description string, searchable ...string) (*iot.CreateThingTypeOutput, error) {
		in := &iot.CreateThingTypeInput{ThingTypeName: aws.String(name)}
		if description != "" || searchable != nil {
			in.ThingTypeProperties = &types.ThingTypeProperties{SearchableAttributes: searchable}
			if description != "" {
				in.ThingTypeProperties.ThingTypeDescription = aws.String(description)
			}
		}
		return c.CreateThingType(ctx, in)
	}
	deprecate := func(name string, undo bool) error {
		_, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(name), UndoDeprecate: undo})
		return err
	}

	before := time.Now().Add(-time.Second)
	sensor, err := create("sensor", "Temperature sensors", "serial", "site")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sensor.ThingTypeName) != "sensor" || aws.ToString(sensor.ThingTypeArn) != typeARN("sensor") || len(aws.ToString(sensor.ThingTypeId)) != 36 {
		t.Fatalf("CreateThingType = name %q, ARN %q, ID %q", aws.ToString(sensor.ThingTypeName), aws.ToString(sensor.ThingTypeArn), aws.ToString(sensor.ThingTypeId))
	}

	t.Run("create again", func(t *testing.T) {
		same, err := create("sensor", "Temperature sensors", "serial", "site")
		if err != nil {
			t.Fatalf("the same type again: %v", err)
		}
		if aws.ToString(same.ThingTypeId) != aws.ToString(sensor.ThingTypeId) || aws.ToString(same.ThingTypeArn) != typeARN("sensor") {
			t.Errorf("the same type again has ID %q, ARN %q; want %q, %q", aws.ToString(same.ThingTypeId), aws.ToString(same.ThingTypeArn),
				aws.ToString(sensor.ThingTypeId), typeARN("sensor"))
		}
		for _, tc := range []struct {
			description string
			searchable  []string
		}{
			{"Humidity sensors", []string{"serial", "site"}},
			{"Temperature sensors", []string{"serial"}},
			{"", nil},
		} {
			_, err := create("sensor", tc.description, tc.searchable...)
			var exists *types.ResourceAlreadyExistsException
			if !isErr[*types.ResourceAlreadyExistsException](err) {
				t.Errorf("sensor again as %q %v: %v, want ResourceAlreadyExistsException", tc.description, tc.searchable, err)
				continue
			}
			if errors.As(err, &exists); aws.ToString(exists.ResourceId) != aws.ToString(sensor.ThingTypeId) || aws.ToString(exists.ResourceArn) != typeARN("sensor") {
				t.Errorf("ResourceAlreadyExistsException names %q, %q", aws.ToString(exists.ResourceId), aws.ToString(exists.ResourceArn))
			}
		}
		if _, err := create("too-searchable", "", "a", "b", "c", "d"); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("four searchable attributes: %v, want InvalidRequestException", err)
		}
		if _, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("too-searchable")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a refused type was made: %v", err)
		}
	})

	t.Run("describe", func(t *testing.T) {
		d, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("sensor")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(d.ThingTypeName) != "sensor" || aws.ToString(d.ThingTypeId) != aws.ToString(sensor.ThingTypeId) || aws.ToString(d.ThingTypeArn) != typeARN("sensor") {
			t.Errorf("DescribeThingType = name %q, ID %q, ARN %q", aws.ToString(d.ThingTypeName), aws.ToString(d.ThingTypeId), aws.ToString(d.ThingTypeArn))
		}
		p := d.ThingTypeProperties
		if p == nil || aws.ToString(p.ThingTypeDescription) != "Temperature sensors" || !slices.Equal(p.SearchableAttributes, []string{"serial", "site"}) {
			t.Errorf("properties %+v", p)
		}
		m := d.ThingTypeMetadata
		if m == nil || m.Deprecated || m.DeprecationDate != nil || m.CreationDate == nil {
			t.Fatalf("metadata %+v, want not deprecated with a creation date", m)
		}
		if m.CreationDate.Before(before) || m.CreationDate.After(time.Now().Add(time.Second)) {
			t.Errorf("creation date %v, want about now", m.CreationDate)
		}
		if _, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("missing")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("DescribeThingType of a missing type: %v, want ResourceNotFoundException", err)
		}
		bare, err := create("bare", "")
		if err != nil {
			t.Fatal(err)
		}
		d, err = c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: bare.ThingTypeName})
		if err != nil {
			t.Fatal(err)
		}
		if p := d.ThingTypeProperties; p != nil && (p.ThingTypeDescription != nil || len(p.SearchableAttributes) != 0) {
			t.Errorf("a bare type's properties: %+v", p)
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, name := range []string{"list-c", "list-a", "list-b"} {
			if _, err := create(name, "listed"); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		var token *string
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			out, err := c.ListThingTypes(ctx, &iot.ListThingTypesInput{MaxResults: aws.Int32(1), NextToken: token})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.ThingTypes) > 1 {
				t.Fatalf("a page of %d with MaxResults 1", len(out.ThingTypes))
			}
			for _, tt := range out.ThingTypes {
				names = append(names, aws.ToString(tt.ThingTypeName))
				if aws.ToString(tt.ThingTypeArn) != typeARN(aws.ToString(tt.ThingTypeName)) || tt.ThingTypeMetadata == nil || tt.ThingTypeMetadata.CreationDate == nil {
					t.Errorf("listed %+v", tt)
				}
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
		// Other subtests may add types; the three are listed in name order
		// among them, each once.
		var listed []string
		for _, n := range names {
			if strings.HasPrefix(n, "list-") {
				listed = append(listed, n)
			}
		}
		if !slices.Equal(listed, []string{"list-a", "list-b", "list-c"}) || !slices.IsSorted(names) || !slices.Contains(names, "sensor") {
			t.Errorf("listed by one: %v", names)
		}

		out, err := c.ListThingTypes(ctx, &iot.ListThingTypesInput{ThingTypeName: aws.String("list-b")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ThingTypes) != 1 || aws.ToString(out.ThingTypes[0].ThingTypeName) != "list-b" || out.NextToken != nil {
			t.Errorf("filtered by name: %+v, next %v", out.ThingTypes, out.NextToken)
		} else if p := out.ThingTypes[0].ThingTypeProperties; p == nil || aws.ToString(p.ThingTypeDescription) != "listed" {
			t.Errorf("filtered by name: properties %+v", p)
		}
		out, err = c.ListThingTypes(ctx, &iot.ListThingTypesInput{ThingTypeName: aws.String("no-such-type")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ThingTypes) != 0 || out.NextToken != nil {
			t.Errorf("filtered by an unknown name: %+v", out.ThingTypes)
		}
	})

	t.Run("things of a type", func(t *testing.T) {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed-1"), ThingTypeName: aws.String("sensor"),
			AttributePayload: &types.AttributePayload{Attributes: map[string]string{"serial": "1", "site": "a", "model": "m", "floor": "2"}}}); err != nil {
			t.Fatalf("a thing of a type with four attributes: %v", err)
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("untyped-1")}); err != nil {
			t.Fatal(err)
		}
		d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("typed-1")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(d.ThingTypeName) != "sensor" || len(d.Attributes) != 4 {
			t.Errorf("DescribeThing: type %q, attributes %v", aws.ToString(d.ThingTypeName), d.Attributes)
		}
		list, err := c.ListThings(ctx, &iot.ListThingsInput{ThingTypeName: aws.String("sensor")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Things) != 1 || aws.ToString(list.Things[0].ThingName) != "typed-1" || aws.ToString(list.Things[0].ThingTypeName) != "sensor" {
			t.Errorf("ListThings of type sensor: %+v", list.Things)
		}

		many := map[string]string{}
		for i := range 50 {
			many[fmt.Sprintf("attr%02d", i)] = "v"
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed-50"), ThingTypeName: aws.String("sensor"),
			AttributePayload: &types.AttributePayload{Attributes: many}}); err != nil {
			t.Errorf("a thing of a type with 50 attributes: %v", err)
		}
		many["attr50"] = "v"
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed-51"), ThingTypeName: aws.String("sensor"),
			AttributePayload: &types.AttributePayload{Attributes: many}}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("a thing of a type with 51 attributes: %v, want InvalidRequestException", err)
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("untyped-4"),
			AttributePayload: &types.AttributePayload{Attributes: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}}}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("a thing without a type with four attributes: %v, want InvalidRequestException", err)
		}

		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed-missing"), ThingTypeName: aws.String("missing")})
		if !isErr[*types.ResourceNotFoundException](err) || !strings.Contains(err.Error(), "Thing type missing cannot be found") {
			t.Errorf("a thing of a missing type: %v, want ResourceNotFoundException", err)
		}

		// UpdateThing sets and removes the type.
		if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("untyped-1"), ThingTypeName: aws.String("sensor")}); err != nil {
			t.Fatal(err)
		}
		if d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("untyped-1")}); err != nil || aws.ToString(d.ThingTypeName) != "sensor" || d.Version != 2 {
			t.Errorf("after UpdateThing set the type: %+v, %v", d, err)
		}
		if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("untyped-1"), ThingTypeName: aws.String("missing")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("UpdateThing to a missing type: %v, want ResourceNotFoundException", err)
		}
		if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("untyped-1"), RemoveThingType: true}); err != nil {
			t.Fatal(err)
		}
		if d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("untyped-1")}); err != nil || d.ThingTypeName != nil {
			t.Errorf("after UpdateThing removed the type: type %q, %v", aws.ToString(d.ThingTypeName), err)
		}
		if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("typed-1"), RemoveThingType: true}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("removing the type of a thing with four attributes: %v, want InvalidRequestException", err)
		}
	})

	t.Run("deprecation and deletion", func(t *testing.T) {
		if _, err := create("old", "to be deleted"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("old-1")}); err != nil {
			t.Fatal(err)
		}
		_, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("old")})
		if !isErr[*types.InvalidRequestException](err) || !strings.Contains(err.Error(), "deprecated") {
			t.Errorf("deleting a type not deprecated: %v, want InvalidRequestException", err)
		}

		if err := deprecate("old", false); err != nil {
			t.Fatal(err)
		}
		d, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("old")})
		if err != nil {
			t.Fatal(err)
		}
		if m := d.ThingTypeMetadata; m == nil || !m.Deprecated || m.DeprecationDate == nil || m.DeprecationDate.Before(*m.CreationDate) {
			t.Errorf("deprecated metadata %+v", m)
		}
		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("old-2"), ThingTypeName: aws.String("old")})
		if !isErr[*types.InvalidRequestException](err) || !strings.Contains(err.Error(), "deprecated") {
			t.Errorf("a thing of a deprecated type: %v, want InvalidRequestException", err)
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("old-2")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a refused thing was made: %v", err)
		}
		if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("old-1"), ThingTypeName: aws.String("old")}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("UpdateThing to a deprecated type: %v, want InvalidRequestException", err)
		}
		_, err = c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("old")})
		if !isErr[*types.InvalidRequestException](err) || !strings.Contains(err.Error(), "five minutes") {
			t.Errorf("deleting a type just deprecated: %v, want InvalidRequestException mentioning five minutes", err)
		}
		if _, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("old")}); err != nil {
			t.Errorf("a refused delete deleted: %v", err)
		}

		// Undone, the type takes things again.
		if err := deprecate("old", true); err != nil {
			t.Fatal(err)
		}
		d, err = c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("old")})
		if err != nil {
			t.Fatal(err)
		}
		if m := d.ThingTypeMetadata; m == nil || m.Deprecated || m.DeprecationDate != nil {
			t.Errorf("metadata after undoing the deprecation: %+v", m)
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("old-2"), ThingTypeName: aws.String("old")}); err != nil {
			t.Errorf("a thing of a type no longer deprecated: %v", err)
		}
		if err := deprecate("missing", false); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("deprecating a missing type: %v, want ResourceNotFoundException", err)
		}
		if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("missing")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("deleting a missing type: %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("tags", func(t *testing.T) {
		out, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("tagged"),
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
		if err != nil {
			t.Fatal(err)
		}
		arn := out.ThingTypeArn
		if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("floor"), Value: aws.String("3")}}}); err != nil {
			t.Fatal(err)
		}
		tags := func() map[string]string { t.Helper(); return resourceTags(t, c, arn) }
		if got := tags(); len(got) != 2 || got["team"] != "a" || got["floor"] != "3" {
			t.Errorf("tags %v, want team=a and floor=3", got)
		}
		if _, err := c.UntagResource(ctx, &iot.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team"}}); err != nil {
			t.Fatal(err)
		}
		if got := tags(); len(got) != 1 || got["floor"] != "3" {
			t.Errorf("tags after untagging %v, want floor=3", got)
		}
		if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(typeARN("missing"))}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("tags of a missing type: %v, want ResourceNotFoundException", err)
		}
	})
}

// TestThingTypesOfAnotherAccount: a type is its account's alone.
func TestThingTypesOfAnotherAccount(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c, other := ts.iotClient(), ts.accountClient(t, testOtherAcct)
	ctx := context.Background()
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("mine")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("mine")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("another account describes the type: %v", err)
	}
	if _, err := other.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("theirs"), ThingTypeName: aws.String("mine")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("another account's thing takes the type: %v", err)
	}
	if list, err := other.ListThingTypes(ctx, &iot.ListThingTypesInput{}); err != nil || len(list.ThingTypes) != 0 {
		t.Errorf("another account lists %+v, %v", list, err)
	}
	if _, err := other.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("mine"),
		ThingTypeProperties: &types.ThingTypeProperties{ThingTypeDescription: aws.String("theirs")}}); err != nil {
		t.Errorf("another account's type of the same name: %v", err)
	}
}

// TestRegisterThingWithThingType is provisioning with a template whose
// thing names a thing type: the type must exist and not be deprecated.
func TestRegisterThingWithThingType(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	// A fleet-provisioning template's thing of the type its parameter
	// names; the inline body RegisterThing applies is the same but for
	// naming its certificate with the caller's CertificateId parameter (the
	// control plane has no built-in certificate parameter).
	const templateBody = `{"Parameters": {"ThingName": {"Type": "String"}, "ThingType": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
		"Resources": {
			"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}, "ThingTypeName": {"Ref": "ThingType"},
				"AttributePayload": {"serial": "1", "model": "m", "site": "s", "floor": "2"}},
				"OverrideSettings": {"ThingTypeName": "REPLACE", "AttributePayload": "REPLACE"}},
			"certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}}}`
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("provisioned")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("retired")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("retired")}); err != nil {
		t.Fatal(err)
	}
	// The same body is a fleet-provisioning template's.
	tpl, err := c.CreateProvisioningTemplate(ctx, &iot.CreateProvisioningTemplateInput{TemplateName: aws.String("typed"), TemplateBody: aws.String(templateBody),
		Type: types.TemplateTypeFleetProvisioning, Enabled: aws.Bool(true), ProvisioningRoleArn: aws.String("arn:aws:iam::123456789012:role/Provision")})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.DescribeProvisioningTemplate(ctx, &iot.DescribeProvisioningTemplateInput{TemplateName: tpl.TemplateName}); err != nil ||
		d.Type != types.TemplateTypeFleetProvisioning || !aws.ToBool(d.Enabled) || aws.ToString(d.TemplateBody) != templateBody {
		t.Fatalf("the template: %+v, %v", d, err)
	}
	body := strings.ReplaceAll(templateBody, "AWS::IoT::Certificate::Id", "CertificateId")
	newCert := func() *iot.CreateKeysAndCertificateOutput {
		t.Helper()
		cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	register := func(thing, thingType, certificateID string) (*iot.RegisterThingOutput, error) {
		return c.RegisterThing(ctx, &iot.RegisterThingInput{TemplateBody: aws.String(body),
			Parameters: map[string]string{"ThingName": thing, "ThingType": thingType, "CertificateId": certificateID}})
	}
	thingType := func(name string) string {
		t.Helper()
		d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(d.ThingTypeName)
	}

	t.Run("existing type", func(t *testing.T) {
		cert := newCert()
		out, err := register("typed-device-1", "provisioned", *cert.CertificateId)
		if err != nil {
			t.Fatal(err)
		}
		if out.ResourceArns["thing"] != "arn:aws:iot:"+testRegion+":"+testAccount+":thing/typed-device-1" {
			t.Errorf("resourceArns %v", out.ResourceArns)
		}
		d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("typed-device-1")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(d.ThingTypeName) != "provisioned" || len(d.Attributes) != 4 {
			t.Errorf("the provisioned thing has type %q and attributes %v; want provisioned and four", aws.ToString(d.ThingTypeName), d.Attributes)
		}
		list, err := c.ListThings(ctx, &iot.ListThingsInput{ThingTypeName: aws.String("provisioned")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Things) != 1 || aws.ToString(list.Things[0].ThingName) != "typed-device-1" {
			t.Errorf("things of the type: %+v", list.Things)
		}
		// The type a thing has is not deleted, nor are things deleted with
		// a type.
		if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("provisioned")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("provisioned")}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("deleting the type: %v, want InvalidRequestException", err)
		}
		if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("provisioned"), UndoDeprecate: true}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("existing thing takes the type", func(t *testing.T) {
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed-device-2")}); err != nil {
			t.Fatal(err)
		}
		if _, err := register("typed-device-2", "provisioned", *newCert().CertificateId); err != nil {
			t.Fatal(err)
		}
		if got := thingType("typed-device-2"); got != "provisioned" {
			t.Errorf("with OverrideSettings ThingTypeName REPLACE the thing has type %q, want provisioned", got)
		}
	})

	t.Run("override settings of an existing thing's type", func(t *testing.T) {
		if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("other")}); err != nil {
			t.Fatal(err)
		}
		withOverride := func(setting string) string {
			return strings.Replace(body, `"OverrideSettings": {"ThingTypeName": "REPLACE", "AttributePayload": "REPLACE"}`,
				`"OverrideSettings": {"ThingTypeName": "`+setting+`", "AttributePayload": "DO_NOTHING"}`, 1)
		}
		registerWith := func(setting, thing, thingType string) error {
			_, err := c.RegisterThing(ctx, &iot.RegisterThingInput{TemplateBody: aws.String(withOverride(setting)),
				Parameters: map[string]string{"ThingName": thing, "ThingType": thingType, "CertificateId": *newCert().CertificateId}})
			return err
		}
		if withOverride("FAIL") == body {
			t.Fatal("the override settings were not replaced")
		}
		if err := registerWith("DO_NOTHING", "typed-device-1", "other"); err != nil {
			t.Errorf("DO_NOTHING with another type: %v", err)
		}
		if got := thingType("typed-device-1"); got != "provisioned" {
			t.Errorf("after DO_NOTHING the thing has type %q, want provisioned", got)
		}
		if err := registerWith("FAIL", "typed-device-1", "provisioned"); err != nil {
			t.Errorf("FAIL with the thing's own type: %v", err)
		}
		if err := registerWith("FAIL", "typed-device-1", "other"); !isErr[*types.ConflictingResourceUpdateException](err) {
			t.Errorf("FAIL with another type: %v, want ConflictingResourceUpdateException", err)
		}
		if got := thingType("typed-device-1"); got != "provisioned" {
			t.Errorf("after a refused FAIL the thing has type %q, want provisioned", got)
		}
		if err := registerWith("REPLACE", "typed-device-1", "other"); err != nil {
			t.Errorf("REPLACE with another type: %v", err)
		}
		if got := thingType("typed-device-1"); got != "other" {
			t.Errorf("after REPLACE the thing has type %q, want other", got)
		}
		// A new thing takes the template's type whatever the override.
		if err := registerWith("DO_NOTHING", "typed-device-3", "other"); err != nil {
			t.Fatal(err)
		}
		if got := thingType("typed-device-3"); got != "other" {
			t.Errorf("a new thing with DO_NOTHING has type %q, want other", got)
		}
	})

	t.Run("refusals create nothing", func(t *testing.T) {
		for _, tc := range []struct{ thingType, substr string }{
			{"missing", "Thing type missing cannot be found"},
			{"retired", "deprecated"},
		} {
			cert := newCert()
			name := "refused-" + tc.thingType
			_, err := register(name, tc.thingType, *cert.CertificateId)
			if !isErr[*types.ResourceRegistrationFailureException](err) || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("a template's thing of type %s: %v, want ResourceRegistrationFailureException mentioning %q", tc.thingType, err, tc.substr)
			}
			if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)}); !isErr[*types.ResourceNotFoundException](err) {
				t.Errorf("a refused registration made its thing: %v", err)
			}
			d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: cert.CertificateId})
			if err != nil {
				t.Fatal(err)
			}
			if d.CertificateDescription.Status != types.CertificateStatusInactive {
				t.Errorf("a refused registration set the certificate %s", d.CertificateDescription.Status)
			}
			if things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: cert.CertificateArn}); err != nil || len(things.Things) != 0 {
				t.Errorf("a refused registration attached the certificate: %v, %v", things, err)
			}
		}
		// An existing thing is left as it is.
		if _, err := register("typed-device-1", "missing", *newCert().CertificateId); !isErr[*types.ResourceRegistrationFailureException](err) {
			t.Errorf("an existing thing to a missing type: %v, want ResourceRegistrationFailureException", err)
		}
		if got := thingType("typed-device-1"); got != "other" {
			t.Errorf("a refused registration changed the thing's type to %q", got)
		}
	})
}
