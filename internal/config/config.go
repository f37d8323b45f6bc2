// Package config holds fleetca's settings: their defaults, how flags and
// FLEETCA_* environment variables set them, and their validation.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/keys"
	"github.com/fleetca/fleetca/internal/pki"
)

// Config is everything `fleetca serve` needs.
type Config struct {
	// DataDir holds the database, the CA and the credentials file.
	DataDir string
	// APIAddr is where the AWS IoT API listens.
	APIAddr string
	// MQTTAddr is where the MQTT device endpoint listens (mutual TLS); empty
	// disables it.
	MQTTAddr string
	// MQTTHosts are the host names (or addresses) in the MQTT endpoint's
	// certificate, comma-separated.
	MQTTHosts string
	// MQTTEndpoint is the host DescribeEndpoint answers for the data
	// endpoint; empty means the first of MQTTHosts.
	MQTTEndpoint string
	// TLSCert and TLSKey, when both set, make the API listen with HTTPS.
	TLSCert string
	TLSKey  string
	// AccountID is the ID of the default account made on first start; empty
	// means random.
	AccountID string
	// AccessKeyID and SecretAccessKey, when set, are accepted for the default
	// account besides the keys in the database.
	AccessKeyID     string
	SecretAccessKey string
	// Database is a PostgreSQL URL (postgres://...) shared by several
	// replicas; empty means the embedded SQLite database in DataDir.
	Database string
	// CAKeyPassphrase seals the CA keys at rest; it is required with
	// PostgreSQL, where the keys live in the database.
	CAKeyPassphrase string
	// CAKeyPassphraseFile names a file holding CAKeyPassphrase.
	CAKeyPassphraseFile string
	// CAKeyURI names a PKCS#11 token that keeps the CA keys (RFC 7512);
	// CAKeyPIN is its user PIN when the URI names no pin-source file.
	CAKeyURI string
	CAKeyPIN string
	// AuditLog is a file every signature's audit record is appended to.
	AuditLog string
	// LintEachCertificate lints every certificate before signing, not
	// each profile once.
	LintEachCertificate bool
	// CAKeyAlgorithm is the key type of a CA created on first start.
	CAKeyAlgorithm string
	// LambdaEndpoint overrides the Lambda Invoke API endpoint that certificate
	// providers are called at; empty means AWS Lambda.
	LambdaEndpoint string
	// ProviderTimeout bounds one certificate-provider call.
	ProviderTimeout time.Duration
	// DatabaseTimeout bounds a write transaction; an API request gets it
	// plus five seconds. A database that does not answer within it fails
	// requests with 503 ServiceUnavailableException.
	DatabaseTimeout time.Duration
	// ProviderCrossAccount lets accounts name another account's function as
	// their certificate provider: comma-separated caller=owner pairs of
	// account IDs. Empty: a provider's function is its own account's.
	ProviderCrossAccount string
	// KeyPool is how many CreateKeysAndCertificate keys are generated ahead
	// of time (0: each is generated on demand).
	KeyPool int
	// MaxInFlight bounds the API requests served at once (0: no bound).
	MaxInFlight int
	// AccountRate bounds each account's API requests per second, with bursts
	// of AccountBurst (0: no bound).
	AccountRate  float64
	AccountBurst int
	// MQTTProvisioningRate bounds each account's fleet-provisioning requests
	// over MQTT per second, in bursts of MQTTProvisioningBurst.
	MQTTProvisioningRate  float64
	MQTTProvisioningBurst int
	// MQTTWriteTimeout bounds each write to a device; one that does not read
	// for that long is disconnected.
	MQTTWriteTimeout time.Duration
	// LogFormat is text or json; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// PublicURL, when set, is the base URL at which clients reach fleetca's
	// HTTP server: certificates issued from then on point at the CRL and
	// OCSP responder below it. Empty keeps AWS's profile, with no pointers.
	PublicURL string
	// CRLRefresh is how often an unchanged CRL is signed again; CRLValidity
	// is how long a CRL is valid (its nextUpdate). A change of status is
	// on the CRL within RevocationPoll, whatever these say.
	CRLRefresh  time.Duration
	CRLValidity time.Duration
	// RevocationPoll is how often each replica looks in the database for
	// changes of status.
	RevocationPoll time.Duration
	// ChangePoll is how often each replica reads the change feed for
	// policy changes, attachments and detachments made by other replicas.
	ChangePoll time.Duration
	// InsecureSkipPolicies turns IoT policy enforcement off on the MQTT
	// endpoint; for development only, and logged as a warning.
	InsecureSkipPolicies bool
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there,
	// without authentication: keep it on a loopback address.
	DebugAddr string

	// envErrs are the FLEETCA_* variables that did not parse.
	envErrs []error
}

