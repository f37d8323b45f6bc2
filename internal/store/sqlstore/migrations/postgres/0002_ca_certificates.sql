CREATE TABLE ca_certificates (
    account_id            TEXT COLLATE "C" NOT NULL,
    region                TEXT COLLATE "C" NOT NULL,
    ca_certificate_id     TEXT COLLATE "C" NOT NULL,
    status                TEXT   NOT NULL,
    auto_registration     TEXT   NOT NULL,
    mode                  TEXT   NOT NULL,
    der                   BYTEA  NOT NULL,
    subject_key           TEXT COLLATE "C" NOT NULL,
    template_body         TEXT   NOT NULL DEFAULT '',
    role_arn              TEXT   NOT NULL DEFAULT '',
    template_name         TEXT COLLATE "C" NOT NULL DEFAULT '',
    owned_by              TEXT   NOT NULL,
    created_us            BIGINT NOT NULL,
    modified_us           BIGINT NOT NULL,
    customer_version      BIGINT NOT NULL,
    generation_id         TEXT   NOT NULL,
    not_before_us         BIGINT NOT NULL,
    not_after_us          BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, ca_certificate_id)
);

CREATE INDEX ca_certificates_by_creation ON ca_certificates (account_id, region, created_us, ca_certificate_id);
CREATE INDEX ca_certificates_by_subject ON ca_certificates (account_id, region, subject_key);
-- A CA is registered in DEFAULT mode by at most one account per region.
CREATE UNIQUE INDEX ca_certificates_default_once ON ca_certificates (region, ca_certificate_id) WHERE mode = 'DEFAULT';

CREATE INDEX certificates_by_ca ON certificates (account_id, region, ca_certificate_id, created_us, certificate_id);

CREATE TABLE registration_codes (
    account_id  TEXT COLLATE "C" NOT NULL,
    region      TEXT COLLATE "C" NOT NULL,
    code        TEXT   NOT NULL,
    created_us  BIGINT NOT NULL,
    PRIMARY KEY (account_id, region)
);

CREATE TABLE tags (
    account_id     TEXT COLLATE "C" NOT NULL,
    region         TEXT COLLATE "C" NOT NULL,
    resource_type  TEXT COLLATE "C" NOT NULL,
    resource_id    TEXT COLLATE "C" NOT NULL,
    tag_key        TEXT COLLATE "C" NOT NULL,
    tag_value      TEXT NOT NULL,
    PRIMARY KEY (account_id, region, resource_type, resource_id, tag_key)
);
