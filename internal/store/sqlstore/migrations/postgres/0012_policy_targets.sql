-- Which policies are attached to which targets (certificate ARNs). A
-- certificate or policy with attachments is not deleted unless forced.
CREATE TABLE policy_targets (
    account_id   TEXT   NOT NULL,
    region       TEXT   NOT NULL,
    policy_name  TEXT   NOT NULL,
    target       TEXT   NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets (account_id, region, target, policy_name);
