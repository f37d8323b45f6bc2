-- The MQTT endpoint's certificate comes from a CA of its own (the server CA,
-- signed by the root), so that no certificate a device can obtain from the
-- issuing CA can ever serve as the broker's. A CA created before this
-- migration gains its server CA at the next start.
ALTER TABLE ca_material ADD COLUMN server_ca_cert_pem TEXT NOT NULL DEFAULT '';
ALTER TABLE ca_material ADD COLUMN server_ca_key_sealed TEXT NOT NULL DEFAULT '';
