package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockFile is the file a server holds locked in its SQLite data directory.
const lockFile = "lock"

// lockDataDir takes an exclusive lock on dir's lock file, so that a second
// server on the same SQLite data directory refuses to start instead of
// serving beside the first (two writers' group commits, two MQTT janitors,
// two sets of sessions). flock is released by the kernel when the process
// ends, however it ends, so a crash leaves no stale lock. The file holds
// the PID of the holder, for the operator.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another fleetca (PID %s) is serving the data directory %s: it holds %s; stop it first, or give this one a --data-dir of its own",
				pidOrUnknown(holder), absolute(dir), absolute(path))
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func pidOrUnknown(b []byte) string {
	if n, err := strconv.Atoi(string(trimNewline(b))); err == nil && n > 0 {
		return strconv.Itoa(n)
	}
	return "unknown"
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
