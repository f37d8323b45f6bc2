package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between SQLite and PostgreSQL. Queries are written
// once, with ? placeholders.
type dialect struct {
	postgres bool
	rebinds  sync.Map // query -> query with $n placeholders
}

// rebind turns ? placeholders into $1, $2, ... for PostgreSQL. The queries
// have no ? inside literals.
func (d *dialect) rebind(q string) string {
	if !d.postgres {
		return q
	}
	if r, ok := d.rebinds.Load(q); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	d.rebinds.Store(q, b.String())
	return b.String()
}

// forUpdate locks the rows a read-modify-write reads. SQLite needs no such
// clause: its one writer serialises every write transaction.
func (d *dialect) forUpdate() string {
	if d.postgres {
		return " FOR UPDATE"
	}
	return ""
}

// txn is a write transaction in the store's dialect. Queries it has seen
// before run as statements prepared on the writer's connection.
// Every statement runs under the transaction's deadline (the writer's
// timeout): database/sql can roll back a transaction whose context ended
// only once its running statement returns, and a driver returns early only
// for a statement that has the context.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	d     *dialect
	stmts *statements
}

func (t txn) Exec(q string, args ...any) (sql.Result, error) {
	q = t.d.rebind(q)
	if st := t.stmts.lookup(q); st != nil {
		return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, q, args...)
}
func (t txn) Query(q string, args ...any) (*sql.Rows, error) {
	q = t.d.rebind(q)
	if st := t.stmts.lookup(q); st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, q, args...)
}
func (t txn) QueryRow(q string, args ...any) *sql.Row {
	return t.QueryRowContext(t.ctx, q, args...)
}
func (t txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	q = t.d.rebind(q)
	if st := t.stmts.lookup(q); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// lock serialises, until the transaction ends, every transaction that locks
// the same key, in every process that shares the database. Invariants that
// span rows (at most ten CAs with one subject, one provider per scope, one
// client token) are checked under such a lock. SQLite transactions are
// serialised already.
func (t txn) lock(key string) error {
	if !t.d.postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	_, err := t.tx.ExecContext(t.ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64()))
	return err
}

// reader runs queries outside write transactions, as prepared statements
// once it has seen them.
type reader struct {
	db    *sql.DB
	d     *dialect
	stmts *statements
}

func (r reader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = r.d.rebind(q)
	if st := r.stmts.prepared(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, q, args...)
}

func (r reader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	q = r.d.rebind(q)
	if st := r.stmts.prepared(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, q, args...)
}

// isUniqueViolation reports whether err is a primary-key or unique constraint
// failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKeyViolation reports whether err is a foreign-key failure.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// isUnavailable reports whether err is a failure of the database rather
// than of the write: SQLite's disk full, read-only or I/O error, PostgreSQL's
// insufficient resources (class 53, disk full among them), read-only
// transactions, shutdown or connection failures (class 08, 57P), a broken
// connection, or the writer's own deadline.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "25006"
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err)
}

// isRetryable reports whether a transaction failed only because it raced
// another (PostgreSQL deadlock or serialisation failure) and may be run again.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
