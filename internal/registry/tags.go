package registry

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// MaxTags is how many tags a resource may have, as at AWS.
const MaxTags = 50

// checkTags applies the model's rules to tags: keys of 1 to 128 characters of
// letters, digits, white space and _.:/=+-@, not starting with aws:, and
// values of at most 256 characters; at most MaxTags distinct keys.
func checkTags(tags []iot.Tag) error {
	keys := map[string]bool{}
	for _, t := range tags {
		if n := utf8.RuneCountInString(t.Key); n < 1 || n > 128 {
			return apierr.New(apierr.InvalidRequest, "Tag keys must have 1 to 128 characters.")
		}
		if !utf8.ValidString(t.Key) || !utf8.ValidString(t.Value) {
			return apierr.New(apierr.InvalidRequest, "Tags must be valid UTF-8.")
		}
		for _, r := range t.Key {
			if !(unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Z, r) || strings.ContainsRune("_.:/=+-@", r)) {
				return apierr.New(apierr.InvalidRequest, "The tag key %q has a character that is not allowed.", t.Key)
			}
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return apierr.New(apierr.InvalidRequest, "Tag keys starting with aws: are reserved.")
		}
		if utf8.RuneCountInString(t.Value) > 256 {
			return apierr.New(apierr.InvalidRequest, "Tag values must have at most 256 characters.")
		}
		keys[t.Key] = true
	}
	if len(keys) > MaxTags {
		return apierr.New(apierr.LimitExceeded, "A resource can have at most %d tags.", MaxTags)
	}
	return nil
}

// taggableTypes are the resource types that take tags.
var taggableTypes = map[string]bool{iot.TypeCACertificate: true, iot.TypeCertificateProvider: true}

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
		if err := checkProviderName(id); err != nil {
			return iot.Resource{}, err
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
