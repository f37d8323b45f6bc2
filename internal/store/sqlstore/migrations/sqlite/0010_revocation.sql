-- Which fleetca CA signed a certificate (the issuing CA's certificate ID)
-- and its serial in hex; empty for certificates fleetca did not sign. CRLs
-- and OCSP answers are made from them.
ALTER TABLE certificates ADD COLUMN issuer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN serial TEXT NOT NULL DEFAULT '';
-- Certificates stored before this migration that fleetca signed (DEFAULT
-- mode, under no registered CA) wait for the server to read their issuer
-- and serial from their DER at its next start (revocation.Attribute).
UPDATE certificates SET issuer_id = 'unattributed' WHERE mode = 'DEFAULT' AND ca_certificate_id = '';
-- OCSP finds a certificate by issuer and serial.
CREATE INDEX certificates_by_serial ON certificates (issuer_id, serial) WHERE issuer_id <> '';
-- A CRL lists the signed certificates that are not ACTIVE: a small part of
-- the table, read from this index alone.
CREATE INDEX certificates_unusable ON certificates (issuer_id, serial, status, modified_us, not_after_us)
    WHERE issuer_id <> '' AND status <> 'ACTIVE';
-- Certificates fleetca signed that were deleted: they stay on the CRL until
-- they expire, since a deleted certificate must never be admitted again.
CREATE TABLE revoked_certificates (
    issuer_id     TEXT   NOT NULL,
    serial        TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    revoked_us    BIGINT NOT NULL,
    not_after_us  BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, serial)
);
-- The current CRL of each issuer. Its number only grows: a replica stores
-- a new CRL only over the one it was made after (compare and swap), so
-- every replica serves the one CRL the database holds.
CREATE TABLE crls (
    issuer_id       TEXT   NOT NULL PRIMARY KEY,
    number          BIGINT NOT NULL,
    this_update_us  BIGINT NOT NULL,
    next_update_us  BIGINT NOT NULL,
    digest          TEXT   NOT NULL,
    der             BLOB  NOT NULL
);
