package server

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// A backup is a gzipped tar of what a SQLite data directory holds: the
// database (a consistent snapshot), the CA directory (certificates and keys,
// sealed if they are sealed) and the credentials file. Backup writes it
// beside a running server; Restore puts it into a data directory no server
// is using.

const (
	backupDatabase    = "fleetca.db"
	backupCredentials = "credentials"
	backupCADir       = "ca"
	// maxBackupEntry bounds one file restored: a database of a very large
	// fleet fits, a hostile archive does not fill the disk unnoticed.
	maxBackupEntry = 64 << 30
)

// BackupSummary says what a backup holds.
type BackupSummary struct {
	Files         []string
	DatabaseBytes int64
}

// Backup writes a backup of cfg's SQLite data directory to out, which must
// not exist, readable by its owner only (it holds the CA keys). It may run
// while a server serves the directory.
func Backup(ctx context.Context, cfg config.Config, out string) (BackupSummary, error) {
	var sum BackupSummary
	if cfg.Database != "" {
		return sum, errors.New("with PostgreSQL the data and the sealed CA live in the database: back it up with pg_dump (README: Backup and restore)")
	}
	if _, err := os.Stat(filepath.Join(cfg.CADir(), "root.pem")); err != nil {
		return sum, fmt.Errorf("no fleetca CA in %s: %w", absolute(cfg.CADir()), err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".fleetca-backup-")
	if err != nil {
		return sum, err
	}
	defer os.RemoveAll(tmp)
	snapshot := filepath.Join(tmp, backupDatabase)
	if err := sqlstore.SnapshotSQLite(ctx, cfg.DatabasePath(), snapshot); err != nil {
		return sum, err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return sum, err
	}
	err = writeBackup(f, cfg, snapshot, &sum)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return sum, err
	}
	return sum, nil
}

func writeBackup(w io.Writer, cfg config.Config, snapshot string, sum *BackupSummary) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	add := func(name, file string) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f); err != nil {
			return err
		}
		sum.Files = append(sum.Files, name)
		if name == backupDatabase {
			sum.DatabaseBytes = fi.Size()
		}
		return nil
	}
	if err := add(backupDatabase, snapshot); err != nil {
		return err
	}
	entries, err := os.ReadDir(cfg.CADir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		// Dot files are no CA's: temporary files a crash left behind.
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			if err := add(backupCADir+"/"+e.Name(), filepath.Join(cfg.CADir(), e.Name())); err != nil {
				return err
			}
		}
	}
	if err := add(backupCredentials, cfg.CredentialsPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Restore unpacks the backup from into cfg's data directory. A directory
// that exists and is not empty is refused unless force, and then kept,
// renamed beside it, never deleted; a directory a server is using is
// always refused. The backup is unpacked and checked in a new directory
// first and moved into place only once whole and synced, so a failed
// restore changes nothing. An empty directory (a volume's mount point) is
// filled in place. It returns where the replaced directory went, if one
// was, also with an error.
func Restore(ctx context.Context, cfg config.Config, from string, force bool) (replaced string, err error) {
	if cfg.Database != "" {
		return "", errors.New("with PostgreSQL restore the database with pg_restore (README: Backup and restore)")
	}
	dir := filepath.Clean(cfg.DataDir)
	entries, err := os.ReadDir(dir)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case len(entries) > 0 && !force:
		return "", fmt.Errorf("%s is not empty; restore into a new directory, or give --force to move it aside", absolute(dir))
	case len(entries) > 0:
		lock, err := lockDataDir(dir)
		if err != nil {
			return "", err
		}
		// Held until the old directory is renamed away, so that no server
		// starts on it meanwhile.
		defer lock.Close()
	}
	// Unpacked beside the directory, or inside it when it is empty (a
	// mount point cannot be renamed).
	parent, pattern := filepath.Dir(dir), "."+filepath.Base(dir)+".restore-"
	if exists && len(entries) == 0 {
		parent, pattern = dir, ".restore-"
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once moved into place
	if err := os.Chmod(tmp, 0o700); err != nil {
		return "", err
	}
	if err := unpackBackup(from, tmp); err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	if err := checkRestored(ctx, tmp); err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	if exists && len(entries) == 0 {
		return "", moveContents(tmp, dir)
	}
	if len(entries) > 0 {
		replaced = fmt.Sprintf("%s.replaced-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(dir, replaced); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if replaced != "" && os.Rename(replaced, dir) == nil {
			replaced = ""
		}
		return replaced, err
	}
	return replaced, keys.SyncDir(parent)
}

// checkRestored opens the unpacked database and checks its integrity.
func checkRestored(ctx context.Context, dir string) error {
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, backupDatabase))
	if err != nil {
		return fmt.Errorf("the database does not open: %w", err)
	}
	err = st.IntegrityCheck(ctx)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// moveContents moves what from holds into dir, on the same file system,
// and removes from.
func moveContents(from, dir string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(from); err != nil {
		return err
	}
	return keys.SyncDir(dir)
}

// unpackBackup writes the backup's files into dir, accepting only the names
// a backup has: nothing outside dir, no links, no other files.
func unpackBackup(from, dir string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("not a fleetca backup: %w", err)
	}
	tr := tar.NewReader(gz)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("not a fleetca backup: %w", err)
		}
		name := hdr.Name
		ok := name == backupDatabase || name == backupCredentials ||
			(path.Dir(name) == backupCADir && path.Base(name) != "" && !strings.HasPrefix(path.Base(name), "."))
		if !ok || path.Clean(name) != name || hdr.Typeflag != tar.TypeReg || hdr.Size > maxBackupEntry || seen[name] {
			return fmt.Errorf("not a fleetca backup: unexpected entry %q", name)
		}
		seen[name] = true
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pem") {
			mode = 0o644 // certificates; keys and the database stay 0600
		}
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, io.LimitReader(tr, maxBackupEntry))
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if !seen[backupDatabase] || !seen[backupCADir+"/root.pem"] {
		return errors.New("not a fleetca backup: no database or no CA")
	}
	if err := keys.SyncDir(filepath.Join(dir, backupCADir)); err != nil {
		return err
	}
	return keys.SyncDir(dir)
}
