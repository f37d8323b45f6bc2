// Package hsmtest gives tests real PKCS#11 tokens: SoftHSM2's, each in a
// directory of the test's own. Test support only.
//
// Tests skip when SoftHSM2 is not installed, unless FLEETCA_TEST_SOFTHSM is
// set (CI sets it once it has installed the package): then they fail.
package hsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ModulePaths are where Debian and others install SoftHSM2's module.
var ModulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// Module returns SoftHSM2's module and its utility, skipping (or, with
// FLEETCA_TEST_SOFTHSM set, failing) the test when they are missing.
func Module(t testing.TB) (module, util string) {
	t.Helper()
	for _, p := range ModulePaths {
		if _, err := os.Stat(p); err == nil {
			module = p
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("FLEETCA_TEST_SOFTHSM") != "" {
			t.Fatal("FLEETCA_TEST_SOFTHSM is set but SoftHSM2 is not installed (apt-get install softhsm2)")
		}
		t.Skip("SoftHSM2 is not installed (apt-get install softhsm2); set FLEETCA_TEST_SOFTHSM to make this a failure")
	}
	return module, util
}

// Config writes a SoftHSM2 configuration whose tokens live in dir and
// returns its path: what SOFTHSM2_CONF names.
func Config(t testing.TB, dir string) string {
	t.Helper()
	conf, err := WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// WriteConfig is Config for TestMain, which has no test: SoftHSM2 reads
// SOFTHSM2_CONF once per process, so tests that open tokens in their own
// process share one configuration, set before the first opens.
func WriteConfig(dir string) (string, error) {
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	return conf, os.WriteFile(conf, []byte(body), 0o600)
}

// Token is a SoftHSM2 token made for a test.
type Token struct {
	Module string
	Conf   string
	Label  string
	PIN    string
	// Dir is the directory SoftHSM keeps the token's objects in: moving it
	// away makes the token unreachable.
	Dir string
}

// NewToken initialises a token with a new label and PIN under the
// configuration conf (see Config).
func NewToken(t testing.TB, conf string) *Token {
	t.Helper()
	module, util := Module(t)
	b := make([]byte, 6)
	rand.Read(b)
	tok := &Token{Module: module, Conf: conf, Label: "fleetca-" + hex.EncodeToString(b), PIN: "pin-" + hex.EncodeToString(b)}
	tokens := filepath.Join(filepath.Dir(conf), "tokens")
	before, _ := os.ReadDir(tokens)
	cmd := exec.Command(util, "--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", "so-"+tok.PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	after, _ := os.ReadDir(tokens)
	seen := map[string]bool{}
	for _, e := range before {
		seen[e.Name()] = true
	}
	for _, e := range after {
		if !seen[e.Name()] {
			tok.Dir = filepath.Join(tokens, e.Name())
		}
	}
	if tok.Dir == "" {
		t.Fatal("softhsm2-util made no token directory")
	}
	return tok
}

// URI is the token's PKCS#11 URI, with the PIN in pinFile if that is set.
func (tok *Token) URI(pinFile string) string {
	u := "pkcs11:token=" + tok.Label + "?module-path=" + tok.Module
	if pinFile != "" {
		u += "&pin-source=file:" + pinFile
	}
	return u
}

// PINFile writes the PIN to a file of the test's and returns its path.
func (tok *Token) PINFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ProcessConfig makes a SoftHSM2 configuration for the tokens a test
// binary opens in its own process and sets SOFTHSM2_CONF to it; TestMain
// calls it and, after the tests, the function it returns.
func ProcessConfig() (conf string, cleanup func()) {
	dir, err := os.MkdirTemp("", "fleetca-softhsm-")
	if err != nil {
		panic(err)
	}
	if conf, err = WriteConfig(dir); err != nil {
		panic(err)
	}
	os.Setenv("SOFTHSM2_CONF", conf)
	return conf, func() { os.RemoveAll(dir) }
}
