package server_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var thingUUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func thingARN(account, name string) string {
	return "arn:aws:iot:us-east-1:" + account + ":thing/" + name
}

// errStatus is the HTTP status of a failed call, 0 when there was none.
func thingErrStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// errMessage is the message of the service's error.
func thingErrMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorMessage()
	}
	return ""
}

// okStatus is the HTTP status of a call that succeeded.
func thingOKStatus(md middleware.Metadata) int {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
		return resp.StatusCode
	}
	return 0
}

func thingAttrs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func thingCreate(t testing.TB, c *iot.Client, name string, attrs map[string]string) *iot.CreateThingOutput {
	t.Helper()
	in := &iot.CreateThingInput{ThingName: aws.String(name)}
	if attrs != nil {
		in.AttributePayload = &types.AttributePayload{Attributes: attrs}
	}
	out, err := c.CreateThing(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateThing(%s): %v", name, err)
	}
	return out
}

func thingDescribe(t testing.TB, c *iot.Client, name string) *iot.DescribeThingOutput {
	t.Helper()
	out, err := c.DescribeThing(context.Background(), &iot.DescribeThingInput{ThingName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeThing(%s): %v", name, err)
	}
	return out
}

// newCertificate makes a certificate of c's account and returns its ID and ARN.
func thingNewCert(t testing.TB, c *iot.Client, active bool) (string, string) {
	t.Helper()
	out, err := c.CreateKeysAndCertificate(context.Background(), &iot.CreateKeysAndCertificateInput{SetAsActive: active})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.CertificateId), aws.ToString(out.CertificateArn)
}

func thingTagMap(t testing.TB, c *iot.Client, arn string) map[string]string {
	t.Helper()
	out, err := c.ListTagsForResource(context.Background(), &iot.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("ListTagsForResource(%s): %v", arn, err)
	}
	m := map[string]string{}
	for _, tag := range out.Tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

// TestThingCreateDescribe creates and describes things through the SDK,
// with every documented refusal of CreateThing.
func TestThingCreateDescribe(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()

	attrs := thingAttrs("site", "north", "model", "x-1")
	out, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("sensor-7"),
		AttributePayload: &types.AttributePayload{Attributes: attrs}})
	if err != nil {
		t.Fatal(err)
	}
	wantARN := thingARN(testAccount, "sensor-7")
	if aws.ToString(out.ThingName) != "sensor-7" || aws.ToString(out.ThingArn) != wantARN || !thingUUIDPattern.MatchString(aws.ToString(out.ThingId)) {
		t.Fatalf("CreateThing = name %q arn %q id %q", aws.ToString(out.ThingName), aws.ToString(out.ThingArn), aws.ToString(out.ThingId))
	}
	if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
		t.Errorf("CreateThing status %d", s)
	}
	// AWS's CreateThing takes no tags (TestThingTags tags things); a new
	// thing has none.
	if tags := thingTagMap(t, c, wantARN); len(tags) != 0 {
		t.Errorf("tags of a new thing: %v", tags)
	}

	d := thingDescribe(t, c, "sensor-7")
	if aws.ToString(d.ThingName) != "sensor-7" || aws.ToString(d.DefaultClientId) != "sensor-7" || aws.ToString(d.ThingArn) != wantARN ||
		aws.ToString(d.ThingId) != aws.ToString(out.ThingId) || d.Version != 1 || d.ThingTypeName != nil || d.BillingGroupName != nil ||
		!maps.Equal(d.Attributes, attrs) {
		t.Fatalf("DescribeThing = %+v", d)
	}

	// A thing without attributes describes with none.
	bare := thingCreate(t, c, "bare", nil)
	if d := thingDescribe(t, c, "bare"); len(d.Attributes) != 0 || d.Version != 1 || aws.ToString(d.ThingId) != aws.ToString(bare.ThingId) {
		t.Errorf("DescribeThing(bare) = %+v", d)
	}
	// Names at the model's limits: 128 characters, every allowed character.
	long := strings.Repeat("a", 128)
	thingCreate(t, c, long, nil)
	thingCreate(t, c, "Az09:_-", nil)
	if d := thingDescribe(t, c, long); aws.ToString(d.ThingName) != long {
		t.Errorf("a 128-character name: %+v", d)
	}

	t.Run("idempotent", func(t *testing.T) {
		again, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("sensor-7"),
			AttributePayload: &types.AttributePayload{Attributes: thingAttrs("model", "x-1", "site", "north")}})
		if err != nil {
			t.Fatalf("creating the same thing again: %v", err)
		}
		if aws.ToString(again.ThingId) != aws.ToString(out.ThingId) || aws.ToString(again.ThingArn) != wantARN {
			t.Errorf("the same thing again = id %q arn %q, want id %q", aws.ToString(again.ThingId), aws.ToString(again.ThingArn), aws.ToString(out.ThingId))
		}
		again, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("bare")})
		if err != nil || aws.ToString(again.ThingId) != aws.ToString(bare.ThingId) {
			t.Errorf("the same bare thing again = %+v, %v", again, err)
		}
		if d := thingDescribe(t, c, "sensor-7"); d.Version != 1 {
			t.Errorf("creating again changed the version: %d", d.Version)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, other := range []map[string]string{thingAttrs("site", "south", "model", "x-1"), thingAttrs("site", "north"), {}} {
			_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("sensor-7"), AttributePayload: &types.AttributePayload{Attributes: other}})
			var exists *types.ResourceAlreadyExistsException
			if !errors.As(err, &exists) || thingErrStatus(err) != http.StatusConflict {
				t.Errorf("the thing again with attributes %v: %v (status %d), want ResourceAlreadyExistsException (409)", other, err, thingErrStatus(err))
			} else if aws.ToString(exists.ResourceId) != aws.ToString(out.ThingId) || aws.ToString(exists.ResourceArn) != wantARN {
				t.Errorf("ResourceAlreadyExistsException names %q %q, want %q %q", aws.ToString(exists.ResourceId), aws.ToString(exists.ResourceArn), aws.ToString(out.ThingId), wantARN)
			}
		}
		if d := thingDescribe(t, c, "sensor-7"); !maps.Equal(d.Attributes, attrs) || d.Version != 1 {
			t.Errorf("a refused create changed the thing: %+v", d)
		}

		for _, name := range []string{"bad name!", strings.Repeat("b", 129), "slash/name", "dot.name", "ünï"} {
			_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(name)})
			if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest ||
				!strings.HasPrefix(thingErrMessage(err), "1 validation error detected") {
				t.Errorf("CreateThing(%.40q): %v (status %d), want InvalidRequestException (400) with a validation message", name, err, thingErrStatus(err))
			}
		}
		_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("bad name!")})
		if msg, want := thingErrMessage(err), "1 validation error detected: Value 'bad name!' at 'thingName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"; msg != want {
			t.Errorf("CreateThing(bad name!): message %q, want %q", msg, want)
		}
		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String(strings.Repeat("b", 129))})
		if msg := thingErrMessage(err); !strings.Contains(msg, "at 'thingName' failed to satisfy constraint: Member must have length between 1 and 128") {
			t.Errorf("CreateThing(129 characters): message %q", msg)
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("bad")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a thing was stored for a bad name: %v", err)
		}

		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("four"),
			AttributePayload: &types.AttributePayload{Attributes: thingAttrs("a", "1", "b", "2", "c", "3", "d", "4")}})
		if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest {
			t.Errorf("four attributes without a thing type: %v (status %d)", err, thingErrStatus(err))
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("three"),
			AttributePayload: &types.AttributePayload{Attributes: thingAttrs("a", "1", "b", "2", "c", "3")}}); err != nil {
			t.Errorf("three attributes without a thing type: %v", err)
		}

		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("typed"), ThingTypeName: aws.String("sensor-type")})
		if !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
			t.Errorf("a thing of a type that does not exist: %v (status %d)", err, thingErrStatus(err))
		}
		_, err = c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("billed"), BillingGroupName: aws.String("group-1")})
		if !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
			t.Errorf("a thing in a billing group that does not exist: %v (status %d)", err, thingErrStatus(err))
		}
		for _, name := range []string{"four", "typed", "billed"} {
			if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(name)}); !isErr[*types.ResourceNotFoundException](err) {
				t.Errorf("a refused thing %s was stored: %v", name, err)
			}
		}

		for _, bad := range []map[string]string{thingAttrs("site", "north pole"), thingAttrs("site", "a$b"), thingAttrs("site", "ünï"),
			thingAttrs("site", strings.Repeat("v", 801)), thingAttrs("bad name", "v"), thingAttrs(strings.Repeat("k", 129), "v")} {
			_, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("badattr"), AttributePayload: &types.AttributePayload{Attributes: bad}})
			if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest ||
				!strings.HasPrefix(thingErrMessage(err), "1 validation error detected") {
				t.Errorf("attributes %.60v: %v (status %d), want InvalidRequestException", bad, err, thingErrStatus(err))
			}
		}
		if _, err := c.CreateThing(ctx, &iot.CreateThingInput{ThingName: aws.String("okattr"),
			AttributePayload: &types.AttributePayload{Attributes: thingAttrs("k_.,@/:#-", "v_.,@/:#=[]-", "long", strings.Repeat("v", 800))}}); err != nil {
			t.Errorf("attributes of every allowed character: %v", err)
		}

		_, err = c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("ghost")})
		if !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
			t.Errorf("DescribeThing(ghost): %v (status %d)", err, thingErrStatus(err))
		}
		_, err = c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("bad name!")})
		if !isErr[*types.InvalidRequestException](err) {
			t.Errorf("DescribeThing(bad name!): %v", err)
		}
	})
}

