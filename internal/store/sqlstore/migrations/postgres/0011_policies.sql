-- IoT policies. Keys sort bytewise (COLLATE "C"), as in SQLite, so that
-- keyset paging has one order on both. The default version lives in the policy's row, so there is
-- always exactly one; next_version is the ID the next version takes, so IDs
-- are never reused after a version is deleted.
CREATE TABLE policies (
    account_id       TEXT COLLATE "C"   NOT NULL,
    region           TEXT COLLATE "C"   NOT NULL,
    policy_name      TEXT COLLATE "C"   NOT NULL,
    default_version  BIGINT NOT NULL,
    next_version     BIGINT NOT NULL,
    created_us       BIGINT NOT NULL,
    modified_us      BIGINT NOT NULL,
    generation_id    TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, policy_name)
);
CREATE TABLE policy_versions (
    account_id   TEXT COLLATE "C"   NOT NULL,
    region       TEXT COLLATE "C"   NOT NULL,
    policy_name  TEXT COLLATE "C"   NOT NULL,
    version_id   BIGINT NOT NULL,
    document     TEXT   NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, version_id)
);
