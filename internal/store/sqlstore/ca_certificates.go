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

const caColumns = `account_id, region, ca_certificate_id, status, auto_registration, mode, der, subject_key,
	template_body, role_arn, template_name, owned_by, created_us, modified_us, customer_version, generation_id,
	not_before_us, not_after_us`

func scanCA(r rowScanner) (*iot.CACertificate, error) {
	var c iot.CACertificate
	var status, auto, mode string
	var created, modified, notBefore, notAfter int64
	err := r.Scan(&c.Scope.AccountID, &c.Scope.Region, &c.ID, &status, &auto, &mode, &c.DER, &c.SubjectKey,
		&c.RegistrationConfig.TemplateBody, &c.RegistrationConfig.RoleARN, &c.RegistrationConfig.TemplateName,
		&c.OwnedBy, &created, &modified, &c.CustomerVersion, &c.GenerationID, &notBefore, &notAfter)
	if err != nil {
		return nil, err
	}
	c.Status, c.AutoRegistration, c.Mode = iot.CAStatus(status), iot.AutoRegistration(auto), iot.Mode(mode)
	c.CreatedAt = time.UnixMicro(created).UTC()
	c.LastModifiedAt = time.UnixMicro(modified).UTC()
	c.NotBefore = time.UnixMicro(notBefore).UTC()
	c.NotAfter = time.UnixMicro(notAfter).UTC()
	return &c, nil
}

// CreateCACertificate implements store.CACertificates.
func (s *Store) CreateCACertificate(ctx context.Context, ca *iot.CACertificate, tags []iot.Tag, maxSameSubject int) error {
	return s.write.do(ctx, func(tx txn) error {
		// Registrations of one subject in one scope take turns, so the
		// subject limit holds across replicas.
		if err := tx.lock("ca-subject/" + ca.Scope.AccountID + "/" + ca.Scope.Region + "/" + ca.SubjectKey); err != nil {
			return err
		}
		var n int
		err := tx.QueryRow(`SELECT count(*) FROM ca_certificates WHERE account_id = ? AND region = ? AND ca_certificate_id = ?`,
			ca.Scope.AccountID, ca.Scope.Region, ca.ID).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("CA certificate %s: %w", ca.ID, store.ErrExists)
		}
		if ca.Mode == iot.ModeDefault {
			err := tx.QueryRow(`SELECT count(*) FROM ca_certificates WHERE region = ? AND ca_certificate_id = ? AND mode = 'DEFAULT'`,
				ca.Scope.Region, ca.ID).Scan(&n)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("CA certificate %s: %w", ca.ID, store.ErrConflict)
			}
		}
		err = tx.QueryRow(`SELECT count(*) FROM ca_certificates WHERE account_id = ? AND region = ? AND subject_key = ?`,
			ca.Scope.AccountID, ca.Scope.Region, ca.SubjectKey).Scan(&n)
		if err != nil {
			return err
		}
		if n >= maxSameSubject {
			return fmt.Errorf("%d CA certificates with subject %s: %w", n, ca.SubjectKey, store.ErrLimit)
		}
		rc := ca.RegistrationConfig
		_, err = tx.Exec(`INSERT INTO ca_certificates (`+caColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ca.Scope.AccountID, ca.Scope.Region, ca.ID, string(ca.Status), string(ca.AutoRegistration), string(ca.Mode),
			ca.DER, ca.SubjectKey, rc.TemplateBody, rc.RoleARN, rc.TemplateName, ca.OwnedBy,
			ca.CreatedAt.UnixMicro(), ca.LastModifiedAt.UnixMicro(), ca.CustomerVersion, ca.GenerationID,
			ca.NotBefore.UnixMicro(), ca.NotAfter.UnixMicro())
		if isUniqueViolation(err) {
			// The checks above make this unreachable in one process; the
			// constraints are the backstop.
			return fmt.Errorf("CA certificate %s: %w", ca.ID, store.ErrConflict)
		}
		if err != nil {
			return err
		}
		return upsertTags(tx, iot.Resource{Scope: ca.Scope, Type: iot.TypeCACertificate, ID: ca.ID}, tags)
	})
}

// CACertificate implements store.CACertificates.
func (s *Store) CACertificate(ctx context.Context, scope iot.Scope, id string) (*iot.CACertificate, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+caColumns+` FROM ca_certificates
		WHERE account_id = ? AND region = ? AND ca_certificate_id = ?`, scope.AccountID, scope.Region, id)
	c, err := scanCA(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return c, err
}

