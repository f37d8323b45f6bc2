package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// taggable maps each taggable resource type to the table and column that
// hold its resources in a scope.
var taggable = map[string]struct{ table, idColumn string }{
	iot.TypeCACertificate:        {"ca_certificates", "ca_certificate_id"},
	iot.TypeCertificateProvider:  {"certificate_providers", "name"},
	iot.TypePolicy:               {"policies", "policy_name"},
	iot.TypeThing:                {"things", "thing_name"},
	iot.TypeProvisioningTemplate: {"provisioning_templates", "template_name"},
	iot.TypeThingType:            {"thing_types", "type_name"},
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// resourceExists returns store.ErrNotFound unless the resource exists;
// lockClause, when set, locks its row so that taggers of one resource take
// turns.
func resourceExists(ctx context.Context, q querier, r iot.Resource, lockClause string) error {
	t, ok := taggable[r.Type]
	if !ok {
		return fmt.Errorf("resource type %q: %w", r.Type, store.ErrNotFound)
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM `+t.table+` WHERE account_id = ? AND region = ? AND `+t.idColumn+` = ?`+lockClause,
		r.Scope.AccountID, r.Scope.Region, r.ID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Tags implements store.Tags.
func (s *Store) Tags(ctx context.Context, r iot.Resource) ([]iot.Tag, error) {
	if err := resourceExists(ctx, s.read, r, ""); err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT tag_key, tag_value FROM tags
		WHERE account_id = ? AND region = ? AND resource_type = ? AND resource_id = ? ORDER BY tag_key`,
		r.Scope.AccountID, r.Scope.Region, r.Type, r.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tags := []iot.Tag{}
	for rows.Next() {
		var t iot.Tag
		if err := rows.Scan(&t.Key, &t.Value); err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, rows.Err()
}

// TagResource implements store.Tags.
func (s *Store) TagResource(ctx context.Context, r iot.Resource, tags []iot.Tag, max int) error {
	return s.write.do(ctx, func(tx txn) error {
		if err := resourceExists(ctx, tx, r, tx.d.forUpdate()); err != nil {
			return err
		}
		if err := upsertTags(tx, r, tags); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM tags WHERE account_id = ? AND region = ? AND resource_type = ? AND resource_id = ?`,
			r.Scope.AccountID, r.Scope.Region, r.Type, r.ID).Scan(&n); err != nil {
			return err
		}
		if n > max {
			return fmt.Errorf("%d tags: %w", n, store.ErrLimit)
		}
		return nil
	})
}

// UntagResource implements store.Tags.
func (s *Store) UntagResource(ctx context.Context, r iot.Resource, keys []string) error {
	return s.write.do(ctx, func(tx txn) error {
		if err := resourceExists(ctx, tx, r, tx.d.forUpdate()); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.Exec(`DELETE FROM tags WHERE account_id = ? AND region = ? AND resource_type = ? AND resource_id = ? AND tag_key = ?`,
				r.Scope.AccountID, r.Scope.Region, r.Type, r.ID, k); err != nil {
				return err
			}
		}
		return nil
	})
}

func upsertTags(tx txn, r iot.Resource, tags []iot.Tag) error {
	for _, t := range tags {
		if _, err := tx.Exec(`INSERT INTO tags (account_id, region, resource_type, resource_id, tag_key, tag_value)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, region, resource_type, resource_id, tag_key)
			DO UPDATE SET tag_value = excluded.tag_value`,
			r.Scope.AccountID, r.Scope.Region, r.Type, r.ID, t.Key, t.Value); err != nil {
			return err
		}
	}
	return nil
}

func deleteAllTags(tx txn, r iot.Resource) error {
	_, err := tx.Exec(`DELETE FROM tags WHERE account_id = ? AND region = ? AND resource_type = ? AND resource_id = ?`,
		r.Scope.AccountID, r.Scope.Region, r.Type, r.ID)
	return err
}
