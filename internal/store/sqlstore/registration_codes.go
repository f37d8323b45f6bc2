package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// RegistrationCode implements store.RegistrationCodes. The common case, a
// code that exists, is a read; only the first call of a scope writes.
func (s *Store) RegistrationCode(ctx context.Context, scope iot.Scope, newCode string) (string, error) {
	var code string
	err := s.read.QueryRowContext(ctx, `SELECT code FROM registration_codes WHERE account_id = ? AND region = ?`,
		scope.AccountID, scope.Region).Scan(&code)
	if err == nil {
		return code, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if newCode == "" {
		return "", store.ErrNotFound
	}
	err = s.write.do(ctx, func(tx txn) error {
		if _, err := tx.Exec(`INSERT INTO registration_codes (account_id, region, code, created_us) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id, region) DO NOTHING`, scope.AccountID, scope.Region, newCode, time.Now().UnixMicro()); err != nil {
			return err
		}
		return tx.QueryRow(`SELECT code FROM registration_codes WHERE account_id = ? AND region = ?`,
			scope.AccountID, scope.Region).Scan(&code)
	})
	return code, err
}

// DeleteRegistrationCode implements store.RegistrationCodes.
func (s *Store) DeleteRegistrationCode(ctx context.Context, scope iot.Scope) error {
	return s.write.do(ctx, func(tx txn) error {
		res, err := tx.Exec(`DELETE FROM registration_codes WHERE account_id = ? AND region = ?`, scope.AccountID, scope.Region)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}
