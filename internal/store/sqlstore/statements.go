package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// statements caches prepared statements by query text. SQLite parses the SQL
// of every Exec or Query given as a string again; parsing the certificate
// INSERT alone was 3% of a signed CSR's server CPU. A prepared statement is
// parsed once per connection. pgx keeps a per-connection statement cache of
// its own, so PostgreSQL stores use none: a nil *statements caches nothing.
type statements struct {
	// ctx is the store's lifetime context.
	ctx context.Context
	db  *sql.DB
	mu  sync.Mutex
	m   map[string]*sql.Stmt
	// missed holds queries run while the writer's only connection was taken
	// by a transaction; preparePending prepares them once it is free.
	missed map[string]struct{}
}

// maxStatements bounds the cache. The queries are constants and a few list
// variants, far fewer than this; a query beyond the bound runs unprepared.
const maxStatements = 128

func newStatements(ctx context.Context, db *sql.DB, d *dialect) *statements {
	if d.postgres {
		return nil
	}
	return &statements{ctx: ctx, db: db, m: make(map[string]*sql.Stmt), missed: make(map[string]struct{})}
}

// lookup returns the statement prepared for q, or nil after noting q for
// preparePending.
func (s *statements) lookup(q string) *sql.Stmt {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[q]
	if !ok && len(s.m)+len(s.missed) < maxStatements {
		s.missed[q] = struct{}{}
	}
	return st
}

// preparePending prepares the queries lookup missed. It needs a free
// connection, so the writer calls it between transactions. It does not hold
// the lock while preparing: a reader waiting for a connection must not stop
// the readers that hold one. A query that fails to prepare is not cached;
// running it unprepared reports its error.
func (s *statements) preparePending() {
	if s == nil {
		return
	}
	s.mu.Lock()
	queries := make([]string, 0, len(s.missed))
	for q := range s.missed {
		queries = append(queries, q)
		delete(s.missed, q)
	}
	s.mu.Unlock()
	for _, q := range queries {
		ctx, cancel := context.WithTimeout(s.ctx, prepareTimeout)
		st, err := s.db.PrepareContext(ctx, q)
		cancel()
		if err != nil {
			continue
		}
		s.mu.Lock()
		if _, ok := s.m[q]; ok || len(s.m) >= maxStatements {
			st.Close() // another reader prepared it first, or the cache is full
		} else {
			s.m[q] = st
		}
		s.mu.Unlock()
	}
}

// prepared returns the statement for q, preparing it now if it is new. For
// pools with connections to spare (the readers), where preparing cannot wait
// on a connection its caller holds.
func (s *statements) prepared(q string) *sql.Stmt {
	if st := s.lookup(q); st != nil || s == nil {
		return st
	}
	s.preparePending()
	return s.lookup(q)
}

func (s *statements) close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for q, st := range s.m {
		errs = append(errs, st.Close())
		delete(s.m, q)
	}
	return errors.Join(errs...)
}

// prepareTimeout bounds preparing one statement, so that a database that
// stops answering cannot hold the writer between transactions.
const prepareTimeout = 5 * time.Second
