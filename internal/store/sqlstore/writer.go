package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// maxBatch bounds how many writes share one transaction, so one commit never
// holds back its callers for long.
const maxBatch = 256

// writer serialises every write through one connection and commits them in
// groups: the writes that arrive while a commit is in progress wait for it and
// then share the next transaction, and with it one fsync. Each write runs
// inside a savepoint, so one that fails leaves the others of its batch intact.
//
// No goroutine of its own runs the transactions: the caller that finds the
// writer idle leads, committing the batch it heads on its own goroutine, and
// hands the lead to the oldest write still waiting when it is done. A lone
// client's write thus costs no wake-up of another goroutine and none back
// (futex calls fell from 9 to 6 a request), and under load the lead passes
// once a batch, not twice a write.
type writer struct {
	// ctx is the store's lifetime context, under which transactions run.
	ctx context.Context
	db  *sql.DB
	// timeout bounds each transaction.
	timeout time.Duration
	// failure is why the last transaction failed when the database itself
	// failed it (isUnavailable), and when; nil once one commits again.
	failure atomic.Pointer[writeFailure]
	d       *dialect
	stmts   *statements
	// limit is how many writes may share a transaction: maxBatch, or 1 to
	// measure one transaction per write.
	limit int
	// observe, when set, is told the size and duration of each committed batch.
	observe func(size int, elapsed time.Duration)
	// ckpt, on SQLite, copies the log into the database file beside the
	// writer; the leader finishes each of its runs (see checkpoint.go).
	ckpt *checkpointer
	// load, when set, reports how many requests the process is serving; see
	// gather.
	load func() int

	mu sync.Mutex
	// queue holds the writes no batch has taken yet, oldest first.
	queue []*writeOp
	// leading is whether a caller is running batches; the queue is empty
	// whenever it is not.
	leading bool
	closed  bool
	// arrived wakes a leader gathering writes (see gather).
	arrived chan struct{}
	// idle is signalled when the last leader stops.
	idle *sync.Cond
	// batch is the leader's, reused from batch to batch.
	batch []*writeOp
}

// writeFailure is a transaction the database failed: the last one's error
// and time, and when the run of failures it belongs to began.
type writeFailure struct {
	err       error
	at, since time.Time
}

// callerGone is a write not run because its caller's context had ended: it
// says nothing of the database.
type callerGone struct{ err error }

func (e callerGone) Error() string { return e.err.Error() }
func (e callerGone) Unwrap() error { return e.err }

// Under load the leader waits a little before committing so that more writes
// share the commit. With a fast disk a commit takes about a millisecond, and
// the writes that arrive meanwhile are only three or four even at 32 clients;
// each commit's fsync, WAL frames and checkpoint share are then paid by few
// writes (PostgreSQL's commit_delay answers the same problem). While at least
// gatherLoad requests are being served the CPU is the bottleneck, so waiting
// idles nothing: the wait ends at gatherTarget writes, after gatherWait, or
// when no write has arrived for gatherGap. Fewer requests than gatherLoad
// never wait, so a lone client's latency is untouched.
const (
	gatherLoad   = 16
	gatherTarget = 16
	gatherWait   = 2 * time.Millisecond
	gatherGap    = 500 * time.Microsecond
)

type writeOp struct {
	ctx    context.Context
	fn     func(txn) error
	result chan error
	// lead is signalled when the write is handed the lead; handed records
	// it, under writer.mu, so that a write handed the lead does not also
	// withdraw.
	lead   chan struct{}
	handed bool
	// panicked is what fn panicked with, if it did; do panics with it on
	// the caller's goroutine, not the leader's.
	panicked any
}

// call runs the write in t, turning a panic into the write's error: the
// leader's goroutine is not the caller's, so the panic is kept for do to
// raise where it belongs.
func (op *writeOp) call(t txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			op.panicked = p
			err = fmt.Errorf("sqlstore: the write panicked: %v", p)
		}
	}()
	return op.fn(t)
}

// outcome is the write's result, or its panic raised again.
func (op *writeOp) outcome(err error) error {
	if op.panicked != nil {
		panic(op.panicked)
	}
	return err
}

