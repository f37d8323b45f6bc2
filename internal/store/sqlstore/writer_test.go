package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// holdLead starts a write that leads and blocks until release is closed, and
// returns once it is running.
func holdLead(t *testing.T, w *writer, release <-chan struct{}) <-chan error {
	t.Helper()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- w.do(context.Background(), func(tx txn) error {
			close(running)
			<-release
			_, err := tx.Exec("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
			return err
		})
	}()
	<-running
	return done
}

// waitQueued returns once n writes wait behind the leader.
func waitQueued(t *testing.T, w *writer, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		w.mu.Lock()
		got := len(w.queue)
		w.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriterWithdrawsCancelledWrites: a write whose caller gives up before
// a batch takes it returns at once and never runs; the writes queued beside
// it commit together once the leader is done.
func TestWriterWithdrawsCancelledWrites(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	defer s.Close()
	release := make(chan struct{})
	first := holdLead(t, s.write, release)

	var ran atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		gaveUp <- s.write.do(ctx, func(txn) error { ran.Add(1); return nil })
	}()
	kept := make(chan error, 2)
	for range 2 {
		go func() { kept <- s.write.do(context.Background(), func(txn) error { return nil }) }()
	}
	waitQueued(t, s.write, 3)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled write waiting for its batch: %v, want context.Canceled", err)
	}
	waitQueued(t, s.write, 2)
	close(release)
	for _, c := range []<-chan error{first, kept, kept} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if ran.Load() != 0 {
		t.Fatal("the withdrawn write ran")
	}
}

// TestWriterSurvivesAPanic: a write that panics fails its own batch, rolls
// its transaction back and passes the panic to its caller; the writes that
// follow commit.
func TestWriterSurvivesAPanic(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	defer s.Close()
	ctx := context.Background()
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(p.(string), "boom") {
				t.Fatalf("recovered %v, want the write's panic", p)
			}
		}()
		s.write.do(ctx, func(tx txn) error {
			if _, err := tx.Exec("CREATE TABLE lost (x INTEGER)"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if err := s.write.do(ctx, func(tx txn) error {
		_, err := tx.Exec("CREATE TABLE kept (x INTEGER)")
		return err
	}); err != nil {
		t.Fatalf("the write after a panic: %v", err)
	}
	var n int
	if err := s.read.db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('lost', 'kept')").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d of the two tables exist (%v), want only the one committed", n, err)
	}
}

// TestWriterPanicReachesItsCaller: a write that panics while another
// caller leads its batch panics on its own caller's goroutine, not the
// leader's; its work is rolled back and the writes beside it commit.
func TestWriterPanicReachesItsCaller(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	defer s.Close()
	release := make(chan struct{})
	first := holdLead(t, s.write, release)
	// kept waits first, so that it leads the next batch and the panicking
	// write joins it.
	kept := make(chan error, 1)
	go func() {
		kept <- s.write.do(context.Background(), func(tx txn) error {
			_, err := tx.Exec("CREATE TABLE kept (x INTEGER)")
			return err
		})
	}()
	waitQueued(t, s.write, 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		s.write.do(context.Background(), func(tx txn) error {
			if _, err := tx.Exec("CREATE TABLE lost (x INTEGER)"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	waitQueued(t, s.write, 2)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the first leader's own write: %v", err)
	}
	if err := <-kept; err != nil {
		t.Fatalf("the write leading a batch with a panicking one: %v", err)
	}
	if p := <-panicked; p != "boom" {
		t.Fatalf("the panicking write's caller recovered %v, want its panic", p)
	}
	var n int
	if err := s.read.db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('lost', 'kept')").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d of the two tables exist (%v), want only the one committed", n, err)
	}
}

// TestWriterCloseFailsWaitingWrites: closing lets the batch being committed
// finish, fails the writes waiting behind it, and refuses new ones.
func TestWriterCloseFailsWaitingWrites(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "fleetca.db"))
	release := make(chan struct{})
	first := holdLead(t, s.write, release)
	waiting := make(chan error, 1)
	go func() { waiting <- s.write.do(context.Background(), func(txn) error { return nil }) }()
	waitQueued(t, s.write, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if err := <-waiting; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a write waiting at close: %v, want ErrClosed", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was being committed")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the batch under way at close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.write.do(context.Background(), func(txn) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a write after close: %v, want ErrClosed", err)
	}
}
