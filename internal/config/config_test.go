package config

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEverySettingOnce: every exported field of Config is in the table
// exactly once, with a FLEETCA_ variable, and every name is unique, so a
// field added without its flag and variable fails here.
func TestEverySettingOnce(t *testing.T) {
	var c Config
	fields := map[any]string{}
	v := reflect.ValueOf(&c).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Type().Field(i); f.IsExported() {
			fields[v.Field(i).Addr().Interface()] = f.Name
		}
	}
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range c.settings() {
		name, ok := fields[s.ptr]
		if !ok {
			t.Errorf("%s binds no field of Config, or one twice", s.env)
			continue
		}
		delete(fields, s.ptr)
		if !strings.HasPrefix(s.env, "FLEETCA_") || envs[s.env] {
			t.Errorf("%s: variable %q is not FLEETCA_* or not unique", name, s.env)
		}
		envs[s.env] = true
		if s.flag != "" && flags[s.flag] {
			t.Errorf("%s: flag %q twice", name, s.flag)
		}
		flags[s.flag] = true
		if s.help == "" {
			t.Errorf("%s has no help", name)
		}
	}
	for _, name := range fields {
		t.Errorf("Config.%s is in no setting", name)
	}
}

// TestSecretsHaveNoFlag: command lines are visible to every user of the
// machine.
func TestSecretsHaveNoFlag(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.RegisterFlags(fs)
	for _, s := range c.settings() {
		secret := s.ptr == any(&c.SecretAccessKey) || s.ptr == any(&c.CAKeyPassphrase) || s.ptr == any(&c.AccessKeyID) || s.ptr == any(&c.CAKeyPIN)
		if secret != (s.flag == "") {
			t.Errorf("%s: flag %q", s.env, s.flag)
		}
		if s.flag != "" && fs.Lookup(s.flag) == nil {
			t.Errorf("flag %s is not registered", s.flag)
		}
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	env := map[string]string{
		"FLEETCA_DATA_DIR":               "/var/lib/fleetca",
		"FLEETCA_DB_TIMEOUT":             "3s",
		"FLEETCA_KEY_POOL":               "64",
		"FLEETCA_ACCOUNT_RATE":           "2.5",
		"FLEETCA_MQTT_PROVISIONING_RATE": "7",
		"FLEETCA_CA_KEY_PASSPHRASE":      "correct horse",
		"FLEETCA_INSECURE_SKIP_POLICIES": "true",
	}
	c := Default(func(k string) string { return env[k] })
	if c.DataDir != "/var/lib/fleetca" || c.DatabaseTimeout != 3*time.Second || c.KeyPool != 64 ||
		c.AccountRate != 2.5 || c.MQTTProvisioningRate != 7 || c.CAKeyPassphrase != "correct horse" || !c.InsecureSkipPolicies {
		t.Fatalf("environment not applied: %+v", c)
	}
	if c.APIAddr != "127.0.0.1:7400" {
		t.Fatalf("unset variable changed a default: %q", c.APIAddr)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A flag wins over the variable: its default is the variable's value.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--db-timeout", "4s", "--key-pool=8", "--insecure-skip-policies=false"}); err != nil {
		t.Fatal(err)
	}
	if c.DatabaseTimeout != 4*time.Second || c.KeyPool != 8 || c.DataDir != "/var/lib/fleetca" || c.InsecureSkipPolicies {
		t.Fatalf("flags not applied: %+v", c)
	}
	if !strings.Contains(fs.Lookup("db-timeout").Usage, "(FLEETCA_DB_TIMEOUT)") {
		t.Errorf("help does not name the variable: %q", fs.Lookup("db-timeout").Usage)
	}
}

func TestBadEnvironmentIsReported(t *testing.T) {
	env := map[string]string{"FLEETCA_DB_TIMEOUT": "ten seconds", "FLEETCA_KEY_POOL": "many", "FLEETCA_ACCOUNT_RATE": "fast", "FLEETCA_INSECURE_SKIP_POLICIES": "maybe"}
	c := Default(func(k string) string { return env[k] })
	err := c.Validate()
	for name := range env {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Validate() = %v, want it to name %s", err, name)
		}
	}
	if c.DatabaseTimeout != 10*time.Second {
		t.Errorf("a bad variable changed the setting: %v", c.DatabaseTimeout)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data directory"},
		{"bad api addr", func(c *Config) { c.APIAddr = "7400" }, "api address"},
		{"half a TLS pair", func(c *Config) { c.TLSCert = "cert.pem" }, "--tls-cert and --tls-key"},
		{"short account", func(c *Config) { c.AccountID = "123" }, "not 12 digits"},
		{"half an access key", func(c *Config) { c.AccessKeyID = "AKIAEXAMPLEEXAMPLE" }, "go together"},
		{"unknown algorithm", func(c *Config) { c.CAKeyAlgorithm = "dsa" }, "CA key algorithm"},
		{"not postgres", func(c *Config) { c.Database = "mysql://x"; c.CAKeyPassphrase = "p" }, "postgres:// URL"},
		{"postgres without passphrase", func(c *Config) { c.Database = "postgres://db/x" }, "FLEETCA_CA_KEY_PASSPHRASE"},
		{"two passphrases", func(c *Config) { c.CAKeyPassphrase = "a"; c.CAKeyPassphraseFile = "f" }, "give the CA key passphrase once"},
		{"bad lambda endpoint", func(c *Config) { c.LambdaEndpoint = "ftp://x" }, "lambda endpoint"},
		{"bad cross account", func(c *Config) { c.ProviderCrossAccount = "1=2" }, "caller=owner"},
		{"huge key pool", func(c *Config) { c.KeyPool = 5000 }, "--key-pool"},
		{"zero write timeout", func(c *Config) { c.MQTTWriteTimeout = 0 }, "--mqtt-write-timeout"},
		{"zero provisioning rate", func(c *Config) { c.MQTTProvisioningRate = 0 }, "--mqtt-provisioning-rate"},
		{"negative in-flight", func(c *Config) { c.MaxInFlight = -1 }, "cannot be negative"},
		{"long db timeout", func(c *Config) { c.DatabaseTimeout = time.Hour }, "--db-timeout"},
		{"zero change poll", func(c *Config) { c.ChangePoll = 0 }, "--change-poll"},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, "log format"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default(func(string) string { return "" })
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestProviderCrossAccounts(t *testing.T) {
	c := Config{ProviderCrossAccount: " 111111111111=222222222222, 111111111111=333333333333 ,"}
	m, err := c.ProviderCrossAccounts()
	if err != nil || !reflect.DeepEqual(m, map[string][]string{"111111111111": {"222222222222", "333333333333"}}) {
		t.Fatalf("%v %v", m, err)
	}
}

func TestDataEndpoint(t *testing.T) {
	c := Default(func(string) string { return "" })
	if got := c.DataEndpoint(); got != "localhost" {
		t.Errorf("default DataEndpoint = %q, want the first --mqtt-hosts", got)
	}
	c.MQTTHosts, c.MQTTEndpoint = "localhost,mqtt.example.com", "mqtt.example.com"
	if got := c.DataEndpoint(); got != "mqtt.example.com" || c.Validate() != nil {
		t.Errorf("DataEndpoint = %q, %v", got, c.Validate())
	}
	c.MQTTEndpoint = "elsewhere.example.com"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--mqtt-endpoint") {
		t.Errorf("an endpoint the certificate does not name: %v", err)
	}
	c.MQTTAddr = ""
	if got := c.DataEndpoint(); got != "" {
		t.Errorf("DataEndpoint without MQTT = %q", got)
	}
}

func TestRevocationSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"plain HTTP public URL", func(c *Config) { c.PublicURL = "http://ca.example.com:7400/fleetca" }, ""},
		{"HTTPS public URL", func(c *Config) { c.PublicURL = "https://ca.example.com" }, "--public-url"},
		{"relative public URL", func(c *Config) { c.PublicURL = "ca.example.com" }, "--public-url"},
		{"validity not past refresh", func(c *Config) { c.CRLRefresh, c.CRLValidity = 24*time.Hour, 24*time.Hour }, "--crl-validity"},
		{"refresh too short", func(c *Config) { c.CRLRefresh = time.Second }, "--crl-refresh"},
		{"poll too long", func(c *Config) { c.RevocationPoll = time.Hour }, "--revocation-poll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default(func(string) string { return "" })
			tc.change(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
}
