package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/store"
)

// CreateProvisioningTemplate implements store.ProvisioningTemplates. The
// count and the insert are one write, so the limit holds; on PostgreSQL two
// replicas creating at once may both see max-1, which lets one template
// past the limit: it bounds an account's use, not an invariant.
func (s *Store) CreateProvisioningTemplate(ctx context.Context, t *iot.ProvisioningTemplate, tags []iot.Tag, max int) error {
	return s.write.do(ctx, func(tx txn) error {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM provisioning_templates WHERE account_id = ? AND region = ?`,
			t.Scope.AccountID, t.Scope.Region).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("the scope has %d provisioning templates: %w", n, store.ErrLimit)
		}
		hook := t.Hook
		if hook == nil {
			hook = &iot.PreProvisioningHook{}
		}
		res, err := tx.Exec(`INSERT INTO provisioning_templates (account_id, region, template_name, description, template_type, enabled,
			role_arn, hook_target_arn, hook_payload, default_version, next_version, created_us, modified_us)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 2, ?, ?) ON CONFLICT (account_id, region, template_name) DO NOTHING`,
			t.Scope.AccountID, t.Scope.Region, t.Name, t.Description, string(t.Type), t.Enabled,
			t.ProvisioningRoleARN, hook.TargetARN, hook.PayloadVersion, t.CreatedAt.UnixMicro(), t.ModifiedAt.UnixMicro())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("provisioning template %s: %w", t.Name, store.ErrExists)
			}
			return err
		}
		if _, err := tx.Exec(`INSERT INTO provisioning_template_versions (account_id, region, template_name, version_id, body, created_us)
			VALUES (?, ?, ?, 1, ?, ?)`, t.Scope.AccountID, t.Scope.Region, t.Name, t.Body, t.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		t.DefaultVersionID = 1
		return upsertTags(tx, iot.Resource{Scope: t.Scope, Type: iot.TypeProvisioningTemplate, ID: t.Name}, tags)
	})
}

const templateColumns = `t.account_id, t.region, t.template_name, t.description, t.template_type, t.enabled, t.role_arn,
	t.hook_target_arn, t.hook_payload, t.default_version, t.created_us, t.modified_us`

func scanTemplate(r rowScanner, extra ...any) (*iot.ProvisioningTemplate, error) {
	var t iot.ProvisioningTemplate
	var typ string
	var hook iot.PreProvisioningHook
	var created, modified int64
	dest := append([]any{&t.Scope.AccountID, &t.Scope.Region, &t.Name, &t.Description, &typ, &t.Enabled, &t.ProvisioningRoleARN,
		&hook.TargetARN, &hook.PayloadVersion, &t.DefaultVersionID, &created, &modified}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	t.Type = iot.TemplateType(typ)
	if hook.TargetARN != "" {
		t.Hook = &hook
	}
	t.CreatedAt, t.ModifiedAt = time.UnixMicro(created).UTC(), time.UnixMicro(modified).UTC()
	return &t, nil
}

// ProvisioningTemplate implements store.ProvisioningTemplates.
func (s *Store) ProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error) {
	var body string
	t, err := scanTemplate(s.read.QueryRowContext(ctx, `SELECT `+templateColumns+`, v.body FROM provisioning_templates t
		JOIN provisioning_template_versions v ON v.account_id = t.account_id AND v.region = t.region
			AND v.template_name = t.template_name AND v.version_id = t.default_version
		WHERE t.account_id = ? AND t.region = ? AND t.template_name = ?`, scope.AccountID, scope.Region, name), &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provisioning template %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	t.Body = body
	return t, nil
}

// ListProvisioningTemplates implements store.ProvisioningTemplates.
func (s *Store) ListProvisioningTemplates(ctx context.Context, scope iot.Scope, after string, limit int) ([]iot.ProvisioningTemplate, bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+templateColumns+` FROM provisioning_templates t
		WHERE t.account_id = ? AND t.region = ? AND t.template_name > ? ORDER BY t.template_name LIMIT ?`,
		scope.AccountID, scope.Region, after, limit+1)
	templates, err := scanAll(rows, err, func(r rowScanner) (*iot.ProvisioningTemplate, error) { return scanTemplate(r) })
	return page(templates, err, limit)
}

func lockTemplate(tx txn, scope iot.Scope, name string) (*iot.ProvisioningTemplate, error) {
	t, err := scanTemplate(tx.QueryRow(`SELECT `+templateColumns+` FROM provisioning_templates t
		WHERE t.account_id = ? AND t.region = ? AND t.template_name = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provisioning template %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

func templateVersionExists(tx txn, scope iot.Scope, name string, id int64) (bool, error) {
	var exists bool
	err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM provisioning_template_versions
		WHERE account_id = ? AND region = ? AND template_name = ? AND version_id = ?)`, scope.AccountID, scope.Region, name, id).Scan(&exists)
	return exists, err
}

// UpdateProvisioningTemplate implements store.ProvisioningTemplates.
func (s *Store) UpdateProvisioningTemplate(ctx context.Context, scope iot.Scope, name string, at time.Time, change func(*iot.ProvisioningTemplate) error) (*iot.ProvisioningTemplate, error) {
	var out *iot.ProvisioningTemplate
	err := s.write.do(ctx, func(tx txn) error {
		t, err := lockTemplate(tx, scope, name)
		if err != nil {
			return err
		}
		was := t.DefaultVersionID
		if err := change(t); err != nil {
			return err
		}
		if t.DefaultVersionID != was {
			exists, err := templateVersionExists(tx, scope, name, t.DefaultVersionID)
			if err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("provisioning template %s version %d: %w", name, t.DefaultVersionID, store.ErrNotFound)
			}
		}
		hook := t.Hook
		if hook == nil {
			hook = &iot.PreProvisioningHook{}
		}
		t.ModifiedAt = at.UTC()
		if _, err := tx.Exec(`UPDATE provisioning_templates SET description = ?, enabled = ?, role_arn = ?, hook_target_arn = ?,
			hook_payload = ?, default_version = ?, modified_us = ? WHERE account_id = ? AND region = ? AND template_name = ?`,
			t.Description, t.Enabled, t.ProvisioningRoleARN, hook.TargetARN, hook.PayloadVersion, t.DefaultVersionID,
			t.ModifiedAt.UnixMicro(), scope.AccountID, scope.Region, name); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// DeleteProvisioningTemplate implements store.ProvisioningTemplates. The
// template's row is locked first and the CA check runs in the same
// transaction. A CA's registration config checked a moment before on
// another replica may still come to name the deleted template; its devices
// are then registered just in time, without the template (see the
// registry's JITP).
func (s *Store) DeleteProvisioningTemplate(ctx context.Context, scope iot.Scope, name string) error {
	return s.write.do(ctx, func(tx txn) error {
		if _, err := lockTemplate(tx, scope, name); err != nil {
			return err
		}
		var named bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM ca_certificates WHERE account_id = ? AND region = ? AND template_name = ?)`,
			scope.AccountID, scope.Region, name).Scan(&named); err != nil {
			return err
		}
		if named {
			return fmt.Errorf("provisioning template %s is a CA's registration template: %w", name, store.ErrAttached)
		}
		for _, q := range []string{
			`DELETE FROM provisioning_template_versions WHERE account_id = ? AND region = ? AND template_name = ?`,
			`DELETE FROM provisioning_templates WHERE account_id = ? AND region = ? AND template_name = ?`,
		} {
			if _, err := tx.Exec(q, scope.AccountID, scope.Region, name); err != nil {
				return err
			}
		}
		return deleteAllTags(tx, iot.Resource{Scope: scope, Type: iot.TypeProvisioningTemplate, ID: name})
	})
}

