-- Issuing CAs made by rotations (fleetca ca rotate) of the shared CA, after
-- the first one in ca_material: each with its key sealed, or with no key
-- when the CA's keys live in a PKCS#11 token. The newest signs; the others
-- keep signing their CRLs and OCSP answers.
CREATE TABLE issuing_cas (
    generation  INTEGER NOT NULL PRIMARY KEY,
    cert_pem    TEXT    NOT NULL,
    key_sealed  TEXT    NOT NULL,
    created_us  BIGINT  NOT NULL
);