func thingListAll(t testing.TB, c *iot.Client, in iot.ListThingsInput) []types.ThingAttribute {
	t.Helper()
	var all []types.ThingAttribute
	p := iot.NewListThingsPaginator(c, &in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if in.MaxResults != nil && len(page.Things) > int(*in.MaxResults) {
			t.Fatalf("a page of %d things, asked for %d", len(page.Things), *in.MaxResults)
		}
		all = append(all, page.Things...)
	}
	return all
}

func thingNames(list []types.ThingAttribute) []string {
	var names []string
	for _, th := range list {
		names = append(names, aws.ToString(th.ThingName))
	}
	return names
}

// TestThingList lists hundreds of things a page at a time, by hand and with
// the SDK's paginator, with the attribute filters, and from another account.
func TestThingList(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	const n = 260
	want := map[string]map[string]string{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("thing-%03d", i)
		var attrs map[string]string
		if i%4 != 0 {
			attrs = thingAttrs("group", fmt.Sprint("g", i%3), "serial", fmt.Sprintf("sn-%03d", i))
		}
		thingCreate(t, c, name, attrs)
		want[name] = attrs
		names = append(names, name)
	}

	t.Run("pages", func(t *testing.T) {
		var listed []string
		var sizes []int
		var token *string
		for page := 0; ; page++ {
			out, err := c.ListThings(ctx, &iot.ListThingsInput{MaxResults: aws.Int32(100), NextToken: token})
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(out.Things))
			for _, th := range out.Things {
				name := aws.ToString(th.ThingName)
				listed = append(listed, name)
				if aws.ToString(th.ThingArn) != thingARN(testAccount, name) || th.Version != 1 || th.ThingTypeName != nil || !maps.Equal(th.Attributes, want[name]) {
					t.Errorf("listed %+v", th)
				}
			}
			token = out.NextToken
			if token == nil || page > 5 {
				break
			}
			if *token == "" {
				t.Fatalf("an empty nextToken instead of none on page %d", page)
			}
		}
		if !slices.Equal(sizes, []int{100, 100, 60}) {
			t.Errorf("page sizes %v, want [100 100 60]", sizes)
		}
		if !slices.Equal(listed, names) {
			t.Errorf("listed %d names, not each once in order", len(listed))
		}
		if got := thingNames(thingListAll(t, c, iot.ListThingsInput{MaxResults: aws.Int32(37)})); !slices.Equal(got, names) {
			t.Errorf("the paginator listed %d names, not each once in order", len(got))
		}
		// Without MaxResults, the server's own page size.
		if got := thingNames(thingListAll(t, c, iot.ListThingsInput{})); !slices.Equal(got, names) {
			t.Errorf("the paginator without maxResults listed %d names", len(got))
		}
		first, err := c.ListThings(ctx, &iot.ListThingsInput{MaxResults: aws.Int32(250)})
		if err != nil || len(first.Things) != 250 || first.NextToken == nil {
			t.Errorf("maxResults 250: %d things, %v", len(first.Things), err)
		}
	})

	t.Run("filters", func(t *testing.T) {
		expect := func(keep func(map[string]string) bool) []string {
			var out []string
			for _, name := range names {
				if keep(want[name]) {
					out = append(out, name)
				}
			}
			return out
		}
		for _, tc := range []struct {
			name   string
			in     iot.ListThingsInput
			expect []string
		}{
			{"group=g1", iot.ListThingsInput{AttributeName: aws.String("group"), AttributeValue: aws.String("g1")},
				expect(func(a map[string]string) bool { return a["group"] == "g1" })},
			{"group present", iot.ListThingsInput{AttributeName: aws.String("group")},
				expect(func(a map[string]string) bool { _, ok := a["group"]; return ok })},
			{"serial prefix sn-1", iot.ListThingsInput{AttributeName: aws.String("serial"), AttributeValue: aws.String("sn-1"), UsePrefixAttributeValue: true},
				expect(func(a map[string]string) bool { return strings.HasPrefix(a["serial"], "sn-1") })},
			{"serial prefix sn-00", iot.ListThingsInput{AttributeName: aws.String("serial"), AttributeValue: aws.String("sn-00"), UsePrefixAttributeValue: true, MaxResults: aws.Int32(2)},
				expect(func(a map[string]string) bool { return strings.HasPrefix(a["serial"], "sn-00") })},
			{"serial sn-1 exactly", iot.ListThingsInput{AttributeName: aws.String("serial"), AttributeValue: aws.String("sn-1")}, nil},
			{"serial sn-101 exactly", iot.ListThingsInput{AttributeName: aws.String("serial"), AttributeValue: aws.String("sn-101")}, []string{"thing-101"}},
			{"no such attribute", iot.ListThingsInput{AttributeName: aws.String("color")}, nil},
		} {
			tc.in.MaxResults = thingCmpOr(tc.in.MaxResults, aws.Int32(10))
			got := thingListAll(t, c, tc.in)
			if !slices.Equal(thingNames(got), tc.expect) {
				t.Errorf("%s: listed %v, want %d things %v", tc.name, thingNames(got), len(tc.expect), tc.expect)
			}
			for _, th := range got {
				if !maps.Equal(th.Attributes, want[aws.ToString(th.ThingName)]) {
					t.Errorf("%s: %s listed with attributes %v", tc.name, aws.ToString(th.ThingName), th.Attributes)
				}
			}
		}
		if len(expect(func(a map[string]string) bool { return strings.HasPrefix(a["serial"], "sn-1") })) == 0 {
			t.Fatal("the test's data has no sn-1 serials")
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   iot.ListThingsInput
		}{
			{"value without name", iot.ListThingsInput{AttributeValue: aws.String("g1")}},
			{"maxResults 251", iot.ListThingsInput{MaxResults: aws.Int32(251)}},
			{"maxResults 0", iot.ListThingsInput{MaxResults: aws.Int32(0)}},
			{"a token fleetca did not issue", iot.ListThingsInput{NextToken: aws.String("bm90LWEtbWFya2Vy")}},
			{"a bad attribute name", iot.ListThingsInput{AttributeName: aws.String("bad name")}},
			{"a thing type name outside the pattern", iot.ListThingsInput{ThingTypeName: aws.String("bad type!")}},
		} {
			_, err := c.ListThings(ctx, &tc.in)
			if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest {
				t.Errorf("ListThings %s: %v (status %d), want InvalidRequestException (400)", tc.name, err, thingErrStatus(err))
			}
		}
		out, err := c.ListThings(ctx, &iot.ListThingsInput{ThingTypeName: aws.String("no-such-type")})
		if err != nil || len(out.Things) != 0 {
			t.Errorf("ListThings of a type no thing has: %d things, %v", len(out.Things), err)
		}
	})

	t.Run("another account", func(t *testing.T) {
		other := ts.accountClient(t, testOtherAcct)
		if got := thingListAll(t, other, iot.ListThingsInput{}); len(got) != 0 {
			t.Fatalf("another account lists %d things: %v", len(got), thingNames(got))
		}
		if got := thingListAll(t, other, iot.ListThingsInput{AttributeName: aws.String("group")}); len(got) != 0 {
			t.Fatalf("another account lists %d things by attribute", len(got))
		}
		if _, err := other.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("thing-001")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("another account describes a thing: %v", err)
		}
		// The same name in another account is another thing.
		mine := thingDescribe(t, c, "thing-001")
		theirs := thingCreate(t, other, "thing-001", thingAttrs("owner", "other"))
		if aws.ToString(theirs.ThingArn) != thingARN(testOtherAcct, "thing-001") || aws.ToString(theirs.ThingId) == aws.ToString(mine.ThingId) {
			t.Errorf("another account's thing-001 = %+v", theirs)
		}
		if d := thingDescribe(t, c, "thing-001"); !maps.Equal(d.Attributes, want["thing-001"]) {
			t.Errorf("another account's thing changed ours: %v", d.Attributes)
		}
		if got := thingListAll(t, other, iot.ListThingsInput{}); !slices.Equal(thingNames(got), []string{"thing-001"}) {
			t.Errorf("another account lists %v", thingNames(got))
		}
		if _, err := other.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("thing-002")}); err != nil {
			t.Errorf("another account deleting a name it does not have: %v", err)
		}
		thingDescribe(t, c, "thing-002")
	})
}