// CreateProvisioningTemplateVersion implements store.ProvisioningTemplates.
// The template's row is locked first, so replicas adding versions at once
// take turns and the count holds.
func (s *Store) CreateProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name, body string, setAsDefault bool, at time.Time, max int) (*iot.ProvisioningTemplateVersion, error) {
	var v *iot.ProvisioningTemplateVersion
	err := s.write.do(ctx, func(tx txn) error {
		if _, err := lockTemplate(tx, scope, name); err != nil {
			return err
		}
		var n int
		var id int64
		if err := tx.QueryRow(`SELECT (SELECT COUNT(*) FROM provisioning_template_versions WHERE account_id = ? AND region = ? AND template_name = ?),
			next_version FROM provisioning_templates WHERE account_id = ? AND region = ? AND template_name = ?`,
			scope.AccountID, scope.Region, name, scope.AccountID, scope.Region, name).Scan(&n, &id); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("provisioning template %s has %d versions: %w", name, n, store.ErrLimit)
		}
		if _, err := tx.Exec(`INSERT INTO provisioning_template_versions (account_id, region, template_name, version_id, body, created_us)
			VALUES (?, ?, ?, ?, ?, ?)`, scope.AccountID, scope.Region, name, id, body, at.UnixMicro()); err != nil {
			return err
		}
		update := `UPDATE provisioning_templates SET next_version = next_version + 1`
		var args []any
		if setAsDefault {
			update += `, default_version = ?, modified_us = ?`
			args = append(args, id, at.UnixMicro())
		}
		args = append(args, scope.AccountID, scope.Region, name)
		if _, err := tx.Exec(update+` WHERE account_id = ? AND region = ? AND template_name = ?`, args...); err != nil {
			return err
		}
		v = &iot.ProvisioningTemplateVersion{Scope: scope, TemplateName: name, ID: id, Body: body, IsDefault: setAsDefault, CreatedAt: at.UTC()}
		return nil
	})
	return v, err
}

