package mqttapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// The change feed is how a policy change, an attachment or a detachment
// reaches live connections on every replica within seconds, without a poll
// of every connected device: each replica reads the feed by number (on
// every tick of Options.ChangePoll, and at once after a change of its own)
// and applies each change to the sessions it affects, found through the
// dependents index. A policy's new default version is read once and put in
// every affected grant; an attachment or a thing's change reads again the
// grants of the few sessions of that certificate or thing. The work is
// O(changes + affected sessions), whatever the size of the fleet.
const (
	// changePage is how many changes one read takes.
	changePage = 1000
	// gapWait is how long a missing number is waited for. On PostgreSQL
	// numbers are taken at insertion, so a transaction that commits after
	// one with a higher number leaves a gap that fills when it commits
	// (within the store's write timeout, at most a minute); a rolled-back
	// one leaves a gap that never fills.
	gapWait = 2 * time.Minute
	// maxGaps bounds the numbers waited for; beyond it every session's
	// grant is read again rather than a change risked.
	maxGaps = 10_000
	// startGaps is how many of the numbers given before this replica
	// started it reads again, to find those of transactions still in
	// flight.
	startGaps = 1_000
	// refreshTimeout bounds the reading of one session's grants, and
	// refreshers how many are read at once.
	refreshTimeout = time.Second
	refreshers     = 8
	// feedReadTimeout bounds one read of the feed: evictions, claim
	// expiries and everything else the follower does wait on it.
	feedReadTimeout = 10 * time.Second
	// cutOff is how long the feed may go unread before this replica
	// assumes it missed changes the feed no longer keeps: half their
	// retention, the other half a margin for clocks and slow passes.
	cutOff = registry.ChangeRetention / 2
)

// follower reads the change feed. Only its goroutine runs pass; position
// and refreshLater are safe from any goroutine.
type follower struct {
	h   *hook
	reg Registry
	// applied counts the changes applied (gap fills included), so that a
	// grant read before a change that was applied before its session was
	// indexed is known stale (track).
	applied atomic.Int64
	// last is the highest number read; every number below it was read or
	// is in gaps. known is whether last has been read from the store.
	last  int64
	known bool
	gaps  map[int64]time.Time
	// lastRead is when the feed was last read; a replica that could not
	// read it for about as long as the feed keeps changes may have missed
	// some, and checks every session again.
	lastRead time.Time
	// pending holds sessions whose grants are to be read again: affected
	// by a change, requested by track, or failed on the last try.
	mu      sync.Mutex
	pending map[*mqtt.Client]struct{}
	// recheck holds sessions whose certificate or CA changed status, to be
	// checked against the admission rules again (and evicted).
	recheck map[*mqtt.Client]struct{}
	wake    chan struct{}
	failing bool
}

func newFollower(h *hook, reg Registry) *follower {
	return &follower{h: h, reg: reg, gaps: map[int64]time.Time{}, pending: map[*mqtt.Client]struct{}{},
		recheck: map[*mqtt.Client]struct{}{}, wake: make(chan struct{}, 1)}
}

