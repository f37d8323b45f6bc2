package server_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/fleetca/fleetca/internal/keys"
)

// binDir holds the fleetca binary that the crash, shutdown and flood tests
// run as a child process (buildFleetca).
var binDir string

// TestMain keeps scrypt cheap in the servers the tests run in process: they
// check what is sealed, not how long guessing the passphrase takes. The
// binary that the crash and flood tests run keeps the default.
func TestMain(m *testing.M) {
	keys.ScryptWorkFactor = 10
	var err error
	if binDir, err = os.MkdirTemp("", "fleetca-test-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}
