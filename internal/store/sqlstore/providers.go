package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

const providerColumns = `account_id, region, name, lambda_function_arn, default_operations, created_us, modified_us`

func scanProvider(r rowScanner) (*iot.CertificateProvider, error) {
	var p iot.CertificateProvider
	var ops string
	var created, modified int64
	if err := r.Scan(&p.Scope.AccountID, &p.Scope.Region, &p.Name, &p.LambdaFunctionARN, &ops, &created, &modified); err != nil {
		return nil, err
	}
	p.AccountDefaultForOperations = splitOperations(ops)
	p.CreatedAt = time.UnixMicro(created).UTC()
	p.LastModifiedAt = time.UnixMicro(modified).UTC()
	return &p, nil
}

// Operation names never contain commas, so a comma-separated list keeps them.
func joinOperations(ops []string) string { return strings.Join(ops, ",") }

func splitOperations(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

const createProviderOperation = "CreateCertificateProvider"

// CreateCertificateProvider implements store.CertificateProviders.
func (s *Store) CreateCertificateProvider(ctx context.Context, p *iot.CertificateProvider, tags []iot.Tag, token store.ClientToken) (bool, error) {
	replayed := false
	err := s.write.do(ctx, func(tx txn) error {
		replayed = false
		// Creations in one scope take turns, so a client token and the one
		// provider per scope hold across replicas.
		if err := tx.lock("provider/" + p.Scope.AccountID + "/" + p.Scope.Region); err != nil {
			return err
		}
		if token.Value != "" {
			var hash string
			err := tx.QueryRow(`SELECT request_hash FROM client_tokens WHERE account_id = ? AND region = ? AND operation = ? AND token = ?`,
				p.Scope.AccountID, p.Scope.Region, createProviderOperation, token.Value).Scan(&hash)
			switch {
			case err == nil && hash == token.Hash:
				replayed = true
				return nil
			case err == nil:
				return store.ErrTokenMismatch
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		existing, err := scanProvider(tx.QueryRow(`SELECT `+providerColumns+` FROM certificate_providers WHERE account_id = ? AND region = ?`,
			p.Scope.AccountID, p.Scope.Region))
		switch {
		case err == nil && existing.Name == p.Name:
			return fmt.Errorf("certificate provider %s: %w", p.Name, store.ErrExists)
		case err == nil:
			return fmt.Errorf("certificate provider %s exists: %w", existing.Name, store.ErrLimit)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.Exec(`INSERT INTO certificate_providers (`+providerColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.Scope.AccountID, p.Scope.Region, p.Name, p.LambdaFunctionARN, joinOperations(p.AccountDefaultForOperations),
			p.CreatedAt.UnixMicro(), p.LastModifiedAt.UnixMicro())
		if isUniqueViolation(err) {
			return fmt.Errorf("certificate provider: %w", store.ErrLimit)
		}
		if err != nil {
			return err
		}
		if token.Value != "" {
			if _, err := tx.Exec(`INSERT INTO client_tokens (account_id, region, operation, token, request_hash, created_us) VALUES (?, ?, ?, ?, ?, ?)`,
				p.Scope.AccountID, p.Scope.Region, createProviderOperation, token.Value, token.Hash, p.CreatedAt.UnixMicro()); err != nil {
				return err
			}
		}
		return upsertTags(tx, iot.Resource{Scope: p.Scope, Type: iot.TypeCertificateProvider, ID: p.Name}, tags)
	})
	return replayed, err
}

// CertificateProvider implements store.CertificateProviders.
func (s *Store) CertificateProvider(ctx context.Context, scope iot.Scope, name string) (*iot.CertificateProvider, error) {
	p, err := scanProvider(s.read.QueryRowContext(ctx, `SELECT `+providerColumns+` FROM certificate_providers
		WHERE account_id = ? AND region = ? AND name = ?`, scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return p, err
}

// ScopeCertificateProvider implements store.CertificateProviders.
func (s *Store) ScopeCertificateProvider(ctx context.Context, scope iot.Scope) (*iot.CertificateProvider, error) {
	p, err := scanProvider(s.read.QueryRowContext(ctx, `SELECT `+providerColumns+` FROM certificate_providers
		WHERE account_id = ? AND region = ?`, scope.AccountID, scope.Region))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return p, err
}

// ListCertificateProviders implements store.CertificateProviders.
func (s *Store) ListCertificateProviders(ctx context.Context, scope iot.Scope, after string, ascending bool, limit int) ([]iot.CertificateProvider, bool, error) {
	cmp, order := ">", "ASC"
	if !ascending {
		cmp, order = "<", "DESC"
	}
	query := `SELECT ` + providerColumns + ` FROM certificate_providers WHERE account_id = ? AND region = ?`
	args := []any{scope.AccountID, scope.Region}
	if after != "" {
		query += ` AND name ` + cmp + ` ?`
		args = append(args, after)
	}
	rows, err := s.read.QueryContext(ctx, query+` ORDER BY name `+order+` LIMIT ?`, append(args, limit+1)...)
	out, err := scanAll(rows, err, scanProvider)
	return page(out, err, limit)
}

// UpdateCertificateProvider implements store.CertificateProviders.
func (s *Store) UpdateCertificateProvider(ctx context.Context, scope iot.Scope, name string, change func(*iot.CertificateProvider) error) (*iot.CertificateProvider, error) {
	var updated *iot.CertificateProvider
	err := s.write.do(ctx, func(tx txn) error {
		p, err := scanProvider(tx.QueryRow(`SELECT `+providerColumns+` FROM certificate_providers
			WHERE account_id = ? AND region = ? AND name = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, name))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := change(p); err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE certificate_providers SET lambda_function_arn = ?, default_operations = ?, modified_us = ?
			WHERE account_id = ? AND region = ? AND name = ?`,
			p.LambdaFunctionARN, joinOperations(p.AccountDefaultForOperations), p.LastModifiedAt.UnixMicro(), scope.AccountID, scope.Region, name)
		updated = p
		return err
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// DeleteCertificateProvider implements store.CertificateProviders.
func (s *Store) DeleteCertificateProvider(ctx context.Context, scope iot.Scope, name string) error {
	return s.write.do(ctx, func(tx txn) error {
		res, err := tx.Exec(`DELETE FROM certificate_providers WHERE account_id = ? AND region = ? AND name = ?`, scope.AccountID, scope.Region, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypeCertificateProvider, ID: name})
	})
}
