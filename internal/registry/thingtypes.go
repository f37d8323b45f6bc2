package registry

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// The limits of thing types, as at AWS.
const (
	// MaxSearchableAttributes is how many searchable attributes a type has.
	MaxSearchableAttributes = 3
	// ThingTypeDeleteDelay is how long a type stays deprecated before it
	// may be deleted: AWS waits five minutes, so that things being created
	// with it see the deprecation first.
	ThingTypeDeleteDelay = 5 * time.Minute
)

func thingTypeNotFound(name string) error {
	return apierr.New(apierr.ResourceNotFound, "Thing type %s cannot be found.", name)
}

func thingTypeError(err error, name, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return thingTypeNotFound(name)
	}
	return internal(what, err)
}

// thingType reads a type a thing names; ResourceNotFound if there is none.
func (s *Service) thingType(ctx context.Context, scope iot.Scope, name string) (*iot.ThingType, error) {
	t, err := s.store.ThingType(ctx, scope, name)
	if err != nil {
		return nil, thingTypeError(err, name, "reading a thing type")
	}
	return t, nil
}

// deprecatedType is the refusal of a new association with a deprecated
// type; things that have the type keep it, as at AWS.
func deprecatedType(name string) error {
	return apierr.New(apierr.InvalidRequest, "Thing type %s is deprecated; no thing can take it now.", name)
}

// ThingTypeInput is a new thing type.
type ThingTypeInput struct {
	Name, Description    string
	SearchableAttributes []string
	Tags                 []iot.Tag
}

// CreateThingType creates a thing type. Creating one that exists with the
// same description and searchable attributes returns it, as CreateThing
// does; with others it is ResourceAlreadyExistsException.
func (s *Service) CreateThingType(ctx context.Context, scope iot.Scope, in ThingTypeInput) (*iot.ThingType, error) {
	// The same attributes in another order are the same type.
	in.SearchableAttributes = slices.Compact(slices.Sorted(slices.Values(in.SearchableAttributes)))
	if len(in.SearchableAttributes) > MaxSearchableAttributes {
		return nil, apierr.New(apierr.InvalidRequest, "A thing type has at most %d searchable attributes.", MaxSearchableAttributes)
	}
	for _, a := range in.SearchableAttributes {
		if !iot.ValidAttributeName(a) {
			return nil, apierr.New(apierr.InvalidRequest, "The searchable attribute %q is not an attribute name.", truncate(a, 128))
		}
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	t := &iot.ThingType{Scope: scope, Name: in.Name, ID: newGenerationID(), Description: in.Description,
		SearchableAttributes: in.SearchableAttributes, CreatedAt: s.timestamp()}
	if t.SearchableAttributes == nil {
		t.SearchableAttributes = []string{}
	}
	err := s.store.CreateThingType(ctx, t, in.Tags)
	if errors.Is(err, store.ErrExists) {
		old, rerr := s.store.ThingType(ctx, scope, in.Name)
		if rerr != nil {
			return nil, thingTypeError(rerr, in.Name, "reading a thing type")
		}
		if old.Description == t.Description && slices.Equal(old.SearchableAttributes, t.SearchableAttributes) {
			return old, nil
		}
		return nil, apierr.AlreadyExists(old.ID, old.ARN(), "Thing type %s already exists in account with different properties", in.Name)
	}
	if err != nil {
		return nil, internal("storing a thing type", err)
	}
	return t, nil
}

// DescribeThingType returns a thing type.
func (s *Service) DescribeThingType(ctx context.Context, scope iot.Scope, name string) (*iot.ThingType, error) {
	t, err := s.store.ThingType(ctx, scope, name)
	if err != nil {
		return nil, thingTypeError(err, name, "reading a thing type")
	}
	return t, nil
}

// ListThingTypes returns a page of the scope's thing types in name order;
// with name, only that type.
func (s *Service) ListThingTypes(ctx context.Context, scope iot.Scope, name string, opts ListOptions) ([]iot.ThingType, string, error) {
	if name != "" {
		t, err := s.store.ThingType(ctx, scope, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", internal("reading a thing type", err)
		}
		return []iot.ThingType{*t}, "", nil
	}
	list, next, err := keysetPage(opts, func(t iot.ThingType) string { return t.Name }, func(after string, limit int) ([]iot.ThingType, bool, error) {
		return s.store.ListThingTypes(ctx, scope, after, limit)
	})
	if err != nil {
		return nil, "", internal("listing thing types", err)
	}
	return list, next, nil
}

// DeprecateThingType deprecates a thing type, or with undo makes it
// usable again.
func (s *Service) DeprecateThingType(ctx context.Context, scope iot.Scope, name string, undo bool) error {
	err := s.store.DeprecateThingType(ctx, scope, name, !undo, s.timestamp())
	if err != nil {
		return thingTypeError(err, name, "deprecating a thing type")
	}
	return nil
}

// DeleteThingType deletes a thing type deprecated for ThingTypeDeleteDelay
// that no thing has.
func (s *Service) DeleteThingType(ctx context.Context, scope iot.Scope, name string) error {
	err := s.store.DeleteThingType(ctx, scope, name, func(t *iot.ThingType) error {
		if !t.Deprecated {
			return apierr.New(apierr.InvalidRequest, "Thing type %s must be deprecated before it is deleted.", name)
		}
		if wait := t.DeprecatedAt.Add(ThingTypeDeleteDelay).Sub(s.now()); wait > 0 {
			return apierr.New(apierr.InvalidRequest, "Thing type %s was deprecated less than five minutes ago; it can be deleted in %s.", name, wait.Round(time.Second))
		}
		return nil
	})
	if _, ok := apierr.As(err); ok {
		return err
	}
	if errors.Is(err, store.ErrAttached) {
		return apierr.New(apierr.InvalidRequest, "Thing type %s cannot be deleted: things have it.", name)
	}
	if err != nil {
		return thingTypeError(err, name, "deleting a thing type")
	}
	return nil
}
