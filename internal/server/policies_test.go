package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

const claimPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["iot:Connect"],"Resource":"*"},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/$aws/certificates/create/*"]},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/certificates/create/*"]}]}`

func policyDoc(topic string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/` + topic + `"}]}`
}

// TestPolicies drives the policy API through the real SDK: every
// operation's happy path and its documented errors.
func TestPolicies(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()

	out, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("claim"), PolicyDocument: aws.String(claimPolicy),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("fleet")}}})
	if err != nil {
		t.Fatal(err)
	}
	wantARN := "arn:aws:iot:us-east-1:" + testAccount + ":policy/claim"
	if aws.ToString(out.PolicyArn) != wantARN || aws.ToString(out.PolicyVersionId) != "1" || aws.ToString(out.PolicyDocument) != claimPolicy {
		t.Fatalf("CreatePolicy = %+v", out)
	}
	got, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("claim")})
	if err != nil || aws.ToString(got.DefaultVersionId) != "1" || aws.ToString(got.PolicyDocument) != claimPolicy ||
		got.CreationDate == nil || got.LastModifiedDate == nil || aws.ToString(got.GenerationId) == "" || aws.ToString(got.PolicyArn) != wantARN {
		t.Fatalf("GetPolicy = %+v, %v", got, err)
	}
	tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(wantARN)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Fatalf("tags %+v, %v", tags, err)
	}

	t.Run("errors", func(t *testing.T) {
		_, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("claim"), PolicyDocument: aws.String(claimPolicy)})
		if !isErr[*types.ResourceAlreadyExistsException](err) {
			t.Errorf("a second policy of one name: %v", err)
		}
		for _, doc := range []string{`not json`, `{"Version":"2012-10-17","Statement":[{"Effect":"Perhaps","Action":"iot:*","Resource":"*"}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}`, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*"}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"` + strings.Repeat("x", 2100) + `"}]}`} {
			_, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("bad"), PolicyDocument: aws.String(doc)})
			if !isErr[*types.MalformedPolicyException](err) {
				t.Errorf("CreatePolicy(%.60q): %v, want MalformedPolicyException", doc, err)
			}
		}
		if _, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("bad")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a malformed policy was stored, or GetPolicy of none: %v", err)
		}
		if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("bad/name"), PolicyDocument: aws.String(claimPolicy)}); !isErr[*types.InvalidRequestException](err) {
			t.Errorf("a name outside the pattern: %v", err)
		}
		if _, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("none"), PolicyDocument: aws.String(claimPolicy)}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a version of no policy: %v", err)
		}
		if _, err := c.GetPolicyVersion(ctx, &iot.GetPolicyVersionInput{PolicyName: aws.String("claim"), PolicyVersionId: aws.String("9")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("a missing version: %v", err)
		}
		if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("none")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Errorf("deleting no policy: %v", err)
		}
	})

	t.Run("versions", func(t *testing.T) {
		_, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc("v1"))})
		if err != nil {
			t.Fatal(err)
		}
		v2, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc("v2"))})
		if err != nil || aws.ToString(v2.PolicyVersionId) != "2" || v2.IsDefaultVersion {
			t.Fatalf("version 2 = %+v, %v", v2, err)
		}
		v3, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc("v3")), SetAsDefault: true})
		if err != nil || aws.ToString(v3.PolicyVersionId) != "3" || !v3.IsDefaultVersion {
			t.Fatalf("version 3 = %+v, %v", v3, err)
		}
		if p, _ := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("versioned")}); aws.ToString(p.DefaultVersionId) != "3" || aws.ToString(p.PolicyDocument) != policyDoc("v3") {
			t.Fatalf("the default after setAsDefault: %+v", p)
		}
		for i := 4; i <= 5; i++ {
			if _, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc(fmt.Sprint("v", i)))}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc("v6"))}); !isErr[*types.VersionsLimitExceededException](err) {
			t.Fatalf("a sixth version: %v, want VersionsLimitExceededException", err)
		}
		list, err := c.ListPolicyVersions(ctx, &iot.ListPolicyVersionsInput{PolicyName: aws.String("versioned")})
		if err != nil || len(list.PolicyVersions) != 5 || aws.ToString(list.PolicyVersions[0].VersionId) != "5" {
			t.Fatalf("ListPolicyVersions = %+v, %v", list, err)
		}
		for _, v := range list.PolicyVersions {
			if v.IsDefaultVersion != (aws.ToString(v.VersionId) == "3") || v.CreateDate == nil {
				t.Errorf("version %+v", v)
			}
		}
		gv, err := c.GetPolicyVersion(ctx, &iot.GetPolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String("2")})
		if err != nil || aws.ToString(gv.PolicyDocument) != policyDoc("v2") || gv.IsDefaultVersion || aws.ToString(gv.PolicyName) != "versioned" {
			t.Fatalf("GetPolicyVersion = %+v, %v", gv, err)
		}
		if _, err := c.DeletePolicyVersion(ctx, &iot.DeletePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String("3")}); !isErr[*types.DeleteConflictException](err) {
			t.Fatalf("deleting the default version: %v", err)
		}
		if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("versioned")}); !isErr[*types.DeleteConflictException](err) {
			t.Fatalf("deleting a policy with other versions: %v", err)
		}
		if _, err := c.SetDefaultPolicyVersion(ctx, &iot.SetDefaultPolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String("5")}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"1", "2", "3", "4"} {
			if _, err := c.DeletePolicyVersion(ctx, &iot.DeletePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String(id)}); err != nil {
				t.Fatalf("deleting version %s: %v", id, err)
			}
		}
		if _, err := c.SetDefaultPolicyVersion(ctx, &iot.SetDefaultPolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String("2")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("default to a deleted version: %v", err)
		}
		v6, err := c.CreatePolicyVersion(ctx, &iot.CreatePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyDocument: aws.String(policyDoc("v6"))})
		if err != nil || aws.ToString(v6.PolicyVersionId) != "6" {
			t.Fatalf("the version after deletions = %+v, %v; IDs are not reused", v6, err)
		}
		if _, err := c.DeletePolicyVersion(ctx, &iot.DeletePolicyVersionInput{PolicyName: aws.String("versioned"), PolicyVersionId: aws.String("6")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("versioned")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String("versioned")}); !isErr[*types.ResourceNotFoundException](err) {
			t.Fatalf("a deleted policy: %v", err)
		}
	})
}

// TestListPoliciesPaging lists hundreds of policies a page at a time, both
// ways, through the SDK's paginator.
func TestListPoliciesPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	const n = 260
	for i := range n {
		name := fmt.Sprintf("policy-%03d", i)
		if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(policyDoc(name))}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("policy-%03d", i))
	}
	for _, ascending := range []bool{true, false} {
		var names []string
		pages := iot.NewListPoliciesPaginator(c, &iot.ListPoliciesInput{PageSize: aws.Int32(40), AscendingOrder: ascending})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Policies) > 40 {
				t.Fatalf("a page of %d", len(page.Policies))
			}
			for _, p := range page.Policies {
				names = append(names, aws.ToString(p.PolicyName))
			}
		}
		expected := slices.Clone(want)
		if !ascending {
			slices.Reverse(expected)
		}
		if !slices.Equal(names, expected) {
			t.Fatalf("ascending %v: listed %d names, not each once in order: %v", ascending, len(names), names)
		}
	}
	if _, err := c.ListPolicies(ctx, &iot.ListPoliciesInput{Marker: aws.String("bm90LWEtbWFya2Vy")}); !isErr[*types.InvalidRequestException](err) {
		t.Fatalf("a marker fleetca did not issue: %v", err)
	}
}

// TestPolicyAttachments attaches policies to certificates through the SDK,
// with the current calls and the deprecated ones older tools make, and
// checks what attachments refuse: deleting the policy or the certificate.
func TestPolicyAttachments(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	cert, err := c.CreateKeysAndCertificate(ctx, &iot.CreateKeysAndCertificateInput{})
	if err != nil {
		t.Fatal(err)
	}
	certARN := aws.ToString(cert.CertificateArn)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(policyDoc(name))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("a"), Target: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("a"), Target: aws.String(certARN)}); err != nil {
		t.Fatalf("attaching twice: %v", err)
	}
	//lint:ignore SA1019 the deprecated call is what older SDKs and tools still make
	if _, err := c.AttachPrincipalPolicy(ctx, &iot.AttachPrincipalPolicyInput{PolicyName: aws.String("b"), Principal: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	attached, err := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(certARN)})
	if err != nil || len(attached.Policies) != 2 || aws.ToString(attached.Policies[0].PolicyName) != "a" || aws.ToString(attached.Policies[1].PolicyName) != "b" {
		t.Fatalf("ListAttachedPolicies = %+v, %v", attached, err)
	}
	//lint:ignore SA1019 deprecated, still called
	principal, err := c.ListPrincipalPolicies(ctx, &iot.ListPrincipalPoliciesInput{Principal: aws.String(certARN)})
	if err != nil || len(principal.Policies) != 2 {
		t.Fatalf("ListPrincipalPolicies = %+v, %v", principal, err)
	}
	targets, err := c.ListTargetsForPolicy(ctx, &iot.ListTargetsForPolicyInput{PolicyName: aws.String("a")})
	if err != nil || len(targets.Targets) != 1 || targets.Targets[0] != certARN {
		t.Fatalf("ListTargetsForPolicy = %+v, %v", targets, err)
	}
	//lint:ignore SA1019 deprecated, still called
	principals, err := c.ListPolicyPrincipals(ctx, &iot.ListPolicyPrincipalsInput{PolicyName: aws.String("b")})
	if err != nil || len(principals.Principals) != 1 || principals.Principals[0] != certARN {
		t.Fatalf("ListPolicyPrincipals = %+v, %v", principals, err)
	}

	// What attachments refuse.
	if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("a")}); !isErr[*types.DeleteConflictException](err) {
		t.Fatalf("deleting an attached policy: %v", err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: cert.CertificateId}); !isErr[*types.DeleteConflictException](err) {
		t.Fatalf("deleting a certificate with policies: %v", err)
	}
	for _, bad := range []struct {
		policy, target string
		ok             func(error) bool
	}{
		{"a", "arn:aws:iot:us-east-1:" + testAccount + ":cert/" + strings.Repeat("ab", 32), isErr[*types.ResourceNotFoundException]},
		{"none", certARN, isErr[*types.ResourceNotFoundException]},
		{"a", "arn:aws:iot:us-east-1:" + testAccount + ":thinggroup/g", isErr[*types.InvalidRequestException]},
		{"a", "arn:aws:iot:us-east-1:111111111111:cert/" + aws.ToString(cert.CertificateId), isErr[*types.InvalidRequestException]},
		{"a", "us-east-1:1234-identity", isErr[*types.InvalidRequestException]},
	} {
		if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(bad.policy), Target: aws.String(bad.target)}); !bad.ok(err) {
			t.Errorf("AttachPolicy(%s, %s): %v", bad.policy, bad.target, err)
		}
	}

	// Detach, with both calls; then the policy can go.
	if _, err := c.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("a"), Target: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("a")}); err != nil {
		t.Fatalf("deleting a detached policy: %v", err)
	}
	//lint:ignore SA1019 deprecated, still called
	if _, err := c.DetachPrincipalPolicy(ctx, &iot.DetachPrincipalPolicyInput{PolicyName: aws.String("b"), Principal: aws.String(certARN)}); err != nil {
		t.Fatal(err)
	}
	if attached, _ := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(certARN)}); len(attached.Policies) != 0 {
		t.Fatalf("after detaching: %+v", attached.Policies)
	}

	// Ten policies at most; forceDelete detaches them with the certificate.
	for i := range 10 {
		name := fmt.Sprint("limit-", i)
		if _, err := c.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(name), PolicyDocument: aws.String(policyDoc(name))}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(name), Target: aws.String(certARN)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String("c"), Target: aws.String(certARN)}); !isErr[*types.LimitExceededException](err) {
		t.Fatalf("an eleventh policy: %v", err)
	}
	if _, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: cert.CertificateId, ForceDelete: true}); err != nil {
		t.Fatalf("forceDelete: %v", err)
	}
	if targets, err := c.ListTargetsForPolicy(ctx, &iot.ListTargetsForPolicyInput{PolicyName: aws.String("limit-0")}); err != nil || len(targets.Targets) != 0 {
		t.Fatalf("a force-deleted certificate is still a target: %+v, %v", targets, err)
	}
	if _, err := c.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String("limit-0")}); err != nil {
		t.Fatalf("deleting a policy once its certificate is gone: %v", err)
	}
}
