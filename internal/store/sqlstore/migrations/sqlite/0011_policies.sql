-- IoT policies. The default version lives in the policy's row, so there is
-- always exactly one; next_version is the ID the next version takes, so IDs
-- are never reused after a version is deleted.
CREATE TABLE policies (
    account_id       TEXT   NOT NULL,
    region           TEXT   NOT NULL,
    policy_name      TEXT   NOT NULL,
    default_version  BIGINT NOT NULL,
    next_version     BIGINT NOT NULL,
    created_us       BIGINT NOT NULL,
    modified_us      BIGINT NOT NULL,
    generation_id    TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, policy_name)
);
CREATE TABLE policy_versions (
    account_id   TEXT   NOT NULL,
    region       TEXT   NOT NULL,
    policy_name  TEXT   NOT NULL,
    version_id   BIGINT NOT NULL,
    document     TEXT   NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, version_id)
);
