CREATE TABLE ca_certificates (
    account_id            TEXT    NOT NULL,
    region                TEXT    NOT NULL,
    ca_certificate_id     TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    auto_registration     TEXT    NOT NULL,
    mode                  TEXT    NOT NULL,
    der                   BLOB    NOT NULL,
    subject_key           TEXT    NOT NULL,
    template_body         TEXT    NOT NULL DEFAULT '',
    role_arn              TEXT    NOT NULL DEFAULT '',
    template_name         TEXT    NOT NULL DEFAULT '',
    owned_by              TEXT    NOT NULL,
    created_us            INTEGER NOT NULL,
    modified_us           INTEGER NOT NULL,
    customer_version      INTEGER NOT NULL,
    generation_id         TEXT    NOT NULL,
    not_before_us         INTEGER NOT NULL,
    not_after_us          INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, ca_certificate_id)
);

CREATE INDEX ca_certificates_by_creation ON ca_certificates (account_id, region, created_us, ca_certificate_id);
CREATE INDEX ca_certificates_by_subject ON ca_certificates (account_id, region, subject_key);
-- A CA is registered in DEFAULT mode by at most one account per region.
CREATE UNIQUE INDEX ca_certificates_default_once ON ca_certificates (region, ca_certificate_id) WHERE mode = 'DEFAULT';

-- ListCertificatesByCA pages through a CA's device certificates.
CREATE INDEX certificates_by_ca ON certificates (account_id, region, ca_certificate_id, created_us, certificate_id);

CREATE TABLE registration_codes (
    account_id  TEXT    NOT NULL,
    region      TEXT    NOT NULL,
    code        TEXT    NOT NULL,
    created_us  INTEGER NOT NULL,
    PRIMARY KEY (account_id, region)
);

CREATE TABLE tags (
    account_id     TEXT NOT NULL,
    region         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    tag_key        TEXT NOT NULL,
    tag_value      TEXT NOT NULL,
    PRIMARY KEY (account_id, region, resource_type, resource_id, tag_key)
);
