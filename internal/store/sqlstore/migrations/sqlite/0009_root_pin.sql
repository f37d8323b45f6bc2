-- The root CA this database was made with, by the SHA-256 of its
-- certificate, so that fleetca refuses to serve the data with another CA
-- (a data directory restored without its ca/, a second CA made by mistake).
CREATE TABLE root_pin (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    sha256      TEXT    NOT NULL,
    created_us  BIGINT  NOT NULL
);
