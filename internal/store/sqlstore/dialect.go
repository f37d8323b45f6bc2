package sqlstore

import (
	"context"
	"database/sql"
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

// txn is a write transaction in the store's dialect.
type txn struct {
	tx *sql.Tx
	d  *dialect
}

func (t txn) Exec(q string, args ...any) (sql.Result, error) {
	return t.tx.Exec(t.d.rebind(q), args...)
}
func (t txn) Query(q string, args ...any) (*sql.Rows, error) {
	return t.tx.Query(t.d.rebind(q), args...)
}
func (t txn) QueryRow(q string, args ...any) *sql.Row { return t.tx.QueryRow(t.d.rebind(q), args...) }
func (t txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
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
	_, err := t.tx.Exec(`SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64()))
	return err
}

// reader runs queries outside write transactions.
type reader struct {
	db *sql.DB
	d  *dialect
}

func (r reader) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return r.db.QueryContext(ctx, r.d.rebind(q), args...)
}

func (r reader) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return r.db.QueryRowContext(ctx, r.d.rebind(q), args...)
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

// isRetryable reports whether a transaction failed only because it raced
// another (PostgreSQL deadlock or serialisation failure) and may be run again.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
