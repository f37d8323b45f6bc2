-- Let ListCertificates and ListCertificatesByCA read their pages from the
-- index alone (index-only scans), not from rows scattered over the table.
DROP INDEX certificates_by_creation;
CREATE INDEX certificates_by_creation ON certificates (account_id, region, created_us, certificate_id) INCLUDE (status, mode);
DROP INDEX certificates_by_ca;
CREATE INDEX certificates_by_ca ON certificates (account_id, region, ca_certificate_id, created_us, certificate_id) INCLUDE (status, mode);
