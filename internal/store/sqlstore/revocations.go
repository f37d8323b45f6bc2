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

// UnusableCertificates implements store.Revocations. Both halves are read
// from indexes alone (migration 0010).
func (s *Store) UnusableCertificates(ctx context.Context, issuerID string, now time.Time) ([]store.UnusableCertificate, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT serial, status, 0, modified_us FROM certificates
			WHERE issuer_id = ? AND issuer_id <> '' AND status <> 'ACTIVE' AND not_after_us >= ?
		UNION ALL
		SELECT serial, status, 1, revoked_us FROM revoked_certificates WHERE issuer_id = ? AND not_after_us >= ?
		ORDER BY 1, 3`, issuerID, now.UnixMicro(), issuerID, now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.UnusableCertificate
	for rows.Next() {
		var u store.UnusableCertificate
		var status string
		var deleted int
		var since int64
		if err := rows.Scan(&u.Serial, &status, &deleted, &since); err != nil {
			return nil, err
		}
		u.Status, u.Deleted, u.Since = iot.Status(status), deleted == 1, time.UnixMicro(since).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// fingerprintModulus keeps the sums of timestamps far from overflow: a
// billion certificates sum to less than 2^63.
const fingerprintModulus = 1000003

// UnusableFingerprint implements store.Revocations: the count of each half
// and a sum of its timestamps, which any status change moves.
func (s *Store) UnusableFingerprint(ctx context.Context, issuerID string) (string, error) {
	var live, liveSum, gone, goneSum int64
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM certificates WHERE issuer_id = ? AND issuer_id <> '' AND status <> 'ACTIVE'),
		(SELECT CAST(COALESCE(SUM(modified_us % ?), 0) AS BIGINT) FROM certificates WHERE issuer_id = ? AND issuer_id <> '' AND status <> 'ACTIVE'),
		(SELECT COUNT(*) FROM revoked_certificates WHERE issuer_id = ?),
		(SELECT CAST(COALESCE(SUM(revoked_us % ?), 0) AS BIGINT) FROM revoked_certificates WHERE issuer_id = ?)`,
		issuerID, fingerprintModulus, issuerID, issuerID, fingerprintModulus, issuerID).Scan(&live, &liveSum, &gone, &goneSum)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d:%d:%d", live, liveSum, gone, goneSum), nil
}

// IssuedSerial implements store.Revocations.
func (s *Store) IssuedSerial(ctx context.Context, issuerID, serial string) (bool, error) {
	var found bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM certificates WHERE issuer_id = ? AND issuer_id <> '' AND serial = ?)
		OR EXISTS (SELECT 1 FROM revoked_certificates WHERE issuer_id = ? AND serial = ?)`,
		issuerID, serial, issuerID, serial).Scan(&found)
	return found, err
}

// CRL implements store.Revocations.
func (s *Store) CRL(ctx context.Context, issuerID string) (*store.CRL, error) {
	c := store.CRL{IssuerID: issuerID}
	var thisUpdate, nextUpdate int64
	err := s.read.QueryRowContext(ctx, `SELECT number, this_update_us, next_update_us, digest, der FROM crls WHERE issuer_id = ?`,
		issuerID).Scan(&c.Number, &thisUpdate, &nextUpdate, &c.Digest, &c.DER)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.ThisUpdate, c.NextUpdate = time.UnixMicro(thisUpdate).UTC(), time.UnixMicro(nextUpdate).UTC()
	return &c, nil
}

// SaveCRL implements store.Revocations.
func (s *Store) SaveCRL(ctx context.Context, c *store.CRL, prev int64) error {
	if c.Number <= prev {
		return fmt.Errorf("CRL %d of %s: its number must exceed the one it replaces, %d", c.Number, c.IssuerID, prev)
	}
	return s.write.do(ctx, func(tx txn) error {
		var res sql.Result
		var err error
		if prev == 0 {
			res, err = tx.Exec(`INSERT INTO crls (issuer_id, number, this_update_us, next_update_us, digest, der)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issuer_id) DO NOTHING`,
				c.IssuerID, c.Number, c.ThisUpdate.UnixMicro(), c.NextUpdate.UnixMicro(), c.Digest, c.DER)
		} else {
			res, err = tx.Exec(`UPDATE crls SET number = ?, this_update_us = ?, next_update_us = ?, digest = ?, der = ?
				WHERE issuer_id = ? AND number = ?`,
				c.Number, c.ThisUpdate.UnixMicro(), c.NextUpdate.UnixMicro(), c.Digest, c.DER, c.IssuerID, prev)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("CRL %d of %s: %w", c.Number, c.IssuerID, store.ErrConflict)
		}
		return nil
	})
}

// unattributed marks the certificates migration 0010 found that fleetca may
// have signed; it is no issuer's ID.
const unattributed = "unattributed"

// UnattributedCertificates implements store.Revocations. The mark is in the
// (issuer_id, serial) index, so with none left this is one index probe.
func (s *Store) UnattributedCertificates(ctx context.Context, limit int) ([]iot.Certificate, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+certificateColumns+` FROM certificates
		WHERE issuer_id = ? AND issuer_id <> '' ORDER BY serial LIMIT ?`, unattributed, limit)
	return scanAll(rows, err, scanCertificate)
}

// AttributeCertificates implements store.Revocations.
func (s *Store) AttributeCertificates(ctx context.Context, attributions []store.Attribution) error {
	return s.write.do(ctx, func(tx txn) error {
		for _, a := range attributions {
			if _, err := tx.Exec(`UPDATE certificates SET issuer_id = ?, serial = ?
				WHERE account_id = ? AND region = ? AND certificate_id = ? AND issuer_id = ?`,
				a.IssuerID, a.Serial, a.Scope.AccountID, a.Scope.Region, a.ID, unattributed); err != nil {
				return err
			}
		}
		return nil
	})
}
