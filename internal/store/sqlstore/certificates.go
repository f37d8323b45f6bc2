package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

const certificateColumns = `account_id, region, certificate_id, status, mode, ca_certificate_id, der,
	owned_by, previous_owned_by, created_us, modified_us, customer_version, generation_id,
	not_before_us, not_after_us, issuer_id, serial`

// CreateCertificate implements store.Certificates.
func (s *Store) CreateCertificate(ctx context.Context, c *iot.Certificate) error {
	return s.write.do(ctx, func(tx txn) error {
		err := insertCertificate(tx, c)
		if isUniqueViolation(err) {
			return fmt.Errorf("certificate %s: %w", c.ID, store.ErrExists)
		}
		return err
	})
}

func insertCertificate(tx txn, c *iot.Certificate) error {
	_, err := tx.Exec(`INSERT INTO certificates (`+certificateColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Scope.AccountID, c.Scope.Region, c.ID, string(c.Status), string(c.Mode), c.CACertificateID, c.DER,
		c.OwnedBy, c.PreviousOwnedBy, c.CreatedAt.UnixMicro(), c.LastModifiedAt.UnixMicro(),
		c.CustomerVersion, c.GenerationID, c.NotBefore.UnixMicro(), c.NotAfter.UnixMicro(), c.IssuerID, c.Serial)
	return err
}

type rowScanner interface{ Scan(dest ...any) error }

// scanAll scans every row of a query's result with scan and closes the rows.
func scanAll[T any](rows *sql.Rows, err error, scan func(rowScanner) (*T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

func scanCertificate(r rowScanner) (*iot.Certificate, error) {
	var c iot.Certificate
	var status, mode string
	var created, modified, notBefore, notAfter int64
	err := r.Scan(&c.Scope.AccountID, &c.Scope.Region, &c.ID, &status, &mode, &c.CACertificateID, &c.DER,
		&c.OwnedBy, &c.PreviousOwnedBy, &created, &modified, &c.CustomerVersion, &c.GenerationID,
		&notBefore, &notAfter, &c.IssuerID, &c.Serial)
	if err != nil {
		return nil, err
	}
	c.Status, c.Mode = iot.Status(status), iot.Mode(mode)
	c.CreatedAt = time.UnixMicro(created).UTC()
	c.LastModifiedAt = time.UnixMicro(modified).UTC()
	c.NotBefore = time.UnixMicro(notBefore).UTC()
	c.NotAfter = time.UnixMicro(notAfter).UTC()
	return &c, nil
}

// Certificate implements store.Certificates.
func (s *Store) Certificate(ctx context.Context, scope iot.Scope, id string) (*iot.Certificate, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+certificateColumns+` FROM certificates
		WHERE account_id = ? AND region = ? AND certificate_id = ?`, scope.AccountID, scope.Region, id)
	c, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return c, err
}

// ListCertificates implements store.Certificates.
func (s *Store) ListCertificates(ctx context.Context, q store.CertificateQuery) (store.CertificatePage, error) {
	query, args := certificateListQuery(q)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return store.CertificatePage{}, err
	}
	defer rows.Close()
	page := store.CertificatePage{Certificates: make([]iot.Certificate, 0, q.Limit)}
	for rows.Next() {
		var c iot.Certificate
		var status, mode string
		var created int64
		if err := rows.Scan(&c.ID, &status, &mode, &created); err != nil {
			return store.CertificatePage{}, err
		}
		c.Scope, c.Status, c.Mode = q.Scope, iot.Status(status), iot.Mode(mode)
		c.CreatedAt = time.UnixMicro(created).UTC()
		page.Certificates = append(page.Certificates, c)
	}
	if err := rows.Err(); err != nil {
		return store.CertificatePage{}, err
	}
	page.Certificates, page.Next = trimPage(page.Certificates, q.Limit, func(c *iot.Certificate) store.Cursor {
		return store.Cursor{Time: c.CreatedAt, ID: c.ID}
	})
	return page, nil
}

// certificateListQuery selects one page of q. Its columns are all in the
// list indexes (migration 0007), so a page is read from an index alone.
func certificateListQuery(q store.CertificateQuery) (string, []any) {
	base := `SELECT certificate_id, status, mode, created_us FROM certificates WHERE account_id = ? AND region = ?`
	args := []any{q.Scope.AccountID, q.Scope.Region}
	if q.CACertificateID != "" {
		base += ` AND ca_certificate_id = ?`
		args = append(args, q.CACertificateID)
	}
	return keysetQuery(base, "certificate_id", args, q.After, q.Ascending, q.Limit)
}

