package config

import (
	"fmt"
	"strconv"
	"time"
)

// setting is one of Config's fields as the outside world sets it: by a flag
// of `fleetca serve` and by an environment variable. The table in settings is
// the one list of them; defaults live in Default.
type setting struct {
	// flag is the flag's name; empty for secrets, which have no flag:
	// command lines are visible to every user of a machine.
	flag string
	env  string
	help string
	// ptr is the field: *string, *int, *float64 or *time.Duration.
	ptr any
}

// settings binds the table to c's fields.
func (c *Config) settings() []setting {
	return []setting{
		{"data-dir", "FLEETCA_DATA_DIR", "directory for the database, the CA and the credentials file", &c.DataDir},
		{"api-addr", "FLEETCA_API_ADDR", "address of the AWS IoT API", &c.APIAddr},
		{"mqtt-addr", "FLEETCA_MQTT_ADDR", "address of the MQTT device endpoint, mutual TLS; empty disables it", &c.MQTTAddr},
		{"mqtt-hosts", "FLEETCA_MQTT_HOSTS", "comma-separated host names and addresses in the MQTT endpoint's certificate", &c.MQTTHosts},
		{"mqtt-endpoint", "FLEETCA_MQTT_ENDPOINT", "host name describe-endpoint answers, one of --mqtt-hosts (default: the first); a DNS name is answered as <account-id>.<name>, which needs a wildcard DNS record", &c.MQTTEndpoint},
		{"tls-cert", "FLEETCA_TLS_CERT", "PEM certificate chain for HTTPS on the API", &c.TLSCert},
		{"tls-key", "FLEETCA_TLS_KEY", "PEM private key for HTTPS on the API", &c.TLSKey},
		{"account-id", "FLEETCA_ACCOUNT_ID", "12-digit ID of the default account made on first start", &c.AccountID},
		{"", "FLEETCA_ACCESS_KEY_ID", "access key ID accepted for the default account besides those in the database", &c.AccessKeyID},
		{"", "FLEETCA_SECRET_ACCESS_KEY", "secret of FLEETCA_ACCESS_KEY_ID", &c.SecretAccessKey},
		{"ca-key-algorithm", "FLEETCA_CA_KEY_ALGORITHM", "key type of a CA made on first start: " + algorithmList(), &c.CAKeyAlgorithm},
		{"database", "FLEETCA_DATABASE_URL", "PostgreSQL URL shared by several replicas, e.g. postgres://fleetca@db/fleetca; empty means SQLite in the data directory", &c.Database},
		{"", "FLEETCA_CA_KEY_PASSPHRASE", "passphrase that seals the CA keys and stored secrets", &c.CAKeyPassphrase},
		{"ca-key-uri", "FLEETCA_CA_KEY_URI", "PKCS#11 URI of a token to keep the CA keys in, e.g. 'pkcs11:token=fleetca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/fleetca/pin'; a new CA's keys are generated inside it; needs a build with cgo (default: key files in the data directory)", &c.CAKeyURI},
		{"", "FLEETCA_CA_KEY_PIN", "user PIN of the --ca-key-uri token, unless the URI names a pin-source file", &c.CAKeyPIN},
		{"ca-key-passphrase-file", "FLEETCA_CA_KEY_PASSPHRASE_FILE", "file holding the passphrase that seals the CA keys (or set FLEETCA_CA_KEY_PASSPHRASE)", &c.CAKeyPassphraseFile},
		{"lambda-endpoint", "FLEETCA_LAMBDA_ENDPOINT", "Lambda Invoke API endpoint for certificate providers, e.g. http://127.0.0.1:3001 for sam local; empty means AWS Lambda", &c.LambdaEndpoint},
		{"provider-timeout", "FLEETCA_PROVIDER_TIMEOUT", "time a certificate provider has to answer", &c.ProviderTimeout},
		{"db-timeout", "FLEETCA_DB_TIMEOUT", "time a write transaction may take; requests get five seconds more and answer 503 ServiceUnavailableException beyond it", &c.DatabaseTimeout},
		{"provider-cross-account", "FLEETCA_PROVIDER_CROSS_ACCOUNT", "caller=owner account pairs, comma-separated: the caller's certificate provider may invoke the owner's Lambda functions; by default a provider invokes only its own account's", &c.ProviderCrossAccount},
		{"key-pool", "FLEETCA_KEY_POOL", "RSA keys for create-keys-and-certificate generated ahead of time, held only in memory, each used once; cuts the latency of bursts (0: generate each on demand)", &c.KeyPool},
		{"max-in-flight", "FLEETCA_MAX_IN_FLIGHT", "API requests served at once; more are answered ThrottlingException (0: no bound)", &c.MaxInFlight},
		{"account-rate", "FLEETCA_ACCOUNT_RATE", "API requests per second per account; more are answered ThrottlingException (0: no bound)", &c.AccountRate},
		{"account-burst", "FLEETCA_ACCOUNT_BURST", "burst of --account-rate (default: one second's worth)", &c.AccountBurst},
		{"mqtt-provisioning-rate", "FLEETCA_MQTT_PROVISIONING_RATE", "fleet-provisioning requests over MQTT per second per account and region; more are rejected 429 Throttled", &c.MQTTProvisioningRate},
		{"mqtt-provisioning-burst", "FLEETCA_MQTT_PROVISIONING_BURST", "burst of --mqtt-provisioning-rate", &c.MQTTProvisioningBurst},
		{"mqtt-write-timeout", "FLEETCA_MQTT_WRITE_TIMEOUT", "time a write to a device may take; a device that stops reading is disconnected after it", &c.MQTTWriteTimeout},
		{"public-url", "FLEETCA_PUBLIC_URL", "plain-HTTP base URL at which clients reach this server's /crl and /ocsp, e.g. http://ca.example.com:7400; certificates issued from then on carry a CRL distribution point and an OCSP URL below it (default: none, as AWS issues)", &c.PublicURL},
		{"crl-refresh", "FLEETCA_CRL_REFRESH", "how often the CRL is signed again when nothing changed (changes are on it within seconds)", &c.CRLRefresh},
		{"crl-validity", "FLEETCA_CRL_VALIDITY", "how long a CRL is valid (its nextUpdate); longer than --crl-refresh", &c.CRLValidity},
		{"revocation-poll", "FLEETCA_REVOCATION_POLL", "how often each replica looks in the database for changes of status to put on the CRL and in OCSP answers", &c.RevocationPoll},
		{"change-poll", "FLEETCA_CHANGE_POLL", "how often each replica reads the change feed for policy changes, attachments and detachments made on other replicas (its own apply at once)", &c.ChangePoll},
		{"insecure-skip-policies", "FLEETCA_INSECURE_SKIP_POLICIES", "do not enforce IoT policies on the MQTT endpoint: every device may connect, publish, subscribe and receive as the topic rules allow (development only; logged as a warning)", &c.InsecureSkipPolicies},
		{"lint-each-certificate", "FLEETCA_LINT_EACH_CERTIFICATE", "lint every certificate with zlint before the CA key signs it, as Boulder does (about 5 ms of CPU each); by default the first certificate of each profile and key type is, and subject and key are checked by rules that keep the rest lint-clean", &c.LintEachCertificate},
		{"audit-log", "FLEETCA_AUDIT_LOG", "file to append an audit record of every signature to, one JSON line each, on disk before the answer is sent (every record also goes to the log, whatever --log-level)", &c.AuditLog},
		{"log-format", "FLEETCA_LOG_FORMAT", "text or json", &c.LogFormat},
		{"log-level", "FLEETCA_LOG_LEVEL", "debug, info, warn or error", &c.LogLevel},
		{"debug-addr", "FLEETCA_DEBUG_ADDR", "address serving Go's profiler at /debug/pprof/, unauthenticated, e.g. 127.0.0.1:7402; empty disables it", &c.DebugAddr},
	}
}

// set parses v into the setting's field, as its flag would.
func (s setting) set(v string) error {
	switch p := s.ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		*p = f
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration such as 10s")
		}
		*p = d
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not true or false")
		}
		*p = b
	default:
		return fmt.Errorf("setting of unsupported type %T", p)
	}
	return nil
}