func thingCmpOr(a, b *int32) *int32 {
	if a != nil {
		return a
	}
	return b
}

// TestThingUpdate changes a thing's attributes with and without merge,
// against its version.
func TestThingUpdate(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	created := thingCreate(t, c, "lamp", thingAttrs("a", "1", "b", "2"))

	version := int64(1)
	update := func(t *testing.T, in iot.UpdateThingInput, want map[string]string) {
		t.Helper()
		in.ThingName = aws.String("lamp")
		out, err := c.UpdateThing(ctx, &in)
		if err != nil {
			t.Fatalf("UpdateThing: %v", err)
		}
		if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
			t.Errorf("UpdateThing status %d", s)
		}
		version++
		d := thingDescribe(t, c, "lamp")
		if d.Version != version || !maps.Equal(d.Attributes, want) || aws.ToString(d.ThingId) != aws.ToString(created.ThingId) {
			t.Fatalf("after the update: version %d attributes %v id %s; want version %d attributes %v", d.Version, d.Attributes, aws.ToString(d.ThingId), version, want)
		}
	}
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if d := thingDescribe(t, c, "lamp"); d.Version != version {
			t.Errorf("%s changed the version: %d, want %d", what, d.Version, version)
		}
	}

	t.Run("merge", func(t *testing.T) {
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("b", "20", "c", "3")}},
			thingAttrs("a", "1", "b", "20", "c", "3"))
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("a", "")}},
			thingAttrs("b", "20", "c", "3"))
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("nothere", "")}},
			thingAttrs("b", "20", "c", "3"))
	})
	t.Run("replace", func(t *testing.T) {
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Attributes: thingAttrs("d", "4")}}, thingAttrs("d", "4"))
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Attributes: map[string]string{}}}, map[string]string{})
		update(t, iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Attributes: thingAttrs("x", "1", "y", "2", "z", "3")}}, thingAttrs("x", "1", "y", "2", "z", "3"))
		// Without an attribute payload the attributes stay; the version moves on.
		update(t, iot.UpdateThingInput{}, thingAttrs("x", "1", "y", "2", "z", "3"))
		update(t, iot.UpdateThingInput{RemoveThingType: true}, thingAttrs("x", "1", "y", "2", "z", "3"))
	})
	t.Run("expected version", func(t *testing.T) {
		update(t, iot.UpdateThingInput{ExpectedVersion: aws.Int64(version), AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("z", "30")}},
			thingAttrs("x", "1", "y", "2", "z", "30"))
		for _, stale := range []int64{version - 1, version + 1, 0} {
			_, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("lamp"), ExpectedVersion: aws.Int64(stale),
				AttributePayload: &types.AttributePayload{Attributes: thingAttrs("stale", "yes")}})
			if !isErr[*types.VersionConflictException](err) || thingErrStatus(err) != http.StatusConflict {
				t.Errorf("expected version %d at %d: %v (status %d), want VersionConflictException (409)", stale, version, err, thingErrStatus(err))
			}
		}
		d := thingDescribe(t, c, "lamp")
		if d.Version != version || !maps.Equal(d.Attributes, thingAttrs("x", "1", "y", "2", "z", "30")) {
			t.Errorf("a refused update changed the thing: %+v", d)
		}
	})
	t.Run("errors", func(t *testing.T) {
		attrs := thingAttrs("x", "1", "y", "2", "z", "30")
		for _, tc := range []struct {
			name   string
			in     iot.UpdateThingInput
			ok     func(error) bool
			status int
		}{
			{"a fourth attribute by merge", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("w", "4")}},
				isErr[*types.InvalidRequestException], 400},
			{"four attributes by replace", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Attributes: thingAttrs("a", "1", "b", "2", "c", "3", "d", "4")}},
				isErr[*types.InvalidRequestException], 400},
			{"set and remove the type", iot.UpdateThingInput{RemoveThingType: true, ThingTypeName: aws.String("sensor-type")},
				isErr[*types.InvalidRequestException], 400},
			{"a type that does not exist", iot.UpdateThingInput{ThingTypeName: aws.String("sensor-type")},
				isErr[*types.ResourceNotFoundException], 404},
			{"a bad attribute value", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("x", "a b")}},
				isErr[*types.InvalidRequestException], 400},
			{"a bad attribute name", iot.UpdateThingInput{AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("x y", "1")}},
				isErr[*types.InvalidRequestException], 400},
		} {
			tc.in.ThingName = aws.String("lamp")
			_, err := c.UpdateThing(ctx, &tc.in)
			if !tc.ok(err) || thingErrStatus(err) != tc.status {
				t.Errorf("UpdateThing with %s: %v (status %d), want %d", tc.name, err, thingErrStatus(err), tc.status)
			}
			if d := thingDescribe(t, c, "lamp"); d.Version != version || !maps.Equal(d.Attributes, attrs) || d.ThingTypeName != nil {
				t.Errorf("UpdateThing with %s changed the thing: %+v", tc.name, d)
			}
		}
		_, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("ghost"), AttributePayload: &types.AttributePayload{Attributes: thingAttrs("a", "1")}})
		if !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
			t.Errorf("UpdateThing(ghost): %v (status %d)", err, thingErrStatus(err))
		}
		if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("ghost")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("updating a thing that does not exist created it: %v", err)
		}
		_, err = c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("bad name!")})
		if !isErr[*types.InvalidRequestException](err) {
			t.Errorf("UpdateThing(bad name!): %v", err)
		}
		unchanged(t, "the refused updates")
	})
}

