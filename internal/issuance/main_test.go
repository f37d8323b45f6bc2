package issuance

import (
	"os"
	"testing"

	"github.com/fleetca/fleetca/internal/hsmtest"
	"github.com/fleetca/fleetca/internal/keys"
)

// TestMain keeps scrypt cheap: the tests check what is sealed, not how long
// guessing the passphrase takes.
func TestMain(m *testing.M) {
	keys.ScryptWorkFactor = 10
	var cleanup func()
	softHSMConf, cleanup = hsmtest.ProcessConfig()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// softHSMConf is the SoftHSM2 configuration of the tokens the tests open.
var softHSMConf string
