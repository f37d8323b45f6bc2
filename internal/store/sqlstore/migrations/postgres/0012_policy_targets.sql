-- Which policies are attached to which targets (certificate ARNs). A
-- certificate or policy with attachments is not deleted unless forced.
CREATE TABLE policy_targets (
    account_id   TEXT COLLATE "C"   NOT NULL,
    region       TEXT COLLATE "C"   NOT NULL,
    policy_name  TEXT COLLATE "C"   NOT NULL,
    target       TEXT COLLATE "C"   NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets (account_id, region, target, policy_name);