// newWriter returns the group-committing writer over db's one connection.
// One per process also on PostgreSQL: batches of several writers that write
// the same rows in different orders deadlock, and PostgreSQL takes a second
// (deadlock_timeout) to break each deadlock.
func newWriter(ctx context.Context, db *sql.DB, d *dialect, o options, ckpt *checkpointer) *writer {
	w := &writer{
		ctx:     ctx,
		db:      db,
		timeout: o.writeTimeout,
		observe: o.observe,
		ckpt:    ckpt,
		load:    o.load,
		d:       d,
		stmts:   newStatements(ctx, db, d),
		limit:   maxBatch,
		arrived: make(chan struct{}, 1),
		batch:   make([]*writeOp, 0, maxBatch),
	}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// do runs fn in a write transaction and returns once that transaction is
// durably committed (or has failed). fn must use only the transaction it is
// given and must not block on anything but the database.
func (w *writer) do(ctx context.Context, fn func(txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, result: make(chan error, 1), lead: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return store.ErrClosed
	}
	w.queue = append(w.queue, op)
	if !w.leading {
		w.leading = true
		w.mu.Unlock()
		w.leadBatch()
		return op.outcome(<-op.result)
	}
	w.mu.Unlock()
	select {
	case w.arrived <- struct{}{}:
	default:
	}
	if answered, err := w.await(op, ctx.Done()); answered {
		return err
	}
	// A write no batch has taken yet withdraws; once taken it may commit,
	// so wait for the outcome even though ctx has ended: answering
	// "cancelled" for a committed write would be a lie.
	w.mu.Lock()
	if !op.handed {
		if i := slices.Index(w.queue, op); i >= 0 {
			w.queue = slices.Delete(w.queue, i, i+1)
			w.mu.Unlock()
			return ctx.Err()
		}
	}
	w.mu.Unlock()
	_, err := w.await(op, nil)
	return err
}

// await waits for op's outcome, leading a batch if op is handed the lead,
// until giveUp closes (nil: never); answered is false if it did.
func (w *writer) await(op *writeOp, giveUp <-chan struct{}) (answered bool, err error) {
	select {
	case err := <-op.result:
		return true, op.outcome(err)
	case <-op.lead:
		w.leadBatch()
		return true, op.outcome(<-op.result)
	case <-giveUp:
		return false, nil
	}
}

// leadBatch commits one batch as the leader, beginning with the caller's
// write (the oldest waiting), and hands the lead on.
func (w *writer) leadBatch() {
	batch := w.batch[:0]
	defer func() {
		if p := recover(); p != nil {
			// Writes' own panics are theirs (writeOp.call); one here is
			// the store's, and fails the batch. The lead still passes on,
			// so that it does not stop every later write.
			for _, op := range batch {
				answer(op, fmt.Errorf("sqlstore: committing this batch panicked: %v", p))
			}
			clear(batch)
			w.handOn()
			panic(p)
		}
		w.handOn()
	}()
	w.mu.Lock()
	n := min(len(w.queue), w.limit)
	batch = append(batch, w.queue[:n]...)
	w.queue = slices.Delete(w.queue, 0, n)
	w.mu.Unlock()
	if w.load != nil && len(batch) < min(gatherTarget, w.limit) && w.load() >= gatherLoad {
		batch = w.gather(batch)
	}
	w.commit(batch)
	// The connection is free between transactions: prepare the queries
	// this batch ran for the first time, and finish a checkpoint.
	w.stmts.preparePending()
	if w.ckpt != nil {
		w.ckpt.finish(w.ctx, w.db)
	}
	clear(batch)
	w.batch = batch[:0]
}

// handOn gives the lead to the oldest write waiting, or gives it up.
func (w *writer) handOn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		w.leading = false
		w.idle.Broadcast()
		return
	}
	next := w.queue[0]
	next.handed = true
	next.lead <- struct{}{}
}

// answer gives op its outcome unless it has one.
func answer(op *writeOp, err error) {
	select {
	case op.result <- err:
	default:
	}
}

// close refuses writes from now on, fails those waiting, and returns once
// the batch being committed is done.
func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	// Writes no batch has taken are failed, except one already handed the
	// lead: it commits its own batch (alone now), as nobody else would take
	// the lead from it.
	for _, op := range w.queue {
		if !op.handed {
			answer(op, store.ErrClosed)
		}
	}
	w.queue = slices.DeleteFunc(w.queue, func(op *writeOp) bool { return !op.handed })
	for w.leading {
		w.idle.Wait()
	}
}

