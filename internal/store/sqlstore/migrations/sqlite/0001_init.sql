-- Times are microseconds since the Unix epoch, UTC.
CREATE TABLE accounts (
    account_id  TEXT    NOT NULL PRIMARY KEY,
    created_us  INTEGER NOT NULL
);

CREATE TABLE access_keys (
    access_key_id     TEXT    NOT NULL PRIMARY KEY,
    account_id        TEXT    NOT NULL REFERENCES accounts (account_id),
    secret_access_key TEXT    NOT NULL,
    created_us        INTEGER NOT NULL
);

CREATE TABLE certificates (
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
    PRIMARY KEY (account_id, region, certificate_id)
);

-- Keyset paging in creation order.
CREATE INDEX certificates_by_creation ON certificates (account_id, region, created_us, certificate_id);
-- Admission of devices looks a certificate up by ID alone.
CREATE INDEX certificates_by_id ON certificates (certificate_id);