// TestThingDelete deletes things: against a version, twice, and refused
// while a principal is attached.
func TestThingDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()

	thingCreate(t, c, "door", thingAttrs("a", "1"))
	if _, err := c.UpdateThing(ctx, &iot.UpdateThingInput{ThingName: aws.String("door"), AttributePayload: &types.AttributePayload{Merge: true, Attributes: thingAttrs("b", "2")}}); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []int64{1, 3} {
		_, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("door"), ExpectedVersion: aws.Int64(stale)})
		if !isErr[*types.VersionConflictException](err) || thingErrStatus(err) != http.StatusConflict {
			t.Errorf("DeleteThing at version 2 expecting %d: %v (status %d), want VersionConflictException (409)", stale, err, thingErrStatus(err))
		}
	}
	if d := thingDescribe(t, c, "door"); d.Version != 2 {
		t.Fatalf("a refused delete changed the thing: %+v", d)
	}
	out, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("door"), ExpectedVersion: aws.Int64(2)})
	if err != nil {
		t.Fatalf("DeleteThing at the expected version: %v", err)
	}
	if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
		t.Errorf("DeleteThing status %d", s)
	}
	if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("door")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("a deleted thing: %v", err)
	}
	if got := thingListAll(t, c, iot.ListThingsInput{}); len(got) != 0 {
		t.Fatalf("a deleted thing is listed: %v", thingNames(got))
	}
	if got := thingListAll(t, c, iot.ListThingsInput{AttributeName: aws.String("a")}); len(got) != 0 {
		t.Fatalf("a deleted thing is listed by attribute: %v", thingNames(got))
	}
	for _, in := range []*iot.DeleteThingInput{{ThingName: aws.String("door")}, {ThingName: aws.String("never")}, {ThingName: aws.String("never"), ExpectedVersion: aws.Int64(7)}} {
		out, err := c.DeleteThing(ctx, in)
		if err != nil {
			t.Errorf("DeleteThing(%s) of no thing: %v, want success", aws.ToString(in.ThingName), err)
		} else if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
			t.Errorf("DeleteThing(%s) of no thing: status %d", aws.ToString(in.ThingName), s)
		}
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("bad name!")}); !isErr[*types.InvalidRequestException](err) {
		t.Errorf("DeleteThing(bad name!): %v", err)
	}

	// A new thing of the deleted one's name starts over.
	again := thingCreate(t, c, "door", nil)
	if d := thingDescribe(t, c, "door"); d.Version != 1 || len(d.Attributes) != 0 || aws.ToString(d.ThingId) != aws.ToString(again.ThingId) {
		t.Errorf("the new door = %+v", d)
	}

	// Attached to a principal, it stays.
	_, certARN := thingNewCert(t, c, false)
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("door"), Principal: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("door")})
	if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest {
		t.Errorf("DeleteThing with a principal: %v (status %d), want InvalidRequestException (400)", err, thingErrStatus(err))
	}
	if msg, want := thingErrMessage(err), "Cannot delete. Thing door is still attached to one or more principals"; msg != want {
		t.Errorf("DeleteThing with a principal: message %q, want %q", msg, want)
	}
	thingDescribe(t, c, "door")
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("door"), Principal: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("door")}); err != nil {
		t.Fatalf("DeleteThing after detaching: %v", err)
	}
	if _, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("door")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("a deleted thing: %v", err)
	}
	// The certificate has no things now.
	things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(certARN)})
	if err != nil || len(things.Things) != 0 {
		t.Errorf("ListPrincipalThings after the thing went: %+v, %v", things, err)
	}
}

