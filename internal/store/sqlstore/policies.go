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

// CreatePolicy implements store.Policies.
func (s *Store) CreatePolicy(ctx context.Context, p *iot.Policy, tags []iot.Tag) error {
	return s.write.do(ctx, func(tx txn) error {
		created, err := insertPolicy(tx, p)
		if err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("policy %s: %w", p.Name, store.ErrExists)
		}
		return upsertTags(tx, iot.Resource{Scope: p.Scope, Type: iot.TypePolicy, ID: p.Name}, tags)
	})
}

// insertPolicy stores a policy with its first version unless the scope has
// one of that name, and reports whether it did. A replica inserting the
// same name at the same moment waits for this one and inserts nothing.
func insertPolicy(tx txn, p *iot.Policy) (bool, error) {
	res, err := tx.Exec(`INSERT INTO policies (account_id, region, policy_name, default_version, next_version, created_us, modified_us, generation_id)
		VALUES (?, ?, ?, 1, 2, ?, ?, ?) ON CONFLICT (account_id, region, policy_name) DO NOTHING`,
		p.Scope.AccountID, p.Scope.Region, p.Name, p.CreatedAt.UnixMicro(), p.LastModifiedAt.UnixMicro(), p.GenerationID)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.Exec(`INSERT INTO policy_versions (account_id, region, policy_name, version_id, document, created_us) VALUES (?, ?, ?, 1, ?, ?)`,
		p.Scope.AccountID, p.Scope.Region, p.Name, p.DefaultDocument, p.CreatedAt.UnixMicro()); err != nil {
		return false, err
	}
	p.DefaultVersionID = 1
	return true, nil
}

const policyColumns = `p.account_id, p.region, p.policy_name, p.default_version, p.created_us, p.modified_us, p.generation_id`

func scanPolicy(r rowScanner, extra ...any) (*iot.Policy, error) {
	var p iot.Policy
	var created, modified int64
	dest := append([]any{&p.Scope.AccountID, &p.Scope.Region, &p.Name, &p.DefaultVersionID, &created, &modified, &p.GenerationID}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	p.CreatedAt, p.LastModifiedAt = time.UnixMicro(created).UTC(), time.UnixMicro(modified).UTC()
	return &p, nil
}

// Policy implements store.Policies.
func (s *Store) Policy(ctx context.Context, scope iot.Scope, name string) (*iot.Policy, error) {
	var document string
	p, err := scanPolicy(s.read.QueryRowContext(ctx, `SELECT `+policyColumns+`, v.document FROM policies p
		JOIN policy_versions v ON v.account_id = p.account_id AND v.region = p.region AND v.policy_name = p.policy_name AND v.version_id = p.default_version
		WHERE p.account_id = ? AND p.region = ? AND p.policy_name = ?`, scope.AccountID, scope.Region, name), &document)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	p.DefaultDocument = document
	return p, nil
}

// ListPolicies implements store.Policies.
func (s *Store) ListPolicies(ctx context.Context, scope iot.Scope, after string, ascending bool, limit int) ([]iot.Policy, bool, error) {
	cmp, order := ">", "ASC"
	if !ascending {
		cmp, order = "<", "DESC"
	}
	query := `SELECT ` + policyColumns + ` FROM policies p WHERE p.account_id = ? AND p.region = ?`
	args := []any{scope.AccountID, scope.Region}
	if after != "" {
		query += ` AND p.policy_name ` + cmp + ` ?`
		args = append(args, after)
	}
	query += ` ORDER BY p.policy_name ` + order + ` LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, query, args...)
	policies, err := scanAll(rows, err, func(r rowScanner) (*iot.Policy, error) { return scanPolicy(r) })
	return page(policies, err, limit)
}

func lockPolicy(tx txn, scope iot.Scope, name string) (*iot.Policy, error) {
	p, err := scanPolicy(tx.QueryRow(`SELECT `+policyColumns+` FROM policies p
		WHERE p.account_id = ? AND p.region = ? AND p.policy_name = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy %s: %w", name, store.ErrNotFound)
	}
	return p, err
}

func countVersions(tx txn, scope iot.Scope, name string) (int, error) {
	var n int
	err := tx.QueryRow(`SELECT COUNT(*) FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ?`,
		scope.AccountID, scope.Region, name).Scan(&n)
	return n, err
}