// ProvisioningTemplateVersion implements store.ProvisioningTemplates.
func (s *Store) ProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64) (*iot.ProvisioningTemplateVersion, error) {
	v := iot.ProvisioningTemplateVersion{Scope: scope, TemplateName: name, ID: id}
	var created int64
	err := s.read.QueryRowContext(ctx, `SELECT v.body, v.created_us, t.default_version = v.version_id FROM provisioning_template_versions v
		JOIN provisioning_templates t ON t.account_id = v.account_id AND t.region = v.region AND t.template_name = v.template_name
		WHERE v.account_id = ? AND v.region = ? AND v.template_name = ? AND v.version_id = ?`,
		scope.AccountID, scope.Region, name, id).Scan(&v.Body, &created, &v.IsDefault)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provisioning template %s version %d: %w", name, id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	v.CreatedAt = time.UnixMicro(created).UTC()
	return &v, nil
}

// ListProvisioningTemplateVersions implements store.ProvisioningTemplates.
func (s *Store) ListProvisioningTemplateVersions(ctx context.Context, scope iot.Scope, name string, after int64, limit int) ([]iot.ProvisioningTemplateVersion, bool, error) {
	var def int64
	err := s.read.QueryRowContext(ctx, `SELECT default_version FROM provisioning_templates WHERE account_id = ? AND region = ? AND template_name = ?`,
		scope.AccountID, scope.Region, name).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, fmt.Errorf("provisioning template %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, false, err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT version_id, created_us FROM provisioning_template_versions
		WHERE account_id = ? AND region = ? AND template_name = ? AND version_id > ? ORDER BY version_id LIMIT ?`,
		scope.AccountID, scope.Region, name, after, limit+1)
	versions, err := scanAll(rows, err, func(r rowScanner) (*iot.ProvisioningTemplateVersion, error) {
		v := iot.ProvisioningTemplateVersion{Scope: scope, TemplateName: name}
		var created int64
		if err := r.Scan(&v.ID, &created); err != nil {
			return nil, err
		}
		v.IsDefault, v.CreatedAt = v.ID == def, time.UnixMicro(created).UTC()
		return &v, nil
	})
	return page(versions, err, limit)
}

// DeleteProvisioningTemplateVersion implements store.ProvisioningTemplates.
func (s *Store) DeleteProvisioningTemplateVersion(ctx context.Context, scope iot.Scope, name string, id int64, check func(*iot.ProvisioningTemplateVersion) error) error {
	return s.write.do(ctx, func(tx txn) error {
		t, err := lockTemplate(tx, scope, name)
		if err != nil {
			return err
		}
		v := iot.ProvisioningTemplateVersion{Scope: scope, TemplateName: name, ID: id, IsDefault: t.DefaultVersionID == id}
		var created int64
		err = tx.QueryRow(`SELECT body, created_us FROM provisioning_template_versions WHERE account_id = ? AND region = ? AND template_name = ? AND version_id = ?`,
			scope.AccountID, scope.Region, name, id).Scan(&v.Body, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("provisioning template %s version %d: %w", name, id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		v.CreatedAt = time.UnixMicro(created).UTC()
		if err := check(&v); err != nil {
			return err
		}
		_, err = tx.Exec(`DELETE FROM provisioning_template_versions WHERE account_id = ? AND region = ? AND template_name = ? AND version_id = ?`,
			scope.AccountID, scope.Region, name, id)
		return err
	})
}

// OwnershipToken implements store.Provisioning.
func (s *Store) OwnershipToken(ctx context.Context, scope iot.Scope, hash string) (string, time.Time, error) {
	var id string
	var expires int64
	err := s.read.QueryRowContext(ctx, `SELECT certificate_id, expires_us FROM provisioning_tokens WHERE token_hash = ? AND account_id = ? AND region = ?`,
		hash, scope.AccountID, scope.Region).Scan(&id, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, fmt.Errorf("ownership token: %w", store.ErrNotFound)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return id, time.UnixMicro(expires).UTC(), nil
}

// Provision implements store.Provisioning. Rows are locked in one order —
// policies by name, then the certificate, then the thing — so that plans
// running at once on several replicas wait for each other instead of
// deadlocking.
func (s *Store) Provision(ctx context.Context, scope iot.Scope, w *store.ProvisionWrite) (*store.Provisioned, error) {
	policies := slices.Clone(w.Policies)
	slices.SortFunc(policies, func(a, b store.ProvisionedPolicy) int { return strings.Compare(a.Name, b.Name) })
	var out *store.Provisioned
	err := s.write.do(ctx, func(tx txn) error {
		out = &store.Provisioned{}
		if w.TokenHash != "" {
			res, err := tx.Exec(`DELETE FROM provisioning_tokens WHERE token_hash = ? AND account_id = ? AND region = ? AND certificate_id = ? AND expires_us >= ?`,
				w.TokenHash, scope.AccountID, scope.Region, w.CertificateID, w.At.UnixMicro())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				if err == nil {
					err = fmt.Errorf("ownership token: %w", store.ErrNoToken)
				}
				return err
			}
		}
		for _, p := range policies {
			if p.Document == "" {
				continue
			}
			created, err := insertPolicy(tx, &iot.Policy{Scope: scope, Name: p.Name, DefaultDocument: p.Document,
				CreatedAt: w.At, LastModifiedAt: w.At, GenerationID: p.GenerationID})
			if err != nil {
				return err
			}
			if created {
				out.CreatedPolicies = append(out.CreatedPolicies, p.Name)
			}
		}
		for _, p := range policies {
			// Locked, so that it is not deleted under the attachment; its
			// default document read with it, which must be the plan's.
			var document string
			err := tx.QueryRow(`SELECT v.document FROM policies p JOIN policy_versions v ON v.account_id = p.account_id
				AND v.region = p.region AND v.policy_name = p.policy_name AND v.version_id = p.default_version
				WHERE p.account_id = ? AND p.region = ? AND p.policy_name = ?`+tx.d.forUpdate(), scope.AccountID, scope.Region, p.Name).Scan(&document)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("policy %s: %w", p.Name, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if p.Document != "" && document != p.Document {
				return fmt.Errorf("policy %s has another document: %w", p.Name, store.ErrExists)
			}
		}
		var c *iot.Certificate
		if w.CertificateID != "" {
			if w.NewCertificate != nil {
				if err := insertCertificate(tx, w.NewCertificate); err != nil {
					if isUniqueViolation(err) {
						return fmt.Errorf("certificate %s: %w", w.NewCertificate.ID, store.ErrExists)
					}
					return err
				}
			}
			var err error
			if c, err = selectCertificateForUpdate(tx, scope, w.CertificateID); err != nil {
				return fmt.Errorf("certificate %s: %w", w.CertificateID, err)
			}
			if w.Certificate != nil {
				was := c.Status
				if err := w.Certificate(c); err != nil {
					return err
				}
				if err := writeCertificate(tx, c, was); err != nil {
					return err
				}
			}
			for _, p := range policies {
				if err := attachPolicy(tx, p.Name, c, w.MaxPolicies, w.At); err != nil {
					return err
				}
			}
			out.Certificate = c
		}
		if w.ThingName != "" {
			t, err := provisionThing(tx, scope, w)
			if err != nil {
				return err
			}
			out.Thing = t
			if c != nil {
				if err := attachThingPrincipal(tx, t.Name, c, false, w.At); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// provisionThing creates the plan's thing or, if it exists, updates it as
// the plan's rules say.
func provisionThing(tx txn, scope iot.Scope, w *store.ProvisionWrite) (*iot.Thing, error) {
	t, err := w.Thing(nil)
	if err != nil {
		return nil, err
	}
	created, err := insertThing(tx, t)
	if err != nil || created {
		return t, err
	}
	existing, err := lockThing(tx, scope, w.ThingName)
	if err != nil {
		return nil, err
	}
	changed, err := w.Thing(existing)
	if err != nil || changed == nil {
		return existing, err
	}
	return changed, writeThing(tx, changed, w.At)
}

// CreateProvisioningClaim implements store.Provisioning.
func (s *Store) CreateProvisioningClaim(ctx context.Context, c *store.ProvisioningClaim) error {
	return s.write.do(ctx, func(tx txn) error {
		_, err := tx.Exec(`INSERT INTO provisioning_claims (certificate_id, account_id, region, template_name, created_us, expires_us) VALUES (?, ?, ?, ?, ?, ?)`,
			c.CertificateID, c.Scope.AccountID, c.Scope.Region, c.TemplateName, c.CreatedAt.UnixMicro(), c.ExpiresAt.UnixMicro())
		if isUniqueViolation(err) {
			return fmt.Errorf("provisioning claim %s: %w", c.CertificateID, store.ErrExists)
		}
		return err
	})
}

// ProvisioningClaim implements store.Provisioning.
func (s *Store) ProvisioningClaim(ctx context.Context, certificateID string) (*store.ProvisioningClaim, error) {
	c := store.ProvisioningClaim{CertificateID: certificateID}
	var created, expires int64
	err := s.read.QueryRowContext(ctx, `SELECT account_id, region, template_name, created_us, expires_us FROM provisioning_claims WHERE certificate_id = ?`,
		certificateID).Scan(&c.Scope.AccountID, &c.Scope.Region, &c.TemplateName, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provisioning claim %s: %w", certificateID, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	return &c, nil
}
