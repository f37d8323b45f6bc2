package registry

import (
	"context"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// Change is one entry of the change feed: a policy, a principal's
// attachments or a thing changed, on this replica or another.
type Change = store.Change

// ChangeKind says what a change is about.
type ChangeKind = store.ChangeKind

// The kinds of change.
const (
	ChangePolicy      = store.ChangePolicy
	ChangePrincipal   = store.ChangePrincipal
	ChangeThing       = store.ChangeThing
	ChangeCertificate = store.ChangeCertificate
	ChangeCA          = store.ChangeCA
)

// Changes returns up to limit changes numbered above after, in order.
func (s *Service) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	c, err := s.store.Changes(ctx, after, limit)
	if err != nil {
		return nil, internal("reading the change feed", err)
	}
	return c, nil
}

// LastChange returns the highest number the change feed has given.
func (s *Service) LastChange(ctx context.Context) (int64, error) {
	n, err := s.store.LastChange(ctx)
	if err != nil {
		return 0, internal("reading the change feed", err)
	}
	return n, nil
}

// ChangeRetention is how long the feed keeps a change: long past the time
// any replica takes to read it. A replica that could not read the feed for
// longer may have missed changes, and checks everything again.
const ChangeRetention = time.Hour

// PruneChanges deletes the changes older than the feed keeps them.
func (s *Service) PruneChanges(ctx context.Context) error {
	if err := s.store.PruneChanges(ctx, s.now().Add(-ChangeRetention)); err != nil {
		return internal("pruning the change feed", err)
	}
	return nil
}

// ChangeNotices delivers a notice (coalesced) after each change this
// process makes, so that the device plane reads the feed at once rather
// than at its next poll.
func (s *Service) ChangeNotices() <-chan struct{} { return s.notices }

// changed sends a notice; one already pending stands for this one too.
// The calls that may write to the feed defer it whatever their outcome: a
// notice when nothing changed costs the reader one query.
func (s *Service) changed() {
	select {
	case s.notices <- struct{}{}:
	default:
	}
}