func selectCertificateForUpdate(tx txn, scope iot.Scope, id string) (*iot.Certificate, error) {
	row := tx.QueryRow(`SELECT `+certificateColumns+` FROM certificates
		WHERE account_id = ? AND region = ? AND certificate_id = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, id)
	c, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return c, err
}

// UpdateCertificate implements store.Certificates. It runs in the single
// writer, so nothing else writes between its read and its write.
func (s *Store) UpdateCertificate(ctx context.Context, scope iot.Scope, id string, change func(*iot.Certificate) error) (*iot.Certificate, error) {
	var updated *iot.Certificate
	err := s.write.do(ctx, func(tx txn) error {
		c, err := selectCertificateForUpdate(tx, scope, id)
		if err != nil {
			return err
		}
		was := c.Status
		if err := change(c); err != nil {
			return err
		}
		updated = c
		return writeCertificate(tx, c, was)
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// writeCertificate writes a changed certificate's row and, when its status
// changed from was, records the change for the devices it concerns.
func writeCertificate(tx txn, c *iot.Certificate, was iot.Status) error {
	if _, err := tx.Exec(`UPDATE certificates SET status = ?, owned_by = ?, previous_owned_by = ?,
		modified_us = ?, customer_version = ?, generation_id = ?
		WHERE account_id = ? AND region = ? AND certificate_id = ?`,
		string(c.Status), c.OwnedBy, c.PreviousOwnedBy, c.LastModifiedAt.UnixMicro(),
		c.CustomerVersion, c.GenerationID, c.Scope.AccountID, c.Scope.Region, c.ID); err != nil {
		return err
	}
	if c.Status == was {
		return nil
	}
	return recordChange(tx, c.Scope, store.ChangeCertificate, c.ID, c.LastModifiedAt)
}

// DeleteCertificate implements store.Certificates.
func (s *Store) DeleteCertificate(ctx context.Context, scope iot.Scope, id string, detach bool, check func(*iot.Certificate) error) error {
	return s.write.do(ctx, func(tx txn) error {
		c, err := selectCertificateForUpdate(tx, scope, id)
		if err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		var onThing bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM thing_principals WHERE account_id = ? AND region = ? AND principal = ?)`,
			scope.AccountID, scope.Region, c.ARN()).Scan(&onThing); err != nil {
			return err
		}
		if onThing {
			return fmt.Errorf("certificate %s: %w", id, store.ErrThingAttached)
		}
		if !detach {
			var attached bool
			if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM policy_targets WHERE account_id = ? AND region = ? AND target = ?)`,
				scope.AccountID, scope.Region, c.ARN()).Scan(&attached); err != nil {
				return err
			}
			if attached {
				return fmt.Errorf("certificate %s: %w", id, store.ErrAttached)
			}
		}
		return deleteCertificate(tx, c)
	})
}

// deleteCertificate deletes c and what is attached to it (callers that must
// refuse attachments check first). A certificate fleetca signed is
// remembered as revoked until it expires, so that no verifier admits it
// again.
func deleteCertificate(tx txn, c *iot.Certificate) error {
	if _, err := tx.Exec(`DELETE FROM certificates WHERE account_id = ? AND region = ? AND certificate_id = ?`,
		c.Scope.AccountID, c.Scope.Region, c.ID); err != nil {
		return err
	}
	if err := recordChange(tx, c.Scope, store.ChangeCertificate, c.ID, time.Now()); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM policy_targets WHERE account_id = ? AND region = ? AND target = ?`,
		`DELETE FROM thing_principals WHERE account_id = ? AND region = ? AND principal = ?`,
	} {
		if _, err := tx.Exec(q, c.Scope.AccountID, c.Scope.Region, c.ARN()); err != nil {
			return err
		}
	}
	if c.IssuerID == "" || c.Serial == "" {
		return nil // not signed by fleetca, or not yet attributed
	}
	_, err := tx.Exec(`INSERT INTO revoked_certificates (issuer_id, serial, status, revoked_us, not_after_us)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (issuer_id, serial) DO NOTHING`,
		c.IssuerID, c.Serial, string(c.Status), c.LastModifiedAt.UnixMicro(), c.NotAfter.UnixMicro())
	return err
}

// AnyCertificates implements store.Certificates.
func (s *Store) AnyCertificates(ctx context.Context) (bool, error) {
	var found bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM certificates)`).Scan(&found)
	return found, err
}

// CertificatesByID implements store.Certificates.
func (s *Store) CertificatesByID(ctx context.Context, id string) ([]iot.Certificate, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+certificateColumns+` FROM certificates WHERE certificate_id = ?
		ORDER BY created_us, account_id, region`, id)
	return scanAll(rows, err, scanCertificate)
}

// CreateProvisionedCertificate implements store.Certificates.
func (s *Store) CreateProvisionedCertificate(ctx context.Context, c *iot.Certificate, token store.ProvisioningToken) error {
	return s.write.do(ctx, func(tx txn) error {
		if err := insertCertificate(tx, c); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("certificate %s: %w", c.ID, store.ErrExists)
			}
			return err
		}
		_, err := tx.Exec(`INSERT INTO provisioning_tokens (token_hash, account_id, region, certificate_id, expires_us) VALUES (?, ?, ?, ?, ?)`,
			token.Hash, c.Scope.AccountID, c.Scope.Region, c.ID, token.ExpiresAt.UnixMicro())
		return err
	})
}

// ExpireProvisioningTokens implements store.Certificates.
func (s *Store) ExpireProvisioningTokens(ctx context.Context, now time.Time) ([]iot.Certificate, error) {
	var deleted []iot.Certificate
	err := s.write.do(ctx, func(tx txn) error {
		deleted = deleted[:0]
		// Locked: a replica provisioning one of them at this moment holds
		// its row, and on PostgreSQL the status is read again once it lets
		// go, so a certificate that became ACTIVE is not deleted.
		rows, err := tx.Query(`SELECT `+certificateColumns+` FROM certificates c WHERE c.status = 'PENDING_ACTIVATION' AND EXISTS (
			SELECT 1 FROM provisioning_tokens t WHERE t.account_id = c.account_id AND t.region = c.region
			AND t.certificate_id = c.certificate_id AND t.expires_us < ?)`+tx.d.forUpdate(), now.UnixMicro())
		if err != nil {
			return err
		}
		for rows.Next() {
			c, err := scanCertificate(rows)
			if err != nil {
				rows.Close()
				return err
			}
			deleted = append(deleted, *c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range deleted {
			if err := deleteCertificate(tx, &deleted[i]); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM provisioning_claims WHERE expires_us < ?`, now.UnixMicro()); err != nil {
			return err
		}
		_, err = tx.Exec(`DELETE FROM provisioning_tokens WHERE expires_us < ?`, now.UnixMicro())
		return err
	})
	return deleted, err
}
