-- Keep certificates in a rowid table again, in the order they are made, with
-- the key as a separate index. Clustered on the key (0006), each row lived in
-- an index b-tree, whose interior pages hold whole rows: with a certificate's
-- DER of 600 to 700 bytes an interior page held four or five of them, a
-- third of the table's pages were interior, and an insert at a random ID
-- split pages up a tree six or seven deep. Every secondary index entry also
-- carried the 80-byte key where a rowid takes a few bytes. As a rowid table,
-- with 20,000 certificates (BenchmarkCertificateTable), the database takes
-- 2.6 times fewer pages, an insert appends its row to the last page and
-- writes 7.6 pages to the log instead of 9.3, and a lookup by ID takes 9
-- microseconds instead of 24.
CREATE TABLE certificates_by_rowid (
    account_id         TEXT    NOT NULL,
    region             TEXT    NOT NULL,
    certificate_id     TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    mode               TEXT    NOT NULL,
    ca_certificate_id  TEXT    NOT NULL DEFAULT '',
    der                BLOB    NOT NULL,
    owned_by           TEXT    NOT NULL,
    previous_owned_by  TEXT    NOT NULL DEFAULT '',
    created_us         INTEGER NOT NULL,
    modified_us        INTEGER NOT NULL,
    customer_version   INTEGER NOT NULL,
    generation_id      TEXT    NOT NULL,
    not_before_us      INTEGER NOT NULL,
    not_after_us       INTEGER NOT NULL,
    issuer_id          TEXT    NOT NULL DEFAULT '',
    serial             TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (certificate_id, account_id, region)
);
INSERT INTO certificates_by_rowid SELECT account_id, region, certificate_id, status, mode, ca_certificate_id, der,
    owned_by, previous_owned_by, created_us, modified_us, customer_version, generation_id, not_before_us, not_after_us,
    issuer_id, serial
    FROM certificates ORDER BY created_us, certificate_id;
DROP TABLE certificates;
ALTER TABLE certificates_by_rowid RENAME TO certificates;
CREATE INDEX certificates_by_creation ON certificates (account_id, region, created_us, certificate_id, status, mode);
CREATE INDEX certificates_by_ca ON certificates (account_id, region, ca_certificate_id, created_us, certificate_id, status, mode);
CREATE INDEX certificates_by_serial ON certificates (issuer_id, serial) WHERE issuer_id <> '';
CREATE INDEX certificates_unusable ON certificates (issuer_id, serial, status, modified_us, not_after_us)
    WHERE issuer_id <> '' AND status <> 'ACTIVE';
