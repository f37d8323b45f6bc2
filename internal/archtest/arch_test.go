// Package archtest enforces the direction of dependencies described in
// ARCHITECTURE.md, so that a wrong import fails the build's tests instead of
// slipping through review.
package archtest

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/fleetca/fleetca/"

// layer ranks the packages: a package may import only packages of a lower
// layer (never its own layer, never a higher one).
var layer = map[string]int{
	"internal/iot":             0,
	"internal/apierr":          0,
	"internal/pki":             1,
	"internal/keys":            1,
	"internal/store":           1,
	"internal/netlimit":        1,
	"internal/config":          2,
	"internal/issuance":        2,
	"internal/store/sqlstore":  2,
	"internal/store/storetest": 2,
	"internal/sigv4":           2,
	"internal/provider":        2,
	"internal/provider/lambda": 3,
	"internal/registry":        3,
	"internal/iotapi":          4,
	"internal/telemetry":       2,
	"internal/mqttapi":         4,
	"internal/server":          5,
	"internal/loadgen":         5,
	"cmd/fleetca":              6,
	"internal/archtest":        6,
	"internal/lambdatest":      6,
	"internal/pgtest":          6,
}

// onlyFor lists imports that only the named packages may use.
var onlyFor = map[string][]string{
	"database/sql":       {"internal/store/sqlstore", "internal/pgtest"},
	"modernc.org/sqlite": {"internal/store/sqlstore"},
	"github.com/fleetca/fleetca/internal/store/sqlstore":  {"internal/server"},
	"github.com/fleetca/fleetca/internal/provider/lambda": {"internal/server"},
	"github.com/aws/aws-sdk-go-v2/service/lambda":         {"internal/provider/lambda"},
	"github.com/fleetca/fleetca/internal/lambdatest":      {},
	"github.com/mochi-mqtt/server/v2":                     {"internal/mqttapi"},
	"github.com/mochi-mqtt/server/v2/listeners":           {"internal/mqttapi"},
	"github.com/mochi-mqtt/server/v2/packets":             {"internal/mqttapi"},
	"github.com/fleetca/fleetca/internal/mqttapi":         {"internal/server"},
	"github.com/prometheus/client_golang/prometheus":      {"internal/telemetry"},
	"github.com/fleetca/fleetca/internal/telemetry":       {"internal/server"},
	"github.com/fleetca/fleetca/internal/pgtest":          {},
	"github.com/jackc/pgx/v5/stdlib":                      {"internal/store/sqlstore", "internal/pgtest"},
	"github.com/aws/aws-lambda-go/lambda":                 {"internal/lambdatest"},
}

// domain lists the packages below the front ends and adapters: they hold the
// rules and must not know HTTP or MQTT.
var domain = []string{
	"internal/iot", "internal/apierr", "internal/pki", "internal/keys", "internal/store",
	"internal/issuance", "internal/provider", "internal/registry", "internal/config",
}

// wireLibraries are the imports only front ends and adapters may use.
var wireLibraries = []string{"net/http", "github.com/mochi-mqtt/server/v2", "github.com/eclipse/paho.golang"}

func packages(t *testing.T) map[string]*build.Package {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]*build.Package{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "examples") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		pkgs[filepath.ToSlash(rel)] = pkg
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestDependenciesPointOneWay(t *testing.T) {
	for rel, pkg := range packages(t) {
		rank, ok := layer[rel]
		if !ok {
			t.Errorf("%s has no layer in archtest; add it and to ARCHITECTURE.md", rel)
			continue
		}
		for _, imp := range pkg.Imports {
			if allowed, ok := onlyFor[imp]; ok && !contains(allowed, rel) {
				t.Errorf("%s imports %s, which only %v may", rel, imp, allowed)
			}
			for _, wire := range wireLibraries {
				if contains(domain, rel) && (imp == wire || strings.HasPrefix(imp, wire+"/")) {
					t.Errorf("%s is below the front ends and must not import %s", rel, imp)
				}
			}
			if !strings.HasPrefix(imp, module) {
				if (rel == "internal/iot" || rel == "internal/apierr") && strings.Contains(strings.Split(imp, "/")[0], ".") {
					t.Errorf("%s must import only the standard library, not %s", rel, imp)
				}
				continue
			}
			target := strings.TrimPrefix(imp, module)
			if layer[target] >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies must point down", rel, rank, target, layer[target])
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
