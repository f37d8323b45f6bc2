package registry

import (
	"context"
	"errors"
	"maps"

	"github.com/fleetca/fleetca/internal/apierr"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// MaxAttributesWithType is how many attributes a thing with a thing type
// may have.
const MaxAttributesWithType = 50

func thingNotFound(name string) error {
	return apierr.New(apierr.ResourceNotFound, "Thing %s cannot be found.", name)
}

func thingError(err error, name, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return thingNotFound(name)
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	return internal(what, err)
}

func checkAttributeCount(attributes map[string]string, typeName string) error {
	if typeName == "" && len(attributes) > iot.MaxAttributesWithoutType {
		return apierr.New(apierr.InvalidRequest, "A thing without a thing type can have at most %d attributes; this one would have %d.",
			iot.MaxAttributesWithoutType, len(attributes))
	}
	if len(attributes) > MaxAttributesWithType {
		return apierr.New(apierr.InvalidRequest, "A thing can have at most %d attributes; this one would have %d.", MaxAttributesWithType, len(attributes))
	}
	return nil
}

// CreateThing creates a thing. Creating a thing that exists with the same
// type and attributes returns it, as AWS does; with others it is
// ResourceAlreadyExistsException.
func (s *Service) CreateThing(ctx context.Context, scope iot.Scope, name, typeName, billingGroup string, attributes map[string]string) (*iot.Thing, error) {
	deprecated := false
	if typeName != "" {
		tt, err := s.thingType(ctx, scope, typeName)
		if err != nil {
			return nil, err
		}
		deprecated = tt.Deprecated
	}
	if billingGroup != "" {
		return nil, apierr.New(apierr.ResourceNotFound, "Billing group %s cannot be found.", billingGroup)
	}
	attributes = maps.Clone(attributes)
	maps.DeleteFunc(attributes, func(_, v string) bool { return v == "" })
	if err := checkAttributeCount(attributes, typeName); err != nil {
		return nil, err
	}
	now := s.timestamp()
	t := &iot.Thing{Scope: scope, Name: name, ID: newGenerationID(), TypeName: typeName, Attributes: attributes, Version: 1, CreatedAt: now, ModifiedAt: now}
	// AWS's CreateThing takes no tags; TagResource tags things. With a
	// deprecated type only the same thing again is answered (it exists).
	err := store.ErrExists
	if !deprecated {
		err = s.store.CreateThing(ctx, t, nil)
	}
	if errors.Is(err, store.ErrExists) {
		old, rerr := s.store.Thing(ctx, scope, name)
		if deprecated && errors.Is(rerr, store.ErrNotFound) {
			return nil, deprecatedType(typeName)
		}
		if rerr != nil {
			return nil, thingError(rerr, name, "reading a thing")
		}
		if old.TypeName == typeName && maps.Equal(old.Attributes, attributes) {
			return old, nil
		}
		if deprecated {
			return nil, deprecatedType(typeName)
		}
		e := apierr.New(apierr.ResourceAlreadyExists, "Thing %s already exists in account with different attributes", name)
		e.ResourceID, e.ResourceARN = old.ID, old.ARN()
		return nil, e
	}
	if err != nil {
		return nil, internal("storing a thing", err)
	}
	return t, nil
}

// DescribeThing returns a thing.
func (s *Service) DescribeThing(ctx context.Context, scope iot.Scope, name string) (*iot.Thing, error) {
	t, err := s.store.Thing(ctx, scope, name)
	if err != nil {
		return nil, thingError(err, name, "reading a thing")
	}
	return t, nil
}

// ThingFilter selects the things ListThings lists.
type ThingFilter = store.ThingFilter

// Attachments selects the thing principals the listings list.
type Attachments = store.Attachments

// The selections of Attachments.
const (
	AnyAttachment    = store.AnyAttachment
	ExclusiveOnly    = store.ExclusiveOnly
	NonExclusiveOnly = store.NonExclusiveOnly
)

// ListThings returns a page of the scope's things in name order.
func (s *Service) ListThings(ctx context.Context, scope iot.Scope, filter ThingFilter, opts ListOptions) ([]iot.Thing, string, error) {
	if filter.AttributeValue != "" && filter.AttributeName == "" {
		return nil, "", apierr.New(apierr.InvalidRequest, "attributeValue needs attributeName.")
	}
	list, next, err := keysetPage(opts, func(t iot.Thing) string { return t.Name }, func(after string, limit int) ([]iot.Thing, bool, error) {
		return s.store.ListThings(ctx, scope, filter, after, limit)
	})
	if err != nil {
		return nil, "", thingError(err, "", "listing things")
	}
	return list, next, nil
}

// ThingUpdate is what UpdateThing changes. Nil members are left as they are.
type ThingUpdate struct {
	// TypeName sets the thing type; RemoveType removes it.
	TypeName   string
	RemoveType bool
	// Attributes, when not nil, replace the thing's attributes, or with
	// Merge are merged into them, an empty value removing the attribute.
	Attributes map[string]string
	Merge      bool
	// ExpectedVersion, when not nil, must be the thing's version.
	ExpectedVersion *int64
}

func versionConflict(name string) error {
	return apierr.New(apierr.VersionConflict, "The version for thing %s does not match the expected version.", name)
}

// UpdateThing changes a thing's type and attributes; the thing takes the
// next version.
func (s *Service) UpdateThing(ctx context.Context, scope iot.Scope, name string, u ThingUpdate) error {
	defer s.changed()
	if u.RemoveType && u.TypeName != "" {
		return apierr.New(apierr.InvalidRequest, "Cannot both set and remove the thing type.")
	}
	var newType *iot.ThingType
	if u.TypeName != "" {
		var err error
		if newType, err = s.thingType(ctx, scope, u.TypeName); err != nil {
			return err
		}
	}
	_, err := s.store.UpdateThing(ctx, scope, name, s.timestamp(), func(t *iot.Thing) error {
		if newType != nil && newType.Deprecated && t.TypeName != newType.Name {
			return deprecatedType(newType.Name)
		}
		if u.ExpectedVersion != nil && *u.ExpectedVersion != t.Version {
			return versionConflict(name)
		}
		if u.RemoveType {
			t.TypeName = ""
		}
		if u.TypeName != "" {
			t.TypeName = u.TypeName
		}
		if u.Attributes != nil {
			if !u.Merge {
				t.Attributes = map[string]string{}
			}
			if t.Attributes == nil {
				t.Attributes = map[string]string{}
			}
			for k, v := range u.Attributes {
				if v == "" {
					delete(t.Attributes, k)
				} else {
					t.Attributes[k] = v
				}
			}
		}
		return checkAttributeCount(t.Attributes, t.TypeName)
	})
	return thingError(err, name, "updating a thing")
}

// DeleteThing deletes a thing. A thing that does not exist is deleted
// already: AWS's model documents the call as succeeding then. A thing with
// principals attached is refused.
func (s *Service) DeleteThing(ctx context.Context, scope iot.Scope, name string, expectedVersion *int64) error {
	err := s.store.DeleteThing(ctx, scope, name, func(t *iot.Thing) error {
		if expectedVersion != nil && *expectedVersion != t.Version {
			return versionConflict(name)
		}
		return nil
	})
	switch {
	case err == nil, errors.Is(err, store.ErrNotFound):
		return nil
	case errors.Is(err, store.ErrThingAttached):
		return apierr.New(apierr.InvalidRequest, "Cannot delete. Thing %s is still attached to one or more principals", name)
	}
	return thingError(err, name, "deleting a thing")
}

// AttachThingPrincipal attaches a certificate to a thing.
func (s *Service) AttachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string, exclusive bool) error {
	defer s.changed()
	id, _, err := certificateTarget(scope, principal)
	if err != nil {
		return err
	}
	if _, err := s.store.Thing(ctx, scope, thing); err != nil {
		return thingError(err, thing, "reading a thing")
	}
	err = s.store.AttachThingPrincipal(ctx, scope, thing, id, exclusive, s.timestamp())
	switch {
	case errors.Is(err, store.ErrExclusive):
		if exclusive {
			return apierr.New(apierr.InvalidRequest, "The principal %s is attached to another thing, so it cannot be attached to %s exclusively.", principal, thing)
		}
		return apierr.New(apierr.InvalidRequest, "The principal %s is attached exclusively to another thing.", principal)
	case errors.Is(err, store.ErrNotFound):
		return apierr.New(apierr.ResourceNotFound, "The thing %s or the certificate %s does not exist.", thing, id)
	case err != nil:
		return internal("attaching a principal", err)
	}
	return nil
}

