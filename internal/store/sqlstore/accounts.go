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

// LoadOrCreateCA implements store.CAKeeper.
func (s *Store) LoadOrCreateCA(ctx context.Context, complete func(*store.CAMaterial) (*store.CAMaterial, error)) (*store.CAMaterial, error) {
	var m *store.CAMaterial
	err := s.write.do(ctx, func(tx txn) error {
		if err := tx.lock("ca-material"); err != nil {
			return err
		}
		var root, issuing, rootKey, issuingKey, serverCA, serverCAKey string
		err := tx.QueryRow(`SELECT root_cert_pem, issuing_cert_pem, root_key_sealed, issuing_key_sealed, server_ca_cert_pem, server_ca_key_sealed FROM ca_material WHERE id = 1`).
			Scan(&root, &issuing, &rootKey, &issuingKey, &serverCA, &serverCAKey)
		var existing *store.CAMaterial
		switch {
		case err == nil:
			existing = &store.CAMaterial{
				RootCertPEM: []byte(root), IssuingCertPEM: []byte(issuing), RootKeySealed: []byte(rootKey), IssuingKeySealed: []byte(issuingKey),
				ServerCACertPEM: []byte(serverCA), ServerCAKeySealed: []byte(serverCAKey),
			}
			if existing.Complete() {
				m = existing
				return nil
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if m, err = complete(existing); err != nil {
			return err
		}
		if !m.Complete() {
			return errors.New("sqlstore: the CA material to store is incomplete")
		}
		if existing != nil {
			_, err = tx.Exec(`UPDATE ca_material SET server_ca_cert_pem = ?, server_ca_key_sealed = ? WHERE id = 1`,
				string(m.ServerCACertPEM), string(m.ServerCAKeySealed))
			return err
		}
		_, err = tx.Exec(`INSERT INTO ca_material (id, root_cert_pem, issuing_cert_pem, root_key_sealed, issuing_key_sealed, server_ca_cert_pem, server_ca_key_sealed, created_us) VALUES (1, ?, ?, ?, ?, ?, ?, ?)`,
			string(m.RootCertPEM), string(m.IssuingCertPEM), string(m.RootKeySealed), string(m.IssuingKeySealed),
			string(m.ServerCACertPEM), string(m.ServerCAKeySealed), time.Now().UnixMicro())
		return err
	})
	return m, err
}
