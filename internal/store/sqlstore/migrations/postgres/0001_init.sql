-- Times are microseconds since the Unix epoch, UTC. Identifiers collate
-- bytewise ("C"), so keyset paging orders them as SQLite does.
CREATE TABLE accounts (
    account_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    created_us  BIGINT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account_id        TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id),
    secret_access_key TEXT   NOT NULL,
    created_us        BIGINT NOT NULL
);

CREATE TABLE certificates (
    account_id         TEXT COLLATE "C" NOT NULL,
    region             TEXT COLLATE "C" NOT NULL,
    certificate_id     TEXT COLLATE "C" NOT NULL,
    status             TEXT   NOT NULL,
    mode               TEXT   NOT NULL,
    ca_certificate_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    der                BYTEA  NOT NULL,
    owned_by           TEXT   NOT NULL,
    previous_owned_by  TEXT   NOT NULL DEFAULT '',
    created_us         BIGINT NOT NULL,
    modified_us        BIGINT NOT NULL,
    customer_version   BIGINT NOT NULL,
    generation_id      TEXT   NOT NULL,
    not_before_us      BIGINT NOT NULL,
    not_after_us       BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, certificate_id)
);

CREATE INDEX certificates_by_creation ON certificates (account_id, region, created_us, certificate_id);
CREATE INDEX certificates_by_id ON certificates (certificate_id);
