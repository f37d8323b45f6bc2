package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// SQLite copies its write-ahead log back into the database file in a
// checkpoint, by default within the commit that takes the log past 1,000
// pages: that commit's callers wait for a thousand page writes and an extra
// fsync, which at one client is the slowest of every hundred requests (its
// p99). A checkpointer does the bulk of the copying on a connection of its
// own instead, beside the writer: a passive checkpoint waits for no writer
// and copies only what no reader still needs.
//
// A checkpoint beside the writer cannot copy the commits made while it runs,
// and SQLite starts the log over only once a write transaction begins with
// every page of it copied. So the writer finishes each run: between two
// batches, with its connection free, it checkpoints the pages committed
// during the run, a few commits' worth, and its next transaction starts the
// log over (unless a reader still holds an older snapshot; a later run then
// does). Without that the log would grow under steady writes to the
// backstop, where every commit checkpoints again.
const (
	// checkpointEvery is how many commits pass between checkpoints: about
	// the default 1,000 pages at one client, whose commits write about ten.
	checkpointEvery = 100
	// backstopPages is the log size at which a commit checkpoints after all,
	// should the checkpointer's runs keep failing (the disk full, say).
	backstopPages = 10_000
)

type checkpointer struct {
	db  *sql.DB
	ctx context.Context
	// commits is counted by the writer's leaders, one at a time.
	commits int
	// ran is set when a run has ended, for the writer to finish it.
	ran  atomic.Bool
	poke chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newCheckpointer(ctx context.Context, db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, ctx: ctx, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// committed counts a commit.
func (c *checkpointer) committed() {
	c.commits++
	if c.commits%checkpointEvery != 0 {
		return
	}
	select {
	case c.poke <- struct{}{}:
	default: // one is under way, and the next poke comes soon
	}
}

// finish checkpoints, on the writer's connection db and between its
// transactions, what the last run could not copy.
func (c *checkpointer) finish(ctx context.Context, db *sql.DB) {
	if c.ran.Swap(false) {
		// A failure is left to the next run, as in loop.
		db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.poke:
			// A failure (the disk full, say) leaves the log to grow until a
			// later checkpoint, or the backstop, succeeds; the writes that
			// fail meanwhile report it.
			if _, err := c.db.ExecContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
				c.ran.Store(true)
			}
		case <-c.stop:
			return
		}
	}
}

func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
