package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fleetca/fleetca/internal/store"
)

// The shared CA: its certificates and sealed keys, one row that the first
// replica to start stores and every replica loads (store.CAKeeper).

const selectCAMaterial = `SELECT root_cert_pem, issuing_cert_pem, root_key_sealed, issuing_key_sealed, server_ca_cert_pem, server_ca_key_sealed FROM ca_material WHERE id = 1`

func scanCAMaterial(row *sql.Row) (*store.CAMaterial, error) {
	var root, issuing, rootKey, issuingKey, serverCA, serverCAKey string
	if err := row.Scan(&root, &issuing, &rootKey, &issuingKey, &serverCA, &serverCAKey); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	return &store.CAMaterial{
		RootCertPEM: []byte(root), IssuingCertPEM: []byte(issuing), RootKeySealed: []byte(rootKey), IssuingKeySealed: []byte(issuingKey),
		ServerCACertPEM: []byte(serverCA), ServerCAKeySealed: []byte(serverCAKey),
	}, nil
}

// LoadCA implements store.CAKeeper.
func (s *Store) LoadCA(ctx context.Context) (*store.CAMaterial, error) {
	return scanCAMaterial(s.read.QueryRowContext(ctx, selectCAMaterial))
}

// StoreCA implements store.CAKeeper.
func (s *Store) StoreCA(ctx context.Context, m *store.CAMaterial) (*store.CAMaterial, error) {
	if !m.Complete() {
		return nil, errors.New("sqlstore: the CA material to store is incomplete")
	}
	var stored *store.CAMaterial
	err := s.write.do(ctx, func(tx txn) error {
		if err := tx.lock("ca-material"); err != nil {
			return err
		}
		existing, err := scanCAMaterial(tx.QueryRow(selectCAMaterial))
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = tx.Exec(`INSERT INTO ca_material (id, root_cert_pem, issuing_cert_pem, root_key_sealed, issuing_key_sealed, server_ca_cert_pem, server_ca_key_sealed, created_us) VALUES (1, ?, ?, ?, ?, ?, ?, ?)`,
				string(m.RootCertPEM), string(m.IssuingCertPEM), string(m.RootKeySealed), string(m.IssuingKeySealed),
				string(m.ServerCACertPEM), string(m.ServerCAKeySealed), time.Now().UnixMicro())
			stored = m
			return err
		case err != nil:
			return err
		case !existing.Complete() && bytes.Equal(existing.RootCertPEM, m.RootCertPEM):
			_, err = tx.Exec(`UPDATE ca_material SET server_ca_cert_pem = ?, server_ca_key_sealed = ? WHERE id = 1`,
				string(m.ServerCACertPEM), string(m.ServerCAKeySealed))
			existing.ServerCACertPEM, existing.ServerCAKeySealed = m.ServerCACertPEM, m.ServerCAKeySealed
		}
		stored = existing
		return err
	})
	return stored, err
}

// PinnedRoot implements store.RootPin.
func (s *Store) PinnedRoot(ctx context.Context) (string, error) {
	var fp string
	err := s.read.QueryRowContext(ctx, `SELECT sha256 FROM root_pin WHERE id = 1`).Scan(&fp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return fp, err
}

// PinRoot implements store.RootPin.
func (s *Store) PinRoot(ctx context.Context, sha256 string) (string, error) {
	var pinned string
	err := s.write.do(ctx, func(tx txn) error {
		if _, err := tx.Exec(`INSERT INTO root_pin (id, sha256, created_us) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`,
			sha256, time.Now().UnixMicro()); err != nil {
			return err
		}
		return tx.QueryRow(`SELECT sha256 FROM root_pin WHERE id = 1`).Scan(&pinned)
	})
	return pinned, err
}

// IssuingCAs implements store.CAKeeper.
func (s *Store) IssuingCAs(ctx context.Context) ([]store.IssuingCA, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT generation, cert_pem, key_sealed FROM issuing_cas ORDER BY generation`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cas []store.IssuingCA
	for rows.Next() {
		var ca store.IssuingCA
		var cert, key string
		if err := rows.Scan(&ca.Generation, &cert, &key); err != nil {
			return nil, err
		}
		ca.CertPEM, ca.KeySealed = []byte(cert), []byte(key)
		cas = append(cas, ca)
	}
	return cas, rows.Err()
}

// AddIssuingCA implements store.CAKeeper: the next generation after the
// stored ones (the first is ca_material's), under a lock, so rotations
// from two places take two generations.
func (s *Store) AddIssuingCA(ctx context.Context, ca store.IssuingCA) (int, error) {
	var generation int
	err := s.write.do(ctx, func(tx txn) error {
		if err := tx.lock("issuing-cas"); err != nil {
			return err
		}
		if err := tx.QueryRow(`SELECT COALESCE(MAX(generation), 1) + 1 FROM issuing_cas`).Scan(&generation); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO issuing_cas (generation, cert_pem, key_sealed, created_us) VALUES (?, ?, ?, ?)`,
			generation, string(ca.CertPEM), string(ca.KeySealed), time.Now().UnixMicro())
		return err
	})
	return generation, err
}