func thingPrincipalMap(t testing.TB, c *iot.Client, thing string) map[string]types.ThingPrincipalType {
	t.Helper()
	out := map[string]types.ThingPrincipalType{}
	p := iot.NewListThingPrincipalsV2Paginator(c, &iot.ListThingPrincipalsV2Input{ThingName: aws.String(thing)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListThingPrincipalsV2(%s): %v", thing, err)
		}
		for _, o := range page.ThingPrincipalObjects {
			out[aws.ToString(o.Principal)] = o.ThingPrincipalType
		}
	}
	return out
}

func principalThingMap(t testing.TB, c *iot.Client, principal string) map[string]types.ThingPrincipalType {
	t.Helper()
	out := map[string]types.ThingPrincipalType{}
	p := iot.NewListPrincipalThingsV2Paginator(c, &iot.ListPrincipalThingsV2Input{Principal: aws.String(principal)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListPrincipalThingsV2(%s): %v", principal, err)
		}
		for _, o := range page.PrincipalThingObjects {
			out[aws.ToString(o.ThingName)] = o.ThingPrincipalType
		}
	}
	return out
}

// TestThingPrincipals attaches certificates to things, exclusively and
// not, and lists them both ways with both versions of the calls.
func TestThingPrincipals(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	for _, name := range []string{"t1", "t2", "t3"} {
		thingCreate(t, c, name, nil)
	}
	certID, certA := thingNewCert(t, c, true)
	_, certB := thingNewCert(t, c, false)
	const nonExcl, excl = types.ThingPrincipalTypeNonExclusiveThing, types.ThingPrincipalTypeExclusiveThing

	attach := func(thing, principal string, typ types.ThingPrincipalType) error {
		_, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(principal), ThingPrincipalType: typ})
		return err
	}

	t.Run("attach and list", func(t *testing.T) {
		out, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("t1"), Principal: aws.String(certA)})
		if err != nil {
			t.Fatal(err)
		}
		if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
			t.Errorf("AttachThingPrincipal status %d", s)
		}
		if err := attach("t1", certA, ""); err != nil {
			t.Fatalf("attaching twice: %v", err)
		}
		if err := attach("t2", certA, nonExcl); err != nil {
			t.Fatalf("a second thing, not exclusively: %v", err)
		}
		for _, thing := range []string{"t1", "t2"} {
			list, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thing)})
			if err != nil || !slices.Equal(list.Principals, []string{certA}) || list.NextToken != nil {
				t.Errorf("ListThingPrincipals(%s) = %+v, %v", thing, list, err)
			}
			v2, err := c.ListThingPrincipalsV2(ctx, &iot.ListThingPrincipalsV2Input{ThingName: aws.String(thing)})
			if err != nil || len(v2.ThingPrincipalObjects) != 1 || aws.ToString(v2.ThingPrincipalObjects[0].Principal) != certA ||
				v2.ThingPrincipalObjects[0].ThingPrincipalType != nonExcl {
				t.Errorf("ListThingPrincipalsV2(%s) = %+v, %v", thing, v2, err)
			}
		}
		things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(certA)})
		if err != nil || !slices.Equal(things.Things, []string{"t1", "t2"}) || things.NextToken != nil {
			t.Errorf("ListPrincipalThings = %+v, %v", things, err)
		}
		v2, err := c.ListPrincipalThingsV2(ctx, &iot.ListPrincipalThingsV2Input{Principal: aws.String(certA)})
		if err != nil || len(v2.PrincipalThingObjects) != 2 {
			t.Fatalf("ListPrincipalThingsV2 = %+v, %v", v2, err)
		}
		for i, want := range []string{"t1", "t2"} {
			if o := v2.PrincipalThingObjects[i]; aws.ToString(o.ThingName) != want || o.ThingPrincipalType != nonExcl {
				t.Errorf("ListPrincipalThingsV2[%d] = %s %s", i, aws.ToString(o.ThingName), o.ThingPrincipalType)
			}
		}
		// The certificate's ID in lower case is how the ARN names it; the
		// list answers with the same ARN.
		if !strings.HasSuffix(certA, ":cert/"+certID) {
			t.Errorf("certificate ARN %s does not end in its ID %s", certA, certID)
		}
		// A thing with no principals, a certificate on no thing.
		if list, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("t3")}); err != nil || len(list.Principals) != 0 {
			t.Errorf("ListThingPrincipals(t3) = %+v, %v", list, err)
		}
		if things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(certB)}); err != nil || len(things.Things) != 0 {
			t.Errorf("ListPrincipalThings(certB) = %+v, %v", things, err)
		}
	})

	t.Run("exclusive", func(t *testing.T) {
		// certA is on t1 and t2: it cannot become exclusive to either.
		for _, thing := range []string{"t1", "t3"} {
			err := attach(thing, certA, excl)
			if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest {
				t.Errorf("an exclusive attach to %s of a certificate on two things: %v (status %d), want InvalidRequestException", thing, err, thingErrStatus(err))
			}
		}
		if got := principalThingMap(t, c, certA); !maps.Equal(got, map[string]types.ThingPrincipalType{"t1": nonExcl, "t2": nonExcl}) {
			t.Errorf("after refused exclusive attaches certA is on %v", got)
		}

		// certB exclusively on t3: no other thing may have it, either way.
		if err := attach("t3", certB, excl); err != nil {
			t.Fatalf("an exclusive attach: %v", err)
		}
		for _, typ := range []types.ThingPrincipalType{"", nonExcl, excl} {
			err := attach("t1", certB, typ)
			if !isErr[*types.InvalidRequestException](err) || thingErrStatus(err) != http.StatusBadRequest {
				t.Errorf("attach (%q) to t1 of a certificate exclusive to t3: %v (status %d), want InvalidRequestException", typ, err, thingErrStatus(err))
			}
		}
		// Attaching it to t3 again, either way, keeps it exclusive.
		for _, typ := range []types.ThingPrincipalType{"", nonExcl, excl} {
			if err := attach("t3", certB, typ); err != nil {
				t.Errorf("attach (%q) again to its exclusive thing: %v", typ, err)
			}
		}
		if got := principalThingMap(t, c, certB); !maps.Equal(got, map[string]types.ThingPrincipalType{"t3": excl}) {
			t.Errorf("certB is on %v, want t3 exclusively", got)
		}
		if got := thingPrincipalMap(t, c, "t3"); !maps.Equal(got, map[string]types.ThingPrincipalType{certB: excl}) {
			t.Errorf("t3 has %v", got)
		}
		things, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(certB)})
		if err != nil || !slices.Equal(things.Things, []string{"t3"}) {
			t.Errorf("ListPrincipalThings(certB) = %+v, %v", things, err)
		}

		// Filtered by type.
		v2, err := c.ListThingPrincipalsV2(ctx, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("t3"), ThingPrincipalType: nonExcl})
		if err != nil || len(v2.ThingPrincipalObjects) != 0 {
			t.Errorf("t3's non-exclusive principals = %+v, %v", v2, err)
		}
		v2, err = c.ListThingPrincipalsV2(ctx, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("t3"), ThingPrincipalType: excl})
		if err != nil || len(v2.ThingPrincipalObjects) != 1 {
			t.Errorf("t3's exclusive principals = %+v, %v", v2, err)
		}
		pv2, err := c.ListPrincipalThingsV2(ctx, &iot.ListPrincipalThingsV2Input{Principal: aws.String(certA), ThingPrincipalType: excl})
		if err != nil || len(pv2.PrincipalThingObjects) != 0 {
			t.Errorf("certA's exclusive things = %+v, %v", pv2, err)
		}
		_, err = c.ListThingPrincipalsV2(ctx, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("t3"), ThingPrincipalType: "SOMETIMES"})
		if !isErr[*types.InvalidRequestException](err) {
			t.Errorf("a thingPrincipalType outside the enum: %v", err)
		}
		if err := attach("t1", certB, "SOMETIMES"); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("attach with a thingPrincipalType outside the enum: %v", err)
		}

		// Detached, certB may go elsewhere; a certificate on one thing may
		// become exclusive to it.
		if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("t3"), Principal: aws.String(certB)}); err != nil {
			t.Fatal(err)
		}
		if err := attach("t1", certB, nonExcl); err != nil {
			t.Fatalf("attach after the exclusive one was detached: %v", err)
		}
		if err := attach("t1", certB, excl); err != nil {
			t.Fatalf("an exclusive attach of a certificate on that thing only: %v", err)
		}
		if got := principalThingMap(t, c, certB); !maps.Equal(got, map[string]types.ThingPrincipalType{"t1": excl}) {
			t.Errorf("certB is on %v, want t1 exclusively", got)
		}
		if got := thingPrincipalMap(t, c, "t1"); !maps.Equal(got, map[string]types.ThingPrincipalType{certA: nonExcl, certB: excl}) {
			t.Errorf("t1 has %v", got)
		}
	})

	t.Run("detach", func(t *testing.T) {
		out, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("t2"), Principal: aws.String(certA)})
		if err != nil {
			t.Fatal(err)
		}
		if s := thingOKStatus(out.ResultMetadata); s != http.StatusOK {
			t.Errorf("DetachThingPrincipal status %d", s)
		}
		if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("t2"), Principal: aws.String(certA)}); err != nil {
			t.Errorf("detaching twice: %v", err)
		}
		if got := principalThingMap(t, c, certA); !maps.Equal(got, map[string]types.ThingPrincipalType{"t1": nonExcl}) {
			t.Errorf("after the detach certA is on %v", got)
		}
		if got := thingPrincipalMap(t, c, "t2"); len(got) != 0 {
			t.Errorf("after the detach t2 has %v", got)
		}
	})

	t.Run("errors", func(t *testing.T) {
		unknownCert := "arn:aws:iot:us-east-1:" + testAccount + ":cert/" + strings.Repeat("ab", 32)
		other := ts.accountClient(t, testOtherAcct)
		_, otherCert := thingNewCert(t, other, false)
		thingCreate(t, other, "t1", nil)
		for _, tc := range []struct {
			name, thing, principal string
			ok                     func(error) bool
			status                 int
		}{
			{"unknown thing", "ghost", certA, isErr[*types.ResourceNotFoundException], 404},
			{"unknown certificate", "t1", unknownCert, isErr[*types.ResourceNotFoundException], 404},
			{"a thing ARN", "t1", thingARN(testAccount, "t2"), isErr[*types.InvalidRequestException], 400},
			{"a policy ARN", "t1", "arn:aws:iot:us-east-1:" + testAccount + ":policy/p", isErr[*types.InvalidRequestException], 400},
			{"a Cognito identity", "t1", "us-east-1:1234-identity", isErr[*types.InvalidRequestException], 400},
			{"another account's certificate", "t1", otherCert, isErr[*types.InvalidRequestException], 400},
			{"our certificate in another account's ARN", "t1", strings.Replace(certA, testAccount, testOtherAcct, 1), isErr[*types.InvalidRequestException], 400},
			{"another region", "t1", strings.Replace(certA, "us-east-1", "eu-west-1", 1), isErr[*types.InvalidRequestException], 400},
			{"a short certificate ID", "t1", "arn:aws:iot:us-east-1:" + testAccount + ":cert/abcd", isErr[*types.InvalidRequestException], 400},
			{"a bad thing name", "bad name!", certA, isErr[*types.InvalidRequestException], 400},
		} {
			_, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(tc.thing), Principal: aws.String(tc.principal)})
			if !tc.ok(err) || thingErrStatus(err) != tc.status {
				t.Errorf("AttachThingPrincipal with %s: %v (status %d), want %d", tc.name, err, thingErrStatus(err), tc.status)
			}
		}
		if got := thingPrincipalMap(t, c, "t1"); len(got) != 2 {
			t.Errorf("refused attaches changed t1's principals: %v", got)
		}
		if got := thingPrincipalMap(t, other, "t1"); len(got) != 0 {
			t.Errorf("the other account's t1 has principals: %v", got)
		}

		_, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("ghost"), Principal: aws.String(certA)})
		if !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
			t.Errorf("DetachThingPrincipal of an unknown thing: %v (status %d)", err, thingErrStatus(err))
		}
		for _, bad := range []string{thingARN(testAccount, "t2"), otherCert, "us-east-1:1234-identity"} {
			_, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("t1"), Principal: aws.String(bad)})
			if !isErr[*types.InvalidRequestException](err) {
				t.Errorf("DetachThingPrincipal(%s): %v, want InvalidRequestException", bad, err)
			}
		}
		for _, call := range []func() error{
			func() error {
				_, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("ghost")})
				return err
			},
			func() error {
				_, err := c.ListThingPrincipalsV2(ctx, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("ghost")})
				return err
			},
			func() error {
				_, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(unknownCert)})
				return err
			},
			func() error {
				_, err := c.ListPrincipalThingsV2(ctx, &iot.ListPrincipalThingsV2Input{Principal: aws.String(unknownCert)})
				return err
			},
			func() error {
				_, err := other.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("t2")})
				return err
			},
		} {
			if err := call(); !isErr[*types.ResourceNotFoundException](err) || thingErrStatus(err) != http.StatusNotFound {
				t.Errorf("a list of nothing: %v (status %d), want ResourceNotFoundException (404)", err, thingErrStatus(err))
			}
		}
		for _, bad := range []string{thingARN(testAccount, "t1"), otherCert} {
			if _, err := c.ListPrincipalThings(ctx, &iot.ListPrincipalThingsInput{Principal: aws.String(bad)}); !isErr[*types.InvalidRequestException](err) {
				t.Errorf("ListPrincipalThings(%s): %v, want InvalidRequestException", bad, err)
			}
			if _, err := c.ListPrincipalThingsV2(ctx, &iot.ListPrincipalThingsV2Input{Principal: aws.String(bad)}); !isErr[*types.InvalidRequestException](err) {
				t.Errorf("ListPrincipalThingsV2(%s): %v, want InvalidRequestException", bad, err)
			}
		}
		if _, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("t1"), MaxResults: aws.Int32(251)}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("ListThingPrincipals maxResults 251: %v", err)
		}
		if _, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("t1"), NextToken: aws.String("bm90LWEtbWFya2Vy")}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("ListThingPrincipals with a token fleetca did not issue: %v", err)
		}
	})
}

