package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
)

const signerARN = "arn:aws:lambda:us-east-1:123456789012:function:signer"

func createProvider(name, arn, token string) *iot.CreateCertificateProviderInput {
	in := &iot.CreateCertificateProviderInput{
		CertificateProviderName:     aws.String(name),
		LambdaFunctionArn:           aws.String(arn),
		AccountDefaultForOperations: []types.CertificateProviderOperation{types.CertificateProviderOperationCreateCertificateFromCsr},
	}
	if token != "" {
		in.ClientToken = aws.String(token)
	}
	return in
}

func TestCertificateProviderLifecycle(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "")
	c := ts.iotClient()
	ctx := context.Background()
	const token = "1f0c6a9e-4e86-4d2b-9a3e-6f4f6a5b7c8d"
	in := createProvider("fleet=signer,v1@acme", signerARN, token)
	in.Tags = []types.Tag{{Key: aws.String("owner"), Value: aws.String("pki-team")}}
	out, err := c.CreateCertificateProvider(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	wantARN := "arn:aws:iot:" + testRegion + ":" + testAccount + ":certificateprovider/fleet=signer,v1@acme"
	if *out.CertificateProviderName != "fleet=signer,v1@acme" || *out.CertificateProviderArn != wantARN {
		t.Fatalf("created %s %s", *out.CertificateProviderName, *out.CertificateProviderArn)
	}
	d, err := c.DescribeCertificateProvider(ctx, &iot.DescribeCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme")})
	if err != nil {
		t.Fatal(err)
	}
	if *d.LambdaFunctionArn != signerARN || len(d.AccountDefaultForOperations) != 1 || *d.CertificateProviderArn != wantARN ||
		time.Since(*d.CreationDate) > time.Minute || !d.LastModifiedDate.Equal(*d.CreationDate) {
		t.Fatalf("description %+v", d)
	}

	// A retry with the same token and parameters gets the first answer.
	again, err := c.CreateCertificateProvider(ctx, in)
	if err != nil || *again.CertificateProviderArn != wantARN {
		t.Fatalf("replay: %v", err)
	}
	rules := []struct {
		name string
		in   *iot.CreateCertificateProviderInput
		want func(error) bool
	}{
		{"same token, other parameters", createProvider("fleet=signer,v1@acme", signerARN+"-v2", token), isErr[*types.InvalidRequestException]},
		{"second provider", createProvider("another", signerARN, ""), isErr[*types.LimitExceededException]},
		{"bad name", createProvider("has space", signerARN, ""), isErr[*types.InvalidRequestException]},
		{"name too long", createProvider(strings.Repeat("n", 129), signerARN, ""), isErr[*types.InvalidRequestException]},
		{"not a Lambda ARN", createProvider("p", "arn:aws:iot:us-east-1:123456789012:thing/x", ""), isErr[*types.InvalidRequestException]},
		{"ARN without function", createProvider("p", "arn:aws:lambda:us-east-1:123456789012:layer:x", ""), isErr[*types.InvalidRequestException]},
		{"short token", createProvider("p", signerARN, "too-short"), isErr[*types.InvalidRequestException]},
	}
	for _, tc := range rules {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.CreateCertificateProvider(ctx, tc.in); !tc.want(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("same name, new token", func(t *testing.T) {
		_, err := c.CreateCertificateProvider(ctx, createProvider("fleet=signer,v1@acme", signerARN, ""))
		var exists *types.ResourceAlreadyExistsException
		if !errors.As(err, &exists) || aws.ToString(exists.ResourceId) != "fleet=signer,v1@acme" || aws.ToString(exists.ResourceArn) != wantARN {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("accountDefaultForOperations", func(t *testing.T) {
		for _, body := range []string{
			`{"lambdaFunctionArn":"` + signerARN + `"}`,
			`{"lambdaFunctionArn":"` + signerARN + `","accountDefaultForOperations":[]}`,
			`{"lambdaFunctionArn":"` + signerARN + `","accountDefaultForOperations":["CreateKeysAndCertificate"]}`,
			`{"lambdaFunctionArn":"` + signerARN + `","accountDefaultForOperations":["CreateCertificateFromCsr","CreateCertificateFromCsr"]}`,
		} {
			ts.send(t, rawRequest{method: "POST", path: "/certificate-providers/other", body: []byte(body)}).check(t, 400, "InvalidRequestException")
		}
	})

	// boto3 lists with a trailing slash; both forms answer the same.
	for _, path := range []string{"/certificate-providers", "/certificate-providers/", "/certificate-providers?isAscendingOrder=true"} {
		r := ts.send(t, rawRequest{method: "GET", path: path})
		list, _ := r.body["certificateProviders"].([]any)
		if r.status != 200 || len(list) != 1 {
			t.Fatalf("GET %s: %d %v", path, r.status, r.body)
		}
	}
	ts.send(t, rawRequest{method: "GET", path: "/certificate-providers/a/b"}).check(t, 404, "UnknownOperationException")
	list, err := c.ListCertificateProviders(ctx, &iot.ListCertificateProvidersInput{})
	if err != nil || len(list.CertificateProviders) != 1 || list.NextToken != nil {
		t.Fatalf("list: %v %+v", err, list)
	}

	up, err := c.UpdateCertificateProvider(ctx, &iot.UpdateCertificateProviderInput{
		CertificateProviderName: aws.String("fleet=signer,v1@acme"), LambdaFunctionArn: aws.String(signerARN + ":prod"),
	})
	if err != nil || *up.CertificateProviderArn != wantARN {
		t.Fatalf("update: %v", err)
	}
	d2, _ := c.DescribeCertificateProvider(ctx, &iot.DescribeCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme")})
	if *d2.LambdaFunctionArn != signerARN+":prod" || !d2.CreationDate.Equal(*d.CreationDate) || d2.LastModifiedDate.Before(*d.LastModifiedDate) {
		t.Fatalf("after update: %+v", d2)
	}
	if _, err := c.UpdateCertificateProvider(ctx, &iot.UpdateCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme"), LambdaFunctionArn: aws.String("nope")}); !isErr[*types.InvalidRequestException](err) {
		t.Fatalf("update with a bad ARN: %v", err)
	}
	if _, err := c.UpdateCertificateProvider(ctx, &iot.UpdateCertificateProviderInput{CertificateProviderName: aws.String("ghost"), LambdaFunctionArn: aws.String(signerARN)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("update of an unknown provider: %v", err)
	}

	tags, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(wantARN)})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "pki-team" {
		t.Fatalf("provider tags: %v %+v", err, tags)
	}
	if _, err := c.TagResource(ctx, &iot.TagResourceInput{ResourceArn: aws.String(wantARN), Tags: []types.Tag{{Key: aws.String("stage"), Value: aws.String("prod")}}}); err != nil {
		t.Fatal(err)
	}

	if _, err := c.DeleteCertificateProvider(ctx, &iot.DeleteCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeCertificateProvider(ctx, &iot.DescribeCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := c.DeleteCertificateProvider(ctx, &iot.DeleteCertificateProviderInput{CertificateProviderName: aws.String("fleet=signer,v1@acme")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := c.ListTagsForResource(ctx, &iot.ListTagsForResourceInput{ResourceArn: aws.String(wantARN)}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("tags of a deleted provider: %v", err)
	}
	// The slot is free again, and the SDK fills a fresh client token itself.
	if _, err := c.CreateCertificateProvider(ctx, createProvider("another", signerARN, "")); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateProviderPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServer(t, dir)
	const token = "9d7e0c52-2a61-4c1f-8d9e-3b2a1c0f9e8d"
	if _, err := ts.iotClient().CreateCertificateProvider(context.Background(), createProvider("signer", signerARN, token)); err != nil {
		t.Fatal(err)
	}
	ts.stop(t)
	ts = startServer(t, dir)
	c := ts.iotClient()
	d, err := c.DescribeCertificateProvider(context.Background(), &iot.DescribeCertificateProviderInput{CertificateProviderName: aws.String("signer")})
	if err != nil || *d.LambdaFunctionArn != signerARN {
		t.Fatalf("after restart: %v", err)
	}
	// The client token is remembered across the restart too.
	if _, err := c.CreateCertificateProvider(context.Background(), createProvider("signer", signerARN, token)); err != nil {
		t.Fatalf("replay after restart: %v", err)
	}
	if _, err := c.CreateCertificateProvider(context.Background(), createProvider("signer", signerARN+"-x", token)); !isErr[*types.InvalidRequestException](err) {
		t.Fatalf("mismatched replay after restart: %v", err)
	}
}