// Default returns the defaults, overridden by FLEETCA_* variables from getenv.
// A variable that does not parse is reported by Validate.
func Default(getenv func(string) string) Config {
	c := Config{
		DataDir:               "./fleetca-data",
		APIAddr:               "127.0.0.1:7400",
		MQTTAddr:              "127.0.0.1:8883",
		MQTTHosts:             "localhost,127.0.0.1",
		CAKeyAlgorithm:        string(keys.ECDSAP256),
		ProviderTimeout:       5 * time.Second,
		DatabaseTimeout:       10 * time.Second,
		MaxInFlight:           1024,
		MQTTProvisioningRate:  20,
		MQTTProvisioningBurst: 40,
		MQTTWriteTimeout:      10 * time.Second,
		CRLRefresh:            24 * time.Hour,
		CRLValidity:           7 * 24 * time.Hour,
		RevocationPoll:        time.Second,
		ChangePoll:            time.Second,
		LogFormat:             "text",
		LogLevel:              "info",
	}
	for _, s := range c.settings() {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.set(v); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: %v", s.env, v, err))
		}
	}
	return c
}

// FromEnv returns Default(os.Getenv).
func FromEnv() Config { return Default(os.Getenv) }

// RegisterFlags binds the settings to flags whose defaults are c's values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range c.settings() {
		if s.flag == "" {
			continue
		}
		help := s.help + " (" + s.env + ")"
		switch p := s.ptr.(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, help)
		case *int:
			fs.IntVar(p, s.flag, *p, help)
		case *float64:
			fs.Float64Var(p, s.flag, *p, help)
		case *time.Duration:
			fs.DurationVar(p, s.flag, *p, help)
		case *bool:
			fs.BoolVar(p, s.flag, *p, help)
		}
	}
}

func algorithmList() string {
	names := make([]string, len(keys.Algorithms))
	for i, a := range keys.Algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// maxKeyPool bounds the key pool: about 1.2 KiB of memory a key, and a minute
// of one core to fill at most.
const maxKeyPool = 1024

// Validate reports every setting that is wrong.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	if c.DataDir == "" {
		errs = append(errs, errors.New("the data directory must be set"))
	}
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		errs = append(errs, fmt.Errorf("api address %q: %v", c.APIAddr, err))
	}
	if c.MQTTAddr != "" {
		if _, _, err := net.SplitHostPort(c.MQTTAddr); err != nil {
			errs = append(errs, fmt.Errorf("mqtt address %q: %v", c.MQTTAddr, err))
		}
		if len(c.MQTTHostList()) == 0 {
			errs = append(errs, errors.New("the MQTT endpoint needs at least one host name"))
		}
		if c.MQTTEndpoint != "" && !slices.Contains(c.MQTTHostList(), c.MQTTEndpoint) {
			errs = append(errs, fmt.Errorf("--mqtt-endpoint %q is not one of --mqtt-hosts, so the endpoint's certificate would not name it", c.MQTTEndpoint))
		}
	}
	if c.PublicURL != "" {
		if err := pki.CheckPublicURL(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("--public-url %w", err))
		}
	}
	if c.CRLRefresh < time.Minute || c.CRLValidity <= c.CRLRefresh {
		errs = append(errs, fmt.Errorf("--crl-refresh (%v) must be at least a minute and --crl-validity (%v) longer, or verifiers see the CRL expire", c.CRLRefresh, c.CRLValidity))
	}
	if c.RevocationPoll < 10*time.Millisecond || c.RevocationPoll > time.Minute {
		errs = append(errs, fmt.Errorf("--revocation-poll %v must be between 10ms and 1m", c.RevocationPoll))
	}
	if c.ChangePoll < 10*time.Millisecond || c.ChangePoll > time.Minute {
		errs = append(errs, fmt.Errorf("--change-poll %v must be between 10ms and 1m", c.ChangePoll))
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, fmt.Errorf("debug address %q: %v", c.DebugAddr, err))
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.AccountID != "" && !iot.ValidAccountID(c.AccountID) {
		errs = append(errs, fmt.Errorf("account ID %q is not 12 digits", c.AccountID))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("FLEETCA_ACCESS_KEY_ID and FLEETCA_SECRET_ACCESS_KEY go together"))
	}
	if c.AccessKeyID != "" && (len(c.AccessKeyID) < 16 || len(c.AccessKeyID) > 128 || len(c.SecretAccessKey) < 16) {
		errs = append(errs, errors.New("FLEETCA_ACCESS_KEY_ID must have 16 to 128 characters and FLEETCA_SECRET_ACCESS_KEY at least 16"))
	}
	if !keys.Algorithm(c.CAKeyAlgorithm).Valid() {
		errs = append(errs, fmt.Errorf("CA key algorithm %q is not one of %s", c.CAKeyAlgorithm, algorithmList()))
	}
	if c.Database != "" && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		errs = append(errs, errors.New("the database must be a postgres:// URL"))
	}
	if c.CAKeyPassphrase != "" && c.CAKeyPassphraseFile != "" {
		errs = append(errs, errors.New("give the CA key passphrase once: FLEETCA_CA_KEY_PASSPHRASE or --ca-key-passphrase-file"))
	}
	if c.Database != "" && c.CAKeyPassphrase == "" && c.CAKeyPassphraseFile == "" {
		// With the keys in a token the database still holds the access
		// keys' secrets, which the passphrase seals.
		errs = append(errs, errors.New("with PostgreSQL the CA keys (unless in a token) and the access keys' secrets live in the database, sealed: set FLEETCA_CA_KEY_PASSPHRASE or --ca-key-passphrase-file"))
	}
	if c.CAKeyURI != "" {
		if _, err := keys.ParseTokenURI(c.CAKeyURI); err != nil {
			errs = append(errs, fmt.Errorf("--ca-key-uri: %w", err))
		}
	} else if c.CAKeyPIN != "" {
		errs = append(errs, errors.New("FLEETCA_CA_KEY_PIN is set but no --ca-key-uri names a token"))
	}
	if c.LambdaEndpoint != "" {
		if u, err := url.Parse(c.LambdaEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("lambda endpoint %q is not an http(s) URL", c.LambdaEndpoint))
		}
	}
	if _, err := c.ProviderCrossAccounts(); err != nil {
		errs = append(errs, err)
	}
	if c.KeyPool < 0 || c.KeyPool > maxKeyPool {
		errs = append(errs, fmt.Errorf("--key-pool %d is not between 0 and %d", c.KeyPool, maxKeyPool))
	}
	if c.MQTTWriteTimeout <= 0 || c.MQTTWriteTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--mqtt-write-timeout %v is not between 0 and 10m", c.MQTTWriteTimeout))
	}
	if c.MQTTProvisioningRate <= 0 || c.MQTTProvisioningBurst < 1 {
		errs = append(errs, errors.New("--mqtt-provisioning-rate must be positive and --mqtt-provisioning-burst at least 1"))
	}
	if c.MaxInFlight < 0 || c.AccountRate < 0 || c.AccountBurst < 0 {
		errs = append(errs, errors.New("--max-in-flight, --account-rate and --account-burst cannot be negative"))
	}
	if c.DatabaseTimeout <= 0 || c.DatabaseTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("--db-timeout %v is not between 0 and 1m", c.DatabaseTimeout))
	}
	if c.ProviderTimeout <= 0 || c.ProviderTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("provider timeout %v is not between 0 and 1m", c.ProviderTimeout))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log format %q is not text or json", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q is not debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// ProviderCrossAccounts parses ProviderCrossAccount: for each caller account,