// TestThingPrincipalsPaging pages through a thing's principals and a
// principal's things.
func TestThingPrincipalsPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	thingCreate(t, c, "hub", nil)
	var certs []string
	for range 5 {
		_, arn := thingNewCert(t, c, false)
		certs = append(certs, arn)
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("hub"), Principal: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(certs)

	var listed []string
	var sizes []int
	var token *string
	for page := 0; page < 10; page++ {
		out, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("hub"), MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Principals))
		listed = append(listed, out.Principals...)
		if token = out.NextToken; token == nil {
			break
		}
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Errorf("page sizes %v, want [2 2 1]", sizes)
	}
	sorted := slices.Clone(listed)
	slices.Sort(sorted)
	if !slices.Equal(sorted, certs) || len(slices.Compact(sorted)) != 5 {
		t.Errorf("listed %v, want each of %v once", listed, certs)
	}

	var v2 []string
	p := iot.NewListThingPrincipalsV2Paginator(c, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("hub"), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.ThingPrincipalObjects) > 2 {
			t.Fatalf("a page of %d", len(page.ThingPrincipalObjects))
		}
		for _, o := range page.ThingPrincipalObjects {
			v2 = append(v2, aws.ToString(o.Principal))
		}
	}
	if !slices.Equal(v2, listed) {
		t.Errorf("the V2 paginator listed %v, want %v", v2, listed)
	}

	// A sixth certificate, exclusively on hub: the lists filtered by type
	// find it alone, or the five others, whatever the pages.
	_, exclusive := thingNewCert(t, c, false)
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("hub"), Principal: aws.String(exclusive),
		ThingPrincipalType: types.ThingPrincipalTypeExclusiveThing}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ  types.ThingPrincipalType
		want []string
	}{{types.ThingPrincipalTypeExclusiveThing, []string{exclusive}}, {types.ThingPrincipalTypeNonExclusiveThing, certs}} {
		for _, size := range []int32{1, 2, 250} {
			var got []string
			p := iot.NewListThingPrincipalsV2Paginator(c, &iot.ListThingPrincipalsV2Input{ThingName: aws.String("hub"), MaxResults: aws.Int32(size), ThingPrincipalType: tc.typ})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.ThingPrincipalObjects {
					if o.ThingPrincipalType != tc.typ {
						t.Errorf("filtered by %s, listed %s %s", tc.typ, aws.ToString(o.Principal), o.ThingPrincipalType)
					}
					got = append(got, aws.ToString(o.Principal))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s principals in pages of %d: %v, want %v", tc.typ, size, got, tc.want)
			}
		}
	}

	// One certificate on seven things, two at a time.
	var things []string
	for i := range 7 {
		name := fmt.Sprintf("node-%d", i)
		thingCreate(t, c, name, nil)
		things = append(things, name)
		if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(name), Principal: aws.String(certs[0])}); err != nil {
			t.Fatal(err)
		}
	}
	things = append(things, "hub")
	slices.Sort(things)
	var got []string
	pt := iot.NewListPrincipalThingsPaginator(c, &iot.ListPrincipalThingsInput{Principal: aws.String(certs[0]), MaxResults: aws.Int32(3)})
	pages := 0
	for pt.HasMorePages() {
		page, err := pt.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page.Things...)
	}
	if !slices.Equal(got, things) || pages != 3 {
		t.Errorf("ListPrincipalThings listed %v in %d pages, want %v in 3", got, pages, things)
	}
	var gotV2 []string
	pv := iot.NewListPrincipalThingsV2Paginator(c, &iot.ListPrincipalThingsV2Input{Principal: aws.String(certs[0]), MaxResults: aws.Int32(2)})
	for pv.HasMorePages() {
		page, err := pv.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.PrincipalThingObjects {
			gotV2 = append(gotV2, aws.ToString(o.ThingName))
			if o.ThingPrincipalType != types.ThingPrincipalTypeNonExclusiveThing {
				t.Errorf("%s: %s", aws.ToString(o.ThingName), o.ThingPrincipalType)
			}
		}
	}
	if !slices.Equal(gotV2, things) {
		t.Errorf("ListPrincipalThingsV2 listed %v, want %v", gotV2, things)
	}
}