// DeletePolicy implements store.Policies.
func (s *Store) DeletePolicy(ctx context.Context, scope iot.Scope, name string, check func(*iot.Policy, int) error) error {
	return s.write.do(ctx, func(tx txn) error {
		p, err := lockPolicy(tx, scope, name)
		if err != nil {
			return err
		}
		n, err := countVersions(tx, scope, name)
		if err != nil {
			return err
		}
		if err := check(p, n); err != nil {
			return err
		}
		var attached bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM policy_targets WHERE account_id = ? AND region = ? AND policy_name = ?)`,
			scope.AccountID, scope.Region, name).Scan(&attached); err != nil {
			return err
		}
		if attached {
			return fmt.Errorf("policy %s: %w", name, store.ErrAttached)
		}
		for _, q := range []string{
			`DELETE FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ?`,
			`DELETE FROM policies WHERE account_id = ? AND region = ? AND policy_name = ?`,
		} {
			if _, err := tx.Exec(q, scope.AccountID, scope.Region, name); err != nil {
				return err
			}
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypePolicy, ID: name})
	})
}

// CreatePolicyVersion implements store.Policies. The policy's row is locked
// first, so replicas adding versions at once take turns and the count
// holds.
func (s *Store) CreatePolicyVersion(ctx context.Context, scope iot.Scope, name, document string, change store.PolicyChange, max int) (*iot.PolicyVersion, error) {
	now := change.At
	var v *iot.PolicyVersion
	err := s.write.do(ctx, func(tx txn) error {
		if _, err := lockPolicy(tx, scope, name); err != nil {
			return err
		}
		n, err := countVersions(tx, scope, name)
		if err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("policy %s has %d versions: %w", name, n, store.ErrLimit)
		}
		var id int64
		if err := tx.QueryRow(`SELECT next_version FROM policies WHERE account_id = ? AND region = ? AND policy_name = ?`,
			scope.AccountID, scope.Region, name).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO policy_versions (account_id, region, policy_name, version_id, document, created_us) VALUES (?, ?, ?, ?, ?, ?)`,
			scope.AccountID, scope.Region, name, id, document, now.UnixMicro()); err != nil {
			return err
		}
		update := `UPDATE policies SET next_version = next_version + 1`
		args := []any{}
		if change.SetAsDefault {
			update += `, default_version = ?, modified_us = ?, generation_id = ?`
			args = append(args, id, now.UnixMicro(), change.GenerationID)
		}
		args = append(args, scope.AccountID, scope.Region, name)
		if _, err := tx.Exec(update+` WHERE account_id = ? AND region = ? AND policy_name = ?`, args...); err != nil {
			return err
		}
		v = &iot.PolicyVersion{Scope: scope, PolicyName: name, ID: id, Document: document, IsDefault: change.SetAsDefault, CreatedAt: now.UTC()}
		if !change.SetAsDefault {
			return nil
		}
		return recordChange(tx, scope, store.ChangePolicy, name, now)
	})
	return v, err
}

// PolicyVersion implements store.Policies.
func (s *Store) PolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.PolicyVersion, error) {
	v := iot.PolicyVersion{Scope: scope, PolicyName: name, ID: id}
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT v.document, v.created_us, p.default_version = v.version_id FROM policy_versions v
		JOIN policies p ON p.account_id = v.account_id AND p.region = v.region AND p.policy_name = v.policy_name
		WHERE v.account_id = ? AND v.region = ? AND v.policy_name = ? AND v.version_id = ?`,
		scope.AccountID, scope.Region, name, id).Scan(&v.Document, &created, &v.IsDefault)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy %s version %d: %w", name, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v.CreatedAt = time.UnixMicro(created).UTC()
	return &v, nil
}

// ListPolicyVersions implements store.Policies.
func (s *Store) ListPolicyVersions(ctx context.Context, scope iot.Scope, name string) ([]iot.PolicyVersion, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT v.version_id, v.document, v.created_us, p.default_version = v.version_id FROM policies p
		JOIN policy_versions v ON v.account_id = p.account_id AND v.region = p.region AND v.policy_name = p.policy_name
		WHERE p.account_id = ? AND p.region = ? AND p.policy_name = ? ORDER BY v.version_id DESC`, scope.AccountID, scope.Region, name)
	versions, err := scanAll(rows, err, func(r rowScanner) (*iot.PolicyVersion, error) {
		v := iot.PolicyVersion{Scope: scope, PolicyName: name}
		var created int64
		if err := r.Scan(&v.ID, &v.Document, &created, &v.IsDefault); err != nil {
			return nil, err
		}
		v.CreatedAt = time.UnixMicro(created).UTC()
		return &v, nil
	})
	if err == nil && len(versions) == 0 {
		return nil, fmt.Errorf("policy %s: %w", name, store.ErrNotFound)
	}
	return versions, err
}