// gather adds to batch the writes that arrive within gatherWait, stopping at
// gatherTarget writes or when none has come for gatherGap.
func (w *writer) gather(batch []*writeOp) []*writeOp {
	deadline := time.Now().Add(gatherWait)
	timer := time.NewTimer(gatherWait)
	defer timer.Stop()
	for len(batch) < min(gatherTarget, w.limit) {
		w.mu.Lock()
		n := min(len(w.queue), min(gatherTarget, w.limit)-len(batch))
		batch = append(batch, w.queue[:n]...)
		w.queue = slices.Delete(w.queue, 0, n)
		w.mu.Unlock()
		if n > 0 {
			continue
		}
		wait := min(time.Until(deadline), gatherGap)
		if wait <= 0 {
			break
		}
		timer.Reset(wait)
		select {
		case <-w.arrived:
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// maxAttempts bounds how often a write that lost a race to another replica
// (a PostgreSQL deadlock or serialisation failure) is run again.
const maxAttempts = 3

// commit runs a batch and answers each write. A transaction that failed as a
// whole because of a race is run again; a single write that lost a race in a
// batch that committed is run again on its own, never the committed ones.
func (w *writer) commit(batch []*writeOp) {
	pending := batch
	for attempt := 1; ; attempt++ {
		results := make([]error, len(pending))
		start := time.Now()
		err := w.run(pending, results)
		last := attempt == maxAttempts
		if err != nil && isRetryable(err) && !last {
			// The batch runs again, but not a write that panicked: its
			// caller has its panic to raise, and its code is not to be
			// trusted twice.
			pending = slices.DeleteFunc(pending, func(op *writeOp) bool {
				if op.panicked != nil {
					answer(op, errors.New("sqlstore: the write panicked"))
					return true
				}
				return false
			})
			if len(pending) == 0 {
				return
			}
			continue
		}
		if err == nil && w.observe != nil {
			w.observe(len(pending), time.Since(start))
		}
		if err == nil && w.ckpt != nil {
			w.ckpt.committed()
		}
		var gone callerGone
		switch {
		case err == nil:
			w.failure.Store(nil)
		case isUnavailable(err) && !errors.As(err, &gone):
			f := &writeFailure{err: err, at: time.Now()}
			f.since = f.at
			if prev := w.failure.Load(); prev != nil {
				f.since = prev.since
			}
			w.failure.Store(f)
		}
		var again []*writeOp
		for i, op := range pending {
			r := results[i]
			if r == nil {
				r = err
			}
			if err == nil && isRetryable(r) && !last {
				again = append(again, op)
				continue
			}
			if r != nil && isUnavailable(r) && !errors.As(r, &gone) {
				r = fmt.Errorf("%w: %w", store.ErrUnavailable, r)
			}
			op.result <- r
		}
		if len(again) == 0 {
			return
		}
		pending = again
	}
}

// run executes the batch in one transaction, recording each write's own error
// in results, and returns the error of the transaction as a whole.
func (w *writer) run(batch []*writeOp, results []error) error {
	// Only PostgreSQL's statements wait on a network that can stop
	// answering. SQLite's cannot be interrupted mid-I/O anyway, and with a
	// cancellable context the SQLite driver starts a goroutine per
	// statement and database/sql one per transaction, on the hot path of
	// every write.
	ctx := w.ctx
	if w.d.postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		// A write's own panic is its error (writeOp.call); one from the
		// store's code must still not leave the one connection inside the
		// transaction, which on SQLite nothing else would end.
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if len(batch) == 1 {
		// No savepoint needed: the write's failure is the transaction's.
		op := batch[0]
		if err := op.ctx.Err(); err != nil {
			tx.Rollback()
			return callerGone{err}
		}
		if err := op.call(txn{ctx, tx, w.d, w.stmts}); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	t := txn{ctx, tx, w.d, w.stmts}
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			results[i] = callerGone{err}
			continue
		}
		if _, err := t.Exec("SAVEPOINT op"); err != nil {
			tx.Rollback()
			return err
		}
		if err := op.call(t); err != nil {
			results[i] = err
			if _, err := t.Exec("ROLLBACK TO op"); err != nil {
				tx.Rollback()
				return err
			}
		}
		if _, err := t.Exec("RELEASE op"); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
