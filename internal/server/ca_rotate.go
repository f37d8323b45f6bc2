package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fleetca/fleetca/internal/audit"
	"github.com/fleetca/fleetca/internal/config"
	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/issuance"
	"github.com/fleetca/fleetca/internal/store/sqlstore"
)

// RotateCA makes a new issuing CA under the root of cfg's CA, in the same
// key store (files, the database sealed, or the token), and records the
// signature in the audit log (and cfg.AuditLog). With SQLite no server may
// be using the data directory, and the next start signs with the new CA;
// with PostgreSQL running replicas take it up within a revocation poll.
// Certificates of the issuing CAs before it keep validating and keep their
// CRLs and OCSP answers.
func RotateCA(ctx context.Context, cfg config.Config, log *slog.Logger) (*x509.Certificate, error) {
	passphrase, err := cfg.Passphrase()
	if err != nil {
		return nil, err
	}
	// The record is written after the root signs, so the log must be
	// there before it does.
	auditLog, err := audit.New(log.Handler(), cfg.AuditLog)
	if err != nil {
		return nil, err
	}
	defer auditLog.Close()
	opts := issuance.Options{Passphrase: passphrase}
	tok, err := openToken(cfg)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		defer tok.Close()
		opts.Token = tok
	}
	var made, root *x509.Certificate
	if cfg.Database == "" {
		lock, err := lockCADir(cfg)
		if err != nil {
			return nil, err
		}
		defer lock.Close()
		opts.Dir = cfg.CADir()
		if made, root, err = issuance.Rotate(opts); err != nil {
			return nil, err
		}
	} else {
		if passphrase == "" {
			return nil, errors.New("with PostgreSQL set FLEETCA_CA_KEY_PASSPHRASE or --ca-key-passphrase-file")
		}
		st, err := sqlstore.OpenPostgres(ctx, cfg.Database)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if made, root, err = issuance.RotateShared(ctx, st, opts); err != nil {
			return nil, err
		}
	}
	err = auditLog.Write(ctx, audit.Record{Time: time.Now().UTC(), Object: audit.Certificate, Profile: "issuing-ca",
		Issuer: iot.CertificateID(root.Raw), CertificateID: iot.CertificateID(made.Raw), Serial: made.SerialNumber.Text(16),
		Subject: made.Subject.String(), NotBefore: made.NotBefore, NotAfter: made.NotAfter,
		Requester: audit.Requester{Operation: "RotateIssuingCA"}, Outcome: audit.Signed})
	if err != nil {
		return made, fmt.Errorf("the rotation is done (the new issuing CA is %q), but its audit record could not be written: %w", made.Subject.CommonName, err)
	}
	return made, nil
}