// SetDefaultPolicyVersion implements store.Policies.
func (s *Store) SetDefaultPolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64, change store.PolicyChange) error {
	return s.write.do(ctx, func(tx txn) error {
		if _, err := lockPolicy(tx, scope, name); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ? AND version_id = ?`,
			scope.AccountID, scope.Region, name, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("policy %s version %d: %w", name, id, store.ErrNotFound)
		}
		if _, err := tx.Exec(`UPDATE policies SET default_version = ?, modified_us = ?, generation_id = ?
			WHERE account_id = ? AND region = ? AND policy_name = ?`,
			id, change.At.UnixMicro(), change.GenerationID, scope.AccountID, scope.Region, name); err != nil {
			return err
		}
		return recordChange(tx, scope, store.ChangePolicy, name, change.At)
	})
}

// DeletePolicyVersion implements store.Policies.
func (s *Store) DeletePolicyVersion(ctx context.Context, scope iot.Scope, name string, id int64, check func(*iot.PolicyVersion) error) error {
	return s.write.do(ctx, func(tx txn) error {
		p, err := lockPolicy(tx, scope, name)
		if err != nil {
			return err
		}
		v := iot.PolicyVersion{Scope: scope, PolicyName: name, ID: id, IsDefault: p.DefaultVersionID == id}
		var created int64
		err = tx.QueryRow(`SELECT document, created_us FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ? AND version_id = ?`,
			scope.AccountID, scope.Region, name, id).Scan(&v.Document, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("policy %s version %d: %w", name, id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		v.CreatedAt = time.UnixMicro(created).UTC()
		if err := check(&v); err != nil {
			return err
		}
		_, err = tx.Exec(`DELETE FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ? AND version_id = ?`,
			scope.AccountID, scope.Region, name, id)
		return err
	})
}

// AttachPolicyToCertificate implements store.Policies. The policy's row and
// the certificate's are locked, so neither is deleted under the new
// attachment and replicas attaching to one certificate take turns.
func (s *Store) AttachPolicyToCertificate(ctx context.Context, scope iot.Scope, policy, certificateID string, max int, now time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		if _, err := lockPolicy(tx, scope, policy); err != nil {
			return err
		}
		c, err := selectCertificateForUpdate(tx, scope, certificateID)
		if err != nil {
			return err
		}
		return attachPolicy(tx, policy, c, max, now)
	})
}

// attachPolicy attaches a policy to a certificate, both locked by the
// caller, unless it is attached already.
func attachPolicy(tx txn, policy string, c *iot.Certificate, max int, now time.Time) error {
	scope, target := c.Scope, c.ARN()
	var n int
	var already bool
	if err := tx.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN policy_name = ? THEN 1 ELSE 0 END), 0) > 0 FROM policy_targets
		WHERE account_id = ? AND region = ? AND target = ?`, policy, scope.AccountID, scope.Region, target).Scan(&n, &already); err != nil {
		return err
	}
	if already {
		return nil
	}
	if n >= max {
		return fmt.Errorf("certificate %s has %d policies: %w", c.ID, n, store.ErrLimit)
	}
	if _, err := tx.Exec(`INSERT INTO policy_targets (account_id, region, policy_name, target, created_us) VALUES (?, ?, ?, ?, ?)`,
		scope.AccountID, scope.Region, policy, target, now.UnixMicro()); err != nil {
		return err
	}
	return recordChange(tx, scope, store.ChangePrincipal, target, now)
}

// DetachPolicy implements store.Policies.
func (s *Store) DetachPolicy(ctx context.Context, scope iot.Scope, policy, target string, at time.Time) error {
	return s.write.do(ctx, func(tx txn) error {
		if _, err := lockPolicy(tx, scope, policy); err != nil {
			return err
		}
		res, err := tx.Exec(`DELETE FROM policy_targets WHERE account_id = ? AND region = ? AND policy_name = ? AND target = ?`,
			scope.AccountID, scope.Region, policy, target)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return recordChange(tx, scope, store.ChangePrincipal, target, at)
	})
}

// ListAttachedPolicies implements store.Policies.
func (s *Store) ListAttachedPolicies(ctx context.Context, scope iot.Scope, target, after string, limit int) ([]iot.Policy, bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+policyColumns+` FROM policy_targets t
		JOIN policies p ON p.account_id = t.account_id AND p.region = t.region AND p.policy_name = t.policy_name
		WHERE t.account_id = ? AND t.region = ? AND t.target = ? AND t.policy_name > ? ORDER BY t.policy_name LIMIT ?`,
		scope.AccountID, scope.Region, target, after, limit+1)
	policies, err := scanAll(rows, err, func(r rowScanner) (*iot.Policy, error) { return scanPolicy(r) })
	return page(policies, err, limit)
}

// ListPolicyTargets implements store.Policies.
func (s *Store) ListPolicyTargets(ctx context.Context, scope iot.Scope, policy, after string, limit int) ([]string, bool, error) {
	var exists bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM policies WHERE account_id = ? AND region = ? AND policy_name = ?)`,
		scope.AccountID, scope.Region, policy).Scan(&exists); err != nil {
		return nil, false, err
	}
	if !exists {
		return nil, false, fmt.Errorf("policy %s: %w", policy, store.ErrNotFound)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT target FROM policy_targets WHERE account_id = ? AND region = ? AND policy_name = ? AND target > ?
		ORDER BY target LIMIT ?`, scope.AccountID, scope.Region, policy, after, limit+1)
	targets, err := scanAll(rows, err, func(r rowScanner) (*string, error) {
		var t string
		return &t, r.Scan(&t)
	})
	return page(targets, err, limit)
}