// position is how many changes have been applied; a grant records it when
// it is read.
func (f *follower) position() int64 {
	if f == nil {
		return 0
	}
	return f.applied.Load()
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

// recheckLater has cl's admission checked again at the next pass, which
// it brings forward.
func (f *follower) recheckLater(cl *mqtt.Client) {
	f.mu.Lock()
	f.recheck[cl] = struct{}{}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// refreshAll has every session checked and its grants read again.
func (f *follower) refreshAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h.sessions.Range(func(k, v any) bool {
		cl := k.(*mqtt.Client)
		f.recheck[cl] = struct{}{}
		if v.(*session).grant.Load() != nil {
			f.pending[cl] = struct{}{}
		}
		return true
	})
}

// track indexes a session by what it depends on. A change applied after
// the session's admission and grant were read but before the session was
// indexed would have missed it, so such a session is checked and read
// again.
func (h *hook) track(cl *mqtt.Client, sess *session) {
	g := sess.grant.Load()
	h.deps.set(cl, dependenciesOf(sess, g))
	if h.session(cl) == nil {
		h.deps.remove(cl) // forgotten meanwhile: leave no index entry
		return
	}
	if h.feed.position() > sess.seen {
		h.feed.recheckLater(cl)
		if g != nil {
			h.feed.refreshLater(cl)
		}
	}
}

// pass reads what the feed has beyond the last pass and applies it.
func (f *follower) pass(ctx context.Context) {
	if !f.known && !f.start(ctx) {
		return
	}
	low := f.last
	for n := range f.gaps {
		low = min(low, n-1)
	}
	now := time.Now()
	read := true
	var policies policyReads
	for {
		readCtx, cancel := context.WithTimeout(ctx, feedReadTimeout)
		changes, err := f.reg.Changes(readCtx, low, changePage)
		cancel()
		if err != nil {
			f.fail(err)
			read = false
			break
		}
		for _, c := range changes {
			if c.Seq <= f.last {
				if _, waited := f.gaps[c.Seq]; !waited {
					continue // applied before
				}
				delete(f.gaps, c.Seq)
			} else {
				for n := f.last + 1; n < c.Seq; n++ {
					if len(f.gaps) >= maxGaps {
						f.overflow()
						break
					}
					f.gaps[n] = now
				}
				f.last = c.Seq
			}
			f.apply(ctx, c, &policies)
		}
		if len(changes) < changePage {
			break
		}
		low = changes[len(changes)-1].Seq
	}
	if read {
		// By the wall clock, as the feed is pruned by it: the monotonic
		// clock stands still while the host is suspended.
		if !f.lastRead.IsZero() && now.Round(0).Sub(f.lastRead.Round(0)) > cutOff {
			f.h.log.Warn("the change feed was out of reach for longer than it keeps changes; checking every connected device again",
				"since", f.lastRead.UTC().Format(time.RFC3339))
			f.refreshAll()
		}
		f.lastRead = now
		// Only after a read: a database out of reach is no reason to
		// give up on the numbers it holds.
		for n, since := range f.gaps {
			if now.Sub(since) > gapWait {
				delete(f.gaps, n)
			}
		}
	}
	f.recheckPending(ctx)
	f.refreshPending(ctx)
}

// recheckPending checks the sessions whose certificate or CA changed
// status against the admission rules again, and evicts those that would no
// longer be admitted. After the first check that fails none more are
// made: those not checked wait for the next pass, so that a failing
// database does not hold a pass up for a second a session.
func (f *follower) recheckPending(ctx context.Context) {
	f.mu.Lock()
	batch := f.recheck
	f.recheck = map[*mqtt.Client]struct{}{}
	f.mu.Unlock()
	var pass registry.SweepPass
	failed := false
	for cl := range batch {
		if failed {
			f.mu.Lock()
			f.recheck[cl] = struct{}{}
			f.mu.Unlock()
			continue
		}
		sess := f.h.session(cl)
		if sess == nil {
			continue
		}
		itemCtx, cancel := context.WithTimeout(ctx, refreshTimeout)
		admitted, err := f.reg.StillAdmitted(itemCtx, &pass, sess.scope, sess.certificateID)
		cancel()
		if err != nil {
			f.fail(err)
			// Again at the next pass, not at once: the database is failing.
			f.mu.Lock()
			f.recheck[cl] = struct{}{}
			f.mu.Unlock()
			failed = true
			continue
		}
		if !admitted {
			f.h.evict(cl, sess)
		}
	}
}

// start reads where the feed stands and begins startGaps numbers before
// the highest given: the first pass reads those changes again (harmless:
// few sessions exist yet) and, doing so, finds the numbers missing among
// them, those of transactions still in flight, to wait for as gaps.
// Sessions admitted before the feed's position was known are read again.
func (f *follower) start(ctx context.Context) bool {
	readCtx, cancel := context.WithTimeout(ctx, feedReadTimeout)
	given, err := f.reg.LastChange(readCtx)
	cancel()
	if err != nil {
		f.fail(err)
		return false
	}
	f.last, f.known = max(0, given-startGaps), true
	f.lastRead = time.Now()
	f.applied.Add(1)
	f.refreshAll()
	return true
}

// overflow gives up on waiting for numbers one at a time: every session's
// grant is read again, which no missed change survives.
func (f *follower) overflow() {
	f.h.log.Warn("the change feed has too many missing numbers to wait for; reading every connected device's policies again", "missing", len(f.gaps))
	f.gaps = map[int64]time.Time{}
	f.refreshAll()
}

// policyReads remembers the policies one pass has read.
type policyReads map[policyKey]*policy.Policy

type policyKey struct {
	scope iot.Scope
	name  string
}

// apply applies one change to the sessions it affects: a certificate's or
// CA's new status has them checked against the admission rules again; a
// policy's new default version goes into their grants at once; anything
// else has their grants read again.
func (f *follower) apply(ctx context.Context, c registry.Change, policies *policyReads) {
	f.applied.Add(1)
	affected := f.h.deps.of(dependency{scope: c.Scope, kind: c.Kind, name: c.Name})
	if len(affected) == 0 {
		return
	}
	if c.Kind == registry.ChangeCertificate || c.Kind == registry.ChangeCA {
		f.mu.Lock()
		for _, cl := range affected {
			f.recheck[cl] = struct{}{}
		}
		f.mu.Unlock()
		return
	}
	if c.Kind == registry.ChangePolicy {
		if p, ok := f.readPolicy(ctx, c.Scope, c.Name, policies); ok {
			for _, cl := range affected {
				if sess := f.h.session(cl); sess != nil {
					if g := sess.grant.Load(); g != nil {
						sess.grant.Store(g.with(c.Name, p, f.applied.Load()))
					}
				}
			}
			return
		}
	}
	f.mu.Lock()
	for _, cl := range affected {
		f.pending[cl] = struct{}{}
	}
	f.mu.Unlock()
}

// readPolicy reads a policy's default version once per pass; ok is false
// when the read failed.
func (f *follower) readPolicy(ctx context.Context, scope iot.Scope, name string, policies *policyReads) (*policy.Policy, bool) {
	k := policyKey{scope, name}
	if p, ok := (*policies)[k]; ok {
		return p, true
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	p, err := f.reg.CompiledPolicy(ctx, scope, name)
	if err != nil {
		f.fail(err)
		return nil, false
	}
	if *policies == nil {
		*policies = policyReads{}
	}
	(*policies)[k] = p
	return p, true
}

// refreshPending reads again the grants of the pending sessions, a few at
// once. After the first failure no more are started; those not read stay
// pending for the next pass, which reads the feed first.
func (f *follower) refreshPending(ctx context.Context) {
	f.mu.Lock()
	batch := f.pending
	f.pending = map[*mqtt.Client]struct{}{}
	f.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  []*mqtt.Client
		lastErr error
		stop    atomic.Bool
	)
	slots := make(chan struct{}, refreshers)
	for cl := range batch {
		if stop.Load() || ctx.Err() != nil {
			mu.Lock()
			failed = append(failed, cl)
			mu.Unlock()
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := f.refresh(ctx, cl); err != nil {
				stop.Store(true)
				mu.Lock()
				failed, lastErr = append(failed, cl), err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
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
	seen := f.applied.Load()
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	grants, err := f.reg.ConnectionGrants(ctx, sess.scope, sess.certificateID, sess.clientID)
	if err != nil {
		return err
	}
	f.h.logUnparsable(sess, grants)
	g := newGrant(old.conn, grants, seen)
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