// the other accounts whose functions its certificate provider may invoke.
func (c *Config) ProviderCrossAccounts() (map[string][]string, error) {
	m := map[string][]string{}
	for _, pair := range strings.Split(c.ProviderCrossAccount, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		caller, owner, ok := strings.Cut(pair, "=")
		if !ok || !iot.ValidAccountID(caller) || !iot.ValidAccountID(owner) {
			return nil, fmt.Errorf("--provider-cross-account %q is not caller=owner with two 12-digit account IDs", pair)
		}
		m[caller] = append(m[caller], owner)
	}
	return m, nil
}

// Passphrase returns the CA key passphrase, read from its file if one is named.
func (c *Config) Passphrase() (string, error) {
	if c.CAKeyPassphraseFile == "" {
		return c.CAKeyPassphrase, nil
	}
	b, err := os.ReadFile(c.CAKeyPassphraseFile)
	if err != nil {
		return "", err
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s is empty", c.CAKeyPassphraseFile)
	}
	return p, nil
}

// DataEndpoint is the host DescribeEndpoint answers: MQTTEndpoint, or the
// first of MQTTHosts; empty when the MQTT endpoint is disabled.
func (c *Config) DataEndpoint() string {
	if c.MQTTAddr == "" {
		return ""
	}
	if c.MQTTEndpoint != "" {
		return c.MQTTEndpoint
	}
	if hosts := c.MQTTHostList(); len(hosts) > 0 {
		return hosts[0]
	}
	return ""
}

// MQTTHostList is MQTTHosts split and trimmed.
func (c *Config) MQTTHostList() []string {
	var hosts []string
	for _, h := range strings.Split(c.MQTTHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// DatabasePath is where the SQLite database lives.
func (c *Config) DatabasePath() string { return filepath.Join(c.DataDir, "fleetca.db") }

// CADir is where the CA certificates and keys live.
func (c *Config) CADir() string { return filepath.Join(c.DataDir, "ca") }

// CredentialsPath is the file holding the default account's first access key,
// in the format of ~/.aws/credentials.
func (c *Config) CredentialsPath() string { return filepath.Join(c.DataDir, "credentials") }
