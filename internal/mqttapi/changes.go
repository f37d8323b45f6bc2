package mqttapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/fleetca/fleetca/internal/registry"
)

// The change feed is how a policy change, an attachment or a detachment
// reaches live connections on every replica within seconds, without a poll
// of every connected device: each replica reads the feed by number (on
// every tick of Options.ChangePoll, and at once after a change of its own)
// and reads again the grants of the sessions each change affects, found
// through the dependents index. The work is O(changes + affected
// sessions), whatever the size of the fleet.
const (
	// changePage is how many changes one read takes.
	changePage = 1000
	// gapWait is how long a missing number is waited for. On PostgreSQL
	// numbers are taken at insertion, so a transaction that commits after
	// one with a higher number leaves a gap that fills when it commits; a
	// rolled-back one leaves a gap that never fills.
	gapWait = 30 * time.Second
	// maxGaps bounds the numbers waited for.
	maxGaps = 10_000
	// refreshTimeout bounds the reading of one session's grants.
	refreshTimeout = time.Second
)

// follower reads the change feed. Only its goroutine runs pass; position
// and refreshLater are safe from any goroutine.
type follower struct {
	h   *hook
	reg Registry
	// last is the highest number applied; every number below it was
	// applied or is in gaps.
	last  atomic.Int64
	known bool
	gaps  map[int64]time.Time
	// pending holds sessions whose grants are to be read again: affected
	// by a change, requested by track, or failed on the last try.
	mu      sync.Mutex
	pending map[*mqtt.Client]struct{}
	wake    chan struct{}
	failing bool
}

func newFollower(h *hook, reg Registry) *follower {
	return &follower{h: h, reg: reg, gaps: map[int64]time.Time{}, pending: map[*mqtt.Client]struct{}{}, wake: make(chan struct{}, 1)}
}

// position is the feed number up to which changes have been applied.
func (f *follower) position() int64 {
	if f == nil {
		return 0
	}
	return f.last.Load()
}

// refreshLater has cl's grants read again at the next pass, which it
// brings forward.
func (f *follower) refreshLater(cl *mqtt.Client) {
	f.mu.Lock()
	f.pending[cl] = struct{}{}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// track indexes a session by what its grant depends on. A change applied
// after the grant was read but before the session was indexed would have
// missed it, so such a session is read again.
func (h *hook) track(cl *mqtt.Client, sess *session) {
	g := sess.grant.Load()
	if g == nil {
		return // policies are not enforced
	}
	h.deps.set(cl, dependenciesOf(sess, g))
	if h.feed.position() > g.seq {
		h.feed.refreshLater(cl)
	}
}

// pass reads what the feed has beyond the last pass and applies it.
func (f *follower) pass(ctx context.Context) {
	if !f.known {
		last, err := f.reg.LastChange(ctx)
		if err != nil {
			f.fail(err)
			return
		}
		f.last.Store(last)
		f.known = true
		// Sessions admitted before the position was known read their
		// grants at position 0.
		f.h.sessions.Range(func(k, v any) bool {
			if g := v.(*session).grant.Load(); g != nil && g.seq < last {
				f.pending[k.(*mqtt.Client)] = struct{}{}
			}
			return true
		})
	}
	low := f.last.Load()
	for n := range f.gaps {
		low = min(low, n-1)
	}
	now := time.Now()
	for {
		changes, err := f.reg.Changes(ctx, low, changePage)
		if err != nil {
			f.fail(err)
			break
		}
		for _, c := range changes {
			last := f.last.Load()
			if c.Seq <= last {
				if _, waited := f.gaps[c.Seq]; !waited {
					continue // applied before
				}
				delete(f.gaps, c.Seq)
			} else {
				for n := last + 1; n < c.Seq && len(f.gaps) < maxGaps; n++ {
					f.gaps[n] = now
				}
				f.last.Store(c.Seq)
			}
			f.apply(c)
		}
		if len(changes) < changePage {
			break
		}
		low = changes[len(changes)-1].Seq
	}
	for n, since := range f.gaps {
		if now.Sub(since) > gapWait {
			delete(f.gaps, n)
		}
	}
	f.refreshPending(ctx)
}

// apply marks the sessions a change affects for reading again.
func (f *follower) apply(c registry.Change) {
	affected := f.h.deps.of(dependency{scope: c.Scope, kind: c.Kind, name: c.Name})
	if len(affected) == 0 {
		return
	}
	f.mu.Lock()
	for _, cl := range affected {
		f.pending[cl] = struct{}{}
	}
	f.mu.Unlock()
}

// refreshPending reads again the grants of the pending sessions; those
// whose read fails stay pending for the next pass.
func (f *follower) refreshPending(ctx context.Context) {
	f.mu.Lock()
	batch := f.pending
	f.pending = map[*mqtt.Client]struct{}{}
	f.mu.Unlock()
	var failed []*mqtt.Client
	var lastErr error
	for cl := range batch {
		if ctx.Err() != nil {
			failed = append(failed, cl)
			continue
		}
		if err := f.refresh(ctx, cl); err != nil {
			failed, lastErr = append(failed, cl), err
		}
	}
	if len(failed) > 0 {
		f.mu.Lock()
		for _, cl := range failed {
			f.pending[cl] = struct{}{}
		}
		f.mu.Unlock()
		if lastErr != nil {
			f.fail(lastErr)
		}
		return
	}
	if f.failing {
		f.failing = false
		f.h.log.Info("following the change feed works again")
	}
}

// refresh reads a session's grants again and puts them in force.
func (f *follower) refresh(ctx context.Context, cl *mqtt.Client) error {
	sess := f.h.session(cl)
	if sess == nil {
		return nil // forgotten meanwhile
	}
	old := sess.grant.Load()
	if old == nil {
		return nil
	}
	seq := f.last.Load()
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	grants, err := f.reg.ConnectionGrants(ctx, sess.scope, sess.certificateID, sess.clientID)
	if err != nil {
		return err
	}
	f.h.logUnparsable(sess, grants)
	g := newGrant(old.conn, grants, seq)
	sess.grant.Store(g)
	f.h.deps.set(cl, dependenciesOf(sess, g))
	if f.h.session(cl) == nil {
		f.h.deps.remove(cl) // forgotten while being read: leave no index entry
	}
	f.h.log.Debug("mqtt grants read again", "account", sess.scope.AccountID, "client_id", sess.clientID, "policies", len(g.policies))
	return nil
}

// fail logs when following starts failing; sessions keep their grants
// until it works again.
func (f *follower) fail(err error) {
	if !f.failing {
		f.failing = true
		f.h.log.Warn("following the change feed fails; policy changes wait until it works", "err", err)
	}
}
