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

const thingColumns = `t.account_id, t.region, t.thing_name, t.thing_id, t.thing_type, t.attributes, t.version, t.created_us, t.modified_us`

func scanThing(r rowScanner) (*iot.Thing, error) {
	var t iot.Thing
	var attributes string
	var created, modified int64
	if err := r.Scan(&t.Scope.AccountID, &t.Scope.Region, &t.Name, &t.ID, &t.TypeName, &attributes, &t.Version, &created, &modified); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attributes), &t.Attributes); err != nil {
		return nil, fmt.Errorf("thing %s: attributes: %w", t.Name, err)
	}
	t.CreatedAt, t.ModifiedAt = time.UnixMicro(created).UTC(), time.UnixMicro(modified).UTC()
	return &t, nil
}

// attributesJSON is the thing's attributes as stored: never null, so that
// a thing without attributes reads back with an empty map.
func attributesJSON(t *iot.Thing) string {
	if len(t.Attributes) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(t.Attributes)
	return string(b)
}

// writeAttributes replaces the thing's rows in thing_attributes; a new
// thing has none to delete.
func writeAttributes(tx txn, t *iot.Thing, isNew bool) error {
	if !isNew {
		if _, err := tx.Exec(`DELETE FROM thing_attributes WHERE account_id = ? AND region = ? AND thing_name = ?`,
			t.Scope.AccountID, t.Scope.Region, t.Name); err != nil {
			return err
		}
	}
	for k, v := range t.Attributes {
		if _, err := tx.Exec(`INSERT INTO thing_attributes (account_id, region, thing_name, name, value) VALUES (?, ?, ?, ?, ?)`,
			t.Scope.AccountID, t.Scope.Region, t.Name, k, v); err != nil {
			return err
		}
	}
	return nil
}

// CreateThing implements store.Things.
func (s *Store) CreateThing(ctx context.Context, t *iot.Thing, tags []iot.Tag) error {
	return s.write.do(ctx, func(tx txn) error {
		created, err := insertThing(tx, t)
		if err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("thing %s: %w", t.Name, store.ErrExists)
		}
		return upsertTags(tx, iot.Resource{Scope: t.Scope, Type: iot.TypeThing, ID: t.Name}, tags)
	})
}

// insertThing stores a thing unless the scope has one of that name, and
// reports whether it did. A replica inserting the same name at the same
// moment waits for this one and inserts nothing.
func insertThing(tx txn, t *iot.Thing) (bool, error) {
	res, err := tx.Exec(`INSERT INTO things (account_id, region, thing_name, thing_id, thing_type, attributes, version, created_us, modified_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, region, thing_name) DO NOTHING`,
		t.Scope.AccountID, t.Scope.Region, t.Name, t.ID, t.TypeName, attributesJSON(t), t.Version, t.CreatedAt.UnixMicro(), t.ModifiedAt.UnixMicro())
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	return true, writeAttributes(tx, t, true)
}