// CACertificatesBySubject implements store.CACertificates.
func (s *Store) CACertificatesBySubject(ctx context.Context, scope iot.Scope, subjectKey string) ([]iot.CACertificate, error) {
	query := `SELECT ` + caColumns + ` FROM ca_certificates WHERE subject_key = ?`
	args := []any{subjectKey}
	if scope != (iot.Scope{}) {
		query += ` AND account_id = ? AND region = ?`
		args = append(args, scope.AccountID, scope.Region)
	}
	rows, err := s.read.QueryContext(ctx, query+` ORDER BY created_us, ca_certificate_id`, args...)
	return scanAll(rows, err, scanCA)
}

// ListCACertificates implements store.CACertificates.
func (s *Store) ListCACertificates(ctx context.Context, q store.CACertificateQuery) (store.CACertificatePage, error) {
	filter := ``
	args := []any{q.Scope.AccountID, q.Scope.Region}
	if q.TemplateName != "" {
		filter = ` AND template_name = ?`
		args = append(args, q.TemplateName)
	}
	query, args := keysetQuery(`SELECT ca_certificate_id, status, created_us FROM ca_certificates
		WHERE account_id = ? AND region = ?`+filter, "ca_certificate_id", args, q.After, q.Ascending, q.Limit)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return store.CACertificatePage{}, err
	}
	defer rows.Close()
	page := store.CACertificatePage{CACertificates: make([]iot.CACertificate, 0, q.Limit)}
	for rows.Next() {
		var c iot.CACertificate
		var status string
		var created int64
		if err := rows.Scan(&c.ID, &status, &created); err != nil {
			return store.CACertificatePage{}, err
		}
		c.Scope, c.Status, c.CreatedAt = q.Scope, iot.CAStatus(status), time.UnixMicro(created).UTC()
		page.CACertificates = append(page.CACertificates, c)
	}
	if err := rows.Err(); err != nil {
		return store.CACertificatePage{}, err
	}
	page.CACertificates, page.Next = trimPage(page.CACertificates, q.Limit, func(c *iot.CACertificate) store.Cursor {
		return store.Cursor{Time: c.CreatedAt, ID: c.ID}
	})
	return page, nil
}

// UpdateCACertificate implements store.CACertificates.
func (s *Store) UpdateCACertificate(ctx context.Context, scope iot.Scope, id string, change func(*iot.CACertificate) error) (*iot.CACertificate, error) {
	var updated *iot.CACertificate
	err := s.write.do(ctx, func(tx txn) error {
		c, err := selectCAForUpdate(tx, scope, id)
		if err != nil {
			return err
		}
		was := c.Status
		if err := change(c); err != nil {
			return err
		}
		rc := c.RegistrationConfig
		if _, err := tx.Exec(`UPDATE ca_certificates SET status = ?, auto_registration = ?, template_body = ?, role_arn = ?,
			template_name = ?, modified_us = ?, customer_version = ?, generation_id = ?
			WHERE account_id = ? AND region = ? AND ca_certificate_id = ?`,
			string(c.Status), string(c.AutoRegistration), rc.TemplateBody, rc.RoleARN, rc.TemplateName,
			c.LastModifiedAt.UnixMicro(), c.CustomerVersion, c.GenerationID, scope.AccountID, scope.Region, id); err != nil {
			return err
		}
		updated = c
		if c.Status == was {
			return nil
		}
		return recordChange(tx, scope, store.ChangeCA, id, c.LastModifiedAt)
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

func selectCAForUpdate(tx txn, scope iot.Scope, id string) (*iot.CACertificate, error) {
	c, err := scanCA(tx.QueryRow(`SELECT `+caColumns+` FROM ca_certificates
		WHERE account_id = ? AND region = ? AND ca_certificate_id = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return c, err
}

// DeleteCACertificate implements store.CACertificates.
func (s *Store) DeleteCACertificate(ctx context.Context, scope iot.Scope, id string, check func(*iot.CACertificate) error) error {
	return s.write.do(ctx, func(tx txn) error {
		c, err := selectCAForUpdate(tx, scope, id)
		if err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM ca_certificates WHERE account_id = ? AND region = ? AND ca_certificate_id = ?`,
			scope.AccountID, scope.Region, id); err != nil {
			return err
		}
		if err := recordChange(tx, scope, store.ChangeCA, id, time.Now()); err != nil {
			return err
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypeCACertificate, ID: id})
	})
}
