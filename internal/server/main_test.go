package server_test

import (
	"os"
	"testing"

	"github.com/fleetca/fleetca/internal/keys"
)

// TestMain keeps scrypt cheap in the servers the tests run in process: they
// check what is sealed, not how long guessing the passphrase takes. The
// binary that the crash and flood tests run keeps the default.
func TestMain(m *testing.M) {
	keys.ScryptWorkFactor = 10
	os.Exit(m.Run())
}
