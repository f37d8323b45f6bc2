CREATE TABLE certificate_providers (
    account_id           TEXT COLLATE "C" NOT NULL,
    region               TEXT COLLATE "C" NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL,
    lambda_function_arn  TEXT   NOT NULL,
    default_operations   TEXT   NOT NULL,
    created_us           BIGINT NOT NULL,
    modified_us          BIGINT NOT NULL,
    PRIMARY KEY (account_id, region)
);

CREATE TABLE client_tokens (
    account_id    TEXT COLLATE "C" NOT NULL,
    region        TEXT COLLATE "C" NOT NULL,
    operation     TEXT COLLATE "C" NOT NULL,
    token         TEXT COLLATE "C" NOT NULL,
    request_hash  TEXT   NOT NULL,
    created_us    BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, operation, token)
);
