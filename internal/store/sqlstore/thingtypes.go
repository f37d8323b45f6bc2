package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// CreateThingType implements store.ThingTypes.
func (s *Store) CreateThingType(ctx context.Context, t *iot.ThingType, tags []iot.Tag) error {
	searchable, err := json.Marshal(t.SearchableAttributes)
	if err != nil {
		return err
	}
	return s.write.do(ctx, func(tx txn) error {
		res, err := tx.Exec(`INSERT INTO thing_types (account_id, region, type_name, type_id, description, searchable, deprecated_us, created_us)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (account_id, region, type_name) DO NOTHING`,
			t.Scope.AccountID, t.Scope.Region, t.Name, t.ID, t.Description, string(searchable), t.CreatedAt.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("thing type %s: %w", t.Name, store.ErrExists)
			}
			return err
		}
		return upsertTags(tx, iot.Resource{Scope: t.Scope, Type: iot.TypeThingType, ID: t.Name}, tags)
	})
}

const thingTypeColumns = `account_id, region, type_name, type_id, description, searchable, deprecated_us, created_us`

func scanThingType(r rowScanner) (*iot.ThingType, error) {
	var t iot.ThingType
	var searchable string
	var deprecated, created int64
	if err := r.Scan(&t.Scope.AccountID, &t.Scope.Region, &t.Name, &t.ID, &t.Description, &searchable, &deprecated, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(searchable), &t.SearchableAttributes); err != nil {
		return nil, fmt.Errorf("thing type %s: searchable attributes: %w", t.Name, err)
	}
	if deprecated != 0 {
		t.Deprecated, t.DeprecatedAt = true, time.UnixMicro(deprecated).UTC()
	}
	t.CreatedAt = time.UnixMicro(created).UTC()
	return &t, nil
}

// ThingType implements store.ThingTypes.
func (s *Store) ThingType(ctx context.Context, scope iot.Scope, name string) (*iot.ThingType, error) {
	t, err := scanThingType(s.read.QueryRowContext(ctx, `SELECT `+thingTypeColumns+` FROM thing_types WHERE account_id = ? AND region = ? AND type_name = ?`,
		scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thing type %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// ListThingTypes implements store.ThingTypes.
func (s *Store) ListThingTypes(ctx context.Context, scope iot.Scope, after string, limit int) ([]iot.ThingType, bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+thingTypeColumns+` FROM thing_types
		WHERE account_id = ? AND region = ? AND type_name > ? ORDER BY type_name LIMIT ?`, scope.AccountID, scope.Region, after, limit+1)
	types, err := scanAll(rows, err, scanThingType)
	return page(types, err, limit)
}

func lockThingType(tx txn, scope iot.Scope, name string) (*iot.ThingType, error) {
	t, err := scanThingType(tx.QueryRow(`SELECT `+thingTypeColumns+` FROM thing_types WHERE account_id = ? AND region = ? AND type_name = ?`+tx.d.forUpdate(),
		scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thing type %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// DeprecateThingType implements store.ThingTypes.
func (s *Store) DeprecateThingType(ctx context.Context, scope iot.Scope, name string, deprecate bool, at time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		t, err := lockThingType(tx, scope, name)
		if err != nil {
			return err
		}
		if deprecate && t.Deprecated {
			return nil // deprecated since then, not since now
		}
		var since int64
		if deprecate {
			since = at.UnixMicro()
		}
		_, err = tx.Exec(`UPDATE thing_types SET deprecated_us = ? WHERE account_id = ? AND region = ? AND type_name = ?`,
			since, scope.AccountID, scope.Region, name)
		return err
	})
}

// DeleteThingType implements store.ThingTypes. The type's row is locked
// and the things are counted in the same transaction; a thing created with
// the type on another replica a moment before, after its own check that
// the type exists, may keep the name of a deleted type.
func (s *Store) DeleteThingType(ctx context.Context, scope iot.Scope, name string, check func(*iot.ThingType) error) error {
	return s.write.do(ctx, func(tx txn) error {
		t, err := lockThingType(tx, scope, name)
		if err != nil {
			return err
		}
		if err := check(t); err != nil {
			return err
		}
		var used bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM things WHERE account_id = ? AND region = ? AND thing_type = ?)`,
			scope.AccountID, scope.Region, name).Scan(&used); err != nil {
			return err
		}
		if used {
			return fmt.Errorf("thing type %s has things: %w", name, store.ErrAttached)
		}
		if _, err := tx.Exec(`DELETE FROM thing_types WHERE account_id = ? AND region = ? AND type_name = ?`, scope.AccountID, scope.Region, name); err != nil {
			return err
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypeThingType, ID: name})
	})
}
