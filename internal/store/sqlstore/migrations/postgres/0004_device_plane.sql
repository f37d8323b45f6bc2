CREATE INDEX ca_certificates_by_subject_any ON ca_certificates (subject_key);

CREATE TABLE provisioning_tokens (
    token_hash      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    account_id      TEXT COLLATE "C" NOT NULL,
    region          TEXT COLLATE "C" NOT NULL,
    certificate_id  TEXT COLLATE "C" NOT NULL,
    expires_us      BIGINT NOT NULL
);
CREATE INDEX provisioning_tokens_by_expiry ON provisioning_tokens (expires_us);