// DetachThingPrincipal detaches a certificate from a thing.
func (s *Service) DetachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string) error {
	defer s.changed()
	_, arn, err := certificateTarget(scope, principal)
	if err != nil {
		return err
	}
	return thingError(s.store.DetachThingPrincipal(ctx, scope, thing, arn, s.timestamp()), thing, "detaching a principal")
}

// ListThingPrincipals lists the principals attached to a thing.
func (s *Service) ListThingPrincipals(ctx context.Context, scope iot.Scope, thing string, only Attachments, opts ListOptions) ([]iot.ThingPrincipal, string, error) {
	list, next, err := keysetPage(opts, func(p iot.ThingPrincipal) string { return p.Principal }, func(after string, limit int) ([]iot.ThingPrincipal, bool, error) {
		return s.store.ListThingPrincipals(ctx, scope, thing, only, after, limit)
	})
	if err != nil {
		return nil, "", thingError(err, thing, "listing principals")
	}
	return list, next, nil
}

// ListPrincipalThings lists the things a certificate is attached to.
func (s *Service) ListPrincipalThings(ctx context.Context, scope iot.Scope, principal string, only Attachments, opts ListOptions) ([]iot.ThingPrincipal, string, error) {
	id, arn, err := certificateTarget(scope, principal)
	if err != nil {
		return nil, "", err
	}
	if _, err := s.store.Certificate(ctx, scope, id); err != nil {
		return nil, "", certificateError(err, id)
	}
	list, next, err := keysetPage(opts, func(p iot.ThingPrincipal) string { return p.ThingName }, func(after string, limit int) ([]iot.ThingPrincipal, bool, error) {
		return s.store.ListPrincipalThings(ctx, scope, arn, only, after, limit)
	})
	if err != nil {
		return nil, "", thingError(err, "", "listing a principal's things")
	}
	return list, next, nil
}
