-- Provisioning templates. The default version lives in the template's row,
-- so there is always exactly one; next_version is the ID the next version
-- takes, so IDs are never reused after a version is deleted.
CREATE TABLE provisioning_templates (
    account_id        TEXT   NOT NULL,
    region            TEXT   NOT NULL,
    template_name     TEXT   NOT NULL,
    description       TEXT     NOT NULL,
    template_type     TEXT     NOT NULL,
    enabled           BOOLEAN  NOT NULL,
    role_arn          TEXT     NOT NULL,
    hook_target_arn   TEXT     NOT NULL,
    hook_payload      TEXT     NOT NULL,
    default_version   BIGINT   NOT NULL,
    next_version      BIGINT   NOT NULL,
    created_us        BIGINT   NOT NULL,
    modified_us       BIGINT   NOT NULL,
    PRIMARY KEY (account_id, region, template_name)
);
CREATE TABLE provisioning_template_versions (
    account_id     TEXT   NOT NULL,
    region         TEXT   NOT NULL,
    template_name  TEXT   NOT NULL,
    version_id     BIGINT   NOT NULL,
    body           TEXT     NOT NULL,
    created_us     BIGINT   NOT NULL,
    PRIMARY KEY (account_id, region, template_name, version_id)
);
-- Provisioning claims: five-minute certificates CreateProvisioningClaim
-- makes for one template. They are not registered certificates (no listing
-- shows them); a device presenting one may only provision itself with the
-- template. Kept until they expire.
CREATE TABLE provisioning_claims (
    certificate_id  TEXT   NOT NULL PRIMARY KEY,
    account_id      TEXT   NOT NULL,
    region          TEXT   NOT NULL,
    template_name   TEXT   NOT NULL,
    created_us      BIGINT   NOT NULL,
    expires_us      BIGINT   NOT NULL
);
CREATE INDEX provisioning_claims_by_expiry ON provisioning_claims (expires_us);
-- Thing types, which things and provisioning templates name.
CREATE TABLE thing_types (
    account_id     TEXT   NOT NULL,
    region         TEXT   NOT NULL,
    type_name      TEXT   NOT NULL,
    type_id        TEXT     NOT NULL,
    description    TEXT     NOT NULL,
    searchable     TEXT     NOT NULL,
    deprecated_us  BIGINT   NOT NULL,
    created_us     BIGINT   NOT NULL,
    PRIMARY KEY (account_id, region, type_name)
);
-- DeleteThingType asks whether a thing still has the type.
CREATE INDEX things_by_type ON things (account_id, region, thing_type);