// Thing implements store.Things.
func (s *Store) Thing(ctx context.Context, scope iot.Scope, name string) (*iot.Thing, error) {
	t, err := scanThing(s.read.QueryRowContext(ctx, `SELECT `+thingColumns+` FROM things t WHERE t.account_id = ? AND t.region = ? AND t.thing_name = ?`,
		scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thing %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// ListThings implements store.Things. With an attribute it reads the
// attribute index, which holds each value with the things that have it.
func (s *Store) ListThings(ctx context.Context, scope iot.Scope, f store.ThingFilter, after string, limit int) ([]iot.Thing, bool, error) {
	query := `SELECT ` + thingColumns + ` FROM things t WHERE t.account_id = ? AND t.region = ? AND t.thing_name > ?`
	args := []any{scope.AccountID, scope.Region, after}
	if f.AttributeName != "" {
		query = `SELECT ` + thingColumns + ` FROM thing_attributes a
			JOIN things t ON t.account_id = a.account_id AND t.region = a.region AND t.thing_name = a.thing_name
			WHERE a.account_id = ? AND a.region = ? AND a.name = ? AND a.thing_name > ?`
		args = []any{scope.AccountID, scope.Region, f.AttributeName, after}
		switch {
		case f.AttributeValue == "":
		case f.ValuePrefix:
			// A range on the index: values sort bytewise, and the last
			// byte of a value's pattern is never 0xff.
			next := []byte(f.AttributeValue)
			next[len(next)-1]++
			query += ` AND a.value >= ? AND a.value < ?`
			args = append(args, f.AttributeValue, string(next))
		default:
			query += ` AND a.value = ?`
			args = append(args, f.AttributeValue)
		}
	}
	if f.TypeName != "" {
		query += ` AND t.thing_type = ?`
		args = append(args, f.TypeName)
	}
	// Ordered by the column of the table the rows are read from, so that an
	// exact value reads the index (name, value, thing) in order.
	if f.AttributeName != "" {
		query += ` ORDER BY a.thing_name LIMIT ?`
	} else {
		query += ` ORDER BY t.thing_name LIMIT ?`
	}
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, query, args...)
	things, err := scanAll(rows, err, scanThing)
	return page(things, err, limit)
}

func lockThing(tx txn, scope iot.Scope, name string) (*iot.Thing, error) {
	t, err := scanThing(tx.QueryRow(`SELECT `+thingColumns+` FROM things t WHERE t.account_id = ? AND t.region = ? AND t.thing_name = ?`+tx.d.forUpdate(),
		scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thing %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// UpdateThing implements store.Things.
func (s *Store) UpdateThing(ctx context.Context, scope iot.Scope, name string, at time.Time, update func(*iot.Thing) error) (*iot.Thing, error) {
	var out *iot.Thing
	err := s.write.do(ctx, func(tx txn) error {
		t, err := lockThing(tx, scope, name)
		if err != nil {
			return err
		}
		if err := update(t); err != nil {
			return err
		}
		out = t
		return writeThing(tx, t, at)
	})
	return out, err
}

// writeThing writes a changed thing, locked by the caller, as its next
// version, and records the change for the devices it concerns.
func writeThing(tx txn, t *iot.Thing, at time.Time) error {
	t.Version++
	t.ModifiedAt = at.UTC()
	if _, err := tx.Exec(`UPDATE things SET thing_type = ?, attributes = ?, version = ?, modified_us = ?
		WHERE account_id = ? AND region = ? AND thing_name = ?`,
		t.TypeName, attributesJSON(t), t.Version, t.ModifiedAt.UnixMicro(), t.Scope.AccountID, t.Scope.Region, t.Name); err != nil {
		return err
	}
	if err := writeAttributes(tx, t, false); err != nil {
		return err
	}
	return recordChange(tx, t.Scope, store.ChangeThing, t.Name, at)
}

// DeleteThing implements store.Things.
func (s *Store) DeleteThing(ctx context.Context, scope iot.Scope, name string, check func(*iot.Thing) error) error {
	return s.write.do(ctx, func(tx txn) error {
		t, err := lockThing(tx, scope, name)
		if err != nil {
			return err
		}
		if err := check(t); err != nil {
			return err
		}
		var attached bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM thing_principals WHERE account_id = ? AND region = ? AND thing_name = ?)`,
			scope.AccountID, scope.Region, name).Scan(&attached); err != nil {
			return err
		}
		if attached {
			return fmt.Errorf("thing %s: %w", name, store.ErrThingAttached)
		}
		for _, q := range []string{
			`DELETE FROM thing_attributes WHERE account_id = ? AND region = ? AND thing_name = ?`,
			`DELETE FROM things WHERE account_id = ? AND region = ? AND thing_name = ?`,
		} {
			if _, err := tx.Exec(q, scope.AccountID, scope.Region, name); err != nil {
				return err
			}
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypeThing, ID: name})
	})
}

// AttachThingPrincipal implements store.Things. The certificate's row and
// the thing's are locked, in the order Provision locks them, so neither is
// deleted under the attachment and replicas attaching one certificate take
// turns (which keeps exclusive attachments exclusive).
func (s *Store) AttachThingPrincipal(ctx context.Context, scope iot.Scope, thing, certificateID string, exclusive bool, at time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		c, err := selectCertificateForUpdate(tx, scope, certificateID)
		if err != nil {
			return err
		}
		if _, err := lockThing(tx, scope, thing); err != nil {
			return err
		}
		return attachThingPrincipal(tx, thing, c, exclusive, at)
	})
}

// attachThingPrincipal attaches a certificate to a thing, both locked by
// the caller.
func attachThingPrincipal(tx txn, thing string, c *iot.Certificate, exclusive bool, at time.Time) error {
	scope, certificateID, principal := c.Scope, c.ID, c.ARN()
	rows, err := tx.Query(`SELECT thing_name, exclusive FROM thing_principals WHERE account_id = ? AND region = ? AND principal = ?`,
		scope.AccountID, scope.Region, principal)
	current, err := scanAll(rows, err, func(r rowScanner) (*iot.ThingPrincipal, error) {
		var p iot.ThingPrincipal
		return &p, r.Scan(&p.ThingName, &p.Exclusive)
	})
	if err != nil {
		return err
	}
	already := false
	for _, p := range current {
		switch {
		case p.ThingName == thing:
			already = true
			if p.Exclusive || !exclusive {
				return nil
			}
		case p.Exclusive || exclusive:
			return fmt.Errorf("certificate %s is attached to thing %s: %w", certificateID, p.ThingName, store.ErrExclusive)
		}
	}
	if already {
		_, err = tx.Exec(`UPDATE thing_principals SET exclusive = ? WHERE account_id = ? AND region = ? AND thing_name = ? AND principal = ?`,
			true, scope.AccountID, scope.Region, thing, principal)
	} else {
		_, err = tx.Exec(`INSERT INTO thing_principals (account_id, region, thing_name, principal, exclusive, created_us) VALUES (?, ?, ?, ?, ?, ?)`,
			scope.AccountID, scope.Region, thing, principal, exclusive, at.UnixMicro())
	}
	if err != nil {
		return err
	}
	return recordChange(tx, scope, store.ChangePrincipal, principal, at)
}

// DetachThingPrincipal implements store.Things.
func (s *Store) DetachThingPrincipal(ctx context.Context, scope iot.Scope, thing, principal string, at time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		if _, err := lockThing(tx, scope, thing); err != nil {
			return err
		}
		res, err := tx.Exec(`DELETE FROM thing_principals WHERE account_id = ? AND region = ? AND thing_name = ? AND principal = ?`,
			scope.AccountID, scope.Region, thing, principal)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return recordChange(tx, scope, store.ChangePrincipal, principal, at)
	})
}

func scanThingPrincipal(r rowScanner) (*iot.ThingPrincipal, error) {
	var p iot.ThingPrincipal
	return &p, r.Scan(&p.ThingName, &p.Principal, &p.Exclusive)
}

// ListThingPrincipals implements store.Things.
func (s *Store) ListThingPrincipals(ctx context.Context, scope iot.Scope, thing string, only store.Attachments, after string, limit int) ([]iot.ThingPrincipal, bool, error) {
	var exists bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM things WHERE account_id = ? AND region = ? AND thing_name = ?)`,
		scope.AccountID, scope.Region, thing).Scan(&exists); err != nil {
		return nil, false, err
	}
	if !exists {
		return nil, false, fmt.Errorf("thing %s: %w", thing, store.ErrNotFound)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT thing_name, principal, exclusive FROM thing_principals
		WHERE account_id = ? AND region = ? AND thing_name = ? AND principal > ?`+attachmentClause(only)+` ORDER BY principal LIMIT ?`,
		scope.AccountID, scope.Region, thing, after, limit+1)
	principals, err := scanAll(rows, err, scanThingPrincipal)
	return page(principals, err, limit)
}

// ListPrincipalThings implements store.Things.
func (s *Store) ListPrincipalThings(ctx context.Context, scope iot.Scope, principal string, only store.Attachments, after string, limit int) ([]iot.ThingPrincipal, bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT thing_name, principal, exclusive FROM thing_principals
		WHERE account_id = ? AND region = ? AND principal = ? AND thing_name > ?`+attachmentClause(only)+` ORDER BY thing_name LIMIT ?`,
		scope.AccountID, scope.Region, principal, after, limit+1)
	principals, err := scanAll(rows, err, scanThingPrincipal)
	return page(principals, err, limit)
}

// attachmentClause selects rows by how the principal is attached; the
// clause is a constant per selection, so each is one prepared statement.
func attachmentClause(only store.Attachments) string {
	switch only {
	case store.ExclusiveOnly:
		return ` AND exclusive`
	case store.NonExclusiveOnly:
		return ` AND NOT exclusive`
	}
	return ""
}

// The two reads of ConnectionGrants: the default versions of a principal's
// policies, and its thing (the one named by the client ID, else the one it
// is exclusively attached to).
const (
	grantPoliciesQuery = `SELECT ` + policyColumns + `, v.document FROM policy_targets pt
		JOIN policies p ON p.account_id = pt.account_id AND p.region = pt.region AND p.policy_name = pt.policy_name
		JOIN policy_versions v ON v.account_id = p.account_id AND v.region = p.region AND v.policy_name = p.policy_name AND v.version_id = p.default_version
		WHERE pt.account_id = ? AND pt.region = ? AND pt.target = ? ORDER BY pt.policy_name`
	grantThingQuery = `SELECT ` + thingColumns + ` FROM thing_principals tp
		JOIN things t ON t.account_id = tp.account_id AND t.region = tp.region AND t.thing_name = tp.thing_name
		WHERE tp.account_id = ? AND tp.region = ? AND tp.principal = ? AND (tp.thing_name = ? OR tp.exclusive)
		ORDER BY CASE WHEN tp.thing_name = ? THEN 0 ELSE 1 END LIMIT 1`
)

// ConnectionGrants implements store.Things. It reads in one transaction,
// so the policies and the thing are of one moment.
func (s *Store) ConnectionGrants(ctx context.Context, scope iot.Scope, principal, clientID string) ([]iot.Policy, *iot.Thing, error) {
	var opts *sql.TxOptions
	if s.d.postgres {
		// One snapshot for both queries; SQLite's read transaction is one.
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := s.read.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	// The reader's prepared statements: SQLite plans both queries anew
	// otherwise, which was a sixth of a provisioned device's server CPU
	// and a quarter of a connect's. A transaction only looks them up and
	// records what it missed; as the writer does between transactions,
	// what was missed is prepared once the transaction has let its
	// connection go (deferred calls run last first).
	defer s.read.stmts.preparePending()
	defer tx.Rollback()
	q := txn{tx: tx, d: s.read.d, ctx: ctx, stmts: s.read.stmts}
	rows, err := q.Query(grantPoliciesQuery, scope.AccountID, scope.Region, principal)
	policies, err := scanAll(rows, err, func(r rowScanner) (*iot.Policy, error) {
		var document string
		p, err := scanPolicy(r, &document)
		if err == nil {
			p.DefaultDocument = document
		}
		return p, err
	})
	if err != nil {
		return nil, nil, err
	}
	thing, err := scanThing(q.QueryRow(grantThingQuery, scope.AccountID, scope.Region, principal, clientID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return policies, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return policies, thing, nil
}
