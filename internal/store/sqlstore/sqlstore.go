// Package sqlstore implements the store interfaces on database/sql. SQLite is
// the embedded default: WAL, synchronous=FULL, one writer connection whose
// writes commit in groups (writer.go), a checkpointer beside it
// (checkpoint.go), and a pool of reader connections.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/fleetca/fleetca/internal/store"
)

//go:embed migrations
var migrations embed.FS

// Store is a store.Store on a SQL database.
type Store struct {
	d     *dialect
	read  reader
	write *writer
	wdb   *sql.DB
	// ckpt copies SQLite's log into its database file; nil on PostgreSQL.
	ckpt *checkpointer
}

var _ store.Store = (*Store)(nil)

// DefaultWriteTimeout bounds a write transaction unless WithWriteTimeout
// says otherwise.
const DefaultWriteTimeout = 10 * time.Second

// Option configures a Store when it is opened.
type Option func(*options)

type options struct {
	writeTimeout time.Duration
	observe      func(size int, elapsed time.Duration)
	load         func() int
	// checkpoints, on SQLite, is the connection a checkpointer copies the
	// log with.
	checkpoints *sql.DB
}

// WithWriteTimeout bounds each write transaction (a batch of writes): a
// database that does not answer within d fails the batch's writes with an
// error that matches context.DeadlineExceeded, and the writer goes on with
// the next batch, so that a hung database neither hangs its callers nor
// shutdown.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.writeTimeout = d } }

// WithCommitObserver has f told the number of writes in each committed
// batch and how long its commit took (for metrics).
func WithCommitObserver(f func(size int, elapsed time.Duration)) Option {
	return func(o *options) { o.observe = f }
}

// WithLoad gives the writer load, which reports how many requests the
// process is serving: while they are many, writes wait up to a couple of
// milliseconds to share a commit (see gather in writer.go).
func WithLoad(load func() int) Option { return func(o *options) { o.load = load } }

func openOptions(opts []Option) options {
	o := options{writeTimeout: DefaultWriteTimeout}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// OpenSQLite opens (creating if needed) the SQLite database at path and brings
// its schema up to date.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL makes every commit durable before it is acknowledged.
		q.Add("_pragma", "synchronous(FULL)")
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
	}
	// The checkpointer copies the log into the database file; the writer
	// does so itself only past backstopPages (see checkpoint.go).
	wdb, err := sql.Open("sqlite", dsn("_txlock", "immediate", "_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopPages)))
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	d := &dialect{}
	if err := migrate(ctx, wdb, d); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlstore: migrating %s: %w", path, err)
	}
	o := openOptions(opts)
	if o.checkpoints, err = sql.Open("sqlite", dsn()); err != nil {
		wdb.Close()
		return nil, err
	}
	return newStore(ctx, d, wdb, "sqlite", dsn("_pragma", "query_only(1)"), 2*runtime.GOMAXPROCS(0), o)
}

// ownerOnly makes the database file readable by its owner only before
// SQLite opens it: SQLite gives the WAL and shared-memory files the
// database's permissions. Files of an older version are narrowed too.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// newStore opens the reader pool of n connections beside the migrated writer
// connection wdb, and starts the writer (and, on SQLite, the checkpointer).
func newStore(ctx context.Context, d *dialect, wdb *sql.DB, driver, dsn string, n int, o options) (*Store, error) {
	fail := func(err error) (*Store, error) {
		wdb.Close()
		if o.checkpoints != nil {
			o.checkpoints.Close()
		}
		return nil, err
	}
	rdb, err := sql.Open(driver, dsn)
	if err != nil {
		return fail(err)
	}
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		return fail(err)
	}
	// The store outlives the call that opens it: its background work keeps
	// ctx's values, not its deadline.
	life := context.WithoutCancel(ctx)
	s := &Store{d: d, read: reader{rdb, d, newStatements(life, rdb, d)}, wdb: wdb}
	if o.checkpoints != nil {
		s.ckpt = newCheckpointer(life, o.checkpoints)
	}
	s.write = newWriter(life, wdb, d, o, s.ckpt)
	return s, nil
}

