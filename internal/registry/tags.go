package registry

import (
	"context"
	"errors"
	"strings"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// MaxTags is how many tags a resource may have, as at AWS.
const MaxTags = 50

// checkTags applies the rules beyond the model's (which the API checks):
// keys starting with aws: are reserved, and a resource has at most MaxTags
// distinct keys.
func checkTags(tags []iot.Tag) error {
	keys := map[string]bool{}
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return apierr.New(apierr.InvalidRequest, "Tag keys starting with aws: are reserved.")
		}
		keys[t.Key] = true
	}
	if len(keys) > MaxTags {
		return apierr.New(apierr.LimitExceeded, "A resource can have at most %d tags.", MaxTags)
	}
	return nil
}

// taggableTypes are the resource types that take tags.
var taggableTypes = map[string]bool{iot.TypeCACertificate: true, iot.TypeCertificateProvider: true, iot.TypePolicy: true, iot.TypeThing: true,
	iot.TypeProvisioningTemplate: true, iot.TypeThingType: true}

// resource resolves an ARN to a taggable resource of the caller's scope.
// Device certificates take no tags, and no caller may reach another account's
// or region's resources.
func resource(scope iot.Scope, arn string) (iot.Resource, error) {
	p, ok := iot.ParseARN(arn)
	if !ok {
		return iot.Resource{}, apierr.New(apierr.InvalidRequest, "%q is not an AWS IoT resource ARN.", truncate(arn, 128))
	}
	if p.Partition != iot.Partition || p.Region != scope.Region || p.AccountID != scope.AccountID {
		return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN names a resource of another account, region or partition.")
	}
	if !taggableTypes[p.ResourceType] {
		return iot.Resource{}, apierr.New(apierr.InvalidRequest, "Resources of type %q cannot be tagged.", truncate(p.ResourceType, 64))
	}
	id := p.ResourceID
	switch p.ResourceType {
	case iot.TypeCACertificate:
		if id, ok = iot.NormalizeCertificateID(p.ResourceID); !ok {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's CA certificate ID is not 64 hexadecimal characters.")
		}
	case iot.TypeCertificateProvider:
		if !iot.ValidProviderName(id) {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's certificate provider name is not a valid name.")
		}
	case iot.TypePolicy:
		if !iot.ValidPolicyName(id) {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's policy name is not a valid name.")
		}
	case iot.TypeThing:
		if !iot.ValidThingName(id) {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's thing name is not a valid name.")
		}
	case iot.TypeThingType:
		if !iot.ValidThingName(id) {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's thing type name is not a valid name.")
		}
	case iot.TypeProvisioningTemplate:
		if !iot.ValidTemplateName(id) {
			return iot.Resource{}, apierr.New(apierr.InvalidRequest, "The ARN's provisioning template name is not a valid name.")
		}
	}
	return iot.Resource{Scope: scope, Type: p.ResourceType, ID: id}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// TagResource adds tags to a resource, overwriting the values of keys it has.
func (s *Service) TagResource(ctx context.Context, scope iot.Scope, arn string, tags []iot.Tag) error {
	r, err := resource(scope, arn)
	if err != nil {
		return err
	}
	if err := checkTags(tags); err != nil {
		return err
	}
	err = s.store.TagResource(ctx, r, tags, MaxTags)
	if errors.Is(err, store.ErrLimit) {
		return apierr.New(apierr.LimitExceeded, "A resource can have at most %d tags.", MaxTags)
	}
	return tagError(err, arn)
}

// UntagResource removes the tags with the keys from a resource.
func (s *Service) UntagResource(ctx context.Context, scope iot.Scope, arn string, keys []string) error {
	r, err := resource(scope, arn)
	if err != nil {
		return err
	}
	return tagError(s.store.UntagResource(ctx, r, keys), arn)
}

// ListTagsForResource returns a resource's tags sorted by key.
func (s *Service) ListTagsForResource(ctx context.Context, scope iot.Scope, arn string) ([]iot.Tag, error) {
	r, err := resource(scope, arn)
	if err != nil {
		return nil, err
	}
	tags, err := s.store.Tags(ctx, r)
	return tags, tagError(err, arn)
}

func tagError(err error, arn string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.New(apierr.ResourceNotFound, "The resource %s does not exist.", truncate(arn, 256))
	}
	return internal("tags of "+arn, err)
}
