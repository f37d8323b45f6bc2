-- Things, their attributes (a row each as well as in the thing's row, so
-- that ListThings filters on an index) and the principals attached to them.
CREATE TABLE things (
    account_id   TEXT COLLATE "C" NOT NULL,
    region       TEXT COLLATE "C" NOT NULL,
    thing_name   TEXT COLLATE "C" NOT NULL,
    thing_id     TEXT   NOT NULL,
    thing_type   TEXT COLLATE "C" NOT NULL,
    attributes   TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    created_us   BIGINT NOT NULL,
    modified_us  BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, thing_name)
);
CREATE TABLE thing_attributes (
    account_id   TEXT COLLATE "C" NOT NULL,
    region       TEXT COLLATE "C" NOT NULL,
    thing_name   TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    value        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (account_id, region, thing_name, name)
);
CREATE INDEX thing_attributes_by_value ON thing_attributes (account_id, region, name, value, thing_name);
CREATE TABLE thing_principals (
    account_id   TEXT COLLATE "C" NOT NULL,
    region       TEXT COLLATE "C" NOT NULL,
    thing_name   TEXT COLLATE "C" NOT NULL,
    principal    TEXT COLLATE "C" NOT NULL,
    exclusive    BOOLEAN NOT NULL,
    created_us   BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, thing_name, principal)
);
CREATE INDEX thing_principals_by_principal ON thing_principals (account_id, region, principal, thing_name);
-- The change feed: what changed that connected devices may depend on (a
-- policy, a principal's attachments, a thing), written in the transaction
-- that changes it. Every replica reads it by sequence number and applies
-- each change to the connections it affects.
CREATE TABLE changes (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   TEXT   NOT NULL,
    region       TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    at_us        BIGINT NOT NULL
);
CREATE INDEX changes_by_time ON changes (at_us);