// OpenPostgres connects to the PostgreSQL database at url (a postgres:// URL
// or key=value DSN for pgx) and brings its schema up to date. Several fleetca
// replicas may share the database and start together.
func OpenPostgres(ctx context.Context, url string, opts ...Option) (*Store, error) {
	d := &dialect{postgres: true}
	wdb, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	// One connection carries this replica's group-committed writes.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	if err := migrate(ctx, wdb, d); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlstore: migrating PostgreSQL: %w", err)
	}
	return newStore(ctx, d, wdb, "pgx", url, 4*runtime.GOMAXPROCS(0), openOptions(opts))
}

// failureMemory is how long a failed write counts against Health when no
// write has come since to show whether the database has recovered.
const failureMemory = 30 * time.Second

// Health reports why the database cannot be used now, or nil: the last
// write transaction, within failureMemory, failed for want of the database
// (disk full or read-only, no answer in time, connection lost), or a read
// does not answer within ctx.
func (s *Store) Health(ctx context.Context) error {
	if f := s.write.failure.Load(); f != nil && time.Since(f.at) < failureMemory {
		// The text stays the same while the condition lasts, so that it is
		// logged once.
		return fmt.Errorf("the database has refused writes since %s: %w", f.since.UTC().Format(time.RFC3339), f.err)
	}
	var one int
	if err := s.read.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("the database does not answer reads: %w", err)
	}
	return nil
}

// Close waits for the writer to finish and closes the connections.
func (s *Store) Close() error {
	s.write.close()
	var ckpt error
	if s.ckpt != nil {
		ckpt = s.ckpt.close()
	}
	return errors.Join(s.write.stmts.close(), s.read.stmts.close(), ckpt, s.wdb.Close(), s.read.db.Close())
}

// IntegrityCheck runs SQLite's integrity check and returns its complaints.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if s.d.postgres {
		return nil // PostgreSQL checks its pages itself
	}
	rows, err := s.read.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("sqlstore: integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// migrationLock serialises migrations of replicas that start together.
const migrationLock = "fleetca-migrations"

// migrate applies, in order and each in its own transaction, the embedded
// migrations of the dialect that the database has not seen yet. Each step
// takes the migration lock first, so replicas starting together migrate once.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	return migrateFrom(ctx, db, d, migrations)
}

// migrateFrom applies the migrations of fsys, which holds the migrations
// directory (tests give it part of migrations, to make an older schema).
func migrateFrom(ctx context.Context, db *sql.DB, d *dialect, fsys fs.FS) error {
	name := "sqlite"
	if d.postgres {
		name = "postgres"
	}
	if err := inMigrationTx(ctx, db, d, func(tx txn) error {
		_, err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY)`)
		return err
	}); err != nil {
		return err
	}
	dir := "migrations/" + name
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if err := refuseNewerSchema(ctx, db, entries); err != nil {
		return err
	}
	for _, e := range entries {
		version, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its version number", e.Name())
		}
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return err
		}
		err = inMigrationTx(ctx, db, d, func(tx txn) error {
			var seen int
			if err := tx.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&seen); err != nil {
				return err
			}
			if seen > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO schema_migrations (version) VALUES (?)`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ErrNewerSchema is a database migrated by a newer fleetca than this one.
var ErrNewerSchema = errors.New("sqlstore: the database was migrated by a newer fleetca")

// refuseNewerSchema refuses a database that has migrations this version
// does not know: running on a schema it does not understand, an older
// fleetca could ignore what the newer one relies on. There are no
// downgrades; backups are the way back.
func refuseNewerSchema(ctx context.Context, db *sql.DB, known []fs.DirEntry) error {
	var newest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return err
	}
	ours := 0
	if len(known) > 0 {
		ours, _ = strconv.Atoi(strings.SplitN(known[len(known)-1].Name(), "_", 2)[0])
	}
	if newest.Valid && int(newest.Int64) > ours {
		return fmt.Errorf("%w (schema version %d; this one knows up to %d): run that version, or restore a backup taken before the upgrade", ErrNewerSchema, newest.Int64, ours)
	}
	return nil
}

func inMigrationTx(ctx context.Context, db *sql.DB, d *dialect, f func(txn) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t := txn{ctx: ctx, tx: tx, d: d}
	if err := t.lock(migrationLock); err != nil {
		return err
	}
	if err := f(t); err != nil {
		return err
	}
	return tx.Commit()
}
