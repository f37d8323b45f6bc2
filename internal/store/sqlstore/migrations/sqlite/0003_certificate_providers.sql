-- One certificate provider per account and region: the key is the scope.
CREATE TABLE certificate_providers (
    account_id           TEXT    NOT NULL,
    region               TEXT    NOT NULL,
    name                 TEXT    NOT NULL,
    lambda_function_arn  TEXT    NOT NULL,
    default_operations   TEXT    NOT NULL,
    created_us           INTEGER NOT NULL,
    modified_us          INTEGER NOT NULL,
    PRIMARY KEY (account_id, region)
);

-- Client tokens of create calls, so a retry gets the first answer.
CREATE TABLE client_tokens (
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    token         TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    created_us    INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, operation, token)
);
