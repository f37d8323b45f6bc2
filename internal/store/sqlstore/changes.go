package sqlstore

import (
	"context"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// recordChange writes a change to the feed in the transaction that makes it.
func recordChange(tx txn, scope iot.Scope, kind store.ChangeKind, name string, at time.Time) error {
	_, err := tx.Exec(`INSERT INTO changes (account_id, region, kind, name, at_us) VALUES (?, ?, ?, ?, ?)`,
		scope.AccountID, scope.Region, string(kind), name, at.UnixMicro())
	return err
}

// Changes implements store.Changes.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT seq, account_id, region, kind, name, at_us FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	return scanAll(rows, err, func(r rowScanner) (*store.Change, error) {
		var c store.Change
		var kind string
		var at int64
		if err := r.Scan(&c.Seq, &c.Scope.AccountID, &c.Scope.Region, &kind, &c.Name, &at); err != nil {
			return nil, err
		}
		c.Kind, c.At = store.ChangeKind(kind), time.UnixMicro(at).UTC()
		return &c, nil
	})
}

// LastChange implements store.Changes. It reads the sequence, not the
// table: once every change is pruned the table is empty, but the numbers
// given go on from where they were.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	q := `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'changes'`
	if s.d.postgres {
		q = `SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('changes', 'seq')), 0)`
	}
	var seq int64
	err := s.read.QueryRowContext(ctx, q).Scan(&seq)
	return seq, err
}

// PruneChanges implements store.Changes.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		_, err := tx.Exec(`DELETE FROM changes WHERE at_us < ?`, before.UnixMicro())
		return err
	})
}
