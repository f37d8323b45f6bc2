-- Just-in-time registration finds a device certificate's CA by issuer name
-- in every scope.
CREATE INDEX ca_certificates_by_subject_any ON ca_certificates (subject_key);

-- Ownership tokens of certificates made through fleet provisioning. Only the
-- SHA-256 of a token is kept.
CREATE TABLE provisioning_tokens (
    token_hash      TEXT    NOT NULL PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    region          TEXT    NOT NULL,
    certificate_id  TEXT    NOT NULL,
    expires_us      INTEGER NOT NULL
);
CREATE INDEX provisioning_tokens_by_expiry ON provisioning_tokens (expires_us);
