package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// SQLite copies its write-ahead log back into the database file in a
// checkpoint, by default within the commit that takes the log past 1,000
// pages: that commit's callers wait for a thousand page writes and an extra
// fsync, which at one client is the slowest of every hundred requests (its
// p99). A checkpointer does the copying on a connection of its own instead,
// beside the writer: a passive checkpoint takes no lock a writer or reader
// waits for, and copies only what no reader still needs.
const (
	// checkpointEvery is how many commits pass between checkpoints: about
	// the default 1,000 pages at one client, whose commits write about ten.
	checkpointEvery = 100
	// backstopPages is the log size at which a commit checkpoints after all,
	// should the checkpointer fall far behind.
	backstopPages = 10_000
)

type checkpointer struct {
	db      *sql.DB
	ctx     context.Context
	commits int
	poke    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newCheckpointer(ctx context.Context, db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, ctx: ctx, poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// committed counts a commit; the writer calls it from its one goroutine.
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

func (c *checkpointer) loop() {
	defer close(c.done)
	for {
		select {
		case <-c.poke:
			// A failure (the disk full, say) leaves the log to grow until a
			// later checkpoint, or the backstop, succeeds; the writes that
			// fail meanwhile report it.
			c.db.ExecContext(c.ctx, "PRAGMA wal_checkpoint(PASSIVE)")
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
