package keys

import (
	"os"
	"testing"
)

// TestMain keeps scrypt cheap: the tests check what is sealed, not how long
// guessing the passphrase takes.
func TestMain(m *testing.M) {
	ScryptWorkFactor = 10
	os.Exit(m.Run())
}
