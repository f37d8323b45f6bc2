package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// SnapshotSQLite writes a consistent copy of the SQLite database at path to
// out, which must not exist, while servers may be writing to it: VACUUM
// INTO reads the database in one read transaction, which WAL mode lets run
// beside the writer, and writes a compact database that needs no WAL. The
// copy is readable by its owner only.
func SnapshotSQLite(ctx context.Context, path, out string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlstore: %s exists", out)
	}
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		return err
	}
	defer db.Close()
	// Created first, empty, with its mode: SQLite would make it 0644.
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, out); err != nil {
		os.Remove(out)
		return fmt.Errorf("sqlstore: snapshot of %s: %w", path, err)
	}
	return nil
}
