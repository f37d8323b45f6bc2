package issuance

import (
	"os"
	"testing"

	"github.com/fleetca/fleetca/internal/keys"
)

// TestMain keeps scrypt cheap: the tests check what is sealed, not how long
// guessing the passphrase takes.
func TestMain(m *testing.M) {
	keys.ScryptWorkFactor = 10
	os.Exit(m.Run())
}
