-- Cluster certificates on their key and lead it with the certificate ID: an
-- insert then updates three B-trees instead of five (the rowid table, the
-- key's index and a separate by-ID index go), and admission still finds a
-- certificate by ID alone through the key's first column.
CREATE TABLE certificates_clustered (
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
    PRIMARY KEY (certificate_id, account_id, region)
) WITHOUT ROWID;
INSERT INTO certificates_clustered SELECT account_id, region, certificate_id, status, mode, ca_certificate_id, der,
    owned_by, previous_owned_by, created_us, modified_us, customer_version, generation_id, not_before_us, not_after_us
    FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_clustered RENAME TO certificates;
CREATE INDEX certificates_by_creation ON certificates (account_id, region, created_us, certificate_id);
CREATE INDEX certificates_by_ca ON certificates (account_id, region, ca_certificate_id, created_us, certificate_id);