// TestThingCertificateDelete: a certificate on a thing is not deleted, not
// even with forceDelete, until it is detached.
func TestThingCertificateDelete(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	thingCreate(t, c, "meter", nil)
	id, arn := thingNewCert(t, c, true)
	if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("p"), PolicyDocument: aws.String(policyDoc("t"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("p"), Target: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("meter"), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	// Active, it cannot go anyway.
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: true}); !isErr[*types.CertificateStateException](err) {
		t.Fatalf("deleting an active certificate: %v", err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: types.CertificateStatusInactive}); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		_, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: force})
		if !isErr[*types.DeleteConflictException](err) || thingErrStatus(err) != http.StatusConflict {
			t.Errorf("deleting a certificate on a thing (forceDelete %v): %v (status %d), want DeleteConflictException (409)", force, err, thingErrStatus(err))
		}
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)}); err != nil {
		t.Fatalf("the refused certificate: %v", err)
	}
	if got := thingPrincipalMap(t, c, "meter"); len(got) != 1 {
		t.Fatalf("the refused delete changed meter's principals: %v", got)
	}
	attached, err := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(arn)})
	if err != nil || len(attached.Policies) != 1 {
		t.Fatalf("the refused forceDelete detached the policies: %+v, %v", attached, err)
	}

	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("meter"), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)}); !isErr[*types.DeleteConflictException](err) {
		t.Errorf("deleting a certificate with a policy, without forceDelete: %v", err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id), ForceDelete: true}); err != nil {
		t.Fatalf("deleting a detached certificate: %v", err)
	}
	if _, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("a deleted certificate: %v", err)
	}
	// The thing lives on without it, and the deleted certificate cannot be attached.
	thingDescribe(t, c, "meter")
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("meter"), Principal: aws.String(arn)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("attaching a deleted certificate: %v", err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("meter")}); err != nil {
		t.Errorf("deleting the thing: %v", err)
	}

	// An inactive certificate without policies, on a thing: neither the
	// certificate nor the thing can go first.
	thingCreate(t, c, "valve", nil)
	id2, arn2 := thingNewCert(t, c, false)
	if _, err := c.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String("valve"), Principal: aws.String(arn2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id2), ForceDelete: true}); !isErr[*types.DeleteConflictException](err) {
		t.Errorf("force-deleting an inactive certificate on a thing: %v", err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("valve")}); !isErr[*types.InvalidRequestException](err) {
		t.Errorf("deleting a thing with a certificate: %v", err)
	}
}

