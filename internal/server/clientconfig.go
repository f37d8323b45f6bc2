package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fleetca/fleetca/internal/keys"
)

// clientConfigFile is an AWS shared config file beside the credentials
// file, so that current CLIs and SDKs reach fleetca without --endpoint-url:
//
//	AWS_CONFIG_FILE=fleetca-data/config AWS_SHARED_CREDENTIALS_FILE=fleetca-data/credentials aws iot list-certificates
const clientConfigFile = "config"

// writeClientConfig writes the data directory's AWS config file, naming the
// region and the API's URL for the iot service, unless one is there: it is
// the operator's to change, and deleting it has the next start write it
// again with the address of the day.
func (s *Server) writeClientConfig() error {
	path := filepath.Join(s.cfg.DataDir, clientConfigFile)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	body := fmt.Sprintf(`# Written by fleetca for the AWS CLI and SDKs that read service-specific
# endpoints (releases since late 2023). Use it with
#   AWS_CONFIG_FILE=%[1]s
#   AWS_SHARED_CREDENTIALS_FILE=%[2]s
# Delete it to have the next start write it again.
[default]
region = us-east-1
services = fleetca

[services fleetca]
iot =
  endpoint_url = %[3]s
`, absolute(path), absolute(s.cfg.CredentialsPath()), s.URL())
	return keys.WriteFileExclusive(path, []byte(body), 0o600)
}
