-- With PostgreSQL, every replica signs with one CA, created once and kept
-- here. The keys are sealed with the operator's passphrase before they are
-- stored.
CREATE TABLE ca_material (
    id                  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    root_cert_pem       TEXT    NOT NULL,
    issuing_cert_pem    TEXT    NOT NULL,
    root_key_sealed     TEXT    NOT NULL,
    issuing_key_sealed  TEXT    NOT NULL,
    created_us          BIGINT  NOT NULL
);