// TestThingTags tags a thing through its ARN; the tags go with the thing.
func TestThingTags(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	out := thingCreate(t, c, "pump", nil)
	arn := aws.ToString(out.ThingArn)
	if got := thingTagMap(t, c, arn); len(got) != 0 {
		t.Fatalf("tags of a new thing: %v", got)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("fleet")}}}); err != nil {
		t.Fatal(err)
	}
	if got := thingTagMap(t, c, arn); !maps.Equal(got, thingAttrs("team", "fleet")) {
		t.Fatalf("tags after the first TagResource: %v", got)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(arn),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}, {Key: aws.String("site"), Value: aws.String("north")}, {Key: aws.String("tier"), Value: aws.String("")}}}); err != nil {
		t.Fatal(err)
	}
	if got := thingTagMap(t, c, arn); !maps.Equal(got, thingAttrs("team", "ops", "site", "north", "tier", "")) {
		t.Fatalf("tags after TagResource: %v", got)
	}
	if _, err := c.UntagResource(ctx, &iot.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team", "nope"}}); err != nil {
		t.Fatal(err)
	}
	if got := thingTagMap(t, c, arn); !maps.Equal(got, thingAttrs("site", "north", "tier", "")) {
		t.Fatalf("tags after UntagResource: %v", got)
	}
	// Tags are no attributes, and change no version.
	if d := thingDescribe(t, c, "pump"); len(d.Attributes) != 0 || d.Version != 1 {
		t.Errorf("tagging changed the thing: %+v", d)
	}

	// Errors: a thing that does not exist, another account's thing, a reserved key.
	ghost := thingARN(testAccount, "ghost")
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(ghost), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("tagging a thing that does not exist: %v", err)
	}
	if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(ghost)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("the tags of a thing that does not exist: %v", err)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(thingARN(testOtherAcct, "pump")), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); !isErr[*types.InvalidRequestException](err) {
		t.Errorf("tagging another account's thing: %v", err)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}}); !isErr[*types.InvalidRequestException](err) {
		t.Errorf("a reserved tag key: %v", err)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(thingARN(testAccount, "bad!name")), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); !isErr[*types.InvalidRequestException](err) {
		t.Errorf("a thing ARN with a bad name: %v", err)
	}

	// Deleting the thing deletes its tags: a new thing of its name has none.
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("pump")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(arn)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Errorf("the tags of a deleted thing: %v", err)
	}
	thingCreate(t, c, "pump", nil)
	if got := thingTagMap(t, c, arn); len(got) != 0 {
		t.Errorf("a new thing of a deleted one's name has its tags: %v", got)
	}
	// Another account's thing of the same name has its own tags.
	other := ts.accountClient(t, testOtherAcct)
	theirs := thingCreate(t, other, "pump", nil)
	if _, err := other.TagResource(ctx, &iot.TagResourceInput{ResourceArn: theirs.ThingArn, Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("other")}}}); err != nil {
		t.Fatal(err)
	}
	if got := thingTagMap(t, c, arn); len(got) != 0 {
		t.Errorf("another account's tags show on ours: %v", got)
	}
	if got := thingTagMap(t, other, aws.ToString(theirs.ThingArn)); !maps.Equal(got, thingAttrs("owner", "other")) {
		t.Errorf("the other account's pump has tags %v", got)
	}
}
