package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// CreateAccount implements store.Accounts.
func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	return s.write.do(ctx, func(tx txn) error {
		_, err := tx.Exec(`INSERT INTO accounts (account_id, created_us) VALUES (?, ?)`, a.ID, a.CreatedAt.UnixMicro())
		if isUniqueViolation(err) {
			return fmt.Errorf("account %s: %w", a.ID, store.ErrExists)
		}
		return err
	})
}

// Accounts implements store.Accounts.
func (s *Store) Accounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT account_id, created_us FROM accounts ORDER BY created_us, account_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		var a store.Account
		var created int64
		if err := rows.Scan(&a.ID, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// CreateAccessKey implements store.Accounts.
func (s *Store) CreateAccessKey(ctx context.Context, k store.AccessKey) error {
	return s.write.do(ctx, func(tx txn) error {
		_, err := tx.Exec(`INSERT INTO access_keys (access_key_id, account_id, secret_access_key, created_us) VALUES (?, ?, ?, ?)`,
			k.ID, k.AccountID, k.Secret, k.CreatedAt.UnixMicro())
		switch {
		case isUniqueViolation(err):
			return fmt.Errorf("access key %s: %w", k.ID, store.ErrExists)
		case isForeignKeyViolation(err):
			return fmt.Errorf("account %s: %w", k.AccountID, store.ErrNotFound)
		}
		return err
	})
}

// AccessKey implements store.Accounts.
func (s *Store) AccessKey(ctx context.Context, id string) (store.AccessKey, error) {
	k := store.AccessKey{ID: id}
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT account_id, secret_access_key, created_us FROM access_keys WHERE access_key_id = ?`, id).
		Scan(&k.AccountID, &k.Secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AccessKey{}, store.ErrNotFound
	}
	if err != nil {
		return store.AccessKey{}, err
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	return k, nil
}

// AccessKeys implements store.Accounts.
func (s *Store) AccessKeys(ctx context.Context) ([]store.AccessKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT access_key_id, account_id, secret_access_key, created_us FROM access_keys ORDER BY access_key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []store.AccessKey
	for rows.Next() {
		var k store.AccessKey
		var created int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.Secret, &created); err != nil {
			return nil, err
		}
		k.CreatedAt = time.UnixMicro(created).UTC()
		list = append(list, k)
	}
	return list, rows.Err()
}

// ReplaceAccessKeySecret implements store.Accounts.
func (s *Store) ReplaceAccessKeySecret(ctx context.Context, id, old, secret string) error {
	return s.write.do(ctx, func(tx txn) error {
		res, err := tx.Exec(`UPDATE access_keys SET secret_access_key = ? WHERE access_key_id = ? AND secret_access_key = ?`, secret, id, old)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n != 1 {
			return store.ErrNotFound
		}
		return nil
	})
}

// EnsureFirstAccount implements store.Accounts.
func (s *Store) EnsureFirstAccount(ctx context.Context, a store.Account, k store.AccessKey) (store.Account, bool, error) {
	var first store.Account
	var created bool
	err := s.write.do(ctx, func(tx txn) error {
		created = false
		if err := tx.lock("first-account"); err != nil {
			return err
		}
		var createdUS int64
		err := tx.QueryRow(`SELECT account_id, created_us FROM accounts ORDER BY created_us, account_id LIMIT 1`).Scan(&first.ID, &createdUS)
		if err == nil {
			first.CreatedAt = time.UnixMicro(createdUS).UTC()
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO accounts (account_id, created_us) VALUES (?, ?)`, a.ID, a.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO access_keys (access_key_id, account_id, secret_access_key, created_us) VALUES (?, ?, ?, ?)`,
			k.ID, k.AccountID, k.Secret, k.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		first, created = a, true
		return nil
	})
	return first, created, err
}
